//! One reconcile of the last good revision: every Environment concurrently, each observe,
//! plan, apply (or only report in detect mode) with its own clients, lease and inventory;
//! then status and metrics for all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use tokio::time::Instant;
use tracing::Instrument;

use super::{
    env_scope, epoch_secs, AttemptObserver, Backoff, Controller, DaemonConfig, EnvCtl, Mode,
    STORE_SCOPE,
};
use crate::apply::{self, ApplyOptions, Event};
use crate::aws::{AccountError, AwsContext, DisplayChain};
use crate::kinds::Kind;
use crate::manifest::DesiredState;
use crate::metrics::Metrics;
use crate::plan::{Action, Plan, ResourceId};
use crate::reconcile::inventory::{self, PruneOptions};
use crate::reconcile::plan_with_inventory;
use crate::source::Revision;
use crate::state::StateStore;
use crate::status::{Readiness, ResourceState, ResourceStatus};

/// Epoch seconds of a tokio instant in the future.
fn epoch_of(t: Instant) -> u64 {
    epoch_secs() + t.saturating_duration_since(Instant::now()).as_secs()
}

/// What every Environment's reconcile shares (read-only).
struct Shared<'a> {
    cfg: &'a DaemonConfig,
    metrics: &'a Arc<Metrics>,
    readiness: &'a Arc<Readiness>,
    stop: &'a Arc<AtomicBool>,
    store: Option<&'a dyn StateStore>,
}

/// How one Environment's reconcile went.
#[derive(Default)]
struct Outcome {
    /// No errors and no failed changes.
    success: bool,
    /// Another replica holds the lease: nothing was done.
    standby: bool,
    /// Changes planned.
    changes: usize,
    /// Changes that failed or wait for a retry.
    failures: usize,
    /// AWS requests made.
    requests: u64,
    /// Per (kind, state) resource counts.
    counts: BTreeMap<(Kind, ResourceState), i64>,
}

impl Controller {
    /// Open the state store on first use (a DynamoDB table lives in the account of the
    /// standard chain's credentials, in the first Environment's region unless configured).
    async fn open_store(&mut self, region: &str) -> Result<(), String> {
        if self.store.is_none() {
            if self.home.is_none() && self.cfg.state.is_some() {
                let home = AwsContext::from_env(&self.cfg.aws, region).await;
                home.stats.set_observer(AttemptObserver::new(
                    STORE_SCOPE.into(),
                    &self.metrics,
                    &self.readiness,
                ));
                self.home = Some(home);
            }
            let s = crate::state::open(
                self.cfg.state.as_deref(),
                &self.cfg.source.state_dir,
                self.home.as_ref(),
            )
            .await
            .map_err(|e| format!("cannot open the state store: {}", DisplayChain(&e)))?;
            self.store = Some(s);
        }
        Ok(())
    }

    /// The periodic lease renewal. True when this replica just became the holder of some
    /// Environment (it then reconciles at once instead of waiting for the next resync).
    pub(super) async fn lease_tick(&mut self) -> bool {
        let Some(good) = self.good.as_ref() else {
            return false;
        };
        let Some(region) = good.store_region().map(str::to_string) else {
            return false;
        };
        let names: Vec<String> = good
            .envs
            .iter()
            .map(|(_, d)| d.environment.name.clone())
            .collect();
        if let Err(e) = self.open_store(&region).await {
            tracing::error!("{e}");
            self.status.write().unwrap().last_error = Some(e);
            return false;
        }
        let shared = Shared {
            cfg: &self.cfg,
            metrics: &self.metrics,
            readiness: &self.readiness,
            stop: &self.stop,
            store: self.store.as_deref(),
        };
        let mut newly = false;
        for name in names {
            let Some(env) = self.envs.get_mut(&name) else {
                continue;
            };
            let was = env.lease.is_some();
            let now = hold_lease(&shared, env, &name).await.is_ok();
            newly |= now && !was;
        }
        newly
    }

