use super::*;
use crate::manifest::{compile_text, DesiredState};

const ENV: &str = "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: t}\nspec: {region: us-east-1, account: \"123456789012\"}\n";

fn desired(docs: &str) -> DesiredState {
    compile_text(&format!("{ENV}---\n{docs}")).desired
}

fn side(d: &DesiredState) -> Side<'_> {
    let at = Place {
        partition: &d.environment.partition,
        account: &d.environment.account,
        region: &d.environment.region,
    };
    Side::of_specs(
        d.resources
            .iter()
            .map(|r| (r.kind, r.name.as_str(), &r.spec)),
        at,
    )
}

fn policy(name: &str, statements: &str) -> String {
    format!("apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: {name}}}\nspec:\n  document: {{Version: \"2012-10-17\", Statement: {statements}}}\n---\n")
}

fn role(name: &str, extra: &str) -> String {
    format!("apiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: {name}}}\nspec:\n  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Principal: {{Service: lambda.amazonaws.com}}, Action: \"sts:AssumeRole\"}}]}}\n{extra}---\n")
}

const LOGS: &str = "[{Effect: Allow, Action: \"logs:PutLogEvents\", Resource: \"*\"}]";

fn lines(changes: &[AccessChange]) -> Vec<String> {
    changes
        .iter()
        .map(|c| format!("{}: {}", c.subject, c.delta.to_string().trim_end()))
        .collect()
}

#[test]
fn the_issue_example_widens_and_names_both_grants() {
    let attach = role("sys", "  managedPolicies: [system]\n");
    let before = desired(&format!("{}{attach}", policy("system", LOGS)));
    let after = desired(&format!(
        "{}{attach}",
        policy(
            "system",
            "[{Effect: Allow, Action: \"logs:PutLogEvents\", Resource: \"*\"}, {Effect: Allow, Action: [\"iam:PassRole\", \"iam:CreatePolicyVersion\"], Resource: \"*\"}]"
        )
    ));
    let id = (Kind::ManagedPolicy, "system".to_string());
    let changes = resource_access(&id, &side(&before), &side(&after));
    assert_eq!(
        lines(&changes),
        ["policy document, used by Role sys: + Allow iam:CreatePolicyVersion on *\n+ Allow iam:PassRole on *"]
    );
    assert!(changes[0].widens);
    let s = AccessSummary::of(&changes);
    assert!(s.widens);
    assert_eq!(
        s.to_string(),
        "Access: WIDENS (2 grant(s) widen access, 0 narrow it)"
    );
    // The role did not change: its attachment is judged with the policy as it was.
    let role_id = (Kind::Role, "sys".to_string());
    assert!(resource_access(&role_id, &side(&before), &side(&after)).is_empty());
}

#[test]
fn equal_access_written_differently_is_no_delta() {
    let before = desired(&policy(
        "p",
        "[{Effect: Allow, Action: [\"s3:GetObject\", \"s3:PutObject\"], Resource: \"arn:aws:s3:::b/*\"}]",
    ));
    let after = desired(&policy(
        "p",
        "[{Effect: Allow, Action: \"s3:putobject\", Resource: [\"arn:aws:s3:::b/*\"]}, {Sid: Get, Effect: Allow, Action: [\"s3:GetObject\"], Resource: \"arn:aws:s3:::b/*\"}]",
    ));
    let id = (Kind::ManagedPolicy, "p".to_string());
    assert!(resource_access(&id, &side(&before), &side(&after)).is_empty());
}

#[test]
fn attaching_a_policy_whose_grants_the_role_has_adds_nothing() {
    let policies = format!("{}{}", policy("a", LOGS), policy("b", LOGS));
    let before = desired(&format!(
        "{policies}{}",
        role("r", "  managedPolicies: [a]\n")
    ));
    let after = desired(&format!(
        "{policies}{}",
        role("r", "  managedPolicies: [a, b]\n")
    ));
    let id = (Kind::Role, "r".to_string());
    assert!(resource_access(&id, &side(&before), &side(&after)).is_empty());
    // Detaching the only grant of it narrows.
    let none = desired(&format!("{policies}{}", role("r", "")));
    let changes = resource_access(&id, &side(&before), &side(&none));
    assert_eq!(
        lines(&changes),
        ["detach arn:aws:iam::123456789012:policy/a: - Allow logs:PutLogEvents on *"]
    );
    assert!(!changes[0].widens);
}

