//! The daemon end to end: a git repository made by the test, `mlspace-gitops run` on it
//! against a real moto server, driven by commits, drift and signals; observed through AWS,
//! /status, /metrics and the webhook.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::daemon::{Daemon, WEBHOOK_SECRET};
use crate::support::git::{self, Repo};
use crate::support::http::http;
use crate::support::moto::policy_versions;
use crate::support::{iam, manifests_dir, mlspace, text, Clients as _, CommandExt, Moto};

fn environment() -> &'static str {
    "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: e2e}\nspec:\n  region: us-east-1\n  account: \"123456789012\"\n  tags: {system: MLSpace}\n"
}

fn role(team: &str) -> String {
    format!(
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: daemon-policy}}\nspec:\n  document:\n    Version: '2012-10-17'\n    Statement: [{{Effect: Allow, Action: 's3:GetObject', Resource: '*'}}]\n---\napiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: daemon-role}}\nspec:\n  assumeRolePolicy:\n    Version: '2012-10-17'\n    Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: 'sts:AssumeRole'}}]\n  managedPolicies: [daemon-policy]\n  tags: {{team: {team}}}\n---\napiVersion: mlspace-gitops/v1\nkind: Table\nmetadata: {{name: daemon-table}}\nspec:\n  partitionKey: {{name: pk, type: S}}\n  pointInTimeRecovery: false\n"
    )
}

/// A local directory source: `environment()` and `role(team)` in a temporary directory; it
/// and the manifests directory in it.
fn local_manifests(team: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("env.yaml"), environment()).unwrap();
    std::fs::write(manifests.join("iam.yaml"), role(team)).unwrap();
    (dir, manifests)
}

