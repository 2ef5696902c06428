//! The daemon as the tests run it: `mlspace-gitops run` in a child process, watched through
//! its HTTP endpoints.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cli::binary;
use super::http::http;
use super::{free_port, kill, Moto};

/// The webhook secret every daemon started here has.
pub const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";

/// Timings for tests: a poll every second, a resync every 3 s, retries from 1 s, 10 s to
/// finish at shutdown.
pub const FAST: &[&str] = &[
    "--interval",
    "1s",
    "--resync",
    "3s",
    "--retry-base",
    "1s",
    "--grace-period",
    "10s",
];

/// `mlspace-gitops run` on a loopback port of its own, logging at info to a file; killed on
/// drop.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    log: PathBuf,
    state: PathBuf,
    /// Holds the log, and the state unless the test gave a directory.
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// The daemon on `source` against `moto`, with [`FAST`] timings and `extra` flags.
    pub fn start(moto: &Moto, source: &str, extra: &[&str]) -> Daemon {
        Daemon::start_env(&moto.env(), source, extra)
    }

    /// [`Daemon::start`] with these AWS environment variables (a proxy as the endpoint).
    pub fn start_env(aws_env: &[(&str, String)], source: &str, extra: &[&str]) -> Daemon {
        Daemon::spawn(aws_env, source, None, &[FAST, extra].concat())
    }

    /// `run --source SOURCE --listen 127.0.0.1:PORT --state-dir STATE FLAGS`, STATE being
    /// `state` or a new directory, with the webhook secret [`WEBHOOK_SECRET`].
    pub fn spawn(
        aws_env: &[(&str, String)],
        source: &str,
        state: Option<&Path>,
        flags: &[&str],
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let state = state.unwrap_or(dir.path()).to_path_buf();
        let port = free_port();
        let log = dir.path().join("daemon.log");
        let child = Command::new(binary())
            .args(["run", "--source", source])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(&state)
            .args(flags)
            .env("MLSPACE_GITOPS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RUST_LOG", "info")
            .envs(aws_env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child,
            port,
            log,
            state,
            _dir: dir,
        }
    }

    /// Its `--state-dir`.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, &[], b"")
    }

    /// `/status` as JSON; `null` while the server is not up yet (callers poll).
    pub fn status(&self) -> Value {
        match self.get("/status") {
            (200, body) => serde_json::from_str(&body).unwrap(),
            _ => Value::Null,
        }
    }

    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (_, body) = self.get("/metrics");
        let lines = body.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("metrics parse");
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            // An empty f64 sum is -0.0: normalised so that figures print 0.
            .sum::<f64>()
            + 0.0
    }

    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> bool,
    ) -> Duration {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if f() {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}\n--- daemon log ---\n{}",
            self.log()
        );
    }

    /// Wait until its HTTP server answers (any status).
    pub fn wait_for_http(&self) {
        self.wait_until("the HTTP server", Duration::from_secs(20), || {
            self.get("/healthz").0 != 0
        });
    }

    /// Peak RSS so far (`VmHWM`), in KiB.
    pub fn peak_rss_kb(&self) -> u64 {
        vm_hwm_kb(self.child.id())
    }

    /// How many file descriptors it has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then wait (at most 30 s) for the exit: its status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.stop().1
    }

    /// SIGTERM, then wait (at most 30 s) for the exit: how long it took, and the status.
    /// The daemon's log stays readable.
    pub fn stop(&mut self) -> (Duration, std::process::ExitStatus) {
        kill(self.child.id(), "TERM");
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (start.elapsed(), s);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no exit after SIGTERM\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmHWM` of a process (its peak RSS, a high-water mark), in KiB; 0 once it has exited.
pub fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
