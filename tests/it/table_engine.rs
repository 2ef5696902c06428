//! The `Table` kind against moto: observe, plan (`KindPlan`) and apply (`KindAws`) called
//! directly, with drift made behind the engine's back through the raw SDK.

use aws_sdk_dynamodb::types as t;
use mlspace_gitops::aws::{AwsContext, ErrorClass};
use mlspace_gitops::kinds::common::{OWNERSHIP_TAG, OWNERSHIP_VALUE};
use mlspace_gitops::kinds::runtime::KindAws;
use mlspace_gitops::kinds::table::diff::TableObserved;
use mlspace_gitops::kinds::table::{
    AttributeType, BillingMode, GlobalSecondaryIndex, KeyAttribute, LocalSecondaryIndex, Op,
    Projection, ProjectionType, StreamViewType, Streams, Table, TableEncryption, TableKeyType,
    TableSpec, Throughput, Ttl,
};
use mlspace_gitops::kinds::{Diff, KindPlan, PlanCx};

use crate::support::{Clients as _, Moto};

fn cx() -> PlanCx {
    PlanCx {
        partition: "aws".into(),
        account: "123456789012".into(),
        region: "us-east-1".into(),
        ..PlanCx::default()
    }
}

fn key(name: &str, attr_type: AttributeType) -> KeyAttribute {
    KeyAttribute {
        name: name.into(),
        attr_type,
    }
}

fn projection(projection_type: ProjectionType) -> Projection {
    Projection {
        projection_type,
        non_key_attributes: vec![],
    }
}

/// Like MLSpace's mlspace-resource-metadata: pk+sk, two LSIs, plus a KEYS_ONLY GSI.
fn resource_metadata() -> TableSpec {
    let lsi = |name: &str, sort: &str| LocalSecondaryIndex {
        name: name.into(),
        sort_key: key(sort, AttributeType::S),
        projection: projection(ProjectionType::All),
    };
    TableSpec {
        partition_key: key("resourceType", AttributeType::S),
        sort_key: Some(key("resourceId", AttributeType::S)),
        billing_mode: BillingMode::PayPerRequest,
        provisioned_throughput: None,
        global_secondary_indexes: vec![GlobalSecondaryIndex {
            name: "ReverseLookup".into(),
            partition_key: key("resourceId", AttributeType::S),
            sort_key: Some(key("resourceType", AttributeType::S)),
            projection: projection(ProjectionType::KeysOnly),
            provisioned_throughput: None,
        }],
        local_secondary_indexes: vec![
            lsi("ProjectResources", "project"),
            lsi("UserResources", "user"),
        ],
        encryption: Some(TableEncryption {
            key_type: TableKeyType::AwsManaged,
            kms_key_id: None,
        }),
        point_in_time_recovery: Some(false),
        ttl: None,
        deletion_protection: None,
        streams: None,
        tags: [("team".to_string(), "ml".to_string())].into(),
    }
}

async fn observe(aws: &AwsContext, name: &str) -> Option<TableObserved> {
    Table::observe_names(aws, &[name.to_string()], &cx())
        .await
        .unwrap()
        .remove(name)
}

/// Observe, then plan an update.
async fn plan(aws: &AwsContext, name: &str, spec: &TableSpec) -> Diff<Op> {
    let o = observe(aws, name).await.expect("table exists");
    Table::update(name, spec, &o, &cx()).unwrap()
}