fn sign(body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Drift made behind the daemon's back: the role's `team` tag set to `value`.
fn tag_team(rt: &tokio::runtime::Runtime, client: aws_sdk_iam::Client, value: &str) {
    rt.block_on(iam::tag_role(&client, "daemon-role", "team", value));
}

/// The role's tag `key`.
fn role_tag(rt: &tokio::runtime::Runtime, moto: &Moto, key: &str) -> Option<String> {
    rt.block_on(async { iam::role_tag(&moto.aws().await.iam(), "daemon-role", key).await })
}

fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn daemon_follows_git_keeps_the_last_good_revision_and_repairs_drift() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let repo = Repo::new();
    let first = repo.commit(
        &[
            ("manifests/env.yaml", environment()),
            ("manifests/iam.yaml", &role("blue")),
        ],
        "first",
    );
    let d = Daemon::start(&moto, &repo.url(), &[]);

    // First revision applied; ready.
    d.wait_until("the first revision in AWS", Duration::from_secs(60), || {
        role_tag(&rt, &moto, "team").as_deref() == Some("blue")
    });
    d.wait_until("/readyz", Duration::from_secs(20), || {
        d.get("/readyz").0 == 200
    });
    assert_eq!(d.get("/healthz").0, 200);
    let s = d.status();
    assert_eq!(s["last_applied_revision"], first.as_str(), "{s:#}");
    eprintln!("idle RSS: {} KB", rss_kb(d.child.id()));

    // A new commit reaches AWS within seconds.
    let second = repo.commit(&[("manifests/iam.yaml", &role("green"))], "green team");
    let latency = d.wait_until(
        "the second revision in AWS",
        Duration::from_secs(30),
        || role_tag(&rt, &moto, "team").as_deref() == Some("green"),
    );
    eprintln!("commit to applied: {:.1} s", latency.as_secs_f64());
    d.wait_until(
        "status shows the second revision",
        Duration::from_secs(10),
        || d.status()["last_applied_revision"] == second.as_str(),
    );

    // Broken YAML: nothing applied, error reported, last applied revision kept.
    let invalid_before = d.metric("mlspace_gitops_reconcile_total", &[("result", "invalid")]);
    let broken = repo.commit(&[("manifests/iam.yaml", &role("red").replace("kind: Role", "kind: Role\n  bad: [")), ("manifests/extra.yaml", "apiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {name: daemon-extra-bucket}\nspec: {}\n")], "broken");
    d.wait_until(
        "the broken revision to be reported",
        Duration::from_secs(20),
        || {
            let s = d.status();
            s["last_attempted_revision"] == broken.as_str()
                && s["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("error"))
        },
    );
    let s = d.status();
    assert_eq!(s["last_applied_revision"], second.as_str(), "{s:#}");
    assert!(d.metric("mlspace_gitops_reconcile_total", &[("result", "invalid")]) > invalid_before);
    assert!(d.metric("mlspace_gitops_validation_errors", &[]) >= 1.0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        role_tag(&rt, &moto, "team").as_deref(),
        Some("green"),
        "a broken revision changed AWS"
    );
    let bucket_exists = rt.block_on(async {
        moto.aws()
            .await
            .s3()
            .head_bucket()
            .bucket("daemon-extra-bucket")
            .send()
            .await
            .is_ok()
    });
    assert!(!bucket_exists, "a broken revision was partly applied");

    // Fixed: applied.
    let fixed = repo.commit(&[("manifests/iam.yaml", &role("red"))], "fixed");
    d.wait_until("the fixed revision in AWS", Duration::from_secs(30), || {
        role_tag(&rt, &moto, "team").as_deref() == Some("red")
    });
    d.wait_until(
        "status shows the fixed revision",
        Duration::from_secs(10),
        || {
            let s = d.status();
            s["last_applied_revision"] == fixed.as_str() && s["last_error"].is_null()
        },
    );
    rt.block_on(async {
        moto.aws()
            .await
            .s3()
            .head_bucket()
            .bucket("daemon-extra-bucket")
            .send()
            .await
            .unwrap()
    });

    // Drift behind its back is repaired by the next resync.
    tag_team(&rt, rt.block_on(moto.aws()).iam(), "rogue");
    d.wait_until("drift repaired", Duration::from_secs(20), || {
        role_tag(&rt, &moto, "team").as_deref() == Some("red")
    });
    d.wait_until("drift counted", Duration::from_secs(10), || {
        d.metric("mlspace_gitops_drift_detected_total", &[("kind", "Role")]) >= 1.0
    });

    // Webhook: a bad signature changes nothing; a good one is accepted.
    let body = br#"{"ref":"refs/heads/main"}"#;
    let (code, _) = http(
        d.port,
        "POST",
        "/hooks/git",
        &[("X-Hub-Signature-256", "sha256=00")],
        body,
    );
    assert_eq!(code, 401);
    let (code, _) = http(d.port, "POST", "/hooks/git", &[], body);
    assert_eq!(code, 401);
    let (code, _) = http(
        d.port,
        "POST",
        "/hooks/git",
        &[("X-Hub-Signature-256", &sign(body))],
        body,
    );
    assert_eq!(code, 202);

    // Metrics scrape and parse, with the documented names.
    for m in [
        "mlspace_gitops_reconcile_total",
        "mlspace_gitops_resources",
        "mlspace_gitops_changes_applied_total",
        "mlspace_gitops_aws_requests_total",
        "mlspace_gitops_source_fetch_total",
        "mlspace_gitops_build_info",
    ] {
        assert!(d.metric(m, &[]) > 0.0, "{m} missing or zero");
    }
    assert_eq!(
        d.metric(
            "mlspace_gitops_source_revision_info",
            &[("revision", fixed.as_str())]
        ),
        1.0
    );
    assert_eq!(
        d.metric(
            "mlspace_gitops_resources",
            &[("kind", "Role"), ("state", "in_sync")]
        ),
        1.0
    );
    eprintln!("RSS after reconciles: {} KB", rss_kb(d.child.id()));

    // The daemon keeps the inventory and history the CLI reads (same state dir).
    let o = mlspace(&["history", "--limit", "100"])
        .manifests(repo.dir.path().join("manifests"))
        .state_dir(d.state_dir())
        .run();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains(&first) && text.contains("+ Role daemon-role Success"),
        "{text}"
    );
    assert!(text.contains(&fixed) && text.contains("fixed"), "{text}");
    let inventory = std::fs::read_to_string(d.state_dir().join("state/e2e.json")).unwrap();
    assert!(inventory.contains("daemon-extra-bucket"), "{inventory}");

    // SIGTERM: clean exit.
    let status = d.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn detect_mode_reports_drift_and_never_writes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let (_dir, manifests) = local_manifests("blue");
    // Bring AWS to the desired state first, with the one-shot command.
    let o = mlspace(&["apply", "--auto-approve"])
        .manifests(&manifests)
        .aws(&moto)
        .run();
    assert!(o.status.success(), "{}", text(&o));
    tag_team(&rt, rt.block_on(moto.aws()).iam(), "rogue");

    // A local directory source (watched), detect mode.
    let d = Daemon::start(
        &moto,
        manifests.to_str().unwrap(),
        &["--mode", "detect", "--log-format", "json"],
    );
    d.wait_until("drift reported", Duration::from_secs(30), || {
        let s = d.status();
        s["resources"].as_array().is_some_and(|rs| {
            rs.iter()
                .any(|r| r["name"] == "daemon-role" && r["state"] == "drifted")
        })
    });
    d.wait_until("drift gauge", Duration::from_secs(10), || {
        d.metric(
            "mlspace_gitops_resources",
            &[("kind", "Role"), ("state", "drifted")],
        ) == 1.0
    });
    std::thread::sleep(Duration::from_secs(4)); // past a resync
    assert_eq!(
        role_tag(&rt, &moto, "team").as_deref(),
        Some("rogue"),
        "detect mode wrote to AWS"
    );
    assert_eq!(d.metric("mlspace_gitops_changes_applied_total", &[]), 0.0);

    // A change to a watched file is picked up without waiting for the resync.
    std::fs::write(manifests.join("iam.yaml"), role("rogue")).unwrap();
    d.wait_until(
        "the edited file to be seen",
        Duration::from_secs(10),
        || {
            let s = d.status();
            s["resources"].as_array().is_some_and(|rs| {
                rs.iter()
                    .any(|r| r["name"] == "daemon-role" && r["state"] == "in_sync")
            })
        },
    );
    // --log-format json: one JSON object per line, with the reconcile span's revision.
    let log = d.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string(), "{l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("reconcile finished") && l.contains("revision")),
        "{log}"
    );
    assert!(d.terminate().success());
}