    /// Give the leases back on shutdown so another replica takes over at once.
    pub(super) async fn release(&mut self) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let leases = self
            .envs
            .values_mut()
            .filter_map(|e| e.lease.take())
            .chain(self.retired.drain(..));
        for lease in leases {
            if let Err(e) = store.release_lease(&lease).await {
                tracing::warn!(environment = %lease.environment, error = %DisplayChain(&e), "cannot release the lease");
            }
        }
    }

    /// Reconcile the last good revision once: every Environment concurrently.
    pub(super) async fn reconcile(&mut self) {
        let Some(good) = self.good.take() else { return };
        let span = tracing::info_span!("reconcile", revision = %good.revision.id, mode = self.cfg.mode.as_str());
        self.reconcile_good(&good).instrument(span).await;
        self.good = Some(good);
    }

    async fn reconcile_good(&mut self, good: &super::Good) {
        let started = StdInstant::now();
        let rev = &good.revision;
        let mut errors: Vec<String> = Vec::new();
        let region = good.store_region().unwrap_or_default().to_string();
        if let Err(e) = self.open_store(&region).await {
            tracing::error!("{e}");
            errors.push(e);
        }
        if let Some(store) = self.store.as_ref() {
            for lease in self.retired.drain(..) {
                if let Err(e) = store.release_lease(&lease).await {
                    tracing::warn!(environment = %lease.environment, error = %DisplayChain(&e), "cannot release the lease of a removed Environment");
                }
            }
        }
        let several = good.envs.len() > 1;
        let shared = Shared {
            cfg: &self.cfg,
            metrics: &self.metrics,
            readiness: &self.readiness,
            stop: &self.stop,
            store: self.store.as_deref(),
        };
        let mut jobs = Vec::new();
        for (env_name, ctl) in self.envs.iter_mut() {
            let Some((_, desired)) = good
                .envs
                .iter()
                .find(|(_, d)| &d.environment.name == env_name)
            else {
                continue;
            };
            let span = tracing::info_span!("environment", environment = %env_name);
            jobs.push(reconcile_env(&shared, ctl, rev, desired).instrument(span));
        }
        let outcomes = futures::future::join_all(jobs).await;
        if !outcomes.is_empty() && outcomes.iter().all(|o| o.standby) {
            // Standing by everywhere: no reconcile happened here.
            let mut s = self.status.write().unwrap();
            s.environments = self.envs.values().map(|e| e.status.clone()).collect();
            s.last_error = self
                .envs
                .values()
                .filter_map(|e| e.status.last_error.clone())
                .reduce(|a, b| format!("{a}\n{b}"));
            drop(s);
            self.readiness.reconciled();
            return;
        }

        let success = errors.is_empty() && outcomes.iter().all(|o| o.success);
        let elapsed = started.elapsed();
        self.metrics
            .reconcile_duration_seconds
            .observe(elapsed.as_secs_f64());
        self.metrics
            .reconcile_total
            .with_label_values(&[if success { "success" } else { "failure" }])
            .inc();
        if success {
            self.metrics
                .last_success_timestamp_seconds
                .set(epoch_secs() as f64);
        }
        let mut counts: BTreeMap<(Kind, ResourceState), i64> = BTreeMap::new();
        for o in &outcomes {
            for (k, n) in &o.counts {
                *counts.entry(*k).or_default() += n;
            }
        }
        self.metrics.set_resource_counts(&counts);
        {
            let mut s = self.status.write().unwrap();
            s.reconciles += 1;
            s.last_reconcile_at = Some(epoch_secs());
            if success && self.cfg.mode == Mode::Apply {
                s.last_applied_revision = Some(rev.id.clone());
            }
            for e in self.envs.values() {
                if let Some(err) = &e.status.last_error {
                    if several {
                        errors.push(format!("Environment {}: {err}", e.status.name));
                    } else {
                        errors.push(err.clone());
                    }
                }
            }
            // A validation error of a newer revision stays visible until a valid one arrives.
            let invalid_newer = s
                .last_attempted_revision
                .as_deref()
                .is_some_and(|a| a != rev.id);
            if !invalid_newer {
                s.last_error = if errors.is_empty() {
                    None
                } else {
                    Some(errors.join("\n"))
                };
            }
            s.environments = self.envs.values().map(|e| e.status.clone()).collect();
            s.resources = self
                .envs
                .values()
                .flat_map(|e| e.resources.iter().cloned())
                .collect();
        }
        self.readiness.reconciled();
        tracing::info!(
            success,
            environments = outcomes.len(),
            changes = outcomes.iter().map(|o| o.changes).sum::<usize>(),
            failures = outcomes.iter().map(|o| o.failures).sum::<usize>(),
            aws_requests = outcomes.iter().map(|o| o.requests).sum::<u64>(),
            elapsed_ms = elapsed.as_millis() as u64,
            "reconcile finished"
        );
    }
}

