//! A real Prometheus server (Debian's `prometheus`) on a loopback port, with a configuration
//! and rule files the test writes; killed on drop. Read through its HTTP API.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::http;
use super::{free_port, require};

/// A running `prometheus`.
pub struct Prometheus {
    child: Child,
    /// Its `--web.listen-address` port.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Start `prometheus` with `config` (prometheus.yml) and the `rules` files (name,
    /// content) beside it; returns once `/-/ready` answers 200. Panics with its log if it
    /// does not start: the test fails when the program is missing or refuses the files.
    pub fn start(config: &str, rules: &[(&str, String)]) -> Prometheus {
        let bin = require("prometheus");
        let dir = tempfile::Builder::new()
            .prefix("prometheus")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        for (name, content) in rules {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap();
        let mut p = Prometheus { child, port, dir };
        let start = Instant::now();
        loop {
            if http(p.port, "GET", "/-/ready", &[], b"").0 == 200 {
                return p;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", p.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "prometheus not ready in 30 s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What it logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET path` of its API, the `data` of a `success` answer; panics otherwise.
    pub fn api(&self, path: &str) -> Value {
        let (code, body) = http(self.port, "GET", path, &[], b"");
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: {code} {e}: {body}\n{}", self.log()));
        assert_eq!(v["status"], "success", "GET {path}: {body}");
        v["data"].clone()
    }

    /// The samples of the instant query `expr` at the present time.
    pub fn query(&self, expr: &str) -> Vec<Value> {
        let q = percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC);
        match self.api(&format!("/api/v1/query?query={q}")) {
            Value::Object(d) if d["resultType"] == "vector" => {
                d["result"].as_array().cloned().unwrap_or_default()
            }
            // Scalars (and strings) are one value.
            Value::Object(d) => vec![serde_json::json!({"value": d["result"]})],
            _ => Vec::new(),
        }
    }

    /// Its scrape targets' health by `instance` label: `up`, `down` or `unknown`.
    pub fn target_health(&self) -> Vec<(String, String)> {
        self.api("/api/v1/targets")["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                (
                    t["labels"]["instance"].as_str().unwrap_or("").to_string(),
                    t["health"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Every alerting rule: its group, its name and its active alerts.
    pub fn alert_rules(&self) -> Vec<AlertRule> {
        let mut out = Vec::new();
        let groups = self.api("/api/v1/rules?type=alert")["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for g in groups {
            for r in g["rules"].as_array().cloned().unwrap_or_default() {
                out.push(AlertRule {
                    group: g["name"].as_str().unwrap_or("").to_string(),
                    name: r["name"].as_str().unwrap_or("").to_string(),
                    alerts: r["alerts"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|a| (a["state"].clone(), a["labels"].clone()))
                        .map(|(s, l)| (s.as_str().unwrap_or("").to_string(), l))
                        .collect(),
                });
            }
        }
        out
    }
}

/// One alerting rule as Prometheus evaluates it.
#[derive(Debug, Clone)]
pub struct AlertRule {
    /// Its group's name.
    pub group: String,
    /// The alert's name.
    pub name: String,
    /// Its active alerts: (state, labels).
    pub alerts: Vec<(String, Value)>,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
