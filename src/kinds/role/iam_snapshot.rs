//! One read of GetAccountAuthorizationDetails shared by the Role and ManagedPolicy
//! observers, and small conversions both use.
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

use aws_sdk_iam::types::{EntityType, ManagedPolicyDetail, RoleDetail, Tag};
use futures::future::{BoxFuture, FutureExt, Shared};
use serde_json::Value;

use crate::aws::{AwsContext, AwsError, CallStats};
use crate::kinds::common::Tags;

/// Up to this many names of a kind are read resource by resource; more use GAAD.
pub(crate) const PER_RESOURCE_MAX: usize = 3;

/// How long one GAAD answer may serve the other kind.
pub(crate) const REUSE_WINDOW: Duration = Duration::from_secs(30);

/// Page size asked of paginated IAM reads (IAM's maximum).
pub(crate) const PAGE: i32 = 1000;

/// Roles and customer managed policies by name, as GAAD returned them.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Role name → details.
    pub roles: HashMap<String, RoleDetail>,
    /// Policy name → details.
    pub policies: HashMap<String, ManagedPolicyDetail>,
}

/// Which kind reads the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
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
pub(crate) async fn snapshot(aws: &AwsContext, reader: Reader) -> Result<Arc<Snapshot>, AwsError> {
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
                let iam = aws.iam.clone();
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
    let mut snap = Snapshot::default();
    let mut marker: Option<String> = None;
    loop {
        let out = iam
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .filter(EntityType::LocalManagedPolicy)
            .max_items(PAGE)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("iam:GetAccountAuthorizationDetails", e, |_| None))?;
        for r in out.role_detail_list.unwrap_or_default() {
            if let Some(n) = r.role_name.clone() {
                snap.roles.insert(n, r);
            }
        }
        for p in out.policies.unwrap_or_default() {
            // moto leaves PolicyName out; the ARN ends with it.
            if let Some(n) = p
                .policy_name
                .clone()
                .or_else(|| p.arn.as_deref().map(|a| name_from_arn(a).to_string()))
            {
                snap.policies.insert(n, p);
            }
        }
        // moto ignores paging and answers everything at once, untruncated.
        match out.marker {
            Some(m) if out.is_truncated && marker.as_ref() != Some(&m) => marker = Some(m),
            _ => break,
        }
    }
    Ok(snap)
}

/// The last segment of an IAM ARN (`arn:aws:iam::1:policy/a/b/NAME` → `NAME`).
pub(crate) fn name_from_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Tags from the SDK's list.
pub(crate) fn tags_from_sdk(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// Tags for an SDK request.
pub(crate) fn tags_to_sdk(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        })
        .collect()
}

/// Decode a document as IAM returns it (URL-encoded or raw). A document that does not
/// parse is kept as its text, which compares unequal to any desired document, so the
/// next apply overwrites it.
pub(crate) fn decode_document(what: &str, text: &str) -> Value {
    mlspace_policy::decode_iam_document(text).unwrap_or_else(|e| {
        tracing::warn!(document = what, error = %e, "IAM returned a policy document that does not parse");
        Value::String(text.to_string())
    })
}

/// `Ok(())` for success and for NotFound: the thing to remove is already gone.
pub(crate) fn gone_ok<T>(r: Result<T, AwsError>) -> Result<(), AwsError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_convert() {
        assert_eq!(name_from_arn("arn:aws:iam::123456789012:policy/a/b/p"), "p");
        let tags: Tags = [("a".to_string(), "1".to_string())].into();
        assert_eq!(tags_from_sdk(&tags_to_sdk(&tags)), tags);
        assert_eq!(
            decode_document("x", "not json"),
            Value::String("not json".into())
        );
    }
}
