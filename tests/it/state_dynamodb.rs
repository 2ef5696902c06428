//! The DynamoDB state backend against moto: table creation, round trips, competing replicas
//! for one lease with fencing, corrupt items and pagination.

use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType};
use mlspace_gitops::aws::AwsContext;
use mlspace_gitops::kinds::Kind;
use mlspace_gitops::state::dynamodb::{DynamoStore, LEASE_SK};
use mlspace_gitops::state::{self, StateError, StateStore};

use crate::support::state::{corrupt, entry, put_raw, record};
use crate::support::{Clients as _, Moto};

fn calls(aws: &AwsContext, op: &str) -> u64 {
    aws.stats
        .by_operation()
        .get(&format!("DynamoDB:{op}"))
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn table_is_created_when_missing_and_reused() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let store = state::open(
        Some("dynamodb://gitops-state"),
        Path::new("/nonexistent"),
        Some(&aws),
    )
    .await
    .unwrap();
    assert_eq!(store.location(), "dynamodb://gitops-state");
    assert_eq!(calls(&aws, "CreateTable"), 1);
    let t = aws
        .dynamodb()
        .describe_table()
        .table_name("gitops-state")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<_> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(keys, [("pk", KeyType::Hash), ("sk", KeyType::Range)]);
    assert_eq!(
        t.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    store
        .record("dev", &[entry(Kind::Role, "app-role", "r1")], &[], None)
        .await
        .unwrap();

    // A second replica finds the table and the state in it.
    let aws2 = moto.aws().await;
    let again = DynamoStore::open(&aws2, "gitops-state").await.unwrap();
    assert_eq!(calls(&aws2, "CreateTable"), 0);
    assert_eq!(again.inventory("dev").await.unwrap().len(), 1);

    let err = state::open(Some("dynamodb://gitops-state"), Path::new("."), None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StateError::InvalidSpec { .. }), "{err}");
}

#[tokio::test]
async fn a_table_with_other_keys_is_refused() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    use aws_sdk_dynamodb::types::{AttributeDefinition, KeySchemaElement, ScalarAttributeType};
    aws.dynamodb()
        .create_table()
        .table_name("not-ours")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let err = DynamoStore::open(&aws, "not-ours").await.unwrap_err();
    assert!(matches!(err, StateError::Table { .. }), "{err}");
    assert!(err.to_string().contains("not-ours"), "{err}");
}

#[tokio::test]
async fn inventory_and_history_round_trip() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let store = DynamoStore::open(&aws, "state").await.unwrap();
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
    assert_eq!(
        store.inventory("dev").await.unwrap(),
        vec![role.clone(), bucket.clone(), table.clone()],
        "ordered by (kind, name), not by key string"
    );

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
    assert_eq!(store.inventory("dev").await.unwrap(), vec![role2, table]);
    assert!(store.inventory("prod").await.unwrap().is_empty());

    // Two records in one millisecond stay apart.
    for (at, rev) in [(10, "r1"), (30, "r3"), (20, "r2"), (20, "r2b")] {
        store.append_history(&record(at, rev), None).await.unwrap();
    }
    let h = store.history("dev", 10).await.unwrap();
    let revs: Vec<_> = h.iter().map(|r| r.revision.as_str()).collect();
    assert_eq!(revs.len(), 4);
    assert_eq!((revs[0], revs[3]), ("r3", "r1"), "newest first: {revs:?}");
    assert_eq!(h[0], record(30, "r3"));
    assert_eq!(store.history("dev", 2).await.unwrap().len(), 2);
    assert!(store.history("dev", 0).await.unwrap().is_empty());

    let err = store
        .record("prod", &[entry(Kind::Role, "r", "r1")], &[], None)
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::WrongEnvironment { .. }), "{err}");
}

