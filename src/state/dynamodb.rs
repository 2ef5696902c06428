//! The DynamoDB backend: one table (created if missing: on-demand, `pk` (S) hash key and `sk`
//! (S) range key) shared by every environment and replica. Items, all under
//! `pk = "env#<environment>"`:
//!
//! | `sk` | attributes |
//! |---|---|
//! | `res#<Kind>#<name>` | one [`InventoryEntry`]: `kind`, `name`, `arn`, `environment`, `revision`, `spec_digest`, `updated_at`, `retain`, `force_destroy`, `creating` |
//! | `hist#<at, 20 digits>#<8 hex>` | one [`HistoryRecord`]; the random suffix keeps two records of the same millisecond apart |
//! | `lease` | `holder` (absent once released), `token` (N), `expires_at_ms` (N) |
//! | `suspended` | one [`Suspension`]: `environment`, `reason`, `by`, `at_ms` (N); present only while suspended |
//!
//!
//! and, under `pk = "cluster"`, what every replica reads in one query:
//!
//! | `sk` | attributes |
//! |---|---|
//! | `replica#<id>` | a replica's heartbeat: `id`, `cap`, `expires_at_ms` |
//! | `envinfo#<environment>` | `environment`, `holder` (who took its lease or reconciled it last), `last_reconciled_ms` |
//!
//! Lease changes are conditional puts on the exact state read just before (compare and
//! swap), so two replicas racing for one lease cannot both win. Inventory and history writes
//! are transactions whose first item is a condition check that the lease item still carries
//! the writer's holder and token: a replica whose lease was taken over cannot write.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, Put, ScalarAttributeType, TableDescription, TableStatus, TransactWriteItem,
};
use aws_smithy_types::error::operation::BuildError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    check_entries, check_environment, now_ms, path_error, EnvironmentRecord, HistoryRecord,
    InventoryEntry, Lease, ReplicaRecord, StateError, StateStore, Suspension,
};
use crate::aws::{dynamodb, AwsContext, DynamoDbCode, ErrorClass, ServiceCode};
use crate::kinds::Kind;
use crate::plan::ResourceId;

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Sort key of the lease item.
pub const LEASE_SK: &str = "lease";
/// Partition of the replica heartbeats and the Environments' overview.
pub const CLUSTER_PK: &str = "cluster";

/// Sort key of the suspension item.
pub const SUSPENDED_SK: &str = "suspended";

/// How long to wait for a new table to become ACTIVE.
const TABLE_WAIT: Duration = Duration::from_secs(120);

/// DynamoDB's limit of items per transaction.
const MAX_TRANSACT_ITEMS: usize = 100;

/// State in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    page_size: Option<i32>,
}

/// The lease item's attributes.
#[derive(Debug, Deserialize)]
struct LeaseItem {
    #[serde(default)]
    holder: Option<String>,
    token: u64,
    expires_at_ms: u64,
}

/// `pk` of an environment's items.
pub fn partition_key(environment: &str) -> String {
    format!("env#{environment}")
}

/// `sk` of an inventory item.
pub fn resource_sort_key(kind: Kind, name: &str) -> String {
    format!("res#{kind}#{name}")
}

/// `sk` of a history item recorded at `at` (ms since the epoch).
pub fn history_sort_key(at: u64) -> String {
    format!("hist#{at:020}#{:08x}", rand::random::<u32>())
}

impl DynamoStore {
    /// Use `table`, creating it when missing and waiting until it is ACTIVE.
    pub async fn open(aws: &AwsContext, table: &str) -> Result<DynamoStore, StateError> {
        let store = DynamoStore {
            client: dynamodb(aws).clone(),
            table: table.to_string(),
            page_size: None,
        };
        store.ensure_table().await?;
        Ok(store)
    }

