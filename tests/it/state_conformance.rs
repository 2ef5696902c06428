//! One conformance suite for every `StateStore` backend: each test is written once, against
//! `&dyn StateStore`, and runs on the file backend (a temporary state directory) and on the
//! DynamoDB backend (a table on a moto server of the test's own), as
//! `state_conformance::file::NAME` and `state_conformance::dynamodb::NAME`.
//!
//! What a backend alone does (file locks, atomic replacement, the history cap; the
//! DynamoDB table, its pages and transactions, what each corrupt item reports) is tested in
//! `state_file` and `state_dynamodb`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use mlspace_gitops::kinds::Kind;
use mlspace_gitops::state::dynamodb::{LEASE_SK, PK, SK};
use mlspace_gitops::state::{self, now_ms, ReplicaRecord, StateError, StateStore, Suspension};

use crate::support::state::{corrupt, entry, put_raw, record};
use crate::support::{Clients as _, Moto};

/// A backend under test, with the means to damage what it stores.
enum Backend {
    /// `FileStore` in a temporary state directory.
    File(tempfile::TempDir),
    /// `DynamoStore` on table [`TABLE`] of a moto server.
    DynamoDb(Moto),
}

/// The DynamoDB backend's table.
const TABLE: &str = "state";

/// What [`Backend::corrupt`] damages.
#[derive(Debug, Clone, Copy)]
enum Part {
    Inventory,
    History,
    Lease,
}

/// Damage done by [`Backend::corrupt`]: what the error's location must name, and how to undo
/// it.
struct Damage {
    at: String,
    undo: Undo,
}

enum Undo {
    /// Put the file back as it was (remove it when it was not there).
    Restore(PathBuf, Option<Vec<u8>>),
    /// Delete the item with this sort key of environment `dev`.
    Delete(String),
}

impl Backend {
    fn file() -> Backend {
        Backend::File(tempfile::tempdir().unwrap())
    }

    fn dynamodb() -> Backend {
        Backend::DynamoDb(Moto::start())
    }

    /// A new handle on the backend's state, as another process or replica opens it.
    async fn open(&self) -> Box<dyn StateStore> {
        match self {
            Backend::File(dir) => state::open(None, dir.path(), None).await.unwrap(),
            Backend::DynamoDb(moto) => {
                let aws = moto.aws().await;
                let spec = format!("dynamodb://{TABLE}");
                state::open(Some(&spec), Path::new("/nonexistent"), Some(&aws))
                    .await
                    .unwrap()
            }
        }
    }

    /// What `StateStore::location` says.
    fn location(&self) -> String {
        match self {
            Backend::File(dir) => format!("file:{}", dir.path().join("state").display()),
            Backend::DynamoDb(_) => format!("dynamodb://{TABLE}"),
        }
    }

    /// A lease time that a few of the backend's round trips fit in many times over.
    fn ttl(&self) -> Duration {
        match self {
            Backend::File(_) => Duration::from_millis(500),
            Backend::DynamoDb(_) => Duration::from_millis(1500),
        }
    }

    /// Make `part` of environment `dev` unreadable, the way a crash of something else, a bad
    /// copy or a hand edit would.
    async fn corrupt(&self, part: Part) -> Damage {
        match self {
            Backend::File(dir) => {
                let state = dir.path().join("state");
                let (file, bytes): (_, &[u8]) = match part {
                    // One file holds both: cut in half.
                    Part::Inventory | Part::History => (
                        state.join("dev.json"),
                        b"{\"version\":1,\"environment\":\"de",
                    ),
                    Part::Lease => (state.join("dev.lease"), b"{\"holder\":"),
                };
                let before = std::fs::read(&file).ok();
                std::fs::write(&file, bytes).unwrap();
                Damage {
                    at: file.file_name().unwrap().to_string_lossy().into_owned(),
                    undo: Undo::Restore(file, before),
                }
            }
            Backend::DynamoDb(moto) => {
                let s = |v: &str| AttributeValue::S(v.into());
                let (sk, attrs, at) = match part {
                    Part::Inventory => (
                        "res#Role#broken",
                        vec![("kind", s("Role"))],
                        "res#Role#broken",
                    ),
                    Part::History => (
                        "hist#00000000000000000005#00000000",
                        vec![("at", s("soon"))],
                        "hist#00000000000000000005",
                    ),
                    Part::Lease => (
                        LEASE_SK,
                        vec![("holder", s("x")), ("token", s("one"))],
                        "sk=\"lease\"",
                    ),
                };
                put_raw(&moto.aws().await, TABLE, sk, &attrs).await;
                Damage {
                    at: at.to_string(),
                    undo: Undo::Delete(sk.to_string()),
                }
            }
        }
    }