/// A revision that would prune most of the environment is refused, and the refusal is
/// counted in `mlspace_gitops_prune_refused_total` (the MlspaceGitopsPruneRefused alert).
#[test]
fn a_refused_mass_prune_is_counted_and_deletes_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let (_dir, manifests) = local_manifests("blue");
    let d = Daemon::start(&moto, manifests.to_str().unwrap(), &["--prune"]);
    d.wait_until("the first revision in AWS", Duration::from_secs(60), || {
        role_tag(&rt, &moto, "team").as_deref() == Some("blue")
    });
    let refused = |reason: &str| {
        d.metric(
            "mlspace_gitops_prune_refused_total",
            &[("environment", "e2e"), ("reason", reason)],
        )
    };
    d.wait_until("the series at 0", Duration::from_secs(10), || {
        d.get("/metrics").1.contains(
            r#"mlspace_gitops_prune_refused_total{environment="e2e",reason="mass_deletion"} 0"#,
        )
    });

    // Keep only the table: two of three managed resources would go at once.
    std::fs::write(
        manifests.join("iam.yaml"),
        "apiVersion: mlspace-gitops/v1\nkind: Table\nmetadata: {name: daemon-table}\nspec:\n  partitionKey: {name: pk, type: S}\n  pointInTimeRecovery: false\n",
    )
    .unwrap();
    d.wait_until("the refusal counted", Duration::from_secs(30), || {
        refused("mass_deletion") >= 1.0
    });
    assert_eq!(refused("inventory"), 0.0);
    assert!(d.log().contains("prune refused"), "{}", d.log());
    assert_eq!(
        role_tag(&rt, &moto, "team").as_deref(),
        Some("blue"),
        "the role was deleted"
    );
    assert!(d.terminate().success());
}

#[test]
fn two_replicas_on_one_dynamodb_state_table_one_reconciles_the_other_takes_over() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let (_dir, manifests) = local_manifests("blue");
    let ha = [
        "--state",
        "dynamodb://mlspace-gitops-state",
        "--lease-ttl",
        "3s",
    ];
    let src = manifests.to_str().unwrap();

    let a = Daemon::start(&moto, src, &ha);
    a.wait_until("replica A applies", Duration::from_secs(60), || {
        role_tag(&rt, &moto, "team").as_deref() == Some("blue")
    });
    a.wait_until("replica A leads", Duration::from_secs(10), || {
        a.metric("mlspace_gitops_leader", &[("environment", "e2e")]) == 1.0
    });

    // A's first pass over (its resources are shown at the end of a pass), so its count of
    // changes is whole.
    a.wait_until(
        "replica A's first pass ends",
        Duration::from_secs(30),
        || {
            let st = a.status();
            st["resources"]
                .as_array()
                .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["state"] == "in_sync"))
        },
    );
    let written_by_a = a.metric("mlspace_gitops_changes_applied_total", &[]);
    assert!(written_by_a > 0.0, "replica A made the first revision");

    // B joins: the Environment is in one replica's share (whichever the hash picks), and
    // the other stands by.
    let b = Daemon::start(&moto, src, &ha);
    let leads = |d: &Daemon| d.metric("mlspace_gitops_leader", &[("environment", "e2e")]) == 1.0;
    let standby = |d: &Daemon| {
        !leads(d)
            && d.status()["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("standby"))
    };
    // Settled once both have read each other's heartbeat: both assign it to the leader.
    // Before that, the first replica may still lead what the sharding gives the other.
    let env0 = |d: &Daemon, field: &str| d.status()["environments"][0][field].clone();
    let settled = |l: &Daemon, s: &Daemon| {
        leads(l)
            && standby(s)
            && env0(l, "assigned_to") == env0(l, "owner")
            && env0(s, "assigned_to") == env0(l, "owner")
    };
    b.wait_until(
        "one leads, the other stands by, both assigning it to the leader",
        Duration::from_secs(30),
        || settled(&a, &b) || settled(&b, &a),
    );
    // Stable: no flapping between the two.
    let a_leads = leads(&a);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        (leads(&a), leads(&b)),
        (a_leads, !a_leads),
        "the lease moved again"
    );
    // Nothing written twice, whichever leads now. (Regression: this asserted that the
    // standby had written nothing, which failed whenever the hash gave the Environment to
    // B, leaving A, which made the first revision, on standby.)
    assert_eq!(
        (
            a.metric("mlspace_gitops_changes_applied_total", &[]),
            b.metric("mlspace_gitops_changes_applied_total", &[])
        ),
        (written_by_a, 0.0),
        "a replica wrote again what A had applied"
    );
    let (leader, other) = if a_leads { (a, b) } else { (b, a) };
    assert_eq!(
        other.status()["environments"][0]["owner"],
        leader.status()["environments"][0]["owner"],
        "both name the same owner"
    );

    // The leader dies without releasing its lease; the other takes over within the lease
    // time and repairs drift.
    let mut leader = leader;
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    tag_team(&rt, rt.block_on(moto.aws()).iam(), "rogue");
    let b = other;
    let took = b.wait_until(
        "the other replica takes over",
        Duration::from_secs(30),
        || leads(&b),
    );
    eprintln!(
        "takeover after the leader died: {:.1} s (lease 3 s)",
        took.as_secs_f64()
    );
    b.wait_until("it repairs drift", Duration::from_secs(20), || {
        role_tag(&rt, &moto, "team").as_deref() == Some("blue")
    });
    assert!(b.terminate().success());
}

