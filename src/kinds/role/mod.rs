//! `Role`: an IAM role with its trust policy, permissions, boundary and instance profile.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    check_iam_description, check_iam_name, check_iam_path, check_policy, check_policy_size,
    check_tags, Tags,
};
use super::core::{DocKind, Reference, ResolveCx};
use super::environment::EnvironmentView;
use super::Kind;
use crate::syntax::diag::DocCx;
use crate::syntax::yaml::escape_segment;

/// IAM quota: trust policy size, characters without white space (the default; raisable to 4,096).
pub const MAX_TRUST_POLICY_LEN: usize = 2048;
/// IAM quota: all inline policies of a role together.
pub const MAX_INLINE_POLICIES_LEN: usize = 10240;
/// IAM quota: managed policies attached to one role (the default; raisable to 20).
pub const MAX_ATTACHED_POLICIES: usize = 10;

/// Spec of the `Role` kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleSpec {
    /// Trust policy: who may assume the role. Exactly one of `assumeRolePolicy` and `assumeRolePolicyFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_policy: Option<serde_json::Value>,
    /// Path of a JSON file with the trust policy, relative to this manifest file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_policy_file: Option<String>,
    /// Managed policies to attach: the name of a ManagedPolicy in this directory, or a full
    /// policy ARN (e.g. an AWS managed policy). Nothing else stays attached.
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// Inline policies: name → document. Nothing else stays inline.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, serde_json::Value>,
    /// Permissions boundary: a ManagedPolicy name in this directory or a policy ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    /// IAM path, `/` by default. IAM cannot change it; a change is reported, not applied.
    #[serde(default = "super::common::default_iam_path")]
    pub path: String,
    /// Description of the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Maximum session duration in seconds, 3600 to 43200 (IAM's default is 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<u32>,
    /// Also keep an instance profile of the same name holding this role (for EC2).
    #[serde(default)]
    pub instance_profile: bool,
    /// Tags of this role (added to the Environment's tags).
    #[serde(default)]
    pub tags: Tags,
}

impl RoleSpec {
    /// Check names, documents and quotas that do not depend on other documents.
    pub fn validate(&self, name: &str, cx: &mut DocCx, env_tags: &Tags) {
        check_iam_name(cx, "/metadata/name", "role", name, 64);
        check_iam_path(cx, "/spec/path", &self.path);
        if let Some(d) = &self.description {
            check_iam_description(cx, "/spec/description", d);
        }
        match &self.assume_role_policy {
            Some(doc) => {
                check_policy(
                    cx,
                    "/spec/assumeRolePolicy",
                    doc,
                    mlspace_policy::PolicyKind::Trust,
                );
                check_policy_size(
                    cx,
                    "/spec/assumeRolePolicy",
                    "trust policy",
                    mlspace_policy::quota_len(doc),
                    MAX_TRUST_POLICY_LEN,
                );
            }
            None if self.assume_role_policy_file.is_none() => cx.error(
                "/spec",
                "one of `assumeRolePolicy` or `assumeRolePolicyFile` is required",
            ),
            None => {}
        }
        let mut inline_total = 0;
        for (pname, doc) in &self.inline_policies {
            let p = format!("/spec/inlinePolicies/{}", escape_segment(pname));
            check_iam_name(cx, &p, "inline policy", pname, 128);
            check_policy(cx, &p, doc, mlspace_policy::PolicyKind::Identity);
            inline_total += mlspace_policy::quota_len(doc);
        }
        check_policy_size(
            cx,
            "/spec/inlinePolicies",
            "the role's inline policies together",
            inline_total,
            MAX_INLINE_POLICIES_LEN,
        );
        if self.managed_policies.len() > MAX_ATTACHED_POLICIES {
            cx.error(
                "/spec/managedPolicies",
                format_args!(
                    "{} managed policies; IAM attaches at most {MAX_ATTACHED_POLICIES} to a role",
                    self.managed_policies.len()
                ),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.managed_policies.iter().enumerate() {
            if !seen.insert(p) {
                cx.error(
                    &format!("/spec/managedPolicies/{i}"),
                    format_args!("`{p}` is listed twice"),
                );
            }
        }
        let arns = self
            .managed_policies
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("/spec/managedPolicies/{i}"), p))
            .chain(
                self.permissions_boundary
                    .iter()
                    .map(|b| ("/spec/permissionsBoundary".to_string(), b)),
            );
        for (ptr, r) in arns {
            if is_policy_arn(r) && !is_iam_policy_arn(r) {
                cx.error(&ptr, format_args!("`{r}` is not an IAM policy ARN (arn:PARTITION:iam::ACCOUNT|aws:policy/PATH/NAME)"));
            }
        }
        if let Some(s) = self.max_session_duration {
            if !(3600..=43200).contains(&s) {
                cx.error(
                    "/spec/maxSessionDuration",
                    format_args!("must be between 3600 and 43200 seconds, got {s}"),
                );
            }
        }
        if self.instance_profile {
            check_iam_name(cx, "/metadata/name", "instance profile", name, 128);
        }
        check_tags(cx, "/spec/tags", &self.tags, env_tags);
    }
}

