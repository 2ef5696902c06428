//! `ManagedPolicy`: a customer managed IAM policy.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{
    check_iam_description, check_iam_name, check_iam_path, check_policy, check_tags, Tags,
};
use super::core::{DocKind, ResolveCx};
use super::environment::EnvironmentView;
use super::Kind;
use crate::syntax::diag::DocCx;

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
    #[serde(default = "super::common::default_iam_path")]
    pub path: String,
    /// Description (IAM cannot change it after creation; a change replaces the policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags of this policy (added to the Environment's tags).
    #[serde(default)]
    pub tags: Tags,
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

impl DocKind for ManagedPolicy {
    const KIND: Kind = Kind::ManagedPolicy;
    type Spec = ManagedPolicySpec;
    const FILE_FIELDS: &'static [(&'static str, &'static str)] = &[("documentFile", "document")];

    fn validate(name: &str, spec: &ManagedPolicySpec, cx: &mut DocCx, env: &EnvironmentView) {
        spec.validate(name, cx, &env.tags);
    }

    /// Statements granted by other documents (EcrAccess) join the document; then the
    /// size quota is checked on the result.
    fn resolve(name: &str, spec: &mut ManagedPolicySpec, cx: &mut ResolveCx) {
        let received = cx.received;
        if !received.is_empty() && cx.ignore_fields.iter().any(|f| f == "document") {
            for r in received {
                cx.warn_at(
                    r.origin.clone(),
                    format!(
                        "{}: ManagedPolicy `{name}` ignores its document (metadata.ignoreFields), so these statements reach AWS only when it is created",
                        crate::syntax::diag::field_path(&r.pointer),
                    ),
                );
            }
        }
        let Some(doc) = spec.document.as_mut() else {
            return;
        };
        if !received.is_empty() {
            let mut stmts = match doc.get("Statement").cloned() {
                Some(Value::Array(a)) => a,
                Some(one) => vec![one],
                None => vec![],
            };
            for r in received {
                for s in &r.statements {
                    merge_statement(&mut stmts, s);
                }
            }
            doc["Statement"] = Value::Array(stmts);
        }
        let len = mlspace_policy::quota_len(doc);
        if len > MAX_MANAGED_POLICY_LEN {
            let from = if received.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = received.iter().map(|r| r.from.1.as_str()).collect();
                format!(" (with the statements of EcrAccess {})", names.join(", "))
            };
            cx.doc.error(
                "/spec/document",
                format_args!(
                    "managed policy is {len} characters without white space{from}; IAM allows {MAX_MANAGED_POLICY_LEN}"
                ),
            );
        }
    }

    fn tags_mut(spec: &mut ManagedPolicySpec) -> Option<&mut Tags> {
        Some(&mut spec.tags)
    }
}

/// Add an Allow statement to a policy. When an unconditional Allow statement on the same
/// resources exists, its action list grows instead: IAM evaluates both forms the same, and
/// the 6,144-character quota leaves MLSpace's boundary no room for a statement's overhead.
pub fn merge_statement(stmts: &mut Vec<Value>, add: &Value) {
    let as_set = |v: Option<&Value>| -> Option<std::collections::BTreeSet<String>> {
        match v? {
            Value::String(s) => Some([s.clone()].into()),
            Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
            _ => None,
        }
    };
    let target = as_set(add.get("Resource"));
    let host = stmts.iter_mut().find(|s| {
        let Some(o) = s.as_object() else { return false };
        o.get("Effect").and_then(Value::as_str) == Some("Allow")
            && o.keys()
                .all(|k| ["Sid", "Effect", "Action", "Resource"].contains(&k.as_str()))
            && target.is_some()
            && as_set(o.get("Resource")) == target
            && as_set(o.get("Action")).is_some()
    });
    let new_actions = as_set(add.get("Action")).unwrap_or_default();
    match host {
        Some(h) => {
            let mut actions: Vec<Value> = match h.get("Action") {
                Some(Value::Array(a)) => a.clone(),
                Some(one) => vec![one.clone()],
                None => vec![],
            };
            let have: std::collections::BTreeSet<String> = actions
                .iter()
                .filter_map(|a| a.as_str().map(str::to_ascii_lowercase))
                .collect();
            for a in new_actions {
                if !have.contains(&a.to_ascii_lowercase()) {
                    actions.push(Value::String(a));
                }
            }
            h["Action"] = Value::Array(actions);
        }
        None => {
            if !stmts.contains(add) {
                stmts.push(add.clone());
            }
        }
    }
}

#[cfg(feature = "runtime")]
pub mod aws;
pub mod diff;
pub mod import;
pub use diff::{ManagedPolicy, Op};
