//! What the daemon knows about itself: the `/status` document and the readiness rule
//! behind `/readyz`.
//!
//! Field names are part of the interface (scripts and dashboards read them): snake_case,
//! always present, `null` when unknown.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::kinds::Kind;

/// Where one resource stands after the last reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceState {
    /// AWS matches git.
    InSync,
    /// AWS differs from git (detect mode, or not yet corrected).
    Drifted,
    /// The last change failed; see `error` and `retry_at`.
    Failed,
    /// Not yet observed or applied.
    Pending,
    /// Exists in AWS without our ownership tag: left alone.
    Conflict,
}

impl ResourceState {
    /// All states.
    pub const ALL: [ResourceState; 5] = [
        ResourceState::InSync,
        ResourceState::Drifted,
        ResourceState::Failed,
        ResourceState::Pending,
        ResourceState::Conflict,
    ];

    /// The serialized name, also the `state` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::InSync => "in_sync",
            ResourceState::Drifted => "drifted",
            ResourceState::Failed => "failed",
            ResourceState::Pending => "pending",
            ResourceState::Conflict => "conflict",
        }
    }
}

impl fmt::Display for ResourceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One managed resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStatus {
    /// The Environment it belongs to.
    #[serde(default)]
    pub environment: String,
    /// Its kind.
    pub kind: Kind,
    /// Its manifest name.
    pub name: String,
    /// Where it stands.
    pub state: ResourceState,
    /// The last error for it, if any.
    pub error: Option<String>,
    /// Epoch seconds of the next retry after a failure.
    pub retry_at: Option<u64>,
}

/// The `/status` document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Display location of the source, without credentials.
    pub source: String,
    /// `apply` or `detect`.
    pub mode: String,
    /// Newest revision seen at the source.
    pub source_revision: Option<String>,
    /// Epoch seconds of the last fetch attempt.
    pub last_fetch_at: Option<u64>,
    /// Why the last fetch failed, `null` when it succeeded.
    pub last_fetch_error: Option<String>,
    /// The revision the last reconcile worked on.
    pub last_attempted_revision: Option<String>,
    /// The last revision that reconciled successfully.
    pub last_applied_revision: Option<String>,
    /// The newest revision refused because its head commit failed signature verification
    /// (`run --verify-commits`); `last_error` says why. `null` when none was refused.
    #[serde(default)]
    pub last_rejected_revision: Option<String>,
    /// Validation errors (all lines) or the reconcile error of the last attempt.
    pub last_error: Option<String>,
    /// Epoch seconds of the end of the last reconcile.
    pub last_reconcile_at: Option<u64>,
    /// Reconciles attempted since start.
    pub reconciles: u64,
    /// Every Environment the revision holds, by name.
    #[serde(default)]
    pub environments: Vec<EnvironmentStatus>,
    /// Every managed resource.
    pub resources: Vec<ResourceStatus>,
}

/// One Environment (an account and region) of the revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentStatus {
    /// `metadata.name` of the Environment.
    pub name: String,
    /// Its manifests directory, relative to the revision's manifests path (`.` when the path
    /// is the Environment itself).
    pub directory: String,
    /// AWS account id.
    pub account: String,
    /// AWS region.
    pub region: String,
    /// Whether this replica holds the Environment's lease (and so reconciles it).
    pub leader: bool,
    /// The last revision that reconciled this Environment without errors.
    pub last_applied_revision: Option<String>,
    /// Errors of its last reconcile, `null` when it succeeded.
    pub last_error: Option<String>,
    /// Epoch seconds of the end of its last reconcile.
    pub last_reconcile_at: Option<u64>,
}

impl Status {
    /// An empty status for a daemon reading `source` in `mode`.
    pub fn new(source: impl Into<String>, mode: impl Into<String>) -> Status {
        Status {
            source: source.into(),
            mode: mode.into(),
            ..Status::default()
        }
    }

    /// Resources per (kind, state), the shape `Metrics::set_resource_counts` takes.
    pub fn resource_counts(&self) -> BTreeMap<(Kind, ResourceState), i64> {
        let mut counts = BTreeMap::new();
        for r in &self.resources {
            *counts.entry((r.kind, r.state)).or_insert(0) += 1;
        }
        counts
    }
}

/// The status shared between the daemon (writer) and the HTTP server (readers).
pub type SharedStatus = Arc<RwLock<Status>>;

/// Readiness: a first reconcile has completed and the source answered recently.
#[derive(Debug)]
pub struct Readiness {
    max_source_age: Duration,
    reconciled: AtomicBool,
    source_reached_at: Mutex<Option<Instant>>,
}

impl Readiness {
    /// Not ready until [`Readiness::reconciled`] and [`Readiness::source_reached`] are called;
    /// not ready again once the source has been silent for longer than `max_source_age`.
    pub fn new(max_source_age: Duration) -> Readiness {
        Readiness {
            max_source_age,
            reconciled: AtomicBool::new(false),
            source_reached_at: Mutex::new(None),
        }
    }

    /// Record that a first reconcile has completed.
    pub fn reconciled(&self) {
        self.reconciled.store(true, Ordering::Release);
    }

    /// Record that the source answered just now.
    pub fn source_reached(&self) {
        *self.lock() = Some(Instant::now());
    }

    /// First reconcile done and the source reached within the maximum age.
    pub fn is_ready(&self) -> bool {
        self.unready_reason().is_none()
    }

    /// Why not ready, in a few words; `None` when ready.
    pub fn unready_reason(&self) -> Option<&'static str> {
        if !self.reconciled.load(Ordering::Acquire) {
            return Some("no reconcile has completed yet");
        }
        match *self.lock() {
            None => Some("source not reached yet"),
            Some(at) if at.elapsed() > self.max_source_age => Some("source not reached recently"),
            Some(_) => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // An Option<Instant> cannot be left half-written: a poisoned lock is still usable.
        self.source_reached_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_match_serde() {
        for s in ResourceState::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
        }
    }

    #[test]
    fn readiness_needs_both_and_expires() {
        let r = Readiness::new(Duration::from_millis(50));
        assert!(!r.is_ready());
        r.source_reached();
        assert!(!r.is_ready());
        r.reconciled();
        assert!(r.is_ready());
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(r.unready_reason(), Some("source not reached recently"));
        r.source_reached();
        assert!(r.is_ready());
    }

    #[test]
    fn counts_by_kind_and_state() {
        let res = |kind, state| ResourceStatus {
            environment: "e".into(),
            kind,
            name: "x".into(),
            state,
            error: None,
            retry_at: None,
        };
        let mut st = Status::new("git@example:repo", "apply");
        st.resources = vec![
            res(Kind::Role, ResourceState::InSync),
            res(Kind::Role, ResourceState::InSync),
            res(Kind::Table, ResourceState::Failed),
        ];
        let c = st.resource_counts();
        assert_eq!(c[&(Kind::Role, ResourceState::InSync)], 2);
        assert_eq!(c[&(Kind::Table, ResourceState::Failed)], 1);
        assert_eq!(c.len(), 2);
    }
}
