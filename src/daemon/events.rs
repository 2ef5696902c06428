//! The daemon's side of events: the listeners that long-poll an Environment's queues
//! (`spec.events.queues`) and what the runtime does with the events they hand it.
//!
//! - A **listener** (one task per queue) runs while this replica leads the Environment. It
//!   receives up to ten messages at a time (SQS long polling, [`WAIT`]), reads each with the
//!   pure [`crate::events::parse`] and decides with the Environment's [`EventIndex`] (no AWS
//!   read): an event about nothing managed, a read, a failed call, another account or the
//!   daemon's own principal is counted and deleted at once; one naming managed resources is
//!   handed to the runtime ([`Batch`]); a message that is no readable event is counted and
//!   left in the queue, whose redrive policy moves it to the dead-letter queue after its
//!   receive count. A queue that cannot be read is retried with backoff, shown in `/readyz`
//!   and by the readable gauge, and changes nothing else: the resync goes on.
//! - The **runtime** gathers what the listeners hand it per Environment ([`Pending`]):
//!   events arriving less than [`SETTLE`] apart (a burst, up to [`SETTLE_MAX`] after the
//!   first) and while a pass runs coalesce into one targeted reconcile of the union of their
//!   resources. Once that reconcile has
//!   run, their messages are deleted and each event's time from the queue to the end of the
//!   reconcile is observed ([`event_result`]). Messages of a reconcile that could not run
//!   are not deleted: the queue delivers them again after its visibility timeout.
//!
//! The listeners use the Environment's own clients (its credentials, in the queue's region),
//! so their requests are counted with the Environment's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::backoff::Backoff;
use crate::aws::{AwsContext, AwsError, DisplayChain, ServiceCode, SqsCode};
use crate::events::{self, EventIndex, Source as EventSource, Verdict};
use crate::kinds::environment::{EnvironmentView, EventQueue};
use crate::metrics::{EventResult, Metrics};
use crate::plan::ResourceId;
use crate::status::{Readiness, ResourceState, ResourceStatus};

/// How long one ReceiveMessage waits for messages (SQS's longest long poll): an idle queue
/// costs three requests a minute.
pub const WAIT: Duration = Duration::from_secs(20);

/// How long the runtime waits for more events of an Environment after the last one before it
/// reconciles their resources: the calls of one console edit or script arrive together and
/// make one reconcile.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The longest a burst holds back its reconcile, counted from its first event.
pub const SETTLE_MAX: Duration = Duration::from_secs(1);

