//! `Environment`: the account, region and partition a manifest directory describes,
//! the placeholder values and the default tags.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{check_tags, Tags};
use crate::syntax::diag::DocCx;
use crate::syntax::template::Vars;
use crate::syntax::yaml::Loc;

/// Partitions AWS has today.
pub const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// Spec of the `Environment` kind (exactly one per manifest directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// AWS partition (`aws`, `aws-us-gov`, `aws-cn`, ...). Fills `{AWS_PARTITION}`.
    #[serde(default = "default_partition")]
    pub partition: String,
    /// AWS region, e.g. `us-east-1`. Fills `{AWS_REGION}`.
    pub region: String,
    /// 12-digit AWS account id. Fills `{AWS_ACCOUNT}`.
    pub account: String,
    /// Placeholder name (UPPER_SNAKE) → value, for every other `{NAME}` in the manifests.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Tags put on every taggable resource (a resource's own tags win on the same key).
    #[serde(default)]
    pub tags: Tags,
    /// Delete managed resources that left the manifests (as `--prune` does). Resources
    /// annotated `mlspace-gitops/deletion-policy: retain` are only forgotten.
    #[serde(default)]
    pub prune: bool,
    /// Objects the MLSpace application (or anyone else) owns: never changed, detached,
    /// removed or pruned, and never drift (e.g. the `MLSpace-app-denied-services` policy that
    /// MLSpace attaches to its roles at runtime).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<IgnoreRule>,
    /// Tag key prefixes that other tools own (e.g. `aws-cdk:`, whose BucketDeployment marks
    /// the buckets it fills): on every resource, tags whose key starts with one are left as
    /// AWS has them, neither drift nor removed, unless the resource's manifest sets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_tags: Vec<String>,
    /// IAM role the daemon assumes to reach this Environment's account (from the credentials
    /// of the standard chain), e.g. `arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/mlspace-gitops`.
    /// May use `{AWS_PARTITION}` and `{AWS_ACCOUNT}`. Unset: the standard chain's own
    /// credentials are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    /// External id the role's trust policy requires (`sts:ExternalId`); only with `assumeRoleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The SQS queues that receive this account's CloudTrail events through EventBridge
    /// (`deploy/events`): the daemon (`run`) reads them and repairs drift seconds after it
    /// happens, the resync staying as the backstop. Unset: drift is found at the resync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsSpec>,
}

/// Where the daemon hears of changes made in the Environment's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventsSpec {
    /// Queue URLs, one per region used (IAM's events arrive in us-east-1 only; S3, DynamoDB
    /// and KMS events in the Environment's region), e.g.
    /// `https://sqs.{AWS_REGION}.amazonaws.com/{AWS_ACCOUNT}/mlspace-gitops-events`. In the
    /// Environment's account; placeholders allowed.
    pub queues: Vec<String>,
}

/// An SQS queue URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQueue {
    /// The URL, placeholders filled in.
    pub url: String,
    /// The region its host names (`sqs.REGION.amazonaws.com`); `None` for a host that names
    /// none (an emulator, a proxy), which means the Environment's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The account the queue is in.
    pub account: String,
    /// The queue's name.
    pub name: String,
}

