//! `Bucket`: an S3 bucket and the settings MLSpace relies on.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{check_policy, check_tags, Tags};
use super::core::DocKind;
use super::environment::EnvironmentView;
use super::Kind;
use crate::syntax::diag::{field_path, DocCx};

/// Spec of the `Bucket` kind. `metadata.name` is the bucket name. A setting left out is
/// not managed: whatever the bucket has is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BucketSpec {
    /// Default encryption of new objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<BucketEncryption>,
    /// `true` keeps versioning enabled, `false` keeps it suspended (once enabled, S3 can only suspend it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versioning: Option<bool>,
    /// Block public access: `true` for all four flags, or each flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_block: Option<PublicAccessBlockSetting>,
    /// Server access logging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<BucketLogging>,
    /// Bucket policy document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
    /// CORS rules (the list replaces the bucket's rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Vec<CorsRule>>,
    /// Lifecycle rules (the list replaces the bucket's rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_rules: Option<Vec<LifecycleRule>>,
    /// Object ownership: `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<ObjectOwnership>,
    /// Static website hosting: an index document (with an optional error document and
    /// routing rules), or a redirect of every request. `{}` removes the website configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<BucketWebsite>,
    /// Event notifications to Lambda functions, SQS queues, SNS topics and EventBridge (the
    /// whole configuration replaces the bucket's). `{}` removes every notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<BucketNotifications>,
    /// Tags of this bucket (added to the Environment's tags).
    #[serde(default)]
    pub tags: Tags,
    /// Let prune delete the bucket with every object in it. Without it a bucket that holds
    /// objects is never deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_destroy: bool,
}

/// Default encryption settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BucketEncryption {
    /// `AES256` (SSE-S3), `aws:kms` (SSE-KMS) or `aws:kms:dsse`.
    pub sse_algorithm: SseAlgorithm,
    /// KMS key id or ARN, only with `aws:kms` / `aws:kms:dsse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Use an S3 Bucket Key to cut KMS requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_key_enabled: Option<bool>,
}

/// Server-side encryption algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SseAlgorithm {
    /// SSE-S3.
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS.
    #[serde(rename = "aws:kms")]
    Kms,
    /// Dual-layer SSE-KMS.
    #[serde(rename = "aws:kms:dsse")]
    KmsDsse,
}

impl SseAlgorithm {
    /// The S3 API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256 => "AES256",
            Self::Kms => "aws:kms",
            Self::KmsDsse => "aws:kms:dsse",
        }
    }
}

/// `true`, `false`, or the four flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PublicAccessBlockSetting {
    /// All four flags set to this value.
    All(bool),
    /// Each flag on its own.
    Flags(PublicAccessBlock),
}

/// The four public access block flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublicAccessBlock {
    /// Reject requests that set public ACLs.
    #[serde(default)]
    pub block_public_acls: bool,
    /// Ignore public ACLs.
    #[serde(default)]
    pub ignore_public_acls: bool,
    /// Reject public bucket policies.
    #[serde(default)]
    pub block_public_policy: bool,
    /// Restrict access to buckets with public policies.
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlockSetting {
    /// The four flags.
    pub fn flags(&self) -> PublicAccessBlock {
        match *self {
            Self::All(b) => PublicAccessBlock {
                block_public_acls: b,
                ignore_public_acls: b,
                block_public_policy: b,
                restrict_public_buckets: b,
            },
            Self::Flags(f) => f,
        }
    }
}

/// Server access logging target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BucketLogging {
    /// Bucket that receives the logs (may be a Bucket of this directory).
    pub target_bucket: String,
    /// Key prefix of the log objects.
    #[serde(default)]
    pub target_prefix: String,
}

/// One CORS rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CorsRule {
    /// Optional rule id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// HTTP methods: GET, PUT, POST, DELETE, HEAD.
    pub allowed_methods: Vec<String>,
    /// Origins, `*` allowed.
    pub allowed_origins: Vec<String>,
    /// Request headers allowed in a preflight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// Response headers the browser may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// Seconds a browser may cache the preflight answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i32>,
}

/// One lifecycle rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LifecycleRule {
    /// Rule id (unique in the bucket).
    pub id: String,
    /// Whether the rule is enabled (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only objects whose key starts with this (empty: all).
    #[serde(default)]
    pub prefix: String,
    /// Expire current objects after this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<i32>,
    /// Expire noncurrent versions after this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_version_expiration_days: Option<i32>,
    /// Abort incomplete multipart uploads after this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_multipart_upload_days: Option<i32>,
    /// Move current objects to other storage classes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
}

fn yes() -> bool {
    true
}

/// A lifecycle transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Transition {
    /// Days after creation.
    pub days: i32,
    /// Target class: STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE.
    pub storage_class: String,
}

/// Object ownership settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ObjectOwnership {
    /// ACLs disabled; the bucket owner owns every object.
    BucketOwnerEnforced,
    /// The bucket owner owns objects uploaded with bucket-owner-full-control.
    BucketOwnerPreferred,
    /// The uploader owns the object.
    ObjectWriter,
}