#[test]
fn an_aws_managed_policy_attached_counts_as_widening() {
    let before = desired(&role("r", ""));
    let after = desired(&role(
        "r",
        "  managedPolicies: [\"arn:aws:iam::aws:policy/AdministratorAccess\"]\n",
    ));
    let id = (Kind::Role, "r".to_string());
    let changes = resource_access(&id, &side(&before), &side(&after));
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].subject,
        "attach arn:aws:iam::aws:policy/AdministratorAccess"
    );
    assert!(changes[0].widens);
    assert_eq!(
        changes[0].note.as_deref(),
        Some("an AWS managed policy, whose document is not known offline; counted as widening")
    );
    let s = AccessSummary::of(&changes);
    assert_eq!(s.unknown, 1);
    assert!(s.to_string().starts_with("Access: WIDENS"));
}

#[test]
fn lifting_a_boundary_widens_and_setting_one_does_not() {
    let b = policy("boundary", LOGS);
    let bounded = desired(&format!(
        "{b}{}",
        role("r", "  permissionsBoundary: boundary\n")
    ));
    let free = desired(&format!("{b}{}", role("r", "")));
    let id = (Kind::Role, "r".to_string());
    let lifted = resource_access(&id, &side(&bounded), &side(&free));
    assert_eq!(lifted.len(), 1);
    assert!(lifted[0].widens);
    let set = resource_access(&id, &side(&free), &side(&bounded));
    assert_eq!(set.len(), 1);
    assert!(!set[0].widens);
}

#[test]
fn inline_changes_are_judged_with_the_roles_other_documents() {
    let policies = policy("a", LOGS);
    let before = desired(&format!(
        "{policies}{}",
        role("r", "  managedPolicies: [a]\n")
    ));
    let after = desired(&format!(
        "{policies}{}",
        role(
            "r",
            "  managedPolicies: [a]\n  inlinePolicies:\n    extra: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: [\"logs:PutLogEvents\", \"s3:GetObject\"], Resource: \"*\"}]}\n"
        )
    ));
    let id = (Kind::Role, "r".to_string());
    assert_eq!(
        lines(&resource_access(&id, &side(&before), &side(&after))),
        ["inline policy extra: + Allow s3:GetObject on *"]
    );
}

#[test]
fn escalation_spans_attached_and_inline_policies_and_a_boundary_caps_it() {
    let pass = "  inlinePolicies:\n    pass: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"iam:PassRole\", Resource: \"*\", Condition: {StringEquals: {\"iam:PassedToService\": sagemaker.amazonaws.com}}}]}\n";
    let train = policy(
        "train",
        "[{Effect: Allow, Action: \"sagemaker:CreateTrainingJob\", Resource: \"*\"}]",
    );
    let open = desired(&format!(
        "{train}{}",
        role("r", &format!("  managedPolicies: [train]\n{pass}"))
    ));
    let found = escalations(&side(&open));
    let ids: Vec<&str> = found.iter().map(|f| f.finding.check).collect();
    assert!(ids.contains(&"privesc-passrole-sagemaker"), "{ids:?}");
    let f = found
        .iter()
        .find(|f| f.finding.check == "privesc-passrole-sagemaker")
        .unwrap();
    assert_eq!(f.role, (Kind::Role, "r".to_string()));
    assert_eq!(f.pointer, "/spec/inlinePolicies/pass/Statement/0/Action");
    assert!(
        f.finding
            .message
            .contains("(inline policy pass /Statement/0/Action)")
            && f.finding
                .message
                .contains("(policy train /Statement/0/Action)"),
        "{}",
        f.finding.message
    );

    // A boundary that allows no SageMaker job closes the path.
    let capped = desired(&format!(
        "{train}{}{}",
        policy("cap", LOGS),
        role(
            "r",
            &format!("  managedPolicies: [train]\n  permissionsBoundary: cap\n{pass}")
        )
    ));
    assert!(escalations(&side(&capped))
        .iter()
        .all(|f| f.finding.check != "privesc-passrole-sagemaker"));
}

#[test]
fn escalation_findings_reach_validation_at_the_role_and_can_be_silenced() {
    let docs = format!(
        "{}{}",
        policy(
            "admin",
            "[{Effect: Allow, Action: \"iam:CreatePolicyVersion\", Resource: \"*\"}]"
        ),
        role("r", "  managedPolicies: [admin]\n")
    );
    let loaded = compile_text(&format!("{ENV}---\n{docs}"));
    let shown: Vec<String> = loaded
        .warnings
        .sorted()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert!(
        shown.iter().any(|d| d.starts_with("m.yaml:")
            && d.contains("security-warning[privesc-create-policy-version]: spec.managedPolicies: privilege escalation")),
        "{shown:#?}"
    );
    let silenced = docs.replace(
        "metadata: {name: r}",
        "metadata: {name: r, annotations: {lint.mlspace-gitops/privesc-create-policy-version: \"reviewed\"}}",
    );
    let loaded = compile_text(&format!("{ENV}---\n{silenced}"));
    assert!(loaded
        .warnings
        .sorted()
        .iter()
        .all(|d| d.check != Some("privesc-create-policy-version")));
}
