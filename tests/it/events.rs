//! Events (issue 14) end to end: `mlspace-gitops run` against moto with Environments that
//! name SQS queues. Drift is made behind the daemon's back and the CloudTrail record of it
//! is sent to the queue as EventBridge delivers it; the daemon repairs (or in detect mode
//! reports) it within seconds while its resync is an hour away. Also: its own writes, 10,000
//! events about unmanaged resources, a poison message, an unreadable queue, several
//! Environments, and `deploy/events` deployed on moto's CloudFormation.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::daemon::Daemon;
use crate::support::iam::role_tags;
use crate::support::{mlspace, root, Clients as _, Moto};

pub(crate) const ACCOUNT: &str = "123456789012"; // moto's default account
const OTHER_ACCOUNT: &str = "111111111111";
/// Someone changing things behind the daemon's back.
pub(crate) const ADMIN: &str = "arn:aws:sts::123456789012:assumed-role/Admin/alice";

pub(crate) fn environment(name: &str, account: &str, queues: &[&str], extra: &str) -> String {
    let queues: Vec<String> = queues.iter().map(|q| format!("\"{q}\"")).collect();
    format!(
        "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {{name: {name}}}\nspec:\n  region: us-east-1\n  account: \"{account}\"\n  tags: {{system: MLSpace}}\n  events:\n    queues: [{}]\n{extra}",
        queues.join(", ")
    )
}

/// A policy, a role using it, a bucket, a table and a key, named with `prefix`. The policy
/// names the key by reference, as MLSpace's policies do: a targeted run of the role plans
/// the policy, so it reads the key too.
pub(crate) fn resources(prefix: &str) -> String {
    format!(
        "---\napiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: {prefix}-policy}}\nspec:\n  document: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: 'kms:Decrypt', Resource: '{{ref:KmsKey/{prefix}-key.arn}}'}}]}}\n\
---\napiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: {prefix}-role}}\nspec:\n  assumeRolePolicy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: 'sts:AssumeRole'}}]}}\n  managedPolicies: [{prefix}-policy]\n  tags: {{team: a}}\n\
---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {{name: {prefix}-data}}\nspec: {{versioning: true}}\n\
---\napiVersion: mlspace-gitops/v1\nkind: Table\nmetadata: {{name: {prefix}-table}}\nspec:\n  partitionKey: {{name: pk, type: S}}\n  pointInTimeRecovery: false\n  tags: {{team: a}}\n\
---\napiVersion: mlspace-gitops/v1\nkind: KmsKey\nmetadata: {{name: {prefix}-key}}\nspec: {{enableKeyRotation: true}}\n"
    )
}

/// The EventBridge envelope of a CloudTrail record of `event_name` made by `principal` in
/// `account`, as the rule's target puts it on the queue.
pub(crate) fn cloudtrail(
    source: &str,
    event_name: &str,
    params: Value,
    principal: &str,
    account: &str,
) -> String {
    json!({
        "version": "0",
        "id": format!("{:016x}", rand_id()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": source,
        "account": account,
        "time": "2026-12-01T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "arn": principal, "accountId": account},
            "eventTime": "2026-12-01T10:00:00Z",
            "eventSource": format!("{}.amazonaws.com", source.trim_start_matches("aws.")),
            "eventName": event_name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.10",
            "userAgent": "aws-cli/2.15.0",
            "requestParameters": params,
            "responseElements": null,
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management"
        }
    })
    .to_string()
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

// ---- Helpers local to this file; to move to the shared support module of tests/it/ ----

/// `mlspace-gitops run` on `manifests` against `moto`, with a resync of an hour unless
/// `extra` sets one.
fn start_daemon(moto: &Moto, manifests: &Path, extra: &[&str]) -> Daemon {
    let mut flags = vec!["--retry-base", "1s", "--grace-period", "5s"];
    if !extra.contains(&"--resync") {
        flags.extend(["--resync", "1h"]);
    }
    flags.extend(extra);
    Daemon::spawn(&moto.env(), manifests.to_str().unwrap(), None, &flags)
}

/// Wait for the first reconcile and for the listeners of every named Environment (their
/// event series appear when they start).
fn wait_listening(d: &Daemon, environments: &[&str]) {
    d.wait_until("the first reconcile", Duration::from_secs(60), || {
        d.status()["reconciles"].as_u64().unwrap_or(0) >= 1
    });
    for e in environments {
        let series = format!("mlspace_gitops_events_received_total{{environment=\"{e}\"");
        d.wait_until(
            &format!("the listeners of {e}"),
            Duration::from_secs(30),
            || d.get("/metrics").1.contains(&series),
        );
    }
}

/// Requests the daemon made to `service` (the SDK's name: `IAM`, `S3`) so far.
fn requests(d: &Daemon, service: &str) -> f64 {
    d.metric("mlspace_gitops_aws_requests_total", &[("service", service)])
}

pub(crate) fn sqs(aws: &mlspace_gitops::aws::AwsContext) -> aws_sdk_sqs::Client {
    aws.client()
}

/// A queue with a dead-letter queue after `max_receives` receives; (queue URL, DLQ URL).
pub(crate) async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility: u32,
    max_receives: u32,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&A::QueueArn]
        .clone();
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(A::VisibilityTimeout, visibility.to_string())
        .attributes(
            A::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (url, dlq)
}