    /// Ask for at most `n` items per Query page (DynamoDB pages at 1 MB regardless).
    pub fn with_page_size(mut self, n: i32) -> DynamoStore {
        self.page_size = Some(n.max(1));
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn ensure_table(&self) -> Result<(), StateError> {
        let deadline = Instant::now() + TABLE_WAIT;
        let mut created = false;
        loop {
            match self.describe().await? {
                Some(t) => {
                    self.check_schema(&t)?;
                    match t.table_status() {
                        // UPDATING tables serve reads and writes.
                        Some(TableStatus::Active) | Some(TableStatus::Updating) => return Ok(()),
                        Some(TableStatus::Creating) | None => {}
                        Some(other) => {
                            return Err(self.table_error(format!("table is {}", other.as_str())))
                        }
                    }
                }
                None if !created => {
                    self.create().await?;
                    created = true;
                    continue;
                }
                None => {}
            }
            if Instant::now() > deadline {
                return Err(self.table_error(format!("not ACTIVE after {TABLE_WAIT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn describe(&self) -> Result<Option<TableDescription>, StateError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => Ok(out.table),
            Err(e) => {
                let e = DynamoDbCode::error("dynamodb:DescribeTable", e);
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(e.into())
                }
            }
        }
    }

    async fn create(&self) -> Result<(), StateError> {
        let attr = |n: &str| {
            built(
                AttributeDefinition::builder()
                    .attribute_name(n)
                    .attribute_type(ScalarAttributeType::S)
                    .build(),
            )
        };
        let key = |n: &str, k: KeyType| {
            built(
                KeySchemaElement::builder()
                    .attribute_name(n)
                    .key_type(k)
                    .build(),
            )
        };
        tracing::info!(table = %self.table, "creating the state table");
        let res = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK))
            .attribute_definitions(attr(SK))
            .key_schema(key(PK, KeyType::Hash))
            .key_schema(key(SK, KeyType::Range))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // Another replica created it first: wait for it like for our own.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateTableError::ResourceInUseException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(DynamoDbCode::error("dynamodb:CreateTable", e).into()),
        }
    }

    /// An existing table must have exactly our keys, or every item would be misread.
    fn check_schema(&self, t: &TableDescription) -> Result<(), StateError> {
        let key_of = |kt: KeyType| {
            t.key_schema()
                .iter()
                .find(|k| k.key_type() == &kt)
                .map(|k| k.attribute_name())
        };
        let type_of = |name: &str| {
            t.attribute_definitions()
                .iter()
                .find(|a| a.attribute_name() == name)
                .map(|a| a.attribute_type().clone())
        };
        let ok = key_of(KeyType::Hash) == Some(PK)
            && key_of(KeyType::Range) == Some(SK)
            && type_of(PK) == Some(ScalarAttributeType::S)
            && type_of(SK) == Some(ScalarAttributeType::S);
        if ok {
            Ok(())
        } else {
            Err(self.table_error(format!(
                "exists with another key schema; expected {PK} (S, hash) and {SK} (S, range)"
            )))
        }
    }

    fn table_error(&self, detail: String) -> StateError {
        StateError::Table {
            table: self.table.clone(),
            detail,
        }
    }

    fn corrupt(&self, pk: &str, sk: &str, detail: String) -> StateError {
        StateError::Corrupt {
            location: format!("dynamodb://{} item pk={pk:?} sk={sk:?}", self.table),
            detail,
        }
    }

    /// Every item of `environment` whose sort key starts with `prefix`, following pages, at
    /// most `limit` when given.
    async fn query(
        &self,
        environment: &str,
        prefix: &str,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StateError> {
        self.query_partition(&partition_key(environment), prefix, newest_first, limit)
            .await
    }

    /// Every item of partition `pk` whose sort key starts with `prefix`, following pages,
    /// at most `limit` when given.
    async fn query_partition(
        &self,
        pk: &str,
        prefix: &str,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StateError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let remaining = limit.map(|l| l.saturating_sub(items.len()));
            let page = match (remaining, self.page_size) {
                (Some(r), Some(p)) => Some(p.min(r.min(i32::MAX as usize) as i32)),
                (Some(r), None) => Some(r.min(i32::MAX as usize) as i32),
                (None, p) => p,
            };
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .scan_index_forward(!newest_first)
                .set_limit(page)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| DynamoDbCode::error("dynamodb:Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() || limit.is_some_and(|l| items.len() >= l) {
                return Ok(items);
            }
        }
    }

    /// Decode one item (without its keys) into `T`; Corrupt naming the key otherwise.
    fn decode<T: DeserializeOwned>(
        &self,
        environment: &str,
        item: HashMap<String, AttributeValue>,
    ) -> Result<(String, T), StateError> {
        self.decode_in(&partition_key(environment), item)
    }

    /// [`DynamoStore::decode`] of an item of partition `pk`.
    fn decode_in<T: DeserializeOwned>(
        &self,
        pk: &str,
        item: HashMap<String, AttributeValue>,
    ) -> Result<(String, T), StateError> {
        let sk = match item.get(SK) {
            Some(AttributeValue::S(sk)) => sk.clone(),
            _ => return Err(self.corrupt(pk, "?", format!("no string attribute {SK}"))),
        };
        let mut obj = serde_json::Map::new();
        for (name, attr) in item {
            if name == PK || name == SK {
                continue;
            }
            let v = from_attr(&attr).map_err(|d| self.corrupt(pk, &sk, format!("{name}: {d}")))?;
            obj.insert(name, v);
        }
        let value = serde_path_to_error::deserialize::<_, T>(Value::Object(obj))
            .map_err(|e| self.corrupt(pk, &sk, path_error(&e)))?;
        Ok((sk, value))
    }

    async fn get_lease(&self, environment: &str) -> Result<Option<LeaseItem>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(partition_key(environment)))
            .key(SK, s(LEASE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoDbCode::error("dynamodb:GetItem", e))?;
        match out.item {
            None => Ok(None),
            Some(item) => Ok(Some(self.decode(environment, item)?.1)),
        }
    }

