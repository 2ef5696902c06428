//! Apply: the executor. It runs each change's steps in order and makes no choices of its
//! own: the plan decided what, the dependencies decide when. Independent changes run
//! concurrently with a bound; a change whose dependency failed is not started; a failing
//! change does not stop independent ones. Steps are idempotent, so running a plan again
//! after an interruption is safe.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tracing::Instrument;

use crate::aws::{AwsContext, AwsError, DisplayChain, ErrorClass};
use crate::kinds::{Kind, PlanCx};
use crate::plan::{Action, Change, Outcome, Plan, ResourceId, Step};
use crate::syntax::refs;

/// Executor settings.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Changes running at once.
    pub concurrency: usize,
    /// Set on shutdown: no new change or step starts; the AWS call in flight finishes.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: 8,
            stop: None,
        }
    }
}

impl ApplyOptions {
    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

/// Progress, as it happens.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A change started.
    Started(&'a Change),
    /// One step of a change succeeded.
    StepDone(&'a StepDone),
    /// A change finished.
    Finished(&'a ChangeResult),
}

/// A completed step, for progress output.
#[derive(Debug, Clone)]
pub struct StepDone {
    /// Kind of the resource.
    pub kind: Kind,
    /// Name of the resource.
    pub name: String,
    /// 1-based position of the step in its change.
    pub index: usize,
    /// Steps in the change.
    pub total: usize,
    /// The step's operation name.
    pub op: String,
}

/// How one change ended.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeResult {
    /// Kind of the resource.
    pub kind: Kind,
    /// Name of the resource.
    pub name: String,
    /// What was attempted.
    pub action: Action,
    /// `None` on success.
    pub error: Option<ChangeError>,
    /// Steps that completed.
    pub steps_done: usize,
    /// Wall time.
    #[serde(serialize_with = "ser_secs")]
    pub elapsed: Duration,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Why a change failed.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
pub enum ChangeError {
    /// AWS refused or failed a step.
    #[error("{0}")]
    Aws(#[serde(serialize_with = "ser_display")] AwsError),
    /// Shutdown began before the change (or its next step) started.
    #[error(
        "not finished: the daemon is shutting down (steps are idempotent; the next run continues)"
    )]
    Stopped,
    /// A change this one depends on failed, so it was not started.
    #[error("not started: {kind} {name} it depends on failed")]
    DependencyFailed {
        /// Kind of the failed dependency.
        kind: Kind,
        /// Name of the failed dependency.
        name: String,
    },
    /// A step names a value AWS was to assign to a resource of this apply, and that value
    /// could not be read.
    #[error("not started: the value of {reference} is not known (its resource could not be read after it was made)")]
    UnknownValue {
        /// The reference, as written.
        reference: String,
    },
}

fn ser_display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl ChangeError {
    /// Whether retrying later may help (throttling, eventual consistency, dependencies).
    pub fn is_retryable(&self) -> bool {
        match self {
            ChangeError::Aws(e) => matches!(
                e.class,
                ErrorClass::Transient | ErrorClass::EventualConsistency
            ),
            ChangeError::DependencyFailed { .. }
            | ChangeError::Stopped
            | ChangeError::UnknownValue { .. } => true,
        }
    }
}

/// The outcome of an apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// One entry per actionable change, in completion order.
    pub results: Vec<ChangeResult>,
}

impl ApplyReport {
    /// Whether every change succeeded.
    pub fn success(&self) -> bool {
        self.results.iter().all(|r| r.error.is_none())
    }

    /// The failed changes.
    pub fn failures(&self) -> impl Iterator<Item = &ChangeResult> {
        self.results.iter().filter(|r| r.error.is_some())
    }

    /// How each change ended, as the inventory and the history keep it.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.results
            .iter()
            .map(|r| Outcome {
                id: (r.kind, r.name.clone()),
                action: r.action,
                error: r.error.as_ref().map(|e| DisplayChain(e).to_string()),
            })
            .collect()
    }
}

/// Values AWS assigned to resources this apply made, read once they exist, for the steps
/// that reference them (`{ref:KIND/NAME.ATTRIBUTE}`).
#[derive(Debug, Default)]
struct Assigned {
    /// The resources some step references.
    wanted: BTreeSet<ResourceId>,
    /// Their attributes, once read.
    values: Mutex<BTreeMap<ResourceId, BTreeMap<String, String>>>,
}