    /// Undo [`Backend::corrupt`].
    async fn repair(&self, damage: Damage) {
        match (self, damage.undo) {
            (_, Undo::Restore(file, Some(bytes))) => std::fs::write(file, bytes).unwrap(),
            (_, Undo::Restore(file, None)) => std::fs::remove_file(file).unwrap(),
            (Backend::DynamoDb(moto), Undo::Delete(sk)) => {
                moto.aws()
                    .await
                    .dynamodb()
                    .delete_item()
                    .table_name(TABLE)
                    .key(PK, AttributeValue::S("env#dev".into()))
                    .key(SK, AttributeValue::S(sk))
                    .send()
                    .await
                    .unwrap();
            }
            (Backend::File(_), Undo::Delete(_)) => unreachable!("files are restored"),
        }
    }
}

/// Wait until a lease taken now with [`Backend::ttl`] has expired.
async fn outlive_the_lease(b: &Backend) {
    tokio::time::sleep(b.ttl() + b.ttl() / 4).await;
}

/// The test functions, each run on both backends.
macro_rules! suite {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(&super::Backend::$backend()).await;
                }
            )*
        }
    };
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        suite!(file: $($test),*);
        suite!(dynamodb: $($test),*);
    };
}

conformance!(
    inventory_round_trips_in_kind_and_name_order,
    upserts_replace_and_removals_win,
    entries_of_another_environment_and_unsafe_names_are_refused,
    corrupt_state_is_reported_and_never_read_as_empty,
    history_is_newest_first_and_limited,
    lease_acquire_renew_held_expire_and_take_over,
    writes_fenced_by_a_lost_lease_are_refused,
    release_frees_the_lease_at_once_and_the_token_keeps_growing,
    racing_replicas_give_the_lease_to_exactly_one,
    replicas_heartbeat_expire_and_leave,
    the_overview_names_the_holder_and_the_last_reconcile_fenced,
    suspension_set_read_back_replaced_and_cleared,
    suspension_is_kept_apart_from_inventory_and_lease,
);

async fn inventory_round_trips_in_kind_and_name_order(b: &Backend) {
    let store = b.open().await;
    assert_eq!(store.location(), b.location());
    assert!(store.inventory("dev").await.unwrap().is_empty());
    assert!(store.history("dev", 10).await.unwrap().is_empty());

    let (role, bucket, table) = (
        entry(Kind::Role, "app-role", "r1"),
        entry(Kind::Bucket, "mlspace-data", "r1"),
        entry(Kind::Table, "mlspace-users", "r1"),
    );
    store
        .record(
            "dev",
            &[table.clone(), role.clone(), bucket.clone()],
            &[],
            None,
        )
        .await
        .unwrap();
    let want = vec![role, bucket, table];
    assert_eq!(
        store.inventory("dev").await.unwrap(),
        want,
        "ordered by (kind, name), whatever the order written"
    );
    // Another handle (a restarted process, another replica) reads the same.
    assert_eq!(b.open().await.inventory("dev").await.unwrap(), want);
    assert!(store.inventory("prod").await.unwrap().is_empty());
}

