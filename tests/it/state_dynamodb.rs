//! The DynamoDB state backend alone, against moto: the table's creation and key schema,
//! what each corrupt item reports, and queries and writes that span pages and transactions.
//! What every backend does is in `state_conformance`.

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