/// First and longest wait before reading a queue again after a failed read.
const RETRY_BASE: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Batches a listener may hand the runtime before it waits (the runtime is busy with a
/// pass): messages not received stay in the queue meanwhile.
const CHANNEL: usize = 64;

/// The readiness scope of an event queue.
pub fn queue_scope(environment: &str, url: &str) -> String {
    format!("event queue {url} of Environment {environment}")
}

/// A queue being read, and the client that reads it (the Environment's credentials, the
/// queue's region).
#[derive(Debug)]
pub struct Queue {
    /// Its URL.
    pub url: String,
    sqs: aws_sdk_sqs::Client,
}

/// One event whose managed resources are to be reconciled.
#[derive(Debug, Clone)]
pub struct Acted {
    /// The resources it named.
    pub ids: BTreeSet<ResourceId>,
    /// Its service.
    pub source: Option<EventSource>,
    /// The message's receipt handle, to delete it once handled.
    pub receipt: String,
    /// When SQS received the message (`SentTimestamp`), else when the listener did.
    pub sent_at: SystemTime,
}

/// What a listener hands the runtime: the events of one receive that name managed resources.
#[derive(Debug)]
pub struct Batch {
    /// The Environment.
    pub environment: String,
    /// The queue they came from.
    pub queue: Arc<Queue>,
    /// The events.
    pub acted: Vec<Acted>,
}

/// An Environment's events waiting for their reconcile.
#[derive(Debug)]
pub struct Pending {
    /// The union of their resources.
    pub ids: BTreeSet<ResourceId>,
    /// The events, with their queues.
    pub events: Vec<(Arc<Queue>, Acted)>,
    /// When the reconcile is due: [`SETTLE`] after the last event, at most [`SETTLE_MAX`]
    /// after the first.
    pub due: Instant,
    /// When the first event arrived.
    first: Instant,
}

impl Pending {
    /// Add a batch: the reconcile is due [`SETTLE`] later, unless the burst began
    /// [`SETTLE_MAX`] ago.
    pub fn add(pending: &mut BTreeMap<String, Pending>, batch: Batch, now: Instant) {
        let p = pending.entry(batch.environment).or_insert_with(|| Pending {
            ids: BTreeSet::new(),
            events: Vec::new(),
            due: now,
            first: now,
        });
        p.due = (now + SETTLE).min(p.first + SETTLE_MAX).max(p.due);
        for a in batch.acted {
            p.ids.extend(a.ids.iter().cloned());
            p.events.push((batch.queue.clone(), a));
        }
    }

    /// Events of a suspended Environment: dropped (the messages deleted) without a
    /// reconcile; resuming reconciles the Environment whole anyway.
    pub async fn ignored(self) {
        let mut by_queue: BTreeMap<String, (Arc<Queue>, Vec<String>)> = BTreeMap::new();
        for (queue, a) in self.events {
            by_queue
                .entry(queue.url.clone())
                .or_insert_with(|| (queue.clone(), Vec::new()))
                .1
                .push(a.receipt);
        }
        for (queue, receipts) in by_queue.into_values() {
            queue.delete(&receipts).await;
        }
    }

    /// Once their reconcile has run: each event's latency by how its resources ended, then
    /// the messages deleted.
    pub async fn handled(
        self,
        resources: &[ResourceStatus],
        repaired: &BTreeSet<ResourceId>,
        metrics: &Metrics,
    ) {
        let now = SystemTime::now();
        let mut by_queue: BTreeMap<String, (Arc<Queue>, Vec<String>)> = BTreeMap::new();
        for (queue, a) in self.events {
            let result = event_result(&a.ids, resources, repaired);
            let waited = now.duration_since(a.sent_at).unwrap_or_default();
            metrics.observe_event_to_repair(result, waited);
            by_queue
                .entry(queue.url.clone())
                .or_insert_with(|| (queue.clone(), Vec::new()))
                .1
                .push(a.receipt);
        }
        for (queue, receipts) in by_queue.into_values() {
            queue.delete(&receipts).await;
        }
    }
}

/// How the reconcile an event triggered ended for its resources: failed if any failed or
/// waits, reported if any drifted (detect mode), repaired if any was changed, else in sync.
pub fn event_result(
    ids: &BTreeSet<ResourceId>,
    resources: &[ResourceStatus],
    repaired: &BTreeSet<ResourceId>,
) -> EventResult {
    let mut result = EventResult::InSync;
    for id in ids {
        let state = resources
            .iter()
            .find(|r| r.kind == id.0 && r.name == id.1)
            .map(|r| r.state);
        let this = match state {
            Some(ResourceState::Failed | ResourceState::Pending) => EventResult::Failed,
            Some(ResourceState::Drifted) => EventResult::Reported,
            _ if repaired.contains(id) => EventResult::Repaired,
            _ => EventResult::InSync,
        };
        result = result.max(this);
    }
    result
}

impl Queue {
    /// Delete handled messages, ten at a time. A message that cannot be deleted comes back
    /// after the visibility timeout and is handled again, which is harmless.
    async fn delete(&self, receipts: &[String]) {
        for chunk in receipts.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                        .ok()
                })
                .collect();
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await;
            match out {
                Ok(o) if o.failed().is_empty() => {}
                Ok(o) => {
                    tracing::warn!(queue = %self.url, failed = o.failed().len(), "some handled event messages could not be deleted; they will be handled again");
                }
                Err(e) => {
                    let e = SqsCode::error("sqs:DeleteMessageBatch", e);
                    tracing::warn!(queue = %self.url, error = %DisplayChain(&e), "handled event messages could not be deleted; they will be handled again");
                }
            }
        }
    }
}

/// The listeners of one Environment.
#[derive(Debug)]
struct EnvListeners {
    /// The queues read, and the clients they were made from.
    queues: Vec<EventQueue>,
    aws: AwsContext,
    index: watch::Sender<Arc<EventIndex>>,
    tasks: Vec<(String, JoinHandle<()>)>,
}

