//! The per-Environment worker: hold the Environment's lease, run the pipeline with the
//! error policy as its gate, and say what to do next ([`Action`]). It keeps what it needs
//! between runs: the Environment's clients, its lease, its error policy, the revision it
//! last applied (changes planned again for that revision are drift) and the index its
//! event listeners decide with ([`EventIndex`]: the manifests' resources, the ARNs AWS gave
//! them, the daemon's own principal).
//!
//! A run is whole ([`Worker::reconcile`]: every resource, at the resync or after a new
//! revision) or targeted ([`Worker::reconcile_targeted`]: the resources events named). A
//! targeted run updates the status of its resources only and moves neither the resync nor
//! the revision last applied.
//!
//! A suspended Environment (`mlspace-gitops suspend`, kept in the state store) is not
//! reconciled at all: each run reads the suspension from the store after taking the lease
//! and, while it is there, makes no AWS request and shows every resource `suspended`.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::error_policy::ErrorPolicy;
use super::{epoch_secs, DaemonConfig, Mode};
use crate::apply::Event;
use crate::aws::{AwsContext, CallObserver, CallResult, DisplayChain};
use crate::events::EventIndex;
use crate::manifest::DesiredState;
use crate::metrics::Metrics;
use crate::pipeline::{self, Clients, Context, EnvReport, RevisionInfo, Settings};
use crate::plan::ResourceId;
use crate::state::{Lease, StateError, StateStore, Suspension};
use crate::status::{self, EnvironmentStatus, Readiness, ResourceState, ResourceStatus};

/// What the runtime does next with an Environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconcile it again at this time (the resync, or the earliest retry).
    RequeueAt(Instant),
    /// Another replica reconciles it: wait until the lease is free.
    Standby,
}

/// How one reconcile of an Environment went, for the pass that ran it.
#[derive(Debug)]
pub enum Outcome {
    /// The pipeline ran; `success` when nothing failed or waits for a retry.
    Reconciled {
        /// Nothing failed, nothing waits.
        success: bool,
        /// Changes planned.
        changes: usize,
        /// Changes that failed or wait.
        failures: usize,
        /// AWS requests made.
        requests: u64,
        /// The resources changed successfully (repaired, in apply mode).
        repaired: BTreeSet<ResourceId>,
        /// What the run found, for notifications.
        facts: Box<crate::notify::RunFacts>,
    },
    /// Another replica holds the lease: nothing was done.
    Standby,
    /// The Environment is suspended: nothing was done.
    Suspended,
    /// The run could not happen (clients, lease, store).
    Failed,
}

/// A revision as status shows it.
fn summary(r: &RevisionInfo) -> status::RevisionSummary {
    status::RevisionSummary {
        id: r.id.clone(),
        author: r.author.clone(),
        message: r.message.clone(),
    }
}

/// The readiness scope of an Environment's AWS attempts.
pub fn env_scope(name: &str) -> String {
    format!("Environment {name}")
}

/// The readiness scope of an Environment's lease and records in the state store.
fn store_scope(name: &str) -> String {
    format!("state store for Environment {name}")
}

/// Reports each AWS attempt to the metrics, and to readiness under a scope (an Environment
/// or the state store), so that `/readyz` follows whether AWS answers.
#[derive(Debug)]
pub struct AttemptObserver {
    scope: String,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

impl AttemptObserver {
    /// An observer for `scope` (`Environment NAME`, `state store`).
    pub fn new(scope: String, metrics: &Arc<Metrics>, readiness: &Arc<Readiness>) -> Arc<Self> {
        Arc::new(AttemptObserver {
            scope,
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        })
    }
}

impl CallObserver for AttemptObserver {
    fn observe(&self, service: &str, operation: &str, result: CallResult, elapsed: Duration) {
        self.metrics.observe(service, operation, result, elapsed);
        self.readiness
            .aws_attempt(&self.scope, result != CallResult::ServerError, elapsed);
    }
}

/// What every worker shares during a pass (read-only).
pub struct WorkerCx<'a> {
    /// The daemon's configuration.
    pub cfg: &'a DaemonConfig,
    /// Metrics.
    pub metrics: &'a Arc<Metrics>,
    /// Readiness.
    pub readiness: &'a Arc<Readiness>,
    /// The state store, when it could be opened.
    pub store: Option<&'a dyn StateStore>,
    /// Set on shutdown.
    pub stop: &'a Arc<AtomicBool>,
}

