//! Inventory and prune: which managed resources left the manifests and how they go, and what
//! the inventory holds after an apply. Pure: the state store is read and written by callers.

use std::collections::{BTreeMap, BTreeSet};

use crate::apply::ApplyReport;
use crate::kinds::common::DELETION_POLICY_ANNOTATION;
use crate::kinds::{Kind, ResourceSpec};
use crate::manifest::{DesiredState, Resource};
use crate::plan::{Action, Plan, Removal, RemovalKind, ResourceId};
use crate::state::{spec_digest, HistoryChange, HistoryRecord, InventoryEntry};

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
    out.removals
        .extend(gone.iter().filter(|e| e.retain).map(|e| Removal {
            id: e.id(),
            how: RemovalKind::Release,
        }));
    let deletes: Vec<&&InventoryEntry> = gone.iter().filter(|e| !e.retain).collect();
    // An empty manifest set (an Environment alone) is a mistake far more often than a wish.
    if !opts.enabled || deletes.is_empty() || desired.resources.is_empty() {
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
    let (p, a, region) = (&env.partition, &env.account, &env.region);
    Some(match &r.spec {
        ResourceSpec::ManagedPolicy(s) => s.arn(p, a, &r.name),
        ResourceSpec::Role(s) => format!("arn:{p}:iam::{a}:role{}{}", s.path, r.name),
        ResourceSpec::ServiceLinkedRole(s) => format!(
            "arn:{p}:iam::{a}:role/aws-service-role/{}/{}",
            s.aws_service_name, r.name
        ),
        ResourceSpec::Bucket(_) => format!("arn:{p}:s3:::{}", r.name),
        ResourceSpec::Table(_) => format!("arn:{p}:dynamodb:{region}:{a}:table/{}", r.name),
        ResourceSpec::EcrAccess(_) => return None,
    })
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
        force_destroy: matches!(&r.spec, ResourceSpec::Bucket(b) if b.force_destroy),
        creating: false,
    }
}

/// Entries to record before applying `plan`, marked `creating`: the buckets it creates. S3
/// creates a bucket and tags it in two requests; a crash between them leaves a bucket without
/// the ownership tag, which only this entry then shows to be ours. (The other kinds are
/// created with their tags in one request.)
pub fn before_apply(
    desired: &DesiredState,
    plan: &Plan,
    revision: &str,
    inventory: &[InventoryEntry],
    now_ms: u64,
) -> Vec<InventoryEntry> {
    let creates: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| c.kind == Kind::Bucket && c.action == Action::Create)
        .map(|c| c.name.as_str())
        .collect();
    desired
        .resources
        .iter()
        .filter(|r| r.kind == Kind::Bucket && creates.contains(r.name.as_str()))
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
    report: Option<&ApplyReport>,
    removals: &[Removal],
    revision: &str,
    inventory: &[InventoryEntry],
    skipped_kinds: &BTreeSet<Kind>,
    now_ms: u64,
) -> (Vec<InventoryEntry>, Vec<ResourceId>) {
    let failed: BTreeSet<ResourceId> = report
        .map(|r| r.failures().map(|f| (f.kind, f.name.clone())).collect())
        .unwrap_or_default();
    let actions: BTreeMap<ResourceId, Action> = plan
        .changes
        .iter()
        .map(|c| ((c.kind, c.name.clone()), c.action))
        .collect();
    // A create or update is ours once its own change succeeded, not merely because an
    // apply ran: the daemon holds back changes still waiting out their backoff, and a bucket
    // whose tagging never happened must keep its `creating` mark.
    let succeeded: BTreeSet<ResourceId> = report
        .map(|r| {
            r.results
                .iter()
                .filter(|c| c.error.is_none())
                .map(|c| (c.kind, c.name.clone()))
                .collect()
        })
        .unwrap_or_default();
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
    report: &ApplyReport,
    now_ms: u64,
) -> Option<HistoryRecord> {
    if report.results.is_empty() {
        return None;
    }
    let changes: Vec<HistoryChange> = report
        .results
        .iter()
        .map(|r| HistoryChange {
            kind: r.kind,
            name: r.name.clone(),
            action: r.action,
            result: if r.error.is_none() {
                crate::state::ChangeResult::Success
            } else {
                crate::state::ChangeResult::Failure
            },
            error: r.error.as_ref().map(|e| e.to_string()),
        })
        .collect();
    let ok = report.success();
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
    use std::time::Duration;

    use super::*;
    use crate::apply::ChangeResult;
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
        let report = ApplyReport {
            results: vec![ChangeResult {
                kind: Kind::Bucket,
                name: "b-data".into(),
                action: Action::Create,
                error: None,
                steps_done: 1,
                elapsed: Duration::ZERO,
            }],
        };
        let (upserts, removed) = after_apply(
            &desired,
            &plan,
            Some(&report),
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
}
