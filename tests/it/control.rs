//! Control end to end, against moto: the `mlspace-gitops/reconcile` annotation in `plan`,
//! `apply` and the daemon; `suspend`, `resume` and `reconcile` through the daemon's control
//! API as the CLI sends them (its token, its exit codes); suspension kept across a restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::daemon::Daemon;
use crate::support::http::http;
use crate::support::{iam, mlspace, text, Clients as _, CommandExt, Moto};

/// The control token every daemon started here reads from its file.
const TOKEN: &str = "control-token-for-tests-5f1e";

/// The Environment of these tests.
const ENV: &str = "ctl";

fn environment() -> String {
    format!("apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {{name: {ENV}}}\nspec:\n  region: us-east-1\n  account: \"123456789012\"\n")
}

/// A policy and a role tagged `team: TEAM`, the role annotated `mlspace-gitops/reconcile:
/// MODE` when given.
fn resources(team: &str, mode: Option<&str>) -> String {
    let annotations = mode
        .map(|m| format!(", annotations: {{mlspace-gitops/reconcile: {m}}}"))
        .unwrap_or_default();
    format!(
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: ctl-policy}}\nspec:\n  document:\n    Version: '2012-10-17'\n    Statement: [{{Effect: Allow, Action: 's3:GetObject', Resource: '*'}}]\n---\napiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: ctl-role{annotations}}}\nspec:\n  assumeRolePolicy:\n    Version: '2012-10-17'\n    Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: 'sts:AssumeRole'}}]\n  managedPolicies: [ctl-policy]\n  tags: {{team: {team}}}\n"
    )
}

/// A manifests directory (in a temporary directory that also holds the token file).
struct Setup {
    dir: tempfile::TempDir,
    manifests: PathBuf,
}

impl Setup {
    fn new(team: &str, mode: Option<&str>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        std::fs::write(manifests.join("env.yaml"), environment()).unwrap();
        std::fs::write(manifests.join("iam.yaml"), resources(team, mode)).unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        Setup { dir, manifests }
    }

    fn write(&self, team: &str, mode: Option<&str>) {
        std::fs::write(self.manifests.join("iam.yaml"), resources(team, mode)).unwrap();
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    fn src(&self) -> &str {
        self.manifests.to_str().unwrap()
    }
}

/// Drift: the role's `team` tag set to `value` behind the daemon's back.
fn tag_team(rt: &tokio::runtime::Runtime, moto: &Moto, value: &str) {
    rt.block_on(async { iam::tag_role(&moto.aws().await.iam(), "ctl-role", "team", value).await });
}

/// The role's `team` tag.
fn team(rt: &tokio::runtime::Runtime, moto: &Moto) -> Option<String> {
    rt.block_on(async { iam::role_tag(&moto.aws().await.iam(), "ctl-role", "team").await })
}

/// The state of resource `name` in `/status`.
fn state_of(status: &Value, name: &str) -> Option<String> {
    status["resources"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["state"].as_str().map(str::to_string))
}

/// The Environment's entry in `/status`.
fn env_status(d: &Daemon) -> Value {
    d.status()["environments"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["name"] == ENV).cloned())
        .unwrap_or(Value::Null)
}

/// `mlspace-gitops ARGS --daemon http://127.0.0.1:PORT --token-file FILE`.
fn ctl(d: &Daemon, token_file: &Path, args: &[&str]) -> std::process::Output {
    mlspace(args)
        .without_own_settings()
        .args(["--daemon", &format!("http://127.0.0.1:{}", d.port)])
        .arg("--token-file")
        .arg(token_file)
        .run()
}

/// The daemon on `setup` with the control token, [`crate::support::daemon::FAST`] timings
/// unless `flags` hold their own, and a state directory of its own or `state`.
fn daemon(moto: &Moto, setup: &Setup, state: Option<&Path>, flags: &[&str]) -> Daemon {
    let token = setup.token_file();
    let mut all: Vec<&str> = vec!["--control-token-file", token.to_str().unwrap()];
    all.extend_from_slice(flags);
    if !flags.contains(&"--resync") {
        all.extend_from_slice(crate::support::daemon::FAST);
    }
    let d = Daemon::spawn(&moto.env(), setup.src(), state, &all);
    d.wait_for_http();
    d
}