/// Which replica the sharding assigns an Environment to, as this replica last computed it
/// ([`crate::shard::assign`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assigned {
    /// No membership read yet: take the lease if it is free, as a lone replica would.
    Unknown,
    /// This replica.
    Me,
    /// Another live replica.
    Other(String),
    /// No replica has room (every one is at `--max-environments-per-replica`).
    Nobody,
}

/// One Environment's worker.
#[derive(Debug)]
pub struct Worker {
    name: String,
    clients: Clients,
    lease: Option<Lease>,
    /// Whose share the Environment is in.
    pub assigned: Assigned,
    /// Its error policy.
    pub policy: ErrorPolicy,
    /// Revision last applied without failures.
    applied: Option<String>,
    /// Its part of `/status`.
    pub status: EnvironmentStatus,
    /// Its resources' part of `/status`.
    pub resources: Vec<ResourceStatus>,
    /// What its event listeners decide with, once a whole run has connected.
    index: Option<EventIndex>,
    /// Its suspension, as last read from the state store.
    suspension: Option<Suspension>,
    /// The replica that held its lease when last asked (this one, or another).
    lease_holder: Option<String>,
    /// When the lease another replica holds on an Environment of this replica's share
    /// expires, ms since the epoch: the moment to try again (a replica killed keeps its
    /// leases until then).
    held_elsewhere_until_ms: Option<u64>,
}

impl Worker {
    /// A worker for Environment `name`.
    pub fn new(
        name: &str,
        cfg: &DaemonConfig,
        metrics: &Arc<Metrics>,
        readiness: &Arc<Readiness>,
    ) -> Worker {
        let observer = AttemptObserver::new(env_scope(name), metrics, readiness);
        Worker {
            name: name.to_string(),
            clients: Clients::new(cfg.aws.clone(), Some(observer)),
            lease: None,
            assigned: Assigned::Unknown,
            policy: ErrorPolicy::new(cfg.retry_base, cfg.retry_max),
            applied: None,
            status: EnvironmentStatus {
                name: name.to_string(),
                ..EnvironmentStatus::default()
            },
            resources: Vec::new(),
            index: None,
            suspension: None,
            lease_holder: None,
            held_elsewhere_until_ms: None,
        }
    }

    /// Its suspension, as last read from the state store.
    pub fn suspension(&self) -> Option<&Suspension> {
        self.suspension.as_ref()
    }

    /// The replica that held its lease when last asked, `None` before the first try.
    pub fn lease_holder(&self) -> Option<&str> {
        self.lease_holder.as_deref()
    }

    /// Read its suspension from the store and show it; `Ok(true)` while suspended. `Err`
    /// when the store cannot say: then it must not be reconciled.
    pub async fn read_suspension(
        &mut self,
        cx: &WorkerCx<'_>,
        desired: &DesiredState,
    ) -> Result<bool, String> {
        let Some(store) = cx.store else {
            return Err("the state store is not open".into());
        };
        match store.suspension(&self.name).await {
            Ok(s) => {
                let suspended = s.is_some();
                self.show_suspension(s, desired, cx.metrics);
                Ok(suspended)
            }
            Err(e) => {
                let why =
                    crate::syntax::diag::escape_control(&DisplayChain(&e).to_string()).into_owned();
                Err(format!(
                    "cannot read whether {} is suspended: {why}",
                    self.name
                ))
            }
        }
    }

