//! Git sources against repositories made with git2 in a temporary directory, reached
//! through `file://` URLs (no network).

use std::path::{Path, PathBuf};

use mlspace_gitops::secret::Secret;
use mlspace_gitops::source::{GitAuth, Source, SourceConfig, SourceError};

use crate::support::git::{Repo, EMAIL, NAME};

fn config(location: &str, state: &Path) -> SourceConfig {
    SourceConfig {
        location: location.to_string(),
        branch: "main".to_string(),
        path: PathBuf::from("manifests"),
        state_dir: state.to_path_buf(),
        auth: GitAuth::default(),
    }
}

/// Every file under the cache repositories' object stores: a fetch always adds some.
fn object_files(state: &Path) -> usize {
    fn count(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    std::fs::read_dir(state.join("git"))
        .unwrap()
        .flatten()
        .map(|e| count(&e.path().join("repo.git/objects")))
        .sum()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn first_sync_clones_the_head_commit_with_author_and_message() {
    let up = Repo::new();
    let head = up.commit(
        &[
            ("manifests/roles.yaml", "roles: 1\n"),
            ("manifests/sub/buckets.yaml", "buckets: 1\n"),
            ("README.md", "not a manifest"),
        ],
        "Add roles\n\nWith a body.",
    );
    let state = tempfile::tempdir().unwrap();
    let mut src = Source::new(config(&up.url(), state.path())).unwrap();
    assert!(src.is_git());
    assert!(src.watch().unwrap().is_none());

    let rev = src.sync().await.unwrap();
    assert_eq!(rev.id, head);
    assert_eq!(
        rev.author.as_deref(),
        Some(format!("{NAME} <{EMAIL}>").as_str())
    );
    assert_eq!(rev.message.as_deref(), Some("Add roles"));
    assert!(src.last_sync_fetched());
    assert!(rev.manifests_dir.starts_with(state.path().join("git")));
    assert!(rev.manifests_dir.ends_with("manifests"));
    assert_eq!(read(rev.manifests_dir.join("roles.yaml")), "roles: 1\n");
    assert_eq!(
        read(rev.manifests_dir.join("sub/buckets.yaml")),
        "buckets: 1\n"
    );
    // Only the manifests path is written out.
    assert!(!rev
        .manifests_dir
        .parent()
        .unwrap()
        .join("README.md")
        .exists());
}

#[tokio::test]
async fn second_sync_without_new_commits_does_not_fetch() {
    let up = Repo::new();
    up.commit(&[("manifests/a.yaml", "a: 1\n")], "one");
    let state = tempfile::tempdir().unwrap();
    let mut src = Source::new(config(&up.url(), state.path())).unwrap();
    let first = src.sync().await.unwrap();
    assert!(src.last_sync_fetched());
    let objects = object_files(state.path());
    assert!(objects > 0);

    let second = src.sync().await.unwrap();
    assert_eq!(second, first);
    assert!(!src.last_sync_fetched());
    assert_eq!(object_files(state.path()), objects);
}

#[tokio::test]
async fn cache_is_reused_after_a_restart() {
    let up = Repo::new();
    let head = up.commit(&[("manifests/a.yaml", "a: 1\n")], "one");
    let state = tempfile::tempdir().unwrap();
    Source::new(config(&up.url(), state.path()))
        .unwrap()
        .sync()
        .await
        .unwrap();
    let objects = object_files(state.path());

    let mut restarted = Source::new(config(&up.url(), state.path())).unwrap();
    let rev = restarted.sync().await.unwrap();
    assert_eq!(rev.id, head);
    assert!(!restarted.last_sync_fetched());
    assert_eq!(object_files(state.path()), objects);
    assert_eq!(read(rev.manifests_dir.join("a.yaml")), "a: 1\n");
}

#[tokio::test]
async fn new_commit_gives_a_new_revision_with_the_new_content() {
    let up = Repo::new();
    up.commit(&[("manifests/a.yaml", "a: 1\n")], "one");
    let state = tempfile::tempdir().unwrap();
    let mut src = Source::new(config(&up.url(), state.path())).unwrap();
    let first = src.sync().await.unwrap();

    let second_id = up.commit(&[("manifests/a.yaml", "a: 2\n")], "two");
    let second = src.sync().await.unwrap();
    assert!(src.last_sync_fetched());
    assert_eq!(second.id, second_id);
    assert_ne!(second.manifests_dir, first.manifests_dir);
    assert_eq!(second.message.as_deref(), Some("two"));
    assert_eq!(read(second.manifests_dir.join("a.yaml")), "a: 2\n");
    // The previous checkout stays while the daemon may still read it...
    assert_eq!(read(first.manifests_dir.join("a.yaml")), "a: 1\n");

    up.commit(&[("manifests/a.yaml", "a: 3\n")], "three");
    let third = src.sync().await.unwrap();
    assert_eq!(read(third.manifests_dir.join("a.yaml")), "a: 3\n");
    // ...and older ones go.
    assert!(!first.manifests_dir.exists());
    assert!(second.manifests_dir.exists());
}

#[tokio::test]
async fn file_deleted_in_git_is_gone_from_the_manifests_dir() {
    let up = Repo::new();
    up.commit(
        &[
            ("manifests/keep.yaml", "k: 1\n"),
            ("manifests/old.yaml", "o: 1\n"),
        ],
        "two files",
    );
    let state = tempfile::tempdir().unwrap();
    let mut src = Source::new(config(&up.url(), state.path())).unwrap();
    let before = src.sync().await.unwrap();
    assert!(before.manifests_dir.join("old.yaml").exists());

    up.commit_changes(&[("manifests/old.yaml", None)], "remove old");
    let after = src.sync().await.unwrap();
    assert!(after.manifests_dir.join("keep.yaml").exists());
    assert!(!after.manifests_dir.join("old.yaml").exists());
}

#[tokio::test]
async fn missing_branch_is_an_error() {
    let up = Repo::new();
    up.commit(&[("manifests/a.yaml", "a: 1\n")], "one");
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(&up.url(), state.path());
    cfg.branch = "release".to_string();
    let mut src = Source::new(cfg).unwrap();
    let err = src.sync().await.unwrap_err();
    assert!(
        matches!(&err, SourceError::BranchNotFound { branch, .. } if branch == "release"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"release\""), "{err}");
    assert!(!src.last_sync_fetched());

    // An empty repository has no branch at all yet.
    let empty = Repo::new();
    let mut src = Source::new(config(&empty.url(), state.path())).unwrap();
    let err = src.sync().await.unwrap_err();
    assert!(matches!(err, SourceError::BranchNotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn unreachable_remote_is_an_error() {
    let state = tempfile::tempdir().unwrap();
    let gone = state.path().join("no-such-repo");
    let mut src = Source::new(config(&format!("file://{}", gone.display()), state.path())).unwrap();
    let err = src.sync().await.unwrap_err();
    assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn missing_manifests_path_is_not_an_error() {
    let up = Repo::new();
    let head = up.commit(&[("other/a.yaml", "a: 1\n")], "no manifests yet");
    let state = tempfile::tempdir().unwrap();
    let mut src = Source::new(config(&up.url(), state.path())).unwrap();
    let rev = src.sync().await.unwrap();
    assert_eq!(rev.id, head);
    assert!(rev.manifests_dir.ends_with("manifests"));
    assert!(!rev.manifests_dir.exists());

    // The path appearing later shows up.
    up.commit(&[("manifests/a.yaml", "a: 1\n")], "add manifests");
    let rev = src.sync().await.unwrap();
    assert_eq!(read(rev.manifests_dir.join("a.yaml")), "a: 1\n");
}

#[tokio::test]
async fn nested_manifests_path_and_repository_root() {
    let up = Repo::new();
    up.commit(
        &[("envs/prod/a.yaml", "prod\n"), ("top.yaml", "top\n")],
        "layout",
    );
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(&up.url(), state.path());
    cfg.path = PathBuf::from("envs/prod");
    let rev = Source::new(cfg).unwrap().sync().await.unwrap();
    assert_eq!(read(rev.manifests_dir.join("a.yaml")), "prod\n");

    let mut cfg = config(&up.url(), state.path());
    cfg.path = PathBuf::from(".");
    let rev = Source::new(cfg).unwrap().sync().await.unwrap();
    assert_eq!(read(rev.manifests_dir.join("top.yaml")), "top\n");
    assert_eq!(read(rev.manifests_dir.join("envs/prod/a.yaml")), "prod\n");
}

#[test]
fn invalid_configurations_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config("file:///srv/repo", state.path());
    cfg.branch = "bad..name".to_string();
    assert!(matches!(Source::new(cfg), Err(SourceError::Config(_))));

    let mut cfg = config("file:///srv/repo", state.path());
    cfg.path = PathBuf::from("../escape");
    assert!(matches!(Source::new(cfg), Err(SourceError::Config(_))));

    let cfg = config("./no/such/dir", state.path());
    let err = Source::new(cfg).unwrap_err();
    assert!(
        err.to_string()
            .contains("neither an existing directory nor a git URL"),
        "{err}"
    );
}

#[tokio::test]
async fn credentials_never_show() {
    let state = tempfile::tempdir().unwrap();
    let leaks =
        |text: &str| text.contains("user:tok") || text.contains(":tok@") || text.contains("s3cr3t");

    let src = Source::new(config("https://user:tok@host/x.git", state.path())).unwrap();
    assert_eq!(src.display_location(), "https://host/x.git");
    assert!(!leaks(&format!("{src:?}")));
    assert!(!leaks(&format!(
        "{:?}",
        config("https://user:tok@host/x.git", state.path())
    )));

    // A token over plain http is refused, and the message shows no credentials.
    let mut cfg = config("http://user:tok@host/x.git", state.path());
    cfg.auth.token = Some(Secret::new("s3cr3t"));
    let err = Source::new(cfg).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("http://host/x.git") && !leaks(&text),
        "{text}"
    );

    // A failing connection (nothing listens on port 1 of this machine).
    let mut cfg = config("https://user:tok@127.0.0.1:1/x.git", state.path());
    cfg.auth.token = Some(Secret::new("s3cr3t"));
    let mut src = Source::new(cfg).unwrap();
    assert_eq!(src.display_location(), "https://127.0.0.1:1/x.git");
    let err = src.sync().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, SourceError::Connect { .. }), "{text}");
    assert!(!leaks(&text), "{text}");
    // Nor does anything written to the state directory.
    for entry in walk(state.path()) {
        if let Ok(content) = std::fs::read_to_string(&entry) {
            assert!(!leaks(&content), "{}", entry.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn branch_reset_to_an_older_commit_needs_no_fetch() {
    let up = Repo::new();
    let old = up.commit(&[("manifests/a.yaml", "a: 1\n")], "one");
    up.commit(&[("manifests/a.yaml", "a: 2\n")], "two");
    let state = tempfile::tempdir().unwrap();
    let mut src = Source::new(config(&up.url(), state.path())).unwrap();
    src.sync().await.unwrap();

    // A force-push back to the first commit, which the cache already has.
    let oid = git2::Oid::from_str(&old).unwrap();
    up.repo
        .reference("refs/heads/main", oid, true, "reset")
        .unwrap();
    let rev = src.sync().await.unwrap();
    assert_eq!(rev.id, old);
    assert!(!src.last_sync_fetched());
    assert_eq!(read(rev.manifests_dir.join("a.yaml")), "a: 1\n");
}
