//! Observe: read what AWS has for every resource the plan may touch. Kinds are observed
//! concurrently; a kind whose reads fail is reported and left out of the plan, so one
//! service's trouble does not stop the others.

use std::collections::BTreeSet;

use crate::aws::{AwsContext, AwsError};
use crate::kinds::bucket::Bucket;
use crate::kinds::engine::{KindAws, KindPlan, PlanCx, Wanted};
use crate::kinds::managed_policy::ManagedPolicy;
use crate::kinds::role::Role;
use crate::kinds::service_linked_role::ServiceLinkedRole;
use crate::kinds::table::Table;
use crate::kinds::Kind;
use crate::manifest::DesiredState;
use crate::plan::{Observed, ResourceId};

/// The observation and the kinds that could not be read.
#[derive(Debug, Default)]
pub struct Observation {
    /// What was read.
    pub observed: Observed,
    /// Kinds whose reads failed, with the error.
    pub failures: Vec<(Kind, AwsError)>,
}

impl Observation {
    /// Kinds that could not be observed (their resources must not be planned).
    pub fn failed_kinds(&self) -> BTreeSet<Kind> {
        self.failures.iter().map(|(k, _)| *k).collect()
    }
}

/// The resources of kind `K` to observe: the desired ones with their specs, then the extra
/// ones (deletion candidates) without.
fn wanted_of<'a, K: KindPlan>(
    desired: &'a DesiredState,
    extra: &'a [ResourceId],
) -> Vec<Wanted<'a, K::Spec>> {
    let mut seen = BTreeSet::new();
    let mut v = Vec::new();
    for r in desired.resources.iter().filter(|r| r.kind == K::KIND) {
        if seen.insert(r.name.as_str()) {
            v.push(Wanted {
                name: &r.name,
                spec: K::spec(&r.spec),
            });
        }
    }
    for (_, n) in extra.iter().filter(|(k, _)| *k == K::KIND) {
        if seen.insert(n.as_str()) {
            v.push(Wanted {
                name: n,
                spec: None,
            });
        }
    }
    v
}

async fn one<K: KindAws>(
    aws: &AwsContext,
    desired: &DesiredState,
    extra: &[ResourceId],
    cx: &PlanCx,
) -> Result<std::collections::BTreeMap<String, K::Observed>, (Kind, AwsError)> {
    let wanted = wanted_of::<K>(desired, extra);
    if wanted.is_empty() {
        return Ok(Default::default());
    }
    K::observe(aws, &wanted, cx).await.map_err(|e| (K::KIND, e))
}

/// Observe every desired resource and every resource in `extra` (e.g. deletion candidates).
pub async fn observe(
    aws: &AwsContext,
    desired: &DesiredState,
    extra: &[ResourceId],
    cx: &PlanCx,
) -> Observation {
    let (p, r, s, b, t) = tokio::join!(
        one::<ManagedPolicy>(aws, desired, extra, cx),
        one::<Role>(aws, desired, extra, cx),
        one::<ServiceLinkedRole>(aws, desired, extra, cx),
        one::<Bucket>(aws, desired, extra, cx),
        one::<Table>(aws, desired, extra, cx),
    );
    let mut o = Observation::default();
    macro_rules! take {
        ($res:expr, $field:ident) => {
            match $res {
                Ok(m) => o.observed.$field = m,
                Err(f) => o.failures.push(f),
            }
        };
    }
    take!(p, managed_policies);
    take!(r, roles);
    take!(s, service_linked_roles);
    take!(b, buckets);
    take!(t, tables);
    o
}