    /// Write `writes` in transactions; with `fence`, each starts with a check that the lease
    /// is still the writer's. Beyond one transaction's size the chunks commit one by one.
    async fn transact(
        &self,
        environment: &str,
        writes: Vec<TransactWriteItem>,
        fence: Option<&Lease>,
    ) -> Result<(), StateError> {
        let fenced = || StateError::Fenced {
            environment: environment.to_string(),
            token: fence.map_or(0, |f| f.token),
        };
        if fence.is_some_and(|f| f.environment != environment) {
            return Err(fenced());
        }
        let check = fence.map(|f| {
            let cc = ConditionCheck::builder()
                .table_name(&self.table)
                .key(PK, s(partition_key(environment)))
                .key(SK, s(LEASE_SK))
                .condition_expression("#h = :me AND #t = :token")
                .expression_attribute_names("#h", "holder")
                .expression_attribute_names("#t", "token")
                .expression_attribute_values(":me", s(&f.holder))
                .expression_attribute_values(":token", n(f.token));
            TransactWriteItem::builder()
                .condition_check(built(cc.build()))
                .build()
        });
        let per_tx = MAX_TRANSACT_ITEMS - usize::from(check.is_some());
        // Nothing to write still answers whether the lease is current.
        let chunks: Vec<&[TransactWriteItem]> = if writes.is_empty() {
            if check.is_none() {
                return Ok(());
            }
            vec![&[]]
        } else {
            writes.chunks(per_tx).collect()
        };
        for chunk in chunks {
            let items: Vec<_> = check.iter().chain(chunk).cloned().collect();
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let Err(e) = res else { continue };
            // The condition check is the first item: its failure is the lost lease.
            if let Some(TransactWriteItemsError::TransactionCanceledException(tc)) =
                e.as_service_error()
            {
                let first = tc.cancellation_reasons().first().and_then(|r| r.code());
                if check.is_some() && first == Some("ConditionalCheckFailed") {
                    return Err(fenced());
                }
            }
            return Err(DynamoDbCode::error("dynamodb:TransactWriteItems", e)
                .reclass(DynamoDbCode::TransactionCanceled, ErrorClass::Transient)
                .into());
        }
        Ok(())
    }

