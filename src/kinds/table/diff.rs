//! Table: the pure half. Compares a [`TableSpec`] with what DynamoDB reports and plans the
//! steps that close the gap: UpdateTable for billing, global secondary indexes, streams,
//! deletion protection and encryption; UpdateContinuousBackups for point-in-time recovery;
//! UpdateTimeToLive; TagResource and UntagResource.
//!
//! Settings the manifest leaves out (`None`) are not managed, so they are never drift. Keys
//! and local secondary indexes are fixed when a table is created: a change to them is a
//! [`PlanError`] naming the field, never a silent re-creation (that would drop the data).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    AttributeType, BillingMode, GlobalSecondaryIndex, KeyAttribute, Projection, StreamViewType,
    TableEncryption, TableKeyType, TableSpec, Throughput,
};
use crate::kinds::common::Tags;
use crate::kinds::core::{has_ownership_tag, Diff, KindPlan, Place, PlanCx, PlanError, Scope};
use crate::kinds::{FieldChange, Kind};

/// The Table kind.
pub struct Table;

/// A table as DynamoDB reports it. Key attributes are names; their types are in
/// `attribute_types` (a type AWS does not report is unknown, and unknown is not drift).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableObserved {
    /// Table ARN (tagging needs it).
    pub arn: String,
    /// `TableStatus`, e.g. `ACTIVE` or `UPDATING`.
    pub status: String,
    /// Partition key attribute name.
    pub partition_key: String,
    /// Sort key attribute name.
    pub sort_key: Option<String>,
    /// Types of the key attributes of the table and its indexes (`AttributeDefinitions`).
    pub attribute_types: BTreeMap<String, AttributeType>,
    /// Billing mode (`PROVISIONED` when DynamoDB reports none, as for old tables).
    pub billing_mode: BillingMode,
    /// Table capacity; only with `PROVISIONED`.
    pub provisioned_throughput: Option<Throughput>,
    /// Global secondary indexes by name.
    pub global_secondary_indexes: BTreeMap<String, GsiObserved>,
    /// Local secondary indexes by name.
    pub local_secondary_indexes: BTreeMap<String, LsiObserved>,
    /// Encryption at rest.
    pub encryption: EncryptionObserved,
    /// Point-in-time recovery; `None` when not read.
    pub point_in_time_recovery: Option<bool>,
    /// Time to live; `None` when not read.
    pub ttl: Option<TtlObserved>,
    /// Deletion protection.
    pub deletion_protection: bool,
    /// Stream view type when a stream is on.
    pub streams: Option<StreamViewType>,
    /// Tags.
    pub tags: Tags,
}

/// A global secondary index as DynamoDB reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GsiObserved {
    /// Partition key attribute name.
    pub partition_key: String,
    /// Sort key attribute name.
    pub sort_key: Option<String>,
    /// Projection (non-key attributes sorted).
    pub projection: Projection,
    /// Capacity; only when the table is `PROVISIONED`.
    pub provisioned_throughput: Option<Throughput>,
    /// `IndexStatus`, e.g. `ACTIVE`, `CREATING` or `DELETING`.
    pub status: String,
}

/// A local secondary index as DynamoDB reports it (its partition key is the table's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LsiObserved {
    /// Sort key attribute name.
    pub sort_key: String,
    /// Projection (non-key attributes sorted).
    pub projection: Projection,
}

/// Which key encrypts a table, from its `SSEDescription`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncryptionObserved {
    /// No SSE description (or SSE disabled): an AWS owned key.
    #[default]
    AwsOwned,
    /// A KMS key.
    Kms {
        /// `KMSMasterKeyArn` as reported.
        key_arn: String,
        /// Whether it is the AWS managed key `aws/dynamodb`; `None` when that could not be
        /// told (telling needs a KMS lookup of the key), in which case either manifest type
        /// is accepted rather than reported as drift forever.
        aws_managed: Option<bool>,
    },
}

/// Time to live as DescribeTimeToLive reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtlObserved {
    /// `ENABLED` or `ENABLING`.
    pub enabled: bool,
    /// The expiry attribute, when one is set.
    pub attribute: Option<String>,
}

