//! Table: the AWS half.
//!
//! Observing one table costs four reads, one after another: DescribeTable (keys, billing,
//! indexes, encryption, streams, deletion protection), ListTagsOfResource (ownership),
//! DescribeContinuousBackups (PITR) and DescribeTimeToLive. Tables are read concurrently,
//! at most [`CONCURRENCY`] at a time, which is then also the number of requests in flight.
//!
//! Every step reads the table before it writes, so running it twice is harmless, and waits
//! until the table and its indexes are ACTIVE before and after: DynamoDB refuses most
//! UpdateTable calls while an earlier change is still in progress.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder;
use aws_sdk_dynamodb::types as t;
use futures::{StreamExt, TryStreamExt};

use super::diff::{
    encryption_matches, key_attributes, EncryptionObserved, GsiObserved, LsiObserved, Op, Table,
    TableObserved, TtlObserved,
};
use super::{
    AttributeType, BillingMode, GlobalSecondaryIndex, Projection, ProjectionType, StreamViewType,
    TableEncryption, TableKeyType, TableSpec, Throughput,
};
use crate::aws::{
    dynamodb, retry_eventual, AwsContext, AwsError, DynamoDbCode, ErrorClass, ServiceCode,
};
use crate::kinds::common::Tags;
use crate::kinds::core::{has_ownership_tag, PlanCx};
use crate::kinds::runtime::{KindAws, Wanted};

/// Tables observed at once.
pub const CONCURRENCY: usize = 8;

/// How long a step waits for a table or index to become ACTIVE (or gone). Building an
/// index on a large table can take longer: the step then fails as transient, and the next
/// run finds the index there and waits again.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30 * 60);

#[async_trait]
impl KindAws for Table {
    async fn observe(
        aws: &AwsContext,
        wanted: &[Wanted<'_, TableSpec>],
        _: &PlanCx,
    ) -> Result<BTreeMap<String, TableObserved>, AwsError> {
        // PITR and TTL are separate calls: read them only when the manifest manages them
        // (or when there is no spec to say, e.g. a table about to be deleted).
        // Owned items: a closure over borrowed ones trips the Send check of async_trait.
        let items: Vec<(String, bool, bool)> = wanted
            .iter()
            .map(|w| {
                (
                    w.name.to_string(),
                    w.spec.is_none_or(|s| s.point_in_time_recovery.is_some()),
                    w.spec.is_none_or(|s| s.ttl.is_some()),
                )
            })
            .collect();
        let found: Vec<_> = futures::stream::iter(items)
            .map(|(n, pitr, ttl)| observe_named(aws, n, pitr, ttl))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn apply(aws: &AwsContext, name: &str, op: &Op, _: &PlanCx) -> Result<(), AwsError> {
        match op {
            Op::Create { spec, tags } => create(aws, name, spec, tags).await,
            Op::UpdateBilling {
                billing_mode,
                throughput,
                index_throughput,
            } => update_billing(aws, name, *billing_mode, *throughput, index_throughput).await,
            Op::CreateGsi {
                index,
                provisioned,
                attributes,
            } => create_gsi(aws, name, index, *provisioned, attributes).await,
            Op::DeleteGsi { index } => delete_gsi(aws, name, index).await,
            Op::UpdateStreams { view_type } => update_streams(aws, name, *view_type).await,
            Op::UpdateDeletionProtection { enabled } => {
                let d = wait_idle(aws, name).await?;
                if d.deletion_protection_enabled().unwrap_or(false) == *enabled {
                    return Ok(());
                }
                let req = dynamodb(aws).update_table().table_name(name);
                update_table(aws, name, req.deletion_protection_enabled(*enabled)).await
            }
            Op::UpdateEncryption { encryption } => {
                let d = wait_idle(aws, name).await?;
                if encryption_matches(encryption, &sse(d.sse_description(), None)) {
                    return Ok(());
                }
                let req = dynamodb(aws).update_table().table_name(name);
                update_table(aws, name, req.sse_specification(sse_spec(encryption))).await
            }
            Op::UpdatePitr { enabled } => update_pitr(aws, name, *enabled).await,
            Op::UpdateTtl { attribute } => update_ttl(aws, name, attribute).await,
            Op::Tag { arn, tags } => {
                let req = dynamodb(aws)
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(sdk_tags(tags)));
                req.send()
                    .await
                    .map(drop)
                    .map_err(|e| DynamoDbCode::error("dynamodb:TagResource", e))
            }
            Op::Untag { arn, keys } => {
                let req = dynamodb(aws)
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(keys.clone()));
                req.send()
                    .await
                    .map(drop)
                    .map_err(|e| DynamoDbCode::error("dynamodb:UntagResource", e))
            }
            Op::Delete => delete(aws, name).await,
        }
    }
}