impl EventQueue {
    /// Take an SQS queue URL apart: `https://HOST[:PORT]/ACCOUNT/NAME`. Plain `http://` only
    /// for loopback hosts (an emulator). Errors say what is wrong.
    pub fn parse(url: &str) -> Result<EventQueue, String> {
        let (rest, loopback_only) = if let Some(r) = url.strip_prefix("https://") {
            (r, false)
        } else if let Some(r) = url.strip_prefix("http://") {
            (r, true)
        } else {
            return Err("it must start with https://".into());
        };
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| "the path /ACCOUNT/NAME is missing".to_string())?;
        if authority.contains('@') {
            return Err("the host holds credentials".into());
        }
        // `[::1]:4566`, `host:4566` or `host`.
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((h, rest)) => (&authority[..h.len() + 2], rest.strip_prefix(':')),
                None => return Err("the host's `[` is not closed".into()),
            },
            None => match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        if let Some(port) = port {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("`{port}` is not a port"));
            }
        }
        if host.is_empty() {
            return Err("the host is missing".into());
        }
        if loopback_only && !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err("plain http:// is only for an emulator on loopback; use https://".into());
        }
        let (account, name) = path
            .split_once('/')
            .ok_or_else(|| "the path must be /ACCOUNT/NAME".to_string())?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{account}` is not a 12-digit account id"));
        }
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        if name.is_empty()
            || name.len() > 80
            || base.is_empty()
            || !base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "`{name}` is not a queue name (1 to 80 letters, digits, - and _, optionally ending in .fifo)"
            ));
        }
        Ok(EventQueue {
            url: url.to_string(),
            region: queue_host_region(host),
            account: account.to_string(),
            name: name.to_string(),
        })
    }
}

/// The region an SQS host names: `sqs.REGION.amazonaws.com[.cn]`, `sqs.REGION.api.aws`,
/// VPC endpoints (`vpce-ID.sqs.REGION.vpce.amazonaws.com`), the legacy
/// `REGION.queue.amazonaws.com` and `queue.amazonaws.com` (us-east-1).
fn queue_host_region(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    if host == "queue.amazonaws.com" {
        return Some("us-east-1".into());
    }
    if labels.len() >= 4 && labels[1] == "queue" && is_region(labels[0]) {
        return Some(labels[0].to_string());
    }
    labels
        .windows(2)
        .find(|w| w[0] == "sqs" && is_region(w[1]))
        .map(|w| w[1].to_string())
}

/// The region where IAM, a global service, sends its CloudTrail events to EventBridge.
pub fn iam_events_region(partition: &str) -> Option<&'static str> {
    match partition {
        "aws" => Some("us-east-1"),
        "aws-us-gov" => Some("us-gov-west-1"),
        "aws-cn" => Some("cn-north-1"),
        _ => None,
    }
}

/// The resolved Environment, as rendered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentView {
    /// `metadata.name` of the Environment.
    pub name: String,
    /// AWS partition.
    pub partition: String,
    /// AWS region.
    pub region: String,
    /// AWS account id.
    pub account: String,
    /// Placeholder values.
    pub params: BTreeMap<String, String>,
    /// Default tags.
    pub tags: Tags,
    /// Whether resources that left the manifests are deleted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
    /// Objects never touched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<IgnoreRule>,
    /// Tag key prefixes left to other tools.
    #[serde(default, rename = "ignoreTags", skip_serializing_if = "Vec::is_empty")]
    pub ignore_tags: Vec<String>,
    /// Role assumed to reach the account (placeholders filled in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    /// External id sent when assuming the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The queues of its account's events (placeholders filled in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_queues: Vec<EventQueue>,
    /// Where the Environment's `metadata.name` is written.
    #[serde(skip)]
    pub source: Option<Loc>,
}

/// One ignore rule: a name pattern, tags, or both (all given conditions must hold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IgnoreRule {
    /// Glob on the object's name (`*` any run of characters, `?` one), e.g. `MLSpace-project-*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tags the object carries (every one must match), e.g. `{dynamic-user-role: "true"}`.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

impl IgnoreRule {
    /// Whether an object with this name (and these tags, when known) is ignored.
    pub fn matches(&self, name: &str, tags: Option<&Tags>) -> bool {
        if self.name.is_none() && self.tags.is_empty() {
            return false;
        }
        let name_ok = self
            .name
            .as_deref()
            .is_none_or(|p| glob(p.as_bytes(), name.as_bytes()));
        let tags_ok = self.tags.is_empty()
            || tags.is_some_and(|t| self.tags.iter().all(|(k, v)| t.get(k) == Some(v)));
        name_ok && tags_ok
    }
}

/// `*` and `?` glob matching.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

fn default_partition() -> String {
    "aws".into()
}

