//! Role: the manifest spec that describes an existing role (the `import` command).

use super::diff::{Role, RoleObserved, DEFAULT_MAX_SESSION};
use super::RoleSpec;
use crate::kinds::core::{own_tags, Import, PlanCx};
use crate::kinds::Kind;

/// A policy ARN as a manifest names it: the ManagedPolicy's name when the manifests (or
/// the same import) hold that policy, else the ARN.
fn policy_ref(arn: &str, cx: &PlanCx) -> String {
    cx.named_by_arn(Kind::ManagedPolicy, arn)
        .unwrap_or(arn)
        .to_string()
}

/// The spec of role `name` as it is: trust policy, attached and inline policies (those
/// the Environment ignores left out, as the plan leaves them alone), boundary, path,
/// description, a session duration other than IAM's default, its instance profile and its
/// tags without the ownership tag.
pub fn spec(name: &str, o: &RoleObserved, cx: &PlanCx) -> RoleSpec {
    RoleSpec {
        assume_role_policy: Some(o.assume_role_policy.clone()),
        assume_role_policy_file: None,
        managed_policies: o
            .managed_policies
            .iter()
            .filter(|a| !cx.ignored_arn(a))
            .map(|a| policy_ref(a, cx))
            .collect(),
        inline_policies: o
            .inline_policies
            .iter()
            .filter(|(p, _)| !cx.ignored(p, None))
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect(),
        permissions_boundary: o.permissions_boundary.as_deref().map(|a| policy_ref(a, cx)),
        path: o.path.clone(),
        description: o.description.clone().filter(|d| !d.is_empty()),
        max_session_duration: o.max_session_duration.filter(|s| *s != DEFAULT_MAX_SESSION),
        instance_profile: o.instance_profiles.contains(name),
        tags: own_tags(&o.tags),
    }
}

impl Import for Role {
    fn import(name: &str, o: &RoleObserved, cx: &PlanCx) -> RoleSpec {
        spec(name, o, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::environment::IgnoreRule;
    use serde_json::json;

    #[test]
    fn known_policies_by_name_ignored_ones_left_out_defaults_dropped() {
        let mut cx = PlanCx::default();
        cx.declare(
            Kind::ManagedPolicy,
            "mine",
            Some("arn:aws:iam::123456789012:policy/mine".into()),
        );
        cx.ignore.push(IgnoreRule {
            name: Some("MLSpace-app-denied-services".into()),
            tags: Default::default(),
        });
        let o = RoleObserved {
            arn: "arn:aws:iam::123456789012:role/r".into(),
            path: "/".into(),
            assume_role_policy: json!({"Version": "2012-10-17", "Statement": []}),
            description: None,
            max_session_duration: Some(3600),
            inline_policies: [("inline".to_string(), json!({"Statement": []}))].into(),
            managed_policies: [
                "arn:aws:iam::123456789012:policy/mine".to_string(),
                "arn:aws:iam::123456789012:policy/MLSpace-app-denied-services".to_string(),
                "arn:aws:iam::aws:policy/ReadOnlyAccess".to_string(),
            ]
            .into(),
            permissions_boundary: None,
            instance_profiles: ["r".to_string()].into(),
            tags: Default::default(),
        };
        let s = spec("r", &o, &cx);
        assert_eq!(
            s.managed_policies,
            ["mine", "arn:aws:iam::aws:policy/ReadOnlyAccess"]
        );
        assert_eq!(s.max_session_duration, None);
        assert!(s.instance_profile);
        assert_eq!(s.inline_policies.len(), 1);
    }
}