impl ObjectOwnership {
    /// The S3 API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BucketOwnerEnforced => "BucketOwnerEnforced",
            Self::BucketOwnerPreferred => "BucketOwnerPreferred",
            Self::ObjectWriter => "ObjectWriter",
        }
    }
}

/// Static website hosting. Either `indexDocument` (with `errorDocument` and `routingRules` if
/// wanted) or `redirectAllRequestsTo`; none of them (`{}`) means no website.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BucketWebsite {
    /// Suffix appended to a request for a folder (`index.html`: `docs/` serves
    /// `docs/index.html`); must not hold `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_document: Option<String>,
    /// Key of the object returned when a request ends in a 4XX error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_document: Option<String>,
    /// Conditional redirects, tried in order (the first that matches applies); at most 50.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing_rules: Vec<RoutingRule>,
    /// Redirect every request to another host; excludes the other fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_all_requests_to: Option<RedirectAllRequestsTo>,
}

impl BucketWebsite {
    /// Whether this says "no website" (`website: {}`).
    pub fn is_empty(&self) -> bool {
        self.index_document.is_none()
            && self.error_document.is_none()
            && self.routing_rules.is_empty()
            && self.redirect_all_requests_to.is_none()
    }
}

/// One routing rule of a website.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoutingRule {
    /// When the redirect applies (left out: to every request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<RoutingCondition>,
    /// Where the request goes.
    pub redirect: Redirect,
}

/// When a routing rule applies: both given, both must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoutingCondition {
    /// Requests for keys starting with this (`docs/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix_equals: Option<String>,
    /// Requests that end in this HTTP error status (4XX or 5XX, e.g. `404`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_error_code_returned_equals: Option<u16>,
}

/// The redirect of a routing rule; at least one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Redirect {
    /// Host to redirect to (left out: this website's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// HTTP redirect status of the answer (3XX, e.g. `301`; left out: `301`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_redirect_code: Option<u16>,
    /// `http` or `https` (left out: the protocol of the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<RedirectProtocol>,
    /// Replace the prefix the condition matched with this (may be empty); excludes
    /// `replaceKeyWith`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_key_prefix_with: Option<String>,
    /// Replace the whole key with this; excludes `replaceKeyPrefixWith`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_key_with: Option<String>,
}

/// Redirect every request of the website to another host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedirectAllRequestsTo {
    /// Host to redirect to.
    pub host_name: String,
    /// `http` or `https` (left out: the protocol of the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<RedirectProtocol>,
}

/// The protocol of a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedirectProtocol {
    /// Plain HTTP.
    Http,
    /// HTTPS.
    Https,
}

impl RedirectProtocol {
    /// The S3 API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// Event notifications of a bucket. Every list left out is empty; all of them empty and
/// `eventBridge` off (`{}`) means no notification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BucketNotifications {
    /// Send every event of the bucket to Amazon EventBridge (default bus of the region).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub event_bridge: bool,
    /// Lambda functions to invoke (`arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lambda_functions: Vec<NotificationDestination>,
    /// SQS standard queues to send to (`arn:PARTITION:sqs:REGION:ACCOUNT:NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<NotificationDestination>,
    /// SNS standard topics to publish to (`arn:PARTITION:sns:REGION:ACCOUNT:NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<NotificationDestination>,
}

impl BucketNotifications {
    /// Whether this says "no notification" (`notifications: {}`).
    pub fn is_empty(&self) -> bool {
        !self.event_bridge
            && self.lambda_functions.is_empty()
            && self.queues.is_empty()
            && self.topics.is_empty()
    }

    /// The three destination lists with their manifest field names and services.
    pub fn destinations(&self) -> [(DestinationKind, &[NotificationDestination]); 3] {
        [
            (DestinationKind::LambdaFunctions, &self.lambda_functions),
            (DestinationKind::Queues, &self.queues),
            (DestinationKind::Topics, &self.topics),
        ]
    }
}

/// Which list of [`BucketNotifications`] a destination is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    /// `lambdaFunctions`.
    LambdaFunctions,
    /// `queues`.
    Queues,
    /// `topics`.
    Topics,
}

impl DestinationKind {
    /// The manifest field.
    pub fn field(self) -> &'static str {
        match self {
            Self::LambdaFunctions => "lambdaFunctions",
            Self::Queues => "queues",
            Self::Topics => "topics",
        }
    }
}

/// One notification: where the events go, which events, for which keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotificationDestination {
    /// Id of this notification, unique in the bucket (S3 sends it as `configurationId`).
    /// Left out, S3 assigns one, and any id matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// ARN of the function, queue or topic, in the bucket's region.
    pub arn: String,
    /// S3 event types, e.g. `s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete` (order does not
    /// matter).
    pub events: Vec<String>,
    /// Only objects whose key has this prefix and suffix (left out: every object).
    #[serde(default, skip_serializing_if = "NotificationFilter::is_empty")]
    pub filter: NotificationFilter,
}

/// Key name filter of a notification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotificationFilter {
    /// Keys starting with this (`uploads/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Keys ending with this (`.csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
}

