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
