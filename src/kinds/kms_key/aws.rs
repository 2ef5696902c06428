//! KmsKey: the AWS half.
//!
//! **Observing.** One ListAliases (every page) finds the key of each wanted alias and every
//! alias of those keys. Then, per key, concurrently [`CONCURRENCY`] keys at a time:
//! DescribeKey (state, spec, usage, multi-Region, description), ListResourceTags
//! (ownership), and only when the manifest manages them (or when there is no manifest to
//! say, as for import and prune) GetKeyPolicy (`default`) and GetKeyRotationStatus. No
//! manifest names a key: no request at all.
//!
//! **Creating** is two requests, CreateKey (with every tag) then CreateAlias. The create
//! step first looks for an owned key tagged with the manifest name ([`NAME_TAG`]) among the
//! keys whose aliases are all the manifest's (ListKeys, ListAliases, then ListResourceTags
//! per candidate): only at creation, so observing stays cheap. A key found is taken instead
//! of a new one (cancelled and enabled when it is pending deletion): a crash between
//! CreateKey and CreateAlias leaves no second key, and a pruned key whose manifest comes
//! back within its pending window returns with the data it encrypts. CreateKey itself is
//! sent without the SDK's retries: a request that timed out may have created the key, and
//! the next run's search finds it, where a retry would make another.
//!
//! **Errors** are read as [`KmsCode`], never by message. A principal of a key policy that
//! IAM created moments ago may not be visible to KMS yet (MalformedPolicyDocumentException):
//! CreateKey and PutKeyPolicy retry it as eventual consistency, as do the steps on a key
//! created moments ago that KMS does not find yet.
//!
//! **Emulator gaps** (moto 5.2.5), absorbed without code unless named:
//! - GetKeyRotationStatus never reports `RotationPeriodInDays` (moto does not store the
//!   period EnableKeyRotation is given): see [`emulator_rotation_period`]; the diff takes an
//!   unreported period for unknown, not drift.
//! - CreateKey without `KeyUsage` stores none (DescribeKey then reports none): the engine
//!   always sends the key spec and usage, which AWS accepts too.
//! - EnableKey, DisableKey, CancelKeyDeletion and ScheduleKeyDeletion find keys by raw id
//!   only (an ARN fails): the engine always sends the key id.
//! - A key policy with a `Deny` of `kms:*`/`kms:Describe*`/`kms:DescribeKey` on `"*"` makes
//!   moto refuse DescribeKey whatever its principal or condition; tests use no such Deny.
//! - The policy lockout safety check and key policy validation are not emulated, and
//!   rotation is accepted on any key spec: validation refuses what AWS would.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_kms::types as t;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use super::diff::{
    aliases_by_key, aliases_fit, owned_keys_named, KmsKey, KmsKeyObserved, NewKey, Op,
    RotationObserved,
};
use super::{alias_name, KmsKeySpec, NAME_TAG};
use crate::aws::{
    all_pages, retry_eventual, AwsContext, AwsError, CallCounter, ErrorClass, ServiceClient,
    ServiceCode,
};
use crate::kinds::common::Tags;
use crate::kinds::core::{has_ownership_tag, PlanCx};
use crate::kinds::runtime::{KindAws, Wanted};

/// Keys read at once (each with up to four reads, one after the other).
pub const CONCURRENCY: usize = 8;

/// The policy name KMS keys have (the only one).
const POLICY_NAME: &str = "default";

impl ServiceClient for aws_sdk_kms::Client {
    fn build(conf: &aws_config::SdkConfig, counter: CallCounter) -> Self {
        aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(conf)
                .interceptor(counter)
                .build(),
        )
    }
}

/// The KMS client of a context.
fn kms(aws: &AwsContext) -> aws_sdk_kms::Client {
    aws.client()
}

/// The KMS error codes the engine tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsCode {
    /// The key or alias does not exist.
    NotFound,
    /// The alias exists.
    AlreadyExists,
    /// The key's state does not allow the request (pending deletion, disabled, pending
    /// import, ...).
    InvalidState,
    /// The key is disabled.
    Disabled,
    /// KMS could not reach a dependency in time; try again.
    DependencyTimeout,
    /// KMS's own trouble; try again.
    Internal,
    /// A quota (keys, aliases, grants) was reached.
    LimitExceeded,
    /// A key policy KMS refuses, or one naming a principal KMS does not see (yet).
    MalformedPolicyDocument,
    /// Not for this key (rotation of an asymmetric key, say).
    UnsupportedOperation,
    /// Not allowed by the caller's IAM policy or the key policy.
    AccessDenied,
    /// A tag KMS refuses.
    Tag,
    /// A malformed ARN.
    InvalidArn,
    /// A malformed alias name.
    InvalidAliasName,
    /// A parameter KMS refuses.
    Validation,
}