impl NotificationFilter {
    /// Whether the filter lets every key through.
    pub fn is_empty(&self) -> bool {
        self.prefix.is_none() && self.suffix.is_none()
    }
}

/// The event types S3 documents for SQS, SNS and Lambda destinations.
pub const NOTIFICATION_EVENTS: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
];

const STORAGE_CLASSES: &[&str] = &[
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
];
const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "HEAD"];

impl BucketSpec {
    /// Check names and settings.
    pub fn validate(&self, name: &str, cx: &mut DocCx, env: &EnvironmentView) {
        if let Err(why) = check_bucket_name(name) {
            cx.error("/metadata/name", format_args!("bucket name `{name}` {why}"));
        }
        if let Some(e) = &self.encryption {
            if e.kms_key_id.is_some() && e.sse_algorithm == SseAlgorithm::Aes256 {
                cx.error(
                    "/spec/encryption/kmsKeyId",
                    "a KMS key needs sseAlgorithm `aws:kms` or `aws:kms:dsse`",
                );
            }
        }
        if let Some(l) = &self.logging {
            if let Err(why) = check_bucket_name(&l.target_bucket) {
                cx.error(
                    "/spec/logging/targetBucket",
                    format_args!("bucket name `{}` {why}", l.target_bucket),
                );
            }
        }
        if let Some(p) = &self.policy {
            check_policy(cx, "/spec/policy", p, mlspace_policy::PolicyKind::Resource);
            let len = mlspace_policy::quota_len(p);
            if len > 20 * 1024 {
                cx.error(
                    "/spec/policy",
                    format_args!("bucket policy is {len} bytes; S3 allows 20 KB"),
                );
            }
        }
        if let Some(rules) = &self.cors {
            if rules.len() > 100 {
                cx.error("/spec/cors", "S3 allows at most 100 CORS rules");
            }
            for (i, r) in rules.iter().enumerate() {
                for (j, m) in r.allowed_methods.iter().enumerate() {
                    if !METHODS.contains(&m.as_str()) {
                        cx.error(
                            &format!("/spec/cors/{i}/allowedMethods/{j}"),
                            format_args!("`{m}` is not one of {}", METHODS.join(", ")),
                        );
                    }
                }
                if r.allowed_methods.is_empty() {
                    cx.error(
                        &format!("/spec/cors/{i}/allowedMethods"),
                        "at least one method is required",
                    );
                }
                if r.allowed_origins.is_empty() {
                    cx.error(
                        &format!("/spec/cors/{i}/allowedOrigins"),
                        "at least one origin is required",
                    );
                }
            }
        }
        if let Some(rules) = &self.lifecycle_rules {
            if rules.len() > 1000 {
                cx.error(
                    "/spec/lifecycleRules",
                    "S3 allows at most 1000 lifecycle rules",
                );
            }
            let mut ids = std::collections::BTreeSet::new();
            for (i, r) in rules.iter().enumerate() {
                let p = format!("/spec/lifecycleRules/{i}");
                if r.id.is_empty() || r.id.len() > 255 {
                    cx.error(&format!("{p}/id"), "rule id must be 1 to 255 characters");
                }
                if !ids.insert(&r.id) {
                    cx.error(
                        &format!("{p}/id"),
                        format_args!("rule id `{}` is used twice", r.id),
                    );
                }
                if r.expiration_days.is_none()
                    && r.noncurrent_version_expiration_days.is_none()
                    && r.abort_incomplete_multipart_upload_days.is_none()
                    && r.transitions.is_empty()
                {
                    cx.error(&p, "a lifecycle rule needs at least one action (expirationDays, noncurrentVersionExpirationDays, abortIncompleteMultipartUploadDays or transitions)");
                }
                for (f, v) in [
                    ("expirationDays", r.expiration_days),
                    (
                        "noncurrentVersionExpirationDays",
                        r.noncurrent_version_expiration_days,
                    ),
                    (
                        "abortIncompleteMultipartUploadDays",
                        r.abort_incomplete_multipart_upload_days,
                    ),
                ] {
                    if v.is_some_and(|d| d < 1) {
                        cx.error(&format!("{p}/{f}"), "must be a positive number of days");
                    }
                }
                for (j, t) in r.transitions.iter().enumerate() {
                    if !STORAGE_CLASSES.contains(&t.storage_class.as_str()) {
                        cx.error(
                            &format!("{p}/transitions/{j}/storageClass"),
                            format_args!(
                                "`{}` is not one of {}",
                                t.storage_class,
                                STORAGE_CLASSES.join(", ")
                            ),
                        );
                    }
                    if t.days < 0 {
                        cx.error(&format!("{p}/transitions/{j}/days"), "must not be negative");
                    }
                }
            }
        }
        if let Some(w) = &self.website {
            check_website(cx, w);
        }
        if let Some(n) = &self.notifications {
            check_notifications(cx, n, env);
        }
        check_tags(cx, "/spec/tags", &self.tags, &env.tags);
    }
}