    /// Show `suspension` (as stored) in its status, resources and metric; log a change.
    pub fn show_suspension(
        &mut self,
        suspension: Option<Suspension>,
        desired: &DesiredState,
        metrics: &Metrics,
    ) {
        let was = self.suspension.is_some();
        metrics.set_suspended(&self.name, suspension.is_some());
        let st = &mut self.status;
        st.suspended = suspension.is_some();
        st.suspended_at = suspension.as_ref().map(|s| s.at_ms / 1000);
        st.suspended_reason = suspension.as_ref().and_then(|s| s.reason.clone());
        st.suspended_by = suspension.as_ref().and_then(|s| s.by.clone());
        match (&suspension, was) {
            (Some(s), false) => {
                tracing::warn!(environment = %self.name, reason = s.reason.as_deref().unwrap_or(""), by = s.by.as_deref().unwrap_or(""), "environment suspended: not reconciled until resumed");
            }
            (None, true) => {
                tracing::info!(environment = %self.name, "environment resumed");
            }
            _ => {}
        }
        if suspension.is_some() {
            // Every resource of the manifests, whatever its last state.
            self.resources = desired
                .resources
                .iter()
                .filter(|r| r.kind.is_resource())
                .map(|r| ResourceStatus {
                    environment: self.name.clone(),
                    kind: r.kind,
                    name: r.name.clone(),
                    state: ResourceState::Suspended,
                    error: None,
                    retry_at: None,
                    description: None,
                    pending: None,
                })
                .collect();
            crate::status::describe(&mut self.resources, desired);
            self.resources
                .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        } else if was {
            // Unknown until the next run.
            for r in &mut self.resources {
                r.state = ResourceState::Pending;
            }
        }
        self.suspension = suspension;
    }

    /// The clients of its last run, when it connected (its event listeners use them).
    pub fn aws(&self) -> Option<&AwsContext> {
        self.clients.current()
    }

    /// The index its event listeners decide with: `None` until a whole run connected.
    pub fn event_index(&self) -> Option<&EventIndex> {
        self.index.as_ref()
    }

    /// Whether this replica holds the Environment's lease.
    pub fn is_leader(&self) -> bool {
        self.lease.is_some()
    }

    /// Give the lease up (shutdown, or the Environment left the manifests).
    pub fn take_lease(&mut self) -> Option<Lease> {
        self.lease.take()
    }

    /// The lease this replica holds on the Environment.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// When to try for the lease again, ms since the epoch: its expiry, when the
    /// Environment is this replica's share and another replica still held it when last
    /// asked.
    pub fn retry_lease_at_ms(&self) -> Option<u64> {
        match self.assigned {
            Assigned::Me | Assigned::Unknown if self.lease.is_none() => {
                self.held_elsewhere_until_ms
            }
            _ => None,
        }
    }

    /// A lease taken for this Environment beside a pass (see the daemon's keepalive):
    /// held from now on, as if this worker had taken it. The newer of two leases of this
    /// holder wins.
    pub fn adopt_lease(&mut self, cx: &WorkerCx<'_>, lease: Lease) {
        let newer = self
            .lease
            .as_ref()
            .is_none_or(|l| (lease.token, lease.expires_at_ms) > (l.token, l.expires_at_ms));
        if newer {
            let was = self.lease.is_some();
            self.held(cx, lease, was);
        }
    }

    /// The lease `l` is this replica's: status, metric and log say so.
    fn held(&mut self, cx: &WorkerCx<'_>, l: Lease, was: bool) {
        cx.readiness.set_problem(&store_scope(&self.name), None);
        if !was {
            tracing::info!(environment = %self.name, token = l.token, "lease acquired: this replica reconciles the environment");
        }
        self.lease = Some(l);
        self.lease_holder = Some(cx.cfg.holder.clone());
        self.held_elsewhere_until_ms = None;
        self.status.leader = true;
        self.status.owner = Some(cx.cfg.holder.clone());
        cx.metrics.set_leader(&self.name, &cx.cfg.holder, true);
    }

