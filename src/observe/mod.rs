//! Observe: read what AWS has for every resource the plan may touch. Kinds are observed
//! concurrently; a kind whose reads fail is reported and left out of the plan, so one
//! service's trouble does not stop the others.

use std::collections::BTreeSet;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::aws::{AwsContext, AwsError};
use crate::kinds::runtime::{AwsVisitor, KindAws, Wanted};
use crate::kinds::{visit_aws_kinds, Kind, Observed, PlanCx, Registered, ResourceKind};
use crate::manifest::DesiredState;
use crate::plan::ResourceId;

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
fn wanted_of<'a, K: ResourceKind>(
    desired: &'a DesiredState,
    extra: &'a [ResourceId],
) -> Vec<Wanted<'a, K::Spec>> {
    let mut seen = BTreeSet::new();
    let mut v = Vec::new();
    for r in desired.resources.iter().filter(|r| r.kind == K::KIND) {
        if seen.insert(r.name.as_str()) {
            v.push(Wanted {
                name: &r.name,
                spec: <K as Registered>::spec(&r.spec),
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

/// One kind's observation, put into the shared result when it completes.
type Fill<'a> = BoxFuture<'a, Box<dyn FnOnce(&mut Observation) + Send + 'a>>;

/// Observe every desired resource and every resource in `extra` (e.g. deletion candidates),
/// each kind concurrently.
pub async fn observe(
    aws: &AwsContext,
    desired: &DesiredState,
    extra: &[ResourceId],
    cx: &PlanCx,
) -> Observation {
    struct Each<'a> {
        aws: &'a AwsContext,
        desired: &'a DesiredState,
        extra: &'a [ResourceId],
        cx: &'a PlanCx,
        jobs: Vec<Fill<'a>>,
    }
    impl<'a> AwsVisitor for Each<'a> {
        fn visit<K: KindAws>(&mut self) {
            let wanted = wanted_of::<K>(self.desired, self.extra);
            let (aws, cx) = (self.aws, self.cx);
            self.jobs.push(
                async move {
                    let found = if wanted.is_empty() {
                        Ok(Default::default())
                    } else {
                        K::observe(aws, &wanted, cx).await
                    };
                    Box::new(move |o: &mut Observation| match found {
                        Ok(m) => *K::observed_mut(&mut o.observed) = m,
                        Err(e) => o.failures.push((K::KIND, e)),
                    }) as Box<dyn FnOnce(&mut Observation) + Send + 'a>
                }
                .boxed(),
            );
        }
    }
    let mut each = Each {
        aws,
        desired,
        extra,
        cx,
        jobs: Vec::new(),
    };
    visit_aws_kinds(&mut each);
    let mut o = Observation::default();
    for fill in futures::future::join_all(each.jobs).await {
        fill(&mut o);
    }
    o
}
