//! mlspace-gitops keeps the AWS footprint of an MLSpace environment (IAM roles and
//! policies, S3 buckets, DynamoDB tables) equal to what a directory of YAML manifests says.
//!
//! The pipeline, one module per stage:
//! - [`manifest`]: parse, template and validate manifests into a desired state (pure).
//! - [`kinds`]: each resource kind's spec, validation, diff and AWS code.

pub mod apply;
pub mod aws;
pub mod daemon;
pub mod http;
pub mod import;
pub mod kinds;
pub mod manifest;
pub mod metrics;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod schema;
pub mod secret;
pub mod source;
pub mod state;
pub mod status;
