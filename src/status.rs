//! What the daemon knows about itself: the `/status` document, the states of resources as
//! a pure function of an Environment's pipeline report ([`resource_states`]), and the
//! readiness rule behind `/readyz`.
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
use crate::pipeline::EnvReport;
use crate::plan::{Action, ResourceId};

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
    /// Not reconciled: its Environment is suspended (`mlspace-gitops suspend`), or the
    /// resource is annotated `mlspace-gitops/reconcile: disabled`.
    Suspended,
}

impl ResourceState {
    /// All states.
    pub const ALL: [ResourceState; 6] = [
        ResourceState::InSync,
        ResourceState::Drifted,
        ResourceState::Failed,
        ResourceState::Pending,
        ResourceState::Conflict,
        ResourceState::Suspended,
    ];

    /// The serialized name, also the `state` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::InSync => "in_sync",
            ResourceState::Drifted => "drifted",
            ResourceState::Failed => "failed",
            ResourceState::Pending => "pending",
            ResourceState::Conflict => "conflict",
            ResourceState::Suspended => "suspended",
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
    /// Security warnings of the last revision linted (`FILE:LINE:COL:
    /// security-warning[CHECK-ID]: message`), silenced ones left out.
    #[serde(default)]
    pub security_warnings: Vec<String>,
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
    /// Whether it is suspended (`mlspace-gitops suspend`): not reconciled until resumed,
    /// its resources `suspended`. Read from the state store, so every replica shows it.
    #[serde(default)]
    pub suspended: bool,
    /// Epoch seconds of the suspension, `null` when not suspended.
    #[serde(default)]
    pub suspended_at: Option<u64>,
    /// Why it was suspended, as the caller said; `null` when not suspended or not said.
    #[serde(default)]
    pub suspended_reason: Option<String>,
    /// Who suspended it, as the caller named itself; `null` when not said.
    #[serde(default)]
    pub suspended_by: Option<String>,
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

/// Where each resource of an Environment stands after a run, from its report alone:
/// in sync, conflicting, failed (with the error and, from `retry_at`, when it is tried
/// again), drifted (`detect`) or pending (planned, held, or its kind unreadable).
pub fn resource_states(
    report: &EnvReport,
    detect: bool,
    retry_at: impl Fn(&ResourceId) -> Option<u64>,
) -> Vec<ResourceStatus> {
    let mut states: BTreeMap<ResourceId, (ResourceState, Option<String>, Option<u64>)> =
        BTreeMap::new();
    if let Some(plan) = report.plan() {
        for c in &plan.changes {
            let state = match c.action {
                Action::NoOp => ResourceState::InSync,
                Action::Conflict => ResourceState::Conflict,
                Action::Skip => ResourceState::Suspended,
                // Observed only: drifted in either mode, never pending a write.
                Action::Drift => ResourceState::Drifted,
                Action::Create | Action::Update | Action::Delete | Action::Forget if detect => {
                    ResourceState::Drifted
                }
                Action::Create | Action::Update | Action::Delete | Action::Forget => {
                    ResourceState::Pending
                }
            };
            states.insert((c.kind, c.name.clone()), (state, c.reason.clone(), None));
        }
        for e in &plan.errors {
            states.insert(
                (e.kind, e.name.clone()),
                (
                    ResourceState::Failed,
                    Some(format!("{}: {}", e.field, e.message)),
                    None,
                ),
            );
        }
    }
    if let Some(p) = &report.planned {
        for (kind, _) in &p.observation.failures {
            for id in p.cx.declared.keys().filter(|(k, _)| k == kind) {
                states.insert(
                    id.clone(),
                    (
                        ResourceState::Pending,
                        Some("could not be observed".into()),
                        None,
                    ),
                );
            }
        }
    }
    for (id, why) in &report.held {
        let retry = retry_at(id);
        let state = if retry.is_some() {
            ResourceState::Failed
        } else {
            ResourceState::Pending
        };
        states.insert(id.clone(), (state, Some(why.clone()), retry));
    }
    if let Some(applied) = &report.applied {
        for r in &applied.results {
            let id = (r.kind, r.name.clone());
            let entry = match &r.error {
                None => (ResourceState::InSync, None, None),
                Some(e) => (
                    ResourceState::Failed,
                    Some(crate::aws::DisplayChain(e).to_string()),
                    retry_at(&id),
                ),
            };
            states.insert(id, entry);
        }
    }
    states
        .into_iter()
        .map(|((kind, name), (state, error, retry_at))| ResourceStatus {
            environment: report.environment.clone(),
            kind,
            name,
            state,
            // AWS messages may quote what was sent: one line, no terminal controls.
            error: error.map(|e| crate::syntax::diag::escape_control(&e).into_owned()),
            retry_at,
        })
        .collect()
}

/// The status shared between the daemon (writer) and the HTTP server (readers).
pub type SharedStatus = Arc<RwLock<Status>>;

/// How long the daemon's loop may stay in one step (syncing the source, loading a
/// revision, a reconcile pass) before `/healthz` reports it stuck, unless configured
/// (`--stuck-after`).
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(15 * 60);

/// Readiness: a first reconcile has completed, the source answered recently, AWS is
/// answering, and nothing local (the state store, the state directory) is unusable.
///
/// It also holds the loop's liveness behind `/healthz`: the step the loop is in and since
/// when ([`Readiness::busy`]), so that a loop stuck past its deadline fails the health
/// check and gets the process restarted.
#[derive(Debug)]
pub struct Readiness {
    max_source_age: Duration,
    max_aws_silence: Duration,
    reconciled: AtomicBool,
    source_reached_at: Mutex<Option<Instant>>,
    /// Per scope (an Environment, the state store): when the first and the latest of its
    /// unanswered AWS attempts since the last answer started. Absent after an answer.
    aws_silent: Mutex<BTreeMap<String, (Instant, Instant)>>,
    /// Local problems by what they are about (`state store`, `state directory`).
    problems: Mutex<BTreeMap<String, String>>,
    /// The step the loop is in, and since when.
    busy: Mutex<Option<(Instant, &'static str)>>,
    stuck_after: Duration,
}

/// Marks the loop busy with a step until dropped ([`Readiness::busy`]).
#[must_use = "the step ends when the guard is dropped"]
pub struct Busy<'a>(&'a Readiness);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        *lock(&self.0.busy) = None;
    }
}

