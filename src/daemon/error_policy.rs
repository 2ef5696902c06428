//! The error policy, apart from the worker (as kube-runtime keeps `error_policy` apart from
//! `reconcile`): which failed resources wait, and when the Environment is tried again.
//!
//! A resource whose change failed is retried after a capped, jittered exponential delay
//! ([`Backoff`]) without holding back the others: as the daemon's [`Gate`] the policy holds
//! back only the changes still waiting. A whole Environment that could not run (account
//! unreachable, lease or store trouble) backs off the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::backoff::Backoff;
use crate::pipeline::{Approval, EnvReport, Gate};
use crate::plan::{Plan, ResourceId};

/// The retry state of one Environment.
#[derive(Debug, Clone)]
pub struct ErrorPolicy {
    base: Duration,
    max: Duration,
    /// Failed resources waiting for their retry.
    resources: BTreeMap<ResourceId, Backoff>,
    /// The Environment itself, after a run that could not happen.
    environment: Option<Backoff>,
}

impl ErrorPolicy {
    /// Retries start after `base` and grow to `max`.
    pub fn new(base: Duration, max: Duration) -> ErrorPolicy {
        ErrorPolicy {
            base,
            max,
            resources: BTreeMap::new(),
            environment: None,
        }
    }

    /// Forget every failure: a new revision deserves a fresh attempt at every resource.
    pub fn reset(&mut self) {
        self.resources.clear();
        self.environment = None;
    }

    /// When `id` may be tried again, if it is waiting.
    pub fn retry_at(&self, id: &ResourceId) -> Option<Instant> {
        self.resources.get(id).map(|b| b.next_at)
    }

    /// Update after a run: failed changes back off (longer each time), changes that
    /// succeeded and resources now in sync are forgotten.
    pub fn after_run(&mut self, report: &EnvReport, now: Instant) {
        self.environment = None;
        if let Some(applied) = &report.applied {
            for r in &applied.results {
                let id = (r.kind, r.name.clone());
                match &r.error {
                    None => {
                        self.resources.remove(&id);
                    }
                    Some(_) => {
                        let b = Backoff::after_failure(
                            self.resources.get(&id).copied(),
                            now,
                            self.base,
                            self.max,
                        );
                        self.resources.insert(id, b);
                    }
                }
            }
        }
        if let Some(plan) = report.plan() {
            let in_sync: BTreeSet<ResourceId> = plan
                .changes
                .iter()
                .filter(|c| c.action == crate::plan::Action::NoOp)
                .map(|c| (c.kind, c.name.clone()))
                .collect();
            self.resources.retain(|id, _| !in_sync.contains(id));
        }
    }

    /// Update after a run that could not happen at all; returns when to try again.
    pub fn after_environment_failure(&mut self, now: Instant) -> Instant {
        let b = Backoff::after_failure(self.environment, now, self.base, self.max);
        self.environment = Some(b);
        b.next_at
    }

    /// The earliest retry: of the Environment, or of a resource.
    pub fn next_retry(&self) -> Option<Instant> {
        self.resources
            .values()
            .map(|b| b.next_at)
            .chain(self.environment.map(|b| b.next_at))
            .min()
    }
}

#[async_trait]
impl Gate for ErrorPolicy {
    /// Changes whose resources still back off wait; the rest run.
    async fn approve(&self, _: &str, plan: &Plan) -> Approval {
        let now = Instant::now();
        let mut run = BTreeSet::new();
        let mut held = Vec::new();
        for c in plan.actionable() {
            let id = (c.kind, c.name.clone());
            match self.resources.get(&id) {
                Some(b) if !b.ready(now) => {
                    held.push((id, "waiting to retry after a failure".to_string()))
                }
                _ => {
                    run.insert(id);
                }
            }
        }
        if held.is_empty() {
            Approval::All
        } else {
            Approval::Only { run, held }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Kind;
    use crate::plan::{Action, Change};

    fn change(name: &str) -> Change {
        Change {
            kind: Kind::Role,
            name: name.into(),
            action: Action::Update,
            fields: vec![],
            reason: None,
            access: vec![],
            steps: vec![],
            depends_on: vec![],
        }
    }

    #[tokio::test]
    async fn a_resource_backing_off_is_held_and_the_others_run() {
        let mut p = ErrorPolicy::new(Duration::from_secs(60), Duration::from_secs(600));
        let plan = Plan::new(vec![change("a"), change("b")], vec![]);
        assert_eq!(p.approve("e", &plan).await, Approval::All);
        let now = Instant::now();
        p.resources.insert(
            (Kind::Role, "a".into()),
            Backoff::after_failure(None, now, p.base, p.max),
        );
        match p.approve("e", &plan).await {
            Approval::Only { run, held } => {
                assert_eq!(run, BTreeSet::from([(Kind::Role, "b".to_string())]));
                assert_eq!(held[0].0, (Kind::Role, "a".to_string()));
            }
            other => panic!("{other:?}"),
        }
        assert!(p.next_retry().unwrap() > now);
        p.reset();
        assert_eq!(p.next_retry(), None);
    }

    #[test]
    fn an_environment_that_cannot_run_backs_off_longer_each_time() {
        let mut p = ErrorPolicy::new(Duration::from_secs(10), Duration::from_secs(600));
        let now = Instant::now();
        let first = p.after_environment_failure(now);
        let second = p.after_environment_failure(now);
        assert!(second > first);
        assert_eq!(p.next_retry(), Some(second));
    }
}
