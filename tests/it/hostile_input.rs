//! Hostile or broken input never crashes, hangs or leaks. Each case runs the binary (the CLI,
//! or the daemon) on a manifest set, a repository or a client made to hurt it, and asserts
//! the error, a bound on wall time and peak memory (the child's own `ru_maxrss`, or the
//! daemon's `VmHWM`), and that nothing reached AWS or `/status`.
//!
//! Every case prints a `FIGURES hostile` line; `docs/reliability.md` quotes them
//! (`cargo test --test it hostile_input:: -- --nocapture --test-threads=1`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::cli::binary;
use crate::support::daemon::{vm_hwm_kb, Daemon};
use crate::support::git::{Entry, Repo};
use crate::support::http::http_within;
use crate::support::{mkfifo, mlspace, root, Moto};

/// Wall time any one CLI case may take (a debug build on a shared machine; the cases take
/// well under a second).
const CLI_TIME: Duration = Duration::from_secs(10);

/// Peak memory any one CLI case may use: the alias bomb alone took 2.5 GB and more.
const CLI_RSS_KB: u64 = 200 * 1024;

const ENVIRONMENT: &str = "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: hostile}\nspec:\n  region: us-east-1\n  account: \"123456789012\"\n";

const SECRET_LINE: &str = "root:$6$hostile-input-secret$0123456789:19000:0:99999:7:::";

fn policy(name: &str) -> String {
    format!("apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: {name}}}\nspec:\n  document:\n    Version: '2012-10-17'\n    Statement: [{{Effect: Allow, Action: 's3:GetObject', Resource: '*'}}]\n")
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/hostile").join(name)
}

// ---------------------------------------------------------------------------------------
// Measuring a child
// ---------------------------------------------------------------------------------------

/// What a finished command did.
struct Measured {
    code: i32,
    stdout: String,
    stderr: String,
    wall: Duration,
    max_rss_kb: u64,
}

/// Run `cmd` to the end, sampling its peak RSS (`VmHWM` of `/proc/PID/status`, a
/// high-water mark) every 2 ms once it runs the binary. (`wait4`'s `ru_maxrss` would count
/// the test process too: a child's maximum includes the memory it shared with its parent
/// until `exec`.)
fn measured(cmd: &mut Command) -> Measured {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let exe = std::fs::canonicalize(binary()).unwrap();
    let mut max_rss_kb = 0;
    let status = loop {
        if std::fs::read_link(format!("/proc/{}/exe", child.id())).is_ok_and(|p| p == exe) {
            max_rss_kb = max_rss_kb.max(vm_hwm_kb(child.id()));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "still running after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    Measured {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&e.join().unwrap()).into_owned(),
        wall: started.elapsed(),
        max_rss_kb,
    }
}

fn figures(case: &str, command: &str, wall: Duration, max_rss_kb: u64) {
    println!(
        "FIGURES hostile case={case} command={command} wall_ms={} max_rss_kb={max_rss_kb}",
        wall.as_millis()
    );
}

/// A TCP listener standing in for AWS: counts every connection and answers nothing.
/// "Nothing reached AWS" is its count staying 0.
struct Sentinel {
    endpoint: String,
    hits: Arc<AtomicUsize>,
}

impl Sentinel {
    fn start() -> Sentinel {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", l.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                h.fetch_add(1, Ordering::SeqCst);
                drop(c);
            }
        });
        Sentinel { endpoint, hits }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A manifests directory: a valid Environment and a policy, plus what the case adds.
fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("environment.yaml"), ENVIRONMENT).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), policy("hostile-ok")).unwrap();
    dir
}

/// A secret file outside every manifests directory, for links to point at.
fn secret_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow");
    std::fs::write(&path, format!("{SECRET_LINE}\n")).unwrap();
    (dir, path)
}

