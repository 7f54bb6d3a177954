//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Join a BitTorrent swarm: download a torrent, verify every piece, then seed it.
#[derive(Debug, Parser)]
#[command(name = "minibit-peer", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub download: DownloadArgs,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output (-v info, -vv debug), on stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// Download (and seed) one torrent.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// A .torrent file, an http:// URL of a .torrent, or a tracker's base URL (then NAME).
    pub source: Option<String>,
    /// With a tracker URL: the exact name of a torrent in its catalogue.
    pub name: Option<String>,
    /// Folder to download into.
    #[arg(short, long, default_value = ".")]
    pub output: PathBuf,
    /// TCP port to listen on for peers (default: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to listen on for peers (default: every interface).
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: std::net::IpAddr,
    /// Exit once every piece is verified (after announcing `completed`)
    /// instead of seeding until Ctrl-C.
    #[arg(long)]
    pub exit_on_complete: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a tracker's torrents whose name contains QUERY.
    Search {
        /// The tracker's base URL, e.g. http://host:6969.
        tracker: String,
        /// Part of the name (empty: everything).
        query: Option<String>,
    },
    /// Show what a .torrent holds.
    Info {
        /// The .torrent file.
        torrent: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn download_with_options() {
        let cli = Cli::try_parse_from([
            "minibit-peer",
            "-o",
            "out",
            "--port",
            "6881",
            "--exit-on-complete",
            "http://t:6969",
            "a b.mkv",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.download.source.as_deref(), Some("http://t:6969"));
        assert_eq!(cli.download.name.as_deref(), Some("a b.mkv"));
        assert_eq!(cli.download.output, PathBuf::from("out"));
        assert_eq!(cli.download.port, 6881);
        assert!(cli.download.exit_on_complete);
    }

    #[test]
    fn defaults_are_current_folder_and_any_port() {
        let cli = Cli::try_parse_from(["minibit-peer", "x.torrent"]).unwrap();
        assert_eq!(cli.download.output, PathBuf::from("."));
        assert_eq!(cli.download.port, 0);
        assert!(!cli.download.exit_on_complete);
    }

    #[test]
    fn subcommands_parse() {
        let cli = Cli::try_parse_from(["minibit-peer", "search", "http://t:6969", "mkv"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Search { ref tracker, ref query })
                if tracker == "http://t:6969" && query.as_deref() == Some("mkv")
        ));
        let cli = Cli::try_parse_from(["minibit-peer", "-v", "info", "a.torrent"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Info { .. })));
        assert_eq!(cli.verbose, 1);
        assert!(Cli::try_parse_from(["minibit-peer", "--port", "x", "a.torrent"]).is_err());
    }
}
