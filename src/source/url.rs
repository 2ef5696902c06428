//! Git locations as text: tell a git URL from anything else, take out what the SSH host-key
//! check needs (host, port), and remove credentials before a location or a message is shown.

use std::borrow::Cow;

use crate::syntax::diag::escape_control;

/// Secrets shorter than this are not scrubbed from messages: replacing every `a` of a
/// message because the token is `a` garbles all of them, and shows the token by where it
/// is missing. Such a token is reported as suspicious when the source is configured.
pub(crate) const MIN_SCRUBBED_SECRET: usize = 8;

/// The parts of a git location the source needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitUrl {
    /// Lower-case scheme; `ssh` for the scp-like `user@host:path` form.
    pub scheme: String,
    /// User name, if the URL has one.
    pub user: Option<String>,
    /// Password (or token) written into the URL, if any.
    pub password: Option<String>,
    /// Host name without brackets; empty for `file://`.
    pub host: String,
    /// Explicit port.
    pub port: Option<u16>,
}

impl GitUrl {
    /// Parse a `scheme://` URL or the scp-like `[user@]host:path` form; `None` for anything
    /// else (a plain path).
    pub fn parse(location: &str) -> Option<GitUrl> {
        if let Some((scheme, rest)) = location.split_once("://") {
            if scheme.is_empty()
                || !scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            {
                return None;
            }
            let authority = &rest[..authority_end(rest)];
            let (userinfo, hostport) = match authority.rfind('@') {
                Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
                None => (None, authority),
            };
            let (user, password) = split_userinfo(userinfo);
            let (host, port) = split_host_port(hostport);
            return Some(GitUrl {
                scheme: scheme.to_ascii_lowercase(),
                user,
                password,
                host,
                port,
            });
        }
        // git's own rule: scp-like when a colon comes before any slash.
        let colon = location.find(':')?;
        let before = &location[..colon];
        if before.contains('/') || colon + 1 == location.len() {
            return None;
        }
        let (userinfo, host) = match before.rfind('@') {
            Some(at) => (Some(&before[..at]), &before[at + 1..]),
            None => (None, before),
        };
        if host.is_empty() {
            return None;
        }
        let (user, password) = split_userinfo(userinfo);
        Some(GitUrl {
            scheme: "ssh".to_string(),
            user,
            password,
            host: host.to_string(),
            port: None,
        })
    }

    /// Whether the transport is SSH (where a user name is not a secret).
    pub fn is_ssh(&self) -> bool {
        is_ssh_scheme(&self.scheme)
    }

    /// Whether `other` is the same origin (scheme, host and port, default ports filled
    /// in): credentials for one are never sent to another.
    pub fn same_origin(&self, other: &GitUrl) -> bool {
        let port = |u: &GitUrl| {
            u.port.or(match u.scheme.as_str() {
                "https" => Some(443),
                "http" => Some(80),
                s if is_ssh_scheme(s) => Some(22),
                _ => None,
            })
        };
        let scheme = |u: &GitUrl| {
            if u.is_ssh() {
                "ssh".to_string()
            } else {
                u.scheme.clone()
            }
        };
        scheme(self) == scheme(other)
            && self.host.eq_ignore_ascii_case(&other.host)
            && port(self) == port(other)
    }
}

fn is_ssh_scheme(scheme: &str) -> bool {
    matches!(
        scheme.to_ascii_lowercase().as_str(),
        "ssh" | "git+ssh" | "ssh+git"
    )
}

/// Where the authority (`userinfo@host:port`) after `scheme://` ends.
fn authority_end(rest: &str) -> usize {
    rest.find(['/', '?', '#']).unwrap_or(rest.len())
}

/// User name and password of `user:password`, percent-decoded as RFC 3986 wants them
/// written (`p%40ss` is `p@ss`); what is not valid UTF-8 once decoded is kept as written.
fn split_userinfo(userinfo: Option<&str>) -> (Option<String>, Option<String>) {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(Cow::into_owned)
            .unwrap_or_else(|_| s.to_string())
    };
    match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(decode(user)), Some(decode(pass))),
            None => (Some(decode(u)), None),
        },
    }
}

fn split_host_port(hostport: &str) -> (String, Option<u16>) {
    if let Some(rest) = hostport.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host.to_string(), port);
        }
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => match port.parse() {
            Ok(p) => (host.to_string(), Some(p)),
            Err(_) => (hostport.to_string(), None),
        },
        None => (hostport.to_string(), None),
    }
}

/// A location with its credentials removed: `https://user:token@host/x` becomes
/// `https://host/x` (any user name goes too, since hosts accept tokens as user names); for
/// SSH the user name stays (`git@host:x`) and only a password goes. Plain paths are returned
/// unchanged.
pub fn redact_url(location: &str) -> String {
    if let Some((scheme, rest)) = location.split_once("://") {
        let end = authority_end(rest);
        let Some(at) = rest[..end].rfind('@') else {
            return location.to_string();
        };
        let userinfo = &rest[..at];
        let kept = if is_ssh_scheme(scheme) {
            let user = userinfo.split(':').next().unwrap_or_default();
            if user.is_empty() {
                String::new()
            } else {
                format!("{user}@")
            }
        } else {
            String::new()
        };
        return format!("{scheme}://{kept}{}", &rest[at + 1..]);
    }
    // scp-like: git has no password syntax here, but `user:secret@host:path` must not show.
    let head = &location[..location.find('/').unwrap_or(location.len())];
    if let Some(at) = head.rfind('@') {
        if let Some((user, _)) = location[..at].split_once(':') {
            return format!("{user}{}", &location[at..]);
        }
    }
    location.to_string()
}