/// One step. Each is idempotent: run twice, it leaves the same state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// CreateTable (keys, billing, indexes, encryption, streams, deletion protection and
    /// `tags`, ownership tag included), then wait until ACTIVE. A table that already exists
    /// with the ownership tag is taken as an earlier attempt whose answer was lost.
    Create {
        /// The table's spec.
        spec: Box<TableSpec>,
        /// Every tag to set, ownership tag included.
        tags: Tags,
    },
    /// UpdateTable with `BillingMode` and capacities (table and kept indexes).
    UpdateBilling {
        /// The billing mode.
        billing_mode: BillingMode,
        /// Table capacity, with `PROVISIONED`.
        throughput: Option<Throughput>,
        /// Capacity of each existing global secondary index, with `PROVISIONED`.
        index_throughput: BTreeMap<String, Throughput>,
    },
    /// UpdateTable creating one global secondary index, then wait until it is ACTIVE.
    CreateGsi {
        /// The index.
        index: GlobalSecondaryIndex,
        /// Whether the table is `PROVISIONED` (then the index's capacity is sent).
        provisioned: bool,
        /// Every key attribute of the table and of the indexes that exist after this step:
        /// UpdateTable's `AttributeDefinitions` (moto replaces the table's definitions with
        /// these, so a partial list would lose the other indexes' types).
        attributes: BTreeMap<String, AttributeType>,
    },
    /// UpdateTable deleting one global secondary index, then wait until it is gone.
    DeleteGsi {
        /// Index name.
        index: String,
    },
    /// UpdateTable `StreamSpecification` (a different view type needs off, then on).
    UpdateStreams {
        /// The view type, or `None` for off.
        view_type: Option<StreamViewType>,
    },
    /// UpdateTable `DeletionProtectionEnabled`.
    UpdateDeletionProtection {
        /// On or off.
        enabled: bool,
    },
    /// UpdateTable `SSESpecification`.
    UpdateEncryption {
        /// The wanted encryption.
        encryption: TableEncryption,
    },
    /// UpdateContinuousBackups.
    UpdatePitr {
        /// On or off.
        enabled: bool,
    },
    /// UpdateTimeToLive (an attribute other than the enabled one is disabled first).
    UpdateTtl {
        /// The expiry attribute.
        attribute: String,
    },
    /// TagResource.
    Tag {
        /// Table ARN.
        arn: String,
        /// Tags to set.
        tags: Tags,
    },
    /// UntagResource.
    Untag {
        /// Table ARN.
        arn: String,
        /// Keys to remove.
        keys: Vec<String>,
    },
    /// DeleteTable, then wait until it is gone. Refused (a Conflict) while deletion
    /// protection is on.
    Delete,
}

impl KindPlan for Table {
    type Observed = TableObserved;
    type Op = Op;

    // Table names are per region.
    const SCOPE: Scope = Scope::Region;

