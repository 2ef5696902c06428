//! The loop's side of the control API ([`crate::http::control`]): suspend and resume an
//! Environment in the state store, and make Environments due now. Requests are answered
//! between passes, by the loop that owns the schedule, the workers and the store.
//!
//! Suspension is the store's, not this replica's: a suspend or resume reaching any replica
//! holds for all of them (each reads it before every run and at every lease renewal) and
//! across restarts. Reconcile-now is this replica's: only the replica leading an
//! Environment reconciles it, so another one answers 409 naming the leader.

use serde_json::json;
use tokio::time::Instant;

use super::worker::Assigned;
use super::Runtime;
use crate::aws::DisplayChain;
use crate::http::control::{ControlCall, ControlReply, ControlRequest, ControlStatus};
use crate::state::{now_ms, Suspension};

impl Runtime {
    /// Answer one control request.
    pub(super) async fn control(&mut self, call: ControlCall) {
        let reply = self.answer(call.request).await;
        tracing::info!(status = ?reply.status, message = %reply.body["message"].as_str().unwrap_or(""), "control request answered");
        // The caller may have gone (a timeout): the request was still carried out.
        let _ = call.reply.send(reply);
    }

    async fn answer(&mut self, request: ControlRequest) -> ControlReply {
        let Some(good) = &self.revisions.good else {
            return ControlReply::new(
                ControlStatus::Unavailable,
                "no valid revision loaded yet: its Environments are not known",
            );
        };
        let known: Vec<String> = self.workers.keys().cloned().collect();
        let unknown = |env: &str| {
            ControlReply::new(
                ControlStatus::NotFound,
                format!(
                    "no Environment {env} in revision {} (known: {})",
                    good.revision.id,
                    known.join(", ")
                ),
            )
            .with("environments", known.clone())
        };
        match request {
            ControlRequest::Suspend {
                environment,
                reason,
                by,
            } => {
                if !self.workers.contains_key(&environment) {
                    return unknown(&environment);
                }
                let s = Suspension {
                    environment: environment.clone(),
                    reason,
                    by,
                    at_ms: now_ms(),
                };
                if let Err(r) = self.store_suspension(&environment, Some(&s)).await {
                    return r;
                }
                let at = s.at_ms / 1000;
                self.show_suspension(&environment, Some(s));
                ControlReply::new(
                    ControlStatus::Ok,
                    format!(
                        "Environment {environment} suspended: it is not reconciled until resumed"
                    ),
                )
                .with("environment", environment)
                .with("suspended_at", at)
            }
            ControlRequest::Resume { environment } => {
                if !self.workers.contains_key(&environment) {
                    return unknown(&environment);
                }
                if let Err(r) = self.store_suspension(&environment, None).await {
                    return r;
                }
                self.show_suspension(&environment, None);
                let leads = self.workers[&environment].is_leader();
                let mut reply = ControlReply::new(
                    ControlStatus::Ok,
                    if leads {
                        format!("Environment {environment} resumed; reconciling it now")
                    } else {
                        format!("Environment {environment} resumed; its leader reconciles it at its next lease renewal")
                    },
                )
                .with("environment", environment.clone());
                if leads {
                    self.due.insert(environment, Instant::now());
                } else if let Some((h, _)) = self.leader_elsewhere(&environment) {
                    reply = reply.with("leader", h);
                }
                reply
            }
            ControlRequest::Reconcile {
                environment: Some(environment),
            } => {
                let Some(w) = self.workers.get(&environment) else {
                    return unknown(&environment);
                };
                if w.suspension().is_some() {
                    return ControlReply::new(
                        ControlStatus::Conflict,
                        format!("Environment {environment} is suspended; resume it first"),
                    )
                    .with("environment", environment);
                }
                if !w.is_leader() {
                    return self.not_leader(&environment);
                }
                tracing::info!(environment = %environment, "control: reconciling now");
                self.due.insert(environment.clone(), Instant::now());
                ControlReply::new(
                    ControlStatus::Accepted,
                    format!("reconciling Environment {environment} now"),
                )
                .with("environments", vec![environment])
            }
            ControlRequest::Reconcile { environment: None } => {
                let mut now = Vec::new();
                let mut suspended = Vec::new();
                let mut elsewhere = serde_json::Map::new();
                for (name, w) in &self.workers {
                    if w.suspension().is_some() {
                        suspended.push(name.clone());
                    } else if w.is_leader() {
                        now.push(name.clone());
                    } else {
                        let leader = self.leader_elsewhere(name).map(|(h, _)| h);
                        elsewhere.insert(name.clone(), json!(leader));
                    }
                }
                let at = Instant::now();
                for name in &now {
                    self.due.insert(name.clone(), at);
                }
                // Nothing started: the caller should know (another replica leads, or all
                // are suspended).
                let status = if now.is_empty() {
                    ControlStatus::Conflict
                } else {
                    ControlStatus::Accepted
                };
                let mut message = if now.is_empty() {
                    "this replica leads no Environment that is not suspended".to_string()
                } else {
                    format!("reconciling now: {}", now.join(", "))
                };
                if !elsewhere.is_empty() {
                    let others: Vec<String> = elsewhere
                        .iter()
                        .map(|(n, h)| format!("{n} ({})", h.as_str().unwrap_or("leader unknown")))
                        .collect();
                    message.push_str(&format!("; led by other replicas: {}", others.join(", ")));
                }
                if !suspended.is_empty() {
                    message.push_str(&format!("; suspended: {}", suspended.join(", ")));
                }
                tracing::info!(environments = ?now, "control: reconciling now");
                ControlReply::new(status, message)
                    .with("environments", now)
                    .with("suspended", suspended)
                    .with("leaders", serde_json::Value::Object(elsewhere))
            }
        }
    }

