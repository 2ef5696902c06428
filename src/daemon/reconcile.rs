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
use crate::plan::{Action, Plan, ResourceId};
use crate::reconcile::plan_once;
use crate::status::{ResourceState, ResourceStatus};

/// Epoch seconds of a tokio instant in the future.
fn epoch_of(t: Instant) -> u64 {
    epoch_secs() + t.saturating_duration_since(Instant::now()).as_secs()
}

impl Controller {
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
        let planned = plan_once(&aws, &good.desired, &[]).await;
        let mut errors: Vec<String> = Vec::new();
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
            let report = apply::apply(&aws, &runnable, &planned.cx, &opts, |ev| {
                if let Event::Started(c) = ev {
                    tracing::info!(kind = %c.kind, name = %c.name, action = ?c.action, "applying");
                }
            })
            .await;
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