pub(crate) async fn send(sqs: &aws_sdk_sqs::Client, url: &str, body: &str) {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

/// Messages in a queue, visible and in flight.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let a = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|k| a.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
    .sum()
}

pub(crate) fn write_manifests(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("manifests.yaml"), text).unwrap();
}

// ---- Tests ----

async fn attached(iam: &aws_sdk_iam::Client, role: &str) -> Vec<String> {
    iam.list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .attached_policies
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.policy_name)
        .collect()
}

/// Whether the bucket's versioning is enabled (moto's answer read as the daemon reads it).
async fn versioning_enabled(s3: &aws_sdk_s3::Client, bucket: &str) -> bool {
    match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(o) => o.status == Some(aws_sdk_s3::types::BucketVersioningStatus::Enabled),
        Err(e) => mlspace_gitops::aws::emulator::versioning_answer(&e) == Some(Some(true)),
    }
}

/// Repeat `check` until it holds: the time it took, at most `within`.
async fn repaired_within(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what} not repaired within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn drift_and_its_event_are_repaired_within_two_seconds_while_the_resync_is_an_hour_away() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.aws());
    let (iam, s3, ddb, kms, q) = (aws.iam(), aws.s3(), aws.dynamodb(), aws.kms(), sqs(&aws));
    let (url, _) = rt.block_on(queue_with_dlq(&q, "mlspace-gitops-events", 30, 5));
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!(
            "{}{}",
            environment("dev", ACCOUNT, &[&url], ""),
            resources("ev")
        ),
    );
    let d = start_daemon(&moto, dir.path(), &[]);
    wait_listening(&d, &["dev"]);
    let whole_runs = d.metric("mlspace_gitops_reconcile_total", &[]);
    let me = rt.block_on(async {
        aws.sts()
            .get_caller_identity()
            .send()
            .await
            .unwrap()
            .arn
            .unwrap()
    });

    let mut took = Vec::new();
    rt.block_on(async {
        // A role's tag removed.
        iam.untag_role().role_name("ev-role").tag_keys("team").send().await.unwrap();
        send(&q, &url, &cloudtrail("aws.iam", "UntagRole", json!({"roleName": "ev-role", "tagKeys": ["team"]}), ADMIN, ACCOUNT)).await;
        took.push(repaired_within("the role's tag", Duration::from_secs(2), async || {
            role_tags(&iam, "ev-role").await.contains(&("team".into(), "a".into()))
        }).await);

        // Its policy detached: the event names both sides.
        let policy_arn = format!("arn:aws:iam::{ACCOUNT}:policy/ev-policy");
        iam.detach_role_policy().role_name("ev-role").policy_arn(&policy_arn).send().await.unwrap();
        send(&q, &url, &cloudtrail("aws.iam", "DetachRolePolicy", json!({"roleName": "ev-role", "policyArn": policy_arn}), ADMIN, ACCOUNT)).await;
        took.push(repaired_within("the attachment", Duration::from_secs(2), async || {
            attached(&iam, "ev-role").await == ["ev-policy"]
        }).await);

        // Versioning suspended on the bucket.
        s3.put_bucket_versioning()
            .bucket("ev-data")
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        send(&q, &url, &cloudtrail("aws.s3", "PutBucketVersioning", json!({"bucketName": "ev-data", "Host": "ev-data.s3.us-east-1.amazonaws.com", "versioning": ""}), ADMIN, ACCOUNT)).await;
        took.push(repaired_within("bucket versioning", Duration::from_secs(2), async || {
            versioning_enabled(&s3, "ev-data").await
        }).await);

        // A table's tag removed: the event names the table by ARN.
        let table_arn = format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ev-table");
        ddb.untag_resource().resource_arn(&table_arn).tag_keys("team").send().await.unwrap();
        send(&q, &url, &cloudtrail("aws.dynamodb", "UntagResource", json!({"resourceArn": table_arn, "tagKeys": ["team"]}), ADMIN, ACCOUNT)).await;
        took.push(repaired_within("the table's tag", Duration::from_secs(2), async || {
            ddb.list_tags_of_resource().resource_arn(&table_arn).send().await.unwrap().tags.unwrap_or_default()
                .iter().any(|t| t.key == "team" && t.value == "a")
        }).await);

        // The key's rotation turned off: the event names the key by the id KMS gave it.
        let key_id = kms.describe_key().key_id("alias/ev-key").send().await.unwrap().key_metadata.unwrap().key_id;
        kms.disable_key_rotation().key_id(&key_id).send().await.unwrap();
        send(&q, &url, &cloudtrail("aws.kms", "DisableKeyRotation", json!({"keyId": key_id}), ADMIN, ACCOUNT)).await;
        took.push(repaired_within("key rotation", Duration::from_secs(2), async || {
            kms.get_key_rotation_status().key_id(&key_id).send().await.unwrap().key_rotation_enabled
        }).await);
    });
    eprintln!("event to repair, seen from outside: {took:?}");
    d.wait_until("five repairs measured", Duration::from_secs(5), || {
        d.metric(
            "mlspace_gitops_event_to_repair_seconds_count",
            &[("result", "repaired")],
        ) == 5.0
    });
    for source in ["aws.iam", "aws.s3", "aws.dynamodb", "aws.kms"] {
        assert!(
            d.metric("mlspace_gitops_events_acted_total", &[("source", source)]) >= 1.0,
            "{source}"
        );
    }
    // No resync ran: the events alone repaired it.
    assert_eq!(d.metric("mlspace_gitops_reconcile_total", &[]), whole_runs);

    // A burst about one role, sent ten at a time: one reconcile for each ten at most (the
    // events of one receive make one), usually one for all; every message deleted.
    let reconciles = d.metric("mlspace_gitops_event_reconciles_total", &[]);
    rt.block_on(async {
        iam.untag_role()
            .role_name("ev-role")
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        let event = cloudtrail(
            "aws.iam",
            "UntagRole",
            json!({"roleName": "ev-role", "tagKeys": ["team"]}),
            ADMIN,
            ACCOUNT,
        );
        for _ in 0..3 {
            let entries = (0..10)
                .map(|i| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&event)
                        .build()
                        .unwrap()
                })
                .collect();
            q.send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
        }
        repaired_within(
            "the role's tag after a burst",
            Duration::from_secs(5),
            async || {
                role_tags(&iam, "ev-role")
                    .await
                    .contains(&("team".into(), "a".into()))
            },
        )
        .await;
    });
    d.wait_until(
        "the burst handled and deleted",
        Duration::from_secs(10),
        || {
            rt.block_on(depth(&q, &url)) == 0
                && d.metric(
                    "mlspace_gitops_events_acted_total",
                    &[("source", "aws.iam")],
                ) >= 32.0
        },
    );
    let burst = d.metric("mlspace_gitops_event_reconciles_total", &[]) - reconciles;
    assert!(
        (1.0..=3.0).contains(&burst),
        "30 events made {burst} reconciles"
    );

    // The daemon's own writes come back as events about managed resources: ignored, no
    // request to IAM, no reconcile.
    let (iam_before, runs_before) = (
        requests(&d, "IAM"),
        d.metric("mlspace_gitops_event_reconciles_total", &[]),
    );
    rt.block_on(async {
        for event in ["TagRole", "AttachRolePolicy", "UpdateAssumeRolePolicy"] {
            send(&q, &url, &cloudtrail("aws.iam", event, json!({"roleName": "ev-role", "policyArn": format!("arn:aws:iam::{ACCOUNT}:policy/ev-policy")}), &me, ACCOUNT)).await;
        }
    });
    d.wait_until("its own events ignored", Duration::from_secs(10), || {
        d.metric(
            "mlspace_gitops_events_ignored_total",
            &[("reason", "own_principal")],
        ) >= 3.0
    });
    assert_eq!(rt.block_on(depth(&q, &url)), 0);
    assert_eq!(requests(&d, "IAM"), iam_before);
    assert_eq!(
        d.metric("mlspace_gitops_event_reconciles_total", &[]),
        runs_before
    );
}