    /// The replica to send a request for `environment` to, when this one does not lead it,
    /// and why that one: the owner the state store named at the last lease tick, else the
    /// holder the lease's own answer named, else the replica the sharding gives it to (it
    /// takes the lease at its next tick). Never this replica: right after handing a lease
    /// over, the store still names it until the new owner's first reconcile.
    fn leader_elsewhere(&self, environment: &str) -> Option<(String, &'static str)> {
        let w = self.workers.get(environment)?;
        let me = self.cfg.holder.as_str();
        if let Some(o) = w.status.owner.as_deref().filter(|o| *o != me) {
            return Some((o.to_string(), "which leads it"));
        }
        if let Some(h) = w.lease_holder().filter(|h| *h != me) {
            return Some((h.to_string(), "which holds its lease"));
        }
        match &w.assigned {
            Assigned::Other(r) => Some((r.clone(), "to which the sharding gives it")),
            _ => None,
        }
    }

    /// 409 for an Environment this replica does not lead, naming the one that does.
    fn not_leader(&self, environment: &str) -> ControlReply {
        let leader = self.leader_elsewhere(environment);
        let message = match &leader {
            Some((h, why)) => format!(
                "this replica does not lead Environment {environment}: send the request to {h}, {why}"
            ),
            None => format!(
                "this replica does not lead Environment {environment} (no replica holds its lease yet); try again shortly"
            ),
        };
        ControlReply::new(ControlStatus::Conflict, message)
            .with("environment", environment)
            .with("leader", leader.map(|(h, _)| h))
    }

    /// Write (or clear) the suspension in the store; the 503 reply when it cannot be.
    async fn store_suspension(
        &mut self,
        environment: &str,
        s: Option<&Suspension>,
    ) -> Result<(), ControlReply> {
        let unavailable = |why: String| ControlReply::new(ControlStatus::Unavailable, why);
        self.open_store().await.map_err(unavailable)?;
        let store = self.store.as_deref().expect("opened above");
        store.set_suspension(environment, s).await.map_err(|e| {
            let why =
                crate::syntax::diag::escape_control(&DisplayChain(&e).to_string()).into_owned();
            tracing::error!(environment = %environment, error = %why, "cannot record the suspension");
            unavailable(format!(
                "cannot record the suspension of {environment} in the state store: {why}"
            ))
        })
    }

    /// Show a suspension just written: the worker's status, resources and metric.
    fn show_suspension(&mut self, environment: &str, s: Option<Suspension>) {
        let (Some(good), Some(w)) = (&self.revisions.good, self.workers.get_mut(environment))
        else {
            return;
        };
        if let Some(desired) = good.environment(environment) {
            w.show_suspension(s, desired, &self.metrics);
        }
        self.show_workers();
    }
}