async fn upserts_replace_and_removals_win(b: &Backend) {
    let store = b.open().await;
    let table = entry(Kind::Table, "mlspace-users", "r1");
    store
        .record(
            "dev",
            &[
                entry(Kind::Role, "app-role", "r1"),
                entry(Kind::Bucket, "mlspace-data", "r1"),
                table.clone(),
            ],
            &[],
            None,
        )
        .await
        .unwrap();

    let role2 = entry(Kind::Role, "app-role", "r2");
    store
        .record(
            "dev",
            &[role2.clone(), entry(Kind::Table, "gone", "r2")],
            &[
                (Kind::Bucket, "mlspace-data".into()),
                (Kind::Table, "gone".into()),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        b.open().await.inventory("dev").await.unwrap(),
        vec![role2.clone(), table.clone()],
        "upsert replaced, removal won over the upsert of the same resource"
    );
    // Forgetting what is not there is no error.
    store
        .record("dev", &[], &[(Kind::Role, "never-there".into())], None)
        .await
        .unwrap();
    assert_eq!(store.inventory("dev").await.unwrap(), vec![role2, table]);
}

async fn entries_of_another_environment_and_unsafe_names_are_refused(b: &Backend) {
    let store = b.open().await;
    let err = store
        .record("prod", &[entry(Kind::Role, "r", "r1")], &[], None)
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::WrongEnvironment { .. }), "{err}");
    for bad in ["../etc", "a/b", ".hidden", ""] {
        let errors = [
            store.inventory(bad).await.map(drop).unwrap_err(),
            store.history(bad, 1).await.map(drop).unwrap_err(),
            store
                .acquire_lease(bad, "a", b.ttl())
                .await
                .map(drop)
                .unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, StateError::InvalidEnvironment(_)), "{err}");
        }
    }
    assert!(store.inventory("dev").await.unwrap().is_empty());
    assert!(store.inventory("prod").await.unwrap().is_empty());
}

async fn corrupt_state_is_reported_and_never_read_as_empty(b: &Backend) {
    let store = b.open().await;
    let kept = entry(Kind::Role, "app-role", "r1");
    store
        .record("dev", std::slice::from_ref(&kept), &[], None)
        .await
        .unwrap();
    store.append_history(&record(1, "r1"), None).await.unwrap();
    store.acquire_lease("dev", "a", b.ttl()).await.unwrap();

    for part in [Part::Inventory, Part::History, Part::Lease] {
        let damage = b.corrupt(part).await;
        let read = match part {
            Part::Inventory => store.inventory("dev").await.map(drop),
            Part::History => store.history("dev", 10).await.map(drop),
            Part::Lease => store.acquire_lease("dev", "a", b.ttl()).await.map(drop),
        };
        let err = read.expect_err("damaged state was read");
        assert!(err.is_corrupt(), "{part:?}: {err}");
        let (location, _) = corrupt(err);
        assert!(location.contains(&damage.at), "{part:?}: {location}");
        b.repair(damage).await;
    }

    // Repaired, the store reads what it held.
    assert_eq!(store.inventory("dev").await.unwrap(), vec![kept]);
    assert_eq!(
        store.history("dev", 10).await.unwrap(),
        vec![record(1, "r1")]
    );
    store.acquire_lease("dev", "a", b.ttl()).await.unwrap();
}

async fn history_is_newest_first_and_limited(b: &Backend) {
    let store = b.open().await;
    // Appended out of order, two of them in one millisecond.
    for (at, rev) in [(10, "r1"), (30, "r3"), (20, "r2"), (20, "r2b")] {
        store.append_history(&record(at, rev), None).await.unwrap();
    }
    let h = b.open().await.history("dev", 10).await.unwrap();
    let revs: Vec<&str> = h.iter().map(|r| r.revision.as_str()).collect();
    assert_eq!(revs.len(), 4, "{revs:?}");
    assert_eq!((revs[0], revs[3]), ("r3", "r1"), "newest first: {revs:?}");
    let mut same_ms = revs[1..3].to_vec();
    same_ms.sort();
    assert_eq!(
        same_ms,
        ["r2", "r2b"],
        "records of one millisecond stay apart"
    );
    assert_eq!(h[0], record(30, "r3"), "every field round trips");

    let latest = store.history("dev", 2).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0].revision, "r3");
    assert!(store.history("dev", 0).await.unwrap().is_empty());
    assert!(store.history("prod", 10).await.unwrap().is_empty());
    // History and inventory share the store without mixing.
    assert!(store.inventory("dev").await.unwrap().is_empty());
}

