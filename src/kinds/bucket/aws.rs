//! Bucket: observe and change in S3.
//!
//! Observing a bucket reads its tags first: `NoSuchBucket` there means the bucket is absent,
//! `NoSuchTagSet` means no tags. The settings the caller wants ([`Wanted`]) are then read
//! concurrently, one request each; S3's "no such configuration" answers mean "not set".
//! Buckets are observed [`CONCURRENCY`] at a time.
//!
//! Most S3 errors are not modeled by the SDK, so they are told apart by the service's
//! error code (`ProvideErrorMetadata::code`, never the message); the modeled ones
//! (CreateBucket's `BucketAlreadyOwnedByYou`/`BucketAlreadyExists`) by type.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::error::BuildError;
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
use aws_sdk_s3::operation::get_bucket_website::GetBucketWebsiteOutput;
use aws_sdk_s3::types as s3;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use super::diff::{
    Bucket, BucketObserved, ObservedEncryption, ObservedLifecycleRule, ObservedNotifications,
    ObservedWebsite, Op, Setting, Versioning, Wanted,
};
use super::{
    BucketEncryption, BucketLogging, BucketNotifications, BucketWebsite, CorsRule, LifecycleRule,
    NotificationDestination, NotificationFilter, ObjectOwnership, PublicAccessBlock, Redirect,
    RedirectAllRequestsTo, RedirectProtocol, RoutingCondition, RoutingRule, Transition,
};
use crate::aws::{
    emulator, gone_ok, retry_eventual, AwsContext, AwsError, CallCounter, ErrorClass,
    ServiceClient, ServiceCode,
};
use crate::kinds::common::Tags;
use crate::kinds::core::PlanCx;
use crate::kinds::runtime::KindAws;

/// Buckets observed at the same time (each with up to 10 setting reads in flight).
pub const CONCURRENCY: usize = 8;

impl ServiceClient for aws_sdk_s3::Client {
    fn build(conf: &aws_config::SdkConfig, counter: CallCounter) -> Self {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(conf)
                .force_path_style(emulator::s3_path_style(conf))
                .interceptor(counter)
                .build(),
        )
    }
}

/// The S3 client of a context.
fn s3(aws: &AwsContext) -> aws_sdk_s3::Client {
    aws.client()
}

/// The S3 error codes the engine tells apart. Most "not configured" answers of the setting
/// reads are codes without a modeled error variant, so they are named here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Code {
    /// The bucket does not exist.
    NoSuchBucket,
    /// Someone else's bucket of that name.
    BucketAlreadyExists,
    /// Objects are left in a bucket to delete.
    BucketNotEmpty,
    /// "A conflicting conditional operation is currently in progress": S3 says retry.
    OperationAborted,
    /// No tags.
    NoSuchTagSet,
    /// No default encryption configuration.
    ServerSideEncryptionConfigurationNotFound,
    /// No public access block.
    NoSuchPublicAccessBlockConfiguration,
    /// No bucket policy.
    NoSuchBucketPolicy,
    /// No CORS rules.
    NoSuchCorsConfiguration,
    /// No lifecycle rules.
    NoSuchLifecycleConfiguration,
    /// No object ownership controls.
    OwnershipControlsNotFound,
    /// No website configuration.
    NoSuchWebsiteConfiguration,
}

impl ServiceCode for S3Code {
    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "NoSuchBucket" => S3Code::NoSuchBucket,
            "BucketAlreadyExists" => S3Code::BucketAlreadyExists,
            "BucketNotEmpty" => S3Code::BucketNotEmpty,
            "OperationAborted" => S3Code::OperationAborted,
            "NoSuchTagSet" => S3Code::NoSuchTagSet,
            "ServerSideEncryptionConfigurationNotFoundError" => {
                S3Code::ServerSideEncryptionConfigurationNotFound
            }
            "NoSuchPublicAccessBlockConfiguration" => S3Code::NoSuchPublicAccessBlockConfiguration,
            "NoSuchBucketPolicy" => S3Code::NoSuchBucketPolicy,
            "NoSuchCORSConfiguration" => S3Code::NoSuchCorsConfiguration,
            "NoSuchLifecycleConfiguration" => S3Code::NoSuchLifecycleConfiguration,
            "OwnershipControlsNotFoundError" => S3Code::OwnershipControlsNotFound,
            "NoSuchWebsiteConfiguration" => S3Code::NoSuchWebsiteConfiguration,
            _ => return None,
        })
    }

    fn class(self) -> Option<ErrorClass> {
        match self {
            S3Code::NoSuchBucket => Some(ErrorClass::NotFound),
            S3Code::BucketAlreadyExists | S3Code::BucketNotEmpty => Some(ErrorClass::Conflict),
            S3Code::OperationAborted => Some(ErrorClass::Transient),
            // Answers to reads, which take them as "not configured".
            _ => None,
        }
    }
}

/// An S3 call's error, classified by its code.
fn s3_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    S3Code::error(operation, err)
}

