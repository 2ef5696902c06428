//! One Environment reconciled end to end, the same way for `plan`, `apply` and the daemon:
//!
//! 1. **connect**: its clients (assumed role), and STS must confirm the account;
//! 2. **inventory**: what is managed, and what leaves management (prune, retain, refusals);
//! 3. **observe** and **plan** (pure);
//! 4. **gate**: the caller's say on what runs now (a person at a prompt, the daemon's error
//!    policy holding back what is backing off; `plan` stops before it);
//! 5. **record** the creates that need it, **apply**, **record** the inventory and history.
//!
//! A run may be **targeted** ([`Settings::only`]: the resources an event touched): it
//! observes and plans those resources and what planning them reads, transitively
//! ([`crate::plan::scope_of`]), each in full, and nothing else. It decides no prune (what
//! left the manifests is only found by a whole run) and records the inventory only for what
//! it planned, so resources it did not observe are never taken for gone.
//!
//! [`run`] returns an [`EnvReport`]; callers only print it (the CLI) or turn it into
//! status, metrics and the next requeue (the daemon).

mod clients;
mod gate;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use clients::{Clients, ConnectError};
pub use gate::{Approval, ApproveAll, Gate};

use crate::apply::{self, ApplyOptions, ApplyReport, Event};
use crate::aws::{AwsContext, DisplayChain};
use crate::inventory::{self, InventoryEntry, PruneOptions, Removals};
use crate::kinds::{Kind, PlanCx};
use crate::manifest::DesiredState;
use crate::observe::{observe, Observation};
use crate::plan::{plan_cx, plan_scoped, Plan, PlanInput, Removal, ResourceId};
use crate::state::{Lease, StateStore};

/// The revision a run applies, as the inventory and history record it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionInfo {
    /// Commit id, or `local` / a directory digest.
    pub id: String,
    /// Commit author.
    pub author: Option<String>,
    /// Commit message (first line).
    pub message: Option<String>,
}

/// Plan only, or plan and apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stop after the plan; write nothing anywhere.
    Plan,
    /// Apply what the gate approves, and record the inventory and history.
    Apply,
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Plan or apply.
    pub mode: Mode,
    /// Prune settings (the Environment's `spec.prune` also turns prune on).
    pub prune: PruneOptions,
    /// Changes applied at once.
    pub concurrency: usize,
    /// Set on shutdown: no new change or step starts.
    pub stop: Option<Arc<AtomicBool>>,
    /// Reconcile only these resources (a targeted run); `None`: the whole Environment.
    pub only: Option<BTreeSet<ResourceId>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Plan,
            prune: PruneOptions::default(),
            concurrency: 8,
            stop: None,
            only: None,
        }
    }
}

/// What a run works with besides the Environment itself.
pub struct Context<'a> {
    /// The Environment's clients (kept between runs by the daemon).
    pub clients: &'a mut Clients,
    /// The inventory, history and leases.
    pub store: &'a dyn StateStore,
    /// The lease that fences this run's writes (the daemon's; the CLI runs unfenced).
    pub lease: Option<&'a Lease>,
    /// Who decides what runs.
    pub gate: &'a dyn Gate,
    /// Progress of the apply, as it happens.
    pub on_event: &'a (dyn Fn(Event<'_>) + Sync),
}

/// A plan with what it was computed from.
#[derive(Debug)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// The observation (with the kinds that could not be read).
    pub observation: Observation,
    /// The planning context, also needed to apply.
    pub cx: PlanCx,
}

/// How one Environment's run went.
#[derive(Debug)]
pub struct EnvReport {
    /// The Environment.
    pub environment: String,
    /// The revision.
    pub revision: String,
    /// Why nothing was read: the account check or the clients failed.
    pub refused: Option<ConnectError>,
    /// What leaves management, and why prune was refused if it was.
    pub removals: Removals,
    /// The plan, when the run got that far.
    pub planned: Option<Planned>,
    /// The gate's answer (`None` in plan mode or before the plan).
    pub approval: Option<Approval>,
    /// Changes held back this time, with why (the gate, or a failed record).
    pub held: Vec<(ResourceId, String)>,
    /// What the executor did.
    pub applied: Option<ApplyReport>,
    /// Inventory, history or other errors that did not stop the run.
    pub errors: Vec<String>,
    /// AWS requests made.
    pub requests: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The resources a targeted run observed and planned; `None` for a whole run.
    pub scope: Option<BTreeSet<ResourceId>>,
}

impl EnvReport {
    fn new(environment: &str, revision: &str) -> EnvReport {
        EnvReport {
            environment: environment.to_string(),
            revision: revision.to_string(),
            refused: None,
            removals: Removals::default(),
            planned: None,
            approval: None,
            held: Vec::new(),
            applied: None,
            errors: Vec::new(),
            requests: 0,
            elapsed: Duration::ZERO,
            scope: None,
        }
    }

