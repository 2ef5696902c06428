//! Role: the pure diff between the manifest and what AWS has. (Placeholder being written.)

use std::collections::BTreeMap;

use serde::Serialize;

use super::RoleSpec;
use crate::kinds::common::Tags;
use crate::kinds::engine::{Diff, KindPlan, PlanCx};
use crate::kinds::{Kind, ResourceSpec};
use crate::plan::{Observed, PlanError, ResourceId, Step};

/// The Role kind.
pub struct Role;

/// What AWS has for one Role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleObserved {
    /// Tags.
    pub tags: Tags,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    /// Placeholder.
    Noop,
}

impl KindPlan for Role {
    const KIND: Kind = Kind::Role;
    type Spec = RoleSpec;
    type Observed = RoleObserved;
    type Op = Op;

    fn spec(s: &ResourceSpec) -> Option<&RoleSpec> {
        match s {
            ResourceSpec::Role(x) => Some(x),
            _ => None,
        }
    }
    fn observed(o: &Observed) -> &BTreeMap<String, RoleObserved> {
        &o.roles
    }
    fn step(op: Op) -> Step {
        Step::Role(op)
    }
    fn depends_on(_: &str, _: &RoleSpec, _: &PlanCx) -> Vec<ResourceId> {
        vec![]
    }
    fn is_owned(o: &RoleObserved) -> bool {
        crate::kinds::engine::has_ownership_tag(&o.tags)
    }
    fn create(_: &str, _: &RoleSpec, _: &PlanCx) -> Diff<Op> {
        (vec![], vec![])
    }
    fn update(_: &str, _: &RoleSpec, _: &RoleObserved, _: &PlanCx) -> Result<Diff<Op>, Vec<PlanError>> {
        Ok((vec![], vec![]))
    }
    fn delete(_: &str, _: &RoleObserved) -> Vec<Op> {
        vec![]
    }
}
