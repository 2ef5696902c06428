//! `Bucket`: an S3 bucket and the settings MLSpace relies on.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{check_policy, check_tags, Tags};
use super::core::DocKind;
use super::environment::EnvironmentView;
use super::Kind;
use crate::syntax::diag::DocCx;

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
    pub fn validate(&self, name: &str, cx: &mut DocCx, env_tags: &Tags) {
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
        check_tags(cx, "/spec/tags", &self.tags, env_tags);
    }
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
        spec.validate(name, cx, &env.tags);
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