    fn put(&self, item: HashMap<String, AttributeValue>) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build();
        TransactWriteItem::builder().put(built(put)).build()
    }

    fn delete(&self, pk: String, sk: String) -> TransactWriteItem {
        let del = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .build();
        TransactWriteItem::builder().delete(built(del)).build()
    }

    /// One conditional put of the lease item; `Ok(false)` when the condition failed.
    async fn put_lease(
        &self,
        environment: &str,
        holder: &str,
        token: u64,
        expires_at_ms: u64,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StateError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(partition_key(environment)))
            .item(SK, s(LEASE_SK))
            .item("holder", s(holder))
            .item("token", n(token))
            .item("expires_at_ms", n(expires_at_ms))
            .condition_expression(condition);
        for name in ["pk", "holder", "token", "expires_at_ms"] {
            if condition.contains(&format!("#{name}")) {
                req = req.expression_attribute_names(format!("#{name}"), name);
            }
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(DynamoDbCode::error("dynamodb:PutItem", e).into()),
        }
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    fn location(&self) -> String {
        format!("dynamodb://{}", self.table)
    }

    async fn inventory(&self, environment: &str) -> Result<Vec<InventoryEntry>, StateError> {
        check_environment(environment)?;
        let items = self.query(environment, "res#", false, None).await?;
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let (sk, e): (_, InventoryEntry) = self.decode(environment, item)?;
            // The key is the identity; attributes that disagree with it are not trusted.
            if sk != resource_sort_key(e.kind, &e.name) || e.environment != environment {
                return Err(self.corrupt(
                    &partition_key(environment),
                    &sk,
                    format!(
                        "the key does not match the attributes (kind {}, name {:?}, environment {:?})",
                        e.kind, e.name, e.environment
                    ),
                ));
            }
            entries.push(e);
        }
        entries.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        Ok(entries)
    }

    async fn record(
        &self,
        environment: &str,
        upserts: &[InventoryEntry],
        removals: &[ResourceId],
        fence: Option<&Lease>,
    ) -> Result<(), StateError> {
        check_entries(environment, upserts)?;
        let pk = partition_key(environment);
        // One write per key (a transaction may not touch an item twice); removals win.
        let mut writes = BTreeMap::new();
        for u in upserts {
            let sk = resource_sort_key(u.kind, &u.name);
            let mut item = item_of(u);
            item.insert(PK.into(), s(&pk));
            item.insert(SK.into(), s(&sk));
            writes.insert(sk, self.put(item));
        }
        for (kind, name) in removals {
            let sk = resource_sort_key(*kind, name);
            writes.insert(sk.clone(), self.delete(pk.clone(), sk));
        }
        self.transact(environment, writes.into_values().collect(), fence)
            .await
    }

    async fn append_history(
        &self,
        rec: &HistoryRecord,
        fence: Option<&Lease>,
    ) -> Result<(), StateError> {
        check_environment(&rec.environment)?;
        let mut item = item_of(rec);
        item.insert(PK.into(), s(partition_key(&rec.environment)));
        item.insert(SK.into(), s(history_sort_key(rec.at)));
        self.transact(&rec.environment, vec![self.put(item)], fence)
            .await
    }

    async fn history(
        &self,
        environment: &str,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>, StateError> {
        check_environment(environment)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self.query(environment, "hist#", true, Some(limit)).await?;
        let mut records = Vec::with_capacity(items.len());
        for item in items {
            records.push(self.decode(environment, item)?.1);
        }
        Ok(records)
    }

    async fn acquire_lease(
        &self,
        environment: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StateError> {
        check_environment(environment)?;
        // A lost compare-and-swap means someone changed the lease meanwhile: look again.
        for _ in 0..3 {
            let now = now_ms();
            let expires_at_ms = now.saturating_add(ttl.as_millis() as u64);
            let current = self.get_lease(environment).await?;
            let (token, condition, values) = match &current {
                None => (1, "attribute_not_exists(#pk)", vec![]),
                Some(l) if l.holder.as_deref() == Some(holder) => (
                    l.token,
                    "#holder = :me AND #token = :token",
                    vec![(":me", s(holder)), (":token", n(l.token))],
                ),
                Some(l) if l.holder.is_none() || l.expires_at_ms < now => (
                    l.token + 1,
                    // Exactly the state read: a renewal in between changes the expiry.
                    "#token = :token AND #expires_at_ms = :expires",
                    vec![(":token", n(l.token)), (":expires", n(l.expires_at_ms))],
                ),
                Some(l) => {
                    return Err(StateError::LeaseHeld {
                        environment: environment.to_string(),
                        holder: l.holder.clone().unwrap_or_default(),
                        expires_at_ms: l.expires_at_ms,
                    })
                }
            };
            if self
                .put_lease(environment, holder, token, expires_at_ms, condition, values)
                .await?
            {
                if current.as_ref().is_none_or(|c| c.token != token) {
                    // Best effort: the overview names the new holder; its first completed
                    // reconcile (mark_reconciled) writes it again.
                    let _ = self
                        .client
                        .update_item()
                        .table_name(&self.table)
                        .key(PK, s(CLUSTER_PK))
                        .key(SK, s(envinfo_sort_key(environment)))
                        .update_expression("SET #env = :env, #h = :h")
                        .expression_attribute_names("#env", "environment")
                        .expression_attribute_names("#h", "holder")
                        .expression_attribute_values(":env", s(environment))
                        .expression_attribute_values(":h", s(holder))
                        .send()
                        .await;
                }
                return Ok(Lease {
                    environment: environment.to_string(),
                    holder: holder.to_string(),
                    token,
                    expires_at_ms,
                });
            }
        }
        let current = self.get_lease(environment).await?;
        Err(StateError::LeaseHeld {
            environment: environment.to_string(),
            holder: current
                .as_ref()
                .and_then(|l| l.holder.clone())
                .unwrap_or_default(),
            expires_at_ms: current.map_or(0, |l| l.expires_at_ms),
        })
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StateError> {
        check_environment(&lease.environment)?;
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(partition_key(&lease.environment)))
            .key(SK, s(LEASE_SK))
            // The token stays so the next holder's is greater.
            .update_expression("REMOVE #h SET #e = :zero")
            .condition_expression("#h = :me AND #t = :token")
            .expression_attribute_names("#h", "holder")
            .expression_attribute_names("#t", "token")
            .expression_attribute_names("#e", "expires_at_ms")
            .expression_attribute_values(":me", s(&lease.holder))
            .expression_attribute_values(":token", n(lease.token))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // Already lost or taken over: nothing of ours to release.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(DynamoDbCode::error("dynamodb:UpdateItem", e).into()),
        }
    }

    async fn suspension(&self, environment: &str) -> Result<Option<Suspension>, StateError> {
        check_environment(environment)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(partition_key(environment)))
            .key(SK, s(SUSPENDED_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoDbCode::error("dynamodb:GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let (sk, found): (String, Suspension) = self.decode(environment, item)?;
        if found.environment != environment {
            return Err(self.corrupt(
                &partition_key(environment),
                &sk,
                format!(
                    "holds environment {:?}, expected {environment:?}",
                    found.environment
                ),
            ));
        }
        Ok(Some(found))
    }

    async fn set_suspension(
        &self,
        environment: &str,
        suspension: Option<&Suspension>,
    ) -> Result<(), StateError> {
        check_environment(environment)?;
        let pk = partition_key(environment);
        match suspension {
            Some(found) if found.environment != environment => Err(StateError::WrongEnvironment {
                expected: environment.to_string(),
                found: found.environment.clone(),
            }),
            Some(found) => {
                let mut item = item_of(found);
                item.insert(PK.into(), s(pk));
                item.insert(SK.into(), s(SUSPENDED_SK));
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map_err(|e| DynamoDbCode::error("dynamodb:PutItem", e))?;
                Ok(())
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key(PK, s(pk))
                    .key(SK, s(SUSPENDED_SK))
                    .send()
                    .await
                    .map_err(|e| DynamoDbCode::error("dynamodb:DeleteItem", e))?;
                Ok(())
            }
        }
    }

    async fn heartbeat(&self, replica: &ReplicaRecord) -> Result<(), StateError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(CLUSTER_PK))
            .item(SK, s(replica_sort_key(&replica.id)))
            .item("id", s(&replica.id))
            .item("expires_at_ms", n(replica.expires_at_ms));
        if let Some(cap) = replica.cap {
            req = req.item("cap", n(u64::from(cap)));
        }
        req.send()
            .await
            .map_err(|e| DynamoDbCode::error("dynamodb:PutItem", e))?;
        Ok(())
    }

    async fn leave(&self, replica: &str) -> Result<(), StateError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(CLUSTER_PK))
            .key(SK, s(replica_sort_key(replica)))
            .send()
            .await
            .map_err(|e| DynamoDbCode::error("dynamodb:DeleteItem", e))?;
        Ok(())
    }

    async fn replicas(&self) -> Result<Vec<ReplicaRecord>, StateError> {
        let now = now_ms();
        let mut out = Vec::new();
        for item in self
            .query_partition(CLUSTER_PK, "replica#", false, None)
            .await?
        {
            let r: ReplicaRecord = self.decode_in(CLUSTER_PK, item)?.1;
            if r.expires_at_ms >= now {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn mark_reconciled(&self, lease: &Lease, at_ms: u64) -> Result<(), StateError> {
        check_environment(&lease.environment)?;
        let mut item = HashMap::new();
        item.insert(PK.to_string(), s(CLUSTER_PK));
        item.insert(SK.to_string(), s(envinfo_sort_key(&lease.environment)));
        item.insert("environment".to_string(), s(&lease.environment));
        item.insert("holder".to_string(), s(&lease.holder));
        item.insert("last_reconciled_ms".to_string(), n(at_ms));
        self.transact(&lease.environment, vec![self.put(item)], Some(lease))
            .await
    }

    async fn environments(&self) -> Result<Vec<EnvironmentRecord>, StateError> {
        let mut out = Vec::new();
        for item in self
            .query_partition(CLUSTER_PK, "envinfo#", false, None)
            .await?
        {
            let e: EnvInfoItem = self.decode_in(CLUSTER_PK, item)?.1;
            out.push(EnvironmentRecord {
                environment: e.environment,
                holder: e.holder,
                last_reconciled_ms: e.last_reconciled_ms,
            });
        }
        out.sort_by(|a, b| a.environment.cmp(&b.environment));
        Ok(out)
    }
}

/// An `envinfo#` item's attributes.
#[derive(Debug, Deserialize)]
struct EnvInfoItem {
    environment: String,
    #[serde(default)]
    holder: Option<String>,
    #[serde(default)]
    last_reconciled_ms: Option<u64>,
}

/// `sk` of a replica's heartbeat.
fn replica_sort_key(id: &str) -> String {
    format!("replica#{id}")
}

/// `sk` of an Environment's overview item.
fn envinfo_sort_key(environment: &str) -> String {
    format!("envinfo#{environment}")
}

fn built<T>(r: Result<T, BuildError>) -> T {
    r.expect("every required field is set")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A struct's fields as item attributes (absent options are left out).
fn item_of<T: Serialize>(x: &T) -> HashMap<String, AttributeValue> {
    match to_attr(&serde_json::to_value(x).expect("state serializes")) {
        AttributeValue::M(m) => m,
        _ => unreachable!("state records serialize to objects"),
    }
}

fn to_attr(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(x) => AttributeValue::N(x.to_string()),
        Value::String(x) => AttributeValue::S(x.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attr).collect()),
        Value::Object(m) => AttributeValue::M(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), to_attr(v)))
                .collect(),
        ),
    }
}

