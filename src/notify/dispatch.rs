//! Sending notices, off the reconcile path.
//!
//! The runtime hands a [`Notice`] to [`Notifier::send`], which never waits: it filters by
//! `--notify-events`, drops a notice identical to one sent within [`DEDUP_WINDOW`], and
//! `try_send`s it to each sink's bounded queue (a full queue drops it, counted). Each sink
//! is a task of its own, so a slow or dead receiver holds up only itself: it takes a token
//! from its bucket ([`BURST`], then one per [`REFILL`]; none left: dropped, counted), then
//! makes up to [`ATTEMPTS`] attempts of at most [`ATTEMPT_TIMEOUT`] each, with jittered
//! backoff. Every outcome is counted in `mlspace_gitops_notifications_total`.
//!
//! HTTP goes through hyper's client with rustls and the system's roots (hyper-rustls): the
//! same stack the AWS SDK already brings, so no second HTTP or TLS implementation. SNS goes
//! through `aws-sdk-sns` with the daemon's own credentials (the standard chain), in the
//! topic's region.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::limit::{Dedup, TokenBucket};
use super::target::{self, Scheme, Target};
use super::{EventKind, Notice};
use crate::aws::{AwsContext, AwsOptions, CallCounter, DisplayChain, ServiceClient};
use crate::metrics::{Metrics, NotificationResult};
use crate::secret::Secret;

/// Identical notices within this window are sent once.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(600);
/// Notices a sink's queue holds; more are dropped.
pub const QUEUE: usize = 64;
/// Notices a sink sends at once before the rate applies.
pub const BURST: u32 = 20;
/// One more notice per this long, after the burst.
pub const REFILL: Duration = Duration::from_secs(3);
/// Attempts per notice and sink.
pub const ATTEMPTS: u32 = 3;
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// First backoff between attempts (doubled, jittered).
const BACKOFF: Duration = Duration::from_millis(500);

/// What the notifier is given.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// The receivers (`--notify`).
    pub targets: Vec<Target>,
    /// The events sent (`--notify-events`; empty: all).
    pub events: BTreeSet<EventKind>,
    /// HMAC key of the generic webhook's signature (`--notify-secret-file`).
    pub secret: Option<Secret>,
}

