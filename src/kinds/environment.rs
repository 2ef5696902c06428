//! `Environment`: the account, region and partition a manifest directory describes,
//! the placeholder values and the default tags.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{check_tags, Tags};
use crate::manifest::diag::DocCx;
use crate::manifest::template::Vars;

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
            crate::manifest::template::substitute(val, &builtins, &mut |name| {
                cx.error(&p, format_args!("param values may only use {{AWS_PARTITION}}, {{AWS_REGION}} and {{AWS_ACCOUNT}}, not `{{{name}}}`"))
            });
        }
        check_tags(cx, "/spec/tags", &self.tags, &Tags::new());
    }

    /// Every placeholder value: the built-ins and the params. Param values may use the
    /// built-ins themselves (`arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/x`).
    pub fn vars(&self) -> Vars {
        let builtins = self.builtins();
        let mut v = builtins.clone();
        for (k, val) in &self.params {
            let resolved = crate::manifest::template::substitute(val, &builtins, &mut |_| {})
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

/// `xx-name-N` or `xx-name-name-N` (e.g. us-gov-west-1, eu-central-1).
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}