/// `validate` and `plan` on `dir` (plan against a sentinel standing in for AWS): both must
/// exit 1 within the bounds, print `expected` on stderr, never print `never`, and make no
/// AWS request. Returns validate's stderr.
fn cli_refuses(
    case: &str,
    dir: &Path,
    extra: &[&str],
    expected: &[&str],
    never: &[&str],
) -> String {
    let sentinel = Sentinel::start();
    let state = tempfile::tempdir().unwrap();
    let mut first = String::new();
    for command in ["validate", "plan"] {
        let mut cmd = mlspace(&[command]);
        cmd.arg("-m").arg(dir).args(extra);
        if command == "plan" {
            cmd.arg("--state-dir").arg(state.path());
        }
        for (k, v) in sentinel.env() {
            cmd.env(k, v);
        }
        let m = measured(&mut cmd);
        figures(case, command, m.wall, m.max_rss_kb);
        let all = format!("{}{}", m.stdout, m.stderr);
        assert_eq!(m.code, 1, "{case} {command}: exit {}\n{all}", m.code);
        for e in expected {
            assert!(all.contains(e), "{case} {command}: no `{e}` in\n{all}");
        }
        for n in never {
            assert!(!all.contains(n), "{case} {command}: `{n}` echoed in\n{all}");
        }
        assert!(m.wall < CLI_TIME, "{case} {command}: took {:?}", m.wall);
        assert!(
            m.max_rss_kb < CLI_RSS_KB,
            "{case} {command}: peak RSS {} KiB",
            m.max_rss_kb
        );
        if first.is_empty() {
            first = m.stderr;
        }
    }
    assert_eq!(sentinel.hits(), 0, "{case}: a request reached AWS");
    first
}

// ---------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------

#[test]
fn alias_bomb_is_refused_within_bounds_instead_of_aborting_the_process() {
    let dir = manifests();
    let bomb = std::fs::read_to_string(fixture("alias-bomb.yaml")).unwrap();
    assert!(bomb.len() < 500, "a small file: {} bytes", bomb.len());
    std::fs::write(dir.path().join("bomb.yaml"), &bomb).unwrap();
    cli_refuses(
        "alias-bomb",
        dir.path(),
        &[],
        &[
            "bomb.yaml:",
            "the revision would hold more than 250000 YAML nodes (aliases expanded); refused (limit: --max-yaml-nodes)",
        ],
        &[],
    );
    // The limit is configurable, and counts the revision, not one file.
    cli_refuses(
        "alias-bomb-low-limit",
        dir.path(),
        &["--max-yaml-nodes", "100"],
        &["more than 100 YAML nodes"],
        &[],
    );
}

#[test]
fn fifo_named_yaml_is_refused_by_type_instead_of_hanging() {
    let dir = manifests();
    mkfifo(&dir.path().join("x.yaml"));
    cli_refuses(
        "fifo-manifest",
        dir.path(),
        &[],
        &["x.yaml: error: not a regular file (a FIFO); only regular files are read"],
        &[],
    );
}

#[test]
fn fifo_as_document_file_is_refused_instead_of_hanging() {
    let dir = manifests();
    mkfifo(&dir.path().join("doc.json"));
    std::fs::write(
        dir.path().join("fifo-policy.yaml"),
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: fifo-doc}\nspec:\n  documentFile: doc.json\n",
    )
    .unwrap();
    cli_refuses(
        "fifo-document-file",
        dir.path(),
        &[],
        &[
            "fifo-policy.yaml:5:",
            "spec.documentFile: cannot read",
            "not a regular file (a FIFO)",
        ],
        &[],
    );
}