/// A read whose "not configured" answer is the error code `missing`: `Ok(None)` then.
fn read<T, E>(
    operation: &str,
    missing: S3Code,
    r: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let e = s3_error(operation, e);
            if e.code() == Some(missing) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// A request that the SDK refused to build (a required field missing): a bug, not AWS.
fn built<T>(operation: &str, r: Result<T, BuildError>) -> Result<T, AwsError> {
    r.map_err(|e| AwsError::new(operation, ErrorClass::Fatal, e.to_string()))
}

/// Run the read `f` when the setting is `wanted`; otherwise report it as not read.
async fn maybe<T, F>(wanted: bool, f: F) -> Result<Setting<T>, AwsError>
where
    F: std::future::Future<Output = Result<Setting<T>, AwsError>>,
{
    if wanted {
        f.await
    } else {
        Ok(Setting::NotRead)
    }
}

/// Observe buckets, reading for each only the settings it wants. Absent buckets (and
/// buckets deleted while being read) are left out of the map.
pub async fn observe_buckets(
    aws: &AwsContext,
    buckets: &[(String, Wanted)],
) -> Result<BTreeMap<String, BucketObserved>, AwsError> {
    // Owned items: a closure over borrowed ones is not general enough for the Send future.
    let found: Vec<Option<(String, BucketObserved)>> =
        futures::stream::iter(buckets.iter().cloned())
            .map(|(name, wanted)| async move {
                Ok::<_, AwsError>(observe_one(aws, &name, wanted).await?.map(|o| (name, o)))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
    Ok(found.into_iter().flatten().collect())
}

async fn observe_one(
    aws: &AwsContext,
    name: &str,
    w: Wanted,
) -> Result<Option<BucketObserved>, AwsError> {
    match read_bucket(aws, name, w).await {
        Ok(o) => Ok(Some(o)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn read_bucket(aws: &AwsContext, name: &str, w: Wanted) -> Result<BucketObserved, AwsError> {
    let c = &s3(aws);
    // Tags first and alone: they also tell whether the bucket exists at all, which spares
    // the other reads for an absent bucket.
    let tags = read(
        "s3:GetBucketTagging",
        S3Code::NoSuchTagSet,
        c.get_bucket_tagging().bucket(name).send().await,
    )?
    .map(|o| o.tag_set.into_iter().map(|t| (t.key, t.value)).collect())
    .unwrap_or_default();

    let encryption = maybe(w.encryption, async {
        let o = read(
            "s3:GetBucketEncryption",
            S3Code::ServerSideEncryptionConfigurationNotFound,
            c.get_bucket_encryption().bucket(name).send().await,
        )?;
        let rule = o
            .and_then(|o| o.server_side_encryption_configuration)
            .and_then(|c| c.rules.into_iter().next());
        Ok(Setting::from_option(rule.and_then(|r| {
            let by_default = r.apply_server_side_encryption_by_default?;
            Some(ObservedEncryption {
                sse_algorithm: by_default.sse_algorithm.as_str().to_string(),
                kms_key_id: by_default.kms_master_key_id,
                bucket_key_enabled: r.bucket_key_enabled.unwrap_or(false),
            })
        })))
    });
    let versioning = maybe(w.versioning, async {
        let status = match c.get_bucket_versioning().bucket(name).send().await {
            Ok(o) => match o.status {
                Some(s3::BucketVersioningStatus::Enabled) => Some(Versioning::Enabled),
                Some(s3::BucketVersioningStatus::Suspended) => Some(Versioning::Suspended),
                _ => None,
            },
            Err(e) => match emulator::versioning_answer(&e) {
                Some(enabled) => enabled.map(|on| {
                    if on {
                        Versioning::Enabled
                    } else {
                        Versioning::Suspended
                    }
                }),
                None => return Err(s3_error("s3:GetBucketVersioning", e)),
            },
        };
        Ok(Setting::from_option(status))
    });
    let public_access_block = maybe(w.public_access_block, async {
        let o = read(
            "s3:GetPublicAccessBlock",
            S3Code::NoSuchPublicAccessBlockConfiguration,
            c.get_public_access_block().bucket(name).send().await,
        )?;
        Ok(Setting::from_option(
            o.and_then(|o| o.public_access_block_configuration)
                .map(|p| PublicAccessBlock {
                    block_public_acls: p.block_public_acls.unwrap_or(false),
                    ignore_public_acls: p.ignore_public_acls.unwrap_or(false),
                    block_public_policy: p.block_public_policy.unwrap_or(false),
                    restrict_public_buckets: p.restrict_public_buckets.unwrap_or(false),
                }),
        ))
    });
    let logging = maybe(w.logging, async {
        let o = c
            .get_bucket_logging()
            .bucket(name)
            .send()
            .await
            .map_err(|e| s3_error("s3:GetBucketLogging", e))?;
        Ok(Setting::from_option(o.logging_enabled.map(|l| {
            BucketLogging {
                target_bucket: l.target_bucket,
                target_prefix: l.target_prefix,
            }
        })))
    });
    let policy = maybe(w.policy, async {
        let o = read(
            "s3:GetBucketPolicy",
            S3Code::NoSuchBucketPolicy,
            c.get_bucket_policy().bucket(name).send().await,
        )?;
        // A document that does not parse is kept as text: it then differs from any manifest.
        Ok(Setting::from_option(o.and_then(|o| o.policy).map(|text| {
            mlspace_policy::decode_iam_document(&text).unwrap_or(Value::String(text))
        })))
    });
    let cors = maybe(w.cors, async {
        let o = read(
            "s3:GetBucketCors",
            S3Code::NoSuchCorsConfiguration,
            c.get_bucket_cors().bucket(name).send().await,
        )?;
        let rules: Vec<CorsRule> = o
            .and_then(|o| o.cors_rules)
            .unwrap_or_default()
            .into_iter()
            .map(cors_rule)
            .collect();
        Ok(Setting::from_option((!rules.is_empty()).then_some(rules)))
    });
    let lifecycle_rules = maybe(w.lifecycle_rules, async {
        let o = read(
            "s3:GetBucketLifecycleConfiguration",
            S3Code::NoSuchLifecycleConfiguration,
            c.get_bucket_lifecycle_configuration()
                .bucket(name)
                .send()
                .await,
        )?;
        let rules: Vec<ObservedLifecycleRule> = o
            .and_then(|o| o.rules)
            .unwrap_or_default()
            .into_iter()
            .map(lifecycle_rule)
            .collect();
        Ok(Setting::from_option((!rules.is_empty()).then_some(rules)))
    });
    let ownership = maybe(w.ownership, async {
        let o = read(
            "s3:GetBucketOwnershipControls",
            S3Code::OwnershipControlsNotFound,
            c.get_bucket_ownership_controls().bucket(name).send().await,
        )?;
        let rule = o
            .and_then(|o| o.ownership_controls)
            .and_then(|c| c.rules.into_iter().next());
        Ok(Setting::from_option(
            rule.map(|r| r.object_ownership.as_str().to_string()),
        ))
    });
    let website = maybe(w.website, async {
        let o = read(
            "s3:GetBucketWebsite",
            S3Code::NoSuchWebsiteConfiguration,
            c.get_bucket_website().bucket(name).send().await,
        )?;
        Ok(Setting::from_option(o.map(observed_website).filter(|w| {
            !(w.website.is_empty() && w.unmanaged.is_empty())
        })))
    });
    // S3 answers an empty configuration, never "not configured", for a bucket without one.
    let notifications = maybe(w.notifications, async {
        let o = match c
            .get_bucket_notification_configuration()
            .bucket(name)
            .send()
            .await
        {
            Ok(o) => Some(o),
            Err(e) if emulator::empty_notification_answer(&e) => None,
            Err(e) => return Err(s3_error("s3:GetBucketNotificationConfiguration", e)),
        };
        let n = o.map(observed_notifications).unwrap_or_default();
        Ok(Setting::from_option(
            (!(n.notifications.is_empty() && n.unmanaged.is_empty())).then_some(n),
        ))
    });
    let (
        encryption,
        versioning,
        public_access_block,
        logging,
        policy,
        cors,
        lifecycle_rules,
        ownership,
        website,
        notifications,
    ) = futures::try_join!(
        encryption,
        versioning,
        public_access_block,
        logging,
        policy,
        cors,
        lifecycle_rules,
        ownership,
        website,
        notifications
    )?;
    Ok(BucketObserved {
        tags,
        encryption,
        versioning,
        public_access_block,
        logging,
        policy,
        cors,
        lifecycle_rules,
        ownership,
        website,
        notifications,
    })
}

fn cors_rule(r: s3::CorsRule) -> CorsRule {
    CorsRule {
        id: r.id,
        allowed_methods: r.allowed_methods,
        allowed_origins: r.allowed_origins,
        allowed_headers: r.allowed_headers.unwrap_or_default(),
        expose_headers: r.expose_headers.unwrap_or_default(),
        max_age_seconds: r.max_age_seconds,
    }
}

/// S3's rule in the manifest's shape; what the manifest cannot express goes to `unmanaged`.
fn lifecycle_rule(r: s3::LifecycleRule) -> ObservedLifecycleRule {
    let mut unmanaged = BTreeMap::new();
    // Rules written before filters existed carry the prefix on the rule itself.
    #[allow(deprecated)]
    let mut prefix = r.prefix.unwrap_or_default();
    if let Some(f) = r.filter {
        if let Some(p) = f.prefix {
            prefix = p;
        }
        if let Some(t) = f.tag {
            unmanaged.insert("Filter.Tag".into(), json!({ t.key: t.value }));
        }
        if let Some(n) = f.object_size_greater_than {
            unmanaged.insert("Filter.ObjectSizeGreaterThan".into(), json!(n));
        }
        if let Some(n) = f.object_size_less_than {
            unmanaged.insert("Filter.ObjectSizeLessThan".into(), json!(n));
        }
        if let Some(a) = f.and {
            let tags: Tags = a
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect();
            unmanaged.insert("Filter.And".into(), json!({"Prefix": a.prefix, "Tags": tags, "ObjectSizeGreaterThan": a.object_size_greater_than, "ObjectSizeLessThan": a.object_size_less_than}));
        }
    }
    let expiration = r
        .expiration
        .unwrap_or_else(|| s3::LifecycleExpiration::builder().build());
    if let Some(d) = expiration.date {
        unmanaged.insert("Expiration.Date".into(), json!(d.to_string()));
    }
    if expiration.expired_object_delete_marker == Some(true) {
        unmanaged.insert("Expiration.ExpiredObjectDeleteMarker".into(), json!(true));
    }
    let noncurrent = r.noncurrent_version_expiration;
    if let Some(n) = noncurrent
        .as_ref()
        .and_then(|n| n.newer_noncurrent_versions)
    {
        unmanaged.insert(
            "NoncurrentVersionExpiration.NewerNoncurrentVersions".into(),
            json!(n),
        );
    }
    let noncurrent_transitions = r.noncurrent_version_transitions.unwrap_or_default();
    if !noncurrent_transitions.is_empty() {
        let t: Vec<Value> = noncurrent_transitions.iter().map(|t| json!({"NoncurrentDays": t.noncurrent_days, "StorageClass": t.storage_class.as_ref().map(|s| s.as_str())})).collect();
        unmanaged.insert("NoncurrentVersionTransitions".into(), json!(t));
    }
    let mut transitions = Vec::new();
    for t in r.transitions.unwrap_or_default() {
        match (t.days, t.date) {
            (Some(days), None) => transitions.push(Transition {
                days,
                storage_class: t
                    .storage_class
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            }),
            (_, date) => {
                let entry = json!({"Date": date.map(|d| d.to_string()), "StorageClass": t.storage_class.as_ref().map(|s| s.as_str())});
                unmanaged
                    .entry("Transitions.Date".to_string())
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("an array")
                    .push(entry);
            }
        }
    }
    let rule = LifecycleRule {
        id: r.id.unwrap_or_default(),
        enabled: r.status == s3::ExpirationStatus::Enabled,
        prefix,
        expiration_days: expiration.days,
        noncurrent_version_expiration_days: noncurrent.and_then(|n| n.noncurrent_days),
        abort_incomplete_multipart_upload_days: r
            .abort_incomplete_multipart_upload
            .and_then(|a| a.days_after_initiation),
        transitions,
    };
    ObservedLifecycleRule { rule, unmanaged }
}

/// Parts of an S3 answer the manifest cannot express, by S3 element name.
type Unmanaged = BTreeMap<String, Value>;

/// A status code as a number; one the manifest cannot hold as a number is kept in
/// `unmanaged` as S3 wrote it.
fn status_code(unmanaged: &mut Unmanaged, at: String, v: Option<String>) -> Option<u16> {
    let v = v?;
    match v.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            unmanaged.insert(at, json!(v));
            None
        }
    }
}

/// A redirect protocol; one the manifest cannot name is kept in `unmanaged`.
fn redirect_protocol(
    unmanaged: &mut Unmanaged,
    at: String,
    p: Option<s3::Protocol>,
) -> Option<RedirectProtocol> {
    match p? {
        s3::Protocol::Http => Some(RedirectProtocol::Http),
        s3::Protocol::Https => Some(RedirectProtocol::Https),
        other => {
            unmanaged.insert(at, json!(other.as_str()));
            None
        }
    }
}

/// S3's website in the manifest's shape; what the manifest cannot express goes to
/// `unmanaged`.
fn observed_website(o: GetBucketWebsiteOutput) -> ObservedWebsite {
    let mut unmanaged = Unmanaged::new();
    let mut routing_rules = Vec::new();
    for (i, r) in o.routing_rules.unwrap_or_default().into_iter().enumerate() {
        let at = format!("RoutingRules[{i}]");
        // An empty condition matches every request, as no condition does.
        let condition = r
            .condition
            .filter(|c| {
                c.key_prefix_equals.is_some() || c.http_error_code_returned_equals.is_some()
            })
            .map(|c| RoutingCondition {
                key_prefix_equals: c.key_prefix_equals,
                http_error_code_returned_equals: status_code(
                    &mut unmanaged,
                    format!("{at}.Condition.HttpErrorCodeReturnedEquals"),
                    c.http_error_code_returned_equals,
                ),
            });
        let Some(d) = r.redirect else {
            unmanaged.insert(format!("{at}.Redirect"), json!("absent"));
            continue;
        };
        let redirect = Redirect {
            host_name: d.host_name,
            http_redirect_code: status_code(
                &mut unmanaged,
                format!("{at}.Redirect.HttpRedirectCode"),
                d.http_redirect_code,
            ),
            protocol: redirect_protocol(
                &mut unmanaged,
                format!("{at}.Redirect.Protocol"),
                d.protocol,
            ),
            replace_key_prefix_with: d.replace_key_prefix_with,
            replace_key_with: d.replace_key_with,
        };
        routing_rules.push(RoutingRule {
            condition,
            redirect,
        });
    }
    let redirect_all_requests_to = o.redirect_all_requests_to.map(|r| RedirectAllRequestsTo {
        host_name: r.host_name,
        protocol: redirect_protocol(
            &mut unmanaged,
            "RedirectAllRequestsTo.Protocol".into(),
            r.protocol,
        ),
    });
    ObservedWebsite {
        website: BucketWebsite {
            index_document: o.index_document.map(|i| i.suffix),
            error_document: o.error_document.map(|e| e.key),
            routing_rules,
            redirect_all_requests_to,
        },
        unmanaged,
    }
}

/// A key filter in the manifest's shape, or `Err` with S3's rules when the manifest cannot
/// express them (a rule other than one prefix and one suffix).
fn notification_filter(
    f: Option<s3::NotificationConfigurationFilter>,
) -> Result<NotificationFilter, Value> {
    let rules = f
        .and_then(|f| f.key)
        .and_then(|k| k.filter_rules)
        .unwrap_or_default();
    let mut out = NotificationFilter::default();
    let mut exact = true;
    for r in &rules {
        let value = r.value.clone().unwrap_or_default();
        // S3 answers `Prefix`/`Suffix` for rules written `prefix`/`suffix`.
        let name = r.name.as_ref().map(|n| n.as_str().to_ascii_lowercase());
        let slot = match name.as_deref() {
            Some("prefix") => &mut out.prefix,
            Some("suffix") => &mut out.suffix,
            _ => {
                exact = false;
                continue;
            }
        };
        if slot.is_some() {
            exact = false;
        }
        *slot = Some(value);
    }
    if exact {
        Ok(out)
    } else {
        Err(json!(rules
            .iter()
            .map(|r| json!({"Name": r.name.as_ref().map(|n| n.as_str()), "Value": r.value}))
            .collect::<Vec<_>>()))
    }
}

/// S3's notification configuration in the manifest's shape; what the manifest cannot express
/// goes to `unmanaged`.
fn observed_notifications(o: GetBucketNotificationConfigurationOutput) -> ObservedNotifications {
    let mut unmanaged = BTreeMap::new();
    let mut destination =
        |field: &str,
         i: usize,
         id: Option<String>,
         arn: String,
         events: Vec<s3::Event>,
         filter: Option<s3::NotificationConfigurationFilter>| {
            let filter = notification_filter(filter).unwrap_or_else(|rules| {
                unmanaged.insert(format!("{field}[{i}].Filter.Key.FilterRules"), rules);
                NotificationFilter::default()
            });
            NotificationDestination {
                id,
                arn,
                events: events.iter().map(|e| e.as_str().to_string()).collect(),
                filter,
            }
        };
    let lambda_functions = o
        .lambda_function_configurations
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            destination(
                "LambdaFunctionConfigurations",
                i,
                c.id,
                c.lambda_function_arn,
                c.events,
                c.filter,
            )
        })
        .collect();
    let queues = o
        .queue_configurations
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            destination(
                "QueueConfigurations",
                i,
                c.id,
                c.queue_arn,
                c.events,
                c.filter,
            )
        })
        .collect();
    let topics = o
        .topic_configurations
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            destination(
                "TopicConfigurations",
                i,
                c.id,
                c.topic_arn,
                c.events,
                c.filter,
            )
        })
        .collect();
    ObservedNotifications {
        notifications: BucketNotifications {
            event_bridge: o.event_bridge_configuration.is_some(),
            lambda_functions,
            queues,
            topics,
        },
        unmanaged,
    }
}

