//! The HTTP server end to end: a real listener on 127.0.0.1:0 and hand-written HTTP/1.1
//! requests over a TcpStream.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mlspace_gitops::aws::{CallObserver, CallResult};
use mlspace_gitops::http::{self, HttpState};
use mlspace_gitops::kinds::Kind;
use mlspace_gitops::metrics::{self, names, FetchResult, ReconcileResult};
use mlspace_gitops::plan::Action;
use mlspace_gitops::secret::Secret;
use mlspace_gitops::status::{Readiness, ResourceState, ResourceStatus, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::support::http::{parse_reply, request_head, Reply};

const SECRET: &str = "s3cr3t-webhook-key";

struct Server {
    addr: SocketAddr,
    state: HttpState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(secret: Option<&str>, max_source_age: Duration) -> Server {
        let state = HttpState {
            registry: prometheus::Registry::new(),
            status: Arc::new(RwLock::new(Status::new(
                "https://example.com/repo.git",
                "apply",
            ))),
            readiness: Arc::new(Readiness::new(max_source_age, Duration::from_secs(10))),
            webhook_secret: secret.map(Secret::new),
            trigger: Arc::new(Notify::new()),
            control: Default::default(),
            ui_auth: None,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(http::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            state,
            stop: Some(stop),
            task,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[], b"").await
    }

    async fn hook(&self, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        request(self.addr, "POST", "/hooks/git", headers, body).await
    }

    /// Whether the trigger fires within a short wait (consumes the permit if so).
    async fn triggered(&self) -> bool {
        tokio::time::timeout(Duration::from_millis(200), self.state.trigger.notified())
            .await
            .is_ok()
    }
}

/// One request on a fresh connection.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = request_head(addr, method, path, headers, body.len());
    s.write_all(head.as_bytes()).await.unwrap();
    // A server refusing a large body may answer and close before reading all of it.
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("reply in time")
        .unwrap();
    parse_reply(&raw).expect("a whole reply")
}

#[tokio::test]
async fn healthz_is_ok() {
    let srv = Server::start(None, Duration::from_secs(60)).await;
    let r = srv.get("/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(srv.get("/nope").await.status, 404);
}

#[tokio::test]
async fn readyz_follows_reconcile_and_source_age() {
    let srv = Server::start(None, Duration::from_millis(300)).await;
    let r = srv.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("reconcile"), "{}", r.body);

    srv.state.readiness.reconciled();
    let r = srv.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("source"), "{}", r.body);

    srv.state.readiness.source_reached();
    assert_eq!(srv.get("/readyz").await.status, 200);

    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = srv.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("source"), "{}", r.body);

    srv.state.readiness.source_reached();
    assert_eq!(srv.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn status_serves_json_with_stable_fields() {
    let srv = Server::start(None, Duration::from_secs(60)).await;
    {
        let mut st = srv.state.status.write().unwrap();
        st.source_revision = Some("abc123".into());
        st.last_fetch_at = Some(1_700_000_000);
        st.last_attempted_revision = Some("abc123".into());
        st.last_error = Some("line 1\nline 2".into());
        st.reconciles = 3;
        st.resources = vec![
            ResourceStatus {
                environment: "mlspace".into(),
                kind: Kind::ManagedPolicy,
                name: "notebook-policy".into(),
                state: ResourceState::InSync,
                error: None,
                retry_at: None,
                description: None,
                pending: None,
            },
            ResourceStatus {
                environment: "mlspace".into(),
                kind: Kind::Bucket,
                name: "data".into(),
                state: ResourceState::Failed,
                error: Some("AccessDenied".into()),
                retry_at: Some(1_700_000_060),
                description: None,
                pending: None,
            },
        ];
    }
    let r = srv.get("/status").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "source",
            "mode",
            "source_revision",
            "last_fetch_at",
            "last_fetch_error",
            "last_attempted_revision",
            "last_applied_revision",
            "last_rejected_revision",
            "last_error",
            "refused_revisions",
            "security_warnings",
            "last_reconcile_at",
            "reconciles",
            "environments",
            "resources",
        ]
    );
    assert_eq!(v["source"], "https://example.com/repo.git");
    assert_eq!(v["mode"], "apply");
    assert_eq!(v["source_revision"], "abc123");
    assert_eq!(v["last_fetch_error"], serde_json::Value::Null);
    assert_eq!(v["last_error"], "line 1\nline 2");
    assert_eq!(v["reconciles"], 3);
    assert_eq!(
        v["resources"][0],
        serde_json::json!({"environment": "mlspace", "kind": "ManagedPolicy", "name": "notebook-policy",
                           "state": "in_sync", "error": null, "retry_at": null,
                           "description": null, "pending": null})
    );
    assert_eq!(v["resources"][1]["state"], "failed");
    assert_eq!(v["resources"][1]["retry_at"], 1_700_000_060u64);
    // The document round-trips into the type.
    let back: Status = serde_json::from_str(&r.body).unwrap();
    assert_eq!(back, *srv.state.status.read().unwrap());
}