impl EnvironmentSpec {
    /// Check the fields; pointers are relative to the document root.
    pub fn validate(&self, cx: &mut DocCx) {
        if !PARTITIONS.contains(&self.partition.as_str()) {
            cx.error(
                "/spec/partition",
                format_args!(
                    "unknown partition `{}`; expected one of {}",
                    self.partition,
                    PARTITIONS.join(", ")
                ),
            );
        }
        if !is_region(&self.region) {
            cx.error(
                "/spec/region",
                format_args!("`{}` is not a region name such as us-east-1", self.region),
            );
        }
        if self.account.len() != 12 || !self.account.bytes().all(|b| b.is_ascii_digit()) {
            cx.error(
                "/spec/account",
                format_args!("account must be 12 digits, got `{}`", self.account),
            );
        }
        for k in self.params.keys() {
            let p = format!("/spec/params/{k}");
            if !is_placeholder_name(k) {
                cx.key_error(
                    &p,
                    format_args!("param `{k}` must be UPPER_SNAKE_CASE to be usable as `{{{k}}}`"),
                );
            }
            if ["AWS_PARTITION", "AWS_REGION", "AWS_ACCOUNT"].contains(&k.as_str()) {
                cx.key_error(
                    &p,
                    format_args!(
                        "`{k}` comes from the Environment's own field and cannot be a param"
                    ),
                );
            }
        }
        let builtins = self.builtins();
        for (k, val) in &self.params {
            let p = format!("/spec/params/{k}");
            crate::syntax::template::substitute(val, &builtins, &mut |name| {
                cx.error(&p, format_args!("param values may only use {{AWS_PARTITION}}, {{AWS_REGION}} and {{AWS_ACCOUNT}}, not `{{{name}}}`"))
            });
        }
        check_tags(cx, "/spec/tags", &self.tags, &Tags::new());
        for (i, prefix) in self.ignore_tags.iter().enumerate() {
            let p = format!("/spec/ignoreTags/{i}");
            if prefix.is_empty() {
                cx.error(
                    &p,
                    "an empty prefix would leave every tag unmanaged, the ownership tag included",
                );
            } else if crate::kinds::common::OWNERSHIP_TAG.starts_with(prefix.as_str()) {
                cx.error(
                    &p,
                    format_args!(
                        "`{prefix}` would leave the ownership tag `{}` unmanaged",
                        crate::kinds::common::OWNERSHIP_TAG
                    ),
                );
            }
        }
        if let Some(arn) = &self.assume_role_arn {
            match self.resolved_assume_role_arn() {
                Some(resolved) if is_role_arn(&resolved) => {}
                _ => cx.error(
                    "/spec/assumeRoleArn",
                    format_args!("`{arn}` is not an IAM role ARN such as arn:aws:iam::123456789012:role/mlspace-gitops (only {{AWS_PARTITION}} and {{AWS_ACCOUNT}} may be used)"),
                ),
            }
        }
        if let Some(id) = &self.external_id {
            if self.assume_role_arn.is_none() {
                cx.error(
                    "/spec/externalId",
                    "externalId is only used with assumeRoleArn; set both or neither",
                );
            }
            // STS: 2 to 1,224 characters of [\w+=,.@:/-].
            let ok = (2..=1224).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
            if !ok {
                cx.error(
                    "/spec/externalId",
                    "externalId must be 2 to 1224 characters of letters, digits and _+=,.@:/-",
                );
            }
        }
        self.validate_events(cx);
    }