fn tagging(tags: &Tags) -> Result<s3::Tagging, AwsError> {
    const OP: &str = "s3:PutBucketTagging";
    let set = tags
        .iter()
        .map(|(k, v)| built(OP, s3::Tag::builder().key(k).value(v).build()))
        .collect::<Result<Vec<_>, _>>()?;
    built(OP, s3::Tagging::builder().set_tag_set(Some(set)).build())
}

fn ownership_controls(o: ObjectOwnership) -> Result<s3::OwnershipControls, AwsError> {
    const OP: &str = "s3:PutBucketOwnershipControls";
    let rule = built(
        OP,
        s3::OwnershipControlsRule::builder()
            .object_ownership(s3::ObjectOwnership::from(o.as_str()))
            .build(),
    )?;
    built(OP, s3::OwnershipControls::builder().rules(rule).build())
}

fn encryption_config(
    e: &BucketEncryption,
) -> Result<s3::ServerSideEncryptionConfiguration, AwsError> {
    const OP: &str = "s3:PutBucketEncryption";
    let by_default = built(
        OP,
        s3::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(s3::ServerSideEncryption::from(e.sse_algorithm.as_str()))
            .set_kms_master_key_id(e.kms_key_id.clone())
            .build(),
    )?;
    let rule = s3::ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(by_default)
        .set_bucket_key_enabled(e.bucket_key_enabled)
        .build();
    built(
        OP,
        s3::ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build(),
    )
}