    // Optional settings left out are unmanaged, so ignoring one is leaving it out.
    const IGNORABLE_FIELDS: &'static [&'static str] = &[
        "pointInTimeRecovery",
        "ttl",
        "deletionProtection",
        "streams",
        "tags",
    ];

    fn keep_observed(spec: &mut TableSpec, o: &TableObserved, field: &str) {
        match field {
            "pointInTimeRecovery" => spec.point_in_time_recovery = None,
            "ttl" => spec.ttl = None,
            "deletionProtection" => spec.deletion_protection = None,
            "streams" => spec.streams = None,
            "tags" => spec.tags = crate::kinds::common::settable_tags(&o.tags),
            _ => {}
        }
    }

    fn stand_in(name: &str, attribute: &str, at: Place) -> Option<String> {
        match attribute {
            "arn" => Some(format!(
                "arn:{}:dynamodb:{}:{}:table/{name}",
                at.partition, at.region, at.account
            )),
            "name" => Some(name.to_string()),
            _ => None,
        }
    }

    fn arn(name: &str, _: &TableSpec, at: Place) -> Option<String> {
        Some(format!(
            "arn:{}:dynamodb:{}:{}:table/{name}",
            at.partition, at.region, at.account
        ))
    }

    fn event_objects(name: &str, _: &TableSpec) -> Vec<crate::kinds::AwsObject> {
        vec![crate::kinds::AwsObject::Table(name.to_string())]
    }

    fn observed_tags(o: &TableObserved) -> Option<&Tags> {
        Some(&o.tags)
    }

    fn is_owned(o: &TableObserved) -> bool {
        has_ownership_tag(&o.tags)
    }

    fn create(_: &str, spec: &TableSpec, cx: &PlanCx) -> Diff<Op> {
        let tags = cx.desired_tags(&spec.tags);
        let mut fields = vec![FieldChange::new(
            "spec.partitionKey",
            None,
            Some(to_json(&spec.partition_key)),
        )];
        if let Some(s) = &spec.sort_key {
            fields.push(FieldChange::new("spec.sortKey", None, Some(to_json(s))));
        }
        fields.push(FieldChange::new(
            "spec.billingMode",
            None,
            Some(json!(spec.billing_mode.as_str())),
        ));
        if let Some(t) = &spec.provisioned_throughput {
            fields.push(FieldChange::new(
                "spec.provisionedThroughput",
                None,
                Some(to_json(t)),
            ));
        }
        for g in &spec.global_secondary_indexes {
            let f = format!("spec.globalSecondaryIndexes.{}", g.name);
            fields.push(FieldChange::new(f, None, Some(to_json(g))));
        }
        if !spec.local_secondary_indexes.is_empty() {
            let l = to_json(&spec.local_secondary_indexes);
            fields.push(FieldChange::new(
                "spec.localSecondaryIndexes",
                None,
                Some(l),
            ));
        }
        if let Some(e) = &spec.encryption {
            fields.push(FieldChange::new("spec.encryption", None, Some(to_json(e))));
        }
        if let Some(p) = spec.point_in_time_recovery {
            fields.push(FieldChange::new(
                "spec.pointInTimeRecovery",
                None,
                Some(json!(p)),
            ));
        }
        if let Some(t) = &spec.ttl {
            fields.push(FieldChange::new("spec.ttl", None, Some(to_json(t))));
        }
        if let Some(d) = spec.deletion_protection {
            fields.push(FieldChange::new(
                "spec.deletionProtection",
                None,
                Some(json!(d)),
            ));
        }
        if let Some(s) = &spec.streams {
            fields.push(FieldChange::new("spec.streams", None, Some(to_json(s))));
        }
        for (k, v) in &tags {
            fields.push(FieldChange::new(
                format!("spec.tags.{k}"),
                None,
                Some(json!(v)),
            ));
        }
        let mut ops = vec![Op::Create {
            spec: Box::new(spec.clone()),
            tags,
        }];
        // A new table has PITR off and no TTL; both need their own calls once it is ACTIVE.
        if spec.point_in_time_recovery == Some(true) {
            ops.push(Op::UpdatePitr { enabled: true });
        }
        if let Some(t) = &spec.ttl {
            ops.push(Op::UpdateTtl {
                attribute: t.attribute.clone(),
            });
        }
        (fields, ops)
    }

    fn update(
        name: &str,
        spec: &TableSpec,
        o: &TableObserved,
        cx: &PlanCx,
    ) -> Result<Diff<Op>, Vec<PlanError>> {
        let errors = fixed_at_creation(name, spec, o);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut fields = Vec::new();
        let mut ops = Vec::new();

        // Tags first: an adopted table is marked as ours before anything else changes.
        let want = cx.desired_tags(&spec.tags);
        let have = cx.managed_tags(&o.tags, &want);
        tag_diff(&want, &have, o, &mut fields, &mut ops);

        // Global secondary indexes: deletions, then billing (which must name every index
        // that remains when switching to PROVISIONED), then creations one by one.
        let provisioned = spec.billing_mode == BillingMode::Provisioned;
        let live: BTreeMap<&str, &GsiObserved> = o
            .global_secondary_indexes
            .iter()
            .filter(|(_, g)| g.status != "DELETING") // already going: not there
            .map(|(n, g)| (n.as_str(), g))
            .collect();
        let wanted: BTreeMap<&str, &GlobalSecondaryIndex> = spec
            .global_secondary_indexes
            .iter()
            .map(|g| (g.name.as_str(), g))
            .collect();
        let kept: BTreeSet<&str> = wanted
            .iter()
            .filter(|(n, g)| {
                live.get(*n)
                    .is_some_and(|og| gsi_same_structure(g, og, &o.attribute_types))
            })
            .map(|(n, _)| *n)
            .collect();
        for (n, og) in &live {
            if kept.contains(n) {
                continue;
            }
            let field = format!("spec.globalSecondaryIndexes.{n}");
            let new = wanted.get(n).map(to_json);
            fields.push(FieldChange::new(
                field,
                Some(gsi_json(n, og, &o.attribute_types)),
                new,
            ));
            ops.push(Op::DeleteGsi {
                index: n.to_string(),
            });
        }

        let want_tp = if provisioned {
            spec.provisioned_throughput
        } else {
            None
        };
        let index_tp: BTreeMap<String, Throughput> = if provisioned {
            kept.iter()
                .filter_map(|n| wanted[n].provisioned_throughput.map(|t| (n.to_string(), t)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let mut billing_fields = Vec::new();
        if spec.billing_mode != o.billing_mode {
            let (old, new) = (o.billing_mode.as_str(), spec.billing_mode.as_str());
            billing_fields.push(FieldChange::new(
                "spec.billingMode",
                Some(json!(old)),
                Some(json!(new)),
            ));
        }
        if want_tp.is_some() && want_tp != o.provisioned_throughput {
            let old = o.provisioned_throughput.as_ref().map(to_json);
            let new = want_tp.as_ref().map(to_json);
            billing_fields.push(FieldChange::new("spec.provisionedThroughput", old, new));
        }
        for (n, t) in &index_tp {
            let have = live[n.as_str()].provisioned_throughput;
            if have != Some(*t) {
                let f = format!("spec.globalSecondaryIndexes.{n}.provisionedThroughput");
                billing_fields.push(FieldChange::new(
                    f,
                    have.as_ref().map(to_json),
                    Some(to_json(t)),
                ));
            }
        }
        if !billing_fields.is_empty() {
            fields.append(&mut billing_fields);
            ops.push(Op::UpdateBilling {
                billing_mode: spec.billing_mode,
                throughput: want_tp,
                index_throughput: index_tp,
            });
        }

        let mut present: Vec<&GlobalSecondaryIndex> = kept.iter().map(|n| wanted[n]).collect();
        for g in &spec.global_secondary_indexes {
            if kept.contains(g.name.as_str()) {
                continue;
            }
            if !live.contains_key(g.name.as_str()) {
                let f = format!("spec.globalSecondaryIndexes.{}", g.name);
                fields.push(FieldChange::new(f, None, Some(to_json(g))));
            }
            present.push(g);
            let attributes = key_attributes(spec, &present);
            ops.push(Op::CreateGsi {
                index: g.clone(),
                provisioned,
                attributes,
            });
        }

        if let Some(e) = &spec.encryption {
            if !encryption_matches(e, &o.encryption) {
                let old = encryption_json(&o.encryption);
                fields.push(FieldChange::new(
                    "spec.encryption",
                    Some(old),
                    Some(to_json(e)),
                ));
                ops.push(Op::UpdateEncryption {
                    encryption: e.clone(),
                });
            }
        }
        if let Some(s) = &spec.streams {
            // `enabled` without a view type is refused by validation; it manages nothing.
            let want = if s.enabled { s.view_type } else { None };
            if (s.enabled == want.is_some()) && want != o.streams {
                let old = streams_json(o.streams);
                fields.push(FieldChange::new(
                    "spec.streams",
                    Some(old),
                    Some(streams_json(want)),
                ));
                ops.push(Op::UpdateStreams { view_type: want });
            }
        }
        if let Some(d) = spec.deletion_protection {
            if d != o.deletion_protection {
                let (old, new) = (json!(o.deletion_protection), json!(d));
                fields.push(FieldChange::new(
                    "spec.deletionProtection",
                    Some(old),
                    Some(new),
                ));
                ops.push(Op::UpdateDeletionProtection { enabled: d });
            }
        }
        if let Some(p) = spec.point_in_time_recovery {
            if o.point_in_time_recovery != Some(p) {
                let old = o.point_in_time_recovery.map(|b| json!(b));
                fields.push(FieldChange::new(
                    "spec.pointInTimeRecovery",
                    old,
                    Some(json!(p)),
                ));
                ops.push(Op::UpdatePitr { enabled: p });
            }
        }
        if let Some(t) = &spec.ttl {
            let on = o
                .ttl
                .as_ref()
                .filter(|t| t.enabled)
                .and_then(|t| t.attribute.as_deref());
            if on != Some(t.attribute.as_str()) {
                let old = on.map(|a| json!({ "attribute": a }));
                fields.push(FieldChange::new("spec.ttl", old, Some(to_json(t))));
                ops.push(Op::UpdateTtl {
                    attribute: t.attribute.clone(),
                });
            }
        }
        Ok((fields, ops))
    }

    fn release(_: &str, o: &TableObserved) -> Vec<Op> {
        vec![Op::Untag {
            arn: o.arn.clone(),
            keys: vec![crate::kinds::common::OWNERSHIP_TAG.to_string()],
        }]
    }

    fn delete(_: &str, _: &TableObserved) -> Vec<Op> {
        vec![Op::Delete]
    }
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("plain data serializes")
}

/// Keys and local secondary indexes: the settings DynamoDB fixes at creation.
fn fixed_at_creation(name: &str, spec: &TableSpec, o: &TableObserved) -> Vec<PlanError> {
    let types = &o.attribute_types;
    let err = |field: &str, message: String| PlanError {
        kind: Kind::Table,
        name: name.to_string(),
        field: field.to_string(),
        message,
    };
    let mut errors = Vec::new();
    if !key_matches(&spec.partition_key, &o.partition_key, types) {
        let have = key_json(&o.partition_key, types);
        let msg = format!(
            "the partition key cannot change in place (AWS has {have}, the manifest wants {}); \
             create a new table and move the data",
            to_json(&spec.partition_key)
        );
        errors.push(err("spec.partitionKey", msg));
    }
    let same_sort = match (&spec.sort_key, &o.sort_key) {
        (None, None) => true,
        (Some(s), Some(n)) => key_matches(s, n, types),
        _ => false,
    };
    if !same_sort {
        let have = o
            .sort_key
            .as_deref()
            .map_or(Value::Null, |n| key_json(n, types));
        let want = spec.sort_key.as_ref().map_or(Value::Null, to_json);
        let msg = format!(
            "the sort key cannot change in place (AWS has {have}, the manifest wants {want}); \
             create a new table and move the data"
        );
        errors.push(err("spec.sortKey", msg));
    }
    let wanted: BTreeMap<&str, _> = spec
        .local_secondary_indexes
        .iter()
        .map(|l| (l.name.as_str(), l))
        .collect();
    let same_lsis = wanted.len() == o.local_secondary_indexes.len()
        && wanted.iter().all(|(n, l)| {
            o.local_secondary_indexes.get(*n).is_some_and(|ol| {
                key_matches(&l.sort_key, &ol.sort_key, types)
                    && projection_eq(&l.projection, &ol.projection)
            })
        });
    if !same_lsis {
        let have: Vec<&String> = o.local_secondary_indexes.keys().collect();
        let want: Vec<&&str> = wanted.keys().collect();
        let msg = format!(
            "local secondary indexes are set when the table is created and cannot change \
             (AWS has {have:?}, the manifest wants {want:?}, or their keys or projections \
             differ); create a new table and move the data"
        );
        errors.push(err("spec.localSecondaryIndexes", msg));
    }
    errors
}

/// Same attribute name, and the same type unless AWS did not report one.
fn key_matches(want: &KeyAttribute, have: &str, types: &BTreeMap<String, AttributeType>) -> bool {
    want.name == have && types.get(have).is_none_or(|t| *t == want.attr_type)
}

fn projection_eq(a: &Projection, b: &Projection) -> bool {
    let sorted = |p: &Projection| {
        let mut v = p.non_key_attributes.clone();
        v.sort();
        v
    };
    a.projection_type == b.projection_type && sorted(a) == sorted(b)
}

/// Keys and projection: what an index cannot change without being rebuilt.
fn gsi_same_structure(
    g: &GlobalSecondaryIndex,
    o: &GsiObserved,
    types: &BTreeMap<String, AttributeType>,
) -> bool {
    let sort = match (&g.sort_key, &o.sort_key) {
        (None, None) => true,
        (Some(s), Some(n)) => key_matches(s, n, types),
        _ => false,
    };
    key_matches(&g.partition_key, &o.partition_key, types)
        && sort
        && projection_eq(&g.projection, &o.projection)
}

/// The attribute definitions of the table's keys, its local indexes and `gsis`.
pub(crate) fn key_attributes(
    spec: &TableSpec,
    gsis: &[&GlobalSecondaryIndex],
) -> BTreeMap<String, AttributeType> {
    let mut keys: Vec<&KeyAttribute> = vec![&spec.partition_key];
    keys.extend(&spec.sort_key);
    keys.extend(spec.local_secondary_indexes.iter().map(|l| &l.sort_key));
    for g in gsis {
        keys.push(&g.partition_key);
        keys.extend(&g.sort_key);
    }
    keys.into_iter()
        .map(|k| (k.name.clone(), k.attr_type))
        .collect()
}

/// Whether the observed key is the one the manifest asks for.
pub(crate) fn encryption_matches(want: &TableEncryption, have: &EncryptionObserved) -> bool {
    match (want.key_type, have) {
        (TableKeyType::AwsOwned, EncryptionObserved::AwsOwned) => true,
        (TableKeyType::AwsManaged, EncryptionObserved::Kms { aws_managed, .. }) => {
            *aws_managed != Some(false)
        }
        (
            TableKeyType::Kms,
            EncryptionObserved::Kms {
                key_arn,
                aws_managed,
            },
        ) => {
            let id = want.kms_key_id.as_deref().unwrap_or_default();
            let same = key_arn == id
                || key_arn.ends_with(&format!(":key/{id}"))
                // An alias cannot be resolved without KMS: unknown is not drift.
                || (id.starts_with("alias/") || id.contains(":alias/")) && aws_managed.is_none();
            same && *aws_managed != Some(true)
        }
        _ => false,
    }
}

fn encryption_json(e: &EncryptionObserved) -> Value {
    match e {
        EncryptionObserved::AwsOwned => json!({ "type": "AWS_OWNED" }),
        EncryptionObserved::Kms {
            key_arn,
            aws_managed: Some(true),
        } => {
            json!({ "type": "AWS_MANAGED", "kmsKeyArn": key_arn })
        }
        EncryptionObserved::Kms { key_arn, .. } => json!({ "type": "KMS", "kmsKeyArn": key_arn }),
    }
}

fn streams_json(v: Option<StreamViewType>) -> Value {
    match v {
        Some(t) => json!({ "enabled": true, "viewType": t.as_str() }),
        None => json!({ "enabled": false }),
    }
}

fn key_json(name: &str, types: &BTreeMap<String, AttributeType>) -> Value {
    json!({ "name": name, "type": types.get(name).map(|t| t.as_str()) })
}

fn gsi_json(name: &str, g: &GsiObserved, types: &BTreeMap<String, AttributeType>) -> Value {
    let mut v = json!({ "name": name, "partitionKey": key_json(&g.partition_key, types) });
    if let Some(s) = &g.sort_key {
        v["sortKey"] = key_json(s, types);
    }
    v["projection"] = to_json(&g.projection);
    if let Some(t) = &g.provisioned_throughput {
        v["provisionedThroughput"] = to_json(t);
    }
    v
}

/// Tags to set and to remove. `aws:` tags belong to AWS and cannot be removed.
fn tag_diff(
    want: &Tags,
    have: &Tags,
    o: &TableObserved,
    fields: &mut Vec<FieldChange>,
    ops: &mut Vec<Op>,
) {
    let mut set = Tags::new();
    for (k, v) in want {
        if have.get(k) != Some(v) {
            let old = have.get(k).map(|x| json!(x));
            fields.push(FieldChange::new(
                format!("spec.tags.{k}"),
                old,
                Some(json!(v)),
            ));
            set.insert(k.clone(), v.clone());
        }
    }
    let mut remove = Vec::new();
    for (k, v) in have {
        if !want.contains_key(k) && !k.starts_with("aws:") {
            fields.push(FieldChange::new(
                format!("spec.tags.{k}"),
                Some(json!(v)),
                None,
            ));
            remove.push(k.clone());
        }
    }
    if !set.is_empty() {
        ops.push(Op::Tag {
            arn: o.arn.clone(),
            tags: set,
        });
    }
    if !remove.is_empty() {
        ops.push(Op::Untag {
            arn: o.arn.clone(),
            keys: remove,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LocalSecondaryIndex, ProjectionType, Streams, Ttl};
    use super::*;
    use crate::kinds::common::{OWNERSHIP_TAG, OWNERSHIP_VALUE};

    fn key(name: &str, t: AttributeType) -> KeyAttribute {
        KeyAttribute {
            name: name.into(),
            attr_type: t,
        }
    }

    /// MLSpace's resource-metadata table, with a GSI and every optional setting.
    fn spec() -> TableSpec {
        TableSpec {
            partition_key: key("resourceType", AttributeType::S),
            sort_key: Some(key("resourceId", AttributeType::S)),
            billing_mode: BillingMode::PayPerRequest,
            provisioned_throughput: None,
            global_secondary_indexes: vec![GlobalSecondaryIndex {
                name: "ReverseLookup".into(),
                partition_key: key("resourceId", AttributeType::S),
                sort_key: Some(key("resourceType", AttributeType::S)),
                projection: Projection {
                    projection_type: ProjectionType::KeysOnly,
                    non_key_attributes: vec![],
                },
                provisioned_throughput: None,
            }],
            local_secondary_indexes: ["project", "user"]
                .iter()
                .map(|k| LocalSecondaryIndex {
                    name: format!("{k}Resources"),
                    sort_key: key(k, AttributeType::S),
                    projection: Projection::default(),
                })
                .collect(),
            encryption: Some(TableEncryption {
                key_type: TableKeyType::AwsManaged,
                kms_key_id: None,
            }),
            point_in_time_recovery: Some(true),
            ttl: Some(Ttl {
                attribute: "expiresAt".into(),
            }),
            deletion_protection: Some(true),
            streams: Some(Streams {
                enabled: true,
                view_type: Some(StreamViewType::NewImage),
            }),
            tags: [("team".to_string(), "ml".to_string())].into(),
        }
    }

    /// What DynamoDB reports after the create steps ran (as moto and AWS describe it).
    fn as_created(spec: &TableSpec, cx: &PlanCx) -> TableObserved {
        let all: Vec<&GlobalSecondaryIndex> = spec.global_secondary_indexes.iter().collect();
        let provisioned = spec.billing_mode == BillingMode::Provisioned;
        TableObserved {
            arn: "arn:aws:dynamodb:us-east-1:123456789012:table/t".into(),
            status: "ACTIVE".into(),
            partition_key: spec.partition_key.name.clone(),
            sort_key: spec.sort_key.as_ref().map(|k| k.name.clone()),
            attribute_types: key_attributes(spec, &all),
            billing_mode: spec.billing_mode,
            provisioned_throughput: spec.provisioned_throughput.filter(|_| provisioned),
            global_secondary_indexes: spec
                .global_secondary_indexes
                .iter()
                .map(|g| {
                    let o = GsiObserved {
                        partition_key: g.partition_key.name.clone(),
                        sort_key: g.sort_key.as_ref().map(|k| k.name.clone()),
                        projection: g.projection.clone(),
                        provisioned_throughput: g.provisioned_throughput.filter(|_| provisioned),
                        status: "ACTIVE".into(),
                    };
                    (g.name.clone(), o)
                })
                .collect(),
            local_secondary_indexes: spec
                .local_secondary_indexes
                .iter()
                .map(|l| {
                    let o = LsiObserved {
                        sort_key: l.sort_key.name.clone(),
                        projection: l.projection.clone(),
                    };
                    (l.name.clone(), o)
                })
                .collect(),
            encryption: match &spec.encryption {
                None
                | Some(TableEncryption {
                    key_type: TableKeyType::AwsOwned,
                    ..
                }) => EncryptionObserved::AwsOwned,
                Some(e) => EncryptionObserved::Kms {
                    key_arn: e
                        .kms_key_id
                        .clone()
                        .unwrap_or_else(|| "arn:aws:kms:us-east-1:123456789012:key/1".into()),
                    aws_managed: Some(e.key_type == TableKeyType::AwsManaged),
                },
            },
            point_in_time_recovery: Some(spec.point_in_time_recovery.unwrap_or(false)),
            ttl: Some(TtlObserved {
                enabled: spec.ttl.is_some(),
                attribute: spec.ttl.as_ref().map(|t| t.attribute.clone()),
            }),
            deletion_protection: spec.deletion_protection.unwrap_or(false),
            streams: spec
                .streams
                .as_ref()
                .and_then(|s| s.view_type.filter(|_| s.enabled)),
            tags: cx.desired_tags(&spec.tags),
        }
    }

    fn fields(d: &Diff<Op>) -> Vec<&str> {
        d.0.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn created_table_observed_back_has_no_changes() {
        let cx = PlanCx::default();
        let s = spec();
        let (_, ops) = Table::create("t", &s, &cx);
        let Op::Create { tags, .. } = &ops[0] else {
            panic!("{ops:?}")
        };
        assert_eq!(tags[OWNERSHIP_TAG], OWNERSHIP_VALUE);
        assert_eq!(
            ops[1..],
            [
                Op::UpdatePitr { enabled: true },
                Op::UpdateTtl {
                    attribute: "expiresAt".into()
                }
            ]
        );
        let d = Table::update("t", &s, &as_created(&s, &cx), &cx).unwrap();
        assert_eq!(d, (vec![], vec![]));

        let mut p = spec();
        p.billing_mode = BillingMode::Provisioned;
        p.provisioned_throughput = Some(Throughput {
            read_capacity_units: 5,
            write_capacity_units: 5,
        });
        p.global_secondary_indexes[0].provisioned_throughput = p.provisioned_throughput;
        p.encryption = Some(TableEncryption {
            key_type: TableKeyType::Kms,
            kms_key_id: Some("arn:aws:kms:us-east-1:1:key/k".into()),
        });
        assert_eq!(
            Table::update("t", &p, &as_created(&p, &cx), &cx).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn key_and_local_index_changes_are_plan_errors() {
        let cx = PlanCx::default();
        let s = spec();
        let o = as_created(&s, &cx);
        let mut w = spec();
        w.partition_key.attr_type = AttributeType::N;
        w.sort_key = Some(key("other", AttributeType::S));
        w.local_secondary_indexes.pop();
        let errs = Table::update("t", &w, &o, &cx).unwrap_err();
        let got: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            got,
            [
                "spec.partitionKey",
                "spec.sortKey",
                "spec.localSecondaryIndexes"
            ]
        );
        assert!(errs.iter().all(|e| e.kind == Kind::Table && e.name == "t"));

        let mut w = spec();
        w.sort_key = None;
        w.local_secondary_indexes.clear();
        let errs = Table::update("t", &w, &o, &cx).unwrap_err();
        assert_eq!(errs.len(), 2);
        // An unreported type is unknown, not a change.
        let mut o2 = o.clone();
        o2.attribute_types.remove("resourceType");
        assert!(Table::update("t", &s, &o2, &cx).unwrap().1.is_empty());
    }

    #[test]
    fn extra_and_changed_tags_are_drift() {
        let cx = PlanCx::default();
        let s = spec();
        let mut o = as_created(&s, &cx);
        o.tags.insert("intruder".into(), "x".into());
        o.tags.insert("team".into(), "other".into());
        o.tags
            .insert("aws:cloudformation:stack-name".into(), "s".into());
        let d = Table::update("t", &s, &o, &cx).unwrap();
        assert_eq!(fields(&d), ["spec.tags.team", "spec.tags.intruder"]);
        assert_eq!(
            d.1,
            [
                Op::Tag {
                    arn: o.arn.clone(),
                    tags: [("team".to_string(), "ml".to_string())].into()
                },
                Op::Untag {
                    arn: o.arn.clone(),
                    keys: vec!["intruder".into()]
                },
            ]
        );
    }

    #[test]
    fn settings_left_out_are_not_drift() {
        let cx = PlanCx::default();
        let mut s = spec();
        s.encryption = None;
        s.point_in_time_recovery = None;
        s.ttl = None;
        s.deletion_protection = None;
        s.streams = None;
        let mut o = as_created(&spec(), &cx);
        o.encryption = EncryptionObserved::Kms {
            key_arn: "arn:aws:kms:us-east-1:1:key/x".into(),
            aws_managed: Some(false),
        };
        o.point_in_time_recovery = Some(false);
        o.ttl = Some(TtlObserved {
            enabled: true,
            attribute: Some("other".into()),
        });
        o.streams = Some(StreamViewType::KeysOnly);
        assert_eq!(Table::update("t", &s, &o, &cx).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn settings_changes_are_updates() {
        let cx = PlanCx::default();
        let s = spec();
        let mut o = as_created(&s, &cx);
        o.encryption = EncryptionObserved::AwsOwned;
        o.point_in_time_recovery = Some(false);
        o.ttl = Some(TtlObserved {
            enabled: false,
            attribute: None,
        });
        o.deletion_protection = false;
        o.streams = None;
        let d = Table::update("t", &s, &o, &cx).unwrap();
        assert_eq!(
            fields(&d),
            [
                "spec.encryption",
                "spec.streams",
                "spec.deletionProtection",
                "spec.pointInTimeRecovery",
                "spec.ttl"
            ]
        );
        assert_eq!(
            d.1,
            [
                Op::UpdateEncryption {
                    encryption: s.encryption.clone().unwrap()
                },
                Op::UpdateStreams {
                    view_type: Some(StreamViewType::NewImage)
                },
                Op::UpdateDeletionProtection { enabled: true },
                Op::UpdatePitr { enabled: true },
                Op::UpdateTtl {
                    attribute: "expiresAt".into()
                },
            ]
        );
        // An AWS managed key that could not be identified matches AWS_MANAGED and KMS aliases.
        let unknown = EncryptionObserved::Kms {
            key_arn: "arn:aws:kms:us-east-1:1:key/x".into(),
            aws_managed: None,
        };
        assert!(encryption_matches(s.encryption.as_ref().unwrap(), &unknown));
        let alias = TableEncryption {
            key_type: TableKeyType::Kms,
            kms_key_id: Some("alias/mine".into()),
        };
        assert!(encryption_matches(&alias, &unknown));
        assert!(!encryption_matches(
            &TableEncryption {
                key_type: TableKeyType::AwsOwned,
                kms_key_id: None
            },
            &unknown
        ));
        let by_id = TableEncryption {
            key_type: TableKeyType::Kms,
            kms_key_id: Some("x".into()),
        };
        assert!(encryption_matches(&by_id, &unknown));
    }

    #[test]
    fn gsi_add_remove_and_key_change() {
        let cx = PlanCx::default();
        let s = spec();
        let o = as_created(&s, &cx);
        let mut w = spec();
        w.global_secondary_indexes[0].partition_key = key("user", AttributeType::S);
        let mut added = w.global_secondary_indexes[0].clone();
        added.name = "ByProject".into();
        added.partition_key = key("owner", AttributeType::S);
        w.global_secondary_indexes.push(added.clone());
        let d = Table::update("t", &w, &o, &cx).unwrap();
        assert_eq!(
            fields(&d),
            [
                "spec.globalSecondaryIndexes.ReverseLookup",
                "spec.globalSecondaryIndexes.ByProject"
            ]
        );
        let changed = &d.0[0];
        assert!(changed.old.is_some() && changed.new.is_some());
        assert_eq!(d.1.len(), 3);
        assert_eq!(
            d.1[0],
            Op::DeleteGsi {
                index: "ReverseLookup".into()
            }
        );
        // Each create names every key attribute of the indexes that exist after it.
        let names = |a: &BTreeMap<String, AttributeType>| a.keys().cloned().collect::<Vec<_>>();
        let Op::CreateGsi {
            index,
            attributes,
            provisioned: false,
        } = &d.1[1]
        else {
            panic!("{:?}", d.1)
        };
        assert_eq!(index, &w.global_secondary_indexes[0]);
        assert_eq!(
            names(attributes),
            ["project", "resourceId", "resourceType", "user"]
        );
        let Op::CreateGsi {
            index, attributes, ..
        } = &d.1[2]
        else {
            panic!("{:?}", d.1)
        };
        assert_eq!(index, &added);
        assert_eq!(
            names(attributes),
            ["owner", "project", "resourceId", "resourceType", "user"]
        );

        // Removing every GSI deletes it (indexes are always managed).
        let mut w = spec();
        w.global_secondary_indexes.clear();
        let d = Table::update("t", &w, &o, &cx).unwrap();
        assert_eq!(
            d.1,
            [Op::DeleteGsi {
                index: "ReverseLookup".into()
            }]
        );
        assert_eq!(d.0[0].new, None);
    }

    #[test]
    fn billing_switch_names_table_and_index_capacity() {
        let cx = PlanCx::default();
        let s = spec();
        let o = as_created(&s, &cx);
        let tp = Throughput {
            read_capacity_units: 3,
            write_capacity_units: 4,
        };
        let mut w = spec();
        w.billing_mode = BillingMode::Provisioned;
        w.provisioned_throughput = Some(tp);
        w.global_secondary_indexes[0].provisioned_throughput = Some(tp);
        let d = Table::update("t", &w, &o, &cx).unwrap();
        assert_eq!(
            fields(&d),
            [
                "spec.billingMode",
                "spec.provisionedThroughput",
                "spec.globalSecondaryIndexes.ReverseLookup.provisionedThroughput"
            ]
        );
        assert_eq!(
            d.1,
            [Op::UpdateBilling {
                billing_mode: BillingMode::Provisioned,
                throughput: Some(tp),
                index_throughput: [("ReverseLookup".to_string(), tp)].into(),
            }]
        );
        // Back to on demand: only the mode.
        let d = Table::update("t", &s, &as_created(&w, &cx), &cx).unwrap();
        assert_eq!(fields(&d), ["spec.billingMode"]);
    }

    #[test]
    fn unowned_table_is_not_owned() {
        let cx = PlanCx::default();
        let mut o = as_created(&spec(), &cx);
        assert!(Table::is_owned(&o));
        o.tags.remove(OWNERSHIP_TAG);
        assert!(!Table::is_owned(&o));
    }
}
