//! One reconcile of the last good revision: observe, plan, apply (or only report in detect
//! mode), then publish status and metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant as StdInstant;

use tokio::time::Instant;
use tracing::Instrument;

use super::{epoch_secs, Backoff, Controller, Mode};
use crate::apply::{self, ApplyOptions, Event};
use crate::aws::{AwsContext, CallObserver};
use crate::kinds::Kind;
use crate::manifest::DesiredState;
use crate::plan::{Action, Plan, ResourceId};
use crate::reconcile::inventory::{self, PruneOptions, Removals};
use crate::reconcile::plan_once;
use crate::state::InventoryEntry;
use crate::status::{ResourceState, ResourceStatus};

/// Epoch seconds of a tokio instant in the future.
fn epoch_of(t: Instant) -> u64 {
    epoch_secs() + t.saturating_duration_since(Instant::now()).as_secs()
}

impl Controller {
    /// Open the state store on first use (a DynamoDB store needs the AWS clients).
    async fn open_store(&mut self, aws: &AwsContext) -> Result<(), String> {
        if self.store.is_none() {
            let s = crate::state::open(
                self.cfg.state.as_deref(),
                &self.cfg.source.state_dir,
                Some(aws),
            )
            .await
            .map_err(|e| {
                format!(
                    "cannot open the state store: {}",
                    crate::aws::DisplayChain(&e)
                )
            })?;
            self.store = Some(s);
        }
        Ok(())
    }

    /// Hold (or renew) the lease on the Environment. False when another replica holds it
    /// or the store cannot be reached: then this replica must not reconcile.
    async fn hold_lease(&mut self, aws: &AwsContext, env: &str) -> bool {
        if let Err(e) = self.open_store(aws).await {
            tracing::error!("{e}");
            self.status.write().unwrap().last_error = Some(e);
            return false;
        }
        let store = self.store.as_ref().expect("opened above");
        let was = self.lease.is_some();
        match store
            .acquire_lease(env, &self.cfg.holder, self.cfg.lease_ttl)
            .await
        {
            Ok(l) => {
                if !was {
                    tracing::info!(
                        environment = env,
                        token = l.token,
                        "lease acquired: this replica reconciles the environment"
                    );
                }
                self.metrics.leader.with_label_values(&[env]).set(1);
                self.lease = Some(l);
                true
            }
            Err(crate::state::StateError::LeaseHeld {
                holder,
                expires_at_ms,
                ..
            }) => {
                if was {
                    tracing::warn!(environment = env, %holder, "lease lost to another replica");
                }
                self.lease = None;
                self.metrics.leader.with_label_values(&[env]).set(0);
                let mut s = self.status.write().unwrap();
                s.last_error = Some(format!("standby: {holder} holds the lease on {env} (until {expires_at_ms} ms since the epoch)"));
                false
            }
            Err(e) => {
                let msg = format!(
                    "cannot take the lease on {env}: {}",
                    crate::aws::DisplayChain(&e)
                );
                tracing::warn!("{msg}");
                self.lease = None;
                self.metrics.leader.with_label_values(&[env]).set(0);
                self.status.write().unwrap().last_error = Some(msg);
                false
            }
        }
    }

    /// The periodic lease renewal. True when this replica just became the holder (it then
    /// reconciles at once instead of waiting for the next resync).
    pub(super) async fn lease_tick(&mut self) -> bool {
        let Some(good) = self.good.as_ref() else {
            return false;
        };
        let (region, env) = (
            good.desired.environment.region.clone(),
            good.desired.environment.name.clone(),
        );
        let was = self.lease.is_some();
        let aws = self.aws_for(&region).await;
        let now = self.hold_lease(&aws, &env).await;
        now && !was
    }

    /// Give the lease back on shutdown so another replica takes over at once.
    pub(super) async fn release(&mut self) {
        if let (Some(store), Some(lease)) = (self.store.as_ref(), self.lease.take()) {
            if let Err(e) = store.release_lease(&lease).await {
                tracing::warn!(error = %crate::aws::DisplayChain(&e), "cannot release the lease");
            }
        }
    }

