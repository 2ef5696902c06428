//! `Table`: a DynamoDB table with its keys, indexes and settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{check_tags, Tags};
use super::core::DocKind;
use super::environment::EnvironmentView;
use super::Kind;
use crate::syntax::diag::DocCx;

/// Spec of the `Table` kind. `metadata.name` is the table name. Optional settings left
/// out are not managed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TableSpec {
    /// Partition (hash) key. Cannot change after creation.
    pub partition_key: KeyAttribute,
    /// Sort (range) key. Cannot change after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttribute>,
    /// `PAY_PER_REQUEST` (default) or `PROVISIONED`.
    #[serde(default)]
    pub billing_mode: BillingMode,
    /// Capacity, required with `PROVISIONED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_throughput: Option<Throughput>,
    /// Global secondary indexes (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    /// Local secondary indexes (at most 5; only at creation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_secondary_indexes: Vec<LocalSecondaryIndex>,
    /// Encryption at rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<TableEncryption>,
    /// Point-in-time recovery on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time_recovery: Option<bool>,
    /// Time to live: the attribute holding the expiry epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Ttl>,
    /// Deletion protection on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    /// DynamoDB Streams: `{viewType: ...}` to enable, `{enabled: false}` to keep off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Streams>,
    /// Tags of this table (added to the Environment's tags).
    #[serde(default)]
    pub tags: Tags,
}

/// A key attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyAttribute {
    /// Attribute name.
    pub name: String,
    /// `S` (string), `N` (number) or `B` (binary).
    #[serde(rename = "type")]
    pub attr_type: AttributeType,
}

/// Scalar attribute types allowed in keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AttributeType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl AttributeType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::N => "N",
            Self::B => "B",
        }
    }
}

/// Billing modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingMode {
    /// On demand.
    #[default]
    PayPerRequest,
    /// Provisioned capacity.
    Provisioned,
}

impl BillingMode {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PayPerRequest => "PAY_PER_REQUEST",
            Self::Provisioned => "PROVISIONED",
        }
    }
}

/// Provisioned capacity units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Throughput {
    /// Read capacity units.
    pub read_capacity_units: i64,
    /// Write capacity units.
    pub write_capacity_units: i64,
}

/// A global secondary index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GlobalSecondaryIndex {
    /// Index name.
    pub name: String,
    /// Partition key of the index.
    pub partition_key: KeyAttribute,
    /// Sort key of the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttribute>,
    /// Which attributes the index holds.
    #[serde(default)]
    pub projection: Projection,
    /// Capacity, required when the table is `PROVISIONED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_throughput: Option<Throughput>,
}

/// A local secondary index (same partition key as the table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalSecondaryIndex {
    /// Index name.
    pub name: String,
    /// Sort key of the index.
    pub sort_key: KeyAttribute,
    /// Which attributes the index holds.
    #[serde(default)]
    pub projection: Projection,
}

/// Index projection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Projection {
    /// `ALL` (default), `KEYS_ONLY` or `INCLUDE`.
    #[serde(rename = "type", default)]
    pub projection_type: ProjectionType,
    /// Attributes copied into the index with `INCLUDE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_key_attributes: Vec<String>,
}

/// Projection types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProjectionType {
    /// Every attribute.
    #[default]
    All,
    /// Only keys.
    KeysOnly,
    /// Keys and `nonKeyAttributes`.
    Include,
}

impl ProjectionType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "ALL",
            Self::KeysOnly => "KEYS_ONLY",
            Self::Include => "INCLUDE",
        }
    }
}

/// Encryption at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TableEncryption {
    /// `AWS_OWNED` (DynamoDB's default), `AWS_MANAGED` (the aws/dynamodb key) or `KMS` (a customer key).
    #[serde(rename = "type")]
    pub key_type: TableKeyType,
    /// KMS key id, ARN or alias, only with `KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// Who owns the key that encrypts a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TableKeyType {
    /// An AWS owned key (no KMS charges).
    AwsOwned,
    /// The AWS managed key `aws/dynamodb`.
    AwsManaged,
    /// A customer managed KMS key.
    Kms,
}