/// Whether a policy reference is an ARN rather than a ManagedPolicy name.
pub fn is_policy_arn(s: &str) -> bool {
    s.starts_with("arn:")
}

/// `arn:PARTITION:iam::ACCOUNT|aws:policy/...`.
fn is_iam_policy_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws"
            || (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit())))
        && parts[5].starts_with("policy/")
        && parts[5].len() > "policy/".len()
}

impl DocKind for Role {
    const KIND: Kind = Kind::Role;
    type Spec = RoleSpec;
    const FILE_FIELDS: &'static [(&'static str, &'static str)] =
        &[("assumeRolePolicyFile", "assumeRolePolicy")];

    fn validate(name: &str, spec: &RoleSpec, cx: &mut DocCx, env: &EnvironmentView) {
        spec.validate(name, cx, &env.tags);
    }

    /// ManagedPolicies named (not given by ARN) as attachments or boundary.
    fn references(spec: &RoleSpec) -> Vec<Reference> {
        let named = spec
            .managed_policies
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("/spec/managedPolicies/{i}"), p))
            .chain(
                spec.permissions_boundary
                    .iter()
                    .map(|b| ("/spec/permissionsBoundary".to_string(), b)),
            );
        named
            .filter(|(_, p)| !is_policy_arn(p))
            .map(|(pointer, p)| Reference {
                pointer,
                kind: Kind::ManagedPolicy,
                name: p.clone(),
                hint: Some(" (use a full ARN for a policy managed elsewhere)"),
            })
            .collect()
    }

    /// Policy names become the ARNs of the ManagedPolicies they name; a name and the ARN of
    /// the same policy are one attachment.
    fn resolve(_: &str, spec: &mut RoleSpec, cx: &mut ResolveCx) {
        let to_arn = |s: &String| {
            cx.arn_of(Kind::ManagedPolicy, s)
                .map(str::to_string)
                .unwrap_or_else(|| s.clone())
        };
        spec.managed_policies = spec.managed_policies.iter().map(to_arn).collect();
        spec.permissions_boundary = spec.permissions_boundary.as_ref().map(to_arn);
        spec.managed_policies.sort();
        for w in spec.managed_policies.windows(2) {
            if w[0] == w[1] {
                cx.doc.error(
                    "/spec/managedPolicies",
                    format_args!("policy {} is listed twice (by name and by ARN)", w[0]),
                );
            }
        }
        spec.managed_policies.dedup();
    }

    fn tags_mut(spec: &mut RoleSpec) -> Option<&mut Tags> {
        Some(&mut spec.tags)
    }
}

#[cfg(feature = "runtime")]
pub mod aws;
pub mod diff;
pub mod import;
pub use diff::{Op, Role};
