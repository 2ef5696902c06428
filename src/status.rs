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
    /// Its manifest's `spec.description`, for the kinds that have one.
    #[serde(default)]
    pub description: Option<String>,
    /// The change the last plan holds for it (drifted, pending, failed, conflict); `null`
    /// when in sync.
    #[serde(default)]
    pub pending: Option<PendingChange>,
}

/// The change a plan holds for one resource, as lines for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// What the plan does.
    pub action: Action,
    /// The field diffs (`~ FIELD: OLD → NEW`, `+ FIELD: NEW`, `- FIELD: OLD`).
    pub fields: Vec<String>,
    /// The access delta lines (`access (SUBJECT): NOTE` then one line a grant).
    pub access: Vec<String>,
}

/// A revision as it is shown: id, author and first line of the message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionSummary {
    /// Commit id, or `dir-…` for a local directory.
    pub id: String,
    /// `Name <email>` of the commit author; `null` for a local directory.
    pub author: Option<String>,
    /// First line of the commit message; `null` for a local directory.
    pub message: Option<String>,
}

/// Why a revision was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// It does not validate, is over a limit, or cannot be loaded.
    Invalid,
    /// Its head commit's signature did not verify (`--verify-commits`).
    Unsigned,
    /// A lint finding as severe as `--lint-fail-on`.
    Lint,
}

impl RefusalReason {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Invalid => "invalid",
            RefusalReason::Unsigned => "unsigned",
            RefusalReason::Lint => "lint",
        }
    }
}

/// A revision the daemon refused to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedRevision {
    /// The revision.
    pub revision: RevisionSummary,
    /// Epoch seconds of the refusal.
    pub at: u64,
    /// Why, in one word.
    pub reason: RefusalReason,
    /// The messages, one a line (validation errors as `FILE:LINE:COL: ...`).
    pub errors: Vec<String>,
}

/// How many refused revisions `/status` keeps, newest first.
pub const REFUSED_KEPT: usize = 20;

/// How many reconciles an Environment's history keeps, newest first.
pub const HISTORY_KEPT: usize = 50;

/// One change a reconcile applied (or tried to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedChange {
    /// Kind of the resource.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// What was done.
    pub action: Action,
    /// One line: the fields changed.
    pub summary: String,
    /// Why it failed; `null` on success.
    pub error: Option<String>,
}

/// One reconcile of an Environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRecord {
    /// Epoch seconds of its end.
    pub at: u64,
    /// The revision it worked on.
    pub revision: String,
    /// Whole (every resource) or targeted (the resources events named).
    pub whole: bool,
    /// `true` when nothing failed or waits for a retry.
    pub success: bool,
    /// Changes planned but not applied (drift in detect mode, held changes).
    pub planned: usize,
    /// What it applied.
    pub changes: Vec<AppliedChange>,
    /// Later reconciles like this one (same revision and result, nothing applied) folded
    /// into it; `at` is the last one's.
    pub repeats: u64,
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
    /// Revisions refused, newest first (at most [`REFUSED_KEPT`]), with why.
    #[serde(default)]
    pub refused_revisions: Vec<RefusedRevision>,
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
    /// The replica that owns it: holds its lease, as the state store last said (this
    /// replica's id when it leads); `null` when no replica has yet.
    #[serde(default)]
    pub owner: Option<String>,
    /// The replica its share is assigned to by the sharding (`null`: none has room, or
    /// no membership read yet).
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// Epoch seconds of its last completed reconcile by any replica, from the state store.
    #[serde(default)]
    pub last_completed_at: Option<u64>,
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
    /// The revision its last reconcile worked on.
    #[serde(default)]
    pub last_attempted: Option<RevisionSummary>,
    /// The last revision that reconciled it without errors.
    #[serde(default)]
    pub last_applied: Option<RevisionSummary>,
    /// Its last reconciles, newest first (at most [`HISTORY_KEPT`]).
    #[serde(default)]
    pub history: Vec<ReconcileRecord>,
}

