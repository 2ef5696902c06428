//! One pass of the pipeline against AWS: observe → plan (→ apply, by the caller).

pub mod inventory;

use std::collections::BTreeSet;

use crate::aws::AwsContext;
use crate::kinds::engine::PlanCx;
use crate::manifest::DesiredState;
use crate::observe::{observe, Observation};
use crate::plan::{plan, Plan, PlanInput, Removal, ResourceId};
use crate::state::InventoryEntry;

/// A plan with what it was computed from.
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// The observation (with the kinds that could not be read).
    pub observation: Observation,
    /// The planning context, also needed to apply.
    pub cx: PlanCx,
}

/// Observe AWS and plan the changes that make it match `desired`, with `removals` for the
/// resources that left the manifests.
pub async fn plan_once(aws: &AwsContext, desired: &DesiredState, removals: &[Removal]) -> Planned {
    plan_with_inventory(aws, desired, removals, &[]).await
}

/// [`plan_once`], with what the inventory says an apply began creating taken as ours even
/// without the ownership tag.
pub async fn plan_with_inventory(
    aws: &AwsContext,
    desired: &DesiredState,
    removals: &[Removal],
    inventory: &[InventoryEntry],
) -> Planned {
    let creating: BTreeSet<ResourceId> = inventory
        .iter()
        .filter(|e| e.creating)
        .map(InventoryEntry::id)
        .collect();
    let cx = crate::plan::plan_cx(desired);
    let extra: Vec<ResourceId> = removals.iter().map(|r| r.id.clone()).collect();
    let observation = observe(aws, desired, &extra, &cx).await;
    let skip: BTreeSet<_> = observation.failed_kinds();
    let plan = plan(&PlanInput {
        desired,
        observed: &observation.observed,
        removals,
        skip_kinds: &skip,
        creating: &creating,
    });
    Planned {
        plan,
        observation,
        cx,
    }
}
