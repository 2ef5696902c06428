//! What every IAM kind uses to talk to IAM: the client, IAM's error codes, tags to and
//! from the SDK, documents as IAM returns them, and the role reads Role and
//! ServiceLinkedRole share.

use aws_sdk_iam::types::Tag;
use serde_json::Value;

pub use crate::aws::gone_ok;
use crate::aws::{all_pages, AwsError, CallCounter, ErrorClass, ServiceClient, ServiceCode};
use crate::kinds::common::Tags;

impl ServiceClient for aws_sdk_iam::Client {
    fn build(conf: &aws_config::SdkConfig, counter: CallCounter) -> Self {
        aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(conf)
                .interceptor(counter)
                .build(),
        )
    }
}

/// The IAM client of a context.
pub fn iam(aws: &crate::aws::AwsContext) -> aws_sdk_iam::Client {
    aws.client()
}

/// The IAM error codes the engine tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamCode {
    /// The role, policy, profile or attachment does not exist.
    NoSuchEntity,
    /// Something of that name exists.
    EntityAlreadyExists,
    /// Still attached, or still holding something.
    DeleteConflict,
    /// Another request changed the entity at the same time.
    ConcurrentModification,
    /// The entity is being changed by AWS; try again.
    EntityTemporarilyUnmodifiable,
    /// A quota was reached (or, on the emulator, a profile already holds a role).
    LimitExceeded,
    /// A document IAM refuses (or names a principal not visible yet).
    MalformedPolicyDocument,
    /// A parameter IAM refuses.
    InvalidInput,
    /// A service-linked or otherwise protected entity.
    UnmodifiableEntity,
}

impl ServiceCode for IamCode {
    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "NoSuchEntity" => IamCode::NoSuchEntity,
            "EntityAlreadyExists" => IamCode::EntityAlreadyExists,
            "DeleteConflict" => IamCode::DeleteConflict,
            "ConcurrentModification" => IamCode::ConcurrentModification,
            "EntityTemporarilyUnmodifiable" => IamCode::EntityTemporarilyUnmodifiable,
            "LimitExceeded" => IamCode::LimitExceeded,
            "MalformedPolicyDocument" => IamCode::MalformedPolicyDocument,
            "InvalidInput" => IamCode::InvalidInput,
            "UnmodifiableEntity" => IamCode::UnmodifiableEntity,
            _ => return None,
        })
    }

    fn class(self) -> Option<ErrorClass> {
        Some(match self {
            IamCode::NoSuchEntity => ErrorClass::NotFound,
            IamCode::EntityAlreadyExists | IamCode::DeleteConflict => ErrorClass::Conflict,
            IamCode::ConcurrentModification | IamCode::EntityTemporarilyUnmodifiable => {
                ErrorClass::Transient
            }
            IamCode::LimitExceeded
            | IamCode::MalformedPolicyDocument
            | IamCode::InvalidInput
            | IamCode::UnmodifiableEntity => ErrorClass::Fatal,
        })
    }
}

/// Up to this many names of a kind are read resource by resource; more use the account
/// snapshot ([`super::snapshot`]).
pub const PER_RESOURCE_MAX: usize = 3;

/// Page size asked of paginated IAM reads (IAM's maximum).
pub const PAGE: i32 = 1000;

/// The last segment of an IAM ARN (`arn:aws:iam::1:policy/a/b/NAME` → `NAME`).
pub fn name_from_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Tags from the SDK's list.
pub fn tags_from_sdk(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// Tags for an SDK request.
pub fn tags_to_sdk(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        })
        .collect()
}

/// Decode a document as IAM returns it (URL-encoded or raw). A document that does not
/// parse is kept as its text, which compares unequal to any desired document, so the
/// next apply overwrites it.
pub fn decode_document(what: &str, text: &str) -> Value {
    mlspace_policy::decode_iam_document(text).unwrap_or_else(|e| {
        tracing::warn!(document = what, error = %e, "IAM returned a policy document that does not parse");
        Value::String(text.to_string())
    })
}

/// Every role under `prefix`, all pages.
pub async fn roles_under(
    iam: &aws_sdk_iam::Client,
    prefix: &str,
) -> Result<Vec<aws_sdk_iam::types::Role>, AwsError> {
    let pages = iam
        .list_roles()
        .path_prefix(prefix)
        .max_items(PAGE)
        .into_paginator()
        .send();
    let pages = all_pages::<IamCode, _, _>("iam:ListRoles", pages).await?;
    Ok(pages.into_iter().flat_map(|p| p.roles).collect())
}

/// GetRole, or `None` when there is no such role.
pub async fn get_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<Option<aws_sdk_iam::types::Role>, AwsError> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(e) => {
            let e = IamCode::error("iam:GetRole", e);
            if e.is_not_found() {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_convert() {
        assert_eq!(name_from_arn("arn:aws:iam::123456789012:policy/a/b/p"), "p");
        let tags: Tags = [("a".to_string(), "1".to_string())].into();
        assert_eq!(tags_from_sdk(&tags_to_sdk(&tags)), tags);
        assert_eq!(
            decode_document("x", "not json"),
            Value::String("not json".into())
        );
    }
}