    /// The plan, when there is one.
    pub fn plan(&self) -> Option<&Plan> {
        self.planned.as_ref().map(|p| &p.plan)
    }

    /// Kinds that could not be read, with the error.
    pub fn observe_failures(&self) -> Vec<(Kind, String)> {
        self.planned
            .iter()
            .flat_map(|p| &p.observation.failures)
            .map(|(k, e)| (*k, e.to_string()))
            .collect()
    }

    /// Every problem of the run, one line each: refused clients, unread kinds, refused
    /// changes, a refused prune, failed changes, held changes and record errors.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.refused {
            out.push(DisplayChain(e).to_string());
        }
        for (kind, e) in self.observe_failures() {
            out.push(format!("cannot read {kind} resources: {e}"));
        }
        if let Some(p) = self.plan() {
            out.extend(p.errors.iter().map(|e| format!("refused: {e}")));
        }
        if let Some(why) = &self.removals.refused {
            out.push(why.to_string());
        }
        if let Some(a) = &self.applied {
            for f in a.failures() {
                if let Some(e) = &f.error {
                    out.push(format!("{} {}: {}", f.kind, f.name, DisplayChain(e)));
                }
            }
        }
        out.extend(self.errors.iter().cloned());
        out
    }

    /// Whether anything kept this run from being a clean success (held changes do not:
    /// they run later).
    pub fn success(&self) -> bool {
        self.problems().is_empty()
    }

    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.plan().is_some_and(Plan::has_changes)
    }
}

/// Reconcile one Environment: see the module documentation. Never panics on AWS or store
/// trouble: everything that goes wrong is in the report.
pub async fn run(
    desired: &DesiredState,
    revision: &RevisionInfo,
    settings: &Settings,
    cx: Context<'_>,
) -> EnvReport {
    let started = Instant::now();
    let env = &desired.environment;
    let mut report = EnvReport::new(&env.name, &revision.id);

    // 1. Connect.
    let aws = match cx.clients.connect(env).await {
        Ok(aws) => aws,
        Err(e) => {
            report.refused = Some(e);
            cx.gate.skipped(&env.name);
            report.elapsed = started.elapsed();
            return report;
        }
    };
    let requests_before = aws.stats.total();

    // 2. Inventory, and what leaves management. An unreadable inventory prunes nothing;
    // a targeted run decides no removal at all.
    let read = cx.store.inventory(&env.name).await;
    let prune = PruneOptions {
        enabled: settings.prune.enabled || env.prune,
        allow_mass: settings.prune.allow_mass,
    };
    if settings.only.is_none() {
        report.removals = inventory::removals(
            desired,
            read.as_deref().map_err(|e| DisplayChain(e).to_string()),
            prune,
        );
    }
    let entries = read.unwrap_or_default();

    // 3. Observe and plan (a targeted run: its scope alone).
    report.scope = settings
        .only
        .as_ref()
        .map(|only| crate::plan::scope_of(desired, &plan_cx(desired), only));
    let planned = observe_and_plan_scoped(
        &aws,
        desired,
        &report.removals.removals,
        &entries,
        report.scope.as_ref(),
    )
    .await;

    // 4. The gate.
    if settings.mode == Mode::Plan {
        report.planned = Some(planned);
        report.requests = aws.stats.total() - requests_before;
        report.elapsed = started.elapsed();
        return report;
    }
    let approval = cx.gate.approve(&env.name, &planned.plan).await;
    let runnable = match &approval {
        Approval::Cancel => None,
        Approval::All => Some(planned.plan.actionable().cloned().collect::<Vec<_>>()),
        Approval::Only { run, held } => {
            report.held.extend(held.iter().cloned());
            Some(
                planned
                    .plan
                    .actionable()
                    .filter(|c| run.contains(&(c.kind, c.name.clone())))
                    .cloned()
                    .collect(),
            )
        }
    };
    report.approval = Some(approval);
    let Some(runnable) = runnable else {
        report.planned = Some(planned);
        report.requests = aws.stats.total() - requests_before;
        report.elapsed = started.elapsed();
        return report;
    };

    // 5. Record, apply, record.
    let mut runnable = Plan::new(runnable, vec![]);
    let creating = inventory::before_apply(
        desired,
        &runnable,
        &revision.id,
        &entries,
        crate::state::now_ms(),
    );
    if !creating.is_empty() {
        if let Err(e) = cx.store.record(&env.name, &creating, &[], cx.lease).await {
            // Without the record, a crash between create and tagging would leave the
            // resource looking foreign: those creates wait for the next run.
            let why = format!(
                "cannot record the resources about to be created: {}",
                DisplayChain(&e)
            );
            let held: BTreeSet<ResourceId> = creating.iter().map(InventoryEntry::id).collect();
            runnable
                .changes
                .retain(|c| !held.contains(&(c.kind, c.name.clone())));
            report
                .held
                .extend(held.into_iter().map(|id| (id, why.clone())));
            report.errors.push(why);
        }
    }
    let opts = ApplyOptions {
        concurrency: settings.concurrency,
        stop: settings.stop.clone(),
    };
    let applied = apply::apply(&aws, &runnable, &planned.cx, &opts, |ev| (cx.on_event)(ev)).await;
    let outcomes = applied.outcomes();
    let now = crate::state::now_ms();
    let (upserts, removed) = inventory::after_apply(
        desired,
        &planned.plan,
        Some(&outcomes),
        &report.removals.removals,
        &revision.id,
        &entries,
        &planned.observation.failed_kinds(),
        now,
    );
    if !upserts.is_empty() || !removed.is_empty() {
        if let Err(e) = cx
            .store
            .record(&env.name, &upserts, &removed, cx.lease)
            .await
        {
            report
                .errors
                .push(format!("cannot write the inventory: {}", DisplayChain(&e)));
        }
    }
    if let Some(h) = inventory::history(
        &env.name,
        &revision.id,
        revision.author.clone(),
        revision.message.clone(),
        &outcomes,
        now,
    ) {
        if let Err(e) = cx.store.append_history(&h, cx.lease).await {
            report
                .errors
                .push(format!("cannot write the history: {}", DisplayChain(&e)));
        }
    }
    report.applied = Some(applied);
    report.planned = Some(planned);
    report.requests = aws.stats.total() - requests_before;
    report.elapsed = started.elapsed();
    report
}