async fn observe_named(
    aws: &AwsContext,
    name: String,
    read_pitr: bool,
    read_ttl: bool,
) -> Result<Option<(String, TableObserved)>, AwsError> {
    Ok(observe_one(aws, &name, read_pitr, read_ttl)
        .await?
        .map(|o| (name, o)))
}

/// One table, or `None` when it does not exist.
async fn observe_one(
    aws: &AwsContext,
    name: &str,
    read_pitr: bool,
    read_ttl: bool,
) -> Result<Option<TableObserved>, AwsError> {
    let Some(d) = describe(aws, name).await? else {
        return Ok(None);
    };
    // The AWS managed key cannot be told from a customer key without KMS (see `sse`).
    let mut o = from_description(&d, None);
    let extras = async {
        let tags = list_tags(aws, &o.arn).await?;
        let pitr = if read_pitr {
            Some(read_pitr_status(aws, name).await?)
        } else {
            None
        };
        let ttl = if read_ttl {
            Some(read_ttl_status(aws, name).await?)
        } else {
            None
        };
        Ok::<_, AwsError>((tags, pitr, ttl))
    };
    match extras.await {
        Ok((tags, pitr, ttl)) => {
            (o.tags, o.point_in_time_recovery, o.ttl) = (tags, pitr, ttl);
            Ok(Some(o))
        }
        // Deleted between the reads: absent, not an error.
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// DescribeTable; `None` when the table does not exist.
async fn describe(aws: &AwsContext, name: &str) -> Result<Option<t::TableDescription>, AwsError> {
    match dynamodb(aws).describe_table().table_name(name).send().await {
        Ok(out) => Ok(out.table),
        Err(e) => {
            let e = DynamoDbCode::error("dynamodb:DescribeTable", e);
            if e.is_not_found() {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

async fn list_tags(aws: &AwsContext, arn: &str) -> Result<Tags, AwsError> {
    let mut tags = Tags::new();
    let mut token = None;
    loop {
        let out = dynamodb(aws)
            .list_tags_of_resource()
            .resource_arn(arn)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| DynamoDbCode::error("dynamodb:ListTagsOfResource", e))?;
        // Later entries win: moto appends rather than replaces when a tag is set again.
        tags.extend(
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string())),
        );
        token = out.next_token;
        if token.is_none() {
            return Ok(tags);
        }
    }
}

async fn read_pitr_status(aws: &AwsContext, name: &str) -> Result<bool, AwsError> {
    let out = dynamodb(aws)
        .describe_continuous_backups()
        .table_name(name)
        .send()
        .await
        .map_err(|e| DynamoDbCode::error("dynamodb:DescribeContinuousBackups", e))?;
    let status = out
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status());
    Ok(status == Some(&t::PointInTimeRecoveryStatus::Enabled))
}

/// The table's TTL status and attribute, as DescribeTimeToLive reports them.
async fn describe_ttl(
    aws: &AwsContext,
    name: &str,
) -> Result<(Option<t::TimeToLiveStatus>, Option<String>), AwsError> {
    let out = dynamodb(aws)
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| DynamoDbCode::error("dynamodb:DescribeTimeToLive", e))?;
    let d = out.time_to_live_description();
    Ok((
        d.and_then(|d| d.time_to_live_status()).cloned(),
        d.and_then(|d| d.attribute_name()).map(str::to_string),
    ))
}

/// Whether a TTL status counts as on.
fn ttl_enabled(status: Option<&t::TimeToLiveStatus>) -> bool {
    matches!(
        status,
        Some(t::TimeToLiveStatus::Enabled | t::TimeToLiveStatus::Enabling)
    )
}

async fn read_ttl_status(aws: &AwsContext, name: &str) -> Result<TtlObserved, AwsError> {
    let (status, attribute) = describe_ttl(aws, name).await?;
    Ok(TtlObserved {
        enabled: ttl_enabled(status.as_ref()),
        attribute,
    })
}

/// What DescribeTable says, in the diff's terms (tags, PITR and TTL come from other calls).
fn from_description(d: &t::TableDescription, aws_managed_key: Option<&str>) -> TableObserved {
    let billing_mode = match d.billing_mode_summary().and_then(|b| b.billing_mode()) {
        Some(t::BillingMode::PayPerRequest) => BillingMode::PayPerRequest,
        // Tables created PROVISIONED before billing modes existed report no summary.
        _ => BillingMode::Provisioned,
    };
    // On-demand tables and indexes report a capacity of 0/0: not a setting.
    let capacity = |p: Option<&t::ProvisionedThroughputDescription>| {
        let p = p.filter(|_| billing_mode == BillingMode::Provisioned)?;
        Some(Throughput {
            read_capacity_units: p.read_capacity_units()?,
            write_capacity_units: p.write_capacity_units()?,
        })
    };
    let (partition_key, sort_key) = key_names(d.key_schema());
    let gsis = d.global_secondary_indexes().iter().filter_map(|g| {
        let (partition_key, sort_key) = key_names(g.key_schema());
        let o = GsiObserved {
            partition_key,
            sort_key,
            projection: projection_of(g.projection()),
            provisioned_throughput: capacity(g.provisioned_throughput()),
            status: g
                .index_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        };
        Some((g.index_name()?.to_string(), o))
    });
    let lsis = d.local_secondary_indexes().iter().filter_map(|l| {
        let (_, sort_key) = key_names(l.key_schema());
        let o = LsiObserved {
            sort_key: sort_key.unwrap_or_default(),
            projection: projection_of(l.projection()),
        };
        Some((l.index_name()?.to_string(), o))
    });
    TableObserved {
        arn: d.table_arn().unwrap_or_default().to_string(),
        status: d
            .table_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        partition_key,
        sort_key,
        attribute_types: d
            .attribute_definitions()
            .iter()
            .filter_map(|a| {
                Some((
                    a.attribute_name().to_string(),
                    attr_type(a.attribute_type())?,
                ))
            })
            .collect(),
        billing_mode,
        provisioned_throughput: capacity(d.provisioned_throughput()),
        global_secondary_indexes: gsis.collect(),
        local_secondary_indexes: lsis.collect(),
        encryption: sse(d.sse_description(), aws_managed_key),
        point_in_time_recovery: None,
        ttl: None,
        deletion_protection: d.deletion_protection_enabled().unwrap_or(false),
        streams: d
            .stream_specification()
            .filter(|s| s.stream_enabled())
            .and_then(|s| s.stream_view_type())
            .and_then(view_type_of),
        tags: Tags::new(),
    }
}

/// The key behind an `SSEDescription`. `aws_managed_key` is the ARN of `aws/dynamodb` when
/// known (a KMS DescribeKey of the alias); without it a KMS key is neither kind for sure.
fn sse(d: Option<&t::SseDescription>, aws_managed_key: Option<&str>) -> EncryptionObserved {
    let off = |d: &t::SseDescription| {
        matches!(
            d.status(),
            Some(t::SseStatus::Disabled | t::SseStatus::Disabling)
        )
    };
    match d {
        Some(d) if d.sse_type() == Some(&t::SseType::Kms) && !off(d) => {
            let key_arn = d.kms_master_key_arn().unwrap_or_default().to_string();
            let aws_managed = aws_managed_key.map(|k| k == key_arn);
            EncryptionObserved::Kms {
                key_arn,
                aws_managed,
            }
        }
        _ => EncryptionObserved::AwsOwned,
    }
}

fn key_names(schema: &[t::KeySchemaElement]) -> (String, Option<String>) {
    let find = |k: t::KeyType| {
        schema
            .iter()
            .find(|e| *e.key_type() == k)
            .map(|e| e.attribute_name().to_string())
    };
    (
        find(t::KeyType::Hash).unwrap_or_default(),
        find(t::KeyType::Range),
    )
}

fn projection_of(p: Option<&t::Projection>) -> Projection {
    let projection_type = match p.and_then(|p| p.projection_type()) {
        Some(t::ProjectionType::KeysOnly) => ProjectionType::KeysOnly,
        Some(t::ProjectionType::Include) => ProjectionType::Include,
        _ => ProjectionType::All,
    };
    let mut non_key_attributes = p
        .map(|p| p.non_key_attributes().to_vec())
        .unwrap_or_default();
    non_key_attributes.sort();
    Projection {
        projection_type,
        non_key_attributes,
    }
}

fn attr_type(t: &t::ScalarAttributeType) -> Option<AttributeType> {
    match t {
        t::ScalarAttributeType::S => Some(AttributeType::S),
        t::ScalarAttributeType::N => Some(AttributeType::N),
        t::ScalarAttributeType::B => Some(AttributeType::B),
        _ => None,
    }
}

fn view_type_of(v: &t::StreamViewType) -> Option<StreamViewType> {
    match v {
        t::StreamViewType::NewImage => Some(StreamViewType::NewImage),
        t::StreamViewType::OldImage => Some(StreamViewType::OldImage),
        t::StreamViewType::NewAndOldImages => Some(StreamViewType::NewAndOldImages),
        t::StreamViewType::KeysOnly => Some(StreamViewType::KeysOnly),
        _ => None,
    }
}

// Request pieces. SDK builders check required fields at run time; these always set them.

fn built<T>(r: Result<T, BuildError>) -> T {
    r.expect("every required field is set")
}

fn attribute_definitions(attrs: &BTreeMap<String, AttributeType>) -> Vec<t::AttributeDefinition> {
    let def = |(n, ty): (&String, &AttributeType)| {
        let b = t::AttributeDefinition::builder().attribute_name(n);
        built(
            b.attribute_type(t::ScalarAttributeType::from(ty.as_str()))
                .build(),
        )
    };
    attrs.iter().map(def).collect()
}

fn key_schema(partition: &str, sort: Option<&str>) -> Vec<t::KeySchemaElement> {
    let el = |n: &str, k: t::KeyType| {
        built(
            t::KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(k)
                .build(),
        )
    };
    let mut v = vec![el(partition, t::KeyType::Hash)];
    v.extend(sort.map(|s| el(s, t::KeyType::Range)));
    v
}

fn projection(p: &Projection) -> t::Projection {
    let b = t::Projection::builder()
        .projection_type(t::ProjectionType::from(p.projection_type.as_str()));
    let nka = Some(p.non_key_attributes.clone()).filter(|v| !v.is_empty());
    b.set_non_key_attributes(nka).build()
}

fn capacity(tp: &Throughput) -> t::ProvisionedThroughput {
    let b = t::ProvisionedThroughput::builder().read_capacity_units(tp.read_capacity_units);
    built(b.write_capacity_units(tp.write_capacity_units).build())
}

fn gsi_keys(g: &GlobalSecondaryIndex) -> Vec<t::KeySchemaElement> {
    key_schema(
        &g.partition_key.name,
        g.sort_key.as_ref().map(|k| k.name.as_str()),
    )
}

fn sse_spec(e: &TableEncryption) -> t::SseSpecification {
    match e.key_type {
        TableKeyType::AwsOwned => t::SseSpecification::builder().enabled(false).build(),
        TableKeyType::AwsManaged => t::SseSpecification::builder()
            .enabled(true)
            .sse_type(t::SseType::Kms)
            .build(),
        TableKeyType::Kms => {
            let b = t::SseSpecification::builder()
                .enabled(true)
                .sse_type(t::SseType::Kms);
            b.set_kms_master_key_id(e.kms_key_id.clone()).build()
        }
    }
}

fn stream_spec(v: Option<StreamViewType>) -> t::StreamSpecification {
    let b = t::StreamSpecification::builder().stream_enabled(v.is_some());
    built(
        b.set_stream_view_type(v.map(|v| t::StreamViewType::from(v.as_str())))
            .build(),
    )
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    Some(v).filter(|v| !v.is_empty())
}

fn sdk_tags(tags: &Tags) -> Vec<t::Tag> {
    tags.iter()
        .map(|(k, v)| built(t::Tag::builder().key(k).value(v).build()))
        .collect()
}

/// CreateTable's request for `spec`.
fn create_request(
    aws: &AwsContext,
    name: &str,
    spec: &TableSpec,
    tags: &Tags,
) -> aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder {
    let provisioned = spec.billing_mode == BillingMode::Provisioned;
    let gsis: Vec<&GlobalSecondaryIndex> = spec.global_secondary_indexes.iter().collect();
    let gsi = |g: &&GlobalSecondaryIndex| {
        let b = t::GlobalSecondaryIndex::builder()
            .index_name(&g.name)
            .set_key_schema(Some(gsi_keys(g)));
        let tp = g
            .provisioned_throughput
            .as_ref()
            .filter(|_| provisioned)
            .map(capacity);
        built(
            b.projection(projection(&g.projection))
                .set_provisioned_throughput(tp)
                .build(),
        )
    };
    let lsi = |l: &super::LocalSecondaryIndex| {
        let keys = key_schema(&spec.partition_key.name, Some(&l.sort_key.name));
        let b = t::LocalSecondaryIndex::builder()
            .index_name(&l.name)
            .set_key_schema(Some(keys));
        built(b.projection(projection(&l.projection)).build())
    };
    // AWS owned is DynamoDB's default; off is the default for streams.
    let sse = spec
        .encryption
        .as_ref()
        .filter(|e| e.key_type != TableKeyType::AwsOwned)
        .map(sse_spec);
    let streams = spec
        .streams
        .as_ref()
        .filter(|s| s.enabled)
        .and_then(|s| s.view_type)
        .map(|v| stream_spec(Some(v)));
    dynamodb(aws)
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attribute_definitions(&key_attributes(spec, &gsis))))
        .set_key_schema(Some(key_schema(
            &spec.partition_key.name,
            spec.sort_key.as_ref().map(|k| k.name.as_str()),
        )))
        .billing_mode(t::BillingMode::from(spec.billing_mode.as_str()))
        .set_provisioned_throughput(
            spec.provisioned_throughput
                .as_ref()
                .filter(|_| provisioned)
                .map(capacity),
        )
        .set_global_secondary_indexes(non_empty(gsis.iter().map(gsi).collect()))
        .set_local_secondary_indexes(non_empty(
            spec.local_secondary_indexes.iter().map(lsi).collect(),
        ))
        .set_sse_specification(sse)
        .set_stream_specification(streams)
        .set_deletion_protection_enabled(spec.deletion_protection)
        .set_tags(Some(sdk_tags(tags)))
}