/// Longest S3 object key, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// S3's rules for a website configuration.
fn check_website(cx: &mut DocCx, w: &BucketWebsite) {
    const AT: &str = "/spec/website";
    if let Some(r) = &w.redirect_all_requests_to {
        if w.index_document.is_some() || w.error_document.is_some() || !w.routing_rules.is_empty() {
            cx.error(
                &format!("{AT}/redirectAllRequestsTo"),
                "excludes indexDocument, errorDocument and routingRules: a website either serves the bucket or redirects every request",
            );
        }
        if r.host_name.is_empty() {
            cx.error(
                &format!("{AT}/redirectAllRequestsTo/hostName"),
                "must not be empty",
            );
        }
    } else if !w.is_empty() && w.index_document.is_none() {
        cx.key_error(
            AT,
            "a website needs indexDocument (or redirectAllRequestsTo); `website: {}` removes the website",
        );
    }
    if let Some(i) = &w.index_document {
        let p = format!("{AT}/indexDocument");
        if i.is_empty() {
            cx.error(&p, "must not be empty");
        } else if i.contains('/') {
            cx.error(
                &p,
                format_args!("`{i}` holds `/`: it is a suffix such as `index.html`, appended to requests for a folder"),
            );
        }
    }
    if let Some(e) = &w.error_document {
        check_key_part(cx, &format!("{AT}/errorDocument"), e);
    }
    if w.routing_rules.len() > 50 {
        cx.error(
            &format!("{AT}/routingRules"),
            "S3 allows at most 50 routing rules",
        );
    }
    for (i, r) in w.routing_rules.iter().enumerate() {
        let p = format!("{AT}/routingRules/{i}");
        if let Some(c) = &r.condition {
            if c.key_prefix_equals.is_none() && c.http_error_code_returned_equals.is_none() {
                cx.error(
                    &format!("{p}/condition"),
                    "needs keyPrefixEquals or httpErrorCodeReturnedEquals (leave the condition out to redirect every request)",
                );
            }
            if let Some(k) = &c.key_prefix_equals {
                check_key_part(cx, &format!("{p}/condition/keyPrefixEquals"), k);
            }
            if let Some(code) = c.http_error_code_returned_equals {
                if !(400..=599).contains(&code) {
                    cx.error(
                        &format!("{p}/condition/httpErrorCodeReturnedEquals"),
                        format_args!("`{code}` is not an HTTP error status (4XX or 5XX)"),
                    );
                }
            }
        }
        let d = &r.redirect;
        let p = format!("{p}/redirect");
        if d.host_name.is_none()
            && d.http_redirect_code.is_none()
            && d.protocol.is_none()
            && d.replace_key_prefix_with.is_none()
            && d.replace_key_with.is_none()
        {
            cx.error(
                &p,
                "needs at least one of hostName, httpRedirectCode, protocol, replaceKeyPrefixWith, replaceKeyWith",
            );
        }
        if d.replace_key_prefix_with.is_some() && d.replace_key_with.is_some() {
            cx.error(
                &format!("{p}/replaceKeyWith"),
                "replaceKeyPrefixWith and replaceKeyWith exclude each other",
            );
        }
        if let Some(code) = d.http_redirect_code {
            if !(300..=399).contains(&code) {
                cx.error(
                    &format!("{p}/httpRedirectCode"),
                    format_args!("`{code}` is not an HTTP redirect status (3XX)"),
                );
            }
        }
        if d.host_name.as_deref() == Some("") {
            cx.error(&format!("{p}/hostName"), "must not be empty");
        }
    }
}

/// A key or key prefix: not empty, not longer than a key.
fn check_key_part(cx: &mut DocCx, pointer: &str, s: &str) {
    if s.is_empty() {
        cx.error(pointer, "must not be empty");
    } else if s.len() > MAX_KEY_BYTES {
        cx.error(
            pointer,
            format_args!(
                "is {} bytes; an S3 key has at most {MAX_KEY_BYTES}",
                s.len()
            ),
        );
    }
}

