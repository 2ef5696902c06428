//! deploy/ci: the GitHub Actions workflow and the GitLab CI job that review pull requests.
//!
//! - Both files parse as YAML, and the jobs have the shape their CI system needs (trigger,
//!   OIDC token permission, full git history).
//! - Every `mlspace-gitops` command they run is run here, as written (shell variables set as
//!   the CI system sets them), in a repository whose pull request widens access, against
//!   moto: each exits as the job's checks expect and writes a markdown comment.
//! - The roles they assume are the read-only roles of deploy/iam.

use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::cli::binary;
use crate::support::git::{git, manifests_repo};
use crate::support::{read, Moto};

fn load(file: &str) -> (String, Yaml) {
    let text = read(&format!("deploy/ci/{file}"));
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(docs.len(), 1, "{file}: one document");
    (text, docs.remove(0))
}

/// The `mlspace-gitops diff|plan ...` commands of a CI file, without what follows them on
/// their line (`; code=$?`).
fn commands(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().trim_start_matches("- ").trim())
        .filter(|l| l.starts_with("mlspace-gitops diff") || l.starts_with("mlspace-gitops plan"))
        .map(|l| l.split("; ").next().unwrap().to_string())
        .collect()
}

#[test]
fn the_github_workflow_has_what_actions_needs() {
    let (text, y) = load("github-actions.yaml");
    assert!(
        !y["on"]["pull_request"].is_badvalue(),
        "runs on pull requests"
    );
    assert_eq!(y["permissions"]["id-token"].as_str(), Some("write"));
    assert_eq!(y["permissions"]["pull-requests"].as_str(), Some("write"));
    let steps = y["jobs"]["review"]["steps"].as_vec().expect("steps");
    let checkout = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout"))
        })
        .expect("a checkout step");
    assert_eq!(checkout["with"]["fetch-depth"].as_i64(), Some(0));
    assert!(text.contains("role/mlspace-gitops-plan-github"));
    assert_eq!(commands(&text).len(), 2, "{:?}", commands(&text));
}

#[test]
fn the_gitlab_job_has_what_gitlab_needs() {
    let (text, y) = load("gitlab-ci.yaml");
    let job = &y["mlspace-gitops-review"];
    assert_eq!(
        job["id_tokens"]["AWS_ID_TOKEN"]["aud"].as_str(),
        Some("https://gitlab.com")
    );
    assert_eq!(job["variables"]["GIT_DEPTH"].as_str(), Some("0"));
    assert!(job["rules"][0]["if"]
        .as_str()
        .unwrap()
        .contains("merge_request_event"));
    assert!(text.contains("role/mlspace-gitops-plan-gitlab"));
    assert_eq!(commands(&text).len(), 2, "{:?}", commands(&text));
}

#[test]
fn the_roles_the_jobs_assume_are_the_read_only_roles_of_deploy_iam() {
    let iam = read("deploy/iam/ci-plan.yaml");
    for name in ["mlspace-gitops-plan-github", "mlspace-gitops-plan-gitlab"] {
        assert!(iam.contains(&format!("name: {name}\n")), "{name}");
    }
}

/// A manifests repository whose `main` (also as `origin/main`) holds the bundled manifests
/// and whose pull request adds the PassRole + CreatePolicyVersion statement.
fn pull_request() -> tempfile::TempDir {
    let dir = manifests_repo();
    let d = dir.path();
    git(d, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    git(d, &["checkout", "-qb", "widen"]);
    let p = d.join("manifests/iam/policies/mlspace-system-policy.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    doc["Statement"].as_array_mut().unwrap().push(serde_json::json!({
        "Effect": "Allow", "Action": ["iam:PassRole", "iam:CreatePolicyVersion"], "Resource": "*"
    }));
    std::fs::write(&p, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    git(d, &["commit", "-qam", "widen"]);
    dir
}

/// Run a CI file's commands in a pull request's checkout, with the CI system's variables.
fn run_ci_commands(file: &str, moto: &Moto) {
    let (text, _) = load(file);
    let pr = pull_request();
    let bin_dir = binary().parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut results = Vec::new();
    for cmd in commands(&text) {
        let mut c = Command::new("bash");
        c.args(["-c", &format!("{cmd} > out.md")])
            .current_dir(pr.path())
            .env("PATH", &path)
            .env("MANIFESTS", "manifests")
            // GitHub: BASE is origin/<base_ref>; GitLab: the target branch's name.
            .env("BASE", "origin/main")
            .env("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main")
            .envs(moto.env());
        let o = c.output().unwrap();
        let md = std::fs::read_to_string(pr.path().join("out.md")).unwrap();
        results.push((
            cmd,
            o.status.code(),
            md,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ));
    }
    let (diff_cmd, code, md, err) = &results[0];
    assert!(diff_cmd.starts_with("mlspace-gitops diff"), "{diff_cmd}");
    assert_eq!(
        *code,
        Some(3),
        "{file}: `{diff_cmd}` exits 3 on a widening change\n{err}"
    );
    assert!(
        md.starts_with("### mlspace-gitops diff origin/main ("),
        "{md}"
    );
    assert!(md.contains("+ Allow iam:PassRole on *"), "{md}");
    let (plan_cmd, code, md, err) = &results[1];
    assert!(plan_cmd.starts_with("mlspace-gitops plan"), "{plan_cmd}");
    // An empty account: everything is to create.
    assert_eq!(
        *code,
        Some(2),
        "{file}: `{plan_cmd}` exits 2 with changes\n{err}"
    );
    assert!(md.starts_with("### mlspace-gitops plan\n"), "{md}");
    assert!(md.contains("Plan: 35 to create"), "{md}");
}

#[test]
fn the_github_workflow_commands_run_as_written() {
    let moto = Moto::start();
    run_ci_commands("github-actions.yaml", &moto);
}

#[test]
fn the_gitlab_job_commands_run_as_written() {
    let moto = Moto::start();
    run_ci_commands("gitlab-ci.yaml", &moto);
}