async fn create(
    aws: &AwsContext,
    name: &str,
    spec: &TableSpec,
    tags: &Tags,
) -> Result<(), AwsError> {
    // Two rounds: a table still being deleted under this name is waited out once.
    for _ in 0..2 {
        let err = match create_request(aws, name, spec, tags).send().await {
            Ok(_) => return wait_idle(aws, name).await.map(drop),
            Err(e) => DynamoDbCode::error("dynamodb:CreateTable", e)
                .reclass(DynamoDbCode::ResourceInUse, ErrorClass::Conflict),
        };
        if err.class != ErrorClass::Conflict {
            return Err(err);
        }
        // The name is taken: by an earlier attempt of ours whose answer was lost (converge),
        // by a table on its way out (wait, then create), or by someone else (refuse).
        match describe(aws, name).await? {
            None => continue,
            Some(d) if d.table_status() == Some(&t::TableStatus::Deleting) => {
                wait_gone(aws, name).await?
            }
            Some(d) => {
                if !has_ownership_tag(&list_tags(aws, d.table_arn().unwrap_or_default()).await?) {
                    return Err(err.explained("the table exists without the ownership tag"));
                }
                return wait_idle(aws, name).await.map(drop);
            }
        }
    }
    Err(AwsError::new(
        "dynamodb:CreateTable",
        ErrorClass::Transient,
        format!("table {name} kept being in use; try again"),
    ))
}