/// S3's rules for a notification configuration: event types it documents, destination ARNs
/// of the right service in the bucket's region, unique ids, filters, and no two
/// configurations sharing an event type for the same keys (S3 refuses such overlaps).
fn check_notifications(cx: &mut DocCx, n: &BucketNotifications, env: &EnvironmentView) {
    const AT: &str = "/spec/notifications";
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut seen: Vec<(String, &NotificationDestination)> = Vec::new();
    for (kind, list) in n.destinations() {
        for (i, d) in list.iter().enumerate() {
            let p = format!("{AT}/{}/{i}", kind.field());
            if let Some(id) = &d.id {
                if id.is_empty() {
                    cx.error(
                        &format!("{p}/id"),
                        "must not be empty (leave it out and S3 assigns one)",
                    );
                } else if let Some(first) = ids.get(id.as_str()) {
                    cx.error(
                        &format!("{p}/id"),
                        format_args!("id `{id}` is used twice (first by {})", field_path(first)),
                    );
                } else {
                    ids.insert(id, p.clone());
                }
            }
            if let Err(why) = check_destination_arn(kind, &d.arn, env) {
                cx.error(&format!("{p}/arn"), format_args!("`{}` {why}", d.arn));
            }
            if d.events.is_empty() {
                cx.error(&format!("{p}/events"), "at least one event is required");
            }
            let mut events = BTreeSet::new();
            for (j, e) in d.events.iter().enumerate() {
                let at = format!("{p}/events/{j}");
                if !NOTIFICATION_EVENTS.contains(&e.as_str()) {
                    cx.error(&at, format_args!("`{e}` {}", unknown_event(e)));
                } else if !events.insert(e.as_str()) {
                    cx.error(&at, format_args!("`{e}` is listed twice"));
                }
            }
            for (field, v) in [("prefix", &d.filter.prefix), ("suffix", &d.filter.suffix)] {
                let Some(v) = v else { continue };
                let at = format!("{p}/filter/{field}");
                if v.is_empty() {
                    cx.error(&at, "must not be empty (leave it out to match every key)");
                } else if v.len() > MAX_KEY_BYTES {
                    cx.error(
                        &at,
                        format_args!(
                            "is {} bytes; an S3 key has at most {MAX_KEY_BYTES}",
                            v.len()
                        ),
                    );
                } else if v.contains('*') {
                    cx.warning(
                        &at,
                        "S3 filters have no wildcards: `*` only matches a `*` in the key",
                    );
                }
            }
            if let Some((q, e)) = seen
                .iter()
                .find_map(|(q, other)| shared_event(other, d).map(|e| (q, e)))
            {
                cx.error(
                    &p,
                    format_args!(
                        "overlaps {}: both get `{e}` for the keys their filters share, and S3 refuses configurations that overlap (give them disjoint prefixes or suffixes, or one destination)",
                        field_path(q)
                    ),
                );
            }
            seen.push((p, d));
        }
    }
}

/// Why `e` is not accepted as an event type, with a hint when it is close to one.
fn unknown_event(e: &str) -> String {
    let close = NOTIFICATION_EVENTS.iter().find(|k| {
        k.eq_ignore_ascii_case(e)
            || k.strip_prefix("s3:")
                .is_some_and(|rest| rest.eq_ignore_ascii_case(e))
    });
    match close {
        Some(k) => format!("is not an S3 event type; did you mean `{k}`?"),
        None if !e.starts_with("s3:") => {
            "is not an S3 event type: event types start with `s3:`, e.g. `s3:ObjectCreated:*`".into()
        }
        None => "is not an event type S3 sends to Lambda, SQS or SNS (the list is in the Bucket section of docs/manifests.md)".into(),
    }
}

/// An event type both configurations get for keys both filters let through, if any.
fn shared_event<'a>(
    a: &'a NotificationDestination,
    b: &NotificationDestination,
) -> Option<&'a str> {
    let covers = |wild: &str, e: &str| {
        wild.strip_suffix('*')
            .is_some_and(|stem| e.starts_with(stem))
    };
    let prefixes = match (&a.filter.prefix, &b.filter.prefix) {
        (Some(x), Some(y)) => x.starts_with(y.as_str()) || y.starts_with(x.as_str()),
        _ => true,
    };
    let suffixes = match (&a.filter.suffix, &b.filter.suffix) {
        (Some(x), Some(y)) => x.ends_with(y.as_str()) || y.ends_with(x.as_str()),
        _ => true,
    };
    if !(prefixes && suffixes) {
        return None;
    }
    a.events
        .iter()
        .find(|x| {
            b.events
                .iter()
                .any(|y| *x == y || covers(x, y) || covers(y, x))
        })
        .map(String::as_str)
}

/// A destination ARN of the service `kind` names, in the Environment's partition and region.
fn check_destination_arn(
    kind: DestinationKind,
    arn: &str,
    env: &EnvironmentView,
) -> Result<(), String> {
    let (service, what) = match kind {
        DestinationKind::LambdaFunctions => (
            "lambda",
            "a Lambda function ARN (arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME)",
        ),
        DestinationKind::Queues => (
            "sqs",
            "an SQS queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME)",
        ),
        DestinationKind::Topics => (
            "sns",
            "an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)",
        ),
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [head, partition, svc, region, account, resource] = parts[..] else {
        return Err(format!("is not {what}"));
    };
    if head != "arn" || svc != service || partition.is_empty() || region.is_empty() {
        return Err(format!("is not {what}"));
    }
    if !env.partition.is_empty() && partition != env.partition {
        return Err(format!(
            "is in partition `{partition}`; the Environment's is `{}`",
            env.partition
        ));
    }
    if !env.region.is_empty() && region != env.region {
        return Err(format!(
            "is in region `{region}`; S3 sends notifications only to destinations in the bucket's region `{}`",
            env.region
        ));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "has account `{account}`; an account id is 12 digits"
        ));
    }
    let name_ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match kind {
        DestinationKind::LambdaFunctions => {
            let Some(rest) = resource.strip_prefix("function:") else {
                return Err(format!("is not {what}"));
            };
            let (name, qualifier) = match rest.split_once(':') {
                Some((n, q)) => (n, Some(q)),
                None => (rest, None),
            };
            if !name_ok(name, 64) {
                return Err(
                    "names no function: a function name is 1 to 64 letters, digits, `-` or `_`"
                        .into(),
                );
            }
            if qualifier.is_some_and(|q| q != "$LATEST" && !name_ok(q, 128)) {
                return Err("has a qualifier that is neither a version nor an alias".into());
            }
        }
        DestinationKind::Queues | DestinationKind::Topics => {
            let (noun, max) = if kind == DestinationKind::Queues {
                ("queue", 80)
            } else {
                ("topic", 256)
            };
            if resource.ends_with(".fifo") {
                return Err(format!(
                    "is a FIFO {noun}; S3 sends notifications to standard {noun}s only"
                ));
            }
            if !name_ok(resource, max) {
                return Err(format!(
                    "names no {noun}: a {noun} name is 1 to {max} letters, digits, `-` or `_`"
                ));
            }
        }
    }
    Ok(())
}

