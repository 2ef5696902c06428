//! ManagedPolicy: the pure diff between the manifest and what AWS has. (Placeholder being written.)

use std::collections::BTreeMap;

use serde::Serialize;

use super::ManagedPolicySpec;
use crate::kinds::common::Tags;
use crate::kinds::engine::{Diff, KindPlan, PlanCx};
use crate::kinds::{Kind, ResourceSpec};
use crate::plan::{Observed, PlanError, ResourceId, Step};

/// The ManagedPolicy kind.
pub struct ManagedPolicy;

/// What AWS has for one ManagedPolicy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagedPolicyObserved {
    /// Tags.
    pub tags: Tags,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    /// Placeholder.
    Noop,
}

impl KindPlan for ManagedPolicy {
    const KIND: Kind = Kind::ManagedPolicy;
    type Spec = ManagedPolicySpec;
    type Observed = ManagedPolicyObserved;
    type Op = Op;

    fn spec(s: &ResourceSpec) -> Option<&ManagedPolicySpec> {
        match s {
            ResourceSpec::ManagedPolicy(x) => Some(x),
            _ => None,
        }
    }
    fn observed(o: &Observed) -> &BTreeMap<String, ManagedPolicyObserved> {
        &o.managed_policies
    }
    fn step(op: Op) -> Step {
        Step::ManagedPolicy(op)
    }
    fn depends_on(_: &str, _: &ManagedPolicySpec, _: &PlanCx) -> Vec<ResourceId> {
        vec![]
    }
    fn is_owned(o: &ManagedPolicyObserved) -> bool {
        crate::kinds::engine::has_ownership_tag(&o.tags)
    }
    fn create(_: &str, _: &ManagedPolicySpec, _: &PlanCx) -> Diff<Op> {
        (vec![], vec![])
    }
    fn update(_: &str, _: &ManagedPolicySpec, _: &ManagedPolicyObserved, _: &PlanCx) -> Result<Diff<Op>, Vec<PlanError>> {
        Ok((vec![], vec![]))
    }
    fn delete(_: &str, _: &ManagedPolicyObserved) -> Vec<Op> {
        vec![]
    }
}