impl ServiceCode for KmsCode {
    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "NotFoundException" => KmsCode::NotFound,
            "AlreadyExistsException" => KmsCode::AlreadyExists,
            "KMSInvalidStateException" => KmsCode::InvalidState,
            "DisabledException" => KmsCode::Disabled,
            "DependencyTimeoutException" => KmsCode::DependencyTimeout,
            "KMSInternalException" => KmsCode::Internal,
            "LimitExceededException" => KmsCode::LimitExceeded,
            "MalformedPolicyDocumentException" => KmsCode::MalformedPolicyDocument,
            "UnsupportedOperationException" => KmsCode::UnsupportedOperation,
            "AccessDeniedException" => KmsCode::AccessDenied,
            "TagException" => KmsCode::Tag,
            "InvalidArnException" => KmsCode::InvalidArn,
            "InvalidAliasNameException" => KmsCode::InvalidAliasName,
            "ValidationException" => KmsCode::Validation,
            _ => return None,
        })
    }

    fn class(self) -> Option<ErrorClass> {
        Some(match self {
            KmsCode::NotFound => ErrorClass::NotFound,
            KmsCode::AlreadyExists | KmsCode::InvalidState | KmsCode::Disabled => {
                ErrorClass::Conflict
            }
            KmsCode::DependencyTimeout | KmsCode::Internal => ErrorClass::Transient,
            KmsCode::LimitExceeded
            | KmsCode::MalformedPolicyDocument
            | KmsCode::UnsupportedOperation
            | KmsCode::AccessDenied
            | KmsCode::Tag
            | KmsCode::InvalidArn
            | KmsCode::InvalidAliasName
            | KmsCode::Validation => ErrorClass::Fatal,
        })
    }
}

/// Emulator workaround (moto 5.2): moto keeps no rotation period, so GetKeyRotationStatus
/// never reports `RotationPeriodInDays`. The period is then unknown (`None`), which the diff
/// does not take for drift. AWS reports the period whenever rotation is on, so there this
/// is only the conversion of what it reports.
pub fn emulator_rotation_period(reported: Option<i32>) -> Option<u32> {
    reported.and_then(|p| u32::try_from(p).ok())
}