/// Send an UpdateTable, then wait until the change is done.
async fn update_table(
    aws: &AwsContext,
    name: &str,
    req: UpdateTableFluentBuilder,
) -> Result<(), AwsError> {
    req.send()
        .await
        .map_err(|e| DynamoDbCode::error("dynamodb:UpdateTable", e))?;
    wait_idle(aws, name).await.map(drop)
}

async fn update_billing(
    aws: &AwsContext,
    name: &str,
    mode: BillingMode,
    throughput: Option<Throughput>,
    index_throughput: &BTreeMap<String, Throughput>,
) -> Result<(), AwsError> {
    let o = from_description(&wait_idle(aws, name).await?, None);
    let mut req = dynamodb(aws).update_table().table_name(name);
    let mut changed = false;
    if o.billing_mode != mode {
        req = req.billing_mode(t::BillingMode::from(mode.as_str()));
        changed = true;
    }
    if let Some(tp) = throughput.filter(|tp| o.provisioned_throughput != Some(*tp)) {
        req = req.provisioned_throughput(capacity(&tp));
        changed = true;
    }
    for (index, tp) in index_throughput {
        let have = o
            .global_secondary_indexes
            .get(index)
            .map(|g| g.provisioned_throughput);
        if have.is_some_and(|h| h != Some(*tp)) {
            let action = t::UpdateGlobalSecondaryIndexAction::builder()
                .index_name(index)
                .provisioned_throughput(capacity(tp));
            req = req.global_secondary_index_updates(
                t::GlobalSecondaryIndexUpdate::builder()
                    .update(built(action.build()))
                    .build(),
            );
            changed = true;
        }
    }
    if !changed {
        return Ok(());
    }
    update_table(aws, name, req).await
}