#[tokio::test]
async fn two_replicas_compete_for_one_lease_and_the_loser_takes_over_after_expiry() {
    let moto = Moto::start();
    let (aws_a, aws_b) = (moto.aws().await, moto.aws().await);
    let a = DynamoStore::open(&aws_a, "state").await.unwrap();
    let b = DynamoStore::open(&aws_b, "state").await.unwrap();
    let ttl = Duration::from_millis(1500);

    let (ra, rb) = tokio::join!(
        a.acquire_lease("dev", "replica-a", ttl),
        b.acquire_lease("dev", "replica-b", ttl)
    );
    let (winner, loser, lease, err, loser_name) = match (ra, rb) {
        (Ok(l), Err(e)) => (&a, &b, l, e, "replica-b"),
        (Err(e), Ok(l)) => (&b, &a, l, e, "replica-a"),
        other => panic!("exactly one must win: {other:?}"),
    };
    assert_eq!(lease.token, 1);
    match err {
        StateError::LeaseHeld { holder, .. } => assert_eq!(holder, lease.holder),
        other => panic!("expected LeaseHeld, got {other:?}"),
    }

    // The holder renews (same token) and writes under its lease.
    let renewed = winner
        .acquire_lease("dev", &lease.holder, ttl)
        .await
        .unwrap();
    assert_eq!(renewed.token, lease.token);
    winner
        .record(
            "dev",
            &[entry(Kind::Role, "app-role", "r1")],
            &[],
            Some(&renewed),
        )
        .await
        .unwrap();
    winner
        .append_history(&record(1, "r1"), Some(&renewed))
        .await
        .unwrap();
    assert!(matches!(
        loser.acquire_lease("dev", loser_name, ttl).await,
        Err(StateError::LeaseHeld { .. })
    ));

    // The holder dies: after the lease time the other replica takes over with token + 1.
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let taken = loser
        .acquire_lease("dev", loser_name, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(taken.token, lease.token + 1);

    // The old holder comes back: every write of its is fenced, and nothing changed.
    let err = winner
        .record(
            "dev",
            &[],
            &[(Kind::Role, "app-role".into())],
            Some(&renewed),
        )
        .await
        .unwrap_err();
    match err {
        StateError::Fenced { environment, token } => {
            assert_eq!((environment.as_str(), token), ("dev", renewed.token))
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
    let err = winner
        .append_history(&record(2, "r2"), Some(&renewed))
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }), "{err}");
    assert!(matches!(
        winner.acquire_lease("dev", &lease.holder, ttl).await,
        Err(StateError::LeaseHeld { .. })
    ));
    // An empty record still tells a replica whether its lease is current.
    let err = winner.record("dev", &[], &[], Some(&renewed)).await;
    assert!(matches!(err, Err(StateError::Fenced { .. })), "{err:?}");
    loser.record("dev", &[], &[], Some(&taken)).await.unwrap();
    assert_eq!(loser.inventory("dev").await.unwrap().len(), 1);
    assert_eq!(loser.history("dev", 10).await.unwrap().len(), 1);

    // Its release is a no-op; the new holder's own release frees the lease at once, and the
    // token keeps growing.
    winner.release_lease(&renewed).await.unwrap();
    loser
        .record("dev", &[], &[(Kind::Role, "app-role".into())], Some(&taken))
        .await
        .unwrap();
    loser.release_lease(&taken).await.unwrap();
    let err = loser
        .record("dev", &[], &[(Kind::Role, "x".into())], Some(&taken))
        .await;
    assert!(
        matches!(err, Err(StateError::Fenced { .. })),
        "released: {err:?}"
    );
    let back = winner
        .acquire_lease("dev", &lease.holder, ttl)
        .await
        .unwrap();
    assert_eq!(back.token, taken.token + 1);
    // A lease of one environment fences nothing in another.
    let err = winner
        .record("prod", &[], &[(Kind::Role, "x".into())], Some(&back))
        .await;
    assert!(matches!(err, Err(StateError::Fenced { .. })), "{err:?}");
}

#[tokio::test]
async fn many_replicas_racing_yield_exactly_one_holder() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let store = DynamoStore::open(&aws, "state").await.unwrap();
    let results = futures::future::join_all((0..8).map(|i| {
        let store = store.clone();
        async move {
            store
                .acquire_lease("dev", &format!("replica-{i}"), Duration::from_secs(30))
                .await
        }
    }))
    .await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StateError::LeaseHeld { .. })));
}