#[test]
fn yaml_symlink_outside_the_directory_is_refused_and_its_content_never_echoed() {
    let (_outside, secret) = secret_file();
    let dir = manifests();
    std::os::unix::fs::symlink(&secret, dir.path().join("leak.yaml")).unwrap();
    // The same file through `..`, as documentFile (refused before, still refused).
    std::fs::write(
        dir.path().join("doc-leak.yaml"),
        format!(
            "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: doc-leak}}\nspec:\n  documentFile: {}\n",
            secret.display()
        ),
    )
    .unwrap();
    cli_refuses(
        "symlink-outside",
        dir.path(),
        &[],
        &["leak.yaml: error: a symbolic link to a file outside the manifests directory; refused, not read"],
        &["hostile-input-secret", "root:"],
    );
}

#[test]
fn dev_zero_and_a_sparse_gigabyte_are_refused_before_reading() {
    let dir = manifests();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("z.yaml")).unwrap();
    cli_refuses(
        "dev-zero-link",
        dir.path(),
        &[],
        &["z.yaml: error: a symbolic link to a file outside the manifests directory"],
        &[],
    );
    let dir = manifests();
    // A gigabyte on paper (sparse): never read.
    std::fs::File::create(dir.path().join("huge.json"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    std::fs::write(
        dir.path().join("huge-policy.yaml"),
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: huge}\nspec:\n  documentFile: huge.json\n",
    )
    .unwrap();
    cli_refuses(
        "gigabyte-document-file",
        dir.path(),
        &[],
        &["1 GiB is over the limit of 4 MiB per file; refused (limit: --max-file-size)"],
        &[],
    );
    let dir = manifests();
    std::fs::File::create(dir.path().join("huge.yaml"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    cli_refuses(
        "gigabyte-manifest",
        dir.path(),
        &[],
        &["huge.yaml: error: 1 GiB is over the limit of 4 MiB per file"],
        &[],
    );
}

#[test]
fn a_revision_over_its_size_limit_is_refused_before_anything_is_read() {
    // 40 files of 1 MiB (sparse: never read), each under the file limit, 40 MiB together.
    let dir = manifests();
    for i in 0..40 {
        std::fs::File::create(dir.path().join(format!("filler-{i:02}.yaml")))
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
    }
    cli_refuses(
        "revision-size",
        dir.path(),
        &[],
        &[
            "error: the manifest files add up to 41943361 bytes (40.0 MiB), over the limit of 32 MiB per revision; refused (limit: --max-revision-size)",
        ],
        &[],
    );
    // Configurable; and files named by documentFile count too.
    let dir = manifests();
    std::fs::write(
        dir.path().join("doc.json"),
        format!(
            "{{\"Version\": \"2012-10-17\", \"Statement\": [], \"Pad\": \"{}\"}}",
            "x".repeat(300 << 10)
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("named.yaml"),
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: named}\nspec:\n  documentFile: doc.json\n",
    )
    .unwrap();
    cli_refuses(
        "revision-size-document-file",
        dir.path(),
        &["--max-revision-size", "256KiB"],
        &[
            "spec.documentFile: cannot read",
            "reading it would take the revision over 256 KiB in all",
        ],
        &[],
    );
}

#[test]
fn a_hundred_thousand_documents_are_refused_at_the_document_limit() {
    let dir = manifests();
    let docs = "---\nx: 1\n".repeat(100_000);
    std::fs::write(dir.path().join("many.yaml"), docs).unwrap();
    cli_refuses(
        "100k-documents",
        dir.path(),
        &[],
        &[
            "many.yaml:",
            "more than 5000 YAML documents in the revision; refused (limit: --max-documents)",
        ],
        &[],
    );
}

#[test]
fn a_flat_list_is_refused_at_the_node_limit() {
    let dir = manifests();
    // 3.6 MiB: under the file limit, 1.2 million nodes.
    let list = format!("items: [{}]\n", "1,".repeat(1_200_000));
    std::fs::write(dir.path().join("list.yaml"), list).unwrap();
    cli_refuses(
        "flat-list-nodes",
        dir.path(),
        &[],
        &["list.yaml:1:", "more than 250000 YAML nodes"],
        &[],
    );
}

#[test]
fn control_characters_in_a_name_are_escaped_and_cannot_forge_a_diagnostic() {
    let dir = manifests();
    std::fs::write(
        dir.path().join("ctl.yaml"),
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: \"a\\e[31mred\\nforged.yaml:1:1: error: forged\"}\nspec:\n  document: {Version: '2012-10-17', Statement: [{Effect: Allow, Action: 's3:GetObject', Resource: '*'}]}\n",
    )
    .unwrap();
    let stderr = cli_refuses(
        "control-characters",
        dir.path(),
        &[],
        &["a\\u{1b}[31mred\\nforged.yaml:1:1: error: forged"],
        &["\u{1b}"],
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("forged.yaml")),
        "a forged diagnostic line:\n{stderr}"
    );
}

#[test]
fn encoding_errors_name_the_file_and_position() {
    // Invalid UTF-8: file, line, column and byte offset.
    let dir = manifests();
    std::fs::write(dir.path().join("latin1.yaml"), b"a: 1\nname: caf\xe9\n").unwrap();
    cli_refuses(
        "invalid-utf8",
        dir.path(),
        &[],
        &["latin1.yaml:2:10: error: not UTF-8 (invalid byte at byte offset 14)"],
        &[],
    );
    // NUL: an error, not the silent end of the document.
    let dir = manifests();
    std::fs::write(
        dir.path().join("nul.yaml"),
        format!(
            "{}\0\nmetadata: {{name: after-nul}}\n",
            "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy"
        ),
    )
    .unwrap();
    cli_refuses(
        "nul-byte",
        dir.path(),
        &[],
        &["nul.yaml:2:20: error: NUL byte at byte offset 49"],
        &[],
    );
    // YAML tags outside the core schema, and YAML 1.1.
    let dir = manifests();
    std::fs::write(
        dir.path().join("tags.yaml"),
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: !!binary aGVsbG8=}\nspec: {}\n",
    )
    .unwrap();
    cli_refuses(
        "yaml-tags",
        dir.path(),
        &[],
        &["tags.yaml:3:27: error: YAML tag `!!binary` is not supported"],
        &[],
    );
    let dir = manifests();
    std::fs::write(
        dir.path().join("yaml11.yaml"),
        format!("%YAML 1.1\n---\n{}", policy("yaml-one-one")),
    )
    .unwrap();
    cli_refuses(
        "yaml-directive",
        dir.path(),
        &[],
        &["yaml11.yaml:1:1: error: `%YAML 1.1`: manifests are YAML 1.2"],
        &[],
    );
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let dir = manifests();
    std::fs::write(
        dir.path().join("bom.yaml"),
        format!("\u{feff}{}", policy("with-bom")),
    )
    .unwrap();
    let m = measured(mlspace(&["validate", "-m"]).arg(dir.path()));
    assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
    assert!(m.stdout.contains("2 resources valid"), "{}", m.stdout);
}

