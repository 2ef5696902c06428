//! CloudTrail events, as EventBridge delivers them to an SQS queue, turned into the managed
//! resources they touch (pure: no AWS types, no IO).
//!
//! AWS records every management API call in CloudTrail and hands it to EventBridge as an
//! event of detail type `AWS API Call via CloudTrail` (IAM's in us-east-1 only, S3's,
//! DynamoDB's and KMS's in their own region); `deploy/events` routes those of the managed
//! services to a queue the daemon reads. Here:
//!
//! - [`parse`] reads a message body: the EventBridge envelope and the CloudTrail record in its
//!   `detail`, down to the [`ApiCall`] and the AWS objects it names ([`crate::kinds::AwsObject`],
//!   ARNs);
//! - [`EventIndex`] knows the managed resources of one Environment by the objects and ARNs
//!   events name them with (each kind says how: [`crate::kinds::KindPlan::event_objects`]),
//!   and [`EventIndex::classify`]s a call: the resources to reconcile, or why it is ignored
//!   (read-only, failed, another account, the daemon's own principal, an object the
//!   Environment ignores, nothing managed).
//!
//! An event is only a trigger: the daemon reads AWS again before planning, so duplicates,
//! events out of order and events about a state already repaired change nothing.

mod envelope;
mod index;

pub use envelope::{parse, ApiCall, Envelope, ParseError, Source, DETAIL_TYPE};
pub use index::{EventIndex, Ignored, Verdict};

/// The CloudTrail event names of each service that change what the kinds manage: the
/// EventBridge rules of `deploy/events` let exactly these through (a test holds the template
/// to this list). The parser does not depend on it: any write call naming a managed
/// resource is acted on.
pub const EVENT_NAMES: [(Source, &[&str]); 4] = [
    (
        Source::Iam,
        &[
            "AddRoleToInstanceProfile",
            "AttachRolePolicy",
            "CreateInstanceProfile",
            "CreatePolicy",
            "CreatePolicyVersion",
            "CreateRole",
            "CreateServiceLinkedRole",
            "DeleteInstanceProfile",
            "DeletePolicy",
            "DeletePolicyVersion",
            "DeleteRole",
            "DeleteRolePermissionsBoundary",
            "DeleteRolePolicy",
            "DeleteServiceLinkedRole",
            "DetachRolePolicy",
            "PutRolePermissionsBoundary",
            "PutRolePolicy",
            "RemoveRoleFromInstanceProfile",
            "SetDefaultPolicyVersion",
            "TagPolicy",
            "TagRole",
            "UntagPolicy",
            "UntagRole",
            "UpdateAssumeRolePolicy",
            "UpdateRole",
            "UpdateRoleDescription",
        ],
    ),
    (
        Source::S3,
        &[
            "CreateBucket",
            "DeleteBucket",
            "DeleteBucketCors",
            "DeleteBucketEncryption",
            "DeleteBucketLifecycle",
            "DeleteBucketOwnershipControls",
            "DeleteBucketPolicy",
            "DeleteBucketPublicAccessBlock",
            "DeleteBucketTagging",
            "DeleteBucketWebsite",
            "PutBucketCors",
            "PutBucketEncryption",
            "PutBucketLifecycle",
            "PutBucketLogging",
            "PutBucketNotification",
            "PutBucketOwnershipControls",
            "PutBucketPolicy",
            "PutBucketPublicAccessBlock",
            "PutBucketTagging",
            "PutBucketVersioning",
            "PutBucketWebsite",
        ],
    ),
    (
        Source::DynamoDb,
        &[
            "CreateTable",
            "DeleteTable",
            "TagResource",
            "UntagResource",
            "UpdateContinuousBackups",
            "UpdateTable",
            "UpdateTimeToLive",
        ],
    ),
    (
        Source::Kms,
        &[
            "CancelKeyDeletion",
            "CreateAlias",
            "DeleteAlias",
            "DisableKey",
            "DisableKeyRotation",
            "EnableKey",
            "EnableKeyRotation",
            "PutKeyPolicy",
            "ScheduleKeyDeletion",
            "TagResource",
            "UntagResource",
            "UpdateAlias",
            "UpdateKeyDescription",
        ],
    ),
];

/// The event names of `source` in [`EVENT_NAMES`].
pub fn event_names(source: Source) -> &'static [&'static str] {
    EVENT_NAMES
        .iter()
        .find(|(s, _)| *s == source)
        .map_or(&[], |(_, names)| names)
}