impl Assigned {
    /// The resources the steps of `changes` reference.
    fn for_changes(changes: &[&Change]) -> Assigned {
        let mut wanted = BTreeSet::new();
        for c in changes {
            for step in &c.steps {
                let v = serde_json::to_value(step).unwrap_or_default();
                for r in refs::collect(&v) {
                    if let Some(kind) = Kind::parse(&r.kind) {
                        wanted.insert((kind, r.name));
                    }
                }
            }
        }
        Assigned {
            wanted,
            values: Mutex::default(),
        }
    }

    /// `step` with the references it holds filled in; `Err` names one that is not known.
    fn fill(&self, step: &Step) -> Result<Option<Step>, ChangeError> {
        if self.wanted.is_empty() {
            return Ok(None);
        }
        let mut v = serde_json::to_value(step).unwrap_or_default();
        let left = refs::collect(&v);
        if left.is_empty() {
            return Ok(None);
        }
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        refs::substitute(&mut v, &|r| {
            let kind = Kind::parse(&r.kind)?;
            values
                .get(&(kind, r.name.clone()))?
                .get(&r.attribute)
                .cloned()
        });
        if let Some(r) = refs::collect(&v).first() {
            return Err(ChangeError::UnknownValue {
                reference: r.text(),
            });
        }
        // Strings replaced by strings: the step's own type reads it back.
        Ok(serde_json::from_value(v).ok())
    }

    /// After `change` succeeded: read its attributes when a later step needs them.
    async fn record(&self, aws: &AwsContext, change: &Change, cx: &PlanCx) {
        let id = (change.kind, change.name.clone());
        if !self.wanted.contains(&id) {
            return;
        }
        match crate::kinds::observe_attributes(change.kind, aws, &change.name, cx).await {
            Ok(attrs) => {
                self.values
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, attrs);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the values AWS assigned"),
        }
    }
}