/// `n` events of every source about resources the manifests do not name, some of them reads
/// and failed calls.
fn unmanaged_events(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let (source, event, params) = match i % 4 {
                0 => (
                    "aws.iam",
                    "PutRolePolicy",
                    json!({"roleName": format!("other-role-{i}"), "policyName": "inline"}),
                ),
                1 => (
                    "aws.s3",
                    "PutBucketPolicy",
                    json!({"bucketName": format!("other-bucket-{i}")}),
                ),
                2 => (
                    "aws.dynamodb",
                    "UpdateTable",
                    json!({"tableName": format!("other-table-{i}")}),
                ),
                _ => (
                    "aws.kms",
                    "DisableKey",
                    json!({"keyId": format!("{i:08x}-0000-0000-0000-000000000000")}),
                ),
            };
            let mut e: Value =
                serde_json::from_str(&cloudtrail(source, event, params, ADMIN, ACCOUNT)).unwrap();
            match i % 10 {
                7 => e["detail"]["readOnly"] = json!(true),
                8 => e["detail"]["errorCode"] = json!("AccessDenied"),
                _ => {}
            }
            e.to_string()
        })
        .collect()
}

#[test]
fn ten_thousand_events_about_unmanaged_resources_cost_no_read_of_iam_s3_dynamodb_or_kms() {
    const N: usize = 10_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.aws());
    let q = sqs(&aws);
    let (url, _) = rt.block_on(queue_with_dlq(&q, "mlspace-gitops-events", 30, 5));
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!(
            "{}{}",
            environment("dev", ACCOUNT, &[&url], ""),
            resources("ev")
        ),
    );
    let d = start_daemon(&moto, dir.path(), &[]);
    wait_listening(&d, &["dev"]);
    let services = ["IAM", "S3", "DynamoDB", "KMS", "STS"];
    let before: Vec<f64> = services.iter().map(|s| requests(&d, s)).collect();
    assert!(
        before[0] > 0.0 && before[1] > 0.0,
        "the first reconcile read IAM and S3"
    );
    let events = unmanaged_events(N);
    rt.block_on(async {
        for (i, chunk) in events.chunks(10).enumerate() {
            // moto's queue costs time in proportion to its depth at every request: keep it
            // shallow, as a live queue read by the daemon is.
            while i % 10 == 0 && depth(&q, &url).await > 200 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .unwrap()
                })
                .collect();
            let out = q
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
            assert!(out.failed.is_empty());
        }
    });
    d.wait_until("every event read", Duration::from_secs(300), || {
        d.metric(
            "mlspace_gitops_events_received_total",
            &[("environment", "dev")],
        ) >= N as f64
    });
    d.wait_until("every message deleted", Duration::from_secs(30), || {
        rt.block_on(depth(&q, &url)) == 0
    });
    let after: Vec<f64> = services.iter().map(|s| requests(&d, s)).collect();
    assert_eq!(after, before, "requests to {services:?}\n{}", d.log());
    assert_eq!(
        d.metric("mlspace_gitops_events_received_total", &[]),
        N as f64
    );
    assert_eq!(d.metric("mlspace_gitops_events_acted_total", &[]), 0.0);
    assert_eq!(d.metric("mlspace_gitops_event_reconciles_total", &[]), 0.0);
    let ignored = |reason| d.metric("mlspace_gitops_events_ignored_total", &[("reason", reason)]);
    assert_eq!(ignored("read_only"), (N / 10) as f64);
    assert_eq!(ignored("failed_call"), (N / 10) as f64);
    assert_eq!(ignored("unmanaged"), (N - N / 5) as f64);
    for source in ["aws.iam", "aws.s3", "aws.dynamodb", "aws.kms"] {
        assert_eq!(
            d.metric(
                "mlspace_gitops_events_received_total",
                &[("source", source)]
            ),
            (N / 4) as f64,
            "{source}"
        );
    }
    // Reading them cost SQS requests only: about two per ten events.
    let sqs_requests = requests(&d, "SQS");
    assert!(
        sqs_requests < (N / 4) as f64,
        "{sqs_requests} SQS requests for {N} events"
    );
}