/// The Environment's clients: its region and assumed role, made on first use and kept
/// while the options stay the same. Refused when the credentials reach another account
/// than the Environment's: then nothing is read or written there.
async fn aws_for(
    shared: &Shared<'_>,
    env: &mut EnvCtl,
    desired: &DesiredState,
) -> Result<AwsContext, String> {
    let e = &desired.environment;
    let opts = shared.cfg.aws.for_environment(e);
    if let Some((o, region, aws)) = &env.aws {
        if *o == opts && region == &e.region {
            return Ok(aws.clone());
        }
    }
    let aws = AwsContext::from_env(&opts, &e.region).await;
    aws.stats.set_observer(AttemptObserver::new(
        env_scope(&e.name),
        shared.metrics,
        shared.readiness,
    ));
    aws.check_account(&e.account).await.map_err(|err| match err {
        AccountError::WrongAccount { .. } => format!(
            "{err}; nothing is read or changed (set spec.assumeRoleArn, or run with that account's credentials)"
        ),
        AccountError::Identity(_) => DisplayChain(&err).to_string(),
    })?;
    env.aws = Some((opts, e.region.clone(), aws.clone()));
    Ok(aws)
}

/// Hold (or renew) the lease on the Environment. An error when another replica holds it or
/// the store cannot be reached: then this replica must not reconcile it.
async fn hold_lease(shared: &Shared<'_>, env: &mut EnvCtl, name: &str) -> Result<(), String> {
    let Some(store) = shared.store else {
        return Err("the state store is not open".into());
    };
    let was = env.lease.is_some();
    let gauge = shared.metrics.leader.with_label_values(&[name]);
    match store
        .acquire_lease(name, &shared.cfg.holder, shared.cfg.lease_ttl)
        .await
    {
        Ok(l) => {
            if !was {
                tracing::info!(
                    environment = name,
                    token = l.token,
                    "lease acquired: this replica reconciles the environment"
                );
            }
            gauge.set(1);
            env.lease = Some(l);
            env.status.leader = true;
            Ok(())
        }
        Err(crate::state::StateError::LeaseHeld {
            holder,
            expires_at_ms,
            ..
        }) => {
            if was {
                tracing::warn!(environment = name, %holder, "lease lost to another replica");
            }
            env.lease = None;
            env.status.leader = false;
            gauge.set(0);
            Err(format!("standby: {holder} holds the lease on {name} (until {expires_at_ms} ms since the epoch)"))
        }
        Err(e) => {
            let msg = format!("cannot take the lease on {name}: {}", DisplayChain(&e));
            tracing::warn!("{msg}");
            env.lease = None;
            env.status.leader = false;
            gauge.set(0);
            Err(msg)
        }
    }
}