async fn create_gsi(
    aws: &AwsContext,
    name: &str,
    g: &GlobalSecondaryIndex,
    provisioned: bool,
    attributes: &BTreeMap<String, AttributeType>,
) -> Result<(), AwsError> {
    // Idle also means an index of this name being deleted is gone.
    let d = wait_idle(aws, name).await?;
    if d.global_secondary_indexes()
        .iter()
        .any(|x| x.index_name() == Some(g.name.as_str()))
    {
        return Ok(());
    }
    let tp = g
        .provisioned_throughput
        .as_ref()
        .filter(|_| provisioned)
        .map(capacity);
    let action = t::CreateGlobalSecondaryIndexAction::builder()
        .index_name(&g.name)
        .set_key_schema(Some(gsi_keys(g)))
        .projection(projection(&g.projection))
        .set_provisioned_throughput(tp);
    let update = t::GlobalSecondaryIndexUpdate::builder()
        .create(built(action.build()))
        .build();
    // The full set, not just the new index's keys (moto replaces the table's definitions).
    let req = dynamodb(aws)
        .update_table()
        .table_name(name)
        .set_attribute_definitions(Some(attribute_definitions(attributes)));
    update_table(aws, name, req.global_secondary_index_updates(update)).await
}

async fn delete_gsi(aws: &AwsContext, name: &str, index: &str) -> Result<(), AwsError> {
    let d = wait_idle(aws, name).await?;
    if !d
        .global_secondary_indexes()
        .iter()
        .any(|x| x.index_name() == Some(index))
    {
        return Ok(());
    }
    let action = built(
        t::DeleteGlobalSecondaryIndexAction::builder()
            .index_name(index)
            .build(),
    );
    let update = t::GlobalSecondaryIndexUpdate::builder()
        .delete(action)
        .build();
    update_table(
        aws,
        name,
        dynamodb(aws)
            .update_table()
            .table_name(name)
            .global_secondary_index_updates(update),
    )
    .await
}

