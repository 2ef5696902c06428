//! The `mlspace-gitops` binary, run by the tests as a user runs it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::Moto;

/// The built binary.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mlspace-gitops"))
}

/// `mlspace-gitops ARGS` with stdin closed (no prompt can wait for a terminal).
pub fn mlspace(args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.args(args).stdin(Stdio::null());
    c
}

/// What the tests add to a command of the binary.
pub trait CommandExt {
    /// `--manifests DIR`.
    fn manifests(&mut self, dir: impl AsRef<Path>) -> &mut Self;
    /// `--state-dir DIR`.
    fn state_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self;
    /// The environment that points the SDK at `moto`.
    fn aws(&mut self, moto: &Moto) -> &mut Self;
    /// [`CommandExt::aws`], with AWS reached at `endpoint` (a fault proxy).
    fn aws_via(&mut self, moto: &Moto, endpoint: &str) -> &mut Self;
    /// Without any `MLSPACE_GITOPS_*` variable of the test's own environment.
    fn without_own_settings(&mut self) -> &mut Self;
    /// Run it to its end; its output.
    fn run(&mut self) -> Output;
}

impl CommandExt for Command {
    fn manifests(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.arg("--manifests").arg(dir.as_ref())
    }

    fn state_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.arg("--state-dir").arg(dir.as_ref())
    }

    fn aws(&mut self, moto: &Moto) -> &mut Self {
        self.envs(moto.env())
    }

    fn aws_via(&mut self, moto: &Moto, endpoint: &str) -> &mut Self {
        self.envs(moto.env_via(endpoint))
    }

    fn without_own_settings(&mut self) -> &mut Self {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MLSPACE_GITOPS_") {
                self.env_remove(k);
            }
        }
        self
    }

    fn run(&mut self) -> Output {
        self.output()
            .unwrap_or_else(|e| panic!("run {}: {e}", binary().display()))
    }
}

/// `mlspace-gitops render -m DIR -o FORMAT`: the document; panics unless it succeeds.
pub fn render(dir: &Path, format: &str) -> String {
    let out = mlspace(&["render", "-m"])
        .arg(dir)
        .args(["-o", format])
        .run();
    assert!(
        out.status.success(),
        "render -m {} -o {format} failed ({}):\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Warnings go to stderr; stdout is only the document.
    String::from_utf8(out.stdout).expect("render output is UTF-8")
}

/// [`render`] as JSON.
pub fn render_json(dir: &Path) -> serde_json::Value {
    let text = render(dir, "json");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("render -o json is not JSON: {e}\n{text}"))
}

/// A command's exit status, stdout and stderr, labelled, for assertion messages and
/// `contains` checks.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