/// Reconcile one Environment: lease, inventory, observe, plan, apply, record.
async fn reconcile_env(
    shared: &Shared<'_>,
    env: &mut EnvCtl,
    rev: &Revision,
    desired: &DesiredState,
) -> Outcome {
    let name = desired.environment.name.clone();
    let mut out = Outcome::default();
    let mut errors: Vec<String> = Vec::new();
    let aws = match aws_for(shared, env, desired).await {
        Ok(aws) => aws,
        Err(e) => {
            tracing::error!(environment = %name, error = %e, "cannot reach the environment's account");
            env.status.last_error = Some(e);
            env.status.last_reconcile_at = Some(epoch_secs());
            return out;
        }
    };
    // Exactly one replica reconciles an Environment: the one holding its lease.
    if let Err(standby) = hold_lease(shared, env, &name).await {
        // A standby makes no AWS requests for the Environment: what it saw before says
        // nothing about AWS now.
        let scope = env_scope(&name);
        shared.readiness.retain_aws_scopes(|s| s != scope);
        shared
            .metrics
            .reconcile_total
            .with_label_values(&["skipped"])
            .inc();
        env.status.last_error = Some(standby);
        // A standby is healthy: its reconcile is someone else's.
        out.success = true;
        out.standby = true;
        return out;
    }
    let requests_before = aws.stats.total();

    // The inventory and what leaves management this time. An unreadable store is reported
    // and prunes nothing.
    let store = shared.store.expect("the lease needs the store");
    let opts = PruneOptions {
        enabled: shared.cfg.prune.enabled || desired.environment.prune,
        allow_mass: shared.cfg.prune.allow_mass,
    };
    let read = store.inventory(&name).await;
    let removals = inventory::removals(
        desired,
        read.as_deref().map_err(|e| DisplayChain(e).to_string()),
        opts,
    );
    shared
        .metrics
        .record_prune(&name, removals.refused.as_ref());
    if let Some(why) = &removals.refused {
        tracing::error!(error = %why, "prune refused");
        errors.push(why.to_string());
    }
    let entries = read.unwrap_or_default();

    let planned = plan_with_inventory(&aws, desired, &removals.removals, &entries).await;
    for (kind, e) in &planned.observation.failures {
        tracing::warn!(%kind, error = %e, "cannot observe; its resources are skipped this time");
        errors.push(format!("cannot read {kind} resources: {e}"));
    }
    for e in &planned.plan.errors {
        tracing::error!(error = %e, "refused change");
        errors.push(format!("refused: {e}"));
    }

    // Changes already planned for the revision that was applied are drift.
    let already_applied = env.applied.as_deref() == Some(rev.id.as_str());
    let mode = shared.cfg.mode;
    let mut states: BTreeMap<ResourceId, (ResourceState, Option<String>, Option<u64>)> =
        BTreeMap::new();
    for c in &planned.plan.changes {
        let id = (c.kind, c.name.clone());
        let state = match c.action {
            Action::NoOp => ResourceState::InSync,
            Action::Conflict => ResourceState::Conflict,
            Action::Create | Action::Update | Action::Delete | Action::Forget => {
                if already_applied {
                    shared
                        .metrics
                        .drift_detected_total
                        .with_label_values(&[c.kind.as_str()])
                        .inc();
                    tracing::info!(kind = %c.kind, name = %c.name, fields = c.fields.len(), "drift detected");
                }
                if mode == Mode::Detect {
                    ResourceState::Drifted
                } else {
                    ResourceState::Pending
                }
            }
        };
        states.insert(id, (state, c.reason.clone(), None));
    }
    for e in &planned.plan.errors {
        states.insert(
            (e.kind, e.name.clone()),
            (
                ResourceState::Failed,
                Some(format!("{}: {}", e.field, e.message)),
                None,
            ),
        );
    }
    for (kind, _) in &planned.observation.failures {
        for r in desired.resources.iter().filter(|r| r.kind == *kind) {
            states.insert(
                (r.kind, r.name.clone()),
                (
                    ResourceState::Pending,
                    Some("could not be observed".into()),
                    None,
                ),
            );
        }
    }

    let mut report: Option<apply::ApplyReport> = None;
    out.changes = planned.plan.actionable().count();
    if mode == Mode::Apply && planned.plan.has_changes() {
        // The error policy: resources still backing off wait for their turn.
        let now = Instant::now();
        let (ready, waiting): (Vec<_>, Vec<_>) =
            planned.plan.actionable().cloned().partition(|c| {
                env.backoff
                    .get(&(c.kind, c.name.clone()))
                    .is_none_or(|b| b.ready(now))
            });
        for c in &waiting {
            let b = env.backoff[&(c.kind, c.name.clone())];
            let prev = states
                .get(&(c.kind, c.name.clone()))
                .and_then(|s| s.1.clone());
            states.insert(
                (c.kind, c.name.clone()),
                (
                    ResourceState::Failed,
                    prev.or(Some("waiting to retry after a failure".into())),
                    Some(epoch_of(b.next_at)),
                ),
            );
        }
        let mut runnable = Plan::new(ready, vec![]);
        // Buckets about to be created go into the inventory first, marked `creating`: a
        // crash between CreateBucket and its tagging must not leave a bucket that later
        // looks like someone else's. Without that record they are not created this time.
        let creating = inventory::before_apply(
            desired,
            &runnable,
            &rev.id,
            &entries,
            crate::state::now_ms(),
        );
        if !creating.is_empty() {
            if let Err(e) = store
                .record(&name, &creating, &[], env.lease.as_ref())
                .await
            {
                let why = format!(
                    "cannot record the buckets about to be created: {}",
                    DisplayChain(&e)
                );
                tracing::warn!(error = %why, "bucket creates wait for the next reconcile");
                let held: BTreeSet<ResourceId> = creating.iter().map(|e| e.id()).collect();
                runnable
                    .changes
                    .retain(|c| !held.contains(&(c.kind, c.name.clone())));
                for id in held {
                    states.insert(id, (ResourceState::Pending, Some(why.clone()), None));
                }
                errors.push(why);
            }
        }
        let opts = ApplyOptions {
            concurrency: shared.cfg.concurrency,
            stop: Some(shared.stop.clone()),
        };
        let applied = apply::apply(&aws, &runnable, &planned.cx, &opts, |ev| {
            if let Event::Started(c) = ev {
                tracing::info!(kind = %c.kind, name = %c.name, action = ?c.action, "applying");
            }
        })
        .await;
        let report = report.insert(applied);
        for r in &report.results {
            let id = (r.kind, r.name.clone());
            let action = match r.action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Forget => "forget",
                _ => "delete",
            };
            match &r.error {
                None => {
                    env.backoff.remove(&id);
                    shared
                        .metrics
                        .changes_applied_total
                        .with_label_values(&[r.kind.as_str(), action, "success"])
                        .inc();
                    states.insert(id, (ResourceState::InSync, None, None));
                }
                Some(e) => {
                    out.failures += 1;
                    shared
                        .metrics
                        .changes_applied_total
                        .with_label_values(&[r.kind.as_str(), action, "failure"])
                        .inc();
                    let b = Backoff::after_failure(
                        env.backoff.get(&id).copied(),
                        Instant::now(),
                        shared.cfg.retry_base,
                        shared.cfg.retry_max,
                    );
                    tracing::warn!(kind = %r.kind, name = %r.name, error = %e, attempts = b.attempts, retry_in_secs = b.next_at.saturating_duration_since(Instant::now()).as_secs(), "change failed; will retry");
                    env.backoff.insert(id.clone(), b);
                    errors.push(format!("{} {}: {e}", r.kind, r.name));
                    states.insert(
                        id,
                        (
                            ResourceState::Failed,
                            Some(e.to_string()),
                            Some(epoch_of(b.next_at)),
                        ),
                    );
                }
            }
        }
        out.failures += waiting.len();
    }
    if mode == Mode::Apply {
        // Write the inventory and, when something was applied, a history record; fenced
        // by the lease so a replica that lost it cannot overwrite its successor's.
        let now = crate::state::now_ms();
        let (upserts, removed) = inventory::after_apply(
            desired,
            &planned.plan,
            report.as_ref(),
            &removals.removals,
            &rev.id,
            &entries,
            &planned.observation.failed_kinds(),
            now,
        );
        if !upserts.is_empty() || !removed.is_empty() {
            if let Err(e) = store
                .record(&name, &upserts, &removed, env.lease.as_ref())
                .await
            {
                errors.push(format!("cannot write the inventory: {}", DisplayChain(&e)));
            }
        }
        if let Some(h) = report.as_ref().and_then(|r| {
            inventory::history(
                &name,
                &rev.id,
                rev.author.clone(),
                rev.message.clone(),
                r,
                now,
            )
        }) {
            if let Err(e) = store.append_history(&h, env.lease.as_ref()).await {
                errors.push(format!("cannot write the history: {}", DisplayChain(&e)));
            }
        }
    }
    // Resources that are in sync no longer need a retry.
    let in_sync: BTreeSet<ResourceId> = states
        .iter()
        .filter(|(_, s)| s.0 == ResourceState::InSync)
        .map(|(id, _)| id.clone())
        .collect();
    env.backoff.retain(|id, _| !in_sync.contains(id));

    // In detect mode drift is reported (metrics, status), not a failure of the reconcile.
    out.success = errors.is_empty() && out.failures == 0;
    if out.success && mode == Mode::Apply {
        env.applied = Some(rev.id.clone());
        env.status.last_applied_revision = Some(rev.id.clone());
    }
    for ((kind, _), (state, _, _)) in &states {
        *out.counts.entry((*kind, *state)).or_default() += 1;
    }
    env.status.last_error = (!errors.is_empty()).then(|| errors.join("\n"));
    env.status.last_reconcile_at = Some(epoch_secs());
    env.resources = states
        .into_iter()
        .map(|((kind, rname), (state, error, retry_at))| ResourceStatus {
            environment: name.clone(),
            kind,
            name: rname,
            state,
            error,
            retry_at,
        })
        .collect();
    out.requests = aws.stats.total() - requests_before;
    out
}
