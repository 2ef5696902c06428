//! mlspace-gitops keeps the AWS footprint of an MLSpace environment (IAM roles and
//! policies, S3 buckets, DynamoDB tables) equal to what a directory of YAML manifests says.
//!
//! The pipeline, one module per stage:
//! - [`syntax`]: YAML with positions, diagnostics, placeholders (pure).
//! - [`kinds`]: the kind registry; each kind's spec, validation, pure diff and import, and
//!   with the `runtime` feature its AWS half.
//! - [`manifest`]: load and compile manifests into a desired state (pure).
//! - [`access`]: access across documents: escalation paths of a role's effective
//!   permissions, and the access a change adds and removes (pure).
//! - [`plan`]: desired + observed → plan, as data, with its access delta (pure).
//! - [`review`]: the diff of two revisions' desired states and the pull-request comment
//!   (markdown) of a plan or a diff (pure).
//! - [`inventory`]: what is managed, prune decisions, history records (pure).
//! - [`events`]: CloudTrail events from EventBridge, mapped to the managed resources they
//!   touch (pure); the daemon reads them from SQS and reconciles only those resources.
//! - [`shard`]: which replica reconciles which Environment, from the live replicas
//!   (rendezvous hashing with bounded loads; pure).
//! - `observe`, `apply`, `import`: read and change AWS through the kinds (runtime).
//! - `pipeline`: one Environment reconciled end to end; the CLI and the daemon call it.
//! - [`notify`]: the notices of what the daemon did and refused (pure), and with the
//!   `runtime` feature their delivery to Slack, Teams, webhooks and SNS.
//! - `source`, `daemon`, `state`, `status`, `metrics`, `http`, `ui`: the controller around it
//!   (`ui`: the read-only web UI on the HTTP listener).
//!
//! Without the default `runtime` feature only the pure stages build, which proves they
//! need no AWS SDK, tokio, axum or git2.

pub mod access;
pub mod events;
pub mod inventory;
pub mod kinds;
pub mod manifest;
pub mod notify;
pub mod plan;
pub mod review;
pub mod schema;
pub mod shard;
pub mod syntax;

#[cfg(feature = "runtime")]
pub mod apply;
#[cfg(feature = "runtime")]
pub mod aws;
#[cfg(feature = "runtime")]
pub mod daemon;
#[cfg(feature = "runtime")]
pub mod http;
#[cfg(feature = "runtime")]
pub mod import;
#[cfg(feature = "runtime")]
pub mod metrics;
#[cfg(feature = "runtime")]
pub mod observe;
#[cfg(feature = "runtime")]
pub mod pipeline;
#[cfg(feature = "runtime")]
pub mod secret;
#[cfg(feature = "runtime")]
pub mod source;
#[cfg(feature = "runtime")]
pub mod state;
#[cfg(feature = "runtime")]
pub mod status;
#[cfg(feature = "runtime")]
pub mod ui;
