//! The plan: what must change in AWS, per resource, as data (serde) with a Display for
//! people. Planning is pure and deterministic: desired state + observed state → plan.
//! Each kind computes its own field diffs and steps; this module orders and renders them.

mod planner;
mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::access::{AccessChange, AccessSummary};
pub use crate::kinds::{FieldChange, Kind, Observed, PlanError, ResourceId, Step};
pub use planner::{plan, plan_cx, plan_scoped, ref_value, scope_of, PlanInput};
pub use render::write_change_body;

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It does not exist and will be created.
    Create,
    /// It exists and differs; the fields say how.
    Update,
    /// It will be deleted.
    Delete,
    /// It left the manifests with the `retain` deletion policy: the ownership tag is
    /// removed and the resource is kept, no longer managed.
    Forget,
    /// It exists without the ownership tag and is not adopted: reported, left alone.
    Conflict,
    /// It matches.
    NoOp,
    /// Left alone: annotated `mlspace-gitops/reconcile: disabled` (not planned, written or
    /// pruned while annotated).
    Skip,
    /// It differs from the manifests (or is missing) but is annotated
    /// `mlspace-gitops/reconcile: observe`: the drift is reported in `fields`, not written.
    Drift,
}

impl Action {
    /// Symbol in text plans.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Forget => "~",
            Action::Conflict => "!",
            Action::NoOp => " ",
            Action::Skip => "=",
            Action::Drift => "?",
        }
    }
}

impl Step {
    /// The operation's name (its variant), for progress output.
    pub fn op_name(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        match &v["op"] {
            Value::String(s) => s.clone(),
            Value::Object(m) => match m.get("type").and_then(Value::as_str) {
                Some(t) => t.to_string(),
                None => m.keys().next().cloned().unwrap_or_default(),
            },
            _ => String::new(),
        }
    }
}

/// How a resource that left the manifests goes (chosen by the caller from the inventory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalKind {
    /// Delete it.
    Delete,
    /// Delete it with its contents (a bucket's `forceDestroy`).
    ForceDelete,
    /// Keep it; remove the ownership tag (the `retain` deletion policy).
    Release,
}

/// A resource to remove from management.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The resource.
    pub id: ResourceId,
    /// How.
    pub how: RemovalKind,
}

/// The change to one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Kind of the resource.
    pub kind: Kind,
    /// AWS name of the resource.
    pub name: String,
    /// What happens.
    pub action: Action,
    /// Fields that differ (for updates; the notable fields for creates and deletes).
    pub fields: Vec<FieldChange>,
    /// Why, for conflicts and other notes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The access the change adds and removes, per document, attachment or boundary.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<AccessChange>,
    /// Steps the executor runs in order.
    #[serde(skip)]
    pub steps: Vec<Step>,
    /// Resources whose changes must finish first.
    #[serde(skip)]
    pub depends_on: Vec<ResourceId>,
}

/// How one change of a plan ended, as plain data (the executor's report, reduced to what
/// the inventory and the history keep).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The resource.
    pub id: ResourceId,
    /// What was attempted.
    pub action: Action,
    /// Why it failed; `None` on success.
    pub error: Option<String>,
}

/// Counts per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Resources to create.
    pub create: usize,
    /// Resources to update.
    pub update: usize,
    /// Resources to delete.
    pub delete: usize,
    /// Resources to hand back (retained: ownership tag removed, kept in AWS).
    pub forget: usize,
    /// Resources left alone because they are not ours.
    pub conflict: usize,
    /// Resources already as desired.
    pub no_op: usize,
    /// Resources the plan refuses to change.
    pub errors: usize,
    /// Resources left alone by `mlspace-gitops/reconcile: disabled` (present when not 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub skip: usize,
    /// Resources that drifted but are only observed (`mlspace-gitops/reconcile: observe`;
    /// present when not 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub drift: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Every resource, in apply order (no-ops included; text output hides them).
    pub changes: Vec<Change>,
    /// Refused changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<PlanError>,
    /// Counts.
    pub summary: Summary,
    /// Whether the plan widens access; `None` when no change touches a resource that holds
    /// policies or names managed policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessSummary>,
}

impl Plan {
    /// Build a plan and its summary.
    pub fn new(changes: Vec<Change>, errors: Vec<PlanError>) -> Plan {
        let mut s = Summary {
            errors: errors.len(),
            ..Summary::default()
        };
        for c in &changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
                Action::Forget => s.forget += 1,
                Action::Conflict => s.conflict += 1,
                Action::NoOp => s.no_op += 1,
                Action::Skip => s.skip += 1,
                Action::Drift => s.drift += 1,
            }
        }
        Plan {
            changes,
            errors,
            summary: s,
            access: None,
        }
    }

    /// Whether the plan widens access (an Allow added, a Deny removed, a boundary lifted,
    /// a document of unknown content attached).
    pub fn widens_access(&self) -> bool {
        self.access.as_ref().is_some_and(|a| a.widens)
    }

    /// Whether applying would change anything in AWS.
    pub fn has_changes(&self) -> bool {
        self.summary.create + self.summary.update + self.summary.delete + self.summary.forget > 0
    }

    /// The changes that do something.
    pub fn actionable(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| {
            matches!(
                c.action,
                Action::Create | Action::Update | Action::Delete | Action::Forget
            )
        })
    }

    /// The JSON contract: `{"changes": [...], "summary": {...}}` (no-ops left out).
    pub fn to_json(&self) -> Value {
        let changes: Vec<&Change> = self
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .collect();
        let mut v = serde_json::json!({ "changes": changes, "summary": self.summary });
        if let Some(a) = &self.access {
            v["access"] = serde_json::to_value(a).expect("plain data");
        }
        if !self.errors.is_empty() {
            v["errors"] = serde_json::to_value(&self.errors).expect("plain data");
        }
        v
    }

    /// Changes by kind and action, for metrics and status.
    pub fn counts(&self) -> BTreeMap<(Kind, Action), usize> {
        let mut m = BTreeMap::new();
        for c in &self.changes {
            *m.entry((c.kind, c.action)).or_default() += 1;
        }
        m
    }
}