async fn apply(aws: &AwsContext, name: &str, ops: &[Op]) {
    for op in ops {
        Table::apply(aws, name, op, &cx())
            .await
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
}

async fn create(aws: &AwsContext, name: &str, spec: &TableSpec) {
    let (_, ops) = Table::create(name, spec, &cx());
    apply(aws, name, &ops).await;
}

fn fields(d: &Diff<Op>) -> Vec<&str> {
    d.0.iter().map(|f| f.field.as_str()).collect()
}

#[tokio::test]
async fn resource_metadata_table_converges_and_drift_is_exactly_what_changed() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = "mlspace-resource-metadata";
    let spec = resource_metadata();
    create(&aws, name, &spec).await;
    // Creating again converges (an earlier attempt whose answer was lost).
    create(&aws, name, &spec).await;

    let before = aws.stats.total();
    let o = observe(&aws, name).await.expect("created");
    assert_eq!(
        aws.stats.total() - before,
        4,
        "DescribeTable, ListTagsOfResource, DescribeContinuousBackups, DescribeTimeToLive"
    );
    assert!(Table::is_owned(&o));
    assert_eq!(
        o.tags.get(OWNERSHIP_TAG).map(String::as_str),
        Some(OWNERSHIP_VALUE)
    );
    assert_eq!(o.local_secondary_indexes.len(), 2);
    assert_eq!(
        o.global_secondary_indexes["ReverseLookup"]
            .projection
            .projection_type,
        ProjectionType::KeysOnly
    );
    assert_eq!(
        Table::update(name, &spec, &o, &cx()).unwrap(),
        (vec![], vec![])
    );

    // Behind the engine's back: PITR on, one more tag.
    let pitr = t::PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .unwrap();
    aws.dynamodb()
        .update_continuous_backups()
        .table_name(name)
        .point_in_time_recovery_specification(pitr)
        .send()
        .await
        .unwrap();
    let tag = t::Tag::builder()
        .key("intruder")
        .value("x")
        .build()
        .unwrap();
    aws.dynamodb()
        .tag_resource()
        .resource_arn(&o.arn)
        .tags(tag)
        .send()
        .await
        .unwrap();

    let d = plan(&aws, name, &spec).await;
    assert_eq!(
        fields(&d),
        ["spec.tags.intruder", "spec.pointInTimeRecovery"]
    );
    assert_eq!(d.0[1].old, Some(serde_json::json!(true)));
    assert_eq!(
        d.1,
        [
            Op::Untag {
                arn: o.arn.clone(),
                keys: vec!["intruder".into()]
            },
            Op::UpdatePitr { enabled: false }
        ]
    );
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));

    // Keys and local indexes cannot change in place: named errors, nothing planned.
    let mut bad = resource_metadata();
    bad.sort_key = Some(key("resourceId", AttributeType::N));
    bad.local_secondary_indexes.pop();
    let o = observe(&aws, name).await.unwrap();
    let errs = Table::update(name, &bad, &o, &cx()).unwrap_err();
    let got: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(got, ["spec.sortKey", "spec.localSecondaryIndexes"]);
}

#[tokio::test]
async fn global_secondary_indexes_change_in_place() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = "mlspace-resource-metadata";
    create(&aws, name, &resource_metadata()).await;

    // Add a GSI through the plan.
    let mut spec = resource_metadata();
    spec.global_secondary_indexes.push(GlobalSecondaryIndex {
        name: "ByOwner".into(),
        partition_key: key("owner", AttributeType::S),
        sort_key: Some(key("resourceId", AttributeType::S)),
        projection: projection(ProjectionType::All),
        provisioned_throughput: None,
    });
    let d = plan(&aws, name, &spec).await;
    assert_eq!(fields(&d), ["spec.globalSecondaryIndexes.ByOwner"]);
    assert!(matches!(&d.1[..], [Op::CreateGsi { index, .. }] if index.name == "ByOwner"));
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));
    // Every key attribute kept its definition (UpdateTable got the full set).
    let o = observe(&aws, name).await.unwrap();
    let attrs: Vec<&str> = o.attribute_types.keys().map(String::as_str).collect();
    assert_eq!(
        attrs,
        ["owner", "project", "resourceId", "resourceType", "user"]
    );

    // A projection change rebuilds the index: delete, then create.
    spec.global_secondary_indexes[0].projection = projection(ProjectionType::All);
    let d = plan(&aws, name, &spec).await;
    assert_eq!(fields(&d), ["spec.globalSecondaryIndexes.ReverseLookup"]);
    assert!(d.0[0].old.is_some() && d.0[0].new.is_some());
    assert!(
        matches!(&d.1[..], [Op::DeleteGsi { .. }, Op::CreateGsi { .. }]),
        "{:?}",
        d.1
    );
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));

    // Removing one deletes it.
    spec.global_secondary_indexes.remove(1);
    let d = plan(&aws, name, &spec).await;
    assert_eq!(
        d.1,
        [Op::DeleteGsi {
            index: "ByOwner".into()
        }]
    );
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));

    // On demand to provisioned, with the remaining index's capacity.
    let tp = Throughput {
        read_capacity_units: 5,
        write_capacity_units: 5,
    };
    spec.billing_mode = BillingMode::Provisioned;
    spec.provisioned_throughput = Some(tp);
    spec.global_secondary_indexes[0].provisioned_throughput = Some(tp);
    let d = plan(&aws, name, &spec).await;
    assert_eq!(
        fields(&d),
        [
            "spec.billingMode",
            "spec.provisionedThroughput",
            "spec.globalSecondaryIndexes.ReverseLookup.provisionedThroughput"
        ]
    );
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));
}