fn cors_config(rules: &[CorsRule]) -> Result<s3::CorsConfiguration, AwsError> {
    const OP: &str = "s3:PutBucketCors";
    let rules = rules
        .iter()
        .map(|r| {
            let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
            built(
                OP,
                s3::CorsRule::builder()
                    .set_id(r.id.clone())
                    .set_allowed_methods(Some(r.allowed_methods.clone()))
                    .set_allowed_origins(Some(r.allowed_origins.clone()))
                    .set_allowed_headers(non_empty(&r.allowed_headers))
                    .set_expose_headers(non_empty(&r.expose_headers))
                    .set_max_age_seconds(r.max_age_seconds)
                    .build(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    built(
        OP,
        s3::CorsConfiguration::builder()
            .set_cors_rules(Some(rules))
            .build(),
    )
}

fn lifecycle_config(rules: &[LifecycleRule]) -> Result<s3::BucketLifecycleConfiguration, AwsError> {
    const OP: &str = "s3:PutBucketLifecycleConfiguration";
    let rules = rules
        .iter()
        .map(|r| {
            let status = if r.enabled {
                s3::ExpirationStatus::Enabled
            } else {
                s3::ExpirationStatus::Disabled
            };
            let transitions = r
                .transitions
                .iter()
                .map(|t| {
                    s3::Transition::builder()
                        .days(t.days)
                        .storage_class(s3::TransitionStorageClass::from(t.storage_class.as_str()))
                        .build()
                })
                .collect();
            built(
                OP,
                s3::LifecycleRule::builder()
                    .id(&r.id)
                    .status(status)
                    .filter(s3::LifecycleRuleFilter::builder().prefix(&r.prefix).build())
                    .set_expiration(
                        r.expiration_days
                            .map(|d| s3::LifecycleExpiration::builder().days(d).build()),
                    )
                    .set_noncurrent_version_expiration(r.noncurrent_version_expiration_days.map(
                        |d| {
                            s3::NoncurrentVersionExpiration::builder()
                                .noncurrent_days(d)
                                .build()
                        },
                    ))
                    .set_abort_incomplete_multipart_upload(
                        r.abort_incomplete_multipart_upload_days.map(|d| {
                            s3::AbortIncompleteMultipartUpload::builder()
                                .days_after_initiation(d)
                                .build()
                        }),
                    )
                    .set_transitions((!r.transitions.is_empty()).then_some(transitions))
                    .build(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    built(
        OP,
        s3::BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build(),
    )
}

fn website_config(w: &BucketWebsite) -> Result<s3::WebsiteConfiguration, AwsError> {
    const OP: &str = "s3:PutBucketWebsite";
    let protocol = |p: &Option<RedirectProtocol>| p.map(|p| s3::Protocol::from(p.as_str()));
    let index_document = w
        .index_document
        .as_ref()
        .map(|s| built(OP, s3::IndexDocument::builder().suffix(s).build()))
        .transpose()?;
    let error_document = w
        .error_document
        .as_ref()
        .map(|k| built(OP, s3::ErrorDocument::builder().key(k).build()))
        .transpose()?;
    let redirect_all_requests_to = w
        .redirect_all_requests_to
        .as_ref()
        .map(|r| {
            built(
                OP,
                s3::RedirectAllRequestsTo::builder()
                    .host_name(&r.host_name)
                    .set_protocol(protocol(&r.protocol))
                    .build(),
            )
        })
        .transpose()?;
    let routing_rules: Vec<s3::RoutingRule> = w
        .routing_rules
        .iter()
        .map(|r| {
            let condition = r.condition.as_ref().map(|c| {
                s3::Condition::builder()
                    .set_key_prefix_equals(c.key_prefix_equals.clone())
                    .set_http_error_code_returned_equals(
                        c.http_error_code_returned_equals.map(|n| n.to_string()),
                    )
                    .build()
            });
            let d = &r.redirect;
            let redirect = s3::Redirect::builder()
                .set_host_name(d.host_name.clone())
                .set_http_redirect_code(d.http_redirect_code.map(|n| n.to_string()))
                .set_protocol(protocol(&d.protocol))
                .set_replace_key_prefix_with(d.replace_key_prefix_with.clone())
                .set_replace_key_with(d.replace_key_with.clone())
                .build();
            s3::RoutingRule::builder()
                .set_condition(condition)
                .redirect(redirect)
                .build()
        })
        .collect();
    Ok(s3::WebsiteConfiguration::builder()
        .set_index_document(index_document)
        .set_error_document(error_document)
        .set_redirect_all_requests_to(redirect_all_requests_to)
        .set_routing_rules((!routing_rules.is_empty()).then_some(routing_rules))
        .build())
}

/// The whole notification configuration; an empty one removes every notification.
fn notification_config(n: &BucketNotifications) -> Result<s3::NotificationConfiguration, AwsError> {
    const OP: &str = "s3:PutBucketNotificationConfiguration";
    fn filter(f: &NotificationFilter) -> Option<s3::NotificationConfigurationFilter> {
        if f.is_empty() {
            return None;
        }
        let rules = [
            (s3::FilterRuleName::Prefix, &f.prefix),
            (s3::FilterRuleName::Suffix, &f.suffix),
        ]
        .into_iter()
        .filter_map(|(name, v)| {
            v.as_ref()
                .map(|v| s3::FilterRule::builder().name(name).value(v).build())
        })
        .collect();
        Some(
            s3::NotificationConfigurationFilter::builder()
                .key(
                    s3::S3KeyFilter::builder()
                        .set_filter_rules(Some(rules))
                        .build(),
                )
                .build(),
        )
    }
    fn events(d: &NotificationDestination) -> Vec<s3::Event> {
        d.events
            .iter()
            .map(|e| s3::Event::from(e.as_str()))
            .collect()
    }
    fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
        (!v.is_empty()).then_some(v)
    }
    let lambdas = n
        .lambda_functions
        .iter()
        .map(|d| {
            built(
                OP,
                s3::LambdaFunctionConfiguration::builder()
                    .set_id(d.id.clone())
                    .lambda_function_arn(&d.arn)
                    .set_events(Some(events(d)))
                    .set_filter(filter(&d.filter))
                    .build(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let queues = n
        .queues
        .iter()
        .map(|d| {
            built(
                OP,
                s3::QueueConfiguration::builder()
                    .set_id(d.id.clone())
                    .queue_arn(&d.arn)
                    .set_events(Some(events(d)))
                    .set_filter(filter(&d.filter))
                    .build(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let topics = n
        .topics
        .iter()
        .map(|d| {
            built(
                OP,
                s3::TopicConfiguration::builder()
                    .set_id(d.id.clone())
                    .topic_arn(&d.arn)
                    .set_events(Some(events(d)))
                    .set_filter(filter(&d.filter))
                    .build(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(s3::NotificationConfiguration::builder()
        .set_lambda_function_configurations(non_empty(lambdas))
        .set_queue_configurations(non_empty(queues))
        .set_topic_configurations(non_empty(topics))
        .set_event_bridge_configuration(
            n.event_bridge
                .then(|| s3::EventBridgeConfiguration::builder().build()),
        )
        .build())
}

/// CreateBucket, converging when a lost answer to an earlier attempt already created it;
/// then the tags (ownership first of all), retried while the new bucket is not yet visible.
async fn create(
    aws: &AwsContext,
    name: &str,
    location_constraint: Option<&str>,
    object_ownership: Option<ObjectOwnership>,
    tags: &Tags,
) -> Result<(), AwsError> {
    let mut req = s3(aws)
        .create_bucket()
        .bucket(name)
        .set_object_ownership(object_ownership.map(|o| s3::ObjectOwnership::from(o.as_str())));
    if let Some(l) = location_constraint {
        req = req.create_bucket_configuration(
            s3::CreateBucketConfiguration::builder()
                .location_constraint(s3::BucketLocationConstraint::from(l))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateBucketError::BucketAlreadyOwnedByYou(_))
            ) =>
        {
            // The earlier CreateBucket may have set ObjectOwnership or not: set it now.
            if let Some(o) = object_ownership {
                let controls = ownership_controls(o)?;
                s3(aws)
                    .put_bucket_ownership_controls()
                    .bucket(name)
                    .ownership_controls(controls)
                    .send()
                    .await
                    .map_err(|e| s3_error("s3:PutBucketOwnershipControls", e))?;
            }
        }
        Err(e) => return Err(s3_error("s3:CreateBucket", e)),
    }
    let tagging = tagging(tags)?;
    retry_eventual(aws.eventual_consistency_timeout, || async {
        s3(aws)
            .put_bucket_tagging()
            .bucket(name)
            .tagging(tagging.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let mut e = s3_error("s3:PutBucketTagging", e);
                // The bucket exists (we just created it): NoSuchBucket is propagation delay.
                if e.class == ErrorClass::NotFound {
                    e.class = ErrorClass::EventualConsistency;
                }
                e
            })
    })
    .await
}

/// Run one step.
async fn apply_op(aws: &AwsContext, name: &str, op: &Op) -> Result<(), AwsError> {
    let c = &s3(aws);
    macro_rules! send {
        ($op:literal, $req:expr) => {
            $req.send().await.map(|_| ()).map_err(|e| s3_error($op, e))
        };
    }
    match op {
        Op::Create {
            location_constraint,
            object_ownership,
            tags,
        } => {
            create(
                aws,
                name,
                location_constraint.as_deref(),
                *object_ownership,
                tags,
            )
            .await
        }
        Op::PutVersioning { enabled } => {
            let status = if *enabled {
                s3::BucketVersioningStatus::Enabled
            } else {
                s3::BucketVersioningStatus::Suspended
            };
            send!(
                "s3:PutBucketVersioning",
                c.put_bucket_versioning()
                    .bucket(name)
                    .versioning_configuration(
                        s3::VersioningConfiguration::builder()
                            .status(status)
                            .build()
                    )
            )
        }
        Op::PutEncryption(e) => send!(
            "s3:PutBucketEncryption",
            c.put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(encryption_config(e)?)
        ),
        Op::PutPublicAccessBlock(f) => {
            let conf = s3::PublicAccessBlockConfiguration::builder()
                .block_public_acls(f.block_public_acls)
                .ignore_public_acls(f.ignore_public_acls)
                .block_public_policy(f.block_public_policy)
                .restrict_public_buckets(f.restrict_public_buckets)
                .build();
            send!(
                "s3:PutPublicAccessBlock",
                c.put_public_access_block()
                    .bucket(name)
                    .public_access_block_configuration(conf)
            )
        }
        Op::PutLogging(l) => {
            let enabled = built(
                "s3:PutBucketLogging",
                s3::LoggingEnabled::builder()
                    .target_bucket(&l.target_bucket)
                    .target_prefix(&l.target_prefix)
                    .build(),
            )?;
            send!(
                "s3:PutBucketLogging",
                c.put_bucket_logging().bucket(name).bucket_logging_status(
                    s3::BucketLoggingStatus::builder()
                        .logging_enabled(enabled)
                        .build()
                )
            )
        }
        Op::PutPolicy(doc) => send!(
            "s3:PutBucketPolicy",
            c.put_bucket_policy().bucket(name).policy(doc.to_string())
        ),
        Op::DeletePolicy => send!(
            "s3:DeleteBucketPolicy",
            c.delete_bucket_policy().bucket(name)
        ),
        Op::PutCors(rules) => send!(
            "s3:PutBucketCors",
            c.put_bucket_cors()
                .bucket(name)
                .cors_configuration(cors_config(rules)?)
        ),
        Op::DeleteCors => send!("s3:DeleteBucketCors", c.delete_bucket_cors().bucket(name)),
        Op::PutLifecycle(rules) => send!(
            "s3:PutBucketLifecycleConfiguration",
            c.put_bucket_lifecycle_configuration()
                .bucket(name)
                .lifecycle_configuration(lifecycle_config(rules)?)
        ),
        Op::DeleteLifecycle => send!(
            "s3:DeleteBucketLifecycle",
            c.delete_bucket_lifecycle().bucket(name)
        ),
        Op::PutWebsite(w) => send!(
            "s3:PutBucketWebsite",
            c.put_bucket_website()
                .bucket(name)
                .website_configuration(website_config(w)?)
        ),
        Op::DeleteWebsite => send!(
            "s3:DeleteBucketWebsite",
            c.delete_bucket_website().bucket(name)
        ),
        // S3 checks each destination (it exists and lets S3 publish to it) and sends it a
        // test event; a refused destination fails the step.
        Op::PutNotifications(n) => send!(
            "s3:PutBucketNotificationConfiguration",
            c.put_bucket_notification_configuration()
                .bucket(name)
                .notification_configuration(notification_config(n)?)
        ),
        Op::PutOwnership(o) => send!(
            "s3:PutBucketOwnershipControls",
            c.put_bucket_ownership_controls()
                .bucket(name)
                .ownership_controls(ownership_controls(*o)?)
        ),
        // S3 refuses an empty tag set: no tags left means deleting the tagging.
        Op::PutTags(tags) if tags.is_empty() => send!(
            "s3:DeleteBucketTagging",
            c.delete_bucket_tagging().bucket(name)
        ),
        Op::PutTags(tags) => send!(
            "s3:PutBucketTagging",
            c.put_bucket_tagging().bucket(name).tagging(tagging(tags)?)
        ),
        Op::Empty => empty_bucket(c, name).await,
        // Already gone: the step's goal holds.
        Op::Delete => gone_ok(
            c.delete_bucket()
                .bucket(name)
                .send()
                .await
                .map_err(|e| s3_error("s3:DeleteBucket", e)),
        ),
    }
}

/// Delete every object version and delete marker, a page (up to 1,000 keys) at a time.
async fn empty_bucket(c: &aws_sdk_s3::Client, name: &str) -> Result<(), AwsError> {
    loop {
        let page = match c.list_object_versions().bucket(name).send().await {
            Ok(p) => p,
            Err(e) => {
                let e = s3_error("s3:ListObjectVersions", e);
                return if e.is_not_found() { Ok(()) } else { Err(e) };
            }
        };
        let mut ids = Vec::new();
        for v in page.versions() {
            ids.push(built(
                "s3:DeleteObjects",
                s3::ObjectIdentifier::builder()
                    .key(v.key().unwrap_or_default())
                    .set_version_id(v.version_id().map(str::to_string))
                    .build(),
            )?);
        }
        for m in page.delete_markers() {
            ids.push(built(
                "s3:DeleteObjects",
                s3::ObjectIdentifier::builder()
                    .key(m.key().unwrap_or_default())
                    .set_version_id(m.version_id().map(str::to_string))
                    .build(),
            )?);
        }
        if ids.is_empty() {
            return Ok(());
        }
        let delete = built(
            "s3:DeleteObjects",
            s3::Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build(),
        )?;
        c.delete_objects()
            .bucket(name)
            .delete(delete)
            .send()
            .await
            .map_err(|e| s3_error("s3:DeleteObjects", e))?;
    }
}

#[async_trait]
impl KindAws for Bucket {
    /// Reads every setting: this signature does not carry the desired specs. Callers that
    /// have them should use [`observe_buckets`] with [`Wanted::of`].
    async fn observe(
        aws: &AwsContext,
        wanted: &[crate::kinds::runtime::Wanted<'_, super::BucketSpec>],
        _: &PlanCx,
    ) -> Result<BTreeMap<String, BucketObserved>, AwsError> {
        // Read only the settings the manifest manages (tags always: they decide ownership).
        let all: Vec<(String, Wanted)> = wanted
            .iter()
            .map(|w| (w.name.to_string(), w.spec.map_or(Wanted::ALL, Wanted::of)))
            .collect();
        observe_buckets(aws, &all).await
    }

    async fn apply(aws: &AwsContext, name: &str, op: &Op, _: &PlanCx) -> Result<(), AwsError> {
        apply_op(aws, name, op).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, value: &str) -> s3::FilterRule {
        s3::FilterRule::builder()
            .name(s3::FilterRuleName::from(name))
            .value(value)
            .build()
    }

    fn filter(rules: Vec<s3::FilterRule>) -> Option<s3::NotificationConfigurationFilter> {
        Some(
            s3::NotificationConfigurationFilter::builder()
                .key(
                    s3::S3KeyFilter::builder()
                        .set_filter_rules(Some(rules))
                        .build(),
                )
                .build(),
        )
    }

    #[test]
    fn filter_rules_are_read_whatever_the_case_of_their_names() {
        // S3 answers `Prefix`/`Suffix` for rules written `prefix`/`suffix`.
        assert_eq!(
            notification_filter(filter(vec![rule("Prefix", "a/"), rule("suffix", ".csv")])),
            Ok(NotificationFilter {
                prefix: Some("a/".into()),
                suffix: Some(".csv".into())
            })
        );
        assert_eq!(notification_filter(None), Ok(NotificationFilter::default()));
        // Two prefixes, or a rule of another name, cannot be written in a manifest.
        let two = notification_filter(filter(vec![rule("prefix", "a/"), rule("Prefix", "b/")]));
        assert_eq!(
            two,
            Err(json!([{"Name": "prefix", "Value": "a/"}, {"Name": "Prefix", "Value": "b/"}]))
        );
        assert!(notification_filter(filter(vec![rule("size", "1")])).is_err());
    }

    #[test]
    fn notifications_keep_ids_and_set_aside_filters_the_manifest_cannot_hold() {
        let queue = s3::QueueConfiguration::builder()
            .id("assigned")
            .queue_arn("arn:aws:sqs:us-east-1:123456789012:q")
            .events(s3::Event::S3ObjectCreated)
            .set_filter(filter(vec![rule("other", "x")]))
            .build()
            .unwrap();
        let o = GetBucketNotificationConfigurationOutput::builder()
            .queue_configurations(queue)
            .event_bridge_configuration(s3::EventBridgeConfiguration::builder().build())
            .build();
        let n = observed_notifications(o);
        assert!(n.notifications.event_bridge);
        assert_eq!(n.notifications.queues[0].id.as_deref(), Some("assigned"));
        assert_eq!(n.notifications.queues[0].events, ["s3:ObjectCreated:*"]);
        assert_eq!(
            n.unmanaged.keys().collect::<Vec<_>>(),
            ["QueueConfigurations[0].Filter.Key.FilterRules"]
        );
    }

    #[test]
    fn website_parts_the_manifest_cannot_hold_are_set_aside() {
        let o = GetBucketWebsiteOutput::builder()
            .index_document(
                s3::IndexDocument::builder()
                    .suffix("index.html")
                    .build()
                    .unwrap(),
            )
            .routing_rules(
                s3::RoutingRule::builder()
                    .condition(s3::Condition::builder().build())
                    .redirect(
                        s3::Redirect::builder()
                            .http_redirect_code("3o1")
                            .protocol(s3::Protocol::from("ftp"))
                            .replace_key_with("x")
                            .build(),
                    )
                    .build(),
            )
            .routing_rules(
                s3::RoutingRule::builder()
                    .condition(
                        s3::Condition::builder()
                            .http_error_code_returned_equals("404")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let w = observed_website(o);
        assert_eq!(w.website.index_document.as_deref(), Some("index.html"));
        assert_eq!(
            w.website.routing_rules[0].condition, None,
            "an empty condition is no condition"
        );
        assert_eq!(
            w.unmanaged,
            BTreeMap::from([
                (
                    "RoutingRules[0].Redirect.HttpRedirectCode".to_string(),
                    json!("3o1")
                ),
                (
                    "RoutingRules[0].Redirect.Protocol".to_string(),
                    json!("ftp")
                ),
                ("RoutingRules[1].Redirect".to_string(), json!("absent")),
            ])
        );
    }

    #[test]
    fn written_configurations_carry_every_field() {
        let n = BucketNotifications {
            event_bridge: true,
            topics: vec![NotificationDestination {
                id: None,
                arn: "arn:aws:sns:us-east-1:123456789012:t".into(),
                events: vec!["s3:ObjectRemoved:*".into()],
                filter: NotificationFilter {
                    prefix: None,
                    suffix: Some(".csv".into()),
                },
            }],
            ..BucketNotifications::default()
        };
        let c = notification_config(&n).unwrap();
        assert!(c.event_bridge_configuration.is_some());
        assert_eq!(c.queue_configurations, None);
        let t = &c.topic_configurations.unwrap()[0];
        assert_eq!(t.id, None, "S3 assigns one");
        assert_eq!(t.events, [s3::Event::S3ObjectRemoved]);
        let rules = t.filter.clone().unwrap().key.unwrap().filter_rules.unwrap();
        assert_eq!(rules, [rule("suffix", ".csv")]);
        let empty = notification_config(&BucketNotifications::default()).unwrap();
        assert_eq!(empty, s3::NotificationConfiguration::builder().build());

        let w = BucketWebsite {
            index_document: Some("index.html".into()),
            routing_rules: vec![RoutingRule {
                condition: Some(RoutingCondition {
                    key_prefix_equals: None,
                    http_error_code_returned_equals: Some(404),
                }),
                redirect: Redirect {
                    host_name: None,
                    http_redirect_code: Some(302),
                    protocol: Some(RedirectProtocol::Https),
                    replace_key_prefix_with: None,
                    replace_key_with: Some("404.html".into()),
                },
            }],
            ..BucketWebsite::default()
        };
        let c = website_config(&w).unwrap();
        let r = &c.routing_rules.as_ref().unwrap()[0];
        let condition = r.condition.as_ref().unwrap();
        assert_eq!(
            condition.http_error_code_returned_equals.as_deref(),
            Some("404")
        );
        let redirect = r.redirect.as_ref().unwrap();
        assert_eq!(redirect.http_redirect_code.as_deref(), Some("302"));
        assert_eq!(redirect.protocol, Some(s3::Protocol::Https));
        assert_eq!(c.error_document, None);
        assert_eq!(
            website_config(&BucketWebsite::default())
                .unwrap()
                .routing_rules,
            None,
            "no empty RoutingRules element"
        );
    }
}