// ---------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------

/// The daemon's timings here: a poll every second, a resync every 2 s, retries from 1 s, 10 s
/// to finish at shutdown.
const TIMINGS: &[&str] = &[
    "--interval",
    "1s",
    "--resync",
    "2s",
    "--retry-base",
    "1s",
    "--grace-period",
    "10s",
];

/// `mlspace-gitops run` on `source` with [`TIMINGS`] and `extra` flags (state in `state`, or
/// a directory of its own), once its HTTP server answers.
fn daemon(
    aws_env: &[(&str, String)],
    source: &str,
    state: Option<&Path>,
    extra: &[&str],
) -> Daemon {
    let d = Daemon::spawn(aws_env, source, state, &[TIMINGS, extra].concat());
    d.wait_for_http();
    d
}

fn good_manifests(extra: &str) -> String {
    format!("{ENVIRONMENT}---\n{}{extra}", policy("hostile-good"))
}

/// The revision the daemon applied and the error it reports.
fn applied(d: &Daemon) -> Option<String> {
    d.status()["last_applied_revision"]
        .as_str()
        .map(String::from)
}

fn last_error(d: &Daemon) -> String {
    d.status()["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A good commit is applied; then each hostile commit is pushed in turn. Each is refused
/// with its error in /status, the good revision stays applied, the daemon stays up and
/// small, and no secret reaches /status or the logs. A restart on the last hostile commit
/// comes up and refuses it again (no crash loop).
#[test]
fn hostile_commits_are_refused_and_the_last_good_revision_stays() {
    let moto = Moto::start();
    let (_outside, secret) = secret_file();
    let repo = Repo::new();
    let good_text = good_manifests("");
    let good = repo.commit_tree(
        &[Entry::File("manifests/all.yaml", good_text.as_bytes())],
        "good",
    );
    let mut d = daemon(&moto.env(), &repo.url(), None, &[]);
    d.wait_until("the good revision applied", Duration::from_secs(60), || {
        applied(&d).as_deref() == Some(good.as_str())
    });
    let bomb = std::fs::read(fixture("alias-bomb.yaml")).unwrap();
    let five_mib = "#".repeat(5 * 1024 * 1024);
    let secret_target = secret.display().to_string();
    let cases: Vec<(&str, Vec<Entry<'_>>, &str)> = vec![
        (
            "git-alias-bomb",
            vec![
                Entry::File("manifests/all.yaml", good_text.as_bytes()),
                Entry::File("manifests/bomb.yaml", &bomb),
            ],
            "more than 250000 YAML nodes",
        ),
        (
            "git-5mib-blob",
            vec![
                Entry::File("manifests/all.yaml", good_text.as_bytes()),
                Entry::File("manifests/big.yaml", five_mib.as_bytes()),
            ],
            "manifests/big.yaml is 5 MiB, over the limit of 4 MiB per file (--max-file-size)",
        ),
        (
            "git-symlink-outside",
            vec![
                Entry::File("manifests/all.yaml", good_text.as_bytes()),
                Entry::Link("manifests/leak.yaml", &secret_target),
            ],
            "leak.yaml: error: a symbolic link to a file outside the manifests directory; refused, not read",
        ),
        (
            "git-linked-path",
            vec![
                Entry::File("real/all.yaml", good_text.as_bytes()),
                Entry::Link("manifests", "real"),
            ],
            "the manifests path manifests is a symbolic link in this commit; it must be a directory",
        ),
    ];
    let mut last = good.clone();
    for (case, entries, expected) in &cases {
        let invalid_before = d.metric("mlspace_gitops_reconcile_total", &[("result", "invalid")]);
        let started = Instant::now();
        let commit = repo.commit_tree(entries, case);
        d.wait_until(case, Duration::from_secs(30), || {
            last_error(&d).contains(expected)
        });
        let refused_in = started.elapsed();
        let status = d.status();
        assert_eq!(status["last_attempted_revision"], commit.as_str(), "{case}");
        assert_eq!(status["last_applied_revision"], good.as_str(), "{case}");
        assert!(
            d.metric("mlspace_gitops_reconcile_total", &[("result", "invalid")]) > invalid_before,
            "{case}: not counted as invalid"
        );
        assert!(d.alive(), "{case}: the daemon exited\n{}", d.log());
        let rss = d.peak_rss_kb();
        figures(case, "run", refused_in, rss);
        assert!(rss < 300 * 1024, "{case}: daemon peak RSS {rss} KiB");
        last = commit;
    }
    assert!(!status_text(&d).contains("hostile-input-secret"));
    assert!(!d.log().contains("hostile-input-secret"));
    assert_eq!(d.get("/healthz").0, 200);
    let (took, exit) = d.stop();
    assert!(exit.success(), "{exit:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Restarted on the alias bomb (no good revision known yet): it comes up, refuses it
    // and stays up, where it used to abort at every start.
    let bomb_commit = repo.commit_tree(
        &[
            Entry::File("manifests/all.yaml", good_text.as_bytes()),
            Entry::File("manifests/bomb.yaml", &bomb),
        ],
        "bomb again",
    );
    assert_ne!(bomb_commit, last);
    let mut d = daemon(&moto.env(), &repo.url(), None, &[]);
    d.wait_until(
        "the bomb refused after a restart",
        Duration::from_secs(30),
        || last_error(&d).contains("more than 250000 YAML nodes"),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(d.alive(), "{}", d.log());
    assert_eq!(d.get("/readyz").0, 503);
    figures(
        "git-alias-bomb-restart",
        "run",
        Duration::ZERO,
        d.peak_rss_kb(),
    );
}

fn status_text(d: &Daemon) -> String {
    d.get("/status").1
}

/// A directory source with a FIFO named `x.yaml`, a link to a secret and a link to
/// /dev/zero: the load reports all three and returns, /healthz stays 200, nothing is
/// applied, the secret never reaches /status or the logs, and SIGTERM stops the daemon
/// at once.
#[test]
fn directory_source_with_a_fifo_and_links_reports_them_and_stops_on_sigterm() {
    let sentinel = Sentinel::start();
    let (_outside, secret) = secret_file();
    let dir = manifests();
    mkfifo(&dir.path().join("x.yaml"));
    std::os::unix::fs::symlink(&secret, dir.path().join("leak.yaml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("z.yaml")).unwrap();
    let started = Instant::now();
    let mut d = daemon(
        &sentinel.env(),
        &dir.path().display().to_string(),
        None,
        &[],
    );
    d.wait_until("the revision refused", Duration::from_secs(20), || {
        let e = last_error(&d);
        e.contains("x.yaml: error: not a regular file (a FIFO)")
            && e.contains("leak.yaml: error: a symbolic link")
            && e.contains("z.yaml: error: a symbolic link")
    });
    let refused_in = started.elapsed();
    assert_eq!(d.get("/healthz").0, 200);
    assert_eq!(d.get("/readyz").0, 503);
    assert!(!status_text(&d).contains("hostile-input-secret"));
    assert!(!d.log().contains("hostile-input-secret"));
    // Warnings of an invalid revision are not logged as errors.
    assert_eq!(sentinel.hits(), 0, "a request reached AWS");
    let rss = d.peak_rss_kb();
    let (took, exit) = d.stop();
    figures("dir-fifo-and-links", "run", refused_in, rss);
    assert!(exit.success(), "{exit:?}\n{}", d.log());
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
}

/// A state directory that is a file: the reconcile cannot run. /readyz stays 503 and says
/// why, each pass counts as `failure` (so the alert fires), never `skipped`, and nothing is
/// read from or written to AWS.
#[test]
fn unusable_state_dir_keeps_readyz_503_and_counts_failures() {
    let sentinel = Sentinel::start();
    let dir = manifests();
    let keep = tempfile::tempdir().unwrap();
    let not_a_dir = keep.path().join("state-is-a-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let d = daemon(
        &sentinel.env(),
        &dir.path().display().to_string(),
        Some(&not_a_dir),
        &[],
    );
    let start = Instant::now();
    let mut saw_failures = false;
    while start.elapsed() < Duration::from_secs(8) {
        let (code, body) = d.get("/readyz");
        assert_eq!(code, 503, "ready without a reconcile: {body}");
        if start.elapsed() > Duration::from_secs(2) {
            assert!(body.contains("state store unusable"), "{body}");
        }
        saw_failures |= d.metric("mlspace_gitops_reconcile_total", &[("result", "failure")]) >= 2.0;
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(saw_failures, "no failure counted\n{}", d.log());
    assert_eq!(
        d.metric("mlspace_gitops_reconcile_total", &[("result", "skipped")]),
        0.0
    );
    assert_eq!(
        d.metric("mlspace_gitops_reconcile_total", &[("result", "success")]),
        0.0
    );
    assert_eq!(sentinel.hits(), 0, "a request reached AWS");
}

/// A git remote that accepts the connection and never answers holds the loop in the
/// source sync: /healthz turns 503 past --stuck-after, and SIGTERM still stops the daemon
/// at once (it used to wait for the sync).
#[test]
fn a_loop_stuck_in_the_source_fails_healthz_and_sigterm_still_stops_it() {
    let blackhole = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/repo.git", blackhole.local_addr().unwrap());
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for c in blackhole.incoming().flatten() {
            h.lock().unwrap().push(c);
        }
    });
    let sentinel = Sentinel::start();
    let mut d = daemon(&sentinel.env(), &url, None, &["--stuck-after", "2s"]);
    let took = d.wait_until("/healthz to fail", Duration::from_secs(20), || {
        d.get("/healthz").0 == 503
    });
    let (_, body) = d.get("/healthz");
    assert!(
        body.starts_with("stuck: syncing and loading the source for "),
        "{body}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    let (stop, exit) = d.stop();
    figures("stuck-source-sigterm", "run", stop, 0);
    assert!(exit.success(), "{exit:?}");
    assert!(
        stop < Duration::from_secs(5),
        "SIGTERM took {stop:?}\n{}",
        d.log()
    );
}

/// 1,000 idle connections and 100 that send their request head one byte a second, against
/// a cap of 64 connections: /healthz keeps answering quickly, the daemon's descriptors stay
/// bounded, slow and idle clients are cut at their timeouts, and a slow body gets 408.
#[test]
fn slow_and_idle_clients_do_not_lock_out_healthz() {
    let sentinel = Sentinel::start();
    let dir = tempfile::tempdir().unwrap(); // no Environment: nothing to reconcile
    let d = daemon(
        &sentinel.env(),
        &dir.path().display().to_string(),
        None,
        &[
            "--http-max-connections",
            "64",
            "--http-header-timeout",
            "2s",
            "--http-request-timeout",
            "2s",
            "--http-idle-timeout",
            "3s",
        ],
    );
    let baseline_fds = d.open_fds();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], d.port));
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(addr).unwrap());
    }
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(b"GET /status HTTP/1.1\r\n");
        slow.push(s);
    }
    // Keep the slow ones dripping while /healthz is probed.
    let probes = 20;
    let mut worst = Duration::ZERO;
    for i in 0..probes {
        for s in slow.iter_mut() {
            let _ = s.write_all(b"X");
        }
        let t = Instant::now();
        let (code, body) = http_within(d.port, "GET", "/healthz", &[], b"", Duration::from_secs(5));
        let took = t.elapsed();
        worst = worst.max(took);
        assert_eq!(
            (code, body.as_str()),
            (200, "ok"),
            "probe {i} after {took:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let fds = d.open_fds();
    assert!(
        fds <= baseline_fds + 64 + 16,
        "{fds} descriptors open (baseline {baseline_fds}, cap 64)"
    );
    // After the header timeout, the idle and slow clients have been closed by the server.
    std::thread::sleep(Duration::from_secs(3));
    let mut closed = 0;
    for s in idle.iter_mut().chain(slow.iter_mut()) {
        if closed_by_server(s) {
            closed += 1;
        }
    }
    assert_eq!(closed, 1100, "connections still open after the timeouts");
    // A body sent slower than the request timeout: 408, and the connection closed.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t = Instant::now();
    let mut answer = Vec::new();
    while t.elapsed() < Duration::from_secs(8) {
        let _ = s.write_all(b"x");
        let mut b = [0u8; 256];
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&b[..n]),
            Err(_) => {}
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    figures(
        "http-1000-idle-100-slow",
        "run",
        started.elapsed(),
        d.peak_rss_kb(),
    );
    println!(
        "FIGURES hostile case=http-1000-idle-100-slow healthz_worst_ms={}",
        worst.as_millis()
    );
    assert_eq!(sentinel.hits(), 0);
}

/// Whether the server closed `s` (EOF or a reset, perhaps after an answer).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut b = [0u8; 512];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A fetch over --max-fetch-size is stopped: a huge push cannot fill the state directory.
#[tokio::test]
async fn a_fetch_over_its_size_limit_is_stopped() {
    use mlspace_gitops::source::{GitAuth, Source, SourceConfig};
    let repo = Repo::new();
    // 2 MiB that do not compress (a SHA-256 chain).
    let mut blob = Vec::with_capacity(2 << 20);
    let mut h = [0u8; 32];
    while blob.len() < 2 << 20 {
        use sha2::Digest;
        h = sha2::Sha256::digest(h).into();
        blob.extend_from_slice(&h);
    }
    repo.commit_tree(&[Entry::File("manifests/noise.bin", &blob)], "noise");
    let state = tempfile::tempdir().unwrap();
    let mut source = Source::new(SourceConfig {
        location: repo.url(),
        branch: "main".into(),
        path: PathBuf::from("manifests"),
        state_dir: state.path().to_path_buf(),
        auth: GitAuth::default(),
    })
    .unwrap();
    source.set_max_fetch_bytes(256 << 10);
    let e = source.sync().await.unwrap_err();
    let text = mlspace_gitops::aws::DisplayChain(&e).to_string();
    assert!(
        text.contains("the fetch was stopped after 256 KiB: over the limit (--max-fetch-size)"),
        "{text}"
    );
}

/// A one-character token: warned about, and error messages stay readable (the scrubber
/// used to replace every `a` of them).
#[test]
fn a_one_character_token_is_warned_about_and_does_not_garble_messages() {
    let sentinel = Sentinel::start();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}/org/a-repo.git",
        dead.local_addr().unwrap().port()
    );
    drop(dead);
    let mut env = sentinel.env();
    env.push(("MLSPACE_GITOPS_GIT_TOKEN", "a".into()));
    let d = daemon(&env, &url, None, &[]);
    d.wait_until("a fetch error", Duration::from_secs(20), || {
        d.status()["last_fetch_error"].is_string()
    });
    let e = d.status()["last_fetch_error"].as_str().unwrap().to_string();
    assert!(e.contains("a-repo.git"), "{e}");
    assert!(!e.contains("***"), "garbled: {e}");
    assert!(
        d.log().contains("the git token is suspiciously short"),
        "{}",
        d.log()
    );
}

