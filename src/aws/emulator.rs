//! Workarounds for the AWS emulator the tests and the demo run against (moto 5.2 in server
//! mode), in one place. Production code is written for AWS as documented; each function
//! here names the emulator behaviour it absorbs and is harmless against AWS itself.
//!
//! Gaps tolerated elsewhere without code of their own, for the record:
//! - `SetDefaultPolicyVersion` on the version already default breaks moto's default flag:
//!   the engine never calls it (a new version is created as the default).
//! - `DeletePolicy` does not enforce `DeleteConflict`: the engine detaches and deletes
//!   versions first, as AWS requires.
//! - `GetAccountAuthorizationDetails` ignores paging: its pages are collected until the
//!   service says they end, which moto does after the first.
//! - Bucket policies with a Deny break object calls: the engine makes no object calls but
//!   the deletion of a bucket's contents (`forceDestroy`), which tests run without a Deny.
//! - `UpdateTable` replaces `AttributeDefinitions` rather than merging them: the engine
//!   always sends the full set, which AWS accepts too.
//! - `TagResource` on a DynamoDB table appends a key set again: the last value read wins.
//! - `GetBucketNotificationConfiguration` leaves `EventBridgeConfiguration` out of its answer:
//!   a bucket's `eventBridge: true` is tested without the emulator.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

/// Whether S3 clients must address buckets by path. Emulators (and S3-compatible
/// endpoints) on a custom endpoint serve `http://host/bucket`, not virtual hosts such as
/// `http://bucket.host`, which do not resolve on loopback. AWS's own endpoints keep
/// virtual-hosted style.
pub fn s3_path_style(conf: &aws_config::SdkConfig) -> bool {
    conf.endpoint_url().is_some()
}

/// moto answers GetBucketVersioning with the root element `GetBucketVersioningResponse`
/// where S3 has `VersioningConfiguration`, and the SDK rejects that answer as an error.
/// For such a successful (2xx) answer: `Some(Some(true))` enabled, `Some(Some(false))`
/// suspended, `Some(None)` never enabled. `None` for every real error, which S3 itself is
/// the only source of.
pub fn versioning_answer<E>(err: &SdkError<E, HttpResponse>) -> Option<Option<bool>> {
    let SdkError::ServiceError(se) = err else {
        return None;
    };
    let raw = se.raw();
    if !raw.status().is_success() {
        return None;
    }
    let body = std::str::from_utf8(raw.body().bytes()?).ok()?;
    if !body.contains("<GetBucketVersioningResponse") {
        return None;
    }
    Some(if body.contains("<Status>Enabled</Status>") {
        Some(true)
    } else if body.contains("<Status>Suspended</Status>") {
        Some(false)
    } else {
        None
    })
}

/// moto answers GetBucketNotificationConfiguration for a bucket without notifications with
/// an empty root element `GetBucketNotificationResponse` where S3 has an empty
/// `NotificationConfiguration`, and the SDK rejects that answer as an error. Whether `err` is
/// such a successful (2xx) answer, which means "no notification"; `false` for every real
/// error.
pub fn empty_notification_answer<E>(err: &SdkError<E, HttpResponse>) -> bool {
    let SdkError::ServiceError(se) = err else {
        return false;
    };
    let raw = se.raw();
    raw.status().is_success()
        && raw
            .body()
            .bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .is_some_and(|body| body.contains("<GetBucketNotificationResponse"))
}

/// The name of a managed policy in a GetAccountAuthorizationDetails answer: moto leaves
/// `PolicyName` out, so it is taken from the ARN's last segment when missing.
pub fn gaad_policy_name(name: Option<&str>, arn: Option<&str>) -> Option<String> {
    name.map(str::to_string)
        .or_else(|| arn.map(|a| a.rsplit('/').next().unwrap_or(a).to_string()))
}

/// Whether an error of AddRoleToInstanceProfile means "the profile already holds a role":
/// AWS answers `EntityAlreadyExists` (a modeled variant the caller matches itself), moto
/// answers `LimitExceeded`, which AWS uses for quotas. Either way the caller then reads the
/// profile to see which role it holds, so treating moto's answer alike is safe.
pub fn instance_profile_holds_a_role(limit_exceeded: bool) -> bool {
    limit_exceeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_come_from_the_arn_when_missing() {
        assert_eq!(
            gaad_policy_name(None, Some("arn:aws:iam::123456789012:policy/a/p")).as_deref(),
            Some("p")
        );
        assert_eq!(
            gaad_policy_name(Some("q"), Some("x/p")).as_deref(),
            Some("q")
        );
        assert_eq!(gaad_policy_name(None, None), None);
    }
}
