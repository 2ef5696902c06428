//! Table: the manifest spec that describes an existing table (the `import` command).
//!
//! Keys, billing and indexes are always written (they define the table); optional
//! settings only when they differ from a new table's (an AWS owned key, point-in-time
//! recovery off, no TTL, no deletion protection, no stream).

use super::diff::{EncryptionObserved, Table, TableObserved};
use super::{
    AttributeType, BillingMode, GlobalSecondaryIndex, KeyAttribute, LocalSecondaryIndex,
    StreamViewType, Streams, TableEncryption, TableKeyType, TableSpec, Ttl,
};
use crate::kinds::core::{own_tags, Import, PlanCx};

fn key(o: &TableObserved, name: &str) -> KeyAttribute {
    KeyAttribute {
        name: name.to_string(),
        // DynamoDB reports every key attribute's type; a missing one is the common `S`.
        attr_type: o
            .attribute_types
            .get(name)
            .copied()
            .unwrap_or(AttributeType::S),
    }
}

fn encryption(e: &EncryptionObserved) -> Option<TableEncryption> {
    match e {
        EncryptionObserved::AwsOwned => None,
        // Not known to be a customer key: the AWS managed key (either type is in sync).
        EncryptionObserved::Kms {
            aws_managed: Some(true) | None,
            ..
        } => Some(TableEncryption {
            key_type: TableKeyType::AwsManaged,
            kms_key_id: None,
        }),
        EncryptionObserved::Kms {
            key_arn,
            aws_managed: Some(false),
        } => Some(TableEncryption {
            key_type: TableKeyType::Kms,
            kms_key_id: Some(key_arn.clone()),
        }),
    }
}

/// The spec of `o` (observed with every setting read).
pub fn spec(o: &TableObserved) -> TableSpec {
    let provisioned = o.billing_mode == BillingMode::Provisioned;
    TableSpec {
        partition_key: key(o, &o.partition_key),
        sort_key: o.sort_key.as_deref().map(|s| key(o, s)),
        billing_mode: o.billing_mode,
        provisioned_throughput: o.provisioned_throughput.filter(|_| provisioned),
        global_secondary_indexes: o
            .global_secondary_indexes
            .iter()
            .filter(|(_, g)| g.status != "DELETING")
            .map(|(n, g)| GlobalSecondaryIndex {
                name: n.clone(),
                partition_key: key(o, &g.partition_key),
                sort_key: g.sort_key.as_deref().map(|s| key(o, s)),
                projection: g.projection.clone(),
                provisioned_throughput: g.provisioned_throughput.filter(|_| provisioned),
            })
            .collect(),
        local_secondary_indexes: o
            .local_secondary_indexes
            .iter()
            .map(|(n, l)| LocalSecondaryIndex {
                name: n.clone(),
                sort_key: key(o, &l.sort_key),
                projection: l.projection.clone(),
            })
            .collect(),
        encryption: encryption(&o.encryption),
        point_in_time_recovery: o.point_in_time_recovery.filter(|p| *p),
        ttl: o
            .ttl
            .as_ref()
            .filter(|t| t.enabled)
            .and_then(|t| t.attribute.clone())
            .map(|attribute| Ttl { attribute }),
        deletion_protection: o.deletion_protection.then_some(true),
        streams: o.streams.map(|v: StreamViewType| Streams {
            enabled: true,
            view_type: Some(v),
        }),
        tags: own_tags(&o.tags),
    }
}

impl Import for Table {
    fn import(_: &str, o: &TableObserved, _: &PlanCx) -> TableSpec {
        spec(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::table::diff::GsiObserved;
    use crate::kinds::table::Projection;

    #[test]
    fn keys_and_indexes_with_their_types_and_no_defaults() {
        let o = TableObserved {
            arn: "arn:aws:dynamodb:us-east-1:123456789012:table/t".into(),
            status: "ACTIVE".into(),
            partition_key: "pk".into(),
            sort_key: Some("sk".into()),
            attribute_types: [
                ("pk".to_string(), AttributeType::S),
                ("sk".to_string(), AttributeType::N),
                ("g".to_string(), AttributeType::B),
            ]
            .into(),
            billing_mode: BillingMode::PayPerRequest,
            global_secondary_indexes: [(
                "by-g".to_string(),
                GsiObserved {
                    partition_key: "g".into(),
                    sort_key: None,
                    projection: Projection::default(),
                    provisioned_throughput: None,
                    status: "ACTIVE".into(),
                },
            )]
            .into(),
            point_in_time_recovery: Some(false),
            ..TableObserved::default()
        };
        let s = spec(&o);
        assert_eq!(s.sort_key.unwrap().attr_type, AttributeType::N);
        assert_eq!(
            s.global_secondary_indexes[0].partition_key.attr_type,
            AttributeType::B
        );
        assert_eq!(s.point_in_time_recovery, None);
        assert_eq!(s.encryption, None);
    }
}