    /// The inventory and what leaves management this time. An unreadable store is
    /// reported and prunes nothing.
    async fn inventory(
        &mut self,
        aws: &AwsContext,
        desired: &DesiredState,
        errors: &mut Vec<String>,
    ) -> (Vec<InventoryEntry>, Removals) {
        let opts = PruneOptions {
            enabled: self.cfg.prune.enabled || desired.environment.prune,
            allow_mass: self.cfg.prune.allow_mass,
        };
        if let Err(msg) = self.open_store(aws).await {
            tracing::error!("{msg}");
            errors.push(msg);
            return (vec![], Removals::default());
        }
        let store = self.store.as_ref().expect("opened above");
        let read = store.inventory(&desired.environment.name).await;
        let rm = inventory::removals(
            desired,
            read.as_deref()
                .map_err(|e| crate::aws::DisplayChain(e).to_string()),
            opts,
        );
        self.metrics
            .record_prune(&desired.environment.name, rm.refused.as_ref());
        if let Some(why) = &rm.refused {
            tracing::error!(error = %why, "prune refused");
            errors.push(why.to_string());
        }
        (read.unwrap_or_default(), rm)
    }

    /// Write the inventory and, when something was applied, a history record.
    async fn record(
        &mut self,
        good: &super::Good,
        planned: &crate::reconcile::Planned,
        report: Option<&apply::ApplyReport>,
        removals: &[crate::plan::Removal],
        entries: &[InventoryEntry],
        errors: &mut Vec<String>,
    ) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let env = &good.desired.environment.name;
        let now = crate::state::now_ms();
        let (upserts, removed) = inventory::after_apply(
            &good.desired,
            &planned.plan,
            report,
            removals,
            &good.revision.id,
            entries,
            &planned.observation.failed_kinds(),
            now,
        );
        if !upserts.is_empty() || !removed.is_empty() {
            if let Err(e) = store
                .record(env, &upserts, &removed, self.lease.as_ref())
                .await
            {
                errors.push(format!(
                    "cannot write the inventory: {}",
                    crate::aws::DisplayChain(&e)
                ));
            }
        }
        if let Some(h) = report.and_then(|r| {
            inventory::history(
                env,
                &good.revision.id,
                good.revision.author.clone(),
                good.revision.message.clone(),
                r,
                now,
            )
        }) {
            if let Err(e) = store.append_history(&h, self.lease.as_ref()).await {
                errors.push(format!(
                    "cannot write the history: {}",
                    crate::aws::DisplayChain(&e)
                ));
            }
        }
    }

    /// The AWS clients for the Environment's region, made on first use.
    async fn aws_for(&mut self, region: &str) -> AwsContext {
        if let Some((r, aws)) = &self.aws {
            if r == region {
                return aws.clone();
            }
        }
        let aws = AwsContext::from_env(&self.cfg.aws, region).await;
        aws.stats
            .set_observer(self.metrics.clone() as std::sync::Arc<dyn CallObserver>);
        self.aws = Some((region.to_string(), aws.clone()));
        aws
    }

    /// Reconcile the last good revision once.
    pub(super) async fn reconcile(&mut self) {
        let Some(good) = self.good.take() else { return };
        let span = tracing::info_span!("reconcile", revision = %good.revision.id, mode = self.cfg.mode.as_str());
        self.reconcile_good(&good).instrument(span).await;
        self.good = Some(good);
    }

    async fn reconcile_good(&mut self, good: &super::Good) {
        let started = StdInstant::now();
        let rev = good.revision.id.clone();
        let aws = self.aws_for(&good.desired.environment.region).await;
        // Exactly one replica reconciles an Environment: the one holding its lease.
        if !self.hold_lease(&aws, &good.desired.environment.name).await {
            self.metrics
                .reconcile_total
                .with_label_values(&["skipped"])
                .inc();
            self.readiness.reconciled();
            return;
        }
        let mut errors: Vec<String> = Vec::new();
        let (entries, removals) = self.inventory(&aws, &good.desired, &mut errors).await;
        let planned = plan_once(&aws, &good.desired, &removals.removals).await;
        for (kind, e) in &planned.observation.failures {
            tracing::warn!(%kind, error = %e, "cannot observe; its resources are skipped this time");
            errors.push(format!("cannot read {kind} resources: {e}"));
        }
        for e in &planned.plan.errors {
            tracing::error!(error = %e, "refused change");
            errors.push(format!("refused: {e}"));
        }

        // Changes already planned for the revision that was applied are drift.
        let already_applied = self.applied.as_deref() == Some(rev.as_str());
        let mut states: BTreeMap<ResourceId, (ResourceState, Option<String>, Option<u64>)> =
            BTreeMap::new();
        for c in &planned.plan.changes {
            let id = (c.kind, c.name.clone());
            let state = match c.action {
                Action::NoOp => ResourceState::InSync,
                Action::Conflict => ResourceState::Conflict,
                Action::Create | Action::Update | Action::Delete | Action::Forget => {
                    if already_applied {
                        self.metrics
                            .drift_detected_total
                            .with_label_values(&[c.kind.as_str()])
                            .inc();
                        tracing::info!(kind = %c.kind, name = %c.name, fields = c.fields.len(), "drift detected");
                    }
                    if self.cfg.mode == Mode::Detect {
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
            for r in good.desired.resources.iter().filter(|r| r.kind == *kind) {
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

        let mut failures = 0usize;
        let mut report: Option<apply::ApplyReport> = None;
        if self.cfg.mode == Mode::Apply && planned.plan.has_changes() {
            // The error policy: resources still backing off wait for their turn.
            let now = Instant::now();
            let (ready, waiting): (Vec<_>, Vec<_>) =
                planned.plan.actionable().cloned().partition(|c| {
                    self.backoff
                        .get(&(c.kind, c.name.clone()))
                        .is_none_or(|b| b.ready(now))
                });
            for c in &waiting {
                let b = self.backoff[&(c.kind, c.name.clone())];
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
            let runnable = Plan::new(ready, vec![]);
            let opts = ApplyOptions {
                concurrency: self.cfg.concurrency,
                stop: Some(self.stop.clone()),
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
                        self.backoff.remove(&id);
                        self.metrics
                            .changes_applied_total
                            .with_label_values(&[r.kind.as_str(), action, "success"])
                            .inc();
                        states.insert(id, (ResourceState::InSync, None, None));
                    }
                    Some(e) => {
                        failures += 1;
                        self.metrics
                            .changes_applied_total
                            .with_label_values(&[r.kind.as_str(), action, "failure"])
                            .inc();
                        let b = Backoff::after_failure(
                            self.backoff.get(&id).copied(),
                            Instant::now(),
                            self.cfg.retry_base,
                            self.cfg.retry_max,
                        );
                        tracing::warn!(kind = %r.kind, name = %r.name, error = %e, attempts = b.attempts, retry_in_secs = b.next_at.saturating_duration_since(Instant::now()).as_secs(), "change failed; will retry");
                        self.backoff.insert(id.clone(), b);
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
            failures += waiting.len();
        }
        if self.cfg.mode == Mode::Apply {
            self.record(
                good,
                &planned,
                report.as_ref(),
                &removals.removals,
                &entries,
                &mut errors,
            )
            .await;
        }
        // Resources that are in sync no longer need a retry.
        let in_sync: BTreeSet<ResourceId> = states
            .iter()
            .filter(|(_, s)| s.0 == ResourceState::InSync)
            .map(|(id, _)| id.clone())
            .collect();
        self.backoff.retain(|id, _| !in_sync.contains(id));

        // In detect mode drift is reported (metrics, status), not a failure of the reconcile.
        let success = errors.is_empty() && failures == 0;
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
            if self.cfg.mode == Mode::Apply {
                self.applied = Some(rev.clone());
            }
        }
        let mut counts: BTreeMap<(Kind, ResourceState), i64> = BTreeMap::new();
        for ((kind, _), (state, _, _)) in &states {
            *counts.entry((*kind, *state)).or_default() += 1;
        }
        self.metrics.set_resource_counts(&counts);
        {
            let mut s = self.status.write().unwrap();
            s.reconciles += 1;
            s.last_reconcile_at = Some(epoch_secs());
            if success && self.cfg.mode == Mode::Apply {
                s.last_applied_revision = Some(rev.clone());
            }
            // A validation error of a newer revision stays visible until a valid one arrives.
            let invalid_newer = s
                .last_attempted_revision
                .as_deref()
                .is_some_and(|a| a != rev);
            if !invalid_newer {
                s.last_error = if errors.is_empty() {
                    None
                } else {
                    Some(errors.join("\n"))
                };
            }
            s.resources = states
                .into_iter()
                .map(|((kind, name), (state, error, retry_at))| ResourceStatus {
                    kind,
                    name,
                    state,
                    error,
                    retry_at,
                })
                .collect();
        }
        self.readiness.reconciled();
        tracing::info!(
            success,
            changes = planned.plan.actionable().count(),
            failures,
            aws_requests = aws.stats.total(),
            elapsed_ms = elapsed.as_millis() as u64,
            "reconcile finished"
        );
    }
}
