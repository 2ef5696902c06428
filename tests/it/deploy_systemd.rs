//! deploy/systemd: the EC2 unit and its environment file.
//!
//! The unit is read for what the daemon needs (restart on failure, an unprivileged user,
//! hardening, a stop timeout above the grace period), checked by `systemd-analyze verify`
//! (any warning fails) and scored by `systemd-analyze security --offline` (systemd 250 or
//! later: Debian 12's systemd package, which scripts/test.sh installs). Without
//! systemd-analyze those two tests fail, saying so.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use crate::support::cli::binary;
use crate::support::deploy::{assert_known_env, default_grace_period};
use crate::support::{read, require, root};

const UNIT: &str = "deploy/systemd/mlspace-gitops.service";
const ENV_EXAMPLE: &str = "deploy/systemd/mlspace-gitops.env.example";

/// `section → key → values` (a key may repeat).
fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let (k, v) = line.split_once('=').expect("key=value");
        out.entry(section.clone())
            .or_default()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    out
}

/// `KEY=value` lines of an environment file (comments skipped).
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn unit_restarts_runs_unprivileged_and_is_hardened() {
    let unit = parse_unit(&read(UNIT));
    let svc = &unit["Service"];
    let one = |k: &str| -> &str {
        let v = svc.get(k).unwrap_or_else(|| panic!("{UNIT}: no {k}="));
        v.last().unwrap()
    };
    assert!(one("ExecStart").ends_with("/mlspace-gitops run"));
    assert_eq!(one("Restart"), "on-failure");
    let user = one("User");
    assert!(
        !user.is_empty() && user != "root" && user != "0",
        "User={user}"
    );
    assert_eq!(
        one("EnvironmentFile"),
        "/etc/mlspace-gitops/mlspace-gitops.env"
    );
    for (k, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(one(k), want, "{UNIT}: {k}");
    }
    // The state directory is the only writable place and is where the daemon keeps state.
    let env = parse_env(&read(ENV_EXAMPLE));
    assert_eq!(
        format!("/var/lib/{}", one("StateDirectory")),
        env["MLSPACE_GITOPS_STATE_DIR"]
    );
    assert_eq!(unit["Install"]["WantedBy"], ["multi-user.target"]);
}

#[test]
fn stop_timeout_exceeds_the_grace_period() {
    let unit = parse_unit(&read(UNIT));
    let timeout = humantime::parse_duration(&unit["Service"]["TimeoutStopSec"][0]).unwrap();
    let env = parse_env(&read(ENV_EXAMPLE));
    let grace = env
        .get("MLSPACE_GITOPS_GRACE_PERIOD")
        .map(|g| humantime::parse_duration(g).unwrap())
        .unwrap_or_else(default_grace_period);
    assert!(
        timeout >= grace + Duration::from_secs(10),
        "TimeoutStopSec={timeout:?} leaves no margin over the grace period {grace:?}"
    );
}

#[test]
fn environment_file_sets_only_real_variables() {
    let text = read(ENV_EXAMPLE);
    assert_known_env(ENV_EXAMPLE, &text);
    let env = parse_env(&text);
    assert!(env.contains_key("MLSPACE_GITOPS_SOURCE"));
    // Reachable by Prometheus on the instance, not only on loopback.
    assert!(env["MLSPACE_GITOPS_LISTEN"].ends_with(":9464"));
    assert!(env["MLSPACE_GITOPS_LISTEN"].starts_with("0.0.0.0"));
    // Secrets are referenced as files, never written into the environment file.
    for k in env.keys() {
        assert!(
            !k.ends_with("_TOKEN") && !k.ends_with("_SECRET"),
            "{k} puts a secret in the environment file; use the *_FILE variable"
        );
    }
}

#[test]
fn docs_give_the_install_steps() {
    let ops = read("docs/operations.md");
    for needle in [
        "deploy/systemd/mlspace-gitops.service",
        "deploy/systemd/mlspace-gitops.env.example",
        "useradd",
        "systemctl daemon-reload",
        "systemctl enable --now mlspace-gitops",
        "journalctl -u mlspace-gitops",
    ] {
        assert!(ops.contains(needle), "docs/operations.md lacks `{needle}`");
    }
}

/// The unit as installed: ExecStart pointing at a binary that exists (verify checks it).
fn installed_unit(dir: &std::path::Path) -> std::path::PathBuf {
    let text = read(UNIT).replace("/usr/local/bin/mlspace-gitops", binary().to_str().unwrap());
    let path = dir.join("mlspace-gitops.service");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn systemd_analyze_verify_passes_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let unit = installed_unit(dir.path());
    let out = Command::new(require("systemd-analyze"))
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on unknown keys and unparsable values; it only says so.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {}:\n{stderr}",
        root().join(UNIT).display()
    );
}

#[test]
fn systemd_analyze_security_rates_the_unit_ok() {
    let dir = tempfile::tempdir().unwrap();
    let unit = installed_unit(dir.path());
    let out = Command::new(require("systemd-analyze"))
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // systemd before 250 cannot score a unit file that is not loaded.
    assert!(
        out.status.success() || text.contains("Overall exposure level"),
        "systemd-analyze security --offline=true could not score the unit; it needs systemd \
         250 or later (Debian 12's systemd package is 252):\n{}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let level: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for ").nth(1))
        .and_then(|rest| rest.split(": ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(
        level <= 2.0,
        "exposure {level} (systemd rates up to 2.0 as well hardened):\n{text}"
    );
}
