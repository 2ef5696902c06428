//! Reliability end to end: the CLI against moto through the fault-injecting proxy
//! (`tests/it/support/fault_proxy.rs`). Figures printed here are recorded in docs/reliability.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use mlspace_gitops::aws::AwsContext;

use crate::support::fault_proxy::{Fault, FaultConfig, FaultProxy, Rates};
use crate::support::moto::{
    keys_made, local_policies, policy_versions, sdk_config, test_credentials,
};
use crate::support::{
    manifests_copy, manifests_dir, mlspace, text, Clients as _, CommandExt, Moto,
};

/// Run the CLI with moto's environment, but `endpoint` as `AWS_ENDPOINT_URL`.
fn cli(moto: &Moto, endpoint: &str, state: &Path, args: &[&str]) -> Output {
    cli_on(moto, endpoint, state, &manifests_dir(), args)
}

/// [`cli`] on another manifests directory.
fn cli_on(moto: &Moto, endpoint: &str, state: &Path, manifests: &Path, args: &[&str]) -> Output {
    mlspace(args)
        .manifests(manifests)
        .aws_via(moto, endpoint)
        .env("MLSPACE_GITOPS_STATE_DIR", state)
        .run()
}

/// SDK clients through the proxy with retries off, to see each injected answer as is.
async fn raw_clients(endpoint: &str) -> AwsContext {
    let conf = sdk_config(endpoint, test_credentials())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    AwsContext::from_sdk_config(&conf)
}

fn code<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String {
    match e {
        aws_smithy_runtime_api::client::result::SdkError::ServiceError(s) => {
            s.err().code().unwrap_or("?").to_string()
        }
        aws_smithy_runtime_api::client::result::SdkError::DispatchFailure(_)
        | aws_smithy_runtime_api::client::result::SdkError::ResponseError(_) => {
            "no-answer".to_string()
        }
        _ => "other".to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_answers_each_fault_in_the_shape_of_the_service() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default());
    let aws = raw_clients(&proxy.endpoint).await;

    proxy.set_config(FaultConfig::uniform(Rates::throttle_only(1.0)));
    let e = aws.iam().list_roles().send().await.unwrap_err();
    assert_eq!(code(&e), "Throttling");
    let e = aws.s3().list_buckets().send().await.unwrap_err();
    assert_eq!(code(&e), "SlowDown");
    let e = aws.dynamodb().list_tables().send().await.unwrap_err();
    assert_eq!(code(&e), "ThrottlingException");

    let only = |r: Rates| FaultConfig::uniform(r);
    proxy.set_config(only(Rates {
        internal: 1.0,
        ..Rates::default()
    }));
    let e = aws.iam().list_roles().send().await.unwrap_err();
    assert_eq!(code(&e), "InternalFailure");
    let e = aws.dynamodb().list_tables().send().await.unwrap_err();
    assert_eq!(code(&e), "InternalServerError");

    proxy.set_config(only(Rates {
        reset_before: 1.0,
        ..Rates::default()
    }));
    let e = aws.iam().list_roles().send().await.unwrap_err();
    assert_eq!(code(&e), "no-answer");

    // Reset after: the write reached moto although the caller saw no answer.
    proxy.set_config(only(Rates {
        reset_after: 1.0,
        ..Rates::default()
    }));
    let e = aws
        .s3()
        .create_bucket()
        .bucket("lost-answer")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "no-answer");
    let direct = moto.aws().await;
    direct
        .s3()
        .head_bucket()
        .bucket("lost-answer")
        .send()
        .await
        .unwrap();

    // Eventual consistency: a new role is invisible, and invalid as a principal, for a while.
    proxy.set_config(FaultConfig {
        iam_consistency: Duration::from_secs(2),
        ..FaultConfig::default()
    });
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws.iam()
        .create_role()
        .role_name("fresh")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let e = aws
        .iam()
        .get_role()
        .role_name("fresh")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchEntity");
    let by_role = trust.replace(
        r#"{"Service":"ec2.amazonaws.com"}"#,
        r#"{"AWS":"arn:aws:iam::123456789012:role/fresh"}"#,
    );
    let e = aws
        .iam()
        .create_role()
        .role_name("second")
        .assume_role_policy_document(by_role)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "MalformedPolicyDocument");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    aws.iam()
        .get_role()
        .role_name("fresh")
        .send()
        .await
        .unwrap();

    let c = proxy.counts();
    assert_eq!(c.fault(Fault::Throttle), 3);
    assert_eq!(c.fault(Fault::Internal), 2);
    assert_eq!(c.fault(Fault::ResetBefore), 1);
    assert_eq!(c.fault(Fault::ResetAfter), 1);
    assert_eq!(c.fault(Fault::NotYetVisible), 1);
    assert_eq!(c.fault(Fault::InvalidPrincipal), 1);
}