#[tokio::test]
async fn metrics_parse_and_name_every_metric() {
    let srv = Server::start(None, Duration::from_secs(60)).await;
    let m = metrics::register(&srv.state.registry).unwrap();
    // Touch every labelled metric so each has at least one series.
    m.record_reconcile(ReconcileResult::Success, Some(Duration::from_millis(120)));
    m.set_resource_counts(&BTreeMap::from([((Kind::Role, ResourceState::InSync), 4)]));
    m.record_drift(Kind::Bucket);
    m.record_change(Kind::Table, Action::Update, true);
    m.observe("iam", "GetRole", CallResult::Ok, Duration::from_millis(15));
    m.record_fetch(FetchResult::Unchanged);
    m.set_revision("deadbeef");
    m.set_validation_errors(2);
    m.set_lint_findings([0, 2, 1, 0]);
    m.set_leader("dev", "replica-a", true);
    m.set_suspended("dev", false);
    m.record_prune("dev", None);
    let iam = Some(mlspace_gitops::events::Source::Iam);
    m.events_started("dev");
    m.record_event_received("dev", iam);
    m.record_event_ignored("dev", iam, mlspace_gitops::events::Ignored::Unmanaged);
    m.record_event_acted("dev", iam);
    m.record_event_unparsable("dev");
    m.record_event_reconcile("dev", true);
    m.observe_event_to_repair(metrics::EventResult::Repaired, Duration::from_millis(280));
    m.set_event_queue_readable("dev", "https://sqs.us-east-1.amazonaws.com/1/q", true);
    m.set_last_reconcile_age("dev", Duration::from_secs(42));
    m.notifications_started("webhook-0");
    m.record_notification(
        "webhook-0",
        mlspace_gitops::notify::EventKind::RevisionApplied,
        metrics::NotificationResult::Sent,
    );

    let r = srv.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
    let scrape =
        prometheus_parse::Scrape::parse(r.body.lines().map(|l| Ok(l.to_string()))).unwrap();
    for name in names::ALL {
        assert!(scrape.docs.contains_key(name), "no HELP for {name}");
        assert!(
            scrape.samples.iter().any(|s| s.metric == name),
            "no sample of {name}"
        );
    }
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| s.value.clone())
    };
    use prometheus_parse::Value;
    assert_eq!(
        value(names::SOURCE_REVISION_INFO, &[("revision", "deadbeef")]),
        Some(Value::Gauge(1.0))
    );
    assert_eq!(
        value(names::RESOURCES, &[("kind", "Role"), ("state", "in_sync")]),
        Some(Value::Gauge(4.0))
    );
    assert_eq!(
        value(
            names::AWS_REQUESTS_TOTAL,
            &[
                ("service", "iam"),
                ("operation", "GetRole"),
                ("result", "ok")
            ]
        ),
        Some(Value::Counter(1.0))
    );
    assert_eq!(
        value(
            names::CHANGES_APPLIED_TOTAL,
            &[
                ("kind", "Table"),
                ("action", "update"),
                ("result", "success")
            ]
        ),
        Some(Value::Counter(1.0))
    );
    // Result label sets exist at 0 before their first event.
    assert_eq!(
        value(names::RECONCILE_TOTAL, &[("result", "failure")]),
        Some(Value::Counter(0.0))
    );
    assert_eq!(
        value(names::SOURCE_FETCH_TOTAL, &[("result", "success")]),
        Some(Value::Counter(0.0))
    );
    assert_eq!(
        value(names::VALIDATION_ERRORS, &[]),
        Some(Value::Gauge(2.0))
    );
}