#[test]
fn one_daemon_reconciles_a_directory_of_environments_in_two_accounts() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let envs = dir.path().join("envs");
    let dev = envs.join("dev");
    let prod = envs.join("prod");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::create_dir_all(&prod).unwrap();
    std::fs::write(
        dev.join("env.yaml"),
        environment().replace("{name: e2e}", "{name: dev}"),
    )
    .unwrap();
    std::fs::write(dev.join("iam.yaml"), role("blue")).unwrap();
    let prod_env = environment()
        .replace("{name: e2e}", "{name: prod}")
        .replace("123456789012", "111111111111")
        + "  assumeRoleArn: \"arn:aws:iam::111111111111:role/mlspace-gitops\"\n  externalId: prod-external-id\n";
    std::fs::write(prod.join("env.yaml"), prod_env).unwrap();
    std::fs::write(prod.join("iam.yaml"), role("green")).unwrap();

    let d = Daemon::start(&moto, envs.to_str().unwrap(), &[]);
    d.wait_until("both environments applied", Duration::from_secs(90), || {
        let st = d.status();
        st["environments"].as_array().is_some_and(|e| {
            e.len() == 2 && e.iter().all(|e| e["last_applied_revision"].is_string())
        })
    });
    let st = d.status();
    let envs_st: Vec<(String, String, bool)> = st["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["account"].as_str().unwrap().to_string(),
                e["leader"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        envs_st,
        [
            ("dev".to_string(), "123456789012".to_string(), true),
            ("prod".to_string(), "111111111111".to_string(), true)
        ]
    );
    assert_eq!(st["last_error"], Value::Null, "{st}");
    // Every resource says which Environment it belongs to: three in each.
    for env in ["dev", "prod"] {
        let n = st["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["environment"] == env && r["state"] == "in_sync")
            .count();
        assert_eq!(n, 3, "{env}: {st}");
        assert_eq!(
            d.metric("mlspace_gitops_leader", &[("environment", env)]),
            1.0
        );
    }
    // Each account got its own role, with its own tags, through its own credentials.
    let tag = |c: aws_sdk_iam::Client| rt.block_on(iam::role_tag(&c, "daemon-role", "team"));
    assert_eq!(tag(rt.block_on(moto.aws()).iam()).as_deref(), Some("blue"));
    assert_eq!(
        tag(rt.block_on(moto.iam_in_account("111111111111"))).as_deref(),
        Some("green")
    );

    // Drift in the assumed account is repaired like any other.
    tag_team(
        &rt,
        rt.block_on(moto.iam_in_account("111111111111")),
        "rogue",
    );
    d.wait_until("prod drift repaired", Duration::from_secs(30), || {
        tag(rt.block_on(moto.iam_in_account("111111111111"))).as_deref() == Some("green")
    });
    assert!(d.terminate().success());
}

/// An ed25519 key made for the test, and its allowed-signers line for the test committer.
pub(crate) fn signing_key() -> (ssh_key::PrivateKey, String) {
    let key =
        ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&rand::random()));
    let line = format!(
        "{} namespaces=\"git\" {}\n",
        git::EMAIL,
        key.public_key().to_openssh().unwrap()
    );
    (key, line)
}

