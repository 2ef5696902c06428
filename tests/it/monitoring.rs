//! The monitoring stack for real: a Prometheus server (Debian's `prometheus`) scrapes
//! daemons driven into the failures that `deploy/prometheus/alerts.yaml` is about, evaluates
//! those rules, and answers every query of `deploy/grafana/dashboard.json`.
//!
//! Prometheus loads the rules twice: the file as written, where every alert must go pending
//! (its expression holds on what the daemons export; the `for:` durations of minutes are not
//! waited out), and a copy whose only difference is every `for:` cut to 1 s, in a group of
//! its own, where every alert must fire with the labels that name its cause. promtool's unit
//! tests (deploy_prometheus) check the expressions against synthetic series; this checks
//! them against the series the daemon really exports.
//!
//! The daemons, one per failure, scraped as replicas of the job `mlspace-gitops`:
//!
//! | replica        | what it is driven into                                               |
//! |----------------|----------------------------------------------------------------------|
//! | `events`       | healthy, apply mode: drift repaired from CloudTrail events; its      |
//! |                | notifications go to a webhook that nothing answers                   |
//! | `detect`       | detect mode: drift left, a PassRole-on-`*` policy, a missing queue   |
//! | `throttled`    | AWS through a proxy that throttles 30% of requests                   |
//! | `invalid`      | a revision that does not validate                                    |
//! | `unsigned`     | `--verify-commits` and an unsigned head commit                       |
//! | `no-source`    | a git source that cannot be fetched                                  |
//! | `pruning`      | `--prune` and a revision that would delete most of what it manages   |
//! | `leader`, `standby` | two replicas on one DynamoDB lease; the leader is SIGKILLed     |
//! | `capped`       | two Environments and `--max-environments-per-replica 1`              |
//!
//! and one in a job of its own, `mlspace-gitops-cut-off`, whose only replica cannot reach
//! AWS at all (so the job has never reconciled: the stale alert is per job).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::daemon_e2e::signing_key;
use crate::events::{
    cloudtrail, environment, queue_with_dlq, resources, send, sqs, write_manifests, ACCOUNT, ADMIN,
};
use crate::support::daemon::Daemon;
use crate::support::fault_proxy::{FaultConfig, FaultProxy, Rates};
use crate::support::git::Repo;
use crate::support::iam::role_tags;
use crate::support::prometheus::{AlertRule, Prometheus};
use crate::support::{free_port, kill, mlspace, read, read_json, Clients as _, CommandExt, Moto};

/// The scrape job the alerts and the dashboard expect.
const JOB: &str = "mlspace-gitops";
/// A second deployment, whose one replica cannot reach AWS.
const CUT_OFF_JOB: &str = "mlspace-gitops-cut-off";
/// The Environments of the replica with room for one.
const CAPPED: [&str; 2] = ["capped-a", "capped-b"];

/// The one of [`CAPPED`] the sharding leaves out: a lone replica with room for one takes
/// the Environment placed first, whatever its id.
fn left_out() -> String {
    let one = [mlspace_gitops::shard::Member {
        id: "any".into(),
        cap: Some(1),
    }];
    let a = mlspace_gitops::shard::assign(CAPPED, &one);
    CAPPED
        .iter()
        .find(|e| !a.contains_key(**e))
        .unwrap()
        .to_string()
}

/// The group of the copy of the rules with every `for:` cut to 1 s.
const SHORT_GROUP: &str = "mlspace-gitops-for-1s";

/// Alerts no daemon is driven into here, and why.
const NOT_DRIVEN: &[(&str, &str)] = &[(
    "MlspaceGitopsSeveralLeaders",
    "two replicas leading one Environment is what the fenced lease prevents; the test \
     checks instead that it stays inactive while a standby takes over from a killed leader",
)];

/// An Environment without events.
fn plain_environment(name: &str) -> String {
    format!(
        "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {{name: {name}}}\nspec:\n  region: us-east-1\n  account: \"{ACCOUNT}\"\n  tags: {{system: MLSpace}}\n"
    )
}