#[tokio::test]
async fn webhook_with_valid_signature_triggers() {
    let srv = Server::start(Some(SECRET), Duration::from_secs(60)).await;
    let body = br#"{"ref":"refs/heads/main","after":"abc123"}"#;
    let sig = http::sign(&Secret::new(SECRET), body);
    let r = srv
        .hook(
            &[
                ("X-Hub-Signature-256", &sig),
                ("X-GitHub-Event", "push"),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(srv.triggered().await, "trigger did not fire");
}

#[tokio::test]
async fn webhook_refusals_do_not_trigger() {
    let srv = Server::start(Some(SECRET), Duration::from_secs(60)).await;
    let body = b"{\"ref\":\"refs/heads/main\"}";
    let good = http::sign(&Secret::new(SECRET), body);
    let wrong_key = http::sign(&Secret::new("not-the-secret"), body);
    let sha1 = good.replacen("sha256=", "sha1=", 1);
    // (what, signature header if any, body)
    let cases: [(&str, Option<&str>, &[u8]); 6] = [
        ("wrong key", Some(&wrong_key), body),
        ("other body", Some(&good), b"{}"),
        ("missing header", None, body),
        ("wrong prefix", Some(&sha1), body),
        ("not hex", Some("sha256=xyz"), body),
        ("empty", Some(""), body),
    ];
    for (what, sig, body) in cases {
        let headers: Vec<(&str, &str)> = sig
            .map(|v| ("X-Hub-Signature-256", v))
            .into_iter()
            .collect();
        let r = srv.hook(&headers, body).await;
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(!r.body.contains(SECRET), "{what}: secret in reply");
        assert!(!srv.triggered().await, "{what}: trigger fired");
    }
    // GET is not a delivery.
    assert_eq!(srv.get("/hooks/git").await.status, 405);
    assert!(!srv.triggered().await);
}

#[tokio::test]
async fn webhook_without_configured_secret_is_refused() {
    let srv = Server::start(None, Duration::from_secs(60)).await;
    let body = b"{}";
    let sig = http::sign(&Secret::new(SECRET), body);
    let r = srv.hook(&[("X-Hub-Signature-256", &sig)], body).await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("not configured"), "{}", r.body);
    assert!(!srv.triggered().await);
}

#[tokio::test]
async fn webhook_body_is_limited() {
    let srv = Server::start(Some(SECRET), Duration::from_secs(60)).await;
    let body = vec![b'a'; http::MAX_BODY_BYTES + 1];
    let sig = http::sign(&Secret::new(SECRET), &body);
    let r = srv.hook(&[("X-Hub-Signature-256", &sig)], &body).await;
    assert_eq!(r.status, 413);
    assert!(!srv.triggered().await);
}

#[tokio::test]
async fn graceful_shutdown_stops_the_server() {
    let mut srv = Server::start(None, Duration::from_secs(60)).await;
    assert_eq!(srv.get("/healthz").await.status, 200);
    srv.stop.take().unwrap().send(()).unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), &mut srv.task)
        .await
        .expect("server stopped in time")
        .unwrap();
    assert!(res.is_ok(), "{res:?}");
    assert!(
        TcpStream::connect(srv.addr).await.is_err(),
        "still accepting"
    );
}