/// A redirect to another host is not followed: libgit2 would send it the credentials it
/// got from the first one. (Plain HTTP here: a token is refused over http, so the test
/// checks that the other host is never contacted at all.)
#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed() {
    use mlspace_gitops::source::{GitAuth, Source, SourceConfig};
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    let reached = Arc::new(AtomicUsize::new(0));
    let r = reached.clone();
    std::thread::spawn(move || {
        for c in other.incoming().flatten() {
            r.fetch_add(1, Ordering::SeqCst);
            drop(c);
        }
    });
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    let first_port = first.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in first.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let answer = format!("HTTP/1.1 302 Found\r\nLocation: http://localhost:{other_port}/org/repo.git/info/refs?service=git-upload-pack\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = c.write_all(answer.as_bytes());
        }
    });
    let state = tempfile::tempdir().unwrap();
    let mut source = Source::new(SourceConfig {
        location: format!("http://127.0.0.1:{first_port}/org/repo.git"),
        branch: "main".into(),
        path: PathBuf::from("manifests"),
        state_dir: state.path().to_path_buf(),
        auth: GitAuth::default(),
    })
    .unwrap();
    let e = source.sync().await.unwrap_err();
    let text = mlspace_gitops::aws::DisplayChain(&e).to_string();
    assert!(text.contains("cannot redirect"), "{text}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the other origin was contacted"
    );
}