/// What an account holds, in comparable form: roles (trust, attached, inline, tags),
/// customer managed policies (versions, default document), bucket and table names.
async fn snapshot(aws: &AwsContext) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    // KMS keys by alias: their ids are KMS's choice, so documents naming a key are compared
    // with the id replaced by `<alias/NAME>`. The keys mlspace-gitops made (its name tag; moto
    // also makes the services' `aws/...` keys) are counted, so a key made twice shows.
    let mut key_names: Vec<(String, String)> = Vec::new();
    for a in aws.kms().list_aliases().send().await.unwrap().aliases() {
        if let (Some(name), Some(id)) = (a.alias_name(), a.target_key_id()) {
            key_names.push((id.to_string(), format!("<{name}>")));
            s.insert(format!("key/{name}"), String::new());
        }
    }
    let made = keys_made(aws).await;
    s.insert("kms/keys-made".into(), made.to_string());
    let unkey = |doc: &str| {
        key_names.iter().fold(doc.to_string(), |d, (id, name)| {
            d.replace(id.as_str(), name)
        })
    };
    let roles = aws.iam().list_roles().max_items(1000).send().await.unwrap();
    for r in roles.roles() {
        let n = r.role_name();
        let attached = aws
            .iam()
            .list_attached_role_policies()
            .role_name(n)
            .send()
            .await
            .unwrap();
        let mut attached: Vec<_> = attached
            .attached_policies()
            .iter()
            .map(|p| p.policy_arn().unwrap_or("").to_string())
            .collect();
        attached.sort();
        let inline = aws
            .iam()
            .list_role_policies()
            .role_name(n)
            .send()
            .await
            .unwrap();
        let mut inline = inline.policy_names().to_vec();
        inline.sort();
        let tags = aws
            .iam()
            .list_role_tags()
            .role_name(n)
            .send()
            .await
            .unwrap();
        let mut tags: Vec<_> = tags
            .tags()
            .iter()
            .map(|t| format!("{}={}", t.key(), t.value()))
            .collect();
        tags.sort();
        s.insert(
            format!("role/{n}"),
            format!(
                "trust={:?} attached={attached:?} inline={inline:?} tags={tags:?}",
                r.assume_role_policy_document()
            ),
        );
    }
    for p in local_policies(aws).await {
        let arn = p.arn().unwrap();
        let versions = policy_versions(aws, arn).await;
        let doc = aws
            .iam()
            .get_policy_version()
            .policy_arn(arn)
            .version_id(p.default_version_id().unwrap())
            .send()
            .await
            .unwrap();
        s.insert(
            format!("policy/{}", p.policy_name().unwrap()),
            format!(
                "versions={} doc={:?}",
                versions.len(),
                doc.policy_version().and_then(|v| v.document()).map(unkey)
            ),
        );
    }
    // Bucket settings are left to the plan (moto's GetBucketVersioning answer does not
    // parse with this SDK); the names show that nothing was created twice.
    for b in aws.s3().list_buckets().send().await.unwrap().buckets() {
        s.insert(format!("bucket/{}", b.name().unwrap()), String::new());
    }
    for t in aws
        .dynamodb()
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names()
    {
        s.insert(format!("table/{t}"), String::new());
    }
    s
}

