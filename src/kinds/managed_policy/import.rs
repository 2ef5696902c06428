//! ManagedPolicy: the manifest spec that describes an existing policy (the `import` command).

use super::diff::{ManagedPolicy, ManagedPolicyObserved};
use super::ManagedPolicySpec;
use crate::kinds::core::{own_tags, Import, PlanCx};

/// The spec of `o` as it is: its default version's document inline, its path, its
/// description when it has one, and its tags without the ownership tag.
pub fn spec(o: &ManagedPolicyObserved) -> ManagedPolicySpec {
    ManagedPolicySpec {
        document: Some(o.document.clone()),
        document_file: None,
        path: o.path.clone(),
        description: o.description.clone().filter(|d| !d.is_empty()),
        tags: own_tags(&o.tags),
    }
}

impl Import for ManagedPolicy {
    fn import(_: &str, o: &ManagedPolicyObserved, _: &PlanCx) -> ManagedPolicySpec {
        spec(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_document_is_inline_and_the_ownership_tag_left_out() {
        let o = ManagedPolicyObserved {
            arn: "arn:aws:iam::123456789012:policy/p".into(),
            path: "/".into(),
            description: Some(String::new()),
            document: json!({"Version": "2012-10-17", "Statement": []}),
            default_version: "v1".into(),
            versions: vec!["v1".into()],
            tags: [
                ("team".to_string(), "ml".to_string()),
                (
                    crate::kinds::common::OWNERSHIP_TAG.to_string(),
                    crate::kinds::common::OWNERSHIP_VALUE.to_string(),
                ),
            ]
            .into(),
        };
        let s = spec(&o);
        assert_eq!(s.document, Some(o.document.clone()));
        assert_eq!(s.description, None);
        assert_eq!(s.tags.keys().collect::<Vec<_>>(), ["team"]);
    }
}