/// Why notifications cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A generic webhook needs a signing secret.
    #[error("--notify {label} is a webhook+ URL: set --notify-secret-file so that the receiver can check the X-Signature-256 header")]
    NoSecret {
        /// The sink.
        label: String,
    },
    /// The system's CA certificates could not be loaded for HTTPS receivers.
    #[error("cannot load the system's CA certificates for the --notify receivers")]
    Roots(#[source] std::io::Error),
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot build the request")]
    Request(#[source] hyper::http::Error),
    #[error("request failed")]
    Http(#[source] hyper_util::client::legacy::Error),
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("SNS Publish failed")]
    Sns(#[source] Box<aws_sdk_sns::error::SdkError<aws_sdk_sns::operation::publish::PublishError>>),
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

impl ServiceClient for aws_sdk_sns::Client {
    fn build(conf: &aws_config::SdkConfig, counter: CallCounter) -> Self {
        aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(conf)
                .interceptor(counter)
                .build(),
        )
    }
}

/// How a sink delivers.
#[derive(Clone)]
enum Deliver {
    Http {
        client: Box<HttpClient>,
        secret: Option<Secret>,
    },
    Sns(aws_sdk_sns::Client),
}

/// One sink: its queue.
struct Sink {
    label: String,
    tx: mpsc::Sender<Notice>,
}

/// The notifier: a handle the runtime sends notices to, and the sinks' tasks.
pub struct Notifier {
    events: BTreeSet<EventKind>,
    dedup: Mutex<Dedup>,
    sinks: Vec<Sink>,
    tasks: Vec<JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.sinks.iter().map(|s| s.label.as_str()).collect();
        write!(f, "Notifier({labels:?})")
    }
}

impl Notifier {
    /// Start a task per target. `aws` gives the endpoint override SNS uses (tests).
    pub async fn start(
        cfg: NotifyConfig,
        aws: &AwsOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Notifier, NotifyError> {
        let mut client: Option<HttpClient> = None;
        let mut sinks = Vec::new();
        let mut tasks = Vec::new();
        for t in &cfg.targets {
            let label = t.label();
            let deliver = match t.scheme {
                Scheme::Sns => {
                    let region = t.sns_region().unwrap_or_default();
                    let opts = AwsOptions {
                        endpoint_url: aws.endpoint_url.clone(),
                        region: Some(region.to_string()),
                        // The sink retries itself, and never for long.
                        max_attempts: Some(1),
                        attempt_timeout: Some(ATTEMPT_TIMEOUT),
                        assume_role: None,
                    };
                    Deliver::Sns(AwsContext::from_env(&opts, region).await.client())
                }
                Scheme::Webhook if cfg.secret.is_none() => {
                    return Err(NotifyError::NoSecret { label });
                }
                Scheme::Slack | Scheme::Teams | Scheme::Webhook => {
                    if client.is_none() {
                        client = Some(http_client()?);
                    }
                    Deliver::Http {
                        client: Box::new(client.clone().expect("just built")),
                        secret: (t.scheme == Scheme::Webhook)
                            .then(|| cfg.secret.clone())
                            .flatten(),
                    }
                }
            };
            let (tx, rx) = mpsc::channel(QUEUE);
            metrics.notifications_started(&label);
            tasks.push(tokio::spawn(run_sink(
                t.clone(),
                deliver,
                rx,
                metrics.clone(),
            )));
            sinks.push(Sink { label, tx });
        }
        let events = if cfg.events.is_empty() {
            EventKind::ALL.into_iter().collect()
        } else {
            cfg.events
        };
        if !sinks.is_empty() {
            let labels: Vec<&str> = sinks.iter().map(|s| s.label.as_str()).collect();
            let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
            tracing::info!(sinks = ?labels, events = ?names, "notifications on");
        }
        Ok(Notifier {
            events,
            dedup: Mutex::new(Dedup::new(DEDUP_WINDOW)),
            sinks,
            tasks,
            metrics,
        })
    }

    /// Queue `notice` for every sink, without waiting (see the module docs).
    pub fn send(&self, notice: Notice) {
        if self.sinks.is_empty() || !self.events.contains(&notice.event) {
            return;
        }
        let now = std::time::Instant::now();
        if !self
            .dedup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(notice.dedup_key(), now)
        {
            tracing::debug!(
                event = notice.event.as_str(),
                "notification already sent recently"
            );
            return;
        }
        for s in &self.sinks {
            if s.tx.try_send(notice.clone()).is_err() {
                tracing::warn!(sink = %s.label, event = notice.event.as_str(), "notification dropped: the sink's queue is full");
                self.metrics.record_notification(
                    &s.label,
                    notice.event,
                    NotificationResult::Dropped,
                );
            }
        }
    }

    /// Stop taking notices and let the sinks finish what is queued, for at most `within`.
    pub async fn close(self, within: Duration) {
        drop(self.sinks);
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("notifications still queued at shutdown were not sent");
        }
    }
}

/// The HTTPS client of the HTTP sinks.
fn http_client() -> Result<HttpClient, NotifyError> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(NotifyError::Roots)?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// `sha256=HEX` of the HMAC-SHA256 of `body` keyed by `secret`: the X-Signature-256 header.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One sink's task: rate limit, then deliver with retries, until its queue closes.
async fn run_sink(
    t: Target,
    deliver: Deliver,
    mut rx: mpsc::Receiver<Notice>,
    metrics: Arc<Metrics>,
) {
    let label = t.label();
    let mut bucket = TokenBucket::new(BURST, REFILL);
    while let Some(n) = rx.recv().await {
        if !bucket.take(std::time::Instant::now()) {
            tracing::warn!(sink = %label, event = n.event.as_str(), "notification dropped: rate limit");
            metrics.record_notification(&label, n.event, NotificationResult::RateLimited);
            continue;
        }
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let r =
                match tokio::time::timeout(ATTEMPT_TIMEOUT, deliver_once(&t, &deliver, &n)).await {
                    Ok(r) => r,
                    Err(_) => Err(SendError::Timeout(ATTEMPT_TIMEOUT)),
                };
            match r {
                Ok(()) => break Ok(()),
                Err(e) if attempt >= ATTEMPTS => break Err(e),
                Err(e) => {
                    tracing::debug!(sink = %label, attempt, error = %DisplayChain(&e), "notification attempt failed; retrying");
                    let base = BACKOFF * 2u32.pow(attempt - 1);
                    tokio::time::sleep(base + base.mul_f64(rand::random_range(0.0..0.5))).await;
                }
            }
        };
        match result {
            Ok(()) => {
                tracing::debug!(sink = %label, event = n.event.as_str(), "notification sent");
                metrics.record_notification(&label, n.event, NotificationResult::Sent);
            }
            Err(e) => {
                tracing::warn!(sink = %label, event = n.event.as_str(), attempts = ATTEMPTS, error = %DisplayChain(&e), "notification not delivered");
                metrics.record_notification(&label, n.event, NotificationResult::Failed);
            }
        }
    }
}