#[async_trait]
impl KindAws for KmsKey {
    async fn observe(
        aws: &AwsContext,
        wanted: &[Wanted<'_, KmsKeySpec>],
        _: &PlanCx,
    ) -> Result<BTreeMap<String, KmsKeyObserved>, AwsError> {
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let aliases = list_aliases(aws).await?;
        let by_key = aliases_by_key(aliases.iter().map(|(a, k)| (a.as_str(), k.as_str())));
        let key_of: BTreeMap<&str, &str> = aliases
            .iter()
            .map(|(a, k)| (a.as_str(), k.as_str()))
            .collect();
        // Owned items: a closure over borrowed ones trips the Send check of async_trait.
        let items: Vec<Read> = wanted
            .iter()
            .filter_map(|w| {
                let key_id = key_of.get(alias_name(w.name).as_str())?.to_string();
                Some(Read {
                    name: w.name.to_string(),
                    aliases: by_key.get(&key_id).cloned().unwrap_or_default(),
                    key_id,
                    policy: w.spec.is_none_or(|s| s.policy.is_some()),
                    rotation: w.spec.is_none_or(|s| s.enable_key_rotation.is_some()),
                })
            })
            .collect();
        let found: Vec<Option<(String, KmsKeyObserved)>> = futures::stream::iter(items)
            .map(|r| observe_one(aws, r))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn apply(aws: &AwsContext, name: &str, op: &Op, _: &PlanCx) -> Result<(), AwsError> {
        match op {
            Op::Create { key } => create(aws, name, key).await,
            Op::CancelDeletion { key_id } => cancel_deletion(aws, key_id).await,
            Op::Enable { key_id } => {
                let (id, fresh) = resolve(aws, name, key_id).await?;
                let req = kms(aws).enable_key().key_id(id);
                send(aws, "kms:EnableKey", fresh, || req.clone().send()).await
            }
            Op::Disable { key_id } => {
                let (id, fresh) = resolve(aws, name, key_id).await?;
                let req = kms(aws).disable_key().key_id(id);
                send(aws, "kms:DisableKey", fresh, || req.clone().send()).await
            }
            Op::UpdateDescription {
                key_id,
                description,
            } => {
                let req = kms(aws)
                    .update_key_description()
                    .key_id(key_id)
                    .description(description);
                send(aws, "kms:UpdateKeyDescription", false, || {
                    req.clone().send()
                })
                .await
            }
            Op::PutPolicy { key_id, policy } => put_policy(aws, key_id, policy).await,
            Op::EnableRotation {
                key_id,
                period_in_days,
            } => {
                let (id, fresh) = resolve(aws, name, key_id).await?;
                let period = period_in_days.and_then(|p| i32::try_from(p).ok());
                let req = kms(aws)
                    .enable_key_rotation()
                    .key_id(id)
                    .set_rotation_period_in_days(period);
                send(aws, "kms:EnableKeyRotation", fresh, || req.clone().send()).await
            }
            Op::DisableRotation { key_id } => {
                let req = kms(aws).disable_key_rotation().key_id(key_id);
                send(aws, "kms:DisableKeyRotation", false, || req.clone().send()).await
            }
            Op::CreateAlias { key_id, alias } => {
                let (id, fresh) = resolve(aws, name, key_id).await?;
                create_alias(aws, &id, alias, fresh).await
            }
            Op::DeleteAlias { key_id, alias } => delete_alias(aws, key_id, alias).await,
            Op::Tag { key_id, tags } => {
                let req = kms(aws)
                    .tag_resource()
                    .key_id(key_id)
                    .set_tags(Some(tags_to_sdk(tags)?));
                send(aws, "kms:TagResource", false, || req.clone().send()).await
            }
            Op::Untag { key_id, keys } => {
                let req = kms(aws)
                    .untag_resource()
                    .key_id(key_id)
                    .set_tag_keys(Some(keys.clone()));
                send(aws, "kms:UntagResource", false, || req.clone().send()).await
            }
            Op::ScheduleDeletion {
                key_id,
                window_in_days,
            } => schedule_deletion(aws, key_id, *window_in_days).await,
        }
    }
}

/// What to read of one key.
struct Read {
    name: String,
    key_id: String,
    aliases: BTreeSet<String>,
    policy: bool,
    rotation: bool,
}

/// Every alias of the account and region (every page): `(alias/NAME, key id)`. AWS managed
/// aliases not yet used name no key and are left out.
async fn list_aliases(aws: &AwsContext) -> Result<Vec<(String, String)>, AwsError> {
    let pages = kms(aws).list_aliases().limit(100).into_paginator().send();
    let pages = all_pages::<KmsCode, _, _>("kms:ListAliases", pages).await?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.aliases.unwrap_or_default())
        .filter_map(|a| Some((a.alias_name?, a.target_key_id?)))
        .collect())
}