#[test]
fn a_message_that_is_no_event_is_counted_and_reaches_the_dead_letter_queue() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.aws());
    let q = sqs(&aws);
    // Visible again one second after each receive; dead-lettered after two receives.
    let (url, dlq) = rt.block_on(queue_with_dlq(&q, "mlspace-gitops-events", 1, 2));
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!(
            "{}{}",
            environment("dev", ACCOUNT, &[&url], ""),
            resources("ev")
        ),
    );
    let d = start_daemon(&moto, dir.path(), &[]);
    wait_listening(&d, &["dev"]);
    rt.block_on(async {
        send(&q, &url, "this is not JSON").await;
        send(&q, &url, r#"{"detail-type": "AWS API Call via CloudTrail", "source": "aws.iam", "detail": {"requestParameters": {}}}"#).await;
    });
    d.wait_until(
        "both messages in the dead-letter queue",
        Duration::from_secs(30),
        || rt.block_on(depth(&q, &dlq)) == 2,
    );
    assert_eq!(rt.block_on(depth(&q, &url)), 0);
    // Each was received (and counted) twice, then moved by the queue's redrive policy.
    assert_eq!(
        d.metric(
            "mlspace_gitops_events_unparsable_total",
            &[("environment", "dev")]
        ),
        4.0
    );
    assert_eq!(d.metric("mlspace_gitops_events_received_total", &[]), 0.0);
    assert!(
        d.log().contains("left for the queue's redrive policy"),
        "{}",
        d.log()
    );
    assert!(
        !d.log().contains("this is not JSON"),
        "a message's body is not logged"
    );
    // A readable event after them is handled as usual.
    let iam = aws.iam();
    rt.block_on(async {
        iam.untag_role()
            .role_name("ev-role")
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        send(
            &q,
            &url,
            &cloudtrail(
                "aws.iam",
                "UntagRole",
                json!({"roleName": "ev-role", "tagKeys": ["team"]}),
                ADMIN,
                ACCOUNT,
            ),
        )
        .await;
        repaired_within("the role's tag", Duration::from_secs(5), async || {
            role_tags(&iam, "ev-role")
                .await
                .contains(&("team".into(), "a".into()))
        })
        .await;
    });
}

#[test]
fn an_unreadable_queue_shows_in_readyz_and_its_gauge_while_the_resync_repairs_drift() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.aws());
    let (iam, q) = (aws.iam(), sqs(&aws));
    let url = format!("{}/{ACCOUNT}/mlspace-gitops-events", moto.endpoint);
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!(
            "{}{}",
            environment("dev", ACCOUNT, &[&url], ""),
            resources("ev")
        ),
    );
    let d = start_daemon(&moto, dir.path(), &["--resync", "2s"]);
    d.wait_until("the first reconcile", Duration::from_secs(60), || {
        d.status()["reconciles"].as_u64().unwrap_or(0) >= 1
    });
    d.wait_until("the queue's gauge at 0", Duration::from_secs(20), || {
        d.get("/metrics").1.contains(&format!(
            "mlspace_gitops_event_queue_readable{{environment=\"dev\",queue=\"{url}\"}} 0"
        ))
    });
    let (code, why) = d.get("/readyz");
    assert_eq!(code, 503, "{why}");
    assert!(
        why.contains(&format!("event queue {url} of Environment dev")),
        "{why}"
    );
    assert!(
        why.contains("QueueDoesNotExist") || why.contains("NonExistentQueue"),
        "{why}"
    );

    // The resync goes on and repairs drift no event announced.
    let runs = d.metric("mlspace_gitops_reconcile_total", &[]);
    rt.block_on(async {
        iam.untag_role()
            .role_name("ev-role")
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        repaired_within(
            "the role's tag, by the resync",
            Duration::from_secs(15),
            async || {
                role_tags(&iam, "ev-role")
                    .await
                    .contains(&("team".into(), "a".into()))
            },
        )
        .await;
    });
    d.wait_until("the resync counted", Duration::from_secs(10), || {
        d.metric("mlspace_gitops_reconcile_total", &[]) > runs
    });

    // Once the queue exists it is read, and readiness comes back.
    rt.block_on(queue_with_dlq(&q, "mlspace-gitops-events", 30, 5));
    d.wait_until("the queue read", Duration::from_secs(90), || {
        d.metric(
            "mlspace_gitops_event_queue_readable",
            &[("environment", "dev")],
        ) == 1.0
    });
    d.wait_until("ready", Duration::from_secs(10), || {
        d.get("/readyz").0 == 200
    });
}

