//! What the integration tests share: the moto harness, the binary, the daemon handle, git
//! repositories, golden files, state store fixtures, the fault proxy and the helpers of the
//! deploy/ tests, a Prometheus server. Every test of the binary runs in this one process, in parallel: nothing
//! here sets process-wide state (environment variables, the working directory), and each
//! test starts its own moto server, daemon and temporary directories.

pub mod cli;
pub mod daemon;
pub mod deploy;
pub mod fault_proxy;
pub mod git;
pub mod golden;
pub mod http;
pub mod iam;
pub mod moto;
pub mod prometheus;
pub mod state;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use cli::{mlspace, text, CommandExt};
pub use moto::{Clients, Moto};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled manifests directory.
pub fn manifests_dir() -> PathBuf {
    root().join("manifests")
}

/// A file of the repository, read whole.
pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A JSON file of the repository.
pub fn read_json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A copy of the bundled manifests for a test to change, with `extra` files of the
/// repository (examples from docs/) added beside them.
pub fn manifests_copy(extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&manifests_dir(), dir.path());
    for rel in extra {
        let name = Path::new(rel).file_name().unwrap();
        std::fs::copy(root().join(rel), dir.path().join(name)).unwrap();
    }
    dir
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Every `.rs` file under `dir`, recursively.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The first `{UPPER_SNAKE}` placeholder in `s` that is not an IAM variable `${...}`.
pub fn placeholder_in(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    for (i, _) in s.match_indices('{') {
        if i > 0 && b[i - 1] == b'$' {
            continue;
        }
        let rest = &b[i + 1..];
        let n = rest
            .iter()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
            .count();
        if n > 0 && rest[0].is_ascii_uppercase() && rest.get(n) == Some(&b'}') {
            return Some(&s[i..i + n + 2]);
        }
    }
    None
}

/// A free TCP port on loopback (free when asked; another process may take it before use).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The external programs the tests run, each with the Debian package that has it.
/// `scripts/test.sh` installs every package of this list that is missing.
pub const TOOLS: &[(&str, &str)] = &[
    ("chromedriver", "chromium-driver"),
    ("chromium", "chromium"),
    ("curl", "curl"),
    ("git", "git"),
    ("kill", "procps"),
    ("mkfifo", "coreutils"),
    ("prometheus", "prometheus"),
    ("promtool", "prometheus"),
    ("ssh-keygen", "openssh-client"),
    ("systemd-analyze", "systemd"),
];

/// `tool`'s path on PATH. A test that needs an external program fails without it, naming
/// the program and how to install it: it never skips.
pub fn require(tool: &str) -> PathBuf {
    let package = TOOLS
        .iter()
        .find(|(t, _)| *t == tool)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("{tool} is not in support::TOOLS: add it with its package"));
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{tool}` is not installed (not on PATH), and this test needs it. Install Debian's \
             {package} package (`apt-get install {package}`), or run scripts/test.sh, which \
             installs every tool the tests need."
        )
    })
}

/// Send `signal` (`TERM`, `KILL`, ...) to a process with kill(1).
pub fn kill(pid: u32, signal: &str) {
    let status = Command::new(require("kill"))
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// `mkfifo PATH`.
pub fn mkfifo(path: &Path) {
    let status = Command::new(require("mkfifo")).arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}: {status}", path.display());
}

/// scripts/test.sh installs the package of every tool in [`TOOLS`], and no other tool.
#[test]
fn test_sh_installs_every_tool_the_tests_run() {
    let script = read("scripts/test.sh");
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("tools=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("a tools=\"...\" line in scripts/test.sh");
    let listed: Vec<(&str, &str)> = line
        .split_whitespace()
        .map(|t| t.split_once(':').expect("COMMAND:PACKAGE"))
        .collect();
    assert_eq!(
        listed, TOOLS,
        "scripts/test.sh's tools line and support::TOOLS differ"
    );
}

/// Cargo.toml turns `autotests` off, so a test file cargo would otherwise find on its own
/// (tests/NAME.rs, say from a merge) would never run: every test file is a module of
/// tests/it/main.rs, and none is left beside it.
#[test]
fn every_test_file_is_a_module_of_the_one_binary() {
    let tests = root().join("tests");
    let stray: Vec<String> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs") || p.join("main.rs").is_file())
        .filter(|p| !p.ends_with("it"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        stray.is_empty(),
        "test files outside tests/it, which cargo does not build (autotests = false): {stray:?}; \
         move each into tests/it/ as a module"
    );
    let main = read("tests/it/main.rs");
    for e in std::fs::read_dir(tests.join("it")).unwrap() {
        let p = e.unwrap().path();
        let Some(name) = p.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if name == "main" || !(p.is_dir() || p.extension().is_some_and(|x| x == "rs")) {
            continue;
        }
        assert!(
            main.lines().any(|l| l == format!("mod {name};")),
            "{} is not declared in tests/it/main.rs (`mod {name};`), so its tests never run",
            p.display()
        );
    }
}