#[test]
fn verify_commits_applies_only_revisions_signed_by_an_allowed_key() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let repo = Repo::new();
    let (alice, alice_line) = signing_key();
    let (mallory, mallory_line) = signing_key();
    let signers_dir = tempfile::tempdir().unwrap();
    let signers = signers_dir.path().join("allowed_signers");
    std::fs::write(&signers, format!("# deployers\n{alice_line}")).unwrap();

    let first = repo.commit_signed(
        &[
            ("manifests/env.yaml", environment()),
            ("manifests/iam.yaml", &role("blue")),
        ],
        "first, signed",
        &alice,
    );
    let d = Daemon::start(
        &moto,
        &repo.url(),
        &[
            "--verify-commits",
            "--allowed-signers",
            signers.to_str().unwrap(),
        ],
    );
    d.wait_until(
        "the signed revision in AWS",
        Duration::from_secs(60),
        || role_tag(&rt, &moto, "team").as_deref() == Some("blue"),
    );
    d.wait_until("status shows it applied", Duration::from_secs(20), || {
        d.status()["last_applied_revision"] == first.as_str()
    });
    let failures = |reason: &str| {
        d.metric(
            "mlspace_gitops_commit_verification_failures_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(failures("unsigned"), 0.0);
    // `""`: every reason summed.
    let unverified = |reason: &str| {
        let labels: &[(&str, &str)] = if reason.is_empty() {
            &[]
        } else {
            &[("reason", reason)]
        };
        d.metric("mlspace_gitops_head_commit_unverified", labels)
    };
    assert_eq!(unverified(""), 0.0);

    // Unsigned, then signed by a key not in the file: refused, reported, AWS unchanged.
    let invalid_before = d.metric("mlspace_gitops_reconcile_total", &[("result", "invalid")]);
    for (signer, reason, why) in [
        (None, "unsigned", "not signed"),
        (
            Some(&mallory),
            "unknown_key",
            "is not in the allowed signers file",
        ),
    ] {
        // Made one at a time: the daemon must see each as the branch head.
        let files = [("manifests/iam.yaml", role("red"))];
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        let rev = match signer {
            None => repo.commit(&files, "unsigned"),
            Some(key) => repo.commit_signed(&files, "stranger", key),
        };
        d.wait_until(
            &format!("{reason} reported"),
            Duration::from_secs(20),
            || {
                let s = d.status();
                s["last_rejected_revision"] == rev.as_str()
                    && s["last_error"].as_str().is_some_and(|e| e.contains(why))
            },
        );
        let s = d.status();
        assert_eq!(s["last_applied_revision"], first.as_str(), "{s:#}");
        assert_eq!(s["source_revision"], rev.as_str(), "{s:#}");
        assert!(s["last_error"].as_str().unwrap().contains(&rev), "{s:#}");
        // Counted once, however many polls see it; the head's gauge holds while it is.
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(failures(reason), 1.0, "{reason}");
        assert_eq!(unverified(reason), 1.0, "{reason}");
        assert_eq!(unverified(""), 1.0, "one reason at a time");
        assert_eq!(
            d.status()["last_rejected_revision"],
            rev.as_str(),
            "a resync cleared the refusal"
        );
        assert!(d.status()["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(why)));
        assert_eq!(role_tag(&rt, &moto, "team").as_deref(), Some("blue"));
    }
    assert_eq!(
        d.metric("mlspace_gitops_reconcile_total", &[("result", "invalid")]),
        invalid_before + 2.0
    );
    assert!(
        d.log().contains("commit signature not verified"),
        "{}",
        d.log()
    );

    // The file is re-read: allowing the second key makes its (unchanged) head apply.
    let stranger = d.status()["source_revision"].as_str().unwrap().to_string();
    std::fs::write(&signers, format!("{alice_line}{mallory_line}")).unwrap();
    d.wait_until(
        "the newly allowed key's revision in AWS",
        Duration::from_secs(30),
        || role_tag(&rt, &moto, "team").as_deref() == Some("red"),
    );
    d.wait_until("status shows it applied", Duration::from_secs(20), || {
        d.status()["last_applied_revision"] == stranger.as_str()
    });
    assert_eq!(unverified(""), 0.0, "a verified head clears the gauge");

    // The next good signed commit applies and clears the error.
    let next = repo.commit_signed(&[("manifests/iam.yaml", &role("green"))], "green", &alice);
    d.wait_until(
        "the next signed revision in AWS",
        Duration::from_secs(30),
        || role_tag(&rt, &moto, "team").as_deref() == Some("green"),
    );
    d.wait_until("status shows it, no error", Duration::from_secs(20), || {
        let s = d.status();
        s["last_applied_revision"] == next.as_str() && s["last_error"].is_null()
    });
    let status = d.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn verify_commits_needs_a_git_source_and_an_allowed_signers_file() {
    let dir = tempfile::tempdir().unwrap();
    let signers = dir.path().join("allowed_signers");
    let (_, line) = signing_key();
    std::fs::write(&signers, &line).unwrap();
    let bad = dir.path().join("bad_signers");
    std::fs::write(&bad, format!("{line}oops ssh-ed25519 notakey\n")).unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let repo = Repo::new();
    let run = |source: &str, args: &[&str]| {
        let o = mlspace(&["run", "--source", source, "--listen", "127.0.0.1:0"])
            .state_dir(dir.path().join("state"))
            .args(args)
            .env_remove("MLSPACE_GITOPS_VERIFY_COMMITS")
            .env_remove("MLSPACE_GITOPS_ALLOWED_SIGNERS")
            .run();
        assert!(!o.status.success(), "{args:?} started");
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let signers = signers.to_str().unwrap();
    let local = manifests.to_str().unwrap();
    let err = run(local, &["--verify-commits", "--allowed-signers", signers]);
    assert!(err.contains("only be verified for a git source"), "{err}");
    let err = run(&repo.url(), &["--verify-commits"]);
    assert!(
        err.contains("--verify-commits needs --allowed-signers"),
        "{err}"
    );
    let err = run(&repo.url(), &["--allowed-signers", signers]);
    assert!(err.contains("--verify-commits is not"), "{err}");
    let err = run(
        &repo.url(),
        &[
            "--verify-commits",
            "--allowed-signers",
            bad.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("bad_signers:2: cannot parse the public key"),
        "{err}"
    );
}

/// Watches the daemon through an outage: it must stay up, and `/readyz` is sampled.
struct OutageWatch {
    /// Seconds into the outage when `/readyz` first answered 503 with each distinct reason.
    unready: Vec<(f64, String)>,
}

impl OutageWatch {
    /// Sample for `length`, every 250 ms: the process never exits.
    fn run(d: &mut Daemon, length: Duration, mut during: impl FnMut(Duration)) -> OutageWatch {
        let start = Instant::now();
        let mut w = OutageWatch {
            unready: Vec::new(),
        };
        while start.elapsed() < length {
            if let Some(exit) = d.child.try_wait().unwrap() {
                panic!("the daemon exited during the outage: {exit}\n{}", d.log());
            }
            let (code, body) = d.get("/readyz");
            if code == 503 && w.unready.iter().all(|(_, r)| *r != body) {
                w.unready.push((start.elapsed().as_secs_f64(), body));
            }
            during(start.elapsed());
            std::thread::sleep(Duration::from_millis(250));
        }
        w
    }

    /// When `/readyz` first gave a reason containing `what`, and that reason.
    fn first(&self, what: &str) -> (f64, String) {
        self.unready
            .iter()
            .find(|(_, r)| r.contains(what))
            .cloned()
            .unwrap_or_else(|| panic!("/readyz never said {what:?}: {:?}", self.unready))
    }
}

#[test]
fn daemon_rides_out_a_minute_without_aws_and_a_minute_without_its_git_remote() {
    use crate::support::fault_proxy::{Fault, FaultConfig, FaultProxy, Outage};
    const OUTAGE: Duration = Duration::from_secs(60);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default());
    let repo = Repo::new();
    let first = repo.commit(
        &[
            ("manifests/env.yaml", environment()),
            ("manifests/iam.yaml", &role("one")),
        ],
        "first",
    );
    let aws_env = moto.env_via(&proxy.endpoint);
    let mut d = Daemon::start_env(&aws_env, &repo.url(), &["--aws-attempt-timeout", "2s"]);
    d.wait_until(
        "ready with the first revision",
        Duration::from_secs(60),
        || d.get("/readyz").0 == 200 && d.status()["last_applied_revision"] == first.as_str(),
    );
    // Ready again, with `rev` applied and every resource in sync.
    let settled_at = |d: &Daemon, rev: &str| {
        let s = d.status();
        d.get("/readyz").0 == 200
            && s["last_applied_revision"] == rev
            && s["resources"]
                .as_array()
                .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["state"] == "in_sync"))
    };

    // AWS goes away for a minute: first a black hole (requests never answered), then every
    // connection refused. A commit arrives meanwhile.
    let aws_failed_before = d.metric(
        "mlspace_gitops_aws_requests_total",
        &[("result", "server_error")],
    );
    let reconcile_failed_before =
        d.metric("mlspace_gitops_reconcile_total", &[("result", "failure")]);
    proxy.reset_counts();
    proxy.set_config(FaultConfig {
        outage: Some(Outage::Blackhole),
        ..FaultConfig::default()
    });
    let mut second = None;
    let watch = OutageWatch::run(&mut d, OUTAGE, |t| {
        if second.is_none() && t > Duration::from_secs(2) {
            second = Some(repo.commit(&[("manifests/iam.yaml", &role("two"))], "two"));
        }
        if t > OUTAGE / 2 {
            proxy.set_config(FaultConfig {
                outage: Some(Outage::Refuse),
                ..FaultConfig::default()
            });
        }
    });
    let second = second.unwrap();
    let attempts = proxy.counts().fault(Fault::Outage);
    let (unready_at, reason) = watch.first("AWS not answering: Environment e2e");
    let s = d.status();
    assert_eq!(s["source_revision"], second.as_str(), "{s:#}");
    assert_eq!(s["last_applied_revision"], first.as_str(), "{s:#}");
    assert!(s["last_error"].is_string(), "{s:#}");
    let aws_failed = d.metric(
        "mlspace_gitops_aws_requests_total",
        &[("result", "server_error")],
    ) - aws_failed_before;
    let reconcile_failed = d.metric("mlspace_gitops_reconcile_total", &[("result", "failure")])
        - reconcile_failed_before;
    assert!(
        aws_failed >= 1.0 && reconcile_failed >= 1.0,
        "failures not counted"
    );
    assert_eq!(
        role_tag(&rt, &moto, "team").as_deref(),
        Some("one"),
        "written during the outage?"
    );

    // AWS is back: the commit made during the outage is applied.
    proxy.set_config(FaultConfig::default());
    let back = d.wait_until(
        "the revision of the outage applied after AWS came back",
        Duration::from_secs(60),
        || settled_at(&d, &second),
    );
    assert_eq!(role_tag(&rt, &moto, "team").as_deref(), Some("two"));
    eprintln!(
        "FIGURES aws outage {} s: daemon up throughout; /readyz 503 after {unready_at:.1} s ({reason}); {attempts} attempts reached the dead endpoint ({:.1}/s); counted: aws_requests_total{{result=server_error}} +{aws_failed}, reconcile_total{{result=failure}} +{reconcile_failed}; converged and ready {:.1} s after AWS came back",
        OUTAGE.as_secs(),
        attempts as f64 / OUTAGE.as_secs_f64(),
        back.as_secs_f64()
    );

    // The git remote goes away for a minute. The last good revision is still enforced:
    // drift made meanwhile is repaired.
    let fetch_failed_before = d.metric(
        "mlspace_gitops_source_fetch_total",
        &[("result", "failure")],
    );
    let away = repo.dir.path().with_extension("away");
    std::fs::rename(repo.dir.path(), &away).unwrap();
    let mut drifted_at = None;
    let mut repaired_after = None;
    let iam = rt.block_on(moto.aws()).iam();
    let watch = OutageWatch::run(&mut d, OUTAGE, |t| {
        if drifted_at.is_none() && t > Duration::from_secs(5) {
            tag_team(&rt, iam.clone(), "drifted");
            drifted_at = Some(t);
        }
        if let (Some(at), None) = (drifted_at, repaired_after) {
            if role_tag(&rt, &moto, "team").as_deref() == Some("two") {
                repaired_after = Some(t - at);
            }
        }
    });
    let (unready_at, reason) = watch.first("source not reached recently");
    assert!(
        watch.unready.iter().all(|(_, r)| !r.contains("AWS")),
        "{:?}",
        watch.unready
    );
    let repaired_after = repaired_after.expect("drift during the git outage not repaired");
    let fetch_failed = d.metric(
        "mlspace_gitops_source_fetch_total",
        &[("result", "failure")],
    ) - fetch_failed_before;
    assert!(
        fetch_failed >= 10.0,
        "fetch failures not counted: {fetch_failed}"
    );
    assert!(d.status()["last_fetch_error"].is_string());

    // The remote is back with a new commit: fetched, applied, ready.
    std::fs::rename(&away, repo.dir.path()).unwrap();
    let third = repo.commit(&[("manifests/iam.yaml", &role("three"))], "three");
    let back = d.wait_until(
        "the commit pushed after the git outage applied",
        Duration::from_secs(60),
        || settled_at(&d, &third),
    );
    assert_eq!(role_tag(&rt, &moto, "team").as_deref(), Some("three"));
    assert!(d.status()["last_fetch_error"].is_null());
    eprintln!(
        "FIGURES git outage {} s: daemon up throughout; /readyz 503 after {unready_at:.1} s ({reason}); source_fetch_total{{result=failure}} +{fetch_failed}; drift made during it repaired in {:.1} s; a commit pushed after it applied and ready in {:.1} s",
        OUTAGE.as_secs(),
        repaired_after.as_secs_f64(),
        back.as_secs_f64()
    );
    assert!(d.terminate().success());
}

#[test]
fn daemon_under_20_percent_faults_converges_and_stays_up() {
    use crate::support::fault_proxy::{FaultConfig, FaultProxy};
    use mlspace_gitops::kinds::ResourceSpec;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::twenty_percent());
    let aws_env = moto.env_via(&proxy.endpoint);
    let manifests = manifests_dir();
    let mut d = Daemon::start_env(&aws_env, &manifests.display().to_string(), &[]);
    let converged = d.wait_until(
        "every resource in sync through the faults",
        Duration::from_secs(180),
        || {
            let s = d.status();
            s["last_applied_revision"].is_string()
                && s["resources"]
                    .as_array()
                    .is_some_and(|r| r.len() >= 30 && r.iter().all(|r| r["state"] == "in_sync"))
        },
    );
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon exited");
    let c = proxy.counts();
    let failures = d.metric("mlspace_gitops_reconcile_total", &[("result", "failure")]);
    let failed_changes = d.metric(
        "mlspace_gitops_changes_applied_total",
        &[("result", "failure")],
    );

    // Faults off: the account is exactly the manifests', each policy with one version.
    proxy.set_config(FaultConfig::default());
    let o = mlspace(&["plan", "--detailed-exitcode"])
        .manifests(&manifests)
        .state_dir(d.state_dir())
        .aws(&moto)
        .run();
    assert_eq!(o.status.code(), Some(0), "not converged:\n{}", text(&o));
    let desired = mlspace_gitops::manifest::load_dir(&manifests)
        .unwrap()
        .desired;
    let env = &desired.environment;
    let aws = rt.block_on(moto.aws());
    for r in &desired.resources {
        if let ResourceSpec::ManagedPolicy(p) = &r.spec {
            let arn = p.arn(&env.partition, &env.account, &r.name);
            let versions = rt.block_on(policy_versions(&aws, &arn));
            assert_eq!(versions.len(), 1, "{} has extra versions", r.name);
        }
    }
    eprintln!(
        "FIGURES daemon at 20% faults: seed={} in sync after {:.1} s; {} requests, {} faults; reconcile_total{{result=failure}} {failures}, failed changes retried {failed_changes}; daemon up throughout",
        proxy.seed,
        converged.as_secs_f64(),
        c.total_requests(),
        c.total_faults()
    );
    assert!(d.terminate().success());
}

/// Issue 13 in the daemon: a lint error refuses a revision like any invalid one; security
/// warnings are counted (`mlspace_gitops_lint_findings`) and listed in `/status`, and with
/// `--lint-fail-on security-warning` they refuse the revision too, the last good one kept.
#[test]
fn lint_findings_are_counted_listed_and_refused_when_asked() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let repo = Repo::new();
    let first = repo.commit(
        &[
            ("manifests/env.yaml", environment()),
            ("manifests/iam.yaml", &role("blue")),
        ],
        "first",
    );
    let d = Daemon::start(&moto, &repo.url(), &["--lint-fail-on", "security-warning"]);
    d.wait_until("the first revision in AWS", Duration::from_secs(60), || {
        role_tag(&rt, &moto, "team").as_deref() == Some("blue")
    });
    assert_eq!(
        d.metric(
            "mlspace_gitops_lint_findings",
            &[("severity", "security-warning")]
        ),
        0.0
    );

    // PassRole on every role: a security warning, refused under --lint-fail-on.
    let pass_role = "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: daemon-pass}\nspec:\n  document:\n    Version: '2012-10-17'\n    Statement: [{Effect: Allow, Action: 'iam:PassRole', Resource: '*'}]\n";
    let warned = repo.commit(
        &[
            ("manifests/iam.yaml", &role("green")),
            ("manifests/pass.yaml", pass_role),
        ],
        "pass any role",
    );
    d.wait_until(
        "the warned revision refused",
        Duration::from_secs(30),
        || {
            let s = d.status();
            s["last_attempted_revision"] == warned.as_str()
                && s["last_error"].as_str().is_some_and(|e| {
                    e.contains("1 lint finding(s) of severity security-warning or worse")
                })
        },
    );
    let s = d.status();
    assert_eq!(s["last_applied_revision"], first.as_str(), "{s:#}");
    let listed = s["security_warnings"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{s:#}");
    assert!(
        listed[0]
            .as_str()
            .unwrap()
            .contains("manifests/pass.yaml:7:"),
        "{s:#}"
    );
    assert!(listed[0]
        .as_str()
        .unwrap()
        .contains("security-warning[pass-role-wildcard]"));
    assert_eq!(
        d.metric(
            "mlspace_gitops_lint_findings",
            &[("severity", "security-warning")]
        ),
        1.0
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(role_tag(&rt, &moto, "team").as_deref(), Some("blue"));

    // Silenced with a reason: applied, nothing listed.
    let silenced = repo.commit(
        &[(
            "manifests/pass.yaml",
            &pass_role.replace(
                "metadata: {name: daemon-pass}",
                "metadata: {name: daemon-pass, annotations: {lint.mlspace-gitops/pass-role-wildcard: 'reviewed: the e2e test needs it'}}",
            ),
        )],
        "silence it",
    );
    d.wait_until(
        "the silenced revision applied",
        Duration::from_secs(60),
        || d.status()["last_applied_revision"] == silenced.as_str(),
    );
    assert_eq!(role_tag(&rt, &moto, "team").as_deref(), Some("green"));
    assert!(d.status()["security_warnings"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        d.metric(
            "mlspace_gitops_lint_findings",
            &[("severity", "security-warning")]
        ),
        0.0
    );

    // A lint error (a typo) refuses a revision with or without the flag.
    let typo = repo.commit(
        &[(
            "manifests/pass.yaml",
            &pass_role.replace("iam:PassRole", "iam:PasRole").replace(
                "Resource: '*'",
                "Resource: 'arn:aws:iam::123456789012:role/x'",
            ),
        )],
        "typo",
    );
    d.wait_until("the typo refused", Duration::from_secs(30), || {
        let s = d.status();
        s["last_attempted_revision"] == typo.as_str()
            && s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("is invalid") && e.contains("error[unknown-action]"))
    });
    assert_eq!(d.status()["last_applied_revision"], silenced.as_str());
}