async fn lease_acquire_renew_held_expire_and_take_over(b: &Backend) {
    let (a, other) = (b.open().await, b.open().await);
    let ttl = b.ttl();

    let a1 = a.acquire_lease("dev", "a", ttl).await.unwrap();
    assert_eq!((a1.holder.as_str(), a1.token), ("a", 1));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let a2 = a.acquire_lease("dev", "a", ttl).await.unwrap();
    assert_eq!(a2.token, 1, "renewal keeps the token");
    assert!(a2.expires_at_ms > a1.expires_at_ms);

    match other.acquire_lease("dev", "b", ttl).await.unwrap_err() {
        StateError::LeaseHeld {
            environment,
            holder,
            expires_at_ms,
        } => {
            assert_eq!((environment.as_str(), holder.as_str()), ("dev", "a"));
            assert_eq!(expires_at_ms, a2.expires_at_ms);
        }
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    // Leases are per environment.
    assert_eq!(
        other.acquire_lease("prod", "b", ttl).await.unwrap().token,
        1
    );

    // The holder dies: after the lease time another replica takes over with token + 1.
    outlive_the_lease(b).await;
    assert!(a2.is_expired(now_ms()));
    let taken = other.acquire_lease("dev", "b", ttl).await.unwrap();
    assert_eq!(
        (taken.holder.as_str(), taken.token),
        ("b", 2),
        "takeover increments"
    );
    assert!(matches!(
        a.acquire_lease("dev", "a", ttl).await.unwrap_err(),
        StateError::LeaseHeld { .. }
    ));
}

async fn writes_fenced_by_a_lost_lease_are_refused(b: &Backend) {
    let (a, other) = (b.open().await, b.open().await);
    let ttl = b.ttl();
    let old = a.acquire_lease("dev", "a", ttl).await.unwrap();
    a.record("dev", &[entry(Kind::Role, "r", "r1")], &[], Some(&old))
        .await
        .unwrap();
    a.append_history(&record(1, "r1"), Some(&old))
        .await
        .unwrap();

    outlive_the_lease(b).await;
    let new = other.acquire_lease("dev", "b", ttl * 50).await.unwrap();
    assert_eq!(new.token, old.token + 1);

    // The old holder comes back: every write of its is refused.
    match a
        .record("dev", &[], &[(Kind::Role, "r".into())], Some(&old))
        .await
        .unwrap_err()
    {
        StateError::Fenced { environment, token } => {
            assert_eq!((environment.as_str(), token), ("dev", old.token))
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
    let err = a
        .append_history(&record(2, "r2"), Some(&old))
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }), "{err}");
    // An empty write still tells a replica whether its lease is current.
    let err = a.record("dev", &[], &[], Some(&old)).await.unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }), "{err}");
    // A lease of another environment fences nothing here.
    let prod = a.acquire_lease("prod", "a", ttl).await.unwrap();
    let err = a.record("dev", &[], &[], Some(&prod)).await.unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }), "{err}");

    // Nothing was written; the new holder writes.
    other.record("dev", &[], &[], Some(&new)).await.unwrap();
    assert_eq!(other.inventory("dev").await.unwrap().len(), 1);
    assert_eq!(other.history("dev", 10).await.unwrap().len(), 1);
    other
        .record("dev", &[], &[(Kind::Role, "r".into())], Some(&new))
        .await
        .unwrap();
    assert!(other.inventory("dev").await.unwrap().is_empty());
}

