//! Local directory sources: the digest revision and the batched file watch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mlspace_gitops::source::{GitAuth, Source, SourceConfig};
use tokio::time::timeout;

fn source(dir: &Path) -> Source {
    Source::new(SourceConfig {
        location: dir.display().to_string(),
        branch: "main".to_string(),
        path: PathBuf::from("manifests"),
        state_dir: dir.join("unused-state"),
        auth: GitAuth::default(),
    })
    .unwrap()
}

fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roles.yaml"), "roles: 1\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/policy.json"), "{}\n").unwrap();
    dir
}

#[tokio::test]
async fn digest_is_stable() {
    let dir = manifests();
    let mut src = source(dir.path());
    assert!(!src.is_git());
    assert_eq!(src.display_location(), dir.path().display().to_string());
    let first = src.sync().await.unwrap();
    assert!(first.id.starts_with("dir-"), "{}", first.id);
    assert_eq!(first.manifests_dir, dir.path());
    assert_eq!(
        (first.author.as_deref(), first.message.as_deref()),
        (None, None)
    );
    assert!(!src.last_sync_fetched());

    assert_eq!(src.sync().await.unwrap(), first);
    // A fresh source (a restart) computes the same id.
    assert_eq!(source(dir.path()).sync().await.unwrap().id, first.id);
}

#[tokio::test]
async fn digest_changes_when_a_file_changes() {
    let dir = manifests();
    let mut src = source(dir.path());
    let original = src.sync().await.unwrap().id;

    std::fs::write(dir.path().join("sub/policy.json"), "{\"a\": 1}\n").unwrap();
    let changed = src.sync().await.unwrap().id;
    assert_ne!(changed, original);

    std::fs::write(dir.path().join("new.yml"), "x: 1\n").unwrap();
    let added = src.sync().await.unwrap().id;
    assert_ne!(added, changed);

    std::fs::remove_file(dir.path().join("new.yml")).unwrap();
    std::fs::write(dir.path().join("sub/policy.json"), "{}\n").unwrap();
    assert_eq!(src.sync().await.unwrap().id, original);
}

#[tokio::test]
async fn watch_sends_one_signal_per_burst() {
    let dir = manifests();
    let mut src = source(dir.path());
    let mut rx = src.watch().unwrap().expect("local sources can be watched");

    for i in 0..10 {
        std::fs::write(dir.path().join(format!("burst-{i}.yaml")), "x: 1\n").unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(got, Ok(Some(())), "one signal for the burst");
    assert!(
        timeout(Duration::from_millis(1500), rx.recv())
            .await
            .is_err(),
        "exactly one signal for the burst"
    );

    // Reading the directory (as sync and the manifest loader do) is not a change.
    src.sync().await.unwrap();
    assert!(timeout(Duration::from_millis(1000), rx.recv())
        .await
        .is_err());

    std::fs::write(dir.path().join("sub/later.yaml"), "y: 1\n").unwrap();
    let got = timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(got, Ok(Some(())), "a later write signals again");
}