    /// Hold (or renew) the lease. `Ok(true)` when held, `Ok(false)` when another replica
    /// holds it, `Err` when the store cannot say: then this replica must not reconcile.
    pub async fn hold_lease(&mut self, cx: &WorkerCx<'_>) -> Result<bool, String> {
        let Some(store) = cx.store else {
            return Err("the state store is not open".into());
        };
        let name = self.name.clone();
        let was = self.lease.is_some();
        let me = cx.cfg.holder.as_str();
        // Another replica's share (or nobody's): hand the lease over if held, and stand by.
        let other = match &self.assigned {
            Assigned::Other(r) => Some(format!("replica {r} reconciles it")),
            Assigned::Nobody => Some(
                "no replica has room for it (each is at --max-environments-per-replica)".into(),
            ),
            Assigned::Unknown | Assigned::Me => None,
        };
        if let Some(why) = other {
            self.held_elsewhere_until_ms = None;
            if let Some(l) = self.lease.take() {
                // No longer this replica's; who takes it next, the next answer says.
                self.lease_holder = None;
                match store.release_lease(&l).await {
                    Ok(()) => {
                        tracing::info!(environment = %name, "lease handed over: {why}")
                    }
                    // It expires on its own; the other replica takes it then.
                    Err(e) => {
                        tracing::warn!(environment = %name, error = %DisplayChain(&e), "cannot hand the lease over; it expires by itself")
                    }
                }
            }
            cx.readiness.set_problem(&store_scope(&name), None);
            self.status.leader = false;
            cx.metrics.set_leader(&name, me, false);
            self.status.last_error = Some(format!("standby: {why}"));
            return Ok(false);
        }
        match store
            .acquire_lease(&name, &cx.cfg.holder, cx.cfg.lease_ttl)
            .await
        {
            Ok(l) => {
                self.held(cx, l, was);
                Ok(true)
            }
            Err(StateError::LeaseHeld {
                holder,
                expires_at_ms,
                ..
            }) => {
                cx.readiness.set_problem(&store_scope(&name), None);
                if was {
                    tracing::warn!(environment = %name, %holder, "lease lost to another replica");
                }
                self.lease = None;
                self.lease_holder = Some(holder.clone());
                self.held_elsewhere_until_ms = Some(expires_at_ms);
                self.status.leader = false;
                self.status.owner = Some(holder.clone());
                cx.metrics.set_leader(&name, me, false);
                self.status.last_error = Some(format!("standby: {holder} holds the lease on {name} (until {expires_at_ms} ms since the epoch)"));
                Ok(false)
            }
            Err(e) => {
                let why =
                    crate::syntax::diag::escape_control(&DisplayChain(&e).to_string()).into_owned();
                let msg = format!("cannot take the lease on {name}: {why}");
                tracing::error!("{msg}");
                cx.readiness
                    .set_problem(&store_scope(&name), Some(msg.clone()));
                self.lease = None;
                self.held_elsewhere_until_ms = None;
                self.status.leader = false;
                self.status.owner = None;
                cx.metrics.set_leader(&name, me, false);
                Err(msg)
            }
        }
    }

    /// Reconcile the Environment at `revision`: lease, pipeline, status, metrics; returns
    /// how it went and what to do next.
    pub async fn reconcile(
        &mut self,
        cx: &WorkerCx<'_>,
        revision: &RevisionInfo,
        desired: &DesiredState,
    ) -> (Outcome, Action) {
        let span = tracing::info_span!("environment", environment = %self.name);
        self.reconcile_in_span(cx, revision, desired)
            .instrument(span)
            .await
    }

