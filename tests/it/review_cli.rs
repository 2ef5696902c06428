//! The review commands as a reviewer runs them: `lint` (findings, severities, exit codes),
//! `diff` between git revisions of a repository (offline, no AWS), and `plan -o markdown` /
//! `plan --deny-widening` against moto.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::git::{git, manifests_repo};
use crate::support::{manifests_dir, mlspace, text, CommandExt, Moto};

/// `mlspace-gitops ARGS` in `dir`, without colours.
fn bin(dir: &Path, args: &[&str]) -> Output {
    mlspace(args).current_dir(dir).env("NO_COLOR", "1").run()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const ENV: &str = "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: dev}\nspec: {region: us-east-1, account: \"123456789012\"}\n";

fn write(dir: &Path, file: &str, text: &str) {
    let p = dir.join(file);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn lint_prints_each_finding_with_its_place_and_check_and_fails_at_the_level_asked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m/environment.yaml", ENV);
    write(
        dir.path(),
        "m/policies.yaml",
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: p}\nspec:\n  document:\n    Version: \"2012-10-17\"\n    Statement:\n      - Effect: Allow\n        Action: iam:PassRole\n        Resource: \"*\"\n",
    );
    // A security warning fails only when asked.
    let o = bin(dir.path(), &["lint", "-m", "m"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("m/policies.yaml:9:17: security-warning[pass-role-wildcard]: spec.document.Statement[0].Action: "),
        "{out}"
    );
    assert!(
        out.ends_with("0 error(s), 1 security warning(s), 0 warning(s), 0 suggestion(s)\n"),
        "{out}"
    );
    let o = bin(
        dir.path(),
        &["lint", "-m", "m", "--fail-on", "security-warning"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // A typo is an error: lint and validate fail, and nothing else is needed to see it.
    write(
        dir.path(),
        "m/typo.yaml",
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: q}\nspec:\n  document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:GetObjcet\", Resource: \"arn:aws:s3:::b/*\"}]}\n",
    );
    let o = bin(dir.path(), &["lint", "-m", "m", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["counts"]["error"], 1);
    assert_eq!(v["counts"]["security-warning"], 1);
    let typo = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "unknown-action")
        .expect("the typo is found");
    assert_eq!(typo["file"], "m/typo.yaml");
    assert_eq!(typo["line"], 5);
    assert_eq!(typo["severity"], "error");
    assert!(
        typo["message"]
            .as_str()
            .unwrap()
            .contains("did you mean \"s3:GetObject\"?"),
        "{typo}"
    );
    let o = bin(dir.path(), &["validate", "-m", "m"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("m/typo.yaml:5:"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_bundled_manifests_lint_clean() {
    let o = mlspace(&["lint", "--fail-on", "suggestion", "-m"])
        .arg(manifests_dir())
        .run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        stdout(&o),
        "0 error(s), 0 security warning(s), 0 warning(s), 0 suggestion(s)\n"
    );
}

/// The issue's example: PassRole and CreatePolicyVersion on every resource, added to the
/// system policy.
fn widen_system_policy(dir: &Path) {
    let p = dir.join("manifests/iam/policies/mlspace-system-policy.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    doc["Statement"].as_array_mut().unwrap().push(serde_json::json!({
        "Effect": "Allow", "Action": ["iam:PassRole", "iam:CreatePolicyVersion"], "Resource": "*"
    }));
    std::fs::write(&p, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

#[test]
fn diff_shows_what_a_change_grants_and_gates_on_widening() {
    let repo = manifests_repo();
    let dir = repo.path();
    // No change: exit 0.
    let o = bin(dir, &["diff", "--base", "HEAD"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(stdout(&o), "No differences in the desired state.\n");

    widen_system_policy(dir);
    let o = bin(dir, &["diff", "--base", "HEAD"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = stdout(&o);
    assert!(out.starts_with("~ ManagedPolicy mlspace-system-policy changes\n    + spec.document.Statement[19]: {\"Effect\":\"Allow\",\"Action\":[\"iam:PassRole\",\"iam:CreatePolicyVersion\"],\"Resource\":\"*\"}\n"), "{out}");
    assert!(out.contains("    access (policy document, used by Role mlspace-system-role)\n      + Allow iam:CreatePolicyVersion on *\n      + Allow iam:PassRole on *\n"), "{out}");
    assert!(out.contains("Diff: 0 added, 1 changed, 0 removed.\nAccess: WIDENS (2 grant(s) widen access, 0 narrow it)\n"), "{out}");
    // The new finding, with the file as the repository names it.
    assert!(
        out.contains("\nNew findings:\nmanifests/iam/policies/mlspace-system-policy.json:"),
        "{out}"
    );
    assert!(
        out.contains("security-warning[pass-role-wildcard]"),
        "{out}"
    );

    let o = bin(dir, &["diff", "--base", "HEAD", "--deny-widening"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    let o = bin(dir, &["diff", "--base", "HEAD", "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["widens_access"], true);
    assert_eq!(v["differs"], true);
    let change = &v["environments"][0]["changes"][0];
    assert_eq!(change["kind"], "ManagedPolicy");
    assert_eq!(
        change["access"][0]["added"][0]["action"],
        "iam:CreatePolicyVersion"
    );
    assert_eq!(change["access"][0]["widens"], true);

    let o = bin(dir, &["diff", "--base", "HEAD", "-o", "markdown"]);
    let md = stdout(&o);
    assert!(md.starts_with("### mlspace-gitops diff HEAD ("), "{md}");
    assert!(md.contains("> This change **widens access**"), "{md}");
    assert!(md.contains("<details><summary><code>~ ManagedPolicy mlspace-system-policy</code>: update</summary>"), "{md}");

    // Two commits compared, the working tree untouched.
    git(dir, &["commit", "-qam", "widen"]);
    let o = bin(
        dir,
        &[
            "diff",
            "--base",
            "HEAD~1",
            "--head",
            "HEAD",
            "--deny-widening",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = bin(dir, &["diff", "--base", "HEAD~1", "--head", "HEAD~1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn equal_access_written_differently_changes_the_manifests_but_not_access() {
    let repo = manifests_repo();
    let dir = repo.path();
    // The website read policy's statement, reformatted: strings for one-element lists, the
    // action in lower case.
    let p = dir.join("manifests/iam/policies/mlspace-website-read-policy.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let s = &mut doc["Statement"][0];
    assert_eq!(s["Action"], serde_json::json!(["s3:GetObject"]));
    s["Action"] = serde_json::json!("s3:getobject");
    s["Resource"] = s["Resource"][0].clone();
    std::fs::write(&p, serde_json::to_string(&doc).unwrap()).unwrap();
    let o = bin(dir, &["diff", "--base", "HEAD", "--deny-widening"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = stdout(&o);
    assert!(!out.contains("    access ("), "{out}");
    assert!(
        out.contains("Access: unchanged (no grant added or removed)"),
        "{out}"
    );
}

#[test]
fn diff_refuses_an_invalid_head_and_names_the_error() {
    let repo = manifests_repo();
    let dir = repo.path();
    let p = dir.join("manifests/iam/policies/mlspace-website-read-policy.json");
    let t = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, t.replacen("s3:GetObject", "s3:GetObjcet", 1)).unwrap();
    let o = bin(dir, &["diff", "--base", "HEAD"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("manifests/iam/policies/mlspace-website-read-policy.json:")
            && String::from_utf8_lossy(&o.stderr).contains("error[unknown-action]"),
        "{}",
        text(&o)
    );
    let o = bin(dir, &["diff", "--base", "no-such-ref"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("`no-such-ref` names no commit"),
        "{}",
        text(&o)
    );
}

/// `mlspace-gitops ARGS` in `dir`, against moto.
fn cli(moto: &Moto, dir: &Path, args: &[&str]) -> Output {
    mlspace(args).current_dir(dir).aws(moto).run()
}

#[test]
fn plan_shows_the_access_delta_and_deny_widening_exits_3() {
    let moto = Moto::start();
    let repo = manifests_repo();
    let dir = repo.path();
    let o = cli(&moto, dir, &["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = cli(
        &moto,
        dir,
        &["plan", "--deny-widening", "--detailed-exitcode"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    widen_system_policy(dir);
    let o = cli(&moto, dir, &["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains("~ ManagedPolicy mlspace-system-policy will be updated in place\n"),
        "{out}"
    );
    assert!(out.contains("    access (policy document, used by Role mlspace-system-role)\n      + Allow iam:CreatePolicyVersion on *\n      + Allow iam:PassRole on *\n"), "{out}");
    assert!(out.ends_with("Plan: 0 to create, 1 to update, 0 to delete.\nAccess: WIDENS (2 grant(s) widen access, 0 narrow it)\n"), "{out}");
    let o = cli(
        &moto,
        dir,
        &["plan", "--deny-widening", "--detailed-exitcode"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = cli(&moto, dir, &["plan", "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["access"]["widens"], true);
    assert_eq!(
        v["changes"][0]["access"][0]["added"][1]["action"],
        "iam:PassRole"
    );
    let o = cli(&moto, dir, &["plan", "-o", "markdown"]);
    let md = stdout(&o);
    assert!(md.starts_with("### mlspace-gitops plan\n"), "{md}");
    assert!(md.contains("- `ManagedPolicy mlspace-system-policy`, policy document, used by Role mlspace-system-role **(widens)**\n  ```diff\n  + Allow iam:CreatePolicyVersion on *\n"), "{md}");
}
