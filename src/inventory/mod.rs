//! The inventory of managed resources and prune: what the inventory and the history hold,
//! which managed resources left the manifests and how they go, and what the inventory holds
//! after an apply. Pure: the state store (`crate::state`) reads and writes them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::kinds::common::DELETION_POLICY_ANNOTATION;
use crate::kinds::Kind;
use crate::manifest::{DesiredState, Resource};
use crate::plan::{Action, Outcome, Plan, Removal, RemovalKind, ResourceId};

/// One resource the daemon manages in an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryEntry {
    /// Kind of the resource.
    pub kind: Kind,
    /// AWS name of the resource.
    pub name: String,
    /// ARN, when the kind has one and it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Environment (the Environment manifest's name) the resource belongs to.
    pub environment: String,
    /// Source revision that last applied it.
    pub revision: String,
    /// [`spec_digest`] of the desired spec that revision applied.
    pub spec_digest: String,
    /// When it was last applied, milliseconds since the Unix epoch.
    pub updated_at: u64,
    /// Its manifest said `mlspace-gitops/deletion-policy: retain`: once it leaves the
    /// manifests it is forgotten (ownership tag removed), never deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain: bool,
    /// A bucket whose manifest allowed `forceDestroy`: prune may delete it with its objects.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_destroy: bool,
    /// Recorded just before an apply created it, and not yet confirmed by the apply's end:
    /// found without the ownership tag (a crash can come between a bucket's creation and its
    /// tagging), it is still ours.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub creating: bool,
}

impl InventoryEntry {
    /// The resource's identity.
    pub fn id(&self) -> ResourceId {
        (self.kind, self.name.clone())
    }
}

/// How one change of a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeResult {
    /// Every step ran.
    Success,
    /// A step failed; see the change's `error`.
    Failure,
}

/// One change a reconcile made (or tried to make).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryChange {
    /// Kind of the resource.
    pub kind: Kind,
    /// AWS name of the resource.
    pub name: String,
    /// What was done.
    pub action: Action,
    /// How it ended.
    pub result: ChangeResult,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One reconcile that changed something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// Environment reconciled.
    pub environment: String,
    /// When it finished, milliseconds since the Unix epoch.
    pub at: u64,
    /// Source revision applied.
    pub revision: String,
    /// Commit author, when the source is git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Commit message (first line or whole), when the source is git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The changes, in the order they were applied.
    pub changes: Vec<HistoryChange>,
    /// Overall result, e.g. `success`, `partial` or `failure`.
    pub result: String,
}

/// `sha256:<hex>` of a spec's JSON with object keys sorted, so the digest changes only when
/// the spec does, not when a manifest reorders its keys.
pub fn spec_digest<T: Serialize + ?Sized>(spec: &T) -> String {
    let value = serde_json::to_value(spec).unwrap_or(serde_json::Value::Null);
    let bytes = serde_json::to_vec(&sorted(value)).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `v` with every object's keys in sorted order (serde_json keeps insertion order here).
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// A revision may delete at most this share of the managed resources without
/// `--allow-mass-prune`...
pub const MASS_PRUNE_SHARE: f64 = 0.25;
/// ...and at most this many.
pub const MASS_PRUNE_COUNT: usize = 10;

/// Prune settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneOptions {
    /// `--prune` (or the Environment's `spec.prune`).
    pub enabled: bool,
    /// `--allow-mass-prune`.
    pub allow_mass: bool,
}

/// Why nothing was pruned this time.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PruneRefused {
    /// The revision would delete too much at once.
    #[error("refusing to delete {count} of {managed} managed resources at once (more than {share}% or more than {MASS_PRUNE_COUNT}); check the revision, or pass --allow-mass-prune", share = (MASS_PRUNE_SHARE * 100.0) as u32)]
    MassDeletion {
        /// Resources the revision would delete.
        count: usize,
        /// Resources in the inventory.
        managed: usize,
    },
    /// The inventory could not be read, so nothing is known to be ours to delete.
    #[error("the inventory is unreadable ({0}); nothing is pruned until it is fixed")]
    Inventory(String),
    /// The revision holds no resource at all: far more often a mistake (a wrong path, a
    /// bad merge) than a wish to delete everything; nothing is deleted or released.
    #[error("refusing to prune: the revision holds no resources, and an empty revision never prunes or releases anything; kept {} managed resource(s): {}", kept.len(), kept.join(", "))]
    EmptyRevision {
        /// The managed resources kept, as `Kind name`.
        kept: Vec<String>,
    },
}