/// Time to live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ttl {
    /// Attribute holding the expiry time in epoch seconds.
    pub attribute: String,
}

/// DynamoDB Streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Streams {
    /// Whether the stream is on (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What each record holds: `NEW_IMAGE`, `OLD_IMAGE`, `NEW_AND_OLD_IMAGES` or `KEYS_ONLY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_type: Option<StreamViewType>,
}

fn yes() -> bool {
    true
}

/// Stream view types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamViewType {
    /// The item after the change.
    NewImage,
    /// The item before the change.
    OldImage,
    /// Both.
    NewAndOldImages,
    /// Only the keys.
    KeysOnly,
}

impl StreamViewType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewImage => "NEW_IMAGE",
            Self::OldImage => "OLD_IMAGE",
            Self::NewAndOldImages => "NEW_AND_OLD_IMAGES",
            Self::KeysOnly => "KEYS_ONLY",
        }
    }
}

fn valid_table_name(n: &str) -> bool {
    (3..=255).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl TableSpec {
    /// Check names, keys, indexes and settings.
    pub fn validate(&self, name: &str, cx: &mut DocCx, env_tags: &Tags) {
        if !valid_table_name(name) {
            cx.error(
                "/metadata/name",
                format_args!(
                    "table name `{name}` must be 3 to 255 letters, digits, `_`, `.` or `-`"
                ),
            );
        }
        // Every key attribute (table and indexes) must have one type.
        let mut types: std::collections::BTreeMap<String, AttributeType> = Default::default();
        let mut key = |cx: &mut DocCx, k: &KeyAttribute, p: String| {
            if k.name.is_empty() || k.name.len() > 255 {
                cx.error(
                    &format!("{p}/name"),
                    "attribute name must be 1 to 255 characters",
                );
            }
            match types.get(k.name.as_str()) {
                Some(t) if *t != k.attr_type => cx.error(
                    &format!("{p}/type"),
                    format_args!(
                        "attribute `{}` is {} here but {} elsewhere",
                        k.name,
                        k.attr_type.as_str(),
                        t.as_str()
                    ),
                ),
                _ => {
                    types.insert(k.name.clone(), k.attr_type);
                }
            }
        };
        key(cx, &self.partition_key, "/spec/partitionKey".into());
        if let Some(s) = &self.sort_key {
            key(cx, s, "/spec/sortKey".into());
            if s.name == self.partition_key.name {
                cx.error(
                    "/spec/sortKey/name",
                    "sort key must differ from the partition key",
                );
            }
        }
        let provisioned = self.billing_mode == BillingMode::Provisioned;
        if provisioned && self.provisioned_throughput.is_none() {
            cx.error(
                "/spec/provisionedThroughput",
                "required when billingMode is PROVISIONED",
            );
        }
        if !provisioned && self.provisioned_throughput.is_some() {
            cx.error(
                "/spec/provisionedThroughput",
                "only allowed when billingMode is PROVISIONED",
            );
        }
        if self.global_secondary_indexes.len() > 20 {
            cx.error(
                "/spec/globalSecondaryIndexes",
                "DynamoDB allows at most 20 global secondary indexes",
            );
        }
        if self.local_secondary_indexes.len() > 5 {
            cx.error(
                "/spec/localSecondaryIndexes",
                "DynamoDB allows at most 5 local secondary indexes",
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, g) in self.global_secondary_indexes.iter().enumerate() {
            let p = format!("/spec/globalSecondaryIndexes/{i}");
            if !valid_table_name(&g.name) {
                cx.error(
                    &format!("{p}/name"),
                    format_args!(
                        "index name `{}` must be 3 to 255 letters, digits, `_`, `.` or `-`",
                        g.name
                    ),
                );
            }
            if !names.insert(g.name.as_str()) {
                cx.error(
                    &format!("{p}/name"),
                    format_args!("index name `{}` is used twice", g.name),
                );
            }
            key(cx, &g.partition_key, format!("{p}/partitionKey"));
            if let Some(s) = &g.sort_key {
                key(cx, s, format!("{p}/sortKey"));
            }
            check_projection(cx, &g.projection, &format!("{p}/projection"));
            if provisioned && g.provisioned_throughput.is_none() {
                cx.error(
                    &format!("{p}/provisionedThroughput"),
                    "required when the table is PROVISIONED",
                );
            }
            if !provisioned && g.provisioned_throughput.is_some() {
                cx.error(
                    &format!("{p}/provisionedThroughput"),
                    "only allowed when the table is PROVISIONED",
                );
            }
        }
        if !self.local_secondary_indexes.is_empty() && self.sort_key.is_none() {
            cx.error(
                "/spec/localSecondaryIndexes",
                "local secondary indexes need a table with a sort key",
            );
        }
        for (i, l) in self.local_secondary_indexes.iter().enumerate() {
            let p = format!("/spec/localSecondaryIndexes/{i}");
            if !valid_table_name(&l.name) {
                cx.error(
                    &format!("{p}/name"),
                    format_args!(
                        "index name `{}` must be 3 to 255 letters, digits, `_`, `.` or `-`",
                        l.name
                    ),
                );
            }
            if !names.insert(l.name.as_str()) {
                cx.error(
                    &format!("{p}/name"),
                    format_args!("index name `{}` is used twice", l.name),
                );
            }
            key(cx, &l.sort_key, format!("{p}/sortKey"));
            check_projection(cx, &l.projection, &format!("{p}/projection"));
        }
        if let Some(e) = &self.encryption {
            match (e.key_type, &e.kms_key_id) {
                (TableKeyType::Kms, None) => {
                    cx.error("/spec/encryption/kmsKeyId", "required when type is KMS")
                }
                (TableKeyType::AwsOwned | TableKeyType::AwsManaged, Some(_)) => {
                    cx.error("/spec/encryption/kmsKeyId", "only allowed when type is KMS")
                }
                _ => {}
            }
        }
        if let Some(t) = &self.ttl {
            if t.attribute.is_empty() || t.attribute.len() > 255 {
                cx.error(
                    "/spec/ttl/attribute",
                    "attribute name must be 1 to 255 characters",
                );
            }
        }
        if let Some(s) = &self.streams {
            if s.enabled && s.view_type.is_none() {
                cx.error(
                    "/spec/streams/viewType",
                    "required when streams are enabled",
                );
            }
        }
        check_tags(cx, "/spec/tags", &self.tags, env_tags);
    }
}

fn check_projection(cx: &mut DocCx, p: &Projection, ptr: &str) {
    match p.projection_type {
        ProjectionType::Include if p.non_key_attributes.is_empty() => cx.error(
            &format!("{ptr}/nonKeyAttributes"),
            "required with type INCLUDE",
        ),
        ProjectionType::All | ProjectionType::KeysOnly if !p.non_key_attributes.is_empty() => cx
            .error(
                &format!("{ptr}/nonKeyAttributes"),
                "only allowed with type INCLUDE",
            ),
        _ => {}
    }
}

impl DocKind for Table {
    const KIND: Kind = Kind::Table;
    type Spec = TableSpec;

    fn validate(name: &str, spec: &TableSpec, cx: &mut DocCx, env: &EnvironmentView) {
        spec.validate(name, cx, &env.tags);
    }

    fn tags_mut(spec: &mut TableSpec) -> Option<&mut Tags> {
        Some(&mut spec.tags)
    }
}

#[cfg(feature = "runtime")]
pub mod aws;
pub mod diff;
pub mod import;
pub use diff::{Op, Table};