/// Every Environment's listeners, and the channel they hand events to the runtime on.
#[derive(Debug)]
pub struct Listeners {
    tx: mpsc::Sender<Batch>,
    by_env: BTreeMap<String, EnvListeners>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

impl Listeners {
    /// No listener yet; the runtime reads the receiver.
    pub fn new(
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
    ) -> (Listeners, mpsc::Receiver<Batch>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        (
            Listeners {
                tx,
                by_env: BTreeMap::new(),
                metrics,
                readiness,
            },
            rx,
        )
    }

    /// Make `env`'s listeners read its queues with `aws` (its clients) and decide with
    /// `index`: started, restarted when the queues or the clients changed, or given the new
    /// index.
    pub fn ensure(&mut self, env: &EnvironmentView, aws: &AwsContext, index: EventIndex) {
        let index = Arc::new(index);
        if let Some(l) = self.by_env.get(&env.name) {
            if l.queues == env.event_queues && l.aws.same_as(aws) {
                l.index.send_replace(index);
                return;
            }
        }
        self.stop(&env.name);
        if env.event_queues.is_empty() {
            return;
        }
        self.metrics.events_started(&env.name);
        let (index_tx, index_rx) = watch::channel(index);
        let mut tasks = Vec::new();
        for q in &env.event_queues {
            let region = q.region.as_deref().unwrap_or(&env.region);
            let queue = Arc::new(Queue {
                url: q.url.clone(),
                sqs: aws.in_region(region).client(),
            });
            let listener = Listener {
                environment: env.name.clone(),
                queue,
                index: index_rx.clone(),
                tx: self.tx.clone(),
                metrics: self.metrics.clone(),
                readiness: self.readiness.clone(),
            };
            tracing::info!(environment = %env.name, queue = %q.url, "reading the event queue");
            tasks.push((q.url.clone(), tokio::spawn(listener.run())));
        }
        self.by_env.insert(
            env.name.clone(),
            EnvListeners {
                queues: env.event_queues.clone(),
                aws: aws.clone(),
                index: index_tx,
                tasks,
            },
        );
    }

    /// Stop `env`'s listeners (it left the manifests, lost its queues, or another replica
    /// leads it now): their gauges and readiness problems go with them.
    pub fn stop(&mut self, env: &str) {
        let Some(l) = self.by_env.remove(env) else {
            return;
        };
        for (url, task) in l.tasks {
            task.abort();
            self.metrics.forget_event_queue(env, &url);
            self.readiness.set_problem(&queue_scope(env, &url), None);
        }
    }

    /// Stop the listeners of every Environment for which `keep` is false.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self.by_env.keys().filter(|e| !keep(e)).cloned().collect();
        for e in gone {
            self.stop(&e);
        }
    }

    /// Whether `env` has listeners.
    pub fn is_listening(&self, env: &str) -> bool {
        self.by_env.contains_key(env)
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for l in self.by_env.values() {
            for (_, task) in &l.tasks {
                task.abort();
            }
        }
    }
}

/// One queue's listener task.
struct Listener {
    environment: String,
    queue: Arc<Queue>,
    index: watch::Receiver<Arc<EventIndex>>,
    tx: mpsc::Sender<Batch>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

impl Listener {
    /// Receive, decide, hand over or delete; until aborted or the runtime is gone.
    async fn run(self) {
        let scope = queue_scope(&self.environment, &self.queue.url);
        let mut failing: Option<Backoff> = None;
        loop {
            match self.receive().await {
                Ok(messages) => {
                    if failing.take().is_some() {
                        tracing::info!(environment = %self.environment, queue = %self.queue.url, "the event queue can be read again");
                    }
                    self.metrics
                        .set_event_queue_readable(&self.environment, &self.queue.url, true);
                    self.readiness.set_problem(&scope, None);
                    if !self.handle(messages).await {
                        return;
                    }
                }
                Err(e) => {
                    let why = crate::syntax::diag::escape_control(&DisplayChain(&e).to_string())
                        .into_owned();
                    if failing.is_none() {
                        tracing::error!(environment = %self.environment, queue = %self.queue.url, error = %why, "cannot read the event queue; drift waits for the resync meanwhile");
                    }
                    self.metrics.set_event_queue_readable(
                        &self.environment,
                        &self.queue.url,
                        false,
                    );
                    self.readiness.set_problem(&scope, Some(why));
                    let b = Backoff::after_failure(failing, Instant::now(), RETRY_BASE, RETRY_MAX);
                    failing = Some(b);
                    tokio::time::sleep_until(b.next_at).await;
                }
            }
        }
    }