async fn update_streams(
    aws: &AwsContext,
    name: &str,
    want: Option<StreamViewType>,
) -> Result<(), AwsError> {
    let have = from_description(&wait_idle(aws, name).await?, None).streams;
    if have == want {
        return Ok(());
    }
    // A stream's view type cannot change: turn it off, then on with the new type.
    if have.is_some() {
        update_table(
            aws,
            name,
            dynamodb(aws)
                .update_table()
                .table_name(name)
                .stream_specification(stream_spec(None)),
        )
        .await?;
    }
    if want.is_some() {
        update_table(
            aws,
            name,
            dynamodb(aws)
                .update_table()
                .table_name(name)
                .stream_specification(stream_spec(want)),
        )
        .await?;
    }
    Ok(())
}

async fn update_pitr(aws: &AwsContext, name: &str, enabled: bool) -> Result<(), AwsError> {
    let spec = built(
        t::PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(enabled)
            .build(),
    );
    // Right after CreateTable, backups may not be available yet: that passes.
    retry_eventual(aws.eventual_consistency_timeout, || {
        let req = dynamodb(aws)
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(spec.clone());
        async move {
            req.send().await.map(drop).map_err(|e| {
                DynamoDbCode::error("dynamodb:UpdateContinuousBackups", e).reclass(
                    DynamoDbCode::ContinuousBackupsUnavailable,
                    ErrorClass::Transient,
                )
            })
        }
    })
    .await
}

async fn update_ttl(aws: &AwsContext, name: &str, attribute: &str) -> Result<(), AwsError> {
    let (status, current) = describe_ttl(aws, name).await?;
    let (status, current) = (status.as_ref(), current.as_deref());
    let set = |enabled: bool, attr: String| async move {
        let spec = built(
            t::TimeToLiveSpecification::builder()
                .enabled(enabled)
                .attribute_name(attr)
                .build(),
        );
        let req = dynamodb(aws)
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec);
        req.send()
            .await
            .map(drop)
            .map_err(|e| DynamoDbCode::error("dynamodb:UpdateTimeToLive", e))
    };
    let enabled = ttl_enabled(status);
    if enabled && current == Some(attribute) {
        return Ok(());
    }
    if status == Some(&t::TimeToLiveStatus::Disabling) {
        return Err(AwsError::new(
            "dynamodb:UpdateTimeToLive",
            ErrorClass::Transient,
            format!("time to live of table {name} is being disabled; enable it once that is done"),
        ));
    }
    // One expiry attribute at a time: the old one goes first.
    if enabled {
        set(false, current.unwrap_or_default().to_string()).await?;
    }
    set(true, attribute.to_string()).await
}