impl PruneRefused {
    /// Every `reason` a refusal can have, as metric labels.
    pub const REASONS: [&'static str; 3] = ["mass_deletion", "inventory", "empty_revision"];

    /// This refusal's `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            PruneRefused::MassDeletion { .. } => Self::REASONS[0],
            PruneRefused::Inventory(_) => Self::REASONS[1],
            PruneRefused::EmptyRevision { .. } => Self::REASONS[2],
        }
    }
}

/// What leaves management this time.
#[derive(Debug, Clone, Default)]
pub struct Removals {
    /// Deletions and releases to plan.
    pub removals: Vec<Removal>,
    /// Set when prune was wanted but refused.
    pub refused: Option<PruneRefused>,
}

/// Choose the removals: inventory entries no longer in the manifests. Retained ones are
/// released (always); the others are deleted only with prune on, never when the manifests
/// are empty, and not at all when they are too many.
pub fn removals(
    desired: &DesiredState,
    inventory: Result<&[InventoryEntry], String>,
    opts: PruneOptions,
) -> Removals {
    let inventory = match inventory {
        Ok(i) => i,
        Err(e) => {
            return Removals {
                removals: vec![],
                refused: opts.enabled.then_some(PruneRefused::Inventory(e)),
            }
        }
    };
    let wanted: BTreeSet<ResourceId> = desired
        .resources
        .iter()
        .map(|r| (r.kind, r.name.clone()))
        .collect();
    let gone: Vec<&InventoryEntry> = inventory
        .iter()
        .filter(|e| e.environment == desired.environment.name && !wanted.contains(&e.id()))
        .collect();
    let mut out = Removals::default();
    // An empty manifest set (an Environment alone) is a mistake far more often than a wish
    // (a wrong path, a bad merge): it neither deletes nor releases anything.
    let leaving: Vec<&&InventoryEntry> = gone.iter().filter(|e| e.retain || opts.enabled).collect();
    if desired.resources.is_empty() && !leaving.is_empty() {
        out.refused = Some(PruneRefused::EmptyRevision {
            kept: leaving
                .iter()
                .map(|e| format!("{} {}", e.kind, e.name))
                .collect(),
        });
        return out;
    }
    out.removals
        .extend(gone.iter().filter(|e| e.retain).map(|e| Removal {
            id: e.id(),
            how: RemovalKind::Release,
        }));
    // The Environment's ignore rules (by name here; the planner also matches tags) keep a
    // resource out of prune, so it does not count towards the mass-deletion guard either.
    let ignore = &desired.environment.ignore;
    let deletes: Vec<&&InventoryEntry> = gone
        .iter()
        .filter(|e| !e.retain && !ignore.iter().any(|r| r.matches(&e.name, None)))
        .collect();
    if !opts.enabled || deletes.is_empty() {
        return out;
    }
    let managed = inventory.len();
    let too_many = deletes.len() > MASS_PRUNE_COUNT
        || deletes.len() as f64 > MASS_PRUNE_SHARE * managed as f64;
    if too_many && !opts.allow_mass {
        out.refused = Some(PruneRefused::MassDeletion {
            count: deletes.len(),
            managed,
        });
        return out;
    }
    out.removals.extend(deletes.iter().map(|e| Removal {
        id: e.id(),
        how: if e.force_destroy {
            RemovalKind::ForceDelete
        } else {
            RemovalKind::Delete
        },
    }));
    out
}

/// The ARN a resource has (for the inventory), when its kind has one.
pub fn arn_of(desired: &DesiredState, r: &Resource) -> Option<String> {
    let env = &desired.environment;
    r.spec.arn(
        &r.name,
        crate::kinds::Place {
            partition: &env.partition,
            account: &env.account,
            region: &env.region,
        },
    )
}