#[tokio::test]
async fn settings_apply_and_deletion_protection_refuses_delete() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = "mlspace-settings";
    let mut spec = TableSpec {
        partition_key: key("id", AttributeType::S),
        sort_key: None,
        billing_mode: BillingMode::PayPerRequest,
        provisioned_throughput: None,
        global_secondary_indexes: vec![],
        local_secondary_indexes: vec![],
        encryption: None,
        point_in_time_recovery: Some(true),
        ttl: Some(Ttl {
            attribute: "expiresAt".into(),
        }),
        deletion_protection: Some(true),
        streams: Some(Streams {
            enabled: true,
            view_type: Some(StreamViewType::NewImage),
        }),
        tags: Default::default(),
    };
    let (_, ops) = Table::create(name, &spec, &cx());
    assert!(matches!(
        &ops[..],
        [
            Op::Create { .. },
            Op::UpdatePitr { enabled: true },
            Op::UpdateTtl { .. }
        ]
    ));
    apply(&aws, name, &ops).await;
    let o = observe(&aws, name).await.unwrap();
    assert_eq!(
        (o.point_in_time_recovery, o.deletion_protection, o.streams),
        (Some(true), true, Some(StreamViewType::NewImage))
    );
    assert_eq!(
        Table::update(name, &spec, &o, &cx()).unwrap(),
        (vec![], vec![])
    );

    // A different expiry attribute: the old one is turned off, the new one on.
    spec.ttl = Some(Ttl {
        attribute: "deleteAfter".into(),
    });
    let d = plan(&aws, name, &spec).await;
    assert_eq!(fields(&d), ["spec.ttl"]);
    apply(&aws, name, &d.1).await;
    apply(&aws, name, &d.1).await; // idempotent
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));

    // Deletion protection on: Delete is a conflict and the table stays.
    let o = observe(&aws, name).await.unwrap();
    let del = Table::delete(name, &o);
    let err = Table::apply(&aws, name, &del[0], &cx()).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Conflict, "{err}");
    assert!(observe(&aws, name).await.is_some());

    // Turned off through the plan, the table can go; deleting again is a no-op.
    spec.deletion_protection = Some(false);
    let d = plan(&aws, name, &spec).await;
    assert_eq!(d.1, [Op::UpdateDeletionProtection { enabled: false }]);
    apply(&aws, name, &d.1).await;
    apply(&aws, name, &del).await;
    assert!(observe(&aws, name).await.is_none());
    apply(&aws, name, &del).await;
}

#[tokio::test]
async fn unowned_and_missing_tables() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = "someone-elses";
    let attr = t::AttributeDefinition::builder()
        .attribute_name("id")
        .attribute_type(t::ScalarAttributeType::S)
        .build()
        .unwrap();
    let ks = t::KeySchemaElement::builder()
        .attribute_name("id")
        .key_type(t::KeyType::Hash)
        .build()
        .unwrap();
    aws.dynamodb()
        .create_table()
        .table_name(name)
        .attribute_definitions(attr)
        .key_schema(ks)
        .billing_mode(t::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();

    let names = [name.to_string(), "not-there".to_string()];
    let seen = Table::observe_names(&aws, &names, &cx()).await.unwrap();
    assert_eq!(seen.keys().collect::<Vec<_>>(), [name]);
    assert!(!Table::is_owned(&seen[name]));

    // Creating over it is refused, not taken as our own earlier attempt.
    let mut spec = resource_metadata();
    spec.sort_key = None;
    spec.local_secondary_indexes.clear();
    spec.global_secondary_indexes.clear();
    let (_, ops) = Table::create(name, &spec, &cx());
    let err = Table::apply(&aws, name, &ops[0], &cx()).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Conflict, "{err}");
    assert!(!Table::is_owned(&observe(&aws, name).await.unwrap()));
}
