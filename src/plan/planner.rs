//! The planner: desired + observed → plan. Pure and deterministic.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Change, Plan, PlanError, Removal, RemovalKind, ResourceId};
use crate::kinds::bucket::Bucket;
use crate::kinds::engine::{KindPlan, PlanCx};
use crate::kinds::managed_policy::ManagedPolicy;
use crate::kinds::role::Role;
use crate::kinds::service_linked_role::ServiceLinkedRole;
use crate::kinds::table::Table;
use crate::kinds::ResourceSpec;
use crate::manifest::DesiredState;

/// What AWS holds, per kind and name (absent resources are not in the maps).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Managed policies.
    pub managed_policies: BTreeMap<String, <ManagedPolicy as KindPlan>::Observed>,
    /// Roles.
    pub roles: BTreeMap<String, <Role as KindPlan>::Observed>,
    /// Service-linked roles.
    pub service_linked_roles: BTreeMap<String, <ServiceLinkedRole as KindPlan>::Observed>,
    /// Buckets.
    pub buckets: BTreeMap<String, <Bucket as KindPlan>::Observed>,
    /// Tables.
    pub tables: BTreeMap<String, <Table as KindPlan>::Observed>,
}

/// Everything the planner reads.
pub struct PlanInput<'a> {
    /// The manifests' desired state.
    pub desired: &'a DesiredState,
    /// What AWS has.
    pub observed: &'a Observed,
    /// Resources that left the manifests and how they go (chosen by the caller from the
    /// inventory: prune, retain, forceDestroy).
    pub removals: &'a [Removal],
    /// Kinds that could not be observed: their resources are left out of the plan.
    pub skip_kinds: &'a BTreeSet<crate::kinds::Kind>,
}

/// The planning context derived from the desired state.
pub fn plan_cx(desired: &DesiredState) -> PlanCx {
    let env = &desired.environment;
    let mut cx = PlanCx {
        ignore: env.ignore.clone(),
        partition: env.partition.clone(),
        account: env.account.clone(),
        region: env.region.clone(),
        ..PlanCx::default()
    };
    for r in &desired.resources {
        match &r.spec {
            ResourceSpec::ManagedPolicy(p) => {
                cx.policy_arns
                    .insert(p.arn(&env.partition, &env.account, &r.name), r.name.clone());
            }
            ResourceSpec::Bucket(_) => {
                cx.buckets.insert(r.name.clone());
            }
            _ => {}
        }
    }
    cx
}

/// Compute the plan.
pub fn plan(input: &PlanInput) -> Plan {
    let cx = plan_cx(input.desired);
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    plan_kind::<ManagedPolicy>(input, &cx, &mut changes, &mut errors);
    plan_kind::<Role>(input, &cx, &mut changes, &mut errors);
    plan_kind::<ServiceLinkedRole>(input, &cx, &mut changes, &mut errors);
    plan_kind::<Bucket>(input, &cx, &mut changes, &mut errors);
    plan_kind::<Table>(input, &cx, &mut changes, &mut errors);
    Plan::new(order(changes), errors)
}

fn plan_kind<K: KindPlan>(
    input: &PlanInput,
    cx: &PlanCx,
    changes: &mut Vec<Change>,
    errors: &mut Vec<PlanError>,
) {
    if input.skip_kinds.contains(&K::KIND) {
        return;
    }
    let observed = K::observed(input.observed);
    for r in input.desired.resources.iter().filter(|r| r.kind == K::KIND) {
        let Some(spec) = K::spec(&r.spec) else {
            continue;
        };
        let depends_on = K::depends_on(&r.name, spec, cx);
        let adopt = r
            .annotations
            .get(crate::kinds::common::ADOPT_ANNOTATION)
            .map(String::as_str)
            == Some("true");
        let mut change = Change {
            kind: K::KIND,
            name: r.name.clone(),
            action: Action::NoOp,
            fields: vec![],
            reason: None,
            steps: vec![],
            depends_on,
        };
        match observed.get(&r.name) {
            None => {
                let (fields, ops) = K::create(&r.name, spec, cx);
                change.action = Action::Create;
                change.fields = fields;
                change.steps = ops.into_iter().map(K::step).collect();
            }
            Some(o) if !K::is_owned(o) && !adopt => {
                change.action = Action::Conflict;
                change.reason = Some(format!(
                    "exists without the ownership tag {}={}; left unchanged (set metadata.annotations {}: \"true\" to take it over)",
                    crate::kinds::common::OWNERSHIP_TAG,
                    crate::kinds::common::OWNERSHIP_VALUE,
                    crate::kinds::common::ADOPT_ANNOTATION
                ));
            }
            Some(o) => match K::update(&r.name, spec, o, cx) {
                Ok((fields, ops)) if fields.is_empty() && ops.is_empty() => {}
                Ok((fields, ops)) => {
                    change.action = Action::Update;
                    change.fields = fields;
                    change.steps = ops.into_iter().map(K::step).collect();
                }
                Err(mut e) => {
                    errors.append(&mut e);
                    continue;
                }
            },
        }
        changes.push(change);
    }
    for rm in input.removals.iter().filter(|r| r.id.0 == K::KIND) {
        let name = &rm.id.1;
        if input
            .desired
            .resources
            .iter()
            .any(|r| r.kind == K::KIND && &r.name == name)
        {
            continue;
        }
        if cx.ignored(name, None) {
            continue;
        }
        // Only what is still ours goes: a resource someone else took over is left alone.
        let Some(o) = observed.get(name).filter(|o| K::is_owned(o)) else {
            continue;
        };
        let (action, ops) = match rm.how {
            RemovalKind::Delete => (Action::Delete, K::delete(name, o)),
            RemovalKind::ForceDelete => (Action::Delete, K::force_delete(name, o)),
            RemovalKind::Release => (Action::Forget, K::release(name, o)),
        };
        changes.push(Change {
            kind: K::KIND,
            name: name.clone(),
            action,
            fields: vec![],
            reason: None,
            steps: ops.into_iter().map(K::step).collect(),
            depends_on: vec![],
        });
    }
}

/// Sort changes into a deterministic apply order: creates and updates by dependency (then
/// kind, then name), deletes after them in reverse kind order.
fn order(mut changes: Vec<Change>) -> Vec<Change> {
    changes.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    let (deletes, rest): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .partition(|c| matches!(c.action, Action::Delete | Action::Forget));
    let mut out: Vec<Change> = Vec::with_capacity(rest.len() + deletes.len());
    let mut placed: BTreeSet<ResourceId> = BTreeSet::new();
    let ids: BTreeSet<ResourceId> = rest.iter().map(|c| (c.kind, c.name.clone())).collect();
    let mut pending = rest;
    // Kahn's algorithm, one pass per dependency level; a cycle falls back to name order.
    while !pending.is_empty() {
        let (ready, waiting): (Vec<Change>, Vec<Change>) = pending.into_iter().partition(|c| {
            c.depends_on
                .iter()
                .all(|d| placed.contains(d) || !ids.contains(d))
        });
        if ready.is_empty() {
            out.extend(waiting);
            break;
        }
        placed.extend(ready.iter().map(|c| (c.kind, c.name.clone())));
        out.extend(ready);
        pending = waiting;
    }
    let mut deletes = deletes;
    deletes.sort_by(|a, b| {
        (std::cmp::Reverse(a.kind), &a.name).cmp(&(std::cmp::Reverse(b.kind), &b.name))
    });
    out.extend(deletes);
    out
}
