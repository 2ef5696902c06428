//! Every document check of `lint`: a failing example that must report it (at the given
//! pointer) and the fixed example, which must report nothing at all. docs/lint.md shows
//! the same pairs.

use mlspace_policy::lint::{check, checks_found, document_checks, silence, Severity, CHECKS};
use mlspace_policy::{lint, PolicyKind};
use serde_json::json;

mod cases;
use cases::{cases, v};

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

#[test]
fn date_operators_on_numbers_and_trust_companions() {
    let doc = v(
        json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
        "Condition": {"DateGreaterThan": {"s3:max-keys": "2030-01-01T00:00:00Z"}}}]),
    );
    let found = lint(&doc, PolicyKind::Identity);
    assert_eq!(
        checks_found(&found).into_iter().collect::<Vec<_>>(),
        ["condition-type-mismatch"]
    );
    assert!(found[0].message.contains("use Numeric operators"));
    // sts:TagSession is authorized within the AssumeRole request, which has sts:ExternalId.
    let trust = v(
        json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {"sts:ExternalId": "abc"}}}]),
    );
    assert_eq!(lint(&trust, PolicyKind::Trust), vec![]);
}
