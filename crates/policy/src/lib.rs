//! IAM policy document model for mlspace-gitops.
//!
//! Pure functions over [`serde_json::Value`] documents, no IO and no AWS SDK types:
//!
//! - [`validate`]: structural validation as IAM (or S3, for bucket policies) does it,
//!   reporting every [`Issue`] with a JSON pointer into the document.
//! - [`quota_len`]: the length IAM counts against its size quotas.
//! - [`decode_iam_document`]: parse a document as IAM returns it (URL-encoded or raw).
//! - [`normalize`], [`semantically_equal`], [`statement_diff`]: a semantic normal form
//!   used to decide whether the desired and the actual document differ, and to show how.
//! - [`lint()`]: what is wrong or risky in one document, judged against the embedded IAM
//!   [`catalogue`] (services, actions, resource types, condition keys), as [`Finding`]s
//!   with stable check ids ([`lint::CHECKS`]).
//! - [`escalation_paths`]: named privilege-escalation paths in a role's effective
//!   permissions (identity policies capped by a permissions boundary).
//! - [`access_delta`], [`attach_delta`], [`detach_delta`]: the access a change adds and
//!   removes, as readable [`Grant`]s; equal access written differently is no delta.
//!
//! `docs/lint.md` in the repository documents every check, the catalogue's source and
//! the comparison with parliament.
//!
//! Documents are taken as plain JSON values rather than typed structs so that invalid
//! input can still be validated element by element and compared best-effort.
//!
//! ```
//! use mlspace_policy::{decode_iam_document, semantically_equal, validate, PolicyKind};
//! use serde_json::json;
//!
//! let desired = json!({
//!     "Version": "2012-10-17",
//!     "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}]
//! });
//! assert!(validate(&desired, PolicyKind::Identity).is_empty());
//!
//! // As IAM's GetPolicyVersion returns it: URL-encoded, single values as strings.
//! let actual = decode_iam_document(
//!     "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C\
//!      %22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Ab%2F%2A%22%7D%7D",
//! )?;
//! assert!(semantically_equal(&desired, &actual));
//! # Ok::<(), mlspace_policy::PolicyError>(())
//! ```
//!
//! Lint and access delta:
//!
//! ```
//! use mlspace_policy::{access_delta, lint, PolicyKind};
//! use serde_json::json;
//!
//! let old = json!({"Version": "2012-10-17", "Statement": [
//!     {"Effect": "Allow", "Action": "s3:GetObjcet", "Resource": "arn:aws:s3:::b/*"}
//! ]});
//! let findings = lint(&old, PolicyKind::Identity);
//! assert_eq!(findings[0].check, "unknown-action");
//! assert!(findings[0].message.contains("did you mean \"s3:GetObject\"?"));
//!
//! let new = json!({"Version": "2012-10-17", "Statement": [
//!     {"Effect": "Allow", "Action": ["s3:getobject"], "Resource": ["arn:aws:s3:::b/*"]},
//!     {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}
//! ]});
//! let delta = access_delta(Some(&old), Some(&new));
//! assert_eq!(
//!     delta.to_string(),
//!     "+ Allow s3:GetObject on arn:aws:s3:::b/*\n\
//!      + Allow s3:PutObject on arn:aws:s3:::b/*\n\
//!      - Allow s3:GetObjcet on arn:aws:s3:::b/*\n"
//! );
//! assert!(delta.widens());
//! ```

mod arn;
pub mod catalog;
mod condition;
mod delta;
mod encoding;
mod error;
mod escalation;
mod glob;
pub mod lint;
mod normalize;
mod pointer;
mod statement;
mod validate;

pub use catalog::catalogue;
pub use condition::{ConditionOperator, SetQualifier};
pub use delta::{
    access_delta, access_delta_set, attach_delta, detach_delta, plan_access_line, AccessDelta,
    Grant, GrantCondition,
};
pub use encoding::{
    decode_iam_document, quota_len, BUCKET_POLICY_MAX_LEN, MANAGED_POLICY_MAX_LEN,
    ROLE_INLINE_POLICIES_MAX_LEN, TRUST_POLICY_DEFAULT_MAX_LEN,
};
pub use error::PolicyError;
pub use escalation::{escalation_paths, Escalation, PathGrant};
pub use lint::{lint, Finding, Severity as LintSeverity};
pub use normalize::{normalize, semantically_equal, statement_diff, StatementDiff};
pub use statement::Effect;
pub use validate::{has_errors, validate, validate_with_checks, Issue, PolicyKind, Severity};

/// The policy language version that supports policy variables; the one to write.
pub const VERSION_2012: &str = "2012-10-17";
/// The legacy policy language version, still accepted by IAM.
pub const VERSION_2008: &str = "2008-10-17";