/// A suspended Environment's events are dropped (their messages deleted, nothing written);
/// resuming it repairs the drift they announced.
#[test]
fn a_suspended_environment_drops_its_events_and_resume_repairs() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.aws());
    let (iam, q) = (aws.iam(), sqs(&aws));
    let (url, _) = rt.block_on(queue_with_dlq(&q, "mlspace-gitops-events", 30, 5));
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!(
            "{}{}",
            environment("dev", ACCOUNT, &[&url], ""),
            resources("ev")
        ),
    );
    let token = dir.path().join("control-token");
    std::fs::write(&token, "events-control-token").unwrap();
    let d = start_daemon(
        &moto,
        dir.path(),
        &["--control-token-file", token.to_str().unwrap()],
    );
    wait_listening(&d, &["dev"]);
    let ctl = |args: &[&str]| {
        let o = mlspace(args)
            .args(["--daemon", &format!("http://127.0.0.1:{}", d.port)])
            .arg("--token-file")
            .arg(&token)
            .env_remove("MLSPACE_GITOPS_DAEMON")
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
    };
    ctl(&["suspend", "dev", "--reason", "events test"]);

    rt.block_on(async {
        iam.untag_role()
            .role_name("ev-role")
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        send(
            &q,
            &url,
            &cloudtrail(
                "aws.iam",
                "UntagRole",
                json!({"roleName": "ev-role", "tagKeys": ["team"]}),
                ADMIN,
                ACCOUNT,
            ),
        )
        .await;
    });
    d.wait_until("the event dropped", Duration::from_secs(20), || {
        d.log()
            .contains("events ignored: the environment is suspended")
    });
    d.wait_until("its message deleted", Duration::from_secs(10), || {
        rt.block_on(depth(&q, &url)) == 0
    });
    let tags = rt.block_on(role_tags(&iam, "ev-role"));
    assert!(
        !tags.iter().any(|(k, _)| k == "team"),
        "a suspended Environment was written: {tags:?}"
    );
    assert_eq!(
        d.metric(
            "mlspace_gitops_event_reconciles_total",
            &[("environment", "dev")]
        ),
        0.0
    );

    ctl(&["resume", "dev"]);
    d.wait_until("resume repairs", Duration::from_secs(20), || {
        rt.block_on(role_tags(&iam, "ev-role"))
            .contains(&("team".into(), "a".into()))
    });
    assert!(d.terminate().success());
}

#[test]
fn detect_mode_reports_the_drift_an_event_announces_without_writing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.aws());
    let (iam, q) = (aws.iam(), sqs(&aws));
    let (url, _) = rt.block_on(queue_with_dlq(&q, "mlspace-gitops-events", 30, 5));
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!(
            "{}{}",
            environment("dev", ACCOUNT, &[&url], ""),
            resources("ev")
        ),
    );
    // The resources made once by the CLI; the daemon only watches.
    let state = tempfile::tempdir().unwrap();
    let out = mlspace(&["apply", "--auto-approve", "-m"])
        .arg(dir.path())
        .arg("--state-dir")
        .arg(state.path())
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = start_daemon(&moto, dir.path(), &["--mode", "detect"]);
    wait_listening(&d, &["dev"]);
    let in_sync = |d: &Daemon| {
        d.status()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "ev-role")
            .map(|r| r["state"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(in_sync(&d).as_deref(), Some("in_sync"));
    rt.block_on(async {
        iam.untag_role()
            .role_name("ev-role")
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        send(
            &q,
            &url,
            &cloudtrail(
                "aws.iam",
                "UntagRole",
                json!({"roleName": "ev-role", "tagKeys": ["team"]}),
                ADMIN,
                ACCOUNT,
            ),
        )
        .await;
    });
    let took = d.wait_until("the drift reported", Duration::from_secs(2), || {
        in_sync(&d).as_deref() == Some("drifted")
    });
    eprintln!("event to report: {took:?}");
    assert_eq!(
        d.metric(
            "mlspace_gitops_event_to_repair_seconds_count",
            &[("result", "reported")]
        ),
        1.0
    );
    assert!(!rt
        .block_on(role_tags(&iam, "ev-role"))
        .contains(&("team".into(), "a".into())));
    let writes: f64 = [
        "TagRole",
        "UntagRole",
        "AttachRolePolicy",
        "UpdateAssumeRolePolicy",
    ]
    .iter()
    .map(|op| d.metric("mlspace_gitops_aws_requests_total", &[("operation", op)]))
    .sum();
    assert_eq!(writes, 0.0);
    assert!(requests(&d, "IAM") > 0.0, "IAM was read");
}

/// Clients of moto's account `account`, reached by assuming a role there.
async fn aws_in(moto: &Moto, account: &str) -> mlspace_gitops::aws::AwsContext {
    let c = moto
        .aws()
        .await
        .sts()
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/mlspace-gitops"))
        .role_session_name("test")
        .send()
        .await
        .unwrap();
    let c = c.credentials().unwrap();
    let creds = aws_sdk_iam::config::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "assumed",
    );
    let conf = crate::support::moto::sdk_config(&moto.endpoint, creds)
        .load()
        .await;
    mlspace_gitops::aws::AwsContext::from_sdk_config(&conf)
}