    /// Check `events`: URLs of queues in this account, one per region, placeholders known.
    fn validate_events(&self, cx: &mut DocCx) {
        let Some(events) = &self.events else {
            return;
        };
        if events.queues.is_empty() {
            cx.error(
                "/spec/events/queues",
                "name at least one queue URL, or leave `events` out",
            );
            return;
        }
        let vars = self.vars();
        let mut regions: BTreeMap<String, usize> = BTreeMap::new();
        for (i, q) in events.queues.iter().enumerate() {
            let p = format!("/spec/events/queues/{i}");
            let mut missing = Vec::new();
            let url =
                crate::syntax::template::substitute(q, &vars, &mut |n| missing.push(n.to_string()))
                    .unwrap_or_else(|| q.clone());
            if !missing.is_empty() {
                cx.error(
                    &p,
                    format_args!(
                        "unknown placeholder {}; the Environment's fields and params fill them",
                        missing
                            .iter()
                            .map(|n| format!("`{{{n}}}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            }
            let queue = match EventQueue::parse(&url) {
                Ok(queue) => queue,
                Err(why) => {
                    cx.error(&p, format_args!("`{url}` is not an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/mlspace-gitops-events: {why}"));
                    continue;
                }
            };
            if queue.account != self.account {
                cx.error(&p, format_args!("the queue is in account {}, not the Environment's account {}: the daemon reads it with this Environment's credentials", queue.account, self.account));
            }
            let region = queue.region.clone().unwrap_or_else(|| self.region.clone());
            if let Some(first) = regions.insert(region.clone(), i) {
                cx.error(&p, format_args!("a second queue in region {region} (the first is queues[{first}]); one queue receives all of a region's events"));
            }
        }
        if let Some(iam) = iam_events_region(&self.partition) {
            if !regions.is_empty() && !regions.contains_key(iam) {
                cx.warning("/spec/events/queues", format_args!("no queue in {iam}, where IAM sends its CloudTrail events: IAM drift waits for the resync"));
            }
        }
    }

    /// The queues of `events`, placeholders filled in (those that do not parse left out:
    /// validation reports them).
    pub fn event_queues(&self) -> Vec<EventQueue> {
        let vars = self.vars();
        self.events
            .iter()
            .flat_map(|e| &e.queues)
            .filter_map(|q| {
                let url = crate::syntax::template::substitute(q, &vars, &mut |_| {})
                    .unwrap_or_else(|| q.clone());
                EventQueue::parse(&url).ok()
            })
            .collect()
    }

    /// `assumeRoleArn` with `{AWS_PARTITION}` and `{AWS_ACCOUNT}` filled in; `None` when unset
    /// or when it uses another placeholder.
    pub fn resolved_assume_role_arn(&self) -> Option<String> {
        let arn = self.assume_role_arn.as_ref()?;
        let mut missing = false;
        let out =
            crate::syntax::template::substitute(arn, &self.builtins(), &mut |_| missing = true);
        (!missing).then(|| out.unwrap_or_else(|| arn.clone()))
    }

    /// Every placeholder value: the built-ins and the params. Param values may use the
    /// built-ins themselves (`arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/x`).
    pub fn vars(&self) -> Vars {
        let builtins = self.builtins();
        let mut v = builtins.clone();
        for (k, val) in &self.params {
            let resolved = crate::syntax::template::substitute(val, &builtins, &mut |_| {})
                .unwrap_or_else(|| val.clone());
            v.insert(k.clone(), resolved);
        }
        v
    }

    fn builtins(&self) -> Vars {
        let mut v = Vars::new();
        v.insert("AWS_PARTITION".into(), self.partition.clone());
        v.insert("AWS_REGION".into(), self.region.clone());
        v.insert("AWS_ACCOUNT".into(), self.account.clone());
        v
    }
}

/// Whether `s` is UPPER_SNAKE_CASE starting with a letter.
pub fn is_placeholder_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `arn:PARTITION:iam::ACCOUNT:role/[path/]NAME`.
fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && PARTITIONS.contains(&parts[1])
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("role/")
            .and_then(|r| r.rsplit('/').next())
            .is_some_and(|n| !n.is_empty() && n.chars().all(super::common::is_iam_name_char))
}

/// `xx-name-N` or `xx-name-name-N` (e.g. us-gov-west-1, eu-central-1).
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

#[cfg(test)]
mod ignore_tests {
    use super::*;

    #[test]
    fn names_and_tags_match() {
        let r = IgnoreRule {
            name: Some("MLSpace-project-*".into()),
            tags: Tags::new(),
        };
        assert!(r.matches("MLSpace-project-demo", None));
        assert!(!r.matches("mlspace-app-policy", None));
        let t = IgnoreRule {
            name: None,
            tags: [("dynamic-user-role".to_string(), "true".to_string())].into(),
        };
        assert!(t.matches(
            "MLSpace-x-1",
            Some(&[("dynamic-user-role".to_string(), "true".to_string())].into())
        ));
        assert!(!t.matches("MLSpace-x-1", None));
        assert!(!IgnoreRule {
            name: None,
            tags: Tags::new()
        }
        .matches("x", None));
        assert!(IgnoreRule {
            name: Some("a?c".into()),
            tags: Tags::new()
        }
        .matches("abc", None));
    }
}

#[cfg(test)]
mod events_tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::syntax::diag::Diagnostics;
    use crate::syntax::yaml::parse_documents;

    /// The diagnostics of an Environment document, one per line, as `validate` prints them.
    fn check(yaml: &str) -> Vec<String> {
        let file: Arc<Path> = Arc::from(Path::new("env.yaml"));
        let doc = parse_documents(&file, yaml).unwrap().remove(0);
        let spec: EnvironmentSpec = serde_json::from_value(doc.value["spec"].clone()).unwrap();
        let mut diags = Diagnostics::default();
        spec.validate(&mut DocCx {
            map: &doc.map,
            file: &file,
            diags: &mut diags,
        });
        diags.sorted().iter().map(|d| d.to_string()).collect()
    }

    fn env(region: &str, queues: &str) -> String {
        format!("spec:\n  region: {region}\n  account: \"123456789012\"\n  params: {{EVENTS_QUEUE: mlspace-gitops-events}}\n  events:\n    queues:\n{queues}")
    }

    #[test]
    fn queue_urls_are_taken_apart() {
        let q = EventQueue::parse(
            "https://sqs.eu-west-1.amazonaws.com/123456789012/mlspace-gitops-events",
        )
        .unwrap();
        assert_eq!(q.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            (q.account.as_str(), q.name.as_str()),
            ("123456789012", "mlspace-gitops-events")
        );
        for (url, region) in [
            (
                "https://queue.amazonaws.com/123456789012/q",
                Some("us-east-1"),
            ),
            (
                "https://us-west-2.queue.amazonaws.com/123456789012/q",
                Some("us-west-2"),
            ),
            (
                "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q",
                Some("cn-north-1"),
            ),
            (
                "https://vpce-0a1b.sqs.us-east-2.vpce.amazonaws.com/123456789012/q.fifo",
                Some("us-east-2"),
            ),
            ("http://127.0.0.1:4566/123456789012/q", None),
            ("http://[::1]:4566/123456789012/q", None),
            ("https://proxy.example.com/123456789012/q", None),
        ] {
            assert_eq!(
                EventQueue::parse(url).unwrap().region.as_deref(),
                region,
                "{url}"
            );
        }
        for (url, why) in [
            ("sqs.us-east-1.amazonaws.com/123456789012/q", "https://"),
            (
                "http://sqs.us-east-1.amazonaws.com/123456789012/q",
                "loopback",
            ),
            ("https://sqs.us-east-1.amazonaws.com/q", "path"),
            ("https://sqs.us-east-1.amazonaws.com/12345/q", "12-digit"),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/a/b",
                "queue name",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/",
                "queue name",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/.fifo",
                "queue name",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com:x/123456789012/q",
                "port",
            ),
            (
                "https://user:pw@sqs.us-east-1.amazonaws.com/123456789012/q",
                "credentials",
            ),
        ] {
            let e = EventQueue::parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        let long = format!(
            "https://sqs.us-east-1.amazonaws.com/123456789012/{}",
            "q".repeat(81)
        );
        assert!(EventQueue::parse(&long).is_err());
    }

    #[test]
    fn queues_with_placeholders_one_per_region_in_the_account() {
        let ok = env(
            "eu-west-1",
            "      - https://sqs.us-east-1.amazonaws.com/{AWS_ACCOUNT}/{EVENTS_QUEUE}\n      - https://sqs.{AWS_REGION}.amazonaws.com/{AWS_ACCOUNT}/{EVENTS_QUEUE}\n",
        );
        assert_eq!(check(&ok), Vec::<String>::new());
        let file: Arc<Path> = Arc::from(Path::new("env.yaml"));
        let doc = parse_documents(&file, &ok).unwrap().remove(0);
        let spec: EnvironmentSpec = serde_json::from_value(doc.value["spec"].clone()).unwrap();
        let urls: Vec<String> = spec.event_queues().into_iter().map(|q| q.url).collect();
        assert_eq!(
            urls,
            [
                "https://sqs.us-east-1.amazonaws.com/123456789012/mlspace-gitops-events",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/mlspace-gitops-events"
            ]
        );

        let bad = check(&env(
            "eu-west-1",
            "      - https://sqs.eu-west-1.amazonaws.com/{AWS_ACCOUNT}/a\n      - https://sqs.eu-west-1.amazonaws.com/{AWS_ACCOUNT}/b\n      - https://sqs.eu-west-1.amazonaws.com/210987654321/c\n      - https://sqs.eu-west-1.amazonaws.com/{AWS_ACCOUNT}/{NOPE}\n      - not-a-url\n",
        ));
        let text = bad.join("\n");
        assert!(text.contains("env.yaml:8:9: error: spec.events.queues[1]: a second queue in region eu-west-1 (the first is queues[0])"), "{text}");
        assert!(text.contains("env.yaml:9:9: error: spec.events.queues[2]: the queue is in account 210987654321, not the Environment's account 123456789012"), "{text}");
        assert!(
            text.contains(
                "env.yaml:10:9: error: spec.events.queues[3]: unknown placeholder `{NOPE}`"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "env.yaml:11:9: error: spec.events.queues[4]: `not-a-url` is not an SQS queue URL"
            ),
            "{text}"
        );
        assert!(text.contains("warning: spec.events.queues: no queue in us-east-1, where IAM sends its CloudTrail events"), "{text}");

        let empty = check(
            "spec:\n  region: us-east-1\n  account: \"123456789012\"\n  events: {queues: []}\n",
        );
        assert!(
            empty[0].contains("spec.events.queues: name at least one queue URL"),
            "{empty:?}"
        );
        // An emulator's queue (no region in its host) is in the Environment's region.
        let local = check(&env(
            "us-east-1",
            "      - http://127.0.0.1:4566/123456789012/q\n",
        ));
        assert_eq!(local, Vec::<String>::new());
    }
}
