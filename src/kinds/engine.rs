//! The trait that joins a kind to the pipeline. The pure half ([`KindPlan`]) turns desired
//! and observed state into field diffs and steps; the AWS half ([`KindAws`]) observes and
//! runs steps. The observe, plan and apply stages are generic over it, so a new kind is a
//! new folder plus one line in each stage's list of kinds.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use super::common::{Tags, OWNERSHIP_TAG, OWNERSHIP_VALUE};
use super::{Kind, ResourceSpec};
use crate::aws::{AwsContext, AwsError};
use crate::plan::{FieldChange, Observed, PlanError, ResourceId, Step};

/// What every kind's planner may know besides the resource itself.
#[derive(Debug, Clone, Default)]
pub struct PlanCx {
    /// AWS partition.
    pub partition: String,
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// ARN → name of the ManagedPolicies in the manifests (for dependencies).
    pub policy_arns: BTreeMap<String, String>,
    /// Names of the Buckets in the manifests (for dependencies).
    pub buckets: BTreeSet<String>,
    /// The Environment's ignore rules.
    pub ignore: Vec<crate::kinds::environment::IgnoreRule>,
}

impl PlanCx {
    /// Whether an object (a policy attached to a role, an inline policy, a resource) is
    /// ignored by the Environment's rules.
    pub fn ignored(&self, name: &str, tags: Option<&Tags>) -> bool {
        self.ignore.iter().any(|r| r.matches(name, tags))
    }

    /// [`Self::ignored`] for a policy ARN (the name is its last path segment).
    pub fn ignored_arn(&self, arn: &str) -> bool {
        self.ignored(arn.rsplit('/').next().unwrap_or(arn), None)
    }

    /// The desired tags of a resource: its own (Environment's merged in) plus ownership.
    pub fn desired_tags(&self, own: &Tags) -> Tags {
        let mut t = own.clone();
        t.insert(OWNERSHIP_TAG.into(), OWNERSHIP_VALUE.into());
        t
    }
}

/// Whether tags mark a resource as ours.
pub fn has_ownership_tag(tags: &Tags) -> bool {
    tags.get(OWNERSHIP_TAG).map(String::as_str) == Some(OWNERSHIP_VALUE)
}

/// Field changes and steps for one resource.
pub type Diff<Op> = (Vec<FieldChange>, Vec<Op>);

/// The pure half of a kind: no IO, deterministic.
pub trait KindPlan {
    /// The kind.
    const KIND: Kind;
    /// Resolved manifest spec.
    type Spec: Clone + Send + Sync;
    /// What AWS has.
    type Observed: Clone + std::fmt::Debug + Send + Sync;
    /// One executable step.
    type Op: Clone + std::fmt::Debug + Send + Sync;

    /// Top-level spec fields (as written in manifests) that `metadata.ignoreFields` may name.
    const IGNORABLE_FIELDS: &'static [&'static str] = &[];

    /// Overwrite `field` (one of [`Self::IGNORABLE_FIELDS`]) of a copy of the spec with what
    /// AWS has, so that [`Self::update`] sees no difference in it. The planner calls this for
    /// each ignored field before `update`; creation still uses the manifest's value.
    fn keep_observed(_spec: &mut Self::Spec, _observed: &Self::Observed, _field: &str) {}

    /// This kind's spec, if `s` is one.
    fn spec(s: &ResourceSpec) -> Option<&Self::Spec>;
    /// This kind's observed resources.
    fn observed(o: &Observed) -> &BTreeMap<String, Self::Observed>;
    /// Wrap a step for the plan.
    fn step(op: Self::Op) -> Step;
    /// Resources that must exist before this one is created or changed.
    fn depends_on(name: &str, spec: &Self::Spec, cx: &PlanCx) -> Vec<ResourceId>;
    /// Whether the observed resource carries the ownership tag (or cannot be tagged and is
    /// therefore judged by other means).
    fn is_owned(observed: &Self::Observed) -> bool;
    /// Fields worth showing and steps to create the resource.
    fn create(name: &str, spec: &Self::Spec, cx: &PlanCx) -> Diff<Self::Op>;
    /// Differences and steps to make `observed` match `spec`; empty when in sync.
    /// Errors name fields that cannot change in place.
    fn update(
        name: &str,
        spec: &Self::Spec,
        observed: &Self::Observed,
        cx: &PlanCx,
    ) -> Result<Diff<Self::Op>, Vec<PlanError>>;
    /// Steps to delete the resource, dependents first (detach, empty, then delete).
    fn delete(name: &str, observed: &Self::Observed) -> Vec<Self::Op>;
    /// Steps to delete the resource with its contents, where the manifest allowed it
    /// (a bucket's `forceDestroy`). Most kinds have no contents.
    fn force_delete(name: &str, observed: &Self::Observed) -> Vec<Self::Op> {
        Self::delete(name, observed)
    }
    /// Steps that hand the resource back: remove the ownership tag, change nothing else
    /// (the `retain` deletion policy).
    fn release(name: &str, observed: &Self::Observed) -> Vec<Self::Op>;
    /// The manifest spec that describes `observed` as it is (the `import` command): the
    /// ownership tag, AWS defaults and what the Environment ignores are left out, and a
    /// setting the manifest cannot express exactly is left out too (unmanaged), so that
    /// adopting the resource changes nothing but its ownership tag.
    fn import(name: &str, observed: &Self::Observed, cx: &PlanCx) -> Self::Spec;
}

/// Tags as a manifest writes them: the ownership tag left out.
pub fn own_tags(tags: &Tags) -> Tags {
    tags.iter()
        .filter(|(k, _)| k.as_str() != OWNERSHIP_TAG)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A resource to observe, with its desired spec when the manifests have one (so a kind can
/// read only the settings the manifest manages). Without a spec everything is read.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a, S> {
    /// AWS name.
    pub name: &'a str,
    /// Desired spec, if any.
    pub spec: Option<&'a S>,
}

/// The AWS half of a kind.
#[async_trait]
pub trait KindAws: KindPlan + Send + Sync {
    /// Observe the wanted resources (absent ones are left out of the map).
    async fn observe(
        aws: &AwsContext,
        wanted: &[Wanted<'_, Self::Spec>],
        cx: &PlanCx,
    ) -> Result<BTreeMap<String, Self::Observed>, AwsError>;

    /// Observe resources by name only, reading every setting.
    async fn observe_names(
        aws: &AwsContext,
        names: &[String],
        cx: &PlanCx,
    ) -> Result<BTreeMap<String, Self::Observed>, AwsError> {
        let wanted: Vec<Wanted<'_, Self::Spec>> = names
            .iter()
            .map(|n| Wanted {
                name: n,
                spec: None,
            })
            .collect();
        Self::observe(aws, &wanted, cx).await
    }
    /// Run one step. Steps are idempotent: running one twice leaves the same state.
    async fn apply(
        aws: &AwsContext,
        name: &str,
        op: &Self::Op,
        cx: &PlanCx,
    ) -> Result<(), AwsError>;
}