async fn release_frees_the_lease_at_once_and_the_token_keeps_growing(b: &Backend) {
    let (a, other) = (b.open().await, b.open().await);
    let ttl = b.ttl();
    let old = a.acquire_lease("dev", "a", ttl).await.unwrap();
    outlive_the_lease(b).await;
    let new = other.acquire_lease("dev", "b", ttl * 50).await.unwrap();

    // A stale lease's release leaves the new holder alone.
    a.release_lease(&old).await.unwrap();
    assert!(matches!(
        a.acquire_lease("dev", "a", ttl).await.unwrap_err(),
        StateError::LeaseHeld { .. }
    ));
    other.record("dev", &[], &[], Some(&new)).await.unwrap();

    // The holder's own release frees it at once; the released lease fences no more writes.
    other.release_lease(&new).await.unwrap();
    let err = other
        .record("dev", &[], &[(Kind::Role, "x".into())], Some(&new))
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }), "released: {err}");
    let back = a.acquire_lease("dev", "a", ttl).await.unwrap();
    assert_eq!(back.token, new.token + 1, "the token keeps growing");
}

async fn racing_replicas_give_the_lease_to_exactly_one(b: &Backend) {
    // Separate handles, as separate processes or replicas have them.
    let stores = join_all((0..8).map(|_| b.open())).await;
    let results = join_all(stores.iter().enumerate().map(|(i, s)| async move {
        s.acquire_lease("dev", &format!("replica-{i}"), Duration::from_secs(30))
            .await
    }))
    .await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(winners[0].token, 1);
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(err, StateError::LeaseHeld { .. }), "{err}");
    }
}

fn suspension(environment: &str, reason: Option<&str>) -> Suspension {
    Suspension {
        environment: environment.into(),
        reason: reason.map(str::to_string),
        by: Some("ops@example.com".into()),
        at_ms: 1_764_000_000_123,
    }
}

async fn suspension_set_read_back_replaced_and_cleared(b: &Backend) {
    let store = b.open().await;
    assert_eq!(store.suspension("dev").await.unwrap(), None);
    // Resuming what is not suspended is not an error.
    store.set_suspension("dev", None).await.unwrap();

    let first = suspension("dev", Some("incident 42: hands off"));
    store.set_suspension("dev", Some(&first)).await.unwrap();
    assert_eq!(store.suspension("dev").await.unwrap(), Some(first.clone()));
    // A new store instance (a restarted daemon, another replica) reads the same.
    assert_eq!(b.open().await.suspension("dev").await.unwrap(), Some(first));
    assert_eq!(store.suspension("prod").await.unwrap(), None);

    // Suspending again replaces the record; no reason is kept as none.
    let second = suspension("dev", None);
    store.set_suspension("dev", Some(&second)).await.unwrap();
    assert_eq!(
        b.open().await.suspension("dev").await.unwrap(),
        Some(second)
    );

    b.open().await.set_suspension("dev", None).await.unwrap();
    assert_eq!(store.suspension("dev").await.unwrap(), None);
    assert_eq!(b.open().await.suspension("dev").await.unwrap(), None);

    // Another environment's record and unsafe names are refused.
    assert!(matches!(
        store
            .set_suspension("dev", Some(&suspension("prod", None)))
            .await,
        Err(StateError::WrongEnvironment { .. })
    ));
    assert!(matches!(
        store.suspension("../x").await,
        Err(StateError::InvalidEnvironment(_))
    ));
    assert_eq!(store.suspension("dev").await.unwrap(), None);
}

async fn suspension_is_kept_apart_from_inventory_and_lease(b: &Backend) {
    let store = b.open().await;
    let role = entry(Kind::Role, "app-role", "r1");
    store
        .record("dev", std::slice::from_ref(&role), &[], None)
        .await
        .unwrap();
    let lease = store.acquire_lease("dev", "a", b.ttl()).await.unwrap();
    let s = suspension("dev", Some("maintenance"));
    store.set_suspension("dev", Some(&s)).await.unwrap();
    // Suspending is no inventory write and takes no lease: another holder's lease stands.
    assert_eq!(store.inventory("dev").await.unwrap(), vec![role.clone()]);
    store.record("dev", &[], &[], Some(&lease)).await.unwrap();
    assert!(matches!(
        store.acquire_lease("dev", "b", b.ttl()).await,
        Err(StateError::LeaseHeld { .. })
    ));
    store.set_suspension("dev", None).await.unwrap();
    assert_eq!(store.inventory("dev").await.unwrap(), vec![role]);
    assert_eq!(
        store
            .acquire_lease("dev", "a", b.ttl())
            .await
            .unwrap()
            .token,
        lease.token
    );
}