#[test]
fn the_reconcile_annotation_skips_or_observes_in_plan_and_apply() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let setup = Setup::new("blue", None);
    let apply = |extra: &[&str]| {
        mlspace(&["apply", "--auto-approve"])
            .args(extra)
            .without_own_settings()
            .manifests(&setup.manifests)
            .aws(&moto)
            .run()
    };
    let o = apply(&[]);
    assert!(o.status.success(), "{}", text(&o));
    tag_team(&rt, &moto, "rogue");

    // disabled: skipped with the reason, nothing written, not deleted by prune either.
    setup.write("green", Some("disabled"));
    let o = mlspace(&["plan", "-o", "json"])
        .without_own_settings()
        .manifests(&setup.manifests)
        .aws(&moto)
        .run();
    assert!(o.status.success(), "{}", text(&o));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let role = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ctl-role")
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(role["action"], "skip", "{plan}");
    assert!(role["reason"]
        .as_str()
        .unwrap()
        .contains("mlspace-gitops/reconcile: disabled"));
    assert_eq!(plan["summary"]["skip"], 1, "{plan}");
    assert_eq!(plan["summary"]["update"], 0, "{plan}");
    let o = apply(&["--prune"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(team(&rt, &moto).as_deref(), Some("rogue"), "{}", text(&o));

    // observe: the drift is reported, still not written.
    setup.write("green", Some("observe"));
    let o = mlspace(&["plan"])
        .without_own_settings()
        .manifests(&setup.manifests)
        .aws(&moto)
        .run();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("? Role ctl-role has drifted (observed only, not written)")
            && out.contains("spec.tags.team: \"rogue\" → \"green\"")
            && out.contains("1 drifted, observed only"),
        "{out}"
    );
    let o = apply(&["--prune"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(team(&rt, &moto).as_deref(), Some("rogue"), "{}", text(&o));

    // Without the annotation the drift is repaired.
    setup.write("green", None);
    let o = apply(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(team(&rt, &moto).as_deref(), Some("green"));

    // An unknown value is refused with file, line and annotation.
    setup.write("green", Some("paused"));
    let o = mlspace(&["validate"])
        .without_own_settings()
        .manifests(&setup.manifests)
        .run();
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("iam.yaml:11:")
            && out.contains("mlspace-gitops/reconcile")
            && out.contains("must be `disabled` or `observe`, got `paused`"),
        "{out}"
    );
}

#[test]
fn the_daemon_shows_observed_drift_and_leaves_disabled_resources_alone() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let setup = Setup::new("blue", None);
    let d = daemon(&moto, &setup, None, &["--prune"]);
    d.wait_until("the first apply", Duration::from_secs(60), || {
        team(&rt, &moto).as_deref() == Some("blue")
    });

    setup.write("blue", Some("observe"));
    tag_team(&rt, &moto, "rogue");
    d.wait_until("the drift reported", Duration::from_secs(30), || {
        state_of(&d.status(), "ctl-role").as_deref() == Some("drifted")
    });
    let applied = d.metric("mlspace_gitops_changes_applied_total", &[]);
    // Counted as drift at the resync, as in detect mode.
    d.wait_until("the drift counted", Duration::from_secs(15), || {
        d.metric("mlspace_gitops_drift_detected_total", &[("kind", "Role")]) >= 1.0
    });
    std::thread::sleep(Duration::from_secs(4)); // past a resync
    assert_eq!(team(&rt, &moto).as_deref(), Some("rogue"), "observe wrote");
    assert_eq!(
        d.metric("mlspace_gitops_changes_applied_total", &[]),
        applied
    );

    setup.write("blue", Some("disabled"));
    d.wait_until("the role suspended", Duration::from_secs(30), || {
        state_of(&d.status(), "ctl-role").as_deref() == Some("suspended")
    });
    d.wait_until("the suspended count", Duration::from_secs(10), || {
        d.metric(
            "mlspace_gitops_resources",
            &[("kind", "Role"), ("state", "suspended")],
        ) == 1.0
    });
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(team(&rt, &moto).as_deref(), Some("rogue"), "disabled wrote");
    assert_eq!(
        state_of(&d.status(), "ctl-policy").as_deref(),
        Some("in_sync")
    );

    setup.write("blue", None);
    d.wait_until("the drift repaired", Duration::from_secs(30), || {
        team(&rt, &moto).as_deref() == Some("blue")
    });
    assert!(d.terminate().success());
}

#[test]
fn suspend_stops_writes_survives_a_restart_and_resume_repairs() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let setup = Setup::new("blue", None);
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&moto, &setup, Some(state.path()), &[]);
    d.wait_until("the first apply", Duration::from_secs(60), || {
        team(&rt, &moto).as_deref() == Some("blue")
    });
    d.wait_until("the gauge at 0", Duration::from_secs(10), || {
        d.get("/metrics").1.contains(&format!(
            "mlspace_gitops_environment_suspended{{environment=\"{ENV}\"}} 0"
        ))
    });

    let o = ctl(
        &d,
        &setup.token_file(),
        &["suspend", ENV, "--reason", "incident 42", "--by", "ops"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("suspended"), "{}", text(&o));
    let e = env_status(&d);
    assert_eq!(e["suspended"], true, "{e}");
    assert_eq!(e["suspended_reason"], "incident 42", "{e}");
    assert_eq!(e["suspended_by"], "ops", "{e}");
    assert!(e["suspended_at"].as_u64().is_some(), "{e}");
    assert_eq!(
        state_of(&d.status(), "ctl-role").as_deref(),
        Some("suspended")
    );
    assert_eq!(
        d.metric(
            "mlspace_gitops_environment_suspended",
            &[("environment", ENV)]
        ),
        1.0
    );
    assert_eq!(
        d.metric("mlspace_gitops_resources", &[("state", "suspended")]),
        2.0
    );

    // Drift behind its back stays, past resyncs and a new revision.
    tag_team(&rt, &moto, "rogue");
    setup.write("green", None);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        team(&rt, &moto).as_deref(),
        Some("rogue"),
        "suspended wrote"
    );
    // Reconcile-now is refused while suspended.
    let o = ctl(&d, &setup.token_file(), &["reconcile", ENV]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is suspended"), "{}", text(&o));

    // A restart on the same state directory is still suspended.
    let mut d = d;
    d.stop();
    drop(d);
    let d = daemon(&moto, &setup, Some(state.path()), &[]);
    d.wait_until(
        "suspended after the restart",
        Duration::from_secs(30),
        || {
            env_status(&d)["suspended"] == true
                && state_of(&d.status(), "ctl-role").as_deref() == Some("suspended")
        },
    );
    assert_eq!(env_status(&d)["suspended_reason"], "incident 42");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        team(&rt, &moto).as_deref(),
        Some("rogue"),
        "suspended wrote"
    );
    assert!(d.log().contains("suspended"), "{}", d.log());

    let o = ctl(&d, &setup.token_file(), &["resume", ENV]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed"), "{}", text(&o));
    d.wait_until("resume repairs", Duration::from_secs(30), || {
        team(&rt, &moto).as_deref() == Some("green")
    });
    assert_eq!(env_status(&d)["suspended"], false);
    assert_eq!(
        d.metric(
            "mlspace_gitops_environment_suspended",
            &[("environment", ENV)]
        ),
        0.0
    );
    // Never shown anywhere.
    assert!(!d.log().contains(TOKEN));
    assert!(!d.get("/status").1.contains(TOKEN));
    assert!(!d.get("/metrics").1.contains(TOKEN));
    assert!(d.terminate().success());
}