fn from_attr(a: &AttributeValue) -> Result<Value, String> {
    Ok(match a {
        AttributeValue::S(x) => Value::String(x.clone()),
        AttributeValue::N(x) => {
            let num = if let Ok(u) = x.parse::<u64>() {
                serde_json::Number::from(u)
            } else if let Ok(i) = x.parse::<i64>() {
                serde_json::Number::from(i)
            } else {
                x.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .ok_or_else(|| format!("number {x:?} out of range"))?
            };
            Value::Number(num)
        }
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(from_attr).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), from_attr(v).map_err(|e| format!("{k}: {e}"))?)))
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("unsupported attribute type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::state::{ChangeResult, HistoryChange};

    #[test]
    fn records_survive_the_attribute_encoding() {
        let rec = HistoryRecord {
            environment: "dev".into(),
            at: 1_700_000_000_123,
            revision: "abc".into(),
            author: Some("Ada <ada@example.com>".into()),
            message: None,
            changes: vec![HistoryChange {
                kind: Kind::Bucket,
                name: "b".into(),
                action: Action::Update,
                result: ChangeResult::Success,
                error: None,
            }],
            result: "success".into(),
        };
        let item = item_of(&rec);
        assert!(!item.contains_key("message"), "absent options are left out");
        let back = from_attr(&AttributeValue::M(item)).unwrap();
        assert_eq!(serde_json::from_value::<HistoryRecord>(back).unwrap(), rec);
    }

    #[test]
    fn history_keys_sort_by_time() {
        let (a, b) = (history_sort_key(999), history_sort_key(1_000));
        assert!(a < b, "{a} < {b}");
        assert_eq!(resource_sort_key(Kind::Role, "r#1"), "res#Role#r#1");
    }
}
