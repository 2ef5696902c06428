//! Resource kinds. Each kind has one home: its manifest spec and validation here, its pure
//! diff and its AWS observe/change code beside them.

pub mod bucket;
pub mod common;
pub mod ecr_access;
pub mod environment;
pub mod managed_policy;
pub mod role;
pub mod service_linked_role;
pub mod table;

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every kind a manifest document may have.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum Kind {
    /// The account, region, placeholders and default tags.
    Environment,
    /// A customer managed IAM policy.
    ManagedPolicy,
    /// An IAM role.
    Role,
    /// A service-linked IAM role.
    ServiceLinkedRole,
    /// ECR statements merged into ManagedPolicies.
    EcrAccess,
    /// An S3 bucket.
    Bucket,
    /// A DynamoDB table.
    Table,
}

impl Kind {
    /// All kinds, in the order resources are listed.
    pub const ALL: [Kind; 7] = [
        Kind::Environment,
        Kind::ManagedPolicy,
        Kind::Role,
        Kind::ServiceLinkedRole,
        Kind::EcrAccess,
        Kind::Bucket,
        Kind::Table,
    ];

    /// The name used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Environment => "Environment",
            Kind::ManagedPolicy => "ManagedPolicy",
            Kind::Role => "Role",
            Kind::ServiceLinkedRole => "ServiceLinkedRole",
            Kind::EcrAccess => "EcrAccess",
            Kind::Bucket => "Bucket",
            Kind::Table => "Table",
        }
    }

    /// Parse a manifest's `kind`.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The spec fields `metadata.ignoreFields` may name on a document of `kind` (none for the
/// Environment, EcrAccess and ServiceLinkedRole).
pub fn ignorable_fields(kind: Kind) -> &'static [&'static str] {
    use engine::KindPlan;
    match kind {
        Kind::ManagedPolicy => managed_policy::ManagedPolicy::IGNORABLE_FIELDS,
        Kind::Role => role::Role::IGNORABLE_FIELDS,
        Kind::ServiceLinkedRole => service_linked_role::ServiceLinkedRole::IGNORABLE_FIELDS,
        Kind::Bucket => bucket::Bucket::IGNORABLE_FIELDS,
        Kind::Table => table::Table::IGNORABLE_FIELDS,
        Kind::Environment | Kind::EcrAccess => &[],
    }
}

/// The typed spec of a resource document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ResourceSpec {
    /// See [`managed_policy::ManagedPolicySpec`].
    ManagedPolicy(managed_policy::ManagedPolicySpec),
    /// See [`role::RoleSpec`].
    Role(role::RoleSpec),
    /// See [`service_linked_role::ServiceLinkedRoleSpec`].
    ServiceLinkedRole(service_linked_role::ServiceLinkedRoleSpec),
    /// See [`ecr_access::EcrAccessSpec`].
    EcrAccess(ecr_access::EcrAccessSpec),
    /// See [`bucket::BucketSpec`].
    Bucket(bucket::BucketSpec),
    /// See [`table::TableSpec`].
    Table(table::TableSpec),
}

impl ResourceSpec {
    /// The kind of this spec.
    pub fn kind(&self) -> Kind {
        match self {
            ResourceSpec::ManagedPolicy(_) => Kind::ManagedPolicy,
            ResourceSpec::Role(_) => Kind::Role,
            ResourceSpec::ServiceLinkedRole(_) => Kind::ServiceLinkedRole,
            ResourceSpec::EcrAccess(_) => Kind::EcrAccess,
            ResourceSpec::Bucket(_) => Kind::Bucket,
            ResourceSpec::Table(_) => Kind::Table,
        }
    }
}

pub mod engine;
