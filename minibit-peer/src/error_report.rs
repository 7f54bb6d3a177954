//! Errors for people: one `error:` line that names the input and says
//! what to do, with library chains ("client error (Connect): tcp connect
//! error: Connection refused") rewritten into plain words; `-v` shows the
//! whole chain. Used by both programs.

use std::error::Error;
use std::fmt::Write as _;
use std::io;

use crate::http::EXTRA_CA_CERTS_VAR;

/// The text to print on stderr for `error`: `error: WHAT: PLAIN CAUSE`
/// (one line); with `verbose`, followed by `caused by:` lines for the full chain.
pub fn report(error: &anyhow::Error, verbose: bool) -> String {
    let mut parts = Vec::new();
    for cause in error.chain() {
        if let Some(plain) = plain_words(cause) {
            parts.push(plain);
            break;
        }
        parts.push(cause.to_string());
    }
    // Our errors often end with the same words as their source: say them once.
    parts.dedup();
    let mut text = format!("error: {}", parts.join(": "));
    if verbose {
        for cause in error.chain().skip(1) {
            let _ = write!(text, "\n  caused by: {cause}");
        }
    }
    text
}

/// A plain description of a library error (HTTP client, I/O), or `None`
/// for our own errors, which are already written for people.
fn plain_words(error: &(dyn Error + 'static)) -> Option<String> {
    if let Some(e) = error.downcast_ref::<reqwest::Error>() {
        return Some(http_words(e));
    }
    if let Some(crate::http::FetchError::Http(e)) = error.downcast_ref() {
        return Some(http_words(e));
    }
    error.downcast_ref::<io::Error>().map(io_words)
}

fn http_words(error: &reqwest::Error) -> String {
    let chain = crate::error_chain::one_line(error);
    if chain.contains("certificate") {
        format!(
            "the server's TLS certificate is not trusted (for a private certificate \
             authority, set {EXTRA_CA_CERTS_VAR} to its PEM file)"
        )
    } else if error.is_timeout() {
        "no answer in time: the server may be down or overloaded; try again later".to_owned()
    } else if error.is_connect() {
        let refused =
            source_io(error).map(io::Error::kind) == Some(io::ErrorKind::ConnectionRefused);
        if refused {
            "connection refused: is the server running at that address and port?".to_owned()
        } else {
            "cannot connect: check the address and the network".to_owned()
        }
    } else if error.is_builder() {
        "not a usable URL (it must start with http:// or https://)".to_owned()
    } else if let Some(status) = error.status() {
        format!("the server answered HTTP {status}")
    } else {
        "the connection broke off before the answer was complete; try again".to_owned()
    }
}

fn io_words(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => "no such file or folder".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::AddrInUse => {
            "address already in use: another program listens there; pick another port".to_owned()
        }
        io::ErrorKind::AddrNotAvailable => {
            "that address is not one of this machine's: bind 127.0.0.1 or 0.0.0.0".to_owned()
        }
        io::ErrorKind::StorageFull => "the disk is full".to_owned(),
        _ => error.to_string(),
    }
}

/// The first `io::Error` under `error`.
fn source_io<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a io::Error> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn our_chain_is_joined_on_one_line() {
        let error = anyhow::anyhow!("bad piece length").context("x.torrent");
        assert_eq!(report(&error, false), "error: x.torrent: bad piece length");
    }

    #[test]
    fn io_errors_become_plain_words_and_verbose_shows_the_chain() {
        let io = io::Error::new(
            io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        );
        let error = Err::<(), _>(io).context("movie.torrent").unwrap_err();
        assert_eq!(
            report(&error, false),
            "error: movie.torrent: no such file or folder"
        );
        let verbose = report(&error, true);
        assert!(verbose.starts_with("error: movie.torrent: no such file or folder\n"));
        assert!(verbose.contains("caused by: No such file or directory (os error 2)"));
    }

    #[tokio::test]
    async fn a_refused_connection_is_said_in_plain_words() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/x");
        let e = reqwest::get(&url).await.unwrap_err().without_url();
        let error = anyhow::Error::new(crate::http::FetchError::Http(e)).context(url.clone());
        let text = report(&error, false);
        assert_eq!(
            text,
            format!(
                "error: {url}: connection refused: is the server running at that address and port?"
            )
        );
        assert!(!text.contains("tcp connect error"), "{text}");
    }
}