/// One key, or `None` when it is gone (deleted between the reads).
async fn observe_one(
    aws: &AwsContext,
    r: Read,
) -> Result<Option<(String, KmsKeyObserved)>, AwsError> {
    let read = async {
        let Some(m) = describe(aws, &r.key_id).await? else {
            return Ok(None);
        };
        let mut o = from_metadata(&m);
        o.aliases = r.aliases.clone();
        o.tags = list_tags(aws, &o.key_id).await?;
        if r.policy {
            o.policy = Some(get_policy(aws, &o.key_id).await?);
        }
        if r.rotation {
            o.rotation = rotation(aws, &o.key_id).await?;
        }
        Ok::<_, AwsError>(Some(o))
    };
    match read.await {
        Ok(o) => Ok(o.map(|o| (r.name, o))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// What DescribeKey says, in the diff's terms (aliases, tags, policy and rotation come from
/// other calls).
fn from_metadata(m: &t::KeyMetadata) -> KmsKeyObserved {
    KmsKeyObserved {
        key_id: m.key_id().to_string(),
        arn: m.arn().unwrap_or_default().to_string(),
        key_state: m
            .key_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        deletion_date: m
            .deletion_date()
            .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        description: m.description().unwrap_or_default().to_string(),
        policy: None,
        key_spec: m
            .key_spec()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        key_usage: m
            .key_usage()
            .map(|u| u.as_str().to_string())
            .unwrap_or_default(),
        multi_region: m.multi_region().unwrap_or(false),
        rotation: None,
        aliases: BTreeSet::new(),
        tags: Tags::new(),
    }
}

/// DescribeKey (by id, ARN or `alias/NAME`); `None` when there is no such key.
async fn describe(aws: &AwsContext, key: &str) -> Result<Option<t::KeyMetadata>, AwsError> {
    match kms(aws).describe_key().key_id(key).send().await {
        Ok(out) => Ok(out.key_metadata),
        Err(e) => {
            let e = KmsCode::error("kms:DescribeKey", e);
            if e.is_not_found() {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

async fn list_tags(aws: &AwsContext, key_id: &str) -> Result<Tags, AwsError> {
    let pages = kms(aws)
        .list_resource_tags()
        .key_id(key_id)
        .into_paginator()
        .send();
    let pages = all_pages::<KmsCode, _, _>("kms:ListResourceTags", pages).await?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.tags.unwrap_or_default())
        .map(|t| (t.tag_key, t.tag_value))
        .collect())
}

/// The key policy, decoded; one that does not parse is kept as its text, which compares
/// unequal to any desired policy, so the next apply overwrites it.
async fn get_policy(aws: &AwsContext, key_id: &str) -> Result<Value, AwsError> {
    let out = kms(aws)
        .get_key_policy()
        .key_id(key_id)
        .policy_name(POLICY_NAME)
        .send()
        .await
        .map_err(|e| KmsCode::error("kms:GetKeyPolicy", e))?;
    let text = out.policy.unwrap_or_default();
    Ok(mlspace_policy::decode_iam_document(&text).unwrap_or_else(|e| {
        tracing::warn!(key = key_id, error = %e, "KMS returned a key policy that does not parse");
        Value::String(text)
    }))
}

/// Automatic rotation. A key KMS cannot rotate (asymmetric, HMAC, imported material) has it
/// off; a key whose state forbids the read (pending import, say) is unknown.
async fn rotation(aws: &AwsContext, key_id: &str) -> Result<Option<RotationObserved>, AwsError> {
    match kms(aws)
        .get_key_rotation_status()
        .key_id(key_id)
        .send()
        .await
    {
        Ok(out) => Ok(Some(RotationObserved {
            enabled: out.key_rotation_enabled,
            period_in_days: emulator_rotation_period(out.rotation_period_in_days),
        })),
        Err(e) => {
            let e = KmsCode::error("kms:GetKeyRotationStatus", e);
            match e.code() {
                Some(KmsCode::UnsupportedOperation) => Ok(Some(RotationObserved::default())),
                Some(KmsCode::InvalidState) => Ok(None),
                _ => Err(e),
            }
        }
    }
}

/// Send a request built by `f`, classified by [`KmsCode`]; with `fresh` (a key created
/// moments ago), KMS not finding the key yet is retried as eventual consistency.
async fn send<T, E, F, Fut>(
    aws: &AwsContext,
    operation: &str,
    fresh: bool,
    f: F,
) -> Result<(), AwsError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    retry_eventual(aws.eventual_consistency_timeout, || {
        let fut = f();
        async move {
            fut.await.map(drop).map_err(|e| {
                let e = KmsCode::error(operation, e);
                if fresh {
                    e.reclass(KmsCode::NotFound, ErrorClass::EventualConsistency)
                } else {
                    e
                }
            })
        }
    })
    .await
}

/// The key a step names: its id, or (`None`) the key `alias/NAME` names, which a create
/// step of the same change made moments ago (then `true`: KMS may not see it everywhere yet).
async fn resolve(
    aws: &AwsContext,
    name: &str,
    key_id: &Option<String>,
) -> Result<(String, bool), AwsError> {
    if let Some(id) = key_id {
        return Ok((id.clone(), false));
    }
    let alias = &alias_name(name);
    let found = retry_eventual(aws.eventual_consistency_timeout, || async move {
        match describe(aws, alias).await? {
            Some(m) => Ok(m.key_id().to_string()),
            None => Err(AwsError::new(
                "kms:DescribeKey",
                ErrorClass::EventualConsistency,
                format!("{alias} names no key yet"),
            )),
        }
    })
    .await;
    match found {
        Ok(id) => Ok((id, true)),
        Err(e) if e.class == ErrorClass::EventualConsistency => Err(e
            .with_class(ErrorClass::NotFound)
            .explained(format!("the key of {alias} was not created"))),
        Err(e) => Err(e),
    }
}

fn tags_to_sdk(tags: &Tags) -> Result<Vec<t::Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            t::Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| AwsError::new("kms:TagResource", ErrorClass::Fatal, e.to_string()))
        })
        .collect()
}

