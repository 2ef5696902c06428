//! The gate: the caller's say on what of a plan runs now. The CLI asks a person (once for
//! every Environment of the command); the daemon's error policy holds back changes still
//! backing off after a failure.

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::plan::{Plan, ResourceId};

/// What may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Every change.
    All,
    /// Only these; the others are held back, with why.
    Only {
        /// The changes that run.
        run: BTreeSet<ResourceId>,
        /// The changes held back and why.
        held: Vec<(ResourceId, String)>,
    },
    /// Nothing; nothing is recorded either (a person said no).
    Cancel,
}

/// Decides what of an Environment's plan runs.
#[async_trait]
pub trait Gate: Send + Sync {
    /// The answer for `environment`'s `plan`.
    async fn approve(&self, environment: &str, plan: &Plan) -> Approval;

    /// The Environment stopped before its plan (its account could not be reached), so it
    /// will not ask: a gate that waits for every Environment stops waiting for it.
    fn skipped(&self, _environment: &str) {}
}

/// Approves everything (`apply --auto-approve`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApproveAll;

#[async_trait]
impl Gate for ApproveAll {
    async fn approve(&self, _: &str, _: &Plan) -> Approval {
        Approval::All
    }
}
