//! deploy/prometheus/alerts.yaml: the alerts the issue asks for exist, use only metrics,
//! labels and label values the daemon exports, link to their runbook in docs/operations.md,
//! and pass `promtool check rules` and `promtool test rules` (alerts.test.yaml). A running
//! daemon serves the leader gauge the NoLeader alert reads.
//!
//! The promtool test needs promtool (Debian's prometheus package, which scripts/test.sh
//! installs) and fails without it, saying so.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use mlspace_gitops::manifest::yaml;
use serde_json::Value;

use crate::support::deploy::{check_promql, exported_metrics};
use crate::support::http::http;
use crate::support::{free_port, kill, mlspace, read, require, root, CommandExt};

const ALERTS: &str = "deploy/prometheus/alerts.yaml";

/// Every rule of alerts.yaml.
fn rules() -> Vec<Value> {
    let file: Arc<Path> = Arc::from(root().join(ALERTS).as_path());
    let docs = yaml::parse_documents(&file, &read(ALERTS)).unwrap();
    assert_eq!(docs.len(), 1);
    docs[0].value["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn the_alerts_the_issue_asks_for_exist() {
    let names: Vec<String> = rules()
        .iter()
        .map(|r| {
            r["alert"]
                .as_str()
                .expect("only alerting rules")
                .to_string()
        })
        .collect();
    for want in [
        "MlspaceGitopsReconcileFailing",
        "MlspaceGitopsDriftNotRepaired",
        "MlspaceGitopsSourceNotFetched",
        "MlspaceGitopsNoLeader",
        "MlspaceGitopsAwsThrottlingHigh",
        "MlspaceGitopsDown",
    ] {
        assert!(names.iter().any(|n| n == want), "no alert {want}");
    }
}

#[test]
fn every_alert_is_labelled_explained_and_has_a_runbook() {
    let ops = read("docs/operations.md").to_lowercase();
    for r in rules() {
        let name = r["alert"].as_str().unwrap();
        assert!(
            ["critical", "warning"].contains(&r["labels"]["severity"].as_str().unwrap_or("")),
            "{name}: severity"
        );
        assert!(
            r["for"].is_string(),
            "{name}: a `for` keeps blips from paging"
        );
        for a in ["summary", "description", "runbook"] {
            assert!(r["annotations"][a].is_string(), "{name}: annotation {a}");
        }
        let anchor = name.to_lowercase();
        assert_eq!(
            r["annotations"]["runbook"],
            format!("docs/operations.md#{anchor}")
        );
        assert!(
            ops.contains(&format!("\n### {anchor}\n")),
            "docs/operations.md has no `### {name}` section"
        );
    }
}

#[test]
fn alerts_use_only_exported_metrics_and_labels() {
    let exported = exported_metrics();
    let mut failures = Vec::new();
    for r in rules() {
        let name = r["alert"].as_str().unwrap();
        let expr = r["expr"].as_str().unwrap();
        let (errs, labels) = check_promql(expr, &exported);
        failures.extend(errs.into_iter().map(|e| format!("{name}: {e}")));
        // Templates may only use labels the result carries.
        for a in r["annotations"].as_object().unwrap().values() {
            let text = a.as_str().unwrap();
            for (i, _) in text.match_indices("$labels.") {
                let rest = &text[i + 8..];
                let l = &rest[..rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len())];
                if !labels.contains(l) {
                    failures.push(format!("{name}: annotation uses $labels.{l}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_checker_catches_mistakes() {
    let exported = exported_metrics();
    let bad = |e: &str| !check_promql(e, &exported).0.is_empty();
    assert!(!bad(
        r#"sum by (kind) (rate(mlspace_gitops_drift_detected_total[5m]))"#
    ));
    assert!(!bad(
        r#"histogram_quantile(0.9, sum by (le) (rate(mlspace_gitops_reconcile_duration_seconds_bucket[5m])))"#
    ));
    assert!(bad("mlspace_gitops_reconciles_total"));
    assert!(bad(r#"mlspace_gitops_reconcile_total{result="failed"}"#));
    assert!(bad(r#"mlspace_gitops_resources{status="drifted"}"#));
    assert!(bad(r#"sum by (operation) (mlspace_gitops_resources)"#));
    assert!(bad(
        r#"mlspace_gitops_aws_requests_total{result=~"ok|throttle"}"#
    ));
}

/// `promtool ARGS` in deploy/prometheus; fails the test when promtool is not installed.
fn promtool(args: &[&str]) -> std::process::Output {
    Command::new(require("promtool"))
        .args(args)
        .current_dir(root().join("deploy/prometheus"))
        .output()
        .unwrap()
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let check = promtool(&["check", "rules", "alerts.yaml"]);
    assert!(
        check.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let test = promtool(&["test", "rules", "alerts.test.yaml"]);
    assert!(
        test.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

/// The daemon itself exports what the alerts read: here the leader gauge, which the
/// MlspaceGitopsNoLeader alert sums by `environment`, set once a revision is valid.
#[test]
fn running_daemon_exports_the_leader_gauge_of_its_environment() {
    use std::time::{Duration, Instant};
    let (port, no_aws) = (free_port(), free_port());
    let state = tempfile::tempdir().unwrap();
    let mut child = mlspace(&[
        "run",
        "--mode",
        "detect",
        "--grace-period",
        "1s",
        "--source",
    ])
    .arg(root().join("deploy/iam"))
    .args(["--listen", &format!("127.0.0.1:{port}")])
    .args(["--endpoint-url", &format!("http://127.0.0.1:{no_aws}")])
    .state_dir(state.path())
    // Fixed credentials: no lookup on the network; AWS itself is unreachable.
    .env("AWS_ACCESS_KEY_ID", "test")
    .env("AWS_SECRET_ACCESS_KEY", "test")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env_remove("AWS_ENDPOINT_URL")
    .without_own_settings()
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let want = "mlspace_gitops_leader{environment=\"mlspace-gitops\",replica=\"";
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        let (code, body) = http(port, "GET", "/metrics", &[], b"");
        if code != 0 {
            last = body;
            if last
                .lines()
                .any(|l| l.starts_with(want) && l.ends_with("} 1"))
            {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(child.id(), "TERM");
    let _ = child.wait();
    assert!(
        last.lines()
            .any(|l| l.starts_with(want) && l.ends_with("} 1")),
        "no `{want}...}} 1` in /metrics:\n{last}"
    );
    // Every family the daemon serves is one of metrics::names::ALL.
    let exported = exported_metrics();
    for line in last.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(
            exported.contains_key(name),
            "{name} is served but not in names::ALL"
        );
    }
}
