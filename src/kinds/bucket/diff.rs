//! Bucket: the pure diff between the manifest and what AWS has. (Placeholder being written.)

use std::collections::BTreeMap;

use serde::Serialize;

use super::BucketSpec;
use crate::kinds::common::Tags;
use crate::kinds::engine::{Diff, KindPlan, PlanCx};
use crate::kinds::{Kind, ResourceSpec};
use crate::plan::{Observed, PlanError, ResourceId, Step};

/// The Bucket kind.
pub struct Bucket;

/// What AWS has for one Bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketObserved {
    /// Tags.
    pub tags: Tags,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    /// Placeholder.
    Noop,
}

impl KindPlan for Bucket {
    const KIND: Kind = Kind::Bucket;
    type Spec = BucketSpec;
    type Observed = BucketObserved;
    type Op = Op;

    fn spec(s: &ResourceSpec) -> Option<&BucketSpec> {
        match s {
            ResourceSpec::Bucket(x) => Some(x),
            _ => None,
        }
    }
    fn observed(o: &Observed) -> &BTreeMap<String, BucketObserved> {
        &o.buckets
    }
    fn step(op: Op) -> Step {
        Step::Bucket(op)
    }
    fn depends_on(_: &str, _: &BucketSpec, _: &PlanCx) -> Vec<ResourceId> {
        vec![]
    }
    fn is_owned(o: &BucketObserved) -> bool {
        crate::kinds::engine::has_ownership_tag(&o.tags)
    }
    fn create(_: &str, _: &BucketSpec, _: &PlanCx) -> Diff<Op> {
        (vec![], vec![])
    }
    fn update(_: &str, _: &BucketSpec, _: &BucketObserved, _: &PlanCx) -> Result<Diff<Op>, Vec<PlanError>> {
        Ok((vec![], vec![]))
    }
    fn delete(_: &str, _: &BucketObserved) -> Vec<Op> {
        vec![]
    }
}
