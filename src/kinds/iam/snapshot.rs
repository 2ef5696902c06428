//! One read of GetAccountAuthorizationDetails shared by the Role and ManagedPolicy
//! observers.
//!
//! GAAD returns every role (with inline policies, attachments, boundary, tags and instance
//! profiles) and every customer managed policy (with all versions and their documents) in
//! one paginated call, so the two kinds read it once per observe round: the first reader
//! starts the request with both filters and the other joins it or takes its answer.
//!
//! An answer is reused at most once per reader, within [`REUSE_WINDOW`], and only while
//! no IAM write went through the same [`AwsContext`]; any other read starts a new request,
//! so a snapshot never outlives the round that asked for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use aws_sdk_iam::types::{EntityType, ManagedPolicyDetail, RoleDetail};
use futures::future::{BoxFuture, FutureExt, Shared};

use super::sdk::{iam, IamCode, PAGE};
use crate::aws::{all_pages, emulator, AwsContext, AwsError, CallStats};

/// How long one GAAD answer may serve the other kind.
pub const REUSE_WINDOW: Duration = Duration::from_secs(30);

/// Roles and customer managed policies by name, as GAAD returned them.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Role name → details.
    pub roles: HashMap<String, RoleDetail>,
    /// Policy name → details.
    pub policies: HashMap<String, ManagedPolicyDetail>,
}

/// Which kind reads the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The Role observer.
    Role = 0,
    /// The ManagedPolicy observer.
    ManagedPolicy = 1,
}

type Fetch = Shared<BoxFuture<'static, Result<Arc<Snapshot>, AwsError>>>;

struct Entry {
    /// Identifies the AwsContext (its request counter) without keeping it alive.
    stats: Weak<CallStats>,
    started: Instant,
    /// IAM writes counted when the request started.
    writes: u64,
    fetch: Fetch,
    taken: [bool; 2],
}

static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// IAM requests other than reads made through this context so far.
fn iam_writes(stats: &CallStats) -> u64 {
    stats
        .snapshot()
        .iter()
        .filter(|((svc, op, _), _)| {
            svc.eq_ignore_ascii_case("iam") && !op.starts_with("Get") && !op.starts_with("List")
        })
        .map(|(_, n)| n)
        .sum()
}

/// The GAAD snapshot for `reader`: the other reader's answer of this round when there is
/// one, else a new request.
pub async fn snapshot(aws: &AwsContext, reader: Reader) -> Result<Arc<Snapshot>, AwsError> {
    let r = reader as usize;
    let writes = iam_writes(&aws.stats);
    let fetch = {
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|e| e.stats.strong_count() > 0 && e.started.elapsed() < REUSE_WINDOW);
        let pos = cache
            .iter()
            .position(|e| std::ptr::eq(e.stats.as_ptr(), Arc::as_ptr(&aws.stats)));
        match pos {
            Some(i) if !cache[i].taken[r] && cache[i].writes == writes => {
                cache[i].taken[r] = true;
                let f = cache[i].fetch.clone();
                if cache[i].taken.iter().all(|t| *t) {
                    cache.remove(i);
                }
                f
            }
            _ => {
                if let Some(i) = pos {
                    cache.remove(i);
                }
                let iam = iam(aws);
                let f = async move { fetch(&iam).await.map(Arc::new) }
                    .boxed()
                    .shared();
                let mut taken = [false; 2];
                taken[r] = true;
                cache.push(Entry {
                    stats: Arc::downgrade(&aws.stats),
                    started: Instant::now(),
                    writes,
                    fetch: f.clone(),
                    taken,
                });
                f
            }
        }
    };
    fetch.await
}

/// Read every role and customer managed policy, page by page.
async fn fetch(iam: &aws_sdk_iam::Client) -> Result<Snapshot, AwsError> {
    let pages = iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .filter(EntityType::LocalManagedPolicy)
        .max_items(PAGE)
        .into_paginator()
        .send();
    let pages = all_pages::<IamCode, _, _>("iam:GetAccountAuthorizationDetails", pages).await?;
    let mut snap = Snapshot::default();
    for out in pages {
        for r in out.role_detail_list.unwrap_or_default() {
            if let Some(n) = r.role_name.clone() {
                snap.roles.insert(n, r);
            }
        }
        for p in out.policies.unwrap_or_default() {
            if let Some(n) = emulator::gaad_policy_name(p.policy_name.as_deref(), p.arn.as_deref())
            {
                snap.policies.insert(n, p);
            }
        }
    }
    Ok(snap)
}
