//! `ManagedPolicy`: a customer managed IAM policy.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    check_iam_description, check_iam_name, check_iam_path, check_policy, check_tags, Tags,
};
use crate::manifest::diag::DocCx;

/// IAM quota: managed policy document size, characters without white space.
pub const MAX_MANAGED_POLICY_LEN: usize = 6144;

/// Spec of the `ManagedPolicy` kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManagedPolicySpec {
    /// The policy document, inline as YAML or JSON. Exactly one of `document` and `documentFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<serde_json::Value>,
    /// Path of a JSON file with the document, relative to this manifest file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_file: Option<String>,
    /// IAM path, `/` by default. Changing it replaces the policy.
    #[serde(default = "default_path")]
    pub path: String,
    /// Description (IAM cannot change it after creation; a change replaces the policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags of this policy (added to the Environment's tags).
    #[serde(default)]
    pub tags: Tags,
}

pub(crate) fn default_path() -> String {
    "/".into()
}

impl ManagedPolicySpec {
    /// Check names and structure; the size quota is checked after EcrAccess merging.
    pub fn validate(&self, name: &str, cx: &mut DocCx, env_tags: &Tags) {
        check_iam_name(cx, "/metadata/name", "policy", name, 128);
        check_iam_path(cx, "/spec/path", &self.path);
        if let Some(d) = &self.description {
            check_iam_description(cx, "/spec/description", d);
        }
        match &self.document {
            Some(doc) => check_policy(
                cx,
                "/spec/document",
                doc,
                mlspace_policy::PolicyKind::Identity,
            ),
            // With a documentFile that could not be read, the loader already said why.
            None if self.document_file.is_none() => {
                cx.error("/spec", "one of `document` or `documentFile` is required")
            }
            None => {}
        }
        check_tags(cx, "/spec/tags", &self.tags, env_tags);
    }

    /// The ARN the policy has in `account`.
    pub fn arn(&self, partition: &str, account: &str, name: &str) -> String {
        format!("arn:{partition}:iam::{account}:policy{}{name}", self.path)
    }
}

pub mod aws;
pub mod diff;
pub mod import;
pub use diff::{ManagedPolicy, Op};