/// The inventory entry of a desired resource applied at `revision`.
fn entry(desired: &DesiredState, r: &Resource, revision: &str, now_ms: u64) -> InventoryEntry {
    InventoryEntry {
        kind: r.kind,
        name: r.name.clone(),
        arn: arn_of(desired, r),
        environment: desired.environment.name.clone(),
        revision: revision.to_string(),
        spec_digest: spec_digest(&r.spec),
        updated_at: now_ms,
        retain: r
            .annotations
            .get(DELETION_POLICY_ANNOTATION)
            .map(String::as_str)
            == Some("retain"),
        force_destroy: r.spec.force_destroy(),
        creating: false,
    }
}

/// Entries to record before applying `plan`, marked `creating`: the creates of kinds whose
/// ownership tag comes in a second request ([`crate::kinds::KindPlan::RECORD_BEFORE_CREATE`]:
/// S3 creates a bucket and tags it in two requests). A crash between them leaves the
/// resource without the ownership tag, which only this entry then shows to be ours.
pub fn before_apply(
    desired: &DesiredState,
    plan: &Plan,
    revision: &str,
    inventory: &[InventoryEntry],
    now_ms: u64,
) -> Vec<InventoryEntry> {
    let creates: BTreeSet<(Kind, &str)> = plan
        .changes
        .iter()
        .filter(|c| c.kind.info().record_before_create && c.action == Action::Create)
        .map(|c| (c.kind, c.name.as_str()))
        .collect();
    desired
        .resources
        .iter()
        .filter(|r| creates.contains(&(r.kind, r.name.as_str())))
        .filter(|r| {
            !inventory
                .iter()
                .any(|e| e.creating && e.kind == r.kind && e.name == r.name)
        })
        .map(|r| InventoryEntry {
            creating: true,
            ..entry(desired, r, revision, now_ms)
        })
        .collect()
}

/// The inventory after a plan was (partly) applied: upserts for the desired resources that
/// are now ours and in sync, removals for what was deleted or released (or was already gone).
#[allow(clippy::too_many_arguments)]
pub fn after_apply(
    desired: &DesiredState,
    plan: &Plan,
    outcomes: Option<&[Outcome]>,
    removals: &[Removal],
    revision: &str,
    inventory: &[InventoryEntry],
    skipped_kinds: &BTreeSet<Kind>,
    now_ms: u64,
) -> (Vec<InventoryEntry>, Vec<ResourceId>) {
    let outcomes = outcomes.unwrap_or_default();
    let failed: BTreeSet<ResourceId> = outcomes
        .iter()
        .filter(|o| o.error.is_some())
        .map(|o| o.id.clone())
        .collect();
    let actions: BTreeMap<ResourceId, Action> = plan
        .changes
        .iter()
        .map(|c| ((c.kind, c.name.clone()), c.action))
        .collect();
    // A create or update is ours once its own change succeeded, not merely because an
    // apply ran: the daemon holds back changes still waiting out their backoff, and a bucket
    // whose tagging never happened must keep its `creating` mark.
    let succeeded: BTreeSet<ResourceId> = outcomes
        .iter()
        .filter(|o| o.error.is_none())
        .map(|o| o.id.clone())
        .collect();
    let known: BTreeMap<ResourceId, &InventoryEntry> =
        inventory.iter().map(|e| (e.id(), e)).collect();
    let mut upserts = Vec::new();
    for r in &desired.resources {
        let id = (r.kind, r.name.clone());
        if skipped_kinds.contains(&r.kind) || failed.contains(&id) {
            continue;
        }
        let ours = match actions.get(&id) {
            Some(Action::NoOp) => true,
            Some(Action::Create | Action::Update) => succeeded.contains(&id),
            _ => false, // conflicts, refused changes, not planned
        };
        if !ours {
            continue;
        }
        let entry = entry(desired, r, revision, now_ms);
        // Unchanged entries are not rewritten: a resync must not cost a write per resource.
        // A create is always written: it clears the `creating` mark `before_apply` may have
        // set after `inventory` was read.
        if let Some(old) = known.get(&id) {
            if old.spec_digest == entry.spec_digest
                && old.retain == entry.retain
                && old.force_destroy == entry.force_destroy
                && !old.creating
                && actions.get(&id) != Some(&Action::Create)
            {
                continue;
            }
        }
        upserts.push(entry);
    }
    // Entries that were not planned for removal (prune off, refused) stay in the inventory.
    let mut removed = Vec::new();
    for rm in removals {
        let id = rm.id.clone();
        if skipped_kinds.contains(&id.0) || failed.contains(&id) {
            continue;
        }
        match actions.get(&id) {
            Some(Action::Delete | Action::Forget) if succeeded.contains(&id) => removed.push(id),
            // Not found in AWS, or no longer ours: nothing left to manage.
            None => removed.push(id),
            _ => {}
        }
    }
    (upserts, removed)
}