/// One attempt to deliver `n`.
async fn deliver_once(t: &Target, deliver: &Deliver, n: &Notice) -> Result<(), SendError> {
    match deliver {
        Deliver::Sns(sns) => {
            sns.publish()
                .topic_arn(&t.address)
                .subject(target::sns_subject(n))
                .message(target::json_body(n).to_string())
                .send()
                .await
                .map_err(|e| SendError::Sns(Box::new(e)))?;
            Ok(())
        }
        Deliver::Http { client, secret } => {
            let body = match t.scheme {
                Scheme::Slack => target::slack(n),
                Scheme::Teams => target::teams(n),
                _ => target::json_body(n),
            }
            .to_string();
            let mut req = hyper::Request::post(&t.address)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(
                    hyper::header::USER_AGENT,
                    concat!("mlspace-gitops/", env!("CARGO_PKG_VERSION")),
                )
                .header("X-Mlspace-Gitops-Event", n.event.as_str());
            if let Some(s) = secret {
                req = req.header("X-Signature-256", signature(s, body.as_bytes()));
            }
            let req = req
                .body(Full::new(Bytes::from(body)))
                .map_err(SendError::Request)?;
            let resp = client.request(req).await.map_err(SendError::Http)?;
            let status = resp.status();
            // Read the answer so the connection can be reused.
            let _ = resp.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(SendError::Status(status.as_u16()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(i: usize) -> Notice {
        super::super::leadership(&format!("env-{i}"), "h", false, true).unwrap()
    }

    /// The value of the notifications counter for `sink` and `result`, summed over events.
    fn count(reg: &prometheus::Registry, sink: &str, result: &str) -> u64 {
        crate::metrics::encode(reg)
            .lines()
            .filter(|l| l.starts_with(crate::metrics::names::NOTIFICATIONS_TOTAL))
            .filter(|l| {
                l.contains(&format!("sink=\"{sink}\""))
                    && l.contains(&format!("result=\"{result}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    /// A notifier of the `events` chosen (empty: all) to one webhook that accepts
    /// connections (the kernel's backlog) and never answers; keep the listener alive.
    async fn silent_webhook(
        events: BTreeSet<EventKind>,
    ) -> (std::net::TcpListener, prometheus::Registry, Notifier) {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("webhook+http://{}/hook", silent.local_addr().unwrap());
        let reg = prometheus::Registry::new();
        let metrics = crate::metrics::register(&reg).unwrap();
        let cfg = NotifyConfig {
            targets: vec![Target::parse(0, &url).unwrap()],
            events,
            secret: Some(Secret::new("k")),
        };
        let n = Notifier::start(cfg, &AwsOptions::default(), metrics)
            .await
            .unwrap();
        (silent, reg, n)
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_fills_its_queue_and_send_never_waits() {
        let (_silent, reg, n) = silent_webhook(BTreeSet::new()).await;
        // The same notice twice is queued once.
        n.send(notice(0));
        n.send(notice(0));
        tokio::task::yield_now().await;
        // The sink holds one notice in flight and QUEUE more; the rest are dropped.
        for i in 1..=QUEUE + 5 {
            n.send(notice(i));
        }
        let dropped = count(&reg, "webhook-0", "dropped");
        assert!((4..=5).contains(&dropped), "{dropped} dropped");
        assert_eq!(count(&reg, "webhook-0", "sent"), 0);
        // Shutdown does not wait for the receiver beyond the drain time.
        let started = std::time::Instant::now();
        n.close(Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn events_not_chosen_are_not_sent() {
        let (_silent, reg, n) =
            silent_webhook([EventKind::RevisionApplied].into_iter().collect()).await;
        for i in 0..QUEUE + 5 {
            n.send(notice(i));
        }
        // Leadership notices are filtered before any queue: nothing dropped.
        assert_eq!(count(&reg, "webhook-0", "dropped"), 0);
        n.close(Duration::from_millis(100)).await;
    }

    #[tokio::test]
    async fn a_webhook_without_a_secret_is_refused() {
        let reg = prometheus::Registry::new();
        let metrics = crate::metrics::register(&reg).unwrap();
        let cfg = NotifyConfig {
            targets: vec![Target::parse(0, "webhook+https://example.com/x").unwrap()],
            events: BTreeSet::new(),
            secret: None,
        };
        let e = Notifier::start(cfg, &AwsOptions::default(), metrics)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("--notify-secret-file"), "{e}");
        assert!(!e.to_string().contains("example.com"), "{e}");
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        let s = Secret::new("Jefe");
        assert_eq!(
            signature(&s, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