#[test]
fn reconcile_now_repairs_drift_long_before_the_resync() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let setup = Setup::new("blue", None);
    let d = daemon(&moto, &setup, None, &["--resync", "1h", "--interval", "1h"]);
    d.wait_until("the first apply", Duration::from_secs(60), || {
        team(&rt, &moto).as_deref() == Some("blue")
    });
    d.wait_until("ready", Duration::from_secs(20), || {
        d.get("/readyz").0 == 200
    });
    tag_team(&rt, &moto, "rogue");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(team(&rt, &moto).as_deref(), Some("rogue"));

    let o = ctl(&d, &setup.token_file(), &["reconcile", ENV]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("reconciling"), "{}", text(&o));
    let took = d.wait_until("the drift repaired", Duration::from_secs(20), || {
        team(&rt, &moto).as_deref() == Some("blue")
    });
    eprintln!("reconcile-now repaired in {:.1} s", took.as_secs_f64());

    // All Environments at once.
    tag_team(&rt, &moto, "rogue");
    let o = ctl(&d, &setup.token_file(), &["reconcile"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(ENV), "{}", text(&o));
    d.wait_until("repaired again", Duration::from_secs(20), || {
        team(&rt, &moto).as_deref() == Some("blue")
    });

    // Unknown Environment: 404, exit 1 with the server's message.
    let o = ctl(&d, &setup.token_file(), &["reconcile", "nope"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no Environment nope") && text(&o).contains("HTTP 404"),
        "{}",
        text(&o)
    );
    let o = ctl(&d, &setup.token_file(), &["suspend", "nope"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(d.terminate().success());
}

#[test]
fn control_requests_need_the_token() {
    let moto = Moto::start();
    let setup = Setup::new("blue", None);
    let d = daemon(&moto, &setup, None, &[]);
    let path = format!("/api/v1/environments/{ENV}/suspend");
    let post = |headers: &[(&str, &str)]| http(d.port, "POST", &path, headers, b"");

    let (code, body) = post(&[]);
    assert_eq!(code, 401, "{body}");
    let (code, body) = post(&[("Authorization", "Bearer not-the-token")]);
    assert_eq!((code, body.contains("wrong token")), (401, true), "{body}");
    let (code, body) = post(&[("Authorization", &format!("Basic {TOKEN}"))]);
    assert_eq!(code, 401, "{body}");
    let wrong = setup.dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let o = ctl(&d, &wrong, &["suspend", ENV]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("wrong token (HTTP 401)"), "{}", text(&o));
    assert_ne!(env_status(&d)["suspended"], true);
    // A token with a bad body: 400.
    d.wait_until("the first reconcile", Duration::from_secs(60), || {
        state_of(&d.status(), "ctl-role").as_deref() == Some("in_sync")
    });
    let (code, body) = http(
        d.port,
        "POST",
        &path,
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"{\"why\": 1}",
    );
    assert_eq!(code, 400, "{body}");
    assert!(!d.log().contains(TOKEN), "the token reached the log");
    assert!(d.terminate().success());

    // Without --control-token-file: not enabled.
    let plain = Daemon::start(&moto, setup.src(), &[]);
    plain.wait_for_http();
    let (code, body) = http(
        plain.port,
        "POST",
        "/api/v1/reconcile",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("control not enabled"), "{body}");
    let o = ctl(&plain, &setup.token_file(), &["reconcile"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("control not enabled"), "{}", text(&o));
    // No daemon at all: a clear error.
    let o = mlspace(&["resume", ENV, "--daemon", "http://127.0.0.1:1"])
        .without_own_settings()
        .arg("--token-file")
        .arg(setup.token_file())
        .run();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("connecting to the daemon"),
        "{}",
        text(&o)
    );
    assert!(plain.terminate().success());
}

#[test]
fn replicas_share_the_suspension_and_only_the_leader_reconciles_now() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let setup = Setup::new("blue", None);
    let ha = [
        "--state",
        "dynamodb://mlspace-gitops-state",
        "--lease-ttl",
        "3s",
    ];
    let a = daemon(&moto, &setup, None, &ha);
    a.wait_until("replica A leads", Duration::from_secs(60), || {
        a.metric("mlspace_gitops_leader", &[("environment", ENV)]) == 1.0
            && team(&rt, &moto).as_deref() == Some("blue")
    });
    let b = daemon(&moto, &setup, None, &ha);
    // Settled once both have read each other's heartbeat and agree: the sharding may give
    // the Environment to B, and A then hands it over. (Regression: this waited only for B
    // to show `leader: false`, which it does before it has asked for the lease at all, and
    // took A for the leader, which it is not when the hash picks B.)
    let leads = |d: &Daemon| env_status(d)["leader"] == true;
    let settled = |l: &Daemon, s: &Daemon| {
        leads(l)
            && !leads(s)
            && env_status(l)["owner"].is_string()
            && env_status(l)["assigned_to"] == env_status(l)["owner"]
            && env_status(s)["assigned_to"] == env_status(l)["owner"]
            && env_status(s)["owner"] == env_status(l)["owner"]
    };
    b.wait_until(
        "one replica leads, the other stands by, both naming the leader",
        Duration::from_secs(30),
        || settled(&a, &b) || settled(&b, &a),
    );
    let (a, b) = if leads(&a) { (a, b) } else { (b, a) };
    let leader = env_status(&a)["owner"].as_str().unwrap().to_string();

    // Reconcile-now on the standby: 409 naming the leader. (Regression: a standby that had
    // never asked for the lease, the sharding giving it to the other, answered "it has not
    // taken the lease yet" and named nobody.)
    let o = ctl(&b, &setup.token_file(), &["reconcile", ENV]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("does not lead")
            && out.contains(&format!("send the request to {leader}"))
            && out.contains("HTTP 409"),
        "{out}"
    );

    // All Environments: none led here, so nothing starts (409) and the leader is named.
    let o = ctl(&b, &setup.token_file(), &["reconcile"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("led by other replicas: {ENV} ({leader})"))
            && text(&o).contains("HTTP 409"),
        "{}",
        text(&o)
    );

    // Suspended through the standby: the leader stops writing.
    let o = ctl(
        &b,
        &setup.token_file(),
        &["suspend", ENV, "--reason", "shared"],
    );
    assert!(o.status.success(), "{}", text(&o));
    a.wait_until("the leader sees it", Duration::from_secs(15), || {
        env_status(&a)["suspended"] == true
    });
    tag_team(&rt, &moto, "rogue");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        team(&rt, &moto).as_deref(),
        Some("rogue"),
        "the leader wrote"
    );

    // Resumed through the standby: the leader repairs.
    let o = ctl(&b, &setup.token_file(), &["resume", ENV]);
    assert!(o.status.success(), "{}", text(&o));
    a.wait_until("the leader repairs", Duration::from_secs(30), || {
        team(&rt, &moto).as_deref() == Some("blue")
    });
    assert!(b.terminate().success());
    assert!(a.terminate().success());
}