async fn replicas_heartbeat_expire_and_leave(b: &Backend) {
    let (a, other) = (b.open().await, b.open().await);
    assert!(a.replicas().await.unwrap().is_empty());
    let beat = |id: &str, cap: Option<u32>, ms: u64| ReplicaRecord {
        id: id.into(),
        cap,
        expires_at_ms: now_ms() + ms,
    };
    // Ids are host names with pids and suffixes: any text.
    a.heartbeat(&beat("host-b.example/42/x", Some(7), 60_000))
        .await
        .unwrap();
    a.heartbeat(&beat("host-a/1/y", None, 60_000))
        .await
        .unwrap();
    let short = b.ttl().as_millis() as u64;
    other
        .heartbeat(&beat("short-lived", None, short))
        .await
        .unwrap();
    let ids = |v: Vec<ReplicaRecord>| v.into_iter().map(|r| (r.id, r.cap)).collect::<Vec<_>>();
    assert_eq!(
        ids(other.replicas().await.unwrap()),
        [
            ("host-a/1/y".to_string(), None),
            ("host-b.example/42/x".to_string(), Some(7)),
            ("short-lived".to_string(), None)
        ]
    );
    // A renewal replaces the record, not adds one.
    a.heartbeat(&beat("host-a/1/y", Some(3), 60_000))
        .await
        .unwrap();
    outlive_the_lease(b).await;
    assert_eq!(
        ids(a.replicas().await.unwrap()),
        [
            ("host-a/1/y".to_string(), Some(3)),
            ("host-b.example/42/x".to_string(), Some(7))
        ],
        "the expired heartbeat is not listed"
    );
    a.leave("host-a/1/y").await.unwrap();
    a.leave("never-here").await.unwrap();
    assert_eq!(
        ids(other.replicas().await.unwrap()),
        [("host-b.example/42/x".to_string(), Some(7))]
    );
}

async fn the_overview_names_the_holder_and_the_last_reconcile_fenced(b: &Backend) {
    let (a, other) = (b.open().await, b.open().await);
    let ttl = b.ttl();
    assert!(a.environments().await.unwrap().is_empty());
    let lease = a.acquire_lease("dev", "a", ttl).await.unwrap();
    let _ = a.acquire_lease("prod", "a", ttl * 50).await.unwrap();
    a.mark_reconciled(&lease, 1_700_000_000_123).await.unwrap();
    let envs = other.environments().await.unwrap();
    let view: Vec<_> = envs
        .iter()
        .map(|e| {
            (
                e.environment.as_str(),
                e.holder.as_deref(),
                e.last_reconciled_ms,
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            ("dev", Some("a"), Some(1_700_000_000_123)),
            ("prod", Some("a"), None)
        ]
    );
    // Taken over: the old holder's mark is fenced; the new holder's first lease shows, and
    // the last reconcile is kept until it completes one.
    outlive_the_lease(b).await;
    let new = other.acquire_lease("dev", "b", ttl * 50).await.unwrap();
    let err = a
        .mark_reconciled(&lease, 1_800_000_000_000)
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }), "{err}");
    let dev = |envs: Vec<state::EnvironmentRecord>| {
        envs.into_iter().find(|e| e.environment == "dev").unwrap()
    };
    let d = dev(a.environments().await.unwrap());
    assert_eq!(d.holder.as_deref(), Some("b"));
    assert_eq!(d.last_reconciled_ms, Some(1_700_000_000_123));
    other
        .mark_reconciled(&new, 1_700_000_999_000)
        .await
        .unwrap();
    // A release keeps it too.
    other.release_lease(&new).await.unwrap();
    assert_eq!(
        dev(a.environments().await.unwrap()).last_reconciled_ms,
        Some(1_700_000_999_000)
    );
}
