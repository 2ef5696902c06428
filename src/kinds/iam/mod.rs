//! What the IAM kinds (ManagedPolicy, Role, ServiceLinkedRole) share, in one home: the
//! pure diff of policy documents and tags here, and with the `runtime` feature the account
//! snapshot that Role and ManagedPolicy read together ([`snapshot`]) and the SDK helpers
//! every IAM kind uses ([`sdk`]). Neither kind imports the other.

use serde_json::{json, Value};

use super::common::Tags;
use super::core::FieldChange;

#[cfg(feature = "runtime")]
pub mod sdk;
#[cfg(feature = "runtime")]
pub mod snapshot;

/// The change of a policy document, or `None` when IAM evaluates both the same. Shows
/// the statements removed (`old`) and added (`new`); when only `Version`/`Id` differ,
/// the whole documents.
pub fn document_change(field: &str, desired: &Value, actual: &Value) -> Option<FieldChange> {
    if mlspace_policy::semantically_equal(desired, actual) {
        return None;
    }
    let d = mlspace_policy::statement_diff(desired, actual);
    if d.is_empty() {
        return Some(FieldChange::new(
            field,
            Some(actual.clone()),
            Some(desired.clone()),
        ));
    }
    Some(FieldChange::new(
        field,
        Some(Value::Array(d.removed)),
        Some(Value::Array(d.added)),
    ))
}

/// Tag differences: the field changes, the tags to set and the keys to remove. Every tag
/// not desired is drift, except `aws:` tags, which nobody can remove.
pub fn tag_changes(desired: &Tags, actual: &Tags) -> (Vec<FieldChange>, Tags, Vec<String>) {
    let mut fields = Vec::new();
    let mut set = Tags::new();
    let mut remove = Vec::new();
    for (k, v) in desired {
        if actual.get(k) != Some(v) {
            fields.push(FieldChange::new(
                format!("spec.tags.{k}"),
                actual.get(k).map(|a| json!(a)),
                Some(json!(v)),
            ));
            set.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in actual {
        if !desired.contains_key(k) && !k.to_ascii_lowercase().starts_with("aws:") {
            fields.push(FieldChange::new(
                format!("spec.tags.{k}"),
                Some(json!(v)),
                None,
            ));
            remove.push(k.clone());
        }
    }
    fields.sort_by(|a, b| a.field.cmp(&b.field));
    (fields, set, remove)
}

/// `+` lines for the tags of a new resource.
pub fn tag_fields(tags: &Tags) -> Vec<FieldChange> {
    tags.iter()
        .map(|(k, v)| FieldChange::new(format!("spec.tags.{k}"), None, Some(json!(v))))
        .collect()
}