impl EnvironmentStatus {
    /// Add a reconcile to the history: folded into the newest entry when both applied
    /// nothing and agree on revision, scope and result (a quiet resync every minute would
    /// otherwise push everything else out).
    pub fn record(&mut self, r: ReconcileRecord) {
        if let Some(last) = self.history.first_mut() {
            let quiet = |x: &ReconcileRecord| x.changes.is_empty();
            if quiet(last)
                && quiet(&r)
                && last.revision == r.revision
                && last.whole == r.whole
                && last.success == r.success
                && last.planned == r.planned
            {
                last.at = r.at;
                last.repeats += 1;
                return;
            }
        }
        self.history.insert(0, r);
        self.history.truncate(HISTORY_KEPT);
    }
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

    /// Record a refused revision (newest first; a revision refused again replaces its entry).
    pub fn refused(&mut self, r: RefusedRevision) {
        self.refused_revisions
            .retain(|x| x.revision.id != r.revision.id);
        self.refused_revisions.insert(0, r);
        self.refused_revisions.truncate(REFUSED_KEPT);
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
/// again), drifted (`detect`) or pending (planned, held, or its kind unreadable), with the
/// change the plan holds for it.
pub fn resource_states(
    report: &EnvReport,
    detect: bool,
    retry_at: impl Fn(&ResourceId) -> Option<u64>,
) -> Vec<ResourceStatus> {
    struct Entry {
        state: ResourceState,
        error: Option<String>,
        retry_at: Option<u64>,
        pending: Option<PendingChange>,
    }
    let entry = |state, error, retry_at| Entry {
        state,
        error,
        retry_at,
        pending: None,
    };
    let mut states: BTreeMap<ResourceId, Entry> = BTreeMap::new();
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
            let mut e = entry(state, c.reason.clone(), None);
            e.pending = pending_change(c);
            states.insert((c.kind, c.name.clone()), e);
        }
        for e in &plan.errors {
            let id = (e.kind, e.name.clone());
            let pending = states.remove(&id).and_then(|x| x.pending);
            let mut x = entry(
                ResourceState::Failed,
                Some(format!("{}: {}", e.field, e.message)),
                None,
            );
            x.pending = pending;
            states.insert(id, x);
        }
    }
    if let Some(p) = &report.planned {
        for (kind, _) in &p.observation.failures {
            for id in p.cx.declared.keys().filter(|(k, _)| k == kind) {
                states.insert(
                    id.clone(),
                    entry(
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
        let pending = states.remove(id).and_then(|x| x.pending);
        let mut x = entry(state, Some(why.clone()), retry);
        x.pending = pending;
        states.insert(id.clone(), x);
    }
    if let Some(applied) = &report.applied {
        for r in &applied.results {
            let id = (r.kind, r.name.clone());
            let x = match &r.error {
                None => entry(ResourceState::InSync, None, None),
                Some(e) => {
                    // What failed is still to be done.
                    let pending = states.remove(&id).and_then(|x| x.pending);
                    let mut x = entry(
                        ResourceState::Failed,
                        Some(crate::aws::DisplayChain(e).to_string()),
                        retry_at(&id),
                    );
                    x.pending = pending;
                    x
                }
            };
            states.insert(id, x);
        }
    }
    states
        .into_iter()
        .map(|((kind, name), e)| ResourceStatus {
            environment: report.environment.clone(),
            kind,
            name,
            state: e.state,
            // AWS messages may quote what was sent: one line, no terminal controls.
            error: e.error.map(|e| one_line(&e)),
            retry_at: e.retry_at,
            description: None,
            pending: e.pending,
        })
        .collect()
}

/// `text` without terminal controls, newlines escaped.
fn one_line(text: &str) -> String {
    crate::syntax::diag::escape_control(text).into_owned()
}

/// The field diffs and access delta of a change, `None` for a no-op.
fn pending_change(c: &crate::plan::Change) -> Option<PendingChange> {
    if c.action == Action::NoOp {
        return None;
    }
    Some(PendingChange {
        action: c.action,
        fields: c.fields.iter().map(|f| one_line(&f.to_string())).collect(),
        access: c
            .access
            .iter()
            .flat_map(|a| {
                a.to_string()
                    .lines()
                    .map(|l| one_line(l.trim()))
                    .collect::<Vec<_>>()
            })
            .collect(),
    })
}

/// Fill in each resource's `spec.description` from the desired state, for the kinds that
/// have one.
pub fn describe(resources: &mut [ResourceStatus], desired: &crate::manifest::DesiredState) {
    let by_id: BTreeMap<(Kind, &str), &crate::manifest::Resource> = desired
        .resources
        .iter()
        .map(|r| ((r.kind, r.name.as_str()), r))
        .collect();
    for r in resources {
        r.description = by_id
            .get(&(r.kind, r.name.as_str()))
            .and_then(|d| d.spec_value().get("description")?.as_str().map(one_line));
    }
}

/// The history entry of a run that ended at `at` (epoch seconds): what it applied, each
/// with a one-line summary of the fields, and how many changes it planned but did not
/// apply.
pub fn reconcile_record(report: &EnvReport, at: u64, success: bool) -> ReconcileRecord {
    let plan = report.plan();
    let fields = |id: &ResourceId| -> String {
        let Some(c) = plan.and_then(|p| {
            p.changes
                .iter()
                .find(|c| (c.kind, &c.name) == (id.0, &id.1))
        }) else {
            return String::new();
        };
        let names: Vec<&str> = c.fields.iter().map(|f| f.field.as_str()).collect();
        let mut line = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        if names.len() > 5 {
            line.push_str(&format!(" and {} more", names.len() - 5));
        }
        one_line(&line)
    };
    let changes: Vec<AppliedChange> = report
        .applied
        .iter()
        .flat_map(|a| &a.results)
        .map(|r| {
            let id = (r.kind, r.name.clone());
            AppliedChange {
                summary: fields(&id),
                kind: r.kind,
                name: r.name.clone(),
                action: r.action,
                error: r
                    .error
                    .as_ref()
                    .map(|e| one_line(&crate::aws::DisplayChain(e).to_string())),
            }
        })
        .collect();
    let planned = plan
        .map_or(0, |p| p.actionable().count())
        .saturating_sub(changes.len());
    ReconcileRecord {
        at,
        revision: report.revision.clone(),
        whole: report.scope.is_none(),
        success,
        planned,
        changes,
        repeats: 0,
    }
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
    fn quiet_reconciles_fold_and_the_history_is_bounded() {
        let rec = |rev: &str, changes: usize| ReconcileRecord {
            at: 1,
            revision: rev.into(),
            whole: true,
            success: true,
            planned: 0,
            changes: (0..changes)
                .map(|i| AppliedChange {
                    kind: Kind::Role,
                    name: format!("r{i}"),
                    action: Action::Update,
                    summary: "spec.tags.team".into(),
                    error: None,
                })
                .collect(),
            repeats: 0,
        };
        let mut e = EnvironmentStatus::default();
        e.record(rec("a", 1));
        e.record(rec("a", 0));
        e.record(ReconcileRecord {
            at: 9,
            ..rec("a", 0)
        });
        assert_eq!(e.history.len(), 2);
        assert_eq!((e.history[0].at, e.history[0].repeats), (9, 1));
        // A different revision, or a run that applied something, is a new entry.
        e.record(rec("b", 0));
        e.record(rec("b", 2));
        assert_eq!(e.history.len(), 4);
        for i in 0..2 * HISTORY_KEPT {
            e.record(rec(&format!("c{i}"), 0));
        }
        assert_eq!(e.history.len(), HISTORY_KEPT);
        assert_eq!(e.history[0].revision, format!("c{}", 2 * HISTORY_KEPT - 1));
    }

    #[test]
    fn refused_revisions_are_newest_first_once_each_and_bounded() {
        let refusal = |id: &str, reason| RefusedRevision {
            revision: RevisionSummary {
                id: id.into(),
                author: None,
                message: None,
            },
            at: 0,
            reason,
            errors: vec!["m.yaml:3:1: error: x".into()],
        };
        let mut st = Status::default();
        st.refused(refusal("a", RefusalReason::Invalid));
        st.refused(refusal("b", RefusalReason::Lint));
        st.refused(refusal("a", RefusalReason::Unsigned));
        let ids: Vec<_> = st
            .refused_revisions
            .iter()
            .map(|r| r.revision.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(st.refused_revisions[0].reason, RefusalReason::Unsigned);
        for i in 0..REFUSED_KEPT + 5 {
            st.refused(refusal(&i.to_string(), RefusalReason::Invalid));
        }
        assert_eq!(st.refused_revisions.len(), REFUSED_KEPT);
        let json = serde_json::to_value(&st.refused_revisions[0]).unwrap();
        assert_eq!(json["reason"], "invalid");
        assert_eq!(json["revision"]["author"], serde_json::Value::Null);
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
            description: None,
            pending: None,
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