async fn delete(aws: &AwsContext, name: &str) -> Result<(), AwsError> {
    let Some(d) = describe(aws, name).await? else {
        return Ok(());
    };
    if d.table_status() == Some(&t::TableStatus::Deleting) {
        return wait_gone(aws, name).await;
    }
    if d.deletion_protection_enabled() == Some(true) {
        return Err(protected(name, None));
    }
    wait_idle(aws, name).await?;
    if let Err(e) = dynamodb(aws).delete_table().table_name(name).send().await {
        let e = DynamoDbCode::error("dynamodb:DeleteTable", e);
        if e.is_not_found() {
            return Ok(());
        }
        // A refusal may be protection turned on since the read above: read it again rather
        // than interpret AWS's message.
        if e.code() == Some(DynamoDbCode::Validation) {
            if let Some(d) = describe(aws, name).await? {
                if d.deletion_protection_enabled() == Some(true) {
                    return Err(protected(name, Some(&e.message)));
                }
            }
        }
        return Err(e);
    }
    wait_gone(aws, name).await
}

/// The refusal to delete a protected table; `aws_says` is AWS's own refusal, if any.
fn protected(name: &str, aws_says: Option<&str>) -> AwsError {
    let mut message = format!(
        "table {name} has deletion protection on; set spec.deletionProtection: false and \
         apply before deleting it"
    );
    if let Some(m) = aws_says {
        message.push_str(&format!(" ({m})"));
    }
    AwsError::new("dynamodb:DeleteTable", ErrorClass::Conflict, message)
}

/// Poll DescribeTable until `ready` accepts what it says, backing off from 0.5 s to 10 s,
/// for at most [`WAIT_LIMIT`].
async fn wait_for(
    aws: &AwsContext,
    name: &str,
    what: &str,
    ready: impl Fn(Option<&t::TableDescription>) -> Result<bool, AwsError>,
) -> Result<Option<t::TableDescription>, AwsError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let d = describe(aws, name).await?;
        if ready(d.as_ref())? {
            return Ok(d);
        }
        if start.elapsed() + delay > WAIT_LIMIT {
            return Err(AwsError::new(
                "dynamodb:DescribeTable",
                ErrorClass::Transient,
                format!("table {name} not {what} after {} s", WAIT_LIMIT.as_secs()),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(10));
    }
}

/// Wait until the table and all its indexes are ACTIVE (indexes being deleted are gone).
async fn wait_idle(aws: &AwsContext, name: &str) -> Result<t::TableDescription, AwsError> {
    let ready = |d: Option<&t::TableDescription>| {
        let fail = |class, message| Err(AwsError::new("dynamodb:DescribeTable", class, message));
        let Some(d) = d else {
            return fail(
                ErrorClass::NotFound,
                format!("ResourceNotFoundException: table {name} does not exist"),
            );
        };
        match d.table_status() {
            Some(t::TableStatus::Active) => {
                let indexes_idle = d.global_secondary_indexes().iter().all(|g| {
                    g.index_status()
                        .is_none_or(|s| *s == t::IndexStatus::Active)
                });
                Ok(indexes_idle)
            }
            Some(t::TableStatus::Creating | t::TableStatus::Updating) | None => Ok(false),
            Some(t::TableStatus::Deleting) => fail(
                ErrorClass::Conflict,
                format!("table {name} is being deleted"),
            ),
            // Archived, inaccessible key, ...: waiting will not make it ACTIVE.
            Some(s) => fail(ErrorClass::Fatal, format!("table {name} is {}", s.as_str())),
        }
    };
    let d = wait_for(aws, name, "ACTIVE", ready).await?;
    Ok(d.expect("ready only when the table exists"))
}