/// Apply at 20% faults of every sort (plus IAM eventual consistency) converges in a few
/// runs to exactly what a fault-free apply produces.
#[tokio::test(flavor = "multi_thread")]
async fn apply_at_20_percent_faults_converges_to_the_fault_free_result() {
    let state = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::twenty_percent());

    let start = Instant::now();
    let mut runs = Vec::new();
    loop {
        let o = cli(
            &moto,
            &proxy.endpoint,
            state.path(),
            &["apply", "--auto-approve"],
        );
        runs.push(o.status.code());
        if o.status.success() {
            break;
        }
        eprintln!("apply run {} failed:\n{}", runs.len(), text(&o));
        assert!(runs.len() < 5, "no convergence in 5 apply runs: {runs:?}");
    }
    let converge = start.elapsed();
    let c = proxy.counts();
    eprintln!(
        "FIGURES seed={} runs={} exit={runs:?} time={:.1}s requests={} forwarded={} faults={} \
         throttle={} internal={} reset_before={} reset_after={} latency={} not_yet_visible={} \
         invalid_principal={}",
        proxy.seed,
        runs.len(),
        converge.as_secs_f64(),
        c.total_requests(),
        c.forwarded.values().sum::<u64>(),
        c.total_faults(),
        c.fault(Fault::Throttle),
        c.fault(Fault::Internal),
        c.fault(Fault::ResetBefore),
        c.fault(Fault::ResetAfter),
        c.fault(Fault::Latency),
        c.fault(Fault::NotYetVisible),
        c.fault(Fault::InvalidPrincipal),
    );
    assert!(c.total_faults() > 0, "no fault was injected");

    proxy.set_config(FaultConfig::default());
    let o = cli(
        &moto,
        &proxy.endpoint,
        state.path(),
        &["plan", "--detailed-exitcode"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "plan after convergence:\n{}",
        text(&o)
    );

    // The same manifests applied without faults to a fresh account: the reference.
    let clean = Moto::start();
    let clean_state = tempfile::tempdir().unwrap();
    let o = cli(
        &clean,
        &clean.endpoint,
        clean_state.path(),
        &["apply", "--auto-approve"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let want = snapshot(&clean.aws().await).await;
    let got = snapshot(&moto.aws().await).await;
    for (k, v) in &got {
        if k.starts_with("policy/") {
            assert!(v.starts_with("versions=1 "), "{k}: {v}");
        }
    }
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "extra {extra:?} missing {missing:?}"
    );
    for (k, v) in &want {
        assert_eq!(&got[k], v, "{k} differs from the fault-free apply");
    }
}

/// Requests per second.
fn rate(n: u64, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

/// A 50% throttling storm makes `plan` slower, not louder: every logical request is tried
/// at most 8 times (the SDK's standard retry), and the request rate falls below the
/// fault-free rate because the retries back off.
#[test]
fn throttling_storm_slows_plan_down_instead_of_amplifying_it() {
    let state = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let o = cli(
        &moto,
        &moto.endpoint,
        state.path(),
        &["apply", "--auto-approve"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default());
    let plan = || {
        let start = Instant::now();
        let o = cli(
            &moto,
            &proxy.endpoint,
            state.path(),
            &["plan", "--detailed-exitcode", "--stats"],
        );
        (o, start.elapsed())
    };

    let (o, calm_time) = plan();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let calm = proxy.counts();
    let logical = calm.total_requests();
    assert_eq!(calm.max_attempts(), 1, "a retry without faults");

    proxy.reset_counts();
    let mut storm = FaultConfig::uniform(Rates::throttle_only(0.5));
    storm.iam_consistency = Duration::ZERO;
    proxy.set_config(storm);
    let (o, storm_time) = plan();
    let c = proxy.counts();
    let attempts = c.total_requests();
    let throttled = c.fault(Fault::Throttle);
    let mut gaps = c.retry_gaps();
    gaps.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "FIGURES storm seed={} calm: requests={logical} time={:.2}s rate={:.0}/s; \
         50% throttle: exit={:?} attempts={attempts} throttled={throttled} \
         forwarded={} time={:.2}s rate={:.0}/s amplification={:.2} invocations={} \
         max_attempts={} retry_gap_ms min={:.0} median={:.0} max={:.0}",
        proxy.seed,
        calm_time.as_secs_f64(),
        rate(logical, calm_time),
        o.status.code(),
        c.forwarded.values().sum::<u64>(),
        storm_time.as_secs_f64(),
        rate(attempts, storm_time),
        attempts as f64 / logical as f64,
        c.invocations.len(),
        c.max_attempts(),
        ms(gaps[0]),
        ms(gaps[gaps.len() / 2]),
        ms(gaps[gaps.len() - 1]),
    );
    if !o.status.success() {
        eprintln!("plan under the storm:\n{}", text(&o));
    }
    // Either the plan got through, or a request ran out of its attempts: never a crash.
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    assert!(
        attempts <= 8 * logical,
        "{attempts} attempts for {logical} logical requests"
    );
    // Per logical request: at most 8 attempts, and the waits between them are jittered
    // (not one fixed schedule that would synchronise the retries of concurrent requests).
    assert!(c.max_attempts() <= 8, "{} attempts", c.max_attempts());
    let distinct: std::collections::BTreeSet<_> = gaps.iter().map(|g| g.as_millis()).collect();
    assert!(
        distinct.len() * 2 > gaps.len(),
        "retry waits are not jittered: {gaps:?}"
    );
    assert!(
        rate(attempts, storm_time) < rate(logical, calm_time),
        "the storm raised the request rate"
    );
}

/// Apply `manifests/` without faults, then a copy of them in which each named policy's
/// document gains one statement.
fn applied_then_changed(moto: &Moto, state: &Path, policies: &[&str]) -> tempfile::TempDir {
    let o = cli(moto, &moto.endpoint, state, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", text(&o));
    let changed = manifests_copy(&[]);
    for n in policies {
        let file = changed.path().join(format!("iam/policies/{n}.json"));
        let mut doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        doc["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"
            }));
        std::fs::write(&file, doc.to_string()).unwrap();
    }
    changed
}

/// Regression: the answer to CreatePolicyVersion is lost, the retry creates the version a
/// second time (and, once the SDK's retry was turned off for it, a 500 was not retried).
/// The policy must end with the versions one update makes (the old one and the new
/// default), not a duplicate of the new document.
#[tokio::test(flavor = "multi_thread")]
async fn lost_create_policy_version_answer_leaves_no_duplicate_version() {
    let moto = Moto::start();
    let state = tempfile::tempdir().unwrap();
    let changed = applied_then_changed(&moto, state.path(), &["mlspace-website-read-policy"]);

    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::default());
    // First a 500 (retried: the SDK no longer does it), then the lost answer.
    proxy.inject_once("CreatePolicyVersion", Fault::Internal);
    proxy.inject_once("CreatePolicyVersion", Fault::ResetAfter);
    let o = cli_on(
        &moto,
        &proxy.endpoint,
        state.path(),
        changed.path(),
        &["apply", "--auto-approve"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.counts().fault(Fault::Internal), 1);
    assert_eq!(proxy.counts().fault(Fault::ResetAfter), 1);
    let o = cli_on(
        &moto,
        &moto.endpoint,
        state.path(),
        changed.path(),
        &["plan", "--detailed-exitcode"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let aws = moto.aws().await;
    let versions = policy_versions(
        &aws,
        "arn:aws:iam::123456789012:policy/mlspace-website-read-policy",
    )
    .await;
    let ids: Vec<_> = versions
        .iter()
        .map(|v| (v.version_id().unwrap_or(""), v.is_default_version()))
        .collect();
    assert_eq!(ids.len(), 2, "versions after one update: {ids:?}");
}

/// Updates at 20% faults: every customer managed policy whose document is managed gets a new
/// statement; apply converges, and each changed policy has exactly two versions.
#[tokio::test(flavor = "multi_thread")]
async fn update_at_20_percent_faults_leaves_exactly_one_new_version_per_policy() {
    let moto = Moto::start();
    let state = tempfile::tempdir().unwrap();
    let names = [
        "mlspace-notebook-policy",
        "mlspace-app-policy",
        "mlspace-system-policy",
        "mlspace-website-read-policy",
    ];
    let changed = applied_then_changed(&moto, state.path(), &names);

    let cfg = FaultConfig {
        iam_consistency: Duration::ZERO,
        ..FaultConfig::twenty_percent()
    };
    let proxy = FaultProxy::start(&moto.endpoint, cfg);
    let start = Instant::now();
    let mut runs = 0;
    loop {
        runs += 1;
        let o = cli_on(
            &moto,
            &proxy.endpoint,
            state.path(),
            changed.path(),
            &["apply", "--auto-approve"],
        );
        if o.status.success() {
            break;
        }
        eprintln!("apply run {runs} failed:\n{}", text(&o));
        assert!(runs < 5, "no convergence in 5 apply runs");
    }
    let c = proxy.counts();
    eprintln!(
        "FIGURES update seed={} runs={runs} time={:.1}s requests={} faults={} reset_after={} \
         CreatePolicyVersion={}",
        proxy.seed,
        start.elapsed().as_secs_f64(),
        c.total_requests(),
        c.total_faults(),
        c.fault(Fault::ResetAfter),
        c.operations.get("iam:CreatePolicyVersion").unwrap_or(&0),
    );
    let o = cli_on(
        &moto,
        &moto.endpoint,
        state.path(),
        changed.path(),
        &["plan", "--detailed-exitcode"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let aws = moto.aws().await;
    for n in names {
        let arn = format!("arn:aws:iam::123456789012:policy/{n}");
        let versions = policy_versions(&aws, &arn).await;
        assert_eq!(versions.len(), 2, "{n}: {versions:?}");
    }
}
