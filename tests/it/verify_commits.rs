//! Commit signature verification against commits signed by the real `git commit -S` with
//! `gpg.format = ssh` and keys made by `ssh-keygen` in the test (ed25519, ECDSA, RSA): what
//! `git verify-commit` accepts with the same allowed-signers file, a git source with
//! `verify_commits` accepts, and a key not in the file is refused before any checkout.
//!
//! Needs git and ssh-keygen (Debian's git and openssh-client packages, which scripts/test.sh
//! installs): without them the test fails, saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

use mlspace_gitops::source::{GitAuth, Source, SourceConfig, SourceError, VerifyError};

use crate::support::require;

/// A repository driven by the git command, with a configuration of its own only.
struct GitRepo {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl GitRepo {
    fn new() -> GitRepo {
        let r = GitRepo {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        r.git(&["init", "-q", "-b", "main"]);
        r.git(&["config", "user.name", "Alice Example"]);
        r.git(&["config", "user.email", "alice@example.com"]);
        r.git(&["config", "gpg.format", "ssh"]);
        r
    }

    fn git(&self, args: &[&str]) -> String {
        let o = Command::new(require("git"))
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_CONFIG_GLOBAL")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Commit a manifest change signed with `key` (a private key file); the commit id.
    fn commit_signed(&self, key: &Path, n: usize) -> String {
        let dir = self.dir.path().join("manifests");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("n.yaml"), format!("n: {n}\n")).unwrap();
        self.git(&["add", "-A"]);
        let signing = format!("user.signingkey={}", key.display());
        self.git(&[
            "-c",
            &signing,
            "commit",
            "-q",
            "-S",
            "-m",
            &format!("change {n}"),
        ]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }
}

/// `ssh-keygen -t <kind>` into `dir`; the private key's path.
fn keygen(dir: &Path, kind: &str, bits: Option<&str>) -> PathBuf {
    let path = dir.join(format!("id_{kind}"));
    let mut c = Command::new(require("ssh-keygen"));
    c.args(["-q", "-t", kind, "-N", "", "-C", "test key", "-f"])
        .arg(&path);
    if let Some(b) = bits {
        c.args(["-b", b]);
    }
    assert!(c.status().unwrap().success());
    path
}

fn allowed_line(principals: &str, key: &Path) -> String {
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    format!("{principals} {}\n", public.trim())
}

#[tokio::test]
async fn commits_signed_by_git_verify_like_git_verify_commit() {
    let keys = tempfile::tempdir().unwrap();
    let ed25519 = keygen(keys.path(), "ed25519", None);
    let ecdsa = keygen(keys.path(), "ecdsa", Some("256"));
    let rsa = keygen(keys.path(), "rsa", Some("2048"));
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = keygen(elsewhere.path(), "ed25519", None);
    let signers = keys.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!(
            "{}{}{}",
            allowed_line("alice@example.com", &ed25519),
            allowed_line("*@example.com", &ecdsa),
            allowed_line("alice@example.com namespaces=\"git\"", &rsa),
        ),
    )
    .unwrap();

    let repo = GitRepo::new();
    let state = tempfile::tempdir().unwrap();
    let mut source = Source::new(SourceConfig {
        location: repo.url(),
        branch: "main".into(),
        path: PathBuf::from("manifests"),
        state_dir: state.path().to_path_buf(),
        auth: GitAuth::default(),
    })
    .unwrap();
    source.verify_commits(signers.clone()).unwrap();
    let allowed = format!("gpg.ssh.allowedSignersFile={}", signers.display());

    for (n, key) in [&ed25519, &ecdsa, &rsa].into_iter().enumerate() {
        let id = repo.commit_signed(key, n);
        // git agrees the signature is good with this file...
        repo.git(&["-c", &allowed, "verify-commit", &id]);
        // ...and so does the source.
        let rev = source
            .sync()
            .await
            .unwrap_or_else(|e| panic!("{key:?}: {e:?}"));
        assert_eq!(rev.id, id);
        assert!(rev.manifests_dir.join("n.yaml").is_file());
    }

    let id = repo.commit_signed(&stranger, 9);
    match source.sync().await {
        Err(SourceError::Unverified {
            commit,
            source: VerifyError::UnknownKey { .. },
        }) => assert_eq!(commit, id),
        other => panic!("{other:?}"),
    }
    let checkouts = std::fs::read_dir(state.path().join("git"))
        .unwrap()
        .flatten()
        .flat_map(|d| {
            std::fs::read_dir(d.path().join("checkouts"))
                .unwrap()
                .flatten()
        })
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect::<Vec<_>>();
    assert!(
        checkouts.iter().all(|c| !c.starts_with(&id)),
        "the refused commit was checked out: {checkouts:?}"
    );
}