/// Remove credentials from free text (a libgit2 message, which may quote what a remote
/// said): the userinfo of every `scheme://userinfo@host` in it, then every literal
/// occurrence of `secrets` of at least [`MIN_SCRUBBED_SECRET`] characters (longest first);
/// control characters are escaped, so a remote cannot forge log lines either.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| matches!(c, '/' | '?' | '#' | '\'' | '"' | '`') || c.is_whitespace())
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    let mut secrets: Vec<&str> = secrets
        .iter()
        .copied()
        .filter(|s| s.chars().count() >= MIN_SCRUBBED_SECRET)
        .collect();
    // A secret that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        out = out.replace(secret, "***");
    }
    escape_control(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_https_credentials() {
        assert_eq!(
            redact_url("https://user:tok@host/x.git"),
            "https://host/x.git"
        );
        assert_eq!(
            redact_url("https://ghp_token@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            redact_url("https://u:p@ss@host:8443/x.git"),
            "https://host:8443/x.git"
        );
        assert_eq!(redact_url("https://host/x@y.git"), "https://host/x@y.git");
    }

    #[test]
    fn keeps_ssh_user_but_not_password() {
        assert_eq!(
            redact_url("ssh://git:pw@host:2222/x.git"),
            "ssh://git@host:2222/x.git"
        );
        assert_eq!(redact_url("ssh://git@host/x.git"), "ssh://git@host/x.git");
        assert_eq!(redact_url("git@host:org/x.git"), "git@host:org/x.git");
        assert_eq!(redact_url("git:pw@host:org/x.git"), "git@host:org/x.git");
    }

    #[test]
    fn leaves_paths_alone() {
        assert_eq!(redact_url("/srv/repo"), "/srv/repo");
        assert_eq!(redact_url("file:///srv/repo"), "file:///srv/repo");
        assert_eq!(redact_url("./a@b/c"), "./a@b/c");
    }

    #[test]
    fn parses_url_forms() {
        let u = GitUrl::parse("ssh://git@example.com:2222/org/x.git").unwrap();
        assert_eq!(
            (
                u.scheme.as_str(),
                u.user.as_deref(),
                u.host.as_str(),
                u.port
            ),
            ("ssh", Some("git"), "example.com", Some(2222))
        );
        let u = GitUrl::parse("git@example.com:org/x.git").unwrap();
        assert_eq!(
            (
                u.scheme.as_str(),
                u.user.as_deref(),
                u.host.as_str(),
                u.port
            ),
            ("ssh", Some("git"), "example.com", None)
        );
        let u = GitUrl::parse("https://u:t@[::1]:8443/x").unwrap();
        assert_eq!(
            (u.password.as_deref(), u.host.as_str(), u.port),
            (Some("t"), "::1", Some(8443))
        );
        let u = GitUrl::parse("file:///tmp/repo").unwrap();
        assert_eq!((u.scheme.as_str(), u.host.as_str()), ("file", ""));
        assert!(GitUrl::parse("/tmp/repo").is_none());
        assert!(GitUrl::parse("./dir/with:colon").is_none());
        assert!(GitUrl::parse("manifests").is_none());
    }

    #[test]
    fn scrubs_messages() {
        let msg = "failed to connect to 'https://user:tok3n-value@host/x.git': value tok3n-value rejected";
        let clean = scrub(msg, &["tok3n-value"]);
        assert_eq!(
            clean,
            "failed to connect to 'https://host/x.git': value *** rejected"
        );
    }

    #[test]
    fn a_one_character_token_does_not_garble_every_message() {
        let msg = "authentication failed for 'https://host/a.git': remote said: bad password";
        assert_eq!(scrub(msg, &["a"]), msg);
        assert_eq!(scrub(msg, &["a", ""]), msg);
        // Long secrets still go, the longer of two overlapping ones whole.
        assert_eq!(
            scrub(
                "x secret-token-long y secret-token z",
                &["secret-token", "secret-token-long"]
            ),
            "x *** y *** z"
        );
    }

    #[test]
    fn a_remote_cannot_forge_log_lines_through_a_message() {
        assert_eq!(
            scrub("remote: nope\nERROR forged\u{1b}[2J", &[]),
            "remote: nope\\nERROR forged\\u{1b}[2J"
        );
    }

    #[test]
    fn url_credentials_are_percent_decoded() {
        let u = GitUrl::parse("https://us%65r:p%40ss%3Aw%2Fd@host/x.git").unwrap();
        assert_eq!(u.user.as_deref(), Some("user"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w/d"));
        // Not UTF-8 once decoded: kept as written.
        let u = GitUrl::parse("https://u:%ff@host/x.git").unwrap();
        assert_eq!(u.password.as_deref(), Some("%ff"));
    }

    #[test]
    fn origins() {
        let a = GitUrl::parse("https://git.example.com/org/x.git").unwrap();
        let same = GitUrl::parse("https://GIT.example.com:443/other/y.git").unwrap();
        assert!(a.same_origin(&same));
        for other in [
            "https://evil.example.net/org/x.git",
            "https://git.example.com:8443/org/x.git",
            "http://git.example.com/org/x.git",
            "ssh://git.example.com/org/x.git",
        ] {
            assert!(!a.same_origin(&GitUrl::parse(other).unwrap()), "{other}");
        }
        let s = GitUrl::parse("git@git.example.com:org/x.git").unwrap();
        assert!(s.same_origin(&GitUrl::parse("ssh://git@git.example.com:22/org/x.git").unwrap()));
    }
}
