//! The credentials of the web UI and `/status` (`run --ui-auth-file FILE`).
//!
//! The file holds one credential a line; blank lines and lines starting with `#` are
//! skipped:
//!
//! ```text
//! # a bearer token (Authorization: Bearer TOKEN)
//! token 6f1c0d…
//! # a user and password (Authorization: Basic …, what a browser asks for)
//! basic alice:correct horse battery staple
//! ```
//!
//! A file that cannot be read, holds no credential, or has a malformed line is refused at
//! start with its path and line number; the values never reach a log or an error.
//! Requests are checked in constant time: both sides are hashed (SHA-256) so that neither
//! the length nor a common prefix shows in the time taken, and every credential is
//! compared, not only until the first match.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// Why an auth file was refused. Messages name the file and line, never a value.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// The file cannot be read.
    #[error("cannot read the UI auth file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is neither `token TOKEN` nor `basic USER:PASSWORD`.
    #[error("{path}:{line}: {why} (expected `token TOKEN` or `basic USER:PASSWORD`)")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Its line number, from 1.
        line: usize,
        /// What is wrong, without the value.
        why: &'static str,
    },
    /// No credential at all: the UI would be closed to everyone, surely not meant.
    #[error("{path}: no credential (expected lines `token TOKEN` or `basic USER:PASSWORD`)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The accepted credentials, as SHA-256 digests of the `Authorization` values they match.
#[derive(Clone)]
pub struct UiAuth {
    accepted: Vec<[u8; 32]>,
}

impl std::fmt::Debug for UiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UiAuth({} credential(s))", self.accepted.len())
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl UiAuth {
    /// Read and check an auth file.
    pub fn from_file(path: &Path) -> Result<UiAuth, AuthFileError> {
        // Read whole (not trimmed) so that line numbers stay right.
        let text = std::fs::read_to_string(path)
            .map(Secret::new)
            .map_err(|source| AuthFileError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        UiAuth::parse(text.expose(), path)
    }

    /// Parse the lines of an auth file (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<UiAuth, AuthFileError> {
        let bad = |line: usize, why: &'static str| AuthFileError::Malformed {
            path: path.to_path_buf(),
            line,
            why,
        };
        let mut accepted = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (scheme, value) = line
                .split_once(char::is_whitespace)
                .map(|(s, v)| (s, v.trim()))
                .unwrap_or((line, ""));
            match scheme {
                "token" => {
                    if value.is_empty() {
                        return Err(bad(i + 1, "empty token"));
                    }
                    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        return Err(bad(i + 1, "a token has no spaces"));
                    }
                    accepted.push(digest(&format!("Bearer {value}")));
                }
                "basic" => {
                    let Some((user, password)) = value.split_once(':') else {
                        return Err(bad(i + 1, "no `:` between user and password"));
                    };
                    if user.is_empty() || password.is_empty() {
                        return Err(bad(i + 1, "empty user or password"));
                    }
                    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
                    accepted.push(digest(&format!("Basic {encoded}")));
                }
                _ => return Err(bad(i + 1, "unknown scheme")),
            }
        }
        if accepted.is_empty() {
            return Err(AuthFileError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(UiAuth { accepted })
    }

    /// Whether an `Authorization` header value is one of the credentials.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization.and_then(|v| std::str::from_utf8(v).ok()) else {
            return false;
        };
        // The scheme is case-insensitive; one canonical spelling is hashed.
        let canonical = match value.trim().split_once(' ') {
            Some((s, rest)) if s.eq_ignore_ascii_case("bearer") => {
                format!("Bearer {}", rest.trim())
            }
            Some((s, rest)) if s.eq_ignore_ascii_case("basic") => {
                format!("Basic {}", rest.trim())
            }
            _ => return false,
        };
        let got = digest(&canonical);
        let mut any = subtle::Choice::from(0u8);
        for want in &self.accepted {
            any |= want.ct_eq(&got);
        }
        any.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<UiAuth, AuthFileError> {
        UiAuth::parse(text, Path::new("/etc/ui-auth"))
    }

    #[test]
    fn tokens_and_users_are_accepted_and_nothing_else() {
        let a = parse("# comment\n\ntoken t0ken\nbasic alice:pa ss:word\n").unwrap();
        assert!(a.allows(Some(b"Bearer t0ken")));
        assert!(a.allows(Some(b"bearer  t0ken ")));
        // alice:pa ss:word
        assert!(a.allows(Some(b"Basic YWxpY2U6cGEgc3M6d29yZA==")));
        assert!(!a.allows(Some(b"Bearer t0ke")));
        assert!(!a.allows(Some(b"Bearer t0kenn")));
        assert!(!a.allows(Some(b"Basic t0ken")));
        assert!(!a.allows(Some(b"Basic YWxpY2U6cGEgc3M6d29yZA")));
        assert!(!a.allows(Some(b"t0ken")));
        assert!(!a.allows(None));
        assert!(!a.allows(Some(&[0xff, 0xfe])));
        assert_eq!(format!("{a:?}"), "UiAuth(2 credential(s))");
    }

    #[test]
    fn malformed_files_name_the_line_and_never_the_value() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert_eq!(
            e("token abc\nbasic nocolon-secret\n"),
            "/etc/ui-auth:2: no `:` between user and password (expected `token TOKEN` or `basic USER:PASSWORD`)"
        );
        assert!(e("bearer xyz-secret").starts_with("/etc/ui-auth:1: unknown scheme"));
        assert!(e("token").starts_with("/etc/ui-auth:1: empty token"));
        assert!(e("token a b").starts_with("/etc/ui-auth:1: a token has no spaces"));
        assert!(e("basic :pw").starts_with("/etc/ui-auth:1: empty user or password"));
        assert!(e("# only a comment\n").starts_with("/etc/ui-auth: no credential"));
        assert!(e("").starts_with("/etc/ui-auth: no credential"));
        for t in ["basic nocolon-secret", "bearer xyz-secret"] {
            assert!(!e(t).contains("secret"), "{}", e(t));
        }
        let missing = UiAuth::from_file(Path::new("/nonexistent/ui-auth")).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "cannot read the UI auth file /nonexistent/ui-auth"
        );
    }
}
