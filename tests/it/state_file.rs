//! The file state backend alone: atomic replacement, what a corrupt file reports and that it
//! is never overwritten, the history cap, and the lock between processes (racing stores, stale
//! and dead writers' locks, writers killed mid-write), in a temp state directory. What every
//! backend does is in `state_conformance`.

use std::path::Path;
use std::time::Duration;

use mlspace_gitops::kinds::Kind;
use mlspace_gitops::state::file::{FileStore, DEFAULT_HISTORY_CAP};
use mlspace_gitops::state::{StateError, StateStore};

use crate::support::state::{corrupt, entry, record};

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn writes_replace_the_file_atomically_and_leave_no_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let lease = store
        .acquire_lease("dev", "a", Duration::from_secs(60))
        .await
        .unwrap();
    for i in 0..20 {
        let e = entry(Kind::Role, &format!("role-{i}"), "r1");
        store.record("dev", &[e], &[], Some(&lease)).await.unwrap();
        store
            .append_history(&record(i, "r1"), Some(&lease))
            .await
            .unwrap();
    }
    assert_eq!(file_names(store.dir()), vec!["dev.json", "dev.lease"]);

    // A writer that died between writing its temp file and the rename: readers still see the
    // last complete file, and the next writer clears the leftover.
    let leftover = store.dir().join(".dev.json.4242.0.tmp");
    std::fs::write(&leftover, b"{\"version\":1,\"inv").unwrap();
    assert_eq!(store.inventory("dev").await.unwrap().len(), 20);
    store
        .record("dev", &[], &[(Kind::Role, "role-0".into())], Some(&lease))
        .await
        .unwrap();
    assert!(!leftover.exists());
    assert_eq!(file_names(store.dir()), vec!["dev.json", "dev.lease"]);
    assert_eq!(store.inventory("dev").await.unwrap().len(), 19);
}

#[tokio::test]
async fn truncated_or_garbage_files_are_corrupt_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    store
        .record("dev", &[entry(Kind::Role, "app-role", "r1")], &[], None)
        .await
        .unwrap();
    let path = store.state_file("dev");
    let full = std::fs::read(&path).unwrap();

    // Truncated mid-way: the parse error with its line and column, and the file's name.
    let truncated = &full[..full.len() / 2];
    std::fs::write(&path, truncated).unwrap();
    let (location, detail) = corrupt(store.inventory("dev").await.unwrap_err());
    assert!(location.ends_with("state/dev.json"), "{location}");
    assert!(
        detail.contains("line") && detail.contains("column"),
        "{detail}"
    );
    // Nothing writes over it: the entries it held may still be recovered by hand.
    for err in [
        store
            .record("dev", &[entry(Kind::Table, "t", "r2")], &[], None)
            .await
            .unwrap_err(),
        store
            .append_history(&record(1, "r2"), None)
            .await
            .unwrap_err(),
        store.history("dev", 5).await.unwrap_err(),
    ] {
        assert!(err.is_corrupt(), "{err}");
        assert!(err.to_string().contains("dev.json"), "{err}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), truncated);

    // Empty (a crash of something other than us), garbage, a wrong field, a newer format.
    let cases: [(&[u8], &str); 4] = [
        (b"", "EOF"),
        (b"\x00\x01garbage", "line 1 column 1"),
        (
            br#"{"version":1,"environment":"dev","inventory":[{"kind":"Rolez","name":"x","environment":"dev","revision":"r","spec_digest":"d","updated_at":1}],"history":[]}"#,
            "inventory[0].kind",
        ),
        (
            br#"{"version":2,"environment":"dev","inventory":[],"history":[]}"#,
            "format version 2",
        ),
    ];
    for (bytes, expected) in cases {
        std::fs::write(&path, bytes).unwrap();
        let (location, detail) = corrupt(store.inventory("dev").await.unwrap_err());
        assert!(location.ends_with("dev.json"), "{location}");
        assert!(detail.contains(expected), "{expected:?} not in {detail:?}");
    }

    // Fixed (here: removed), the store works again.
    std::fs::remove_file(&path).unwrap();
    assert!(store.inventory("dev").await.unwrap().is_empty());
}

#[tokio::test]
async fn history_is_newest_first_and_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let total = DEFAULT_HISTORY_CAP as u64 + 5;
    for i in 0..total {
        store
            .append_history(&record(1000 + i, &format!("r{i}")), None)
            .await
            .unwrap();
    }
    let all = store.history("dev", 1000).await.unwrap();
    assert_eq!(all.len(), DEFAULT_HISTORY_CAP);
    assert_eq!(all[0].revision, format!("r{}", total - 1));
    assert_eq!(
        all.last().unwrap().revision,
        "r5",
        "the oldest were dropped"
    );
    assert!(all.windows(2).all(|w| w[0].at > w[1].at));

    let small = FileStore::open(tmp.path()).unwrap().with_history_cap(2);
    small
        .append_history(&record(1, "late"), None)
        .await
        .unwrap();
    let kept = small.history("dev", 10).await.unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(
        kept[0].revision,
        format!("r{}", total - 1),
        "ordered by time"
    );
    assert_eq!(kept[1].revision, "late");
}