/// The value each reference of `desired` has now (`render --resolve`): names and the ARNs the
/// manifests give, and what AWS has for the resources it reads. References to resources AWS
/// does not have yet are left out.
pub async fn reference_values(
    aws: &AwsContext,
    desired: &DesiredState,
) -> std::collections::BTreeMap<crate::syntax::refs::Ref, String> {
    let all: BTreeSet<crate::syntax::refs::Ref> = desired
        .resources
        .iter()
        .flat_map(|r| r.refs.iter().cloned())
        .collect();
    let targets: BTreeSet<ResourceId> = all
        .iter()
        .filter_map(|r| Some((Kind::parse(&r.kind)?, r.name.clone())))
        .collect();
    let only_targets = DesiredState {
        environment: desired.environment.clone(),
        resources: desired
            .resources
            .iter()
            .filter(|r| targets.contains(&(r.kind, r.name.clone())))
            .cloned()
            .collect(),
    };
    let cx = plan_cx(desired);
    let observation = observe(aws, &only_targets, &[], &cx).await;
    all.into_iter()
        .filter_map(|r| {
            let v = crate::plan::ref_value(&r, &observation.observed, &cx)?;
            Some((r, v))
        })
        .collect()
}

/// Observe AWS and plan the changes that make it match `desired`, with `removals` for the
/// resources that left the manifests; what the inventory says an apply began creating is
/// taken as ours even without the ownership tag.
pub async fn observe_and_plan(
    aws: &AwsContext,
    desired: &DesiredState,
    removals: &[Removal],
    inventory: &[InventoryEntry],
) -> Planned {
    observe_and_plan_scoped(aws, desired, removals, inventory, None).await
}

/// [`observe_and_plan`] for the resources of `scope` alone (every resource when `None`):
/// only they are read and planned, against the whole desired state (their ARNs,
/// references and dependencies resolve as in a whole run).
pub async fn observe_and_plan_scoped(
    aws: &AwsContext,
    desired: &DesiredState,
    removals: &[Removal],
    inventory: &[InventoryEntry],
    scope: Option<&BTreeSet<ResourceId>>,
) -> Planned {
    let creating: BTreeSet<ResourceId> = inventory
        .iter()
        .filter(|e| e.creating)
        .map(InventoryEntry::id)
        .collect();
    let cx = plan_cx(desired);
    let extra: Vec<ResourceId> = removals.iter().map(|r| r.id.clone()).collect();
    let observation = match scope {
        None => observe(aws, desired, &extra, &cx).await,
        Some(scope) => {
            let part = DesiredState {
                environment: desired.environment.clone(),
                resources: desired
                    .resources
                    .iter()
                    .filter(|r| scope.contains(&(r.kind, r.name.clone())))
                    .cloned()
                    .collect(),
            };
            observe(aws, &part, &extra, &cx).await
        }
    };
    let skip: BTreeSet<Kind> = observation.failed_kinds();
    let plan = plan_scoped(
        &PlanInput {
            desired,
            observed: &observation.observed,
            removals,
            skip_kinds: &skip,
            creating: &creating,
        },
        scope,
    );
    Planned {
        plan,
        observation,
        cx,
    }
}
