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
                } else if let Some(h) = self.workers[&environment].lease_holder() {
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
                        elsewhere.insert(name.clone(), json!(w.lease_holder()));
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

    /// 409 for an Environment this replica does not lead, naming the one that does.
    fn not_leader(&self, environment: &str) -> ControlReply {
        let holder = self.workers[environment].lease_holder();
        let message = match holder {
            Some(h) => format!(
                "this replica does not lead Environment {environment}: send the request to {h}, which holds its lease"
            ),
            None => format!(
                "this replica does not lead Environment {environment} (it has not taken the lease yet); try again shortly"
            ),
        };
        ControlReply::new(ControlStatus::Conflict, message)
            .with("environment", environment)
            .with("leader", holder)
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