#[test]
fn several_environments_each_read_their_own_queue() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let dev = rt.block_on(moto.aws());
    let prod = rt.block_on(aws_in(&moto, OTHER_ACCOUNT));
    let (dev_url, _) = rt.block_on(queue_with_dlq(&sqs(&dev), "mlspace-gitops-events", 30, 5));
    let (prod_url, _) = rt.block_on(queue_with_dlq(&sqs(&prod), "mlspace-gitops-events", 30, 5));
    assert!(prod_url.contains(OTHER_ACCOUNT), "{prod_url}");
    let root = tempfile::tempdir().unwrap();
    write_manifests(
        &root.path().join("dev"),
        &format!(
            "{}{}",
            environment("dev", ACCOUNT, &[&dev_url], ""),
            resources("dev")
        ),
    );
    write_manifests(
        &root.path().join("prod"),
        &format!(
            "{}{}",
            environment(
                "prod",
                OTHER_ACCOUNT,
                &[&prod_url.replace(OTHER_ACCOUNT, "{AWS_ACCOUNT}")],
                "  assumeRoleArn: \"arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/mlspace-gitops\"\n"
            ),
            resources("prod")
        ),
    );
    let d = start_daemon(&moto, root.path(), &[]);
    wait_listening(&d, &["dev", "prod"]);
    let (dev_iam, prod_iam) = (dev.iam(), prod.iam());
    let admin_prod = ADMIN.replace(ACCOUNT, OTHER_ACCOUNT);
    rt.block_on(async {
        // Drift in each account, each event on its own account's queue.
        prod_iam
            .untag_role()
            .role_name("prod-role")
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        send(
            &sqs(&prod),
            &prod_url,
            &cloudtrail(
                "aws.iam",
                "UntagRole",
                json!({"roleName": "prod-role", "tagKeys": ["team"]}),
                &admin_prod,
                OTHER_ACCOUNT,
            ),
        )
        .await;
        repaired_within("prod's role", Duration::from_secs(2), async || {
            role_tags(&prod_iam, "prod-role")
                .await
                .contains(&("team".into(), "a".into()))
        })
        .await;
        dev_iam
            .untag_role()
            .role_name("dev-role")
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        send(
            &sqs(&dev),
            &dev_url,
            &cloudtrail(
                "aws.iam",
                "UntagRole",
                json!({"roleName": "dev-role", "tagKeys": ["team"]}),
                ADMIN,
                ACCOUNT,
            ),
        )
        .await;
        repaired_within("dev's role", Duration::from_secs(2), async || {
            role_tags(&dev_iam, "dev-role")
                .await
                .contains(&("team".into(), "a".into()))
        })
        .await;
        // prod's event on dev's queue is about another account there.
        send(
            &sqs(&dev),
            &dev_url,
            &cloudtrail(
                "aws.iam",
                "UntagRole",
                json!({"roleName": "prod-role", "tagKeys": ["team"]}),
                &admin_prod,
                OTHER_ACCOUNT,
            ),
        )
        .await;
    });
    d.wait_until(
        "prod's event on dev's queue ignored",
        Duration::from_secs(5),
        || {
            d.metric(
                "mlspace_gitops_events_ignored_total",
                &[("environment", "dev"), ("reason", "other_account")],
            ) == 1.0
        },
    );
    for env in ["dev", "prod"] {
        assert_eq!(
            d.metric("mlspace_gitops_events_acted_total", &[("environment", env)]),
            1.0,
            "{env}"
        );
        assert_eq!(
            d.metric(
                "mlspace_gitops_event_reconciles_total",
                &[("environment", env), ("result", "success")]
            ),
            1.0,
            "{env}"
        );
    }
    assert_eq!(
        d.metric(
            "mlspace_gitops_events_received_total",
            &[("environment", "prod")]
        ),
        1.0
    );
}

// ---- deploy/events ----

const TEMPLATE: &str = "deploy/events/mlspace-gitops-events.yaml";

/// The template, as YAML (it uses the long form of CloudFormation's functions).
fn template() -> Value {
    let path = root().join(TEMPLATE);
    let file: std::sync::Arc<Path> = std::sync::Arc::from(path.as_path());
    let text = std::fs::read_to_string(&path).unwrap();
    let mut docs = mlspace_gitops::manifest::yaml::parse_documents(&file, &text).unwrap();
    assert_eq!(docs.len(), 1);
    docs.remove(0).value
}

