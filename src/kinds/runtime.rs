//! The AWS half of a resource kind (the `runtime` feature): observe the wanted resources,
//! run one step. Each kind implements [`KindAws`] in its folder's `aws.rs`; the observe,
//! apply and import stages reach it through the registry.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::core::{PlanCx, ResourceKind};
use crate::aws::{AwsContext, AwsError};

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
pub trait KindAws: ResourceKind + Send + Sync {
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

/// Something done once per resource kind with its AWS half ([`super::visit_aws_kinds`]).
pub trait AwsVisitor {
    /// Called for each resource kind, in registry order.
    fn visit<K: KindAws>(&mut self);
}
