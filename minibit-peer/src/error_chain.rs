//! An error and its causes in one line, each said once. A leaf module.

use std::error::Error;

/// `error: cause: cause...` in one line, for logs and API answers. A
/// cause the line already ends with (an error whose message includes its
/// source's, `bad magnet link: {0}` over a `#[from]` field) is not said
/// twice.
pub(crate) fn one_line(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("bad input")]
    struct Leaf;

    #[derive(Debug, thiserror::Error)]
    enum Middle {
        #[error("cannot parse: {0}")]
        Says(#[from] Leaf),
        #[error("cannot parse")]
        Hides(#[source] Leaf),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Top(#[source] Middle);

    #[test]
    fn every_cause_is_said_once() {
        assert_eq!(
            one_line(&Top(Middle::Says(Leaf))),
            "request failed: cannot parse: bad input"
        );
        assert_eq!(
            one_line(&Top(Middle::Hides(Leaf))),
            "request failed: cannot parse: bad input"
        );
    }
}