/// The pattern a rule for `source` must have: exactly the event names the daemon lists.
fn expected_pattern(source: mlspace_gitops::events::Source) -> Value {
    let mut names: Vec<&str> = mlspace_gitops::events::event_names(source).to_vec();
    names.sort();
    json!({
        "source": [source.as_str()],
        "detail-type": [mlspace_gitops::events::DETAIL_TYPE],
        "detail": {"eventSource": [source.event_source()], "eventName": names}
    })
}

fn sorted_names(mut pattern: Value) -> Value {
    if let Some(names) = pattern["detail"]["eventName"].as_array_mut() {
        names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    pattern
}

/// The queue policy of the template (moto's CloudFormation does not make
/// AWS::SQS::QueuePolicy resources, so it is checked as written): EventBridge may send when
/// the source is one of the four rules, everyone else is denied sending, and only TLS.
#[test]
fn the_template_lets_only_its_rules_send() {
    let t = template();
    let p = &t["Resources"]["QueuePolicy"];
    assert_eq!(p["Type"], "AWS::SQS::QueuePolicy");
    assert_eq!(p["Properties"]["Queues"], json!([{"Ref": "Queue"}]));
    let statements = p["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let rules = json!([
        {"Fn::If": ["ReceivesIamEvents", {"Fn::GetAtt": ["IamRule", "Arn"]}, {"Ref": "AWS::NoValue"}]},
        {"Fn::GetAtt": ["S3Rule", "Arn"]},
        {"Fn::GetAtt": ["DynamoDbRule", "Arn"]},
        {"Fn::GetAtt": ["KmsRule", "Arn"]}
    ]);
    let queue = json!({"Fn::GetAtt": ["Queue", "Arn"]});
    let allow: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .collect();
    assert_eq!(allow.len(), 1, "one Allow: {allow:?}");
    assert_eq!(
        allow[0]["Principal"],
        json!({"Service": "events.amazonaws.com"})
    );
    assert_eq!(allow[0]["Action"], "sqs:SendMessage");
    assert_eq!(allow[0]["Resource"], queue);
    assert_eq!(
        allow[0]["Condition"],
        json!({"ArnEquals": {"aws:SourceArn": rules}})
    );
    let deny_others = statements
        .iter()
        .find(|s| s["Effect"] == "Deny" && s["Action"] == "sqs:SendMessage")
        .expect("a Deny of every other sender");
    assert_eq!(deny_others["Principal"], "*");
    assert_eq!(
        deny_others["Condition"],
        json!({"ArnNotEquals": {"aws:SourceArn": rules}})
    );
    let tls = statements
        .iter()
        .find(|s| s["Effect"] == "Deny" && s["Action"] == "sqs:*")
        .expect("a Deny without TLS");
    assert_eq!(
        tls["Condition"],
        json!({"Bool": {"aws:SecureTransport": "false"}})
    );
    // Every rule of the template is one the policy names, and targets the queue.
    let resources = t["Resources"].as_object().unwrap();
    let rule_ids: Vec<&String> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Events::Rule")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(rule_ids, ["IamRule", "S3Rule", "DynamoDbRule", "KmsRule"]);
    for id in rule_ids {
        assert!(rules.to_string().contains(&format!("\"{id}\"")), "{id}");
        assert_eq!(
            resources[id]["Properties"]["Targets"],
            json!([{"Id": "queue", "Arn": queue}])
        );
    }
    // The daemon may read and delete from the queue of the template's default name, in any
    // region of its account, and nothing else of SQS.
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/iam/policies/mlspace-gitops-data.json"))
            .unwrap(),
    )
    .unwrap();
    let sqs: Vec<&Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"].to_string().contains("sqs:"))
        .collect();
    assert_eq!(sqs.len(), 1);
    assert_eq!(
        sqs[0]["Action"],
        json!(["sqs:DeleteMessage", "sqs:ReceiveMessage"])
    );
    assert_eq!(
        sqs[0]["Resource"],
        "arn:{AWS_PARTITION}:sqs:*:{AWS_ACCOUNT}:{EVENTS_QUEUE}"
    );
    let env = std::fs::read_to_string(root().join("deploy/iam/environment.yaml")).unwrap();
    let default = t["Parameters"]["QueueName"]["Default"].as_str().unwrap();
    assert!(
        env.contains(&format!("EVENTS_QUEUE: {default}\n")),
        "deploy/iam names the template's queue"
    );
}

