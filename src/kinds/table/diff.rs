//! Table: the pure diff between the manifest and what AWS has. (Placeholder being written.)

use std::collections::BTreeMap;

use serde::Serialize;

use super::TableSpec;
use crate::kinds::common::Tags;
use crate::kinds::engine::{Diff, KindPlan, PlanCx};
use crate::kinds::{Kind, ResourceSpec};
use crate::plan::{Observed, PlanError, ResourceId, Step};

/// The Table kind.
pub struct Table;

/// What AWS has for one Table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableObserved {
    /// Tags.
    pub tags: Tags,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    /// Placeholder.
    Noop,
}

impl KindPlan for Table {
    const KIND: Kind = Kind::Table;
    type Spec = TableSpec;
    type Observed = TableObserved;
    type Op = Op;

    fn spec(s: &ResourceSpec) -> Option<&TableSpec> {
        match s {
            ResourceSpec::Table(x) => Some(x),
            _ => None,
        }
    }
    fn observed(o: &Observed) -> &BTreeMap<String, TableObserved> {
        &o.tables
    }
    fn step(op: Op) -> Step {
        Step::Table(op)
    }
    fn depends_on(_: &str, _: &TableSpec, _: &PlanCx) -> Vec<ResourceId> {
        vec![]
    }
    fn is_owned(o: &TableObserved) -> bool {
        crate::kinds::engine::has_ownership_tag(&o.tags)
    }
    fn create(_: &str, _: &TableSpec, _: &PlanCx) -> Diff<Op> {
        (vec![], vec![])
    }
    fn update(_: &str, _: &TableSpec, _: &TableObserved, _: &PlanCx) -> Result<Diff<Op>, Vec<PlanError>> {
        Ok((vec![], vec![]))
    }
    fn delete(_: &str, _: &TableObserved) -> Vec<Op> {
        vec![]
    }
}
