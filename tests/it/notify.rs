//! Notifications end to end: `mlspace-gitops run --notify …` against moto, with local HTTP
//! receivers (hyper) that check every body's X-Signature-256, and an SNS topic on moto
//! whose messages reach an SQS queue subscribed to it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::support::daemon::Daemon;
use crate::support::git::Repo;
use crate::support::{iam, Clients as _, Moto};

const SECRET: &str = "notify-secret-for-tests";

fn environment(account: &str) -> String {
    format!("apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {{name: notify}}\nspec:\n  region: us-east-1\n  account: \"{account}\"\n  tags: {{system: MLSpace}}\n")
}

fn role(team: &str) -> String {
    format!(
        "apiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: notify-role}}\nspec:\n  assumeRolePolicy:\n    Version: '2012-10-17'\n    Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: 'sts:AssumeRole'}}]\n  tags: {{team: {team}}}\n"
    )
}

/// How a receiver answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    Status500,
    Hang,
}

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Got {
    signature: Option<String>,
    event_header: Option<String>,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A local HTTP receiver on a free port, recording every request.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(rt: &tokio::runtime::Runtime, answer: Answer) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let g = got.clone();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let g = g.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let g = g.clone();
                        async move {
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string)
                            };
                            let (signature, event_header) =
                                (header("x-signature-256"), header("x-mlspace-gitops-event"));
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            g.lock().unwrap().push(Got {
                                signature,
                                event_header,
                                body: body.to_vec(),
                            });
                            let status = match answer {
                                Answer::Ok => StatusCode::OK,
                                Answer::Status500 => StatusCode::INTERNAL_SERVER_ERROR,
                                Answer::Hang => {
                                    tokio::time::sleep(Duration::from_secs(3600)).await;
                                    StatusCode::OK
                                }
                            };
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Receiver { port, got }
    }

    fn url(&self) -> String {
        format!("webhook+http://127.0.0.1:{}/hooks/mlspace", self.port)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The notices received, every one's signature checked.
    fn notices(&self) -> Vec<Value> {
        self.got()
            .iter()
            .map(|g| {
                assert_eq!(
                    g.signature.as_deref(),
                    Some(sign(&g.body).as_str()),
                    "bad signature on {}",
                    String::from_utf8_lossy(&g.body)
                );
                let v = g.json();
                assert_eq!(g.event_header.as_deref(), v["event"].as_str());
                v
            })
            .collect()
    }

    fn of(&self, event: &str) -> Vec<Value> {
        self.notices()
            .into_iter()
            .filter(|n| n["event"] == event)
            .collect()
    }
}

