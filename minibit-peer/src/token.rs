//! The API token: every state-changing request of the HTTP API carries it
//! as `Authorization: Bearer TOKEN`. Generated at first start and kept in
//! `STATE/token` (mode 0600), or set with `--api-token`.

use std::fs::{OpenOptions, Permissions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// File name of the token in the state folder.
pub const TOKEN_FILE: &str = "token";

/// A secret compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

/// Why a token could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Empty, or with characters that cannot go in an HTTP header.
    #[error("an API token must be 16-256 visible ASCII characters (no spaces)")]
    Malformed,
    /// The token file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The token file.
        path: std::path::PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

impl ApiToken {
    /// A token given by the user (`--api-token`).
    ///
    /// # Errors
    /// [`TokenError::Malformed`]: shorter than 16 or longer than 256
    /// characters, or not visible ASCII.
    pub fn new(token: impl Into<String>) -> Result<Self, TokenError> {
        let token = token.into();
        let usable =
            (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
        if usable {
            Ok(Self(token))
        } else {
            Err(TokenError::Malformed)
        }
    }

    /// A fresh random token: 32 bytes from the OS RNG, in hex (64 characters).
    pub fn generate() -> Self {
        Self(hex::encode(rand::random::<[u8; 32]>()))
    }

    /// The token of the state folder `dir`: read from `dir/token`, or
    /// generated and written there (mode 0600) when the file does not
    /// exist yet. The boolean says whether it was generated now. A token
    /// file readable by others is made 0600.
    ///
    /// # Errors
    /// [`TokenError::Io`] when the file cannot be read or written,
    /// [`TokenError::Malformed`] when it holds no usable token.
    pub fn load_or_create(dir: &Path) -> Result<(Self, bool), TokenError> {
        let path = dir.join(TOKEN_FILE);
        let io = |source| TokenError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                std::fs::set_permissions(&path, Permissions::from_mode(0o600)).map_err(io)?;
                Ok((Self::new(text.trim())?, false))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let token = Self::generate();
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                writeln!(file, "{}", token.0).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok((token, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The token itself, to print in the login URL.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token, compared in constant time (for
    /// tokens of the same length).
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Creates the state folder `dir` and its parents (mode 0700 when new:
/// it holds the token).
///
/// # Errors
/// When it cannot be created.
pub fn create_state_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_created_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = ApiToken::load_or_create(dir.path()).unwrap();
        assert!(created);
        assert_eq!(first.reveal().len(), 64);
        let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = ApiToken::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(again, first);
        assert!(first.matches(first.reveal()));
        assert!(!first.matches(&first.reveal()[1..]));
        assert!(!first.matches(&"0".repeat(64)));
        assert_ne!(ApiToken::generate(), first);
    }

    #[test]
    fn short_or_spaced_tokens_are_refused() {
        assert!(ApiToken::new("short").is_err());
        assert!(ApiToken::new("sixteen chars   ").is_err());
        assert!(ApiToken::new("a".repeat(257)).is_err());
        assert!(ApiToken::new("0123456789abcdef").is_ok());
    }
}