async fn run_change(
    aws: &AwsContext,
    change: &Change,
    cx: &PlanCx,
    opts: &ApplyOptions,
    assigned: &Assigned,
    progress: tokio::sync::mpsc::UnboundedSender<StepDone>,
) -> ChangeResult {
    let span = tracing::info_span!("change", kind = %change.kind, name = %change.name, action = ?change.action);
    async {
        let start = Instant::now();
        let mut done = 0;
        let mut error = None;
        for step in &change.steps {
            if opts.stopping() {
                error = Some(ChangeError::Stopped);
                break;
            }
            let filled = match assigned.fill(step) {
                Ok(f) => f,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            match filled
                .as_ref()
                .unwrap_or(step)
                .run(aws, &change.name, cx)
                .await
            {
                Ok(()) => {
                    done += 1;
                    let _ = progress.send(StepDone {
                        kind: change.kind,
                        name: change.name.clone(),
                        index: done,
                        total: change.steps.len(),
                        op: step.op_name(),
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "step failed");
                    error = Some(ChangeError::Aws(e));
                    break;
                }
            }
        }
        if error.is_none() {
            tracing::info!(steps = done, "change applied");
            assigned.record(aws, change, cx).await;
        }
        ChangeResult {
            kind: change.kind,
            name: change.name.clone(),
            action: change.action,
            error,
            steps_done: done,
            elapsed: start.elapsed(),
        }
    }
    .instrument(span)
    .await
}

/// Apply every actionable change of `plan`. Creates and updates go first, ordered by their
/// dependencies; deletes follow in reverse kind order (roles before the policies they use).
pub async fn apply(
    aws: &AwsContext,
    plan: &Plan,
    cx: &PlanCx,
    opts: &ApplyOptions,
    mut on_event: impl FnMut(Event<'_>),
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let forward: Vec<&Change> = plan
        .actionable()
        .filter(|c| c.action != Action::Delete)
        .collect();
    let deletes: Vec<&Change> = plan
        .actionable()
        .filter(|c| c.action == Action::Delete)
        .collect();
    let assigned = Assigned::for_changes(&forward);
    run_batch(
        aws,
        &forward,
        cx,
        opts,
        &assigned,
        &mut report,
        &mut on_event,
        |c| c.depends_on.clone(),
    )
    .await;
    // A kind's deletes wait for the deletes of the kinds it names (a policy's for the roles
    // that let go of it); other kinds do not reference each other's existence, so one
    // failure blocks no other.
    let delete_deps = |c: &Change| -> Vec<ResourceId> {
        let after: &[Kind] = c.kind.info().delete_after;
        deletes
            .iter()
            .filter(|d| after.contains(&d.kind))
            .map(|d| (d.kind, d.name.clone()))
            .collect()
    };
    run_batch(
        aws,
        &deletes,
        cx,
        opts,
        &Assigned::default(),
        &mut report,
        &mut on_event,
        delete_deps,
    )
    .await;
    report
}

#[allow(clippy::too_many_arguments)]
async fn run_batch(
    aws: &AwsContext,
    changes: &[&Change],
    cx: &PlanCx,
    opts: &ApplyOptions,
    assigned: &Assigned,
    report: &mut ApplyReport,
    on_event: &mut impl FnMut(Event<'_>),
    deps_of: impl Fn(&Change) -> Vec<ResourceId>,
) {
    let in_batch: BTreeSet<ResourceId> = changes.iter().map(|c| (c.kind, c.name.clone())).collect();
    let deps: BTreeMap<ResourceId, Vec<ResourceId>> = changes
        .iter()
        .map(|c| {
            (
                (c.kind, c.name.clone()),
                deps_of(c)
                    .into_iter()
                    .filter(|d| in_batch.contains(d))
                    .collect(),
            )
        })
        .collect();
    let mut succeeded: BTreeSet<ResourceId> = BTreeSet::new();
    let mut failed: BTreeSet<ResourceId> = BTreeSet::new();
    let mut pending: Vec<&Change> = changes.to_vec();
    let mut running = FuturesUnordered::new();
    let (progress, mut steps) = tokio::sync::mpsc::unbounded_channel::<StepDone>();
    loop {
        // Start what is ready, in plan order, up to the bound; skip what cannot run.
        let mut i = 0;
        while i < pending.len() {
            let c = pending[i];
            let id = (c.kind, c.name.clone());
            let my_deps = &deps[&id];
            if let Some(bad) = my_deps.iter().find(|d| failed.contains(*d)) {
                let r = ChangeResult {
                    kind: c.kind,
                    name: c.name.clone(),
                    action: c.action,
                    error: Some(ChangeError::DependencyFailed {
                        kind: bad.0,
                        name: bad.1.clone(),
                    }),
                    steps_done: 0,
                    elapsed: Duration::ZERO,
                };
                on_event(Event::Finished(&r));
                failed.insert(id);
                report.results.push(r);
                pending.remove(i);
                i = 0; // a new failure may block earlier entries
                continue;
            }
            if running.len() < opts.concurrency.max(1)
                && my_deps.iter().all(|d| succeeded.contains(d))
            {
                on_event(Event::Started(c));
                running.push(run_change(aws, c, cx, opts, assigned, progress.clone()));
                pending.remove(i);
                continue;
            }
            i += 1;
        }
        if running.is_empty() {
            // Nothing ready yet nothing running: a dependency cycle (two buckets logging to
            // each other). Break it in plan order rather than dropping the changes.
            if pending.is_empty() {
                break;
            }
            let c = pending.remove(0);
            on_event(Event::Started(c));
            running.push(run_change(aws, c, cx, opts, assigned, progress.clone()));
        }
        // Report steps as they complete, until a change finishes.
        let r = loop {
            tokio::select! {
                biased;
                Some(step) = steps.recv() => on_event(Event::StepDone(&step)),
                r = running.next() => break r,
            }
        };
        while let Ok(step) = steps.try_recv() {
            on_event(Event::StepDone(&step));
        }
        let Some(r) = r else { break };
        let id = (r.kind, r.name.clone());
        if r.error.is_some() {
            failed.insert(id);
        } else {
            succeeded.insert(id);
        }
        on_event(Event::Finished(&r));
        report.results.push(r);
    }
}