    /// One long poll.
    async fn receive(&self) -> Result<Vec<aws_sdk_sqs::types::Message>, AwsError> {
        // A long poll lasts `WAIT`: its attempt may take longer than other requests'.
        let timeouts = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(3100))
            .operation_attempt_timeout(WAIT + Duration::from_secs(10))
            .build();
        let out = self
            .queue
            .sqs
            .receive_message()
            .queue_url(&self.queue.url)
            .max_number_of_messages(10)
            .wait_time_seconds(WAIT.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts))
            .send()
            .await
            .map_err(|e| SqsCode::error("sqs:ReceiveMessage", e))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Decide about each message; returns false once the runtime is gone.
    async fn handle(&self, messages: Vec<aws_sdk_sqs::types::Message>) -> bool {
        if messages.is_empty() {
            return true;
        }
        let index = self.index.borrow().clone();
        let env = self.environment.as_str();
        let mut done = Vec::new();
        let mut acted = Vec::new();
        for m in messages {
            let Some(receipt) = m.receipt_handle().map(str::to_string) else {
                continue;
            };
            let sent_at = sent_at(&m);
            match decide(&index, m.body().unwrap_or_default()) {
                Decision::Unparsable(e) => {
                    self.metrics.record_event_unparsable(env);
                    tracing::warn!(environment = env, queue = %self.queue.url, message = m.message_id().unwrap_or_default(), error = %DisplayChain(&e), "a message that is no readable event: left for the queue's redrive policy");
                }
                Decision::Ignore(source, reason) => {
                    self.metrics.record_event_received(env, source);
                    self.metrics.record_event_ignored(env, source, reason);
                    done.push(receipt);
                }
                Decision::Act(source, name, ids) => {
                    self.metrics.record_event_received(env, source);
                    self.metrics.record_event_acted(env, source);
                    tracing::info!(environment = env, event = %name, resources = ids.len(), "event about managed resources");
                    acted.push(Acted {
                        ids,
                        source,
                        receipt,
                        sent_at,
                    });
                }
            }
        }
        if !done.is_empty() {
            self.queue.delete(&done).await;
        }
        if acted.is_empty() {
            return true;
        }
        self.tx
            .send(Batch {
                environment: self.environment.clone(),
                queue: self.queue.clone(),
                acted,
            })
            .await
            .is_ok()
    }
}

/// When SQS received a message (`SentTimestamp`, milliseconds since the epoch); now when
/// the attribute is missing.
fn sent_at(m: &aws_sdk_sqs::types::Message) -> SystemTime {
    m.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or_else(SystemTime::now, |ms| UNIX_EPOCH + Duration::from_millis(ms))
}

/// What to do with one message body.
#[derive(Debug)]
enum Decision {
    /// No event the daemon can read.
    Unparsable(events::ParseError),
    /// Counted and deleted.
    Ignore(Option<EventSource>, events::Ignored),
    /// Its resources are reconciled (the call's name, for the log).
    Act(Option<EventSource>, String, BTreeSet<ResourceId>),
}