/// The create step (see the module documentation).
async fn create(aws: &AwsContext, name: &str, k: &NewKey) -> Result<(), AwsError> {
    let alias = alias_name(name);
    // The alias may name a key already: an earlier attempt's, or someone else's.
    if let Some(m) = describe(aws, &alias).await? {
        let tags = list_tags(aws, m.key_id()).await?;
        if has_ownership_tag(&tags) {
            return Ok(());
        }
        return Err(AwsError::new(
            "kms:CreateAlias",
            ErrorClass::Conflict,
            format!(
                "{alias} already names key {}, which lacks the ownership tag; set \
                 metadata.annotations mlspace-gitops/adopt: \"true\" to take it over",
                m.key_id()
            ),
        ));
    }
    let key_id = match find_named(aws, name, &k.aliases).await? {
        Some(id) => {
            restore(aws, &id, k.enable).await?;
            id
        }
        None => create_key(aws, k).await?,
    };
    create_alias(aws, &key_id, name, true).await
}

/// The owned key tagged with the manifest name `name` whose aliases are all the manifest's
/// (`name` and `aliases`), if there is one.
async fn find_named(
    aws: &AwsContext,
    name: &str,
    aliases: &[String],
) -> Result<Option<String>, AwsError> {
    let all = list_aliases(aws).await?;
    let by_key = aliases_by_key(all.iter().map(|(a, k)| (a.as_str(), k.as_str())));
    let pages = kms(aws).list_keys().limit(1000).into_paginator().send();
    let pages = all_pages::<KmsCode, _, _>("kms:ListKeys", pages).await?;
    let none = BTreeSet::new();
    let candidates: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.keys.unwrap_or_default())
        .filter_map(|k| k.key_id)
        .filter(|id| aliases_fit(name, aliases, by_key.get(id).unwrap_or(&none)))
        .collect();
    let tagged: Vec<Option<(String, Tags)>> = futures::stream::iter(candidates)
        .map(|id| async move {
            match list_tags(aws, &id).await {
                Ok(tags) if tags.contains_key(NAME_TAG) => Ok(Some((id, tags))),
                Ok(_) => Ok(None),
                // Gone meanwhile, or a key the daemon may not read: not ours.
                Err(e) if e.is_not_found() || e.code() == Some(KmsCode::AccessDenied) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let tagged: Vec<(String, Tags)> = tagged.into_iter().flatten().collect();
    let found = owned_keys_named(name, tagged.iter().map(|(id, t)| (id, t)));
    if found.len() > 1 {
        tracing::warn!(key = name, keys = ?found, "several owned KMS keys carry this name; taking the first");
    }
    Ok(found.into_iter().next())
}

/// A key found by the create step: cancel its deletion (and enable it) when it is pending.
async fn restore(aws: &AwsContext, key_id: &str, enable: bool) -> Result<(), AwsError> {
    let pending = describe(aws, key_id)
        .await?
        .is_some_and(|m| m.key_state() == Some(&t::KeyState::PendingDeletion));
    if !pending {
        return Ok(());
    }
    tracing::info!(
        key = key_id,
        "cancelling the deletion of a key whose manifest is back"
    );
    cancel_deletion(aws, key_id).await?;
    if enable {
        let req = kms(aws).enable_key().key_id(key_id);
        send(aws, "kms:EnableKey", false, || req.clone().send()).await?;
    }
    Ok(())
}

/// CreateKey, without the SDK's retries (see the module documentation); a policy principal
/// KMS does not see yet is retried.
async fn create_key(aws: &AwsContext, k: &NewKey) -> Result<String, AwsError> {
    let policy = match &k.policy {
        Some(p) => Some(policy_text(p)?),
        None => None,
    };
    let no_retries = aws_sdk_kms::config::Builder::default()
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled());
    let req = kms(aws)
        .create_key()
        .set_description(k.description.clone())
        .set_policy(policy)
        .key_spec(t::KeySpec::from(k.key_spec.as_str()))
        .key_usage(t::KeyUsageType::from(k.key_usage.as_str()))
        .multi_region(k.multi_region)
        .set_tags(Some(tags_to_sdk(&k.tags)?));
    // Only eventual consistency is retried here (the request was refused, no key made);
    // any other failure is returned as it is, inside `Ok`, so that it is not retried.
    let created = retry_eventual(aws.eventual_consistency_timeout, || {
        let req = req.clone().customize().config_override(no_retries.clone());
        async move {
            match req.send().await {
                Ok(out) => Ok(Ok(out)),
                Err(e) => {
                    let e = KmsCode::error("kms:CreateKey", e).reclass(
                        KmsCode::MalformedPolicyDocument,
                        ErrorClass::EventualConsistency,
                    );
                    if e.class == ErrorClass::EventualConsistency {
                        Err(e)
                    } else {
                        Ok(Err(e))
                    }
                }
            }
        }
    })
    .await??;
    let id = created
        .key_metadata
        .map(|m| m.key_id)
        .ok_or_else(|| AwsError::new("kms:CreateKey", ErrorClass::Fatal, "no key metadata"))?;
    tracing::info!(key = %id, "created KMS key");
    Ok(id)
}

/// CreateAlias `alias/ALIAS` for `key_id`; an alias already naming that key is done, one
/// naming another key is a conflict.
async fn create_alias(
    aws: &AwsContext,
    key_id: &str,
    alias: &str,
    fresh: bool,
) -> Result<(), AwsError> {
    let full = alias_name(alias);
    let req = kms(aws)
        .create_alias()
        .alias_name(&full)
        .target_key_id(key_id);
    match send(aws, "kms:CreateAlias", fresh, || req.clone().send()).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(KmsCode::AlreadyExists) => match describe(aws, &full).await? {
            Some(m) if m.key_id() == key_id => Ok(()),
            Some(m) => Err(e.explained(format!(
                "{full} already names another key ({}); remove it there first",
                m.key_id()
            ))),
            // Deleted meanwhile: the next run creates it.
            None => Err(e.with_class(ErrorClass::Transient)),
        },
        Err(e) => Err(e),
    }
}