/// A role and a table named with `prefix`.
fn role_and_table(prefix: &str) -> String {
    format!(
        "---\napiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: {prefix}-role}}\nspec:\n  assumeRolePolicy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: 'sts:AssumeRole'}}]}}\n  tags: {{team: a}}\n\
---\napiVersion: mlspace-gitops/v1\nkind: Table\nmetadata: {{name: {prefix}-table}}\nspec:\n  partitionKey: {{name: pk, type: S}}\n  pointInTimeRecovery: false\n"
    )
}

/// A policy that lets its holder pass every role: a lint security warning, not an error.
const PASS_ANY_ROLE: &str = "---\napiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: det-pass-any-role}\nspec:\n  document: {Version: '2012-10-17', Statement: [{Effect: Allow, Action: 'iam:PassRole', Resource: '*'}]}\n";

/// The alert rules of deploy/prometheus/alerts.yaml with every `for:` cut to 1 s, in a
/// group named [`SHORT_GROUP`]; nothing else changes.
fn rules_with_short_for(rules: &str) -> String {
    let mut cut = 0;
    let out: Vec<String> = rules
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("for: ") {
                cut += 1;
                format!("{}for: 1s", &l[..l.len() - t.len()])
            } else if t == "- name: mlspace-gitops" {
                l.replace("mlspace-gitops", SHORT_GROUP)
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(
        cut,
        rules.matches("- alert: ").count(),
        "every alert has one `for:`"
    );
    out.join("\n")
}

/// What each alert's labels must name: the replica (`instance`), the job or the
/// Environment that was driven into its failure.
fn expected_cause(ports: &BTreeMap<&str, u16>) -> BTreeMap<&'static str, (&'static str, String)> {
    let at = |r: &str| format!("127.0.0.1:{}", ports[r]);
    BTreeMap::from([
        ("MlspaceGitopsDown", ("instance", at("leader"))),
        ("MlspaceGitopsReconcileFailing", ("instance", at("cut-off"))),
        (
            "MlspaceGitopsReconcileStale",
            ("job", CUT_OFF_JOB.to_string()),
        ),
        ("MlspaceGitopsRevisionInvalid", ("instance", at("invalid"))),
        ("MlspaceGitopsSecurityWarnings", ("instance", at("detect"))),
        ("MlspaceGitopsDriftNotRepaired", ("instance", at("detect"))),
        (
            "MlspaceGitopsSourceNotFetched",
            ("instance", at("no-source")),
        ),
        (
            "MlspaceGitopsNoLeader",
            ("environment", "shared".to_string()),
        ),
        (
            "MlspaceGitopsAwsThrottlingHigh",
            ("instance", at("throttled")),
        ),
        ("MlspaceGitopsAwsUnreachable", ("instance", at("cut-off"))),
        (
            "MlspaceGitopsPruneRefused",
            ("environment", "pruning".to_string()),
        ),
        (
            "MlspaceGitopsCommitUnverified",
            ("instance", at("unsigned")),
        ),
        (
            "MlspaceGitopsEventQueueUnreadable",
            ("environment", "drifting".to_string()),
        ),
        (
            "MlspaceGitopsEnvironmentNotReconciled",
            ("environment", left_out()),
        ),
        (
            "MlspaceGitopsNotificationsFailing",
            ("sink", "webhook-0".to_string()),
        ),
    ])
}

/// What has been seen of the alerts so far, polled: per (group, alert), the states its
/// alerts were in and their label sets.
#[derive(Default)]
struct Seen(BTreeMap<(String, String), (BTreeSet<String>, Vec<Value>)>);

impl Seen {
    fn record(&mut self, rules: &[AlertRule]) {
        for r in rules {
            let e = self.0.entry((r.group.clone(), r.name.clone())).or_default();
            for (state, labels) in &r.alerts {
                e.0.insert(state.clone());
                if !e.1.contains(labels) {
                    e.1.push(labels.clone());
                }
            }
        }
    }

    /// Whether `alert` of `group` was in `state` with `label` = `value`.
    fn saw(&self, group: &str, alert: &str, states: &[&str], label: &str, value: &str) -> bool {
        self.0
            .get(&(group.to_string(), alert.to_string()))
            .is_some_and(|(s, labels)| {
                states.iter().any(|st| s.contains(*st)) && labels.iter().any(|l| l[label] == value)
            })
    }