/// S3's rules for general purpose bucket names.
pub fn check_bucket_name(n: &str) -> Result<(), &'static str> {
    if n.len() < 3 || n.len() > 63 {
        return Err("must be 3 to 63 characters");
    }
    if !n
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("may only hold lowercase letters, digits, dots and hyphens");
    }
    let first = n.as_bytes()[0];
    let last = n.as_bytes()[n.len() - 1];
    if !(first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric()) {
        return Err("must begin and end with a letter or digit");
    }
    if n.contains("..") || n.contains(".-") || n.contains("-.") {
        return Err("must not have two adjacent dots or a dot next to a hyphen");
    }
    if n.split('.').count() == 4 && n.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("must not be formatted as an IP address");
    }
    for p in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if n.starts_with(p) {
            return Err("uses a prefix S3 reserves (xn--, sthree-, amzn-s3-demo-)");
        }
    }
    for s in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if n.ends_with(s) {
            return Err("uses a suffix S3 reserves (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)");
        }
    }
    Ok(())
}

impl DocKind for Bucket {
    const KIND: Kind = Kind::Bucket;
    type Spec = BucketSpec;

    fn validate(name: &str, spec: &BucketSpec, cx: &mut DocCx, env: &EnvironmentView) {
        spec.validate(name, cx, env);
    }

    fn tags_mut(spec: &mut BucketSpec) -> Option<&mut Tags> {
        Some(&mut spec.tags)
    }
}