#[tokio::test]
async fn corrupt_items_are_reported_with_their_key() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let store = DynamoStore::open(&aws, "state").await.unwrap();
    store
        .record("dev", &[entry(Kind::Role, "good", "r1")], &[], None)
        .await
        .unwrap();
    let s = |v: &str| AttributeValue::S(v.into());

    // Missing attributes.
    put_raw(&aws, "state", "res#Role#broken", &[("kind", s("Role"))]).await;
    let (location, detail) = corrupt(store.inventory("dev").await.unwrap_err());
    assert!(location.contains("dynamodb://state"), "{location}");
    assert!(location.contains("sk=\"res#Role#broken\""), "{location}");
    assert!(detail.contains("missing field"), "{detail}");

    // A number where a string belongs, an unknown kind, a key that disagrees.
    let base = |kind: &str, name: &str| {
        vec![
            ("kind", s(kind)),
            ("name", s(name)),
            ("environment", s("dev")),
            ("revision", s("r1")),
            ("spec_digest", s("d")),
            ("updated_at", AttributeValue::N("1".into())),
        ]
    };
    let mut wrong_type = base("Role", "broken");
    wrong_type[3] = ("revision", AttributeValue::N("7".into()));
    let cases = [
        ("res#Role#broken", wrong_type, "revision"),
        ("res#Role#broken", base("Rolez", "broken"), "kind"),
        ("res#Role#broken", base("Role", "other"), "\"other\""),
    ];
    for (sk, attrs, expected) in cases {
        put_raw(&aws, "state", sk, &attrs).await;
        let (location, detail) = corrupt(store.inventory("dev").await.unwrap_err());
        assert!(location.contains(sk), "{location}");
        assert!(
            detail.contains(expected) || location.contains(expected),
            "{expected:?} not in {detail:?}"
        );
    }
    // Rewriting the item fixes it.
    store
        .record("dev", &[entry(Kind::Role, "broken", "r2")], &[], None)
        .await
        .unwrap();
    assert_eq!(store.inventory("dev").await.unwrap().len(), 2);

    put_raw(
        &aws,
        "state",
        "hist#00000000000000000005#00000000",
        &[("at", s("soon"))],
    )
    .await;
    let (location, _) = corrupt(store.history("dev", 5).await.unwrap_err());
    assert!(location.contains("hist#00000000000000000005"), "{location}");

    put_raw(
        &aws,
        "state",
        LEASE_SK,
        &[("holder", s("x")), ("token", s("one"))],
    )
    .await;
    let (location, detail) = corrupt(
        store
            .acquire_lease("dev", "a", Duration::from_secs(5))
            .await
            .unwrap_err(),
    );
    assert!(location.contains("sk=\"lease\""), "{location}");
    assert!(detail.contains("token"), "{detail}");
}

#[tokio::test]
async fn queries_follow_pages_and_large_records_span_transactions() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let store = DynamoStore::open(&aws, "state")
        .await
        .unwrap()
        .with_page_size(10);
    let lease = store
        .acquire_lease("dev", "a", Duration::from_secs(60))
        .await
        .unwrap();

    // 250 entries: more than one transaction holds with the fence (99 writes each).
    let entries: Vec<_> = (0..250)
        .map(|i| entry(Kind::ManagedPolicy, &format!("policy-{i:03}"), "r1"))
        .collect();
    let before = calls(&aws, "TransactWriteItems");
    store
        .record("dev", &entries, &[], Some(&lease))
        .await
        .unwrap();
    assert_eq!(calls(&aws, "TransactWriteItems") - before, 3);

    let before = calls(&aws, "Query");
    let got = store.inventory("dev").await.unwrap();
    assert_eq!(got, entries);
    assert!(
        calls(&aws, "Query") - before >= 25,
        "one query per page of 10"
    );

    for i in 0..30 {
        store
            .append_history(&record(100 + i, &format!("r{i}")), Some(&lease))
            .await
            .unwrap();
    }
    let before = calls(&aws, "Query");
    let h = store.history("dev", 25).await.unwrap();
    assert_eq!(h.len(), 25);
    assert_eq!(h[0].revision, "r29");
    assert_eq!(h[24].revision, "r5");
    assert_eq!(calls(&aws, "Query") - before, 3, "pages of 10, 10 and 5");
    // History and inventory share the partition without mixing.
    assert_eq!(store.inventory("dev").await.unwrap().len(), 250);
}