impl Readiness {
    /// Not ready until [`Readiness::reconciled`] and [`Readiness::source_reached`] are called;
    /// not ready again once the source has been silent for longer than `max_source_age`, or
    /// once AWS has answered none of a scope's attempts for longer than `max_aws_silence`.
    pub fn new(max_source_age: Duration, max_aws_silence: Duration) -> Readiness {
        Readiness {
            max_source_age,
            max_aws_silence,
            reconciled: AtomicBool::new(false),
            source_reached_at: Mutex::new(None),
            aws_silent: Mutex::new(BTreeMap::new()),
            problems: Mutex::new(BTreeMap::new()),
            busy: Mutex::new(None),
            stuck_after: DEFAULT_STUCK_AFTER,
        }
    }

    /// The loop is stuck when one step lasts longer than `deadline`.
    pub fn with_stuck_after(mut self, deadline: Duration) -> Readiness {
        self.stuck_after = deadline;
        self
    }

    /// The loop is in step `what` until the guard is dropped.
    pub fn busy(&self, what: &'static str) -> Busy<'_> {
        *lock(&self.busy) = Some((Instant::now(), what));
        Busy(self)
    }

    /// Why the loop is stuck (a step past the deadline), `None` while it is not.
    pub fn stuck(&self) -> Option<String> {
        let (since, what) = (*lock(&self.busy))?;
        let took = since.elapsed();
        (took > self.stuck_after).then(|| {
            format!(
                "stuck: {what} for {} s (deadline {} s)",
                took.as_secs(),
                self.stuck_after.as_secs()
            )
        })
    }

    /// Record (`Some`) or clear (`None`) a local problem about `what` (`state store`,
    /// `state directory`): not ready while any is recorded.
    pub fn set_problem(&self, what: &str, problem: Option<String>) {
        let mut p = lock(&self.problems);
        match problem {
            Some(why) => {
                p.insert(what.to_string(), why);
            }
            None => {
                p.remove(what);
            }
        }
    }

    /// Record that a first reconcile has completed.
    pub fn reconciled(&self) {
        self.reconciled.store(true, Ordering::Release);
    }

    /// Record that the source answered just now.
    pub fn source_reached(&self) {
        *lock(&self.source_reached_at) = Some(Instant::now());
    }

    /// Record one AWS attempt made for `scope` (`Environment NAME`, `state store`), started
    /// `elapsed` ago: `answered` unless it got no answer or a 5xx. Throttling counts as an
    /// answer: AWS is there, only busy.
    pub fn aws_attempt(&self, scope: &str, answered: bool, elapsed: Duration) {
        let mut silent = lock(&self.aws_silent);
        if answered {
            silent.remove(scope);
            return;
        }
        let started = Instant::now()
            .checked_sub(elapsed)
            .unwrap_or_else(Instant::now);
        silent
            .entry(scope.to_string())
            .and_modify(|(_, last)| *last = started)
            .or_insert((started, started));
    }

    /// Forget the AWS scopes for which `keep` is false (an Environment that left the
    /// manifests no longer makes the daemon unready).
    pub fn retain_aws_scopes(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.aws_silent).retain(|scope, _| keep(scope));
    }