    async fn reconcile_in_span(
        &mut self,
        cx: &WorkerCx<'_>,
        revision: &RevisionInfo,
        desired: &DesiredState,
    ) -> (Outcome, Action) {
        let now = Instant::now();
        // Exactly one replica reconciles an Environment: the one holding its lease.
        match self.hold_lease(cx).await {
            Ok(true) => {}
            Ok(false) => {
                // A standby makes no AWS requests for the Environment: what it saw before
                // says nothing about AWS now.
                let scope = env_scope(&self.name);
                cx.readiness.retain_aws_scopes(|s| s != scope);
                cx.metrics.record_skipped();
                return (Outcome::Standby, Action::Standby);
            }
            Err(why) => return self.cannot_run(why, now),
        }
        match self.read_suspension(cx, desired).await {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!("suspended: not reconciled");
                self.status.last_error = None;
                return (Outcome::Suspended, Action::RequeueAt(now + cx.cfg.resync));
            }
            Err(why) => return self.cannot_run(why, now),
        }
        self.status.last_attempted = Some(summary(revision));
        let report = self.run(cx, revision, desired, None).await;
        // Retries and the resync count from the end of the run, which may have been long.
        let now = Instant::now();
        if let Some(e) = &report.refused {
            tracing::error!(error = %DisplayChain(e), "cannot reach the environment's account");
            return self.cannot_run(DisplayChain(e).to_string(), now);
        }
        self.index = Some(self.index_after(desired, &report).await);
        self.after(cx, revision, desired, &report, now)
    }

    /// The index of a whole run: the manifests, the ARNs observed, the ARNs of what it
    /// created that only AWS knows (a key's id, read once), the daemon's principal.
    async fn index_after(&self, desired: &DesiredState, report: &EnvReport) -> EventIndex {
        let mut index = EventIndex::new(desired);
        let (Some(planned), Some(aws)) = (&report.planned, self.clients.current()) else {
            return index;
        };
        index = index.with_observed(desired, &planned.observation.observed);
        let created = report
            .applied
            .iter()
            .flat_map(|a| &a.results)
            .filter(|r| r.action == crate::plan::Action::Create && r.error.is_none())
            .map(|r| (r.kind, r.name.clone()));
        for id in created {
            if index.knows_arn_of(&id) {
                continue;
            }
            match crate::kinds::observe_attributes(id.0, aws, &id.1, &planned.cx).await {
                Ok(mut attributes) => {
                    if let Some(arn) = attributes.remove("arn") {
                        index = index.with_arn(arn, id);
                    }
                }
                Err(e) => {
                    tracing::warn!(kind = %id.0, name = %id.1, error = %DisplayChain(&e), "cannot read the ARN of a resource just created; events naming it by id wait for the next resync");
                }
            }
        }
        index.with_principal(self.clients.principal().map(str::to_string))
    }

    /// Reconcile only the resources of `only` (those events named) and what planning them
    /// reads. Returns how it went and what it asks of the schedule: a retry sooner than the
    /// resync, standby, or nothing. When the run could not happen (no lease, the account
    /// unreachable) the outcome is `Failed`: its events wait for their next delivery and the
    /// whole run's schedule is unchanged.
    pub async fn reconcile_targeted(
        &mut self,
        cx: &WorkerCx<'_>,
        revision: &RevisionInfo,
        desired: &DesiredState,
        only: &BTreeSet<ResourceId>,
    ) -> (Outcome, Option<Action>) {
        let span =
            tracing::info_span!("environment", environment = %self.name, targeted = only.len());
        self.reconcile_targeted_in_span(cx, revision, desired, only)
            .instrument(span)
            .await
    }

    async fn reconcile_targeted_in_span(
        &mut self,
        cx: &WorkerCx<'_>,
        revision: &RevisionInfo,
        desired: &DesiredState,
        only: &BTreeSet<ResourceId>,
    ) -> (Outcome, Option<Action>) {
        match self.hold_lease(cx).await {
            Ok(true) => {}
            Ok(false) => return (Outcome::Standby, Some(Action::Standby)),
            Err(why) => {
                self.status.last_error = Some(why);
                return (Outcome::Failed, None);
            }
        }
        match self.read_suspension(cx, desired).await {
            Ok(false) => {}
            Ok(true) => return (Outcome::Suspended, None),
            Err(why) => {
                self.status.last_error = Some(why);
                return (Outcome::Failed, None);
            }
        }
        self.status.last_attempted = Some(summary(revision));
        let report = self.run(cx, revision, desired, Some(only.clone())).await;
        let now = Instant::now();
        if let Some(e) = &report.refused {
            tracing::error!(error = %DisplayChain(e), "cannot reach the environment's account");
            self.status.last_error = Some(DisplayChain(e).to_string());
            return (Outcome::Failed, None);
        }
        if let (Some(index), Some(p)) = (self.index.take(), &report.planned) {
            self.index = Some(index.with_observed(desired, &p.observation.observed));
        }
        let (outcome, _) = self.after(cx, revision, desired, &report, now);
        // A retry the run asks for comes sooner than the resync; the resync stays.
        (outcome, self.policy.next_retry().map(Action::RequeueAt))
    }

    /// One pipeline run, whole (`only: None`) or targeted.
    async fn run(
        &mut self,
        cx: &WorkerCx<'_>,
        revision: &RevisionInfo,
        desired: &DesiredState,
        only: Option<BTreeSet<ResourceId>>,
    ) -> EnvReport {
        let store = cx.store.expect("the lease needs the store");
        let settings = Settings {
            mode: match cx.cfg.mode {
                Mode::Apply => pipeline::Mode::Apply,
                Mode::Detect => pipeline::Mode::Plan,
            },
            prune: cx.cfg.prune,
            concurrency: cx.cfg.concurrency,
            stop: Some(cx.stop.clone()),
            only,
        };
        let on_event = |ev: Event<'_>| {
            if let Event::Started(c) = ev {
                tracing::info!(kind = %c.kind, name = %c.name, action = ?c.action, "applying");
            }
        };
        pipeline::run(
            desired,
            revision,
            &settings,
            Context {
                clients: &mut self.clients,
                store,
                lease: self.lease.as_ref(),
                gate: &self.policy,
                on_event: &on_event,
            },
        )
        .await
    }

    /// A run that could not happen: reported, retried with backoff.
    fn cannot_run(&mut self, why: String, now: Instant) -> (Outcome, Action) {
        self.status.last_error = Some(why);
        self.status.last_reconcile_at = Some(epoch_secs());
        let at = self.policy.after_environment_failure(now);
        (Outcome::Failed, Action::RequeueAt(at))
    }

    /// Status, metrics and the error policy after a pipeline run (whole or targeted: a
    /// targeted one has a scope, and updates only what it covers).
    fn after(
        &mut self,
        cx: &WorkerCx<'_>,
        revision: &RevisionInfo,
        desired: &DesiredState,
        report: &EnvReport,
        now: Instant,
    ) -> (Outcome, Action) {
        let metrics = cx.metrics;
        if let Some(why) = &report.removals.refused {
            tracing::error!(error = %why, "prune refused");
        }
        for (kind, e) in report.observe_failures() {
            tracing::warn!(%kind, error = %e, "cannot observe; its resources are skipped this time");
        }
        for e in report.plan().iter().flat_map(|p| &p.errors) {
            tracing::error!(error = %e, "refused change");
        }
        for e in &report.errors {
            tracing::error!(error = %e, "cannot record the reconcile");
        }
        // Records that cannot be written (a full disk, a read-only store) make the daemon
        // unready until one is written again.
        cx.readiness.set_problem(
            &format!("inventory of Environment {}", self.name),
            (!report.errors.is_empty()).then(|| report.errors.join("; ")),
        );
        metrics.record_prune(&self.name, report.removals.refused.as_ref());
        // Changes planned again for the revision already applied are drift.
        let already_applied = self.applied.as_deref() == Some(revision.id.as_str());
        if already_applied {
            // Drift of an observed-only resource (`mlspace-gitops/reconcile: observe`) too.
            use crate::plan::Action as A;
            let drifted = report.plan().into_iter().flat_map(|p| {
                p.changes.iter().filter(|c| {
                    matches!(
                        c.action,
                        A::Create | A::Update | A::Delete | A::Forget | A::Drift
                    )
                })
            });
            for c in drifted {
                metrics.record_drift(c.kind);
                tracing::info!(kind = %c.kind, name = %c.name, fields = c.fields.len(), "drift detected");
            }
        }
        if let Some(applied) = &report.applied {
            for r in &applied.results {
                metrics.record_change(r.kind, r.action, r.error.is_none());
                if let Some(e) = &r.error {
                    tracing::warn!(kind = %r.kind, name = %r.name, error = %DisplayChain(e), "change failed; will retry");
                }
            }
        }
        self.policy.after_run(report, now);
        let detect = cx.cfg.mode == Mode::Detect;
        let mut states = status::resource_states(report, detect, |id| {
            self.policy
                .retry_at(id)
                .map(|t| epoch_secs() + t.saturating_duration_since(Instant::now()).as_secs())
        });
        status::describe(&mut states, desired);
        match &report.scope {
            None => self.resources = states,
            Some(scope) => {
                self.resources
                    .retain(|r| !scope.contains(&(r.kind, r.name.clone())));
                self.resources.extend(states);
                self.resources
                    .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
            }
        }
        let repaired: BTreeSet<ResourceId> = report
            .applied
            .iter()
            .flat_map(|a| &a.results)
            .filter(|r| r.error.is_none())
            .map(|r| (r.kind, r.name.clone()))
            .collect();
        let failures = report
            .applied
            .iter()
            .map(|a| a.failures().count())
            .sum::<usize>()
            + report.held.len();
        let success = report.success() && report.held.is_empty();
        let whole = report.scope.is_none();
        let facts = crate::notify::RunFacts {
            environment: self.name.clone(),
            revision: crate::notify::RevisionRef {
                id: revision.id.clone(),
                author: revision.author.clone(),
                message: revision.message.clone(),
            },
            whole,
            detect,
            already_applied,
            planned: report
                .plan()
                .into_iter()
                .flat_map(|p| p.actionable())
                .map(|c| (c.kind, c.name.clone(), c.action))
                .collect(),
            observed: report
                .plan()
                .into_iter()
                .flat_map(|p| &p.changes)
                .filter(|c| c.action == crate::plan::Action::Drift)
                .map(|c| (c.kind, c.name.clone(), c.action))
                .collect(),
            applied: report
                .applied
                .iter()
                .flat_map(|a| &a.results)
                .filter(|r| r.error.is_none())
                .map(|r| (r.kind, r.name.clone(), r.action))
                .collect(),
            problems: Vec::new(),
            prune_refused: report
                .removals
                .refused
                .as_ref()
                .map(|r| (r.to_string(), r.reason().to_string())),
            held: report.held.len(),
        };
        if success && !detect && whole {
            self.applied = Some(revision.id.clone());
            self.status.last_applied_revision = Some(revision.id.clone());
            self.status.last_applied = Some(summary(revision));
        }
        // One problem a line: AWS messages may quote what was sent (names, documents).
        let problems: Vec<String> = report
            .problems()
            .iter()
            .map(|p| crate::syntax::diag::escape_control(p).into_owned())
            .collect();
        // A targeted run's success says nothing of the resources it did not cover.
        if whole || !problems.is_empty() {
            self.status.last_error = (!problems.is_empty()).then(|| problems.join("\n"));
        }
        self.status.last_reconcile_at = Some(epoch_secs());
        self.status
            .record(status::reconcile_record(report, epoch_secs(), success));
        let resync = now + cx.cfg.resync;
        let at = self.policy.next_retry().map_or(resync, |r| r.min(resync));
        (
            Outcome::Reconciled {
                success,
                changes: report.plan().map_or(0, |p| p.actionable().count()),
                failures,
                requests: report.requests,
                repaired,
                facts: Box::new(crate::notify::RunFacts { problems, ..facts }),
            },
            Action::RequeueAt(at),
        )
    }
}
