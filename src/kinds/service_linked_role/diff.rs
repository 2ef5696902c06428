//! ServiceLinkedRole: the pure diff between the manifest and what AWS has. (Placeholder being written.)

use std::collections::BTreeMap;

use serde::Serialize;

use super::ServiceLinkedRoleSpec;
use crate::kinds::common::Tags;
use crate::kinds::engine::{Diff, KindPlan, PlanCx};
use crate::kinds::{Kind, ResourceSpec};
use crate::plan::{Observed, PlanError, ResourceId, Step};

/// The ServiceLinkedRole kind.
pub struct ServiceLinkedRole;

/// What AWS has for one ServiceLinkedRole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceLinkedRoleObserved {
    /// Tags.
    pub tags: Tags,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    /// Placeholder.
    Noop,
}

impl KindPlan for ServiceLinkedRole {
    const KIND: Kind = Kind::ServiceLinkedRole;
    type Spec = ServiceLinkedRoleSpec;
    type Observed = ServiceLinkedRoleObserved;
    type Op = Op;

    fn spec(s: &ResourceSpec) -> Option<&ServiceLinkedRoleSpec> {
        match s {
            ResourceSpec::ServiceLinkedRole(x) => Some(x),
            _ => None,
        }
    }
    fn observed(o: &Observed) -> &BTreeMap<String, ServiceLinkedRoleObserved> {
        &o.service_linked_roles
    }
    fn step(op: Op) -> Step {
        Step::ServiceLinkedRole(op)
    }
    fn depends_on(_: &str, _: &ServiceLinkedRoleSpec, _: &PlanCx) -> Vec<ResourceId> {
        vec![]
    }
    fn is_owned(o: &ServiceLinkedRoleObserved) -> bool {
        crate::kinds::engine::has_ownership_tag(&o.tags)
    }
    fn create(_: &str, _: &ServiceLinkedRoleSpec, _: &PlanCx) -> Diff<Op> {
        (vec![], vec![])
    }
    fn update(_: &str, _: &ServiceLinkedRoleSpec, _: &ServiceLinkedRoleObserved, _: &PlanCx) -> Result<Diff<Op>, Vec<PlanError>> {
        Ok((vec![], vec![]))
    }
    fn delete(_: &str, _: &ServiceLinkedRoleObserved) -> Vec<Op> {
        vec![]
    }
}