#[cfg(feature = "runtime")]
pub mod aws;
pub mod diff;
pub mod import;
pub use diff::{Bucket, Op};

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::syntax::diag::Diagnostics;
    use crate::syntax::yaml::parse_documents;

    fn env() -> EnvironmentView {
        EnvironmentView {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            ..EnvironmentView::default()
        }
    }

    /// The diagnostics of a document holding `spec:`, one per line, as `validate` prints them.
    fn check(yaml: &str) -> Vec<String> {
        let file: Arc<Path> = Arc::from(Path::new("b.yaml"));
        let doc = parse_documents(&file, yaml).unwrap().remove(0);
        let spec: BucketSpec = serde_json::from_value(doc.value["spec"].clone()).unwrap();
        let mut diags = Diagnostics::default();
        let mut cx = DocCx {
            map: &doc.map,
            file: &file,
            diags: &mut diags,
        };
        spec.validate("mlspace-site", &mut cx, &env());
        diags.sorted().iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn valid_website_and_notifications_pass() {
        let found = check(
            r#"
spec:
  website:
    indexDocument: index.html
    errorDocument: errors/404.html
    routingRules:
      - condition: {keyPrefixEquals: docs/}
        redirect: {replaceKeyPrefixWith: ""}
      - condition: {httpErrorCodeReturnedEquals: 404}
        redirect: {hostName: example.com, protocol: https, httpRedirectCode: 302, replaceKeyWith: missing.html}
  notifications:
    eventBridge: true
    lambdaFunctions:
      - {arn: "arn:aws:lambda:us-east-1:123456789012:function:index:live", events: ["s3:ObjectCreated:Put"], filter: {prefix: data/}}
    queues:
      - {id: uploads, arn: "arn:aws:sqs:us-east-1:123456789012:uploads", events: ["s3:ObjectCreated:*"], filter: {prefix: uploads/, suffix: .csv}}
      - {arn: "arn:aws:sqs:us-east-1:123456789012:uploads", events: ["s3:ObjectCreated:*"], filter: {prefix: uploads/, suffix: .json}}
    topics:
      - {arn: "arn:aws:sns:us-east-1:123456789012:removed", events: ["s3:ObjectRemoved:*", "s3:ObjectRestore:Completed"]}
"#,
        );
        assert_eq!(found, Vec::<String>::new());
        // Removing either is `{}`; a redirect of every request alone is a website too.
        let found = check(
            "spec:\n  notifications: {}\n  website: {redirectAllRequestsTo: {hostName: example.com}}\n",
        );
        assert_eq!(found, Vec::<String>::new());
        assert_eq!(check("spec:\n  website: {}\n"), Vec::<String>::new());
    }

    #[test]
    fn website_errors_name_their_line() {
        let found = check(
            r#"
spec:
  website:
    errorDocument: ""
    routingRules:
      - condition: {}
        redirect: {}
      - condition: {httpErrorCodeReturnedEquals: 302}
        redirect: {httpRedirectCode: 200, replaceKeyPrefixWith: a/, replaceKeyWith: b, hostName: ""}
"#,
        );
        assert_eq!(
            found,
            [
                "b.yaml:3:3: error: spec.website: a website needs indexDocument (or redirectAllRequestsTo); `website: {}` removes the website",
                "b.yaml:4:20: error: spec.website.errorDocument: must not be empty",
                "b.yaml:6:20: error: spec.website.routingRules[0].condition: needs keyPrefixEquals or httpErrorCodeReturnedEquals (leave the condition out to redirect every request)",
                "b.yaml:7:19: error: spec.website.routingRules[0].redirect: needs at least one of hostName, httpRedirectCode, protocol, replaceKeyPrefixWith, replaceKeyWith",
                "b.yaml:8:50: error: spec.website.routingRules[1].condition.httpErrorCodeReturnedEquals: `302` is not an HTTP error status (4XX or 5XX)",
                "b.yaml:9:38: error: spec.website.routingRules[1].redirect.httpRedirectCode: `200` is not an HTTP redirect status (3XX)",
                "b.yaml:9:85: error: spec.website.routingRules[1].redirect.replaceKeyWith: replaceKeyPrefixWith and replaceKeyWith exclude each other",
                "b.yaml:9:98: error: spec.website.routingRules[1].redirect.hostName: must not be empty",
            ]
        );
        let found = check(
            "spec:\n  website:\n    indexDocument: pages/index.html\n    redirectAllRequestsTo: {hostName: \"\"}\n",
        );
        assert_eq!(
            found,
            [
                "b.yaml:3:20: error: spec.website.indexDocument: `pages/index.html` holds `/`: it is a suffix such as `index.html`, appended to requests for a folder",
                "b.yaml:4:28: error: spec.website.redirectAllRequestsTo: excludes indexDocument, errorDocument and routingRules: a website either serves the bucket or redirects every request",
                "b.yaml:4:39: error: spec.website.redirectAllRequestsTo.hostName: must not be empty",
            ]
        );
        let rules = "      - redirect: {protocol: https}\n".repeat(51);
        let found = check(&format!(
            "spec:\n  website:\n    indexDocument: index.html\n    routingRules:\n{rules}"
        ));
        assert_eq!(
            found,
            ["b.yaml:5:7: error: spec.website.routingRules: S3 allows at most 50 routing rules"]
        );
    }

    #[test]
    fn notification_events_arns_ids_and_filters_are_checked() {
        let found = check(
            r#"
spec:
  notifications:
    lambdaFunctions:
      - {id: a, arn: "arn:aws:sqs:us-east-1:123456789012:q", events: []}
      - {id: a, arn: "arn:aws:lambda:us-east-1:123456789012:function:f", events: ["ObjectCreated:*", "s3:objectremoved:delete", "s3:ObjectCreated:Everything", "s3:TestEvent"], filter: {prefix: ""}}
    queues:
      - {id: "", arn: "arn:aws:sqs:eu-west-1:123456789012:q", events: ["s3:ObjectCreated:Put", "s3:ObjectCreated:Put"], filter: {suffix: "*.csv"}}
      - {arn: "arn:aws:sqs:us-east-1:123456789012:q.fifo", events: ["s3:ObjectTagging:*"]}
    topics:
      - {arn: "arn:aws-cn:sns:us-east-1:123456789012:t", events: ["s3:LifecycleTransition"]}
      - {arn: "arn:aws:sns:us-east-1:12345:t", events: ["s3:IntelligentTiering"]}
      - {arn: "arn:aws:sns:us-east-1:123456789012:bad/name", events: ["s3:ReducedRedundancyLostObject"]}
      - {arn: "arn:aws:lambda:us-east-1:123456789012:function:", events: ["s3:Replication:*"]}
"#,
        );
        assert_eq!(
            found,
            [
                "b.yaml:5:22: error: spec.notifications.lambdaFunctions[0].arn: `arn:aws:sqs:us-east-1:123456789012:q` is not a Lambda function ARN (arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME)",
                "b.yaml:5:70: error: spec.notifications.lambdaFunctions[0].events: at least one event is required",
                "b.yaml:6:14: error: spec.notifications.lambdaFunctions[1].id: id `a` is used twice (first by spec.notifications.lambdaFunctions[0])",
                "b.yaml:6:83: error: spec.notifications.lambdaFunctions[1].events[0]: `ObjectCreated:*` is not an S3 event type; did you mean `s3:ObjectCreated:*`?",
                "b.yaml:6:102: error: spec.notifications.lambdaFunctions[1].events[1]: `s3:objectremoved:delete` is not an S3 event type; did you mean `s3:ObjectRemoved:Delete`?",
                "b.yaml:6:129: error: spec.notifications.lambdaFunctions[1].events[2]: `s3:ObjectCreated:Everything` is not an event type S3 sends to Lambda, SQS or SNS (the list is in the Bucket section of docs/manifests.md)",
                "b.yaml:6:160: error: spec.notifications.lambdaFunctions[1].events[3]: `s3:TestEvent` is not an event type S3 sends to Lambda, SQS or SNS (the list is in the Bucket section of docs/manifests.md)",
                "b.yaml:6:194: error: spec.notifications.lambdaFunctions[1].filter.prefix: must not be empty (leave it out to match every key)",
                "b.yaml:8:14: error: spec.notifications.queues[0].id: must not be empty (leave it out and S3 assigns one)",
                "b.yaml:8:23: error: spec.notifications.queues[0].arn: `arn:aws:sqs:eu-west-1:123456789012:q` is in region `eu-west-1`; S3 sends notifications only to destinations in the bucket's region `us-east-1`",
                "b.yaml:8:96: error: spec.notifications.queues[0].events[1]: `s3:ObjectCreated:Put` is listed twice",
                "b.yaml:8:138: warning: spec.notifications.queues[0].filter.suffix: S3 filters have no wildcards: `*` only matches a `*` in the key",
                "b.yaml:9:15: error: spec.notifications.queues[1].arn: `arn:aws:sqs:us-east-1:123456789012:q.fifo` is a FIFO queue; S3 sends notifications to standard queues only",
                "b.yaml:11:15: error: spec.notifications.topics[0].arn: `arn:aws-cn:sns:us-east-1:123456789012:t` is in partition `aws-cn`; the Environment's is `aws`",
                "b.yaml:12:15: error: spec.notifications.topics[1].arn: `arn:aws:sns:us-east-1:12345:t` has account `12345`; an account id is 12 digits",
                "b.yaml:13:15: error: spec.notifications.topics[2].arn: `arn:aws:sns:us-east-1:123456789012:bad/name` names no topic: a topic name is 1 to 256 letters, digits, `-` or `_`",
                "b.yaml:14:15: error: spec.notifications.topics[3].arn: `arn:aws:lambda:us-east-1:123456789012:function:` is not an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)",
            ]
        );
    }

    #[test]
    fn overlapping_notifications_are_refused() {
        let found = check(
            r#"
spec:
  notifications:
    lambdaFunctions:
      - {arn: "arn:aws:lambda:us-east-1:123456789012:function:f", events: ["s3:ObjectCreated:*"], filter: {prefix: images/}}
    queues:
      - {arn: "arn:aws:sqs:us-east-1:123456789012:q", events: ["s3:ObjectCreated:Put"], filter: {prefix: images/raw/}}
      - {arn: "arn:aws:sqs:us-east-1:123456789012:q", events: ["s3:ObjectCreated:Put"], filter: {prefix: logs/}}
      - {arn: "arn:aws:sqs:us-east-1:123456789012:q", events: ["s3:ObjectRemoved:*"], filter: {suffix: .jpg}}
    topics:
      - {arn: "arn:aws:sns:us-east-1:123456789012:t", events: ["s3:ObjectRemoved:Delete"], filter: {prefix: images/}}
      - {arn: "arn:aws:sns:us-east-1:123456789012:t", events: ["s3:ObjectRemoved:Delete"], filter: {suffix: .png}}
      - {arn: "arn:aws:sns:us-east-1:123456789012:t", events: ["s3:ObjectRemoved:Delete"], filter: {prefix: videos/, suffix: .mp4}}
"#,
        );
        assert_eq!(
            found,
            [
                "b.yaml:7:9: error: spec.notifications.queues[0]: overlaps spec.notifications.lambdaFunctions[0]: both get `s3:ObjectCreated:*` for the keys their filters share, and S3 refuses configurations that overlap (give them disjoint prefixes or suffixes, or one destination)",
                "b.yaml:11:9: error: spec.notifications.topics[0]: overlaps spec.notifications.queues[2]: both get `s3:ObjectRemoved:*` for the keys their filters share, and S3 refuses configurations that overlap (give them disjoint prefixes or suffixes, or one destination)",
                "b.yaml:12:9: error: spec.notifications.topics[1]: overlaps spec.notifications.topics[0]: both get `s3:ObjectRemoved:Delete` for the keys their filters share, and S3 refuses configurations that overlap (give them disjoint prefixes or suffixes, or one destination)",
            ]
        );
    }

    #[test]
    fn an_arn_of_another_service_is_refused() {
        // What validation sees of `{ref:Role/r.arn}` (its stand-in): refused like any other
        // wrong ARN (tests/fixtures/invalid/bucket_website_notifications has the reference).
        let found = check(
            "spec:\n  notifications:\n    queues:\n      - {arn: \"arn:aws:iam::123456789012:role/r\", events: [\"s3:ObjectCreated:*\"]}\n",
        );
        assert_eq!(
            found,
            ["b.yaml:4:15: error: spec.notifications.queues[0].arn: `arn:aws:iam::123456789012:role/r` is not an SQS queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME)"]
        );
    }

    #[test]
    fn event_list_matches_what_s3_documents() {
        assert_eq!(NOTIFICATION_EVENTS.len(), 27);
        let unique: BTreeSet<_> = NOTIFICATION_EVENTS.iter().collect();
        assert_eq!(unique.len(), NOTIFICATION_EVENTS.len());
        assert!(NOTIFICATION_EVENTS.iter().all(|e| e.starts_with("s3:")));
    }
}