#[test]
fn the_template_deployed_on_moto_routes_cloudtrail_events_to_the_daemon() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.aws());
    let body = std::fs::read_to_string(root().join(TEMPLATE)).unwrap();
    let in_region = |region: &str| aws.in_region(region);
    // One stack in us-east-1 (with IAM's rule), one in eu-west-1 (without).
    let (queue_url, dlq_url) = rt.block_on(async {
        let mut urls = (String::new(), String::new());
        for region in ["us-east-1", "eu-west-1"] {
            let cf = aws_sdk_cloudformation::Client::new(in_region(region).sdk_config());
            cf.create_stack()
                .stack_name("mlspace-gitops-events")
                .template_body(&body)
                .send()
                .await
                .unwrap();
            let stack = cf
                .describe_stacks()
                .stack_name("mlspace-gitops-events")
                .send()
                .await
                .unwrap()
                .stacks
                .unwrap()
                .remove(0);
            assert_eq!(
                stack.stack_status,
                Some(aws_sdk_cloudformation::types::StackStatus::CreateComplete),
                "{stack:?}"
            );
            let output = |key: &str| {
                stack
                    .outputs()
                    .iter()
                    .find(|o| o.output_key() == Some(key))
                    .and_then(|o| o.output_value())
                    .unwrap_or_else(|| panic!("output {key}"))
                    .to_string()
            };
            if region == "us-east-1" {
                urls = (output("QueueUrl"), output("DeadLetterQueueUrl"));
            }
            let eb = aws_sdk_eventbridge::Client::new(in_region(region).sdk_config());
            let rules = eb
                .list_rules()
                .name_prefix("mlspace-gitops-events")
                .send()
                .await
                .unwrap()
                .rules
                .unwrap_or_default();
            let mut found = Vec::new();
            for rule in rules {
                let name = rule.name.clone().unwrap();
                let pattern: Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
                let source = mlspace_gitops::events::Source::from_envelope(
                    pattern["source"][0].as_str().unwrap(),
                )
                .unwrap();
                assert_eq!(sorted_names(pattern), expected_pattern(source), "{name}");
                assert_eq!(
                    rule.state,
                    Some(aws_sdk_eventbridge::types::RuleState::Enabled)
                );
                let targets = eb
                    .list_targets_by_rule()
                    .rule(&name)
                    .send()
                    .await
                    .unwrap()
                    .targets
                    .unwrap_or_default();
                assert_eq!(targets.len(), 1);
                assert_eq!(
                    targets[0].arn(),
                    format!("arn:aws:sqs:{region}:{ACCOUNT}:mlspace-gitops-events")
                );
                found.push(source);
            }
            found.sort();
            use mlspace_gitops::events::Source as S;
            let want: &[S] = if region == "us-east-1" {
                &[S::Iam, S::S3, S::DynamoDb, S::Kms]
            } else {
                &[S::S3, S::DynamoDb, S::Kms]
            };
            assert_eq!(found, want, "{region}");
        }
        urls
    });
    // The queue: encrypted, long polling, dead-lettered after five receives.
    let q = sqs(&aws);
    let attributes = rt.block_on(async {
        q.get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()
    });
    use aws_sdk_sqs::types::QueueAttributeName as A;
    assert_eq!(attributes[&A::SqsManagedSseEnabled], "true");
    assert_eq!(attributes[&A::ReceiveMessageWaitTimeSeconds], "20");
    assert_eq!(attributes[&A::VisibilityTimeout], "300");
    let redrive: Value = serde_json::from_str(&attributes[&A::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive,
        json!({"deadLetterTargetArn": format!("arn:aws:sqs:us-east-1:{ACCOUNT}:mlspace-gitops-events-dlq"), "maxReceiveCount": 5})
    );
    let dlq_sse = rt.block_on(async {
        q.get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(A::SqsManagedSseEnabled)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()
    });
    assert_eq!(dlq_sse[&A::SqsManagedSseEnabled], "true");

    // The daemon on the stack's queue (its URL as AWS gives it), events put on the default
    // event bus as CloudTrail does.
    assert!(
        queue_url.starts_with("https://sqs.us-east-1.amazonaws.com/"),
        "{queue_url}"
    );
    let dir = tempfile::tempdir().unwrap();
    write_manifests(
        dir.path(),
        &format!(
            "{}{}",
            environment(
                "dev",
                ACCOUNT,
                &[&queue_url.replace(ACCOUNT, "{AWS_ACCOUNT}")],
                ""
            ),
            resources("ev")
        ),
    );
    let d = start_daemon(&moto, dir.path(), &[]);
    wait_listening(&d, &["dev"]);
    let eb = aws_sdk_eventbridge::Client::new(aws.sdk_config());
    let put = |event: &str, params: Value| {
        let envelope: Value =
            serde_json::from_str(&cloudtrail("aws.iam", event, params, ADMIN, ACCOUNT)).unwrap();
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.iam")
            .detail_type(mlspace_gitops::events::DETAIL_TYPE)
            .detail(envelope["detail"].to_string())
            .build();
        async {
            let out = eb.put_events().entries(entry).send().await.unwrap();
            assert_eq!(out.failed_entry_count, 0);
        }
    };
    let iam = aws.iam();
    rt.block_on(async {
        // A read matches no rule: nothing reaches the queue.
        put("GetRole", json!({"roleName": "ev-role"})).await;
        iam.untag_role()
            .role_name("ev-role")
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        put(
            "UntagRole",
            json!({"roleName": "ev-role", "tagKeys": ["team"]}),
        )
        .await;
        repaired_within(
            "the role's tag, through EventBridge",
            Duration::from_secs(2),
            async || {
                role_tags(&iam, "ev-role")
                    .await
                    .contains(&("team".into(), "a".into()))
            },
        )
        .await;
    });
    d.wait_until("the event counted", Duration::from_secs(5), || {
        d.metric(
            "mlspace_gitops_events_acted_total",
            &[("source", "aws.iam")],
        ) == 1.0
    });
    assert_eq!(
        d.metric("mlspace_gitops_events_received_total", &[]),
        1.0,
        "the read was not routed"
    );
}