#[tokio::test]
async fn racing_stores_on_one_directory_give_the_lease_to_exactly_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        // Separate store values, as separate processes would have.
        let store = FileStore::open(tmp.path()).unwrap();
        tasks.push(tokio::spawn(async move {
            store
                .acquire_lease("dev", &format!("replica-{i}"), Duration::from_secs(30))
                .await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(lease) => winners.push(lease),
            Err(StateError::LeaseHeld { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners[0].token, 1);
    let store = FileStore::open(tmp.path()).unwrap();
    assert_eq!(file_names(store.dir()), vec!["dev.lease"], "lock released");
}

#[tokio::test]
async fn a_stale_lock_left_by_a_crash_is_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let lock = store.dir().join("dev.lock");
    let f = std::fs::File::create(&lock).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    f.set_modified(old).unwrap();
    drop(f);
    store
        .acquire_lease("dev", "a", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(!lock.exists());
}

/// A lock as a writer with `pid` on `host` in PID namespace `ns` leaves it, written just now.
fn lock_of(store: &FileStore, pid: u32, host: &str, ns: &str) -> std::path::PathBuf {
    let lock = store.dir().join("dev.lock");
    std::fs::write(&lock, format!("{pid} {host} {ns}\n")).unwrap();
    lock
}

#[tokio::test]
async fn a_lock_whose_writer_was_killed_is_broken_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let dead = child.id();
    child.kill().unwrap(); // SIGKILL, as a crash would
    child.wait().unwrap();
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let ns = ns.display().to_string();
    let lock = lock_of(&store, dead, host.trim(), &ns);
    let start = std::time::Instant::now();
    store
        .acquire_lease("dev", "a", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "waited out STALE_LOCK"
    );
    assert!(!lock.exists());

    // A running writer's lock, and one from another host or container sharing the
    // directory, are held.
    for (pid, host, ns) in [
        (1, host.trim(), ns.as_str()),
        (dead, "another-host", ns.as_str()),
        (dead, host.trim(), "pid:[1]"),
    ] {
        let lock = lock_of(&store, pid, host, ns);
        // The file store waits for its lock in a blocking loop: run it on a thread.
        let dir = tmp.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let store = FileStore::open(&dir).unwrap();
            rt.block_on(store.acquire_lease("dev", "b", Duration::from_secs(1)))
        });
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !waiter.is_finished(),
            "took the lock of {pid} on {host} in {ns}"
        );
        assert!(lock.exists());
        // The writer finishes: past the lock, the lease may still be a's; either answer will do.
        std::fs::remove_file(&lock).unwrap();
        let _ = waiter.join().unwrap();
    }
}

/// Set in the child process of [`a_writer_killed_at_any_point_leaves_a_complete_file`].
const CRASH_DIR_ENV: &str = "MLSPACE_GITOPS_STATE_CRASH_DIR";

/// Child side of the crash test: writes without end until killed. A no-op in a normal run.
#[tokio::test]
async fn crash_child_writer() {
    let Ok(dir) = std::env::var(CRASH_DIR_ENV) else {
        return;
    };
    let store = FileStore::open(Path::new(&dir)).unwrap();
    for i in 0.. {
        let e = entry(Kind::Role, &format!("role-{i:06}"), "r1");
        store.record("dev", &[e], &[], None).await.unwrap();
        store.append_history(&record(i, "r1"), None).await.unwrap();
    }
}

#[tokio::test]
async fn a_writer_killed_at_any_point_leaves_a_complete_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let mut seen = 0;
    for round in 0..6u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "state_file::crash_child_writer",
                "--test-threads=1",
            ])
            .env(CRASH_DIR_ENV, tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150 + 37 * round)).await;
        child.kill().unwrap(); // SIGKILL: no destructor, no cleanup
        child.wait().unwrap();

        // Whatever the moment, the file is the old one or the new one, never a mix.
        let inventory = store.inventory("dev").await.unwrap();
        assert!(inventory.len() >= seen, "state went back");
        seen = inventory.len();
        store.history("dev", 1).await.unwrap();
    }
    assert!(seen > 0, "the child wrote nothing");
    store
        .record("dev", &[], &[(Kind::Role, "role-000000".into())], None)
        .await
        .unwrap();
    let names = file_names(store.dir());
    assert_eq!(names, vec!["dev.json"], "leftover temp files cleared");
}
