//! State store fixtures: inventory entries and history records of environment `dev`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use mlspace_gitops::aws::AwsContext;
use mlspace_gitops::kinds::Kind;
use mlspace_gitops::plan::Action;

use super::Clients as _;
use mlspace_gitops::state::dynamodb::{PK, SK};
use mlspace_gitops::state::{
    spec_digest, ChangeResult, HistoryChange, HistoryRecord, InventoryEntry, StateError,
};

/// An inventory entry in environment `dev`.
pub fn entry(kind: Kind, name: &str, revision: &str) -> InventoryEntry {
    InventoryEntry {
        kind,
        name: name.into(),
        arn: (kind == Kind::Role).then(|| format!("arn:aws:iam::123456789012:role/{name}")),
        environment: "dev".into(),
        revision: revision.into(),
        spec_digest: spec_digest(&serde_json::json!({ "name": name })),
        updated_at: 1_700_000_000_000,
        retain: false,
        force_destroy: false,
        creating: false,
    }
}

/// A history record of environment `dev` at `at`: one change that went through, one that
/// failed, and a message with a body.
pub fn record(at: u64, revision: &str) -> HistoryRecord {
    HistoryRecord {
        environment: "dev".into(),
        at,
        revision: revision.into(),
        author: Some("Ada <ada@example.com>".into()),
        message: Some(format!("change {revision}\n\nwith a body")),
        changes: vec![
            HistoryChange {
                kind: Kind::Role,
                name: "app-role".into(),
                action: Action::Create,
                result: ChangeResult::Success,
                error: None,
            },
            HistoryChange {
                kind: Kind::Bucket,
                name: "mlspace-data".into(),
                action: Action::Delete,
                result: ChangeResult::Failure,
                error: Some("BucketNotEmpty".into()),
            },
        ],
        result: "partial".into(),
    }
}

/// Write an item of environment `dev` with sort key `sk` and these attributes straight into
/// the DynamoDB state table `table`, as a bad copy or a hand edit would.
pub async fn put_raw(aws: &AwsContext, table: &str, sk: &str, attrs: &[(&str, AttributeValue)]) {
    let mut item: HashMap<String, AttributeValue> = attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    item.insert(PK.into(), AttributeValue::S("env#dev".into()));
    item.insert(SK.into(), AttributeValue::S(sk.into()));
    aws.dynamodb()
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

/// The location and detail of a [`StateError::Corrupt`]; panics on any other error.
pub fn corrupt(err: StateError) -> (String, String) {
    match err {
        StateError::Corrupt { location, detail } => (location, detail),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
