//! `--notify` URLs and the payload each receiver gets.
//!
//! A URL names its receiver by a scheme prefix: `slack+https://…` (incoming webhook),
//! `teams+https://…` (incoming webhook, MessageCard), `webhook+http(s)://…` (the notice as
//! JSON, signed) and `sns://arn:aws:sns:REGION:ACCOUNT:TOPIC`. Chat webhook URLs carry
//! their token, so a URL is never shown: a sink is known by its scheme and position
//! ([`Target::label`], `webhook-0`).

use serde_json::{json, Value};

use super::{EventKind, Notice};

/// The kind of receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Slack incoming webhook.
    Slack,
    /// Microsoft Teams incoming webhook.
    Teams,
    /// Any HTTP endpoint: the notice as JSON, HMAC-signed.
    Webhook,
    /// An SNS topic.
    Sns,
}

impl Scheme {
    /// The scheme's name (`slack`), the first half of a sink's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Slack => "slack",
            Scheme::Teams => "teams",
            Scheme::Webhook => "webhook",
            Scheme::Sns => "sns",
        }
    }
}

/// A parsed `--notify` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The receiver's kind.
    pub scheme: Scheme,
    /// Its position among the `--notify` flags (0-based).
    pub index: usize,
    /// The HTTP(S) URL to post to, or the topic ARN. Secret: never displayed.
    pub address: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The address may hold a token.
        write!(f, "Target({})", self.label())
    }
}

/// A `--notify` URL that cannot be used. Its text never quotes the URL (it may hold a
/// token): only its position and scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The prefix is none of the known ones.
    #[error("--notify #{index}: unknown scheme (expected slack+https://, teams+https://, webhook+http(s):// or sns://arn:aws:sns:REGION:ACCOUNT:TOPIC)")]
    Scheme {
        /// Position of the flag (1-based).
        index: usize,
    },
    /// The URL after the prefix is not usable.
    #[error("--notify #{index} ({scheme}): {why}")]
    Address {
        /// Position of the flag (1-based).
        index: usize,
        /// The scheme.
        scheme: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

impl Target {
    /// Parse the `index`th (0-based) `--notify` URL.
    pub fn parse(index: usize, url: &str) -> Result<Target, TargetError> {
        let url = url.trim();
        let (scheme, rest) = if let Some(r) = url.strip_prefix("slack+") {
            (Scheme::Slack, r)
        } else if let Some(r) = url.strip_prefix("teams+") {
            (Scheme::Teams, r)
        } else if let Some(r) = url.strip_prefix("webhook+") {
            (Scheme::Webhook, r)
        } else if let Some(r) = url.strip_prefix("sns://") {
            (Scheme::Sns, r)
        } else {
            return Err(TargetError::Scheme { index: index + 1 });
        };
        let bad = |why| TargetError::Address {
            index: index + 1,
            scheme: scheme.as_str(),
            why,
        };
        match scheme {
            Scheme::Sns => {
                let parts: Vec<&str> = rest.split(':').collect();
                let ok = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[1].starts_with("aws")
                    && parts[2] == "sns"
                    && !parts[3].is_empty()
                    && parts[4].len() == 12
                    && parts[4].bytes().all(|b| b.is_ascii_digit())
                    && !parts[5].is_empty()
                    && parts[5]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
                if !ok {
                    return Err(bad(
                        "expected sns://arn:aws:sns:REGION:ACCOUNT:TOPIC (a 12-digit account)",
                    ));
                }
            }
            Scheme::Webhook => {
                if !(rest.starts_with("https://") || rest.starts_with("http://")) {
                    return Err(bad("expected webhook+https://HOST/PATH or webhook+http://"));
                }
            }
            Scheme::Slack | Scheme::Teams => {
                // The URL is the token: never in clear text on the wire.
                if !rest.starts_with("https://") {
                    return Err(bad("expected an https:// URL after the prefix"));
                }
            }
        }
        if scheme != Scheme::Sns {
            let host = rest.split_once("://").map_or("", |(_, r)| r);
            let host = host.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(bad("the URL has no host"));
            }
        }
        Ok(Target {
            scheme,
            index,
            address: rest.to_string(),
        })
    }

    /// The sink's label in logs and metrics: scheme and position, never the URL.
    pub fn label(&self) -> String {
        format!("{}-{}", self.scheme.as_str(), self.index)
    }

    /// The region of an SNS topic ARN (`None` for the other schemes).
    pub fn sns_region(&self) -> Option<&str> {
        (self.scheme == Scheme::Sns).then(|| self.address.split(':').nth(3).unwrap_or(""))
    }
}

/// The text of a notice for people: the summary, then its details (at most `max` lines).
pub fn text(n: &Notice, max: usize) -> String {
    let mut out = n.summary.clone();
    if let (Some(a), Some(m)) = (&n.author, &n.message) {
        out.push_str(&format!("\n{a}: {m}"));
    }
    for d in n.details.iter().take(max) {
        out.push_str("\n• ");
        out.push_str(d);
    }
    if n.details.len() > max {
        out.push_str(&format!("\n… and {} more", n.details.len() - max));
    }
    out
}

/// Whether the event is bad news (red in chat) or good (green).
fn is_bad(e: EventKind) -> bool {
    matches!(
        e,
        EventKind::ReconcileFailed
            | EventKind::RevisionRefused
            | EventKind::PruneRefused
            | EventKind::DriftDetected
    )
}

/// Slack incoming webhook body: `text` (mrkdwn), the summary in bold.
pub fn slack(n: &Notice) -> Value {
    let body = text(n, 20);
    let (first, rest) = body.split_once('\n').unwrap_or((&body, ""));
    let mut t = format!(
        "*mlspace-gitops* {} {}",
        emoji(n.event),
        escape_slack(first)
    );
    if !rest.is_empty() {
        t.push('\n');
        t.push_str(&escape_slack(rest));
    }
    json!({ "text": t })
}

/// Slack's three control characters in message text.
fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn emoji(e: EventKind) -> &'static str {
    if is_bad(e) {
        ":warning:"
    } else {
        ":white_check_mark:"
    }
}

/// Teams incoming webhook body: a MessageCard with the summary as title and the details
/// as text.
pub fn teams(n: &Notice) -> Value {
    let details = text(
        &Notice {
            summary: String::new(),
            ..n.clone()
        },
        20,
    );
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": n.summary,
        "themeColor": if is_bad(n.event) { "D93F0B" } else { "2EA44F" },
        "title": format!("mlspace-gitops: {}", n.summary),
        // Teams renders markdown: one detail a line needs a blank line between them.
        "text": details.trim_start().replace('\n', "\n\n"),
    })
}

/// The generic webhook's and SNS's body: the notice as JSON, with a `source`.
pub fn json_body(n: &Notice) -> Value {
    let mut v = serde_json::to_value(n).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("source".into(), json!("mlspace-gitops"));
    }
    v
}

/// An SNS Subject: printable ASCII, no line break, under 100 characters (SNS's limit).
pub fn sns_subject(n: &Notice) -> String {
    let s: String = format!("mlspace-gitops: {}", n.summary)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    s.chars().take(99).collect()
}