fn policy_text(policy: &Value) -> Result<String, AwsError> {
    serde_json::to_string(policy)
        .map_err(|e| AwsError::new("kms:PutKeyPolicy", ErrorClass::Fatal, e.to_string()))
}

async fn put_policy(aws: &AwsContext, key_id: &str, policy: &Value) -> Result<(), AwsError> {
    let req = kms(aws)
        .put_key_policy()
        .key_id(key_id)
        .policy_name(POLICY_NAME)
        .policy(policy_text(policy)?);
    retry_eventual(aws.eventual_consistency_timeout, || {
        let req = req.clone();
        async move {
            req.send().await.map(drop).map_err(|e| {
                KmsCode::error("kms:PutKeyPolicy", e).reclass(
                    KmsCode::MalformedPolicyDocument,
                    ErrorClass::EventualConsistency,
                )
            })
        }
    })
    .await
}

/// DeleteAlias `alias/ALIAS` when it still names `key_id`: gone is done, and an alias that
/// names another key by now is that key's.
async fn delete_alias(aws: &AwsContext, key_id: &str, alias: &str) -> Result<(), AwsError> {
    let full = alias_name(alias);
    match describe(aws, &full).await? {
        Some(m) if m.key_id() == key_id => {}
        Some(m) => {
            tracing::warn!(alias = %full, key = key_id, now = m.key_id(), "alias names another key by now; left alone");
            return Ok(());
        }
        None => return Ok(()),
    }
    let r = kms(aws)
        .delete_alias()
        .alias_name(&full)
        .send()
        .await
        .map_err(|e| KmsCode::error("kms:DeleteAlias", e));
    crate::aws::gone_ok(r)
}