    /// First reconcile done, the source reached within the maximum age and AWS answering.
    pub fn is_ready(&self) -> bool {
        self.unready_reason().is_none()
    }

    /// Why not ready, in a few words (every reason, `; `-separated); `None` when ready.
    pub fn unready_reason(&self) -> Option<String> {
        let mut why = Vec::new();
        if !self.reconciled.load(Ordering::Acquire) {
            why.push("no reconcile has completed yet".to_string());
        }
        // Local problems show first: a reconcile cannot complete while they last.
        for (what, problem) in lock(&self.problems).iter() {
            why.push(format!("{what} unusable: {problem}"));
        }
        if !self.reconciled.load(Ordering::Acquire) {
            return Some(why.join("; "));
        }
        match *lock(&self.source_reached_at) {
            None => why.push("source not reached yet".to_string()),
            Some(at) if at.elapsed() > self.max_source_age => {
                why.push("source not reached recently".into())
            }
            Some(_) => {}
        }
        // Unanswered attempts spread over more than the window: one failed request at the
        // end of a reconcile, followed by idle time, is not an outage.
        let silent: Vec<String> = lock(&self.aws_silent)
            .iter()
            .filter(|(_, (first, last))| last.duration_since(*first) > self.max_aws_silence)
            .map(|(scope, (first, _))| format!("{scope} for {} s", first.elapsed().as_secs()))
            .collect();
        if !silent.is_empty() {
            // While a reconcile waits on AWS the source is not polled either: both show.
            why.push(format!("AWS not answering: {}", silent.join(", ")));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Readiness data cannot be left half-written: a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        let r = Readiness::new(Duration::from_millis(50), Duration::from_secs(60));
        assert!(!r.is_ready());
        r.source_reached();
        assert!(!r.is_ready());
        r.reconciled();
        assert!(r.is_ready());
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(
            r.unready_reason().as_deref(),
            Some("source not reached recently")
        );
        r.source_reached();
        assert!(r.is_ready());
    }

    #[test]
    fn readiness_goes_while_aws_answers_nothing_and_comes_back_with_an_answer() {
        let r = Readiness::new(Duration::from_secs(60), Duration::from_millis(50));
        let none = Duration::ZERO;
        r.reconciled();
        r.source_reached();
        r.aws_attempt("Environment dev", false, none);
        // One unanswered request, then idle time, is not an outage.
        std::thread::sleep(Duration::from_millis(80));
        assert!(r.is_ready());
        // Unanswered attempts spread over more than the window are.
        r.aws_attempt("Environment dev", false, none);
        let why = r.unready_reason().unwrap();
        assert!(
            why.starts_with("AWS not answering: Environment dev for "),
            "{why}"
        );
        r.aws_attempt("Environment dev", true, none);
        assert!(r.is_ready());
        // An attempt that hung for a while counts from when it started.
        r.aws_attempt("Environment gone", false, Duration::from_millis(80));
        r.aws_attempt("Environment gone", false, none);
        assert!(!r.is_ready());
        r.retain_aws_scopes(|s| s != "Environment gone");
        assert!(r.is_ready());
    }

    #[test]
    fn an_unusable_state_store_keeps_readiness_down_and_names_it() {
        let r = Readiness::new(Duration::from_secs(60), Duration::from_secs(60));
        r.source_reached();
        r.set_problem(
            "state store",
            Some("/var/lib/x: Read-only file system".into()),
        );
        assert_eq!(
            r.unready_reason().as_deref(),
            Some("no reconcile has completed yet; state store unusable: /var/lib/x: Read-only file system")
        );
        r.reconciled();
        assert_eq!(
            r.unready_reason().as_deref(),
            Some("state store unusable: /var/lib/x: Read-only file system")
        );
        r.set_problem("state store", None);
        assert!(r.is_ready());
    }

    #[test]
    fn a_step_past_its_deadline_is_stuck() {
        let r = Readiness::new(Duration::from_secs(60), Duration::from_secs(60))
            .with_stuck_after(Duration::from_millis(30));
        assert_eq!(r.stuck(), None);
        {
            let _b = r.busy("loading a revision");
            assert_eq!(r.stuck(), None);
            std::thread::sleep(Duration::from_millis(60));
            let why = r.stuck().unwrap();
            assert!(
                why.starts_with("stuck: loading a revision for 0 s"),
                "{why}"
            );
        }
        assert_eq!(r.stuck(), None);
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