/// Decide about a message body from the index alone (no AWS read).
fn decide(index: &EventIndex, body: &str) -> Decision {
    match events::parse(body) {
        Err(e) => Decision::Unparsable(e),
        Ok(events::Envelope::Other) => Decision::Ignore(None, events::Ignored::OtherEvent),
        Ok(events::Envelope::ApiCall(call)) => match index.classify(&call) {
            Verdict::Ignore(reason) => Decision::Ignore(call.source, reason),
            Verdict::Act(ids) => Decision::Act(call.source, call.event_name, ids),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Kind;

    fn status(kind: Kind, name: &str, state: ResourceState) -> ResourceStatus {
        ResourceStatus {
            environment: "dev".into(),
            kind,
            name: name.into(),
            state,
            error: None,
            retry_at: None,
            description: None,
            pending: None,
        }
    }

    #[test]
    fn an_event_ends_as_its_worst_resource() {
        let role = (Kind::Role, "r".to_string());
        let policy = (Kind::ManagedPolicy, "p".to_string());
        let both = BTreeSet::from([role.clone(), policy.clone()]);
        let in_sync = [
            status(Kind::Role, "r", ResourceState::InSync),
            status(Kind::ManagedPolicy, "p", ResourceState::InSync),
        ];
        assert_eq!(
            event_result(&both, &in_sync, &BTreeSet::new()),
            EventResult::InSync
        );
        assert_eq!(
            event_result(&both, &in_sync, &BTreeSet::from([role.clone()])),
            EventResult::Repaired
        );
        let drifted = [
            status(Kind::Role, "r", ResourceState::Drifted),
            status(Kind::ManagedPolicy, "p", ResourceState::InSync),
        ];
        assert_eq!(
            event_result(&both, &drifted, &BTreeSet::new()),
            EventResult::Reported
        );
        let failed = [
            status(Kind::Role, "r", ResourceState::Failed),
            status(Kind::ManagedPolicy, "p", ResourceState::Drifted),
        ];
        assert_eq!(
            event_result(&both, &failed, &BTreeSet::from([policy])),
            EventResult::Failed
        );
    }

    #[test]
    fn messages_are_decided_without_aws() {
        let d = crate::manifest::compile_text(
            "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: dev}\nspec: {region: us-east-1, account: \"123456789012\"}\n---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {name: mlspace-data}\nspec: {}\n",
        )
        .desired;
        let index = EventIndex::new(&d);
        let body = |bucket: &str| {
            serde_json::json!({"version": "0", "id": "1", "detail-type": events::DETAIL_TYPE,
                "source": "aws.s3", "account": "123456789012", "region": "us-east-1",
                "detail": {"eventSource": "s3.amazonaws.com", "eventName": "PutBucketTagging",
                    "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
                    "requestParameters": {"bucketName": bucket}}})
            .to_string()
        };
        match decide(&index, &body("mlspace-data")) {
            Decision::Act(Some(EventSource::S3), name, ids) => {
                assert_eq!(name, "PutBucketTagging");
                assert_eq!(
                    ids,
                    BTreeSet::from([(Kind::Bucket, "mlspace-data".to_string())])
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&index, &body("someone-elses")),
            Decision::Ignore(Some(EventSource::S3), events::Ignored::Unmanaged)
        ));
        assert!(matches!(
            decide(&index, "{\"not\": \"an event\"}"),
            Decision::Unparsable(_)
        ));
    }

    #[test]
    fn events_of_a_burst_wait_together_for_one_reconcile() {
        let now = Instant::now();
        let mut pending = BTreeMap::new();
        let queue = Arc::new(Queue {
            url: "http://127.0.0.1:1/123456789012/q".into(),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::Config::builder()
                    .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                    .build(),
            ),
        });
        let acted = |name: &str| Acted {
            ids: BTreeSet::from([(Kind::Role, name.to_string())]),
            source: Some(EventSource::Iam),
            receipt: format!("receipt-{name}"),
            sent_at: SystemTime::now(),
        };
        let batch = |names: &[&str]| Batch {
            environment: "dev".into(),
            queue: queue.clone(),
            acted: names.iter().map(|n| acted(n)).collect(),
        };
        Pending::add(&mut pending, batch(&["a", "a", "b"]), now);
        assert_eq!(pending["dev"].due, now + SETTLE);
        // Each batch of the burst moves the reconcile to SETTLE after it...
        let ms = Duration::from_millis;
        Pending::add(&mut pending, batch(&["a"]), now + ms(150));
        assert_eq!(pending["dev"].due, now + ms(150) + SETTLE);
        // ... up to SETTLE_MAX after the first.
        for at in [300, 450, 600, 750, 900] {
            Pending::add(&mut pending, batch(&["b"]), now + ms(at));
        }
        let p = &pending["dev"];
        assert_eq!(p.due, now + SETTLE_MAX);
        assert_eq!(p.events.len(), 9);
        assert_eq!(p.ids.len(), 2);
    }
}
