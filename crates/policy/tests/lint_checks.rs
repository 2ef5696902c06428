//! Every document check of `lint`: a failing example that must report it (at the given
//! pointer) and the fixed example, which must report nothing at all. docs/lint.md shows
//! the same pairs.

use mlspace_policy::lint::{check, checks_found, document_checks, silence, Severity, CHECKS};
use mlspace_policy::{lint, PolicyKind};
use serde_json::{json, Value};

struct Case {
    check: &'static str,
    kind: PolicyKind,
    pointer: &'static str,
    bad: Value,
    good: Value,
}

fn v(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

const GITHUB: &str = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";

fn cases() -> Vec<Case> {
    use PolicyKind::*;
    vec![
        Case {
            check: "invalid-structure",
            kind: Identity,
            pointer: "/Statement/0/Effect",
            bad: v(
                json!([{"Effect": "Permit", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "structure-warning",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(
                json!([{"Effect": "Allow", "Action": "S3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "missing-version",
            kind: Identity,
            pointer: "",
            bad: json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "duplicate-sid",
            kind: Identity,
            pointer: "/Statement/1/Sid",
            bad: v(json!([
                {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Sid": "Read", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}
            ])),
            good: v(json!([
                {"Sid": "ReadObjects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}
            ])),
        },
        Case {
            check: "unknown-service",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(json!([{"Effect": "Allow", "Action": "sagemakr:CreateModel", "Resource": "*"}])),
            good: v(
                json!([{"Effect": "Allow", "Action": "sagemaker:CreateModel", "Resource": "*"}]),
            ),
        },
        Case {
            check: "unknown-action",
            kind: Identity,
            pointer: "/Statement/0/Action/1",
            bad: v(
                json!([{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObjcet"], "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "action-pattern-matches-nothing",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:Get*Objcet", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:Get*Object", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "arn-unknown-service",
            kind: Identity,
            pointer: "/Statement/0/Resource",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s4:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "arn-malformed",
            kind: Identity,
            pointer: "/Statement/0/Resource",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:us-east-1::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "resource-service-mismatch",
            kind: Identity,
            pointer: "/Statement/0/Resource",
            bad: v(json!([{"Effect": "Allow", "Action": "bedrock:InvokeModel",
                "Resource": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llm"}])),
            good: v(json!([{"Effect": "Allow", "Action": "bedrock:InvokeModel",
                "Resource": "arn:aws:bedrock:us-east-1::foundation-model/*"}])),
        },
        Case {
            check: "resource-type-mismatch",
            kind: Identity,
            pointer: "/Statement/0/Resource",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}]),
            ),
        },
        Case {
            check: "action-resource-mismatch",
            kind: Identity,
            pointer: "/Statement/0/Action/0",
            bad: v(
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "arn:aws:s3:::b"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}]),
            ),
        },
        Case {
            check: "no-resource-level-permissions",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(
                json!([{"Effect": "Allow", "Action": "ec2:DescribeInstances",
                "Resource": "arn:aws:ec2:us-east-1:123456789012:instance/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"}]),
            ),
        },
        Case {
            check: "key-policy-resource",
            kind: KeyPolicy,
            pointer: "/Statement/0/Resource",
            bad: v(json!([{"Sid": "Enable IAM policies", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*",
                "Resource": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}])),
            good: v(json!([{"Sid": "Enable IAM policies", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}])),
        },
        Case {
            check: "unknown-condition-key",
            kind: Identity,
            pointer: "/Statement/0/Condition/StringLike/s3:prefx",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"StringLike": {"s3:prefx": "home/*"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"StringLike": {"s3:prefix": "home/*"}}}]),
            ),
        },
        Case {
            check: "condition-key-not-applicable",
            kind: Identity,
            pointer: "/Statement/0/Condition/StringLike/s3:prefix",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringLike": {"s3:prefix": "home/*"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/home/*"}]),
            ),
        },
        Case {
            check: "condition-type-mismatch",
            kind: Identity,
            pointer: "/Statement/0/Condition/Bool/s3:prefix",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"Bool": {"s3:prefix": "true"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"StringLike": {"s3:prefix": "home/*"}}}]),
            ),
        },
        Case {
            check: "condition-type-loose",
            kind: Identity,
            pointer: "/Statement/0/Condition/StringEquals/aws:SecureTransport",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringEquals": {"aws:SecureTransport": "true"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]),
            ),
        },
        Case {
            check: "condition-value-invalid",
            kind: Identity,
            pointer: "/Statement/0/Condition/Bool/aws:SecureTransport",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "yes"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]),
            ),
        },
        Case {
            check: "set-operator-single-valued",
            kind: Identity,
            pointer: "/Statement/0/Condition/ForAnyValue:StringEquals/aws:SourceVpc",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringEquals": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}}}]),
            ),
        },
        Case {
            check: "multivalued-key-without-set-operator",
            kind: Identity,
            pointer: "/Statement/0/Condition/StringEquals/aws:TagKeys",
            bad: v(
                json!([{"Effect": "Allow", "Action": "iam:TagRole", "Resource": "arn:aws:iam::123456789012:role/app-*",
                "Condition": {"StringEquals": {"aws:TagKeys": "team"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "iam:TagRole", "Resource": "arn:aws:iam::123456789012:role/app-*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "team"}}}]),
            ),
        },
        Case {
            check: "for-all-values-allow",
            kind: Identity,
            pointer: "/Statement/0/Condition/ForAllValues:StringEquals/aws:TagKeys",
            bad: v(
                json!([{"Effect": "Allow", "Action": "iam:TagRole", "Resource": "arn:aws:iam::123456789012:role/app-*",
                "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "iam:TagRole", "Resource": "arn:aws:iam::123456789012:role/app-*",
                "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]},
                              "Null": {"aws:TagKeys": "false"}}}]),
            ),
        },
        Case {
            check: "pass-role-wildcard",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(json!([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}])),
            good: v(json!([{"Effect": "Allow", "Action": "iam:PassRole",
                "Resource": "arn:aws:iam::123456789012:role/MLSpace*",
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}])),
        },
        Case {
            check: "allow-not-principal",
            kind: Resource,
            pointer: "/Statement/0/NotPrincipal",
            bad: v(
                json!([{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "allow-not-action",
            kind: Identity,
            pointer: "/Statement/0/NotAction",
            bad: v(json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}])),
            good: v(
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "wildcard-principal",
            kind: Resource,
            pointer: "/Statement/0/Principal",
            bad: v(
                json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}]),
            ),
        },
        Case {
            check: "oidc-trust-without-subject",
            kind: Trust,
            pointer: "/Statement/0/Principal/Federated",
            bad: v(
                json!([{"Effect": "Allow", "Principal": {"Federated": GITHUB},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Principal": {"Federated": GITHUB},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                              "StringLike": {"token.actions.githubusercontent.com:sub": "repo:example/mlspace:*"}}}]),
            ),
        },
        Case {
            check: "redundant-action",
            kind: Identity,
            pointer: "/Statement/0/Action/0",
            bad: v(
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:Get*"], "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "redundant-resource",
            kind: Identity,
            pointer: "/Statement/0/Resource/1",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::b/reports/*"]}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "redundant-statement",
            kind: Identity,
            pointer: "/Statement/1",
            bad: v(json!([
                {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/reports/*",
                 "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
            ])),
            good: v(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}])),
        },
        Case {
            check: "shadowed-by-deny",
            kind: Identity,
            pointer: "/Statement/0",
            bad: v(json!([
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
            ])),
            good: v(json!([
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
            ])),
        },
    ]
}

#[test]
fn each_bad_example_reports_its_check_and_each_fix_reports_nothing() {
    for case in cases() {
        let found = lint(&case.bad, case.kind);
        assert!(
            found
                .iter()
                .any(|f| f.check == case.check && f.pointer == case.pointer),
            "{}: expected at {:?}, got {:#?}",
            case.check,
            case.pointer,
            found
        );
        let expected = check(case.check).unwrap().severity;
        assert!(found
            .iter()
            .filter(|f| f.check == case.check)
            .all(|f| f.severity == expected));
        let clean = lint(&case.good, case.kind);
        assert!(
            clean.is_empty(),
            "{}: fix still reports {clean:#?}",
            case.check
        );
    }
}

#[test]
fn every_document_check_has_a_case() {
    let covered: Vec<&str> = cases().iter().map(|c| c.check).collect();
    for check in document_checks() {
        assert!(covered.contains(&check.id), "no case for {}", check.id);
    }
}

#[test]
fn check_ids_are_unique_and_kebab_case() {
    let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
    assert!(ids.iter().all(|id| id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')));
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before);
}

#[test]
fn messages_say_what_to_do_and_suggest_typos() {
    let doc = v(
        json!([{"Effect": "Allow", "Action": ["s3:GetObjcet", "sagemakr:CreateModel"], "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceArm": "x"}}}]),
    );
    let found = lint(&doc, PolicyKind::Identity);
    let text: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(text[0].starts_with("error[unknown-action]: Statement[0].Action[0] \"s3:GetObjcet\""));
    assert!(text[0].contains("did you mean \"s3:GetObject\"?"));
    assert!(text[1].contains("did you mean \"sagemaker:CreateModel\"?"));
    assert!(text[2].contains("did you mean \"aws:SourceArn\"?"));
}

#[test]
fn findings_can_be_silenced_by_check_id() {
    let doc = v(
        json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:Get*", "iam:PassRole"], "Resource": "*"}]),
    );
    let found = lint(&doc, PolicyKind::Identity);
    assert_eq!(
        checks_found(&found).into_iter().collect::<Vec<_>>(),
        ["pass-role-wildcard", "redundant-action"]
    );
    let left = silence(found, &["redundant-action"]);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].check, "pass-role-wildcard");
    assert_eq!(left[0].severity, Severity::SecurityWarning);
    assert!(check("no-such-check").is_none());
}

#[test]
fn severities_order_and_serialize() {
    assert!(Severity::Error < Severity::SecurityWarning);
    assert!(Severity::Warning < Severity::Suggestion);
    assert_eq!(
        serde_json::to_value(Severity::SecurityWarning).unwrap(),
        json!("security-warning")
    );
    let f = &lint(
        &v(json!([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}])),
        PolicyKind::Identity,
    )[0];
    let j = serde_json::to_value(f).unwrap();
    assert_eq!(j["check"], "pass-role-wildcard");
    assert_eq!(j["severity"], "security-warning");
    assert_eq!(j["pointer"], "/Statement/0/Action");
}

#[test]
fn boundaries_lint_like_identity_policies() {
    let doc = v(json!([{"Effect": "Allow", "Action": "s3:GetObjcet", "Resource": "*"}]));
    assert_eq!(
        lint(&doc, PolicyKind::Boundary),
        lint(&doc, PolicyKind::Identity)
    );
}

#[test]
fn deny_statements_are_checked_too() {
    // A Deny on the wrong resource type protects nothing.
    let doc =
        v(json!([{"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::b/*"}]));
    let found = lint(&doc, PolicyKind::Identity);
    assert_eq!(found[0].check, "resource-type-mismatch");
}