    fn states(&self, group: &str, alert: &str) -> BTreeSet<String> {
        self.0
            .get(&(group.to_string(), alert.to_string()))
            .map(|e| e.0.clone())
            .unwrap_or_default()
    }
}

/// Drift behind the daemon's back on the healthy replica's role and its CloudTrail event
/// on the queue, with an event about a role it does not manage; waits for the repair.
async fn drift_and_event(iam: &aws_sdk_iam::Client, q: &aws_sdk_sqs::Client, url: &str) {
    iam.untag_role()
        .role_name("mon-role")
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let event = cloudtrail(
        "aws.iam",
        "UntagRole",
        json!({"roleName": "mon-role", "tagKeys": ["team"]}),
        ADMIN,
        ACCOUNT,
    );
    send(q, url, &event).await;
    // And one about a role it does not manage, which it ignores.
    let unmanaged = cloudtrail(
        "aws.iam",
        "UntagRole",
        json!({"roleName": "someone-elses-role", "tagKeys": ["team"]}),
        ADMIN,
        ACCOUNT,
    );
    send(q, url, &unmanaged).await;
    let start = Instant::now();
    while !role_tags(iam, "mon-role")
        .await
        .contains(&("team".into(), "a".into()))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the healthy replica did not repair the role from its event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn prometheus_fires_every_alert_on_daemons_driven_into_failure_and_the_dashboard_has_data() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.aws());
    let (iam, q) = (aws.iam(), sqs(&aws));
    let fast = [
        "--resync",
        "5s",
        "--retry-base",
        "1s",
        "--grace-period",
        "2s",
    ];
    let mut daemons: BTreeMap<&str, Daemon> = BTreeMap::new();
    let mut keep = Vec::new(); // directories the daemons read

    // Healthy, with events: drift repaired seconds after its CloudTrail event.
    let (url, _) = rt.block_on(queue_with_dlq(&q, "monitoring-events", 30, 5));
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        &dir.path().join("manifests"),
        &format!(
            "{}{}",
            environment("healthy", ACCOUNT, &[&url], ""),
            resources("mon")
        ),
    );
    // It notifies a webhook that nothing answers.
    let secret = dir.path().join("notify-secret");
    std::fs::write(&secret, "a-notification-signing-key").unwrap();
    let webhook = format!("webhook+http://127.0.0.1:{}/hooks", free_port());
    let notify = [
        "--notify",
        webhook.as_str(),
        "--notify-secret-file",
        secret.to_str().unwrap(),
    ];
    daemons.insert(
        "events",
        Daemon::spawn(
            &moto.env(),
            dir.path().join("manifests").to_str().unwrap(),
            None,
            &[&fast[..], &notify].concat(),
        ),
    );
    keep.push(dir);

    // Detect mode over resources applied before: drift stays; a policy with a security
    // warning; an event queue that does not exist.
    let dir = tempfile::tempdir().unwrap();
    let missing_queue = format!("{}/{ACCOUNT}/no-such-queue", moto.endpoint);
    write_manifests(
        dir.path(),
        &format!(
            "{}{}{PASS_ANY_ROLE}",
            environment("drifting", ACCOUNT, &[&missing_queue], ""),
            role_and_table("det")
        ),
    );
    let state = tempfile::tempdir().unwrap();
    let out = mlspace(&["apply", "--auto-approve"])
        .manifests(dir.path())
        .state_dir(state.path())
        .aws(&moto)
        .run();
    assert!(out.status.success(), "{}", crate::support::text(&out));
    rt.block_on(async {
        iam.untag_role()
            .role_name("det-role")
            .tag_keys("team")
            .send()
            .await
            .unwrap()
    });
    let detect = [&fast[..], &["--mode", "detect"]].concat();
    daemons.insert(
        "detect",
        Daemon::spawn(
            &moto.env(),
            dir.path().to_str().unwrap(),
            Some(state.path()),
            &detect,
        ),
    );
    keep.push(dir);
    keep.push(state);

    // Through a proxy that throttles 30% of the requests.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::uniform(Rates::throttle_only(0.3)),
    );
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!(
            "{}{}",
            plain_environment("throttled"),
            role_and_table("thr")
        ),
    );
    daemons.insert(
        "throttled",
        Daemon::spawn(
            &moto.env_via(&proxy.endpoint),
            dir.path().to_str().unwrap(),
            None,
            &fast,
        ),
    );
    keep.push(dir);

    // A revision that does not validate (an unknown field).
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!(
            "{}---\napiVersion: mlspace-gitops/v1\nkind: Table\nmetadata: {{name: inv-table}}\nspec:\n  partitionKey: {{name: pk, type: S}}\n  colour: blue\n",
            plain_environment("invalid")
        ),
    );
    daemons.insert(
        "invalid",
        Daemon::spawn(&moto.env(), dir.path().to_str().unwrap(), None, &fast),
    );
    keep.push(dir);

    // --verify-commits, and the head commit is not signed.
    let repo = Repo::new();
    let env_file = plain_environment("unsigned");
    let res_file = role_and_table("uns");
    repo.commit(
        &[
            ("manifests/env.yaml", env_file.as_str()),
            ("manifests/res.yaml", res_file.as_str()),
        ],
        "not signed",
    );
    let (_, signer) = signing_key();
    let signers = tempfile::tempdir().unwrap();
    let signers_file = signers.path().join("allowed_signers");
    std::fs::write(&signers_file, signer).unwrap();
    let verify = [
        &fast[..],
        &[
            "--interval",
            "1s",
            "--verify-commits",
            "--allowed-signers",
            signers_file.to_str().unwrap(),
        ],
    ]
    .concat();
    daemons.insert(
        "unsigned",
        Daemon::spawn(&moto.env(), &repo.url(), None, &verify),
    );

    // A git source that cannot be fetched.
    let gone = tempfile::tempdir().unwrap();
    let no_source = format!("file://{}/no-repository", gone.path().display());
    daemons.insert(
        "no-source",
        Daemon::spawn(
            &moto.env(),
            &no_source,
            None,
            &[&fast[..], &["--interval", "1s"]].concat(),
        ),
    );

    // --prune, then a revision that keeps one of three resources.
    let pruning = tempfile::tempdir().unwrap();
    write_manifests(
        pruning.path(),
        &format!(
            "{}{}{}",
            plain_environment("pruning"),
            role_and_table("prn"),
            "---\napiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: prn-policy}\nspec:\n  document: {Version: '2012-10-17', Statement: [{Effect: Allow, Action: 's3:GetObject', Resource: '*'}]}\n"
        ),
    );
    daemons.insert(
        "pruning",
        Daemon::spawn(
            &moto.env(),
            pruning.path().to_str().unwrap(),
            None,
            &[&fast[..], &["--prune"]].concat(),
        ),
    );

    // Two replicas on one DynamoDB lease.
    let shared = tempfile::tempdir().unwrap();
    write_manifests(
        shared.path(),
        &format!("{}{}", plain_environment("shared"), role_and_table("shr")),
    );
    let ha = [
        &fast[..],
        &[
            "--state",
            "dynamodb://monitoring-state",
            "--lease-ttl",
            "20s",
        ],
    ]
    .concat();
    let leader = Daemon::spawn(&moto.env(), shared.path().to_str().unwrap(), None, &ha);
    leader.wait_until("the first replica leads", Duration::from_secs(60), || {
        leader.metric("mlspace_gitops_leader", &[("environment", "shared")]) == 1.0
    });
    let standby = Daemon::spawn(&moto.env(), shared.path().to_str().unwrap(), None, &ha);
    // The sharding gives "shared" to one of the two by the hash of their ids: once both
    // assign it to the same replica and that one leads, "leader" is the one that leads (the
    // one SIGKILLed below).
    let assigned = |d: &Daemon| d.status()["environments"][0]["assigned_to"].clone();
    let leads = |d: &Daemon| d.metric("mlspace_gitops_leader", &[("environment", "shared")]) == 1.0;
    standby.wait_until(
        "both replicas agree on who reconciles shared, and it leads",
        Duration::from_secs(60),
        || {
            let a = assigned(&leader);
            !a.is_null()
                && a == assigned(&standby)
                && (leads(&leader) != leads(&standby))
                && !(leads(&leader) && leader.status()["environments"][0]["owner"] != a)
                && !(leads(&standby) && standby.status()["environments"][0]["owner"] != a)
        },
    );
    let (leader, standby) = if leads(&leader) {
        (leader, standby)
    } else {
        (standby, leader)
    };
    daemons.insert("leader", leader);
    daemons.insert("standby", standby);

    // Two Environments and room for one (--max-environments-per-replica 1): the other is
    // reconciled by nobody.
    let capped = tempfile::tempdir().unwrap();
    for name in CAPPED {
        write_manifests(
            &capped.path().join(name),
            &format!("{}{}", plain_environment(name), role_and_table(name)),
        );
    }
    daemons.insert(
        "capped",
        Daemon::spawn(
            &moto.env(),
            capped.path().to_str().unwrap(),
            None,
            &[&fast[..], &["--max-environments-per-replica", "1"]].concat(),
        ),
    );

    // Cut off from AWS: nothing answers at its endpoint.
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!("{}{}", plain_environment("cut-off"), role_and_table("cut")),
    );
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    daemons.insert(
        "cut-off",
        Daemon::spawn(
            &moto.env_via(&nowhere),
            dir.path().to_str().unwrap(),
            None,
            &fast,
        ),
    );
    keep.push(dir);

    let ports: BTreeMap<&str, u16> = daemons.iter().map(|(k, d)| (*k, d.port)).collect();
    let targets = |job_replicas: &[&str]| -> String {
        job_replicas
            .iter()
            .map(|r| format!("'127.0.0.1:{}'", ports[r]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let main_replicas: Vec<&str> = ports.keys().copied().filter(|r| *r != "cut-off").collect();
    let config = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}}\n\
         rule_files: [alerts.yaml, alerts-short.yaml]\n\
         scrape_configs:\n\
         - job_name: {JOB}\n  static_configs: [{{targets: [{}]}}]\n\
         - job_name: {CUT_OFF_JOB}\n  static_configs: [{{targets: [{}]}}]\n",
        targets(&main_replicas),
        targets(&["cut-off"]),
    );
    let rules = read("deploy/prometheus/alerts.yaml");
    let prom = Prometheus::start(
        &config,
        &[
            ("alerts.yaml", rules.clone()),
            ("alerts-short.yaml", rules_with_short_for(&rules)),
        ],
    );
    let alert_names: Vec<String> = prom
        .alert_rules()
        .iter()
        .filter(|r| r.group == JOB)
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(
        alert_names.len(),
        rules.matches("- alert: ").count(),
        "Prometheus loaded every alert of the file"
    );

    // Drive the rest: the healthy replica repairs drift from its events; the pruning one
    // is handed a revision that would delete two of its three resources.
    daemons["events"].wait_until(
        "the healthy replica's first reconcile",
        Duration::from_secs(90),
        || daemons["events"].status()["last_applied_revision"].is_string(),
    );
    rt.block_on(drift_and_event(&iam, &q, &url));
    daemons["pruning"].wait_until(
        "the pruning replica applies",
        Duration::from_secs(90),
        || daemons["pruning"].status()["last_applied_revision"].is_string(),
    );
    write_manifests(
        pruning.path(),
        &format!(
            "{}---\napiVersion: mlspace-gitops/v1\nkind: Table\nmetadata: {{name: prn-table}}\nspec:\n  partitionKey: {{name: pk, type: S}}\n  pointInTimeRecovery: false\n",
            plain_environment("pruning")
        ),
    );
    // Every replica scraped before the leader goes.
    let start = Instant::now();
    while prom.target_health().iter().any(|(_, h)| h != "up") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "targets not all up: {:?}",
            prom.target_health()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let killed_at = {
        let l = daemons.get_mut("leader").unwrap();
        kill(l.child.id(), "KILL");
        let _ = l.child.wait();
        Instant::now()
    };

    // Watch the rules until every driven alert has gone pending in the file's group and
    // fired in the short one, with the labels of its cause.
    let causes = expected_cause(&ports);
    let driven: Vec<&str> = alert_names
        .iter()
        .map(String::as_str)
        .filter(|a| !NOT_DRIVEN.iter().any(|(n, _)| n == a))
        .collect();
    for a in &driven {
        assert!(
            causes.contains_key(a),
            "{a} is neither driven by this test (expected_cause) nor in NOT_DRIVEN with a reason"
        );
    }
    let mut seen = Seen::default();
    let done = |seen: &Seen| {
        driven.iter().all(|a| {
            let (label, value) = &causes[a];
            seen.saw(JOB, a, &["pending", "firing"], label, value)
                && seen.saw(SHORT_GROUP, a, &["firing"], label, value)
        })
    };
    let start = Instant::now();
    while !done(&seen) && start.elapsed() < Duration::from_secs(150) {
        seen.record(&prom.alert_rules());
        std::thread::sleep(Duration::from_millis(300));
    }
    let missing: Vec<String> = driven
        .iter()
        .filter(|a| {
            let (label, value) = &causes[*a];
            !(seen.saw(JOB, a, &["pending", "firing"], label, value)
                && seen.saw(SHORT_GROUP, a, &["firing"], label, value))
        })
        .map(|a| {
            format!(
                "{a} (wanted {}={}; as written: {:?}, for 1s: {:?})",
                causes[a].0,
                causes[a].1,
                seen.states(JOB, a),
                seen.states(SHORT_GROUP, a)
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "alerts not raised for their cause:\n{}\nseen: {:#?}\nprometheus log:\n{}",
        missing.join("\n"),
        seen.0,
        prom.log()
    );
    for (name, _) in NOT_DRIVEN {
        for group in [JOB, SHORT_GROUP] {
            assert!(
                seen.states(group, name).is_empty(),
                "{name} went {:?} in {group}",
                seen.states(group, name)
            );
        }
    }
    // The standby took over: the NoLeader alert was the window between.
    daemons["standby"].wait_until(
        "the standby leads",
        Duration::from_secs(60).saturating_sub(killed_at.elapsed()),
        || daemons["standby"].metric("mlspace_gitops_leader", &[("environment", "shared")]) == 1.0,
    );

    // Every query of the dashboard returns data, with the variables as Grafana fills them.
    rt.block_on(drift_and_event(&iam, &q, &url));
    std::thread::sleep(Duration::from_secs(3)); // two scrapes of the repair's series
    let dashboard = read_json("deploy/grafana/dashboard.json");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard["panels"], &mut exprs);
    assert!(exprs.len() >= 20, "the dashboard's queries: {exprs:?}");
    let mut empty = Vec::new();
    for (title, expr) in &exprs {
        let q = expr
            .replace("$job", JOB)
            .replace("$instance", ".*")
            .replace("$__rate_interval", "1m");
        let samples = prom.query(&q);
        let numbers = samples
            .iter()
            .filter_map(|s| s["value"][1].as_str())
            .filter(|v| v.parse::<f64>().is_ok_and(|x| !x.is_nan()))
            .count();
        if numbers == 0 {
            empty.push(format!("{title}: {q} -> {samples:?}"));
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data:\n{}",
        empty.join("\n")
    );
    drop(keep);
}

/// (panel title, expr) of every query of `panels`, rows included.
fn collect_exprs(panels: &Value, out: &mut Vec<(String, String)>) {
    for p in panels.as_array().into_iter().flatten() {
        collect_exprs(&p["panels"], out);
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((p["title"].as_str().unwrap_or("").to_string(), e.to_string()));
            }
        }
    }
}

#[test]
fn the_short_for_copy_changes_only_the_for_durations() {
    let rules = read("deploy/prometheus/alerts.yaml");
    let short = rules_with_short_for(&rules);
    let (a, b): (Vec<&str>, Vec<&str>) = (rules.lines().collect(), short.lines().collect());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        if x != y {
            assert!(
                (x.trim_start().starts_with("for: ") && y.trim() == "for: 1s")
                    || (x.trim() == "- name: mlspace-gitops" && y.contains(SHORT_GROUP)),
                "{x} became {y}"
            );
        }
    }
}