/// A history record for a reconcile that changed something.
pub fn history(
    environment: &str,
    revision: &str,
    author: Option<String>,
    message: Option<String>,
    outcomes: &[Outcome],
    now_ms: u64,
) -> Option<HistoryRecord> {
    if outcomes.is_empty() {
        return None;
    }
    let changes: Vec<HistoryChange> = outcomes
        .iter()
        .map(|o| HistoryChange {
            kind: o.id.0,
            name: o.id.1.clone(),
            action: o.action,
            result: if o.error.is_none() {
                ChangeResult::Success
            } else {
                ChangeResult::Failure
            },
            error: o.error.clone(),
        })
        .collect();
    let ok = outcomes.iter().all(|o| o.error.is_none());
    Some(HistoryRecord {
        environment: environment.to_string(),
        at: now_ms,
        revision: revision.to_string(),
        author,
        message,
        changes,
        result: if ok {
            "success".into()
        } else {
            "failure".into()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Change;

    fn two_buckets() -> DesiredState {
        crate::manifest::compile_text("apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: t}\nspec: {region: us-east-1, account: \"123456789012\"}\n---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {name: b-logs}\nspec: {}\n---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {name: b-data}\nspec: {}\n").desired
    }

    fn change(name: &str, action: Action) -> Change {
        Change {
            kind: Kind::Bucket,
            name: name.into(),
            action,
            fields: vec![],
            reason: None,
            access: vec![],
            steps: vec![],
            depends_on: vec![],
        }
    }

    /// Regression (review of the crash fix): a bucket whose tagging failed waits out its
    /// backoff while another resource is applied; that apply must neither clear the bucket's
    /// `creating` mark nor record it as an ordinary entry, or it becomes a conflict for good.
    #[test]
    fn only_changes_that_succeeded_are_recorded() {
        let desired = two_buckets();
        // b-logs: created before, untagged, marked; its adopting update is held back.
        let marked = InventoryEntry {
            creating: true,
            ..entry(&desired, &desired.resources[0], "r1", 1)
        };
        let plan = Plan::new(
            vec![
                change("b-logs", Action::Update),
                change("b-data", Action::Create),
            ],
            vec![],
        );
        let outcomes = [Outcome {
            id: (Kind::Bucket, "b-data".into()),
            action: Action::Create,
            error: None,
        }];
        let (upserts, removed) = after_apply(
            &desired,
            &plan,
            Some(&outcomes),
            &[],
            "r2",
            std::slice::from_ref(&marked),
            &BTreeSet::new(),
            2,
        );
        let names: Vec<&str> = upserts.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["b-data"], "only the change that ran and succeeded");
        assert!(!upserts[0].creating);
        assert!(removed.is_empty());
    }

    #[test]
    fn digest_ignores_key_order() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"a":1,"b":{"x":[1,2],"y":"z"}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"b":{"y":"z","x":[1,2]},"a":1}"#).unwrap();
        let c: serde_json::Value =
            serde_json::from_str(r#"{"b":{"y":"z","x":[2,1]},"a":1}"#).unwrap();
        assert_eq!(spec_digest(&a), spec_digest(&b));
        assert_ne!(spec_digest(&a), spec_digest(&c));
        assert!(spec_digest(&a).starts_with("sha256:"));
    }

    #[test]
    fn history_change_round_trips_every_action() {
        for action in [
            Action::Create,
            Action::Update,
            Action::Delete,
            Action::Conflict,
            Action::NoOp,
        ] {
            let c = HistoryChange {
                kind: Kind::Role,
                name: "r".into(),
                action,
                result: ChangeResult::Failure,
                error: Some("AccessDenied".into()),
            };
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<HistoryChange>(&json).unwrap(), c);
        }
        let bad = r#"{"kind":"Role","name":"r","action":"explode","result":"success"}"#;
        let err = serde_json::from_str::<HistoryChange>(bad).unwrap_err();
        assert!(err.to_string().contains("explode"), "{err}");
    }
}