/// CancelKeyDeletion, when the key is pending deletion.
async fn cancel_deletion(aws: &AwsContext, key_id: &str) -> Result<(), AwsError> {
    let Some(m) = describe(aws, key_id).await? else {
        return Err(AwsError::new(
            "kms:CancelKeyDeletion",
            ErrorClass::NotFound,
            format!("key {key_id} does not exist"),
        ));
    };
    if m.key_state() != Some(&t::KeyState::PendingDeletion) {
        return Ok(());
    }
    let req = kms(aws).cancel_key_deletion().key_id(key_id);
    send(aws, "kms:CancelKeyDeletion", false, || req.clone().send()).await
}

/// ScheduleKeyDeletion with the pending window, unless the key is pending deletion already
/// (or gone).
async fn schedule_deletion(aws: &AwsContext, key_id: &str, window: u32) -> Result<(), AwsError> {
    let Some(m) = describe(aws, key_id).await? else {
        return Ok(());
    };
    if m.key_state() == Some(&t::KeyState::PendingDeletion) {
        return Ok(());
    }
    let req = kms(aws)
        .schedule_key_deletion()
        .key_id(key_id)
        .pending_window_in_days(i32::try_from(window).unwrap_or(30));
    send(aws, "kms:ScheduleKeyDeletion", false, || req.clone().send()).await?;
    tracing::info!(
        key = key_id,
        window_in_days = window,
        "scheduled the deletion of a KMS key"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::kms_key::diff::state;
    use crate::kinds::kms_key::{KeySpec, KeyUsage};
    use crate::kinds::KindPlan;

    #[test]
    fn codes_parse_and_classify() {
        for (code, class) in [
            ("NotFoundException", ErrorClass::NotFound),
            ("AlreadyExistsException", ErrorClass::Conflict),
            ("KMSInvalidStateException", ErrorClass::Conflict),
            ("DependencyTimeoutException", ErrorClass::Transient),
            ("KMSInternalException", ErrorClass::Transient),
            ("MalformedPolicyDocumentException", ErrorClass::Fatal),
        ] {
            assert_eq!(
                KmsCode::parse(code).and_then(KmsCode::class),
                Some(class),
                "{code}"
            );
        }
        assert_eq!(KmsCode::parse("Whatever"), None);
    }

    #[test]
    fn key_states_are_spelled_as_the_diff_expects() {
        assert_eq!(t::KeyState::Enabled.as_str(), state::ENABLED);
        assert_eq!(t::KeyState::Disabled.as_str(), state::DISABLED);
        assert_eq!(
            t::KeyState::PendingDeletion.as_str(),
            state::PENDING_DELETION
        );
        // Every value a manifest may give is one the SDK knows.
        for s in KeySpec::ALL {
            assert!(t::KeySpec::values().contains(&s.as_str()), "{s:?}");
        }
        for u in [
            KeyUsage::EncryptDecrypt,
            KeyUsage::SignVerify,
            KeyUsage::GenerateVerifyMac,
            KeyUsage::KeyAgreement,
        ] {
            assert!(t::KeyUsageType::values().contains(&u.as_str()), "{u:?}");
        }
    }

    /// What CreateKey is sent, described back as KMS does, diffs to nothing.
    #[test]
    fn a_described_key_matches_its_spec() {
        let m = t::KeyMetadata::builder()
            .key_id("k1")
            .arn("arn:aws:kms:us-east-1:1:key/k1")
            .key_state(t::KeyState::Enabled)
            .description("d")
            .key_spec(t::KeySpec::SymmetricDefault)
            .key_usage(t::KeyUsageType::EncryptDecrypt)
            .multi_region(false)
            .build()
            .unwrap();
        let spec = KmsKeySpec {
            description: Some("d".into()),
            policy: None,
            policy_file: None,
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            multi_region: false,
            enable_key_rotation: None,
            rotation_period_in_days: None,
            aliases: vec![],
            deletion_window_in_days: 30,
            enabled: Some(true),
            tags: Tags::new(),
        };
        let cx = PlanCx::default();
        let mut o = from_metadata(&m);
        o.aliases = ["k".to_string()].into();
        o.tags = spec.desired_tags("k", &cx);
        assert_eq!(
            KmsKey::update("k", &spec, &o, &cx).unwrap(),
            (vec![], vec![])
        );
        assert_eq!(emulator_rotation_period(None), None);
        assert_eq!(emulator_rotation_period(Some(90)), Some(90));
    }
}
