//! How a download ends: the stop signals (Ctrl-C = SIGINT, and SIGTERM,
//! what systemd and docker send) and the exit codes. Exit 0 only when
//! every piece is verified; a stop before that exits 128 + the signal
//! number (130 for Ctrl-C, 143 for SIGTERM) after saying how far it got.

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// A request to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Stop {
    /// The shell convention for a process stopped by this signal: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
        }
    }
}

/// The stop signals, caught from [`StopSignals::install`] on (they no
/// longer kill the process: the caller stops cleanly).
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Catches SIGINT and SIGTERM.
    ///
    /// # Errors
    /// When a handler cannot be installed.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next stop signal.
    pub async fn recv(&mut self) -> Stop {
        tokio::select! {
            _ = self.interrupt.recv() => Stop::Interrupt,
            _ = self.terminate.recv() => Stop::Terminate,
        }
    }
}

/// The line printed when a download stops before every piece is verified.
pub fn interrupted_line(percent: u64) -> String {
    format!("interrupted at {percent} %: run the same command to resume")
}

/// Whole percent of `have` out of `total` bytes, rounded down (100 only
/// when complete; an empty torrent is complete).
pub fn percent(have: u64, total: u64) -> u64 {
    if total == 0 {
        100
    } else {
        (u128::from(have) * 100 / u128::from(total)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_down_so_100_means_complete() {
        assert_eq!(percent(0, 10), 0);
        assert_eq!(percent(54, 100), 54);
        assert_eq!(percent(999, 1000), 99);
        assert_eq!(percent(1000, 1000), 100);
        assert_eq!(percent(0, 0), 100);
        assert_eq!(percent(u64::MAX - 1, u64::MAX), 99);
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(Stop::Interrupt.exit_code(), 130);
        assert_eq!(Stop::Terminate.exit_code(), 143);
        assert_eq!(
            interrupted_line(54),
            "interrupted at 54 %: run the same command to resume"
        );
    }
}
