//! Git locations as text: tell a git URL from anything else, take out what the SSH host-key
//! check needs (host, port), and remove credentials before a location or a message is shown.

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

fn split_userinfo(userinfo: Option<&str>) -> (Option<String>, Option<String>) {
    match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(user.to_string()), Some(pass.to_string())),
            None => (Some(u.to_string()), None),
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

/// Remove credentials from free text (a libgit2 message): the userinfo of every
/// `scheme://userinfo@host` in it, then every literal occurrence of `secrets`.
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
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "***");
    }
    out
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
        let msg = "failed to connect to 'https://user:tok@host/x.git': value tok rejected";
        let clean = scrub(msg, &["tok"]);
        assert_eq!(
            clean,
            "failed to connect to 'https://host/x.git': value *** rejected"
        );
    }
}