/// The signature the receiver expects, computed here independently of the daemon.
fn sign(body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn secret_file(dir: &Path) -> PathBuf {
    let f = dir.join("notify-secret");
    std::fs::write(&f, format!("{SECRET}\n")).unwrap();
    f
}

/// The role's `team` tag.
fn role_tag(rt: &tokio::runtime::Runtime, moto: &Moto) -> Option<String> {
    rt.block_on(async { iam::role_tag(&moto.aws().await.iam(), "notify-role", "team").await })
}

fn details(n: &Value) -> Vec<String> {
    n["details"]
        .as_array()
        .map(|a| a.iter().map(|d| d.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_signed_webhook_hears_of_applies_repairs_refusals_and_leadership() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let hook = Receiver::start(&rt, Answer::Ok);
    let repo = Repo::new();
    let first = repo.commit(
        &[
            ("manifests/env.yaml", &environment("123456789012")),
            ("manifests/iam.yaml", &role("blue")),
        ],
        "Add the notify role",
    );
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let url = hook.url();
    let d = Daemon::start(
        &moto,
        &repo.url(),
        &[
            "--notify",
            &url,
            "--notify-secret-file",
            secret.to_str().unwrap(),
        ],
    );

    // The first reconcile: the revision applied, with its change and commit.
    d.wait_until("revision_applied", Duration::from_secs(60), || {
        !hook.of("revision_applied").is_empty()
    });
    let applied = &hook.of("revision_applied")[0];
    assert_eq!(applied["revision"], first.as_str(), "{applied:#}");
    assert_eq!(applied["environment"], "notify");
    assert_eq!(applied["message"], "Add the notify role");
    assert_eq!(applied["source"], "mlspace-gitops");
    assert!(applied["author"].is_string(), "{applied:#}");
    assert_eq!(details(applied), ["create Role notify-role"], "{applied:#}");
    let lead = hook.of("leadership_changed");
    assert_eq!(lead.len(), 1, "{lead:#?}");
    assert_eq!(lead[0]["reason"], "acquired");

    // Resyncs of the same revision say nothing more.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(hook.of("revision_applied").len(), 1);

    // Drift behind its back: repaired, and said so.
    rt.block_on(async {
        moto.aws()
            .await
            .iam()
            .tag_role()
            .role_name("notify-role")
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("team")
                    .value("rogue")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    });
    d.wait_until("drift_repaired", Duration::from_secs(30), || {
        !hook.of("drift_repaired").is_empty()
    });
    assert_eq!(role_tag(&rt, &moto).as_deref(), Some("blue"));
    let repaired = &hook.of("drift_repaired")[0];
    assert_eq!(
        details(repaired),
        ["update Role notify-role"],
        "{repaired:#}"
    );

    // An invalid revision: refused, with the validation error.
    let broken = repo.commit(
        &[(
            "manifests/iam.yaml",
            &role("red").replace("kind: Role", "kind: Rolle"),
        )],
        "broken",
    );
    d.wait_until("revision_refused", Duration::from_secs(30), || {
        !hook.of("revision_refused").is_empty()
    });
    let refused = &hook.of("revision_refused")[0];
    assert_eq!(refused["revision"], broken.as_str());
    assert_eq!(refused["reason"], "invalid");
    assert!(
        details(refused).iter().any(|l| l.contains("iam.yaml")),
        "{refused:#}"
    );
    assert!(
        refused["summary"].as_str().unwrap().contains(&first[..12]),
        "{refused:#}"
    );

    // Counted by sink and event; the URL is nowhere in metrics or status.
    let sent = |event| {
        d.metric(
            "mlspace_gitops_notifications_total",
            &[("sink", "webhook-0"), ("event", event), ("result", "sent")],
        )
    };
    assert_eq!(sent("revision_applied"), 1.0);
    assert!(sent("drift_repaired") >= 1.0);
    assert_eq!(sent("revision_refused"), 1.0);
    let (_, metrics) = d.get("/metrics");
    let status = d.get("/status").1;
    for text in [&metrics, &status] {
        assert!(!text.contains(&hook.port.to_string()), "the URL leaked");
    }
    assert!(
        !d.log().contains(&format!(":{}/", hook.port)),
        "the URL was logged"
    );
    assert!(!d.log().contains(SECRET));
    d.terminate();
}

#[test]
fn filtered_events_reach_a_good_receiver_while_failing_ones_are_retried_and_counted() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let good = Receiver::start(&rt, Answer::Ok);
    let failing = Receiver::start(&rt, Answer::Status500);
    let hanging = Receiver::start(&rt, Answer::Hang);
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("env.yaml"), environment("123456789012")).unwrap();
    std::fs::write(manifests.join("iam.yaml"), role("blue")).unwrap();
    let secret = secret_file(dir.path());
    let (g, f, h) = (good.url(), failing.url(), hanging.url());
    let mut d = Daemon::start(
        &moto,
        manifests.to_str().unwrap(),
        &[
            "--notify",
            &g,
            "--notify",
            &f,
            "--notify",
            &h,
            "--notify-events",
            "revision_applied,revision_refused",
            "--notify-secret-file",
            secret.to_str().unwrap(),
        ],
    );
    d.wait_until("revision_applied", Duration::from_secs(60), || {
        !good.of("revision_applied").is_empty()
    });
    let successes =
        |d: &Daemon| d.metric("mlspace_gitops_reconcile_total", &[("result", "success")]);
    let before = successes(&d);

    // The 500 receiver: three attempts, then counted as failed.
    let failed = |sink: &str| {
        d.metric(
            "mlspace_gitops_notifications_total",
            &[
                ("sink", sink),
                ("event", "revision_applied"),
                ("result", "failed"),
            ],
        )
    };
    d.wait_until("webhook-1 failed", Duration::from_secs(20), || {
        failed("webhook-1") == 1.0
    });
    assert_eq!(failing.got().len(), 3, "three attempts");
    // The hanging one: three attempts of 5 s each and backoff.
    d.wait_until("webhook-2 failed", Duration::from_secs(40), || {
        failed("webhook-2") == 1.0
    });
    assert_eq!(hanging.got().len(), 3, "three attempts");
    // Meanwhile reconciles kept their 3 s resync.
    let done = successes(&d) - before;
    assert!(
        done >= 3.0,
        "{done} reconciles while receivers failed\n{}",
        d.log()
    );

    // The invalid revision is heard by the good one; leadership was filtered out.
    std::fs::write(manifests.join("bad.yaml"), "kind: [").unwrap();
    d.wait_until("revision_refused", Duration::from_secs(30), || {
        !good.of("revision_refused").is_empty()
    });
    let events: Vec<String> = good
        .notices()
        .iter()
        .map(|n| n["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["revision_applied", "revision_refused"]);
    assert_eq!(
        d.metric(
            "mlspace_gitops_notifications_total",
            &[("sink", "webhook-0"), ("result", "sent")]
        ),
        2.0
    );
    // The hanging receiver still holds the refusal: shutdown waits for it 5 s at most.
    let (took, status) = d.stop();
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
}

#[test]
fn sns_topic_gets_the_failed_reconcile() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let (topic, queue) = rt.block_on(async {
        let aws = moto.aws().await;
        let sns: aws_sdk_sns::Client = aws.client();
        let sqs: aws_sdk_sqs::Client = aws.client();
        let topic = sns
            .create_topic()
            .name("mlspace-gitops-notices")
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let queue = sqs
            .create_queue()
            .queue_name("notices")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(arn)
            .send()
            .await
            .unwrap();
        (topic, queue)
    });
    // The Environment names another account than the credentials': every run fails.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("env.yaml"), environment("210987654321")).unwrap();
    std::fs::write(dir.path().join("iam.yaml"), role("blue")).unwrap();
    let target = format!("sns://{topic}");
    let d = Daemon::start(
        &moto,
        dir.path().to_str().unwrap(),
        &["--notify", &target, "--notify-events", "reconcile_failed"],
    );
    let sqs: aws_sdk_sqs::Client = rt.block_on(moto.aws()).client();
    let mut got: Vec<Value> = Vec::new();
    d.wait_until(
        "an SNS message in the queue",
        Duration::from_secs(60),
        || {
            let msgs = rt.block_on(
                sqs.receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .send(),
            );
            for m in msgs.unwrap().messages() {
                got.push(serde_json::from_str(m.body().unwrap()).unwrap());
            }
            !got.is_empty()
        },
    );
    let envelope = &got[0];
    assert_eq!(envelope["TopicArn"], topic.as_str(), "{envelope:#}");
    let subject = envelope["Subject"].as_str().unwrap();
    assert!(
        subject.starts_with("mlspace-gitops: notify: reconcile failed"),
        "{subject}"
    );
    let notice: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(notice["event"], "reconcile_failed");
    assert_eq!(notice["environment"], "notify");
    assert!(
        details(&notice).iter().any(|l| l.contains("210987654321")),
        "{notice:#}"
    );
    // The same failure again is not sent again.
    std::thread::sleep(Duration::from_secs(5));
    let again = rt
        .block_on(sqs.receive_message().queue_url(&queue).send())
        .unwrap();
    assert!(again.messages().is_empty(), "{:?}", again.messages());
    assert_eq!(
        d.metric(
            "mlspace_gitops_notifications_total",
            &[
                ("sink", "sns-0"),
                ("event", "reconcile_failed"),
                ("result", "sent")
            ]
        ),
        1.0
    );
    d.terminate();
}

#[test]
fn bad_notify_flags_stop_the_start_naming_the_flag_not_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let run = |flags: &[&str]| {
        let out = crate::support::mlspace(&["run", "--source"])
            .arg(dir.path())
            .args(flags)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = run(&[
        "--notify",
        "https://hooks.slack.com/services/T0/B0/Xq7sEcReT",
    ]);
    assert!(e.contains("--notify #1: unknown scheme"), "{e}");
    assert!(!e.contains("Xq7sEcReT"), "{e}");
    let e = run(&["--notify", "webhook+https://example.com/Xq7sEcReT"]);
    assert!(e.contains("--notify-secret-file"), "{e}");
    assert!(!e.contains("Xq7sEcReT"), "{e}");
    let e = run(&[
        "--notify",
        "sns://arn:aws:sns:us-east-1:123456789012:t",
        "--notify-events",
        "drift",
    ]);
    assert!(e.contains("--notify-events: unknown event `drift`"), "{e}");
    // `run --help` does not show the URLs of the environment.
    let out = crate::support::mlspace(&["run", "--help"])
        .env(
            "MLSPACE_GITOPS_NOTIFY",
            "slack+https://hooks.slack.com/services/T0/B0/Xq7sEcReT",
        )
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("MLSPACE_GITOPS_NOTIFY"), "{help}");
    assert!(!help.contains("Xq7sEcReT"), "{help}");
}

#[test]
fn detect_mode_reports_drift_once_and_applies_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let hook = Receiver::start(&rt, Answer::Ok);
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("env.yaml"), environment("123456789012")).unwrap();
    std::fs::write(manifests.join("iam.yaml"), role("blue")).unwrap();
    let secret = secret_file(dir.path());
    let url = hook.url();
    let d = Daemon::start(
        &moto,
        manifests.to_str().unwrap(),
        &[
            "--mode",
            "detect",
            "--notify",
            &url,
            "--notify-secret-file",
            secret.to_str().unwrap(),
            "--notify-events",
            "revision_applied,drift_detected,drift_repaired",
        ],
    );
    d.wait_until("drift_detected", Duration::from_secs(60), || {
        !hook.of("drift_detected").is_empty()
    });
    let n = &hook.of("drift_detected")[0];
    assert_eq!(details(n), ["create Role notify-role"], "{n:#}");
    // Resyncs find the same drift: nothing more is said, and nothing is applied.
    let reconciles =
        |d: &Daemon| d.metric("mlspace_gitops_reconcile_total", &[("result", "success")]);
    let before = reconciles(&d);
    d.wait_until("two more resyncs", Duration::from_secs(20), || {
        reconciles(&d) >= before + 2.0
    });
    let events: Vec<String> = hook
        .notices()
        .iter()
        .map(|n| n["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["drift_detected"]);
    assert_eq!(role_tag(&rt, &moto), None, "detect mode wrote to AWS");
    d.terminate();
}
