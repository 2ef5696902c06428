//! The analyses on the repository's bundled manifests (real MLSpace policies): what lint
//! reports there (each finding investigated, see docs/lint.md), the escalation paths of
//! the bundled roles, and access-delta equivalences on the bundled documents.

mod common;

use mlspace_policy::{
    access_delta, access_delta_set, attach_delta, detach_delta, escalation_paths, lint,
    plan_access_line, PolicyKind,
};
use serde_json::Value;

fn kind_of(file: &str) -> PolicyKind {
    if file.contains("boundary") {
        PolicyKind::Boundary
    } else {
        PolicyKind::Identity
    }
}

#[test]
fn lint_of_bundled_policies_reports_only_the_known_findings() {
    let mut found: Vec<String> = Vec::new();
    for (file, doc) in common::bundled_policies() {
        for f in lint(&doc, kind_of(&file)) {
            found.push(format!("{file} {} {}", f.check, f.pointer));
        }
    }
    assert_eq!(
        found,
        [
            // Left empty on purpose: MLSpace fills the instance types at runtime.
            "MLSpace-endpoint-instance-constraint.json empty-condition-values /Statement/0/Condition/ForAnyValue:StringEquals/sagemaker:InstanceTypes",
            "MLSpace-job-instance-constraint.json empty-condition-values /Statement/0/Condition/ForAnyValue:StringEquals/sagemaker:InstanceTypes",
            "MLSpace-job-instance-constraint.json empty-condition-values /Statement/1/Condition/ForAnyValue:StringEquals/sagemaker:InstanceTypes",
            // A statement another one of the same policy already grants, as MLSpace v1.6.10
            // writes it (its CDK source adds both; CloudFormation keeps both).
            "mlspace-app-policy.json redundant-statement /Statement/18",
            // Upstream: MLSpace v1.6.10 scopes its bedrock actions to SageMaker ARNs, so the
            // statement grants nothing (kept as MLSpace runs it; docs/mlspace-choices.md).
            "mlspace-notebook-policy.json resource-service-mismatch /Statement/10/Resource",
            "mlspace-project-user-permission-boundary.json resource-service-mismatch /Statement/15/Resource",
            "mlspace-project-user-permission-boundary.json redundant-statement /Statement/16",
            "mlspace-system-policy.json redundant-statement /Statement/18",
        ]
    );
}

#[test]
fn lint_of_bundled_trust_and_bucket_policies_is_clean() {
    for role in common::bundled_roles() {
        assert_eq!(
            lint(&role.trust, PolicyKind::Trust),
            vec![],
            "{}",
            role.name
        );
    }
    // Every bundled bucket has a policy (at least the TLS-only Deny).
    let buckets = common::bundled_bucket_policies();
    assert_eq!(buckets.len(), 5);
    for (name, doc) in buckets {
        assert_eq!(lint(&doc, PolicyKind::Resource), vec![], "{name}");
    }
}

fn role_paths(role: &str, boundary: Option<&Value>) -> Vec<&'static str> {
    let roles = common::bundled_roles();
    let role = roles.iter().find(|r| r.name == role).unwrap();
    let docs: Vec<Value> = role
        .managed
        .iter()
        .filter_map(|m| common::bundled_policy(m))
        .collect();
    let refs: Vec<&Value> = docs.iter().collect();
    escalation_paths(&refs, boundary)
        .into_iter()
        .map(|e| e.check)
        .collect()
}

#[test]
fn escalation_paths_of_bundled_roles() {
    assert_eq!(
        role_paths("mlspace-app-role", None),
        [
            "privesc-create-policy-version",
            "privesc-attach-role-policy",
            "privesc-put-role-policy",
            "privesc-passrole-sagemaker",
            "privesc-sagemaker-notebook-url",
            "privesc-passrole-emr"
        ]
    );
    // MLSpace v1.6.10 builds the system role's policy as the app role's.
    assert_eq!(
        role_paths("mlspace-system-role", None),
        role_paths("mlspace-app-role", None)
    );
    assert!(role_paths("mlspace-notebook-role", None).is_empty());
    // The project-user boundary caps the app role's permissions to the SageMaker path.
    let boundary = common::bundled_policy("mlspace-project-user-permission-boundary").unwrap();
    assert_eq!(
        role_paths("mlspace-app-role", Some(&boundary)),
        ["privesc-passrole-sagemaker"]
    );
}

#[test]
fn bundled_documents_rewritten_are_no_delta() {
    for (file, doc) in common::bundled_policies() {
        let other = common::rewrite(&doc);
        assert_ne!(doc, other);
        let d = access_delta(Some(&doc), Some(&other));
        assert!(d.is_empty(), "{file}:\n{d}");
        let d = access_delta(Some(&other), Some(&doc));
        assert!(d.is_empty(), "{file} (reverse):\n{d}");
    }
}

#[test]
fn creating_each_bundled_policy_widens_access() {
    for (file, doc) in common::bundled_policies() {
        let d = access_delta(None, Some(&doc));
        let allows = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["Effect"] == "Allow");
        assert_eq!(d.widens(), allows, "{file}");
        assert!(d.removed.is_empty());
    }
}

#[test]
fn attaching_a_policy_to_a_bundled_role() {
    let app = common::bundled_policy("mlspace-app-policy").unwrap();
    let notebook = common::bundled_policy("mlspace-notebook-policy").unwrap();
    let system = common::bundled_policy("mlspace-system-policy").unwrap();
    // What the system policy adds to the app and notebook policies: the system policy is
    // the app policy with the system role's name (MLSpace v1.6.10), so only passing the
    // system role itself.
    let d = attach_delta(&system, &[&app, &notebook]);
    let lines: Vec<String> = d.added.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        ["Allow iam:PassRole on arn:aws:iam::123456789012:role/mlspace-system-role"]
    );
    assert!(d.removed.is_empty());
    assert!(d.widens());
    // Detaching the notebook policy removes its Denies too: that widens access.
    let d = detach_delta(&notebook, &[&app]);
    assert!(d.widens());
    assert!(d.removed.iter().any(|g| g
        .to_string()
        .starts_with("Deny sagemaker:CreateTransformJob")));
    let d = detach_delta(&system, &[&app]);
    assert!(!d.widens());
    assert!(!d.removed.is_empty());
    // Whole sets: the same documents in another order and written differently.
    let before = [&app, &notebook];
    let (a2, n2) = (common::rewrite(&app), common::rewrite(&notebook));
    let after = [&n2, &a2];
    assert!(access_delta_set(&before, &after).is_empty());
    assert_eq!(
        plan_access_line([&access_delta_set(&before, &after), &d]),
        format!(
            "Access: this plan does not widen access, it only narrows it (0 allow(s) added, 0 deny(s) removed; {} allow(s) removed, 0 deny(s) added)",
            d.removed.len()
        )
    );
}
