//! Kinds. Each kind has one folder: its manifest spec and validation (`mod.rs`), its pure
//! diff (`diff.rs`), the spec that describes an existing resource (`import.rs`) and, with
//! the `runtime` feature, its AWS half (`aws.rs`). A kind joins the pipeline by one line in
//! the registry below; every stage reaches it through what the registry generates.
//!
//! Adding a kind: see "Adding a kind" in `docs/architecture.md`.

mod registry;

pub mod common;
pub mod core;
pub mod environment;
pub mod iam;
#[cfg(feature = "runtime")]
pub mod runtime;

use std::fmt;

pub use self::core::{
    AwsObject, Contribution, Diff, DocKind, FieldChange, HeldAs, HeldDocument, Holdings, Import,
    KindFn, KindInfo, KindPlan, Place, PlanCx, PlanError, Received, Reference, Registered,
    ResolveCx, ResourceId, ResourceKind, ResourceVisitor, Scope,
};

// The registry: one line per kind, in the order kinds are listed, created and (reversed)
// deleted.
registry::registry! {
    /// A customer managed IAM policy.
    ManagedPolicy => resource managed_policy::ManagedPolicy,
    /// An IAM role.
    Role => resource role::Role,
    /// A service-linked IAM role.
    ServiceLinkedRole => resource service_linked_role::ServiceLinkedRole,
    /// ECR statements merged into ManagedPolicies.
    EcrAccess => document ecr_access::EcrAccess,
    /// A customer managed KMS key, named by its alias.
    KmsKey => resource kms_key::KmsKey,
    /// An S3 bucket.
    Bucket => resource bucket::Bucket,
    /// A DynamoDB table.
    Table => resource table::Table,
}

impl Kind {
    /// Parse a manifest's `kind`.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Whether the kind is an AWS resource of its own.
    pub fn is_resource(self) -> bool {
        Kind::RESOURCES.contains(&self)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The spec fields `metadata.ignoreFields` may name on a document of `kind` (none for the
/// Environment and for documents that are not resources).
pub fn ignorable_fields(kind: Kind) -> &'static [&'static str] {
    kind.info().ignorable_fields
}