async fn wait_gone(aws: &AwsContext, name: &str) -> Result<(), AwsError> {
    wait_for(aws, name, "deleted", |d| Ok(d.is_none()))
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::super::{KeyAttribute, LocalSecondaryIndex, Streams, Ttl};
    use super::*;
    use crate::kinds::KindPlan;

    /// The pieces CreateTable sends, described back as DynamoDB does, diff to nothing.
    #[test]
    fn create_request_described_back_is_in_sync() {
        let key = |n: &str, t| KeyAttribute {
            name: n.into(),
            attr_type: t,
        };
        let tp = Throughput {
            read_capacity_units: 2,
            write_capacity_units: 3,
        };
        let spec = TableSpec {
            partition_key: key("configScope", AttributeType::S),
            sort_key: Some(key("versionId", AttributeType::N)),
            billing_mode: BillingMode::Provisioned,
            provisioned_throughput: Some(tp),
            global_secondary_indexes: vec![GlobalSecondaryIndex {
                name: "ByOwner".into(),
                partition_key: key("owner", AttributeType::B),
                sort_key: None,
                projection: Projection {
                    projection_type: ProjectionType::Include,
                    non_key_attributes: vec!["z".into(), "a".into()],
                },
                provisioned_throughput: Some(tp),
            }],
            local_secondary_indexes: vec![LocalSecondaryIndex {
                name: "ByUser".into(),
                sort_key: key("user", AttributeType::S),
                projection: Projection::default(),
            }],
            encryption: Some(TableEncryption {
                key_type: TableKeyType::AwsManaged,
                kms_key_id: None,
            }),
            point_in_time_recovery: None,
            ttl: Some(Ttl {
                attribute: "exp".into(),
            }),
            deletion_protection: Some(true),
            streams: Some(Streams {
                enabled: true,
                view_type: Some(StreamViewType::NewAndOldImages),
            }),
            tags: Tags::new(),
        };
        let gsis: Vec<&GlobalSecondaryIndex> = spec.global_secondary_indexes.iter().collect();
        let g = &spec.global_secondary_indexes[0];
        let l = &spec.local_secondary_indexes[0];
        let tpd = t::ProvisionedThroughputDescription::builder()
            .read_capacity_units(2)
            .write_capacity_units(3)
            .build();
        let d = t::TableDescription::builder()
            .table_arn("arn:aws:dynamodb:us-east-1:1:table/t")
            .table_status(t::TableStatus::Active)
            .set_attribute_definitions(Some(attribute_definitions(&key_attributes(&spec, &gsis))))
            .set_key_schema(Some(key_schema("configScope", Some("versionId"))))
            .billing_mode_summary(
                t::BillingModeSummary::builder()
                    .billing_mode(t::BillingMode::Provisioned)
                    .build(),
            )
            .provisioned_throughput(tpd.clone())
            .global_secondary_indexes(
                t::GlobalSecondaryIndexDescription::builder()
                    .index_name(&g.name)
                    .set_key_schema(Some(gsi_keys(g)))
                    .projection(projection(&g.projection))
                    .provisioned_throughput(tpd)
                    .index_status(t::IndexStatus::Active)
                    .build(),
            )
            .local_secondary_indexes(
                t::LocalSecondaryIndexDescription::builder()
                    .index_name(&l.name)
                    .set_key_schema(Some(key_schema("configScope", Some("user"))))
                    .projection(projection(&l.projection))
                    .build(),
            )
            .sse_description(
                t::SseDescription::builder()
                    .status(t::SseStatus::Enabled)
                    .sse_type(t::SseType::Kms)
                    .kms_master_key_arn("arn:aws:kms:us-east-1:1:key/d")
                    .build(),
            )
            .stream_specification(stream_spec(Some(StreamViewType::NewAndOldImages)))
            .deletion_protection_enabled(true)
            .build();
        let cx = PlanCx::default();
        let mut o = from_description(&d, Some("arn:aws:kms:us-east-1:1:key/d"));
        assert_eq!(
            o.encryption,
            EncryptionObserved::Kms {
                key_arn: "arn:aws:kms:us-east-1:1:key/d".into(),
                aws_managed: Some(true)
            }
        );
        o.tags = cx.desired_tags(&spec.tags);
        o.ttl = Some(TtlObserved {
            enabled: true,
            attribute: Some("exp".into()),
        });
        assert_eq!(
            Table::update("t", &spec, &o, &cx).unwrap(),
            (vec![], vec![])
        );
        // The AWS managed key is not a customer key.
        let mut kms = spec.clone();
        kms.encryption = Some(TableEncryption {
            key_type: TableKeyType::Kms,
            kms_key_id: Some("d".into()),
        });
        assert_eq!(Table::update("t", &kms, &o, &cx).unwrap().1.len(), 1);
    }

    #[test]
    fn sse_description_kinds() {
        assert_eq!(sse(None, None), EncryptionObserved::AwsOwned);
        let off = t::SseDescription::builder()
            .status(t::SseStatus::Disabled)
            .sse_type(t::SseType::Kms)
            .build();
        assert_eq!(sse(Some(&off), None), EncryptionObserved::AwsOwned);
        let on = t::SseDescription::builder()
            .status(t::SseStatus::Enabled)
            .sse_type(t::SseType::Kms)
            .kms_master_key_arn("k")
            .build();
        assert_eq!(
            sse(Some(&on), Some("other")),
            EncryptionObserved::Kms {
                key_arn: "k".into(),
                aws_managed: Some(false)
            }
        );
        assert_eq!(
            sse(Some(&on), None),
            EncryptionObserved::Kms {
                key_arn: "k".into(),
                aws_managed: None
            }
        );
    }
}
