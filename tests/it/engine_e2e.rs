//! End to end: the `plan` and `apply` commands on the bundled manifests against a real moto
//! server. Each test gets its own server (a fresh account).

use std::collections::BTreeSet;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::support::moto::policy_versions;
use crate::support::{golden, manifests_copy, manifests_dir, mlspace, text};
use crate::support::{Clients as _, CommandExt, Moto};

const ACCOUNT: &str = "123456789012";

/// `mlspace-gitops ARGS` on the bundled manifests against `moto`.
fn cli(moto: &Moto, args: &[&str]) -> Output {
    mlspace(args).manifests(manifests_dir()).aws(moto).run()
}

fn apply(moto: &Moto) {
    let o = cli(moto, &["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(0), "apply failed\n{}", text(&o));
}

fn plan_json(moto: &Moto) -> Value {
    let o = cli(moto, &["plan", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// (kind, name, field) of every field change in a JSON plan.
fn fields(plan: &Value) -> BTreeSet<(String, String, String)> {
    let mut s = BTreeSet::new();
    for c in plan["changes"].as_array().unwrap() {
        for f in c["fields"].as_array().unwrap() {
            s.insert((
                c["kind"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
                f["field"].as_str().unwrap().to_string(),
            ));
        }
    }
    s
}

#[test]
fn apply_to_an_empty_account_then_plan_has_no_changes() {
    let moto = Moto::start();
    apply(&moto);
    let o = cli(&moto, &["plan", "--detailed-exitcode", "--stats"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "perpetual diff after apply:\n{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Plan: 0 to create, 0 to update, 0 to delete.")
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("AWS requests:"));
}

#[test]
fn plan_of_an_empty_account_matches_golden_files() {
    let moto = Moto::start();
    let o = cli(&moto, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let plan_text = String::from_utf8(o.stdout).unwrap();
    let o = cli(&moto, &["plan", "-o", "json"]);
    let plan_json = String::from_utf8(o.stdout).unwrap();
    for (file, got) in [
        ("tests/golden/plan-create.txt", &plan_text),
        ("tests/golden/plan-create.json", &plan_json),
    ] {
        golden::check(file, got, "engine_e2e::plan_of_an_empty_account");
    }
    let v: Value = serde_json::from_str(&plan_json).unwrap();
    assert_eq!(v["summary"]["create"], 35);
    assert!(
        plan_text.ends_with("Plan: 35 to create, 0 to update, 0 to delete.\nAccess: WIDENS (542 grant(s) widen access, 38 narrow it; 6 change(s) whose access is not known offline, counted as widening)\n"),
        "{plan_text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_made_behind_its_back_is_planned_and_repaired() {
    let moto = Moto::start();
    apply(&moto);
    let aws = moto.aws().await;
    let data = format!("mlspace-data-{ACCOUNT}");
    let logs = format!("mlspace-logs-{ACCOUNT}");

    // Managed policy: a new default version with another document.
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;
    aws.iam()
        .create_policy_version()
        .policy_arn(format!(
            "arn:aws:iam::{ACCOUNT}:policy/mlspace-system-policy"
        ))
        .policy_document(doc)
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    // Role: trust policy, an extra tag, a detached policy, an extra inline policy.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws.iam()
        .update_assume_role_policy()
        .role_name("mlspace-notebook-role")
        .policy_document(trust)
        .send()
        .await
        .unwrap();
    aws.iam()
        .tag_role()
        .role_name("mlspace-system-role")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("owner")
                .value("someone")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    aws.iam()
        .detach_role_policy()
        .role_name("mlspace-app-role")
        .policy_arn(format!("arn:aws:iam::{ACCOUNT}:policy/mlspace-app-policy"))
        .send()
        .await
        .unwrap();
    aws.iam()
        .put_role_policy()
        .role_name("mlspace-s3-reader-Role")
        .policy_name("extra")
        .policy_document(doc)
        .send()
        .await
        .unwrap();
    // Buckets: versioning suspended, public access block removed.
    aws.s3()
        .put_bucket_versioning()
        .bucket(&data)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws.s3()
        .delete_public_access_block()
        .bucket(&logs)
        .send()
        .await
        .unwrap();
    // Table: PITR turned on.
    aws.dynamodb()
        .update_continuous_backups()
        .table_name("mlspace-datasets")
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let plan = plan_json(&moto);
    let got = fields(&plan);
    let want: BTreeSet<(String, String, String)> = [
        ("ManagedPolicy", "mlspace-system-policy", "spec.document"),
        ("Role", "mlspace-notebook-role", "spec.assumeRolePolicy"),
        ("Role", "mlspace-system-role", "spec.tags.owner"),
        ("Role", "mlspace-app-role", "spec.managedPolicies"),
        (
            "Role",
            "mlspace-s3-reader-Role",
            "spec.inlinePolicies.extra",
        ),
        ("Bucket", data.as_str(), "spec.versioning"),
        ("Bucket", logs.as_str(), "spec.publicAccessBlock"),
        ("Table", "mlspace-datasets", "spec.pointInTimeRecovery"),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(
        got,
        want,
        "plan:\n{}",
        serde_json::to_string_pretty(&plan).unwrap()
    );
    assert_eq!(plan["summary"]["update"], 8);

    apply(&moto);
    let o = cli(&moto, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "drift not repaired:\n{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_without_the_ownership_tag_is_reported_and_left_alone() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws.iam()
        .create_role()
        .role_name("mlspace-s3-reader-Role")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();

    let o = cli(&moto, &["plan"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("! Role mlspace-s3-reader-Role is not managed by mlspace-gitops"),
        "{out}"
    );
    apply(&moto);
    let role = aws
        .iam()
        .get_role()
        .role_name("mlspace-s3-reader-Role")
        .send()
        .await
        .unwrap();
    let doc = mlspace_policy::decode_iam_document(
        role.role().unwrap().assume_role_policy_document().unwrap(),
    )
    .unwrap();
    assert!(
        mlspace_policy::semantically_equal(&doc, &serde_json::from_str(trust).unwrap()),
        "trust policy was changed: {doc}"
    );
    assert!(role.role().unwrap().tags().is_empty(), "tags were changed");
    let attached = aws
        .iam()
        .list_attached_role_policies()
        .role_name("mlspace-s3-reader-Role")
        .send()
        .await
        .unwrap();
    assert!(attached.attached_policies().is_empty());
    // Everything else converged; the conflict stays reported.
    let plan = plan_json(&moto);
    assert_eq!(plan["summary"]["conflict"], 1);
    assert_eq!(plan["summary"]["create"], 0);
    assert_eq!(plan["summary"]["update"], 0);
}

/// The default version's document of a managed policy.
async fn default_document(aws: &mlspace_gitops::aws::AwsContext, arn: &str) -> (String, Value) {
    let p = aws.iam().get_policy().policy_arn(arn).send().await.unwrap();
    let v = p
        .policy()
        .unwrap()
        .default_version_id()
        .unwrap()
        .to_string();
    let pv = aws
        .iam()
        .get_policy_version()
        .policy_arn(arn)
        .version_id(&v)
        .send()
        .await
        .unwrap();
    let doc = mlspace_policy::decode_iam_document(pv.policy_version().unwrap().document().unwrap())
        .unwrap();
    (v, doc)
}

/// Regression: the instance-constraint policies MLSpace re-versions at runtime were planned
/// as document drift, and every apply put the seed document back (undoing the admin's
/// instance-type settings). With `ignoreFields: [document]` the new version is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_policy_document_re_versioned_by_mlspace_is_left_alone_when_ignored() {
    const POLICY: &str = "MLSpace-kms-instance-constraint-policy";
    let moto = Moto::start();
    apply(&moto);
    let aws = moto.aws().await;
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/{POLICY}");

    // What mls-lambda-instance-kms-conditions does: a new default version with the instance
    // types that lack KMS volume support, then the old versions deleted.
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["sagemaker:CreateTrainingJob","sagemaker:CreateNotebookInstance"],"Resource":"*","Condition":{"Null":{"sagemaker:VolumeKmsKey":"true"},"ForAllValues:StringNotLike":{"sagemaker:InstanceTypes":["ml.g4dn.*"]}}}]}"#;
    let (old_version, _) = default_document(&aws, &arn).await;
    aws.iam()
        .create_policy_version()
        .policy_arn(&arn)
        .policy_document(doc)
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    aws.iam()
        .delete_policy_version()
        .policy_arn(&arn)
        .version_id(&old_version)
        .send()
        .await
        .unwrap();
    let (mlspace_version, _) = default_document(&aws, &arn).await;

    // The bundled manifests ignore the document: nothing to do, and apply leaves it.
    let o = cli(&moto, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    apply(&moto);
    let (version, kept) = default_document(&aws, &arn).await;
    assert_eq!(version, mlspace_version);
    assert!(
        mlspace_policy::semantically_equal(&kept, &serde_json::from_str(doc).unwrap()),
        "the document MLSpace set was replaced: {kept}"
    );

    // Without `ignoreFields` the same account shows the document as drift.
    let tmp = manifests_copy(&[]);
    let file = tmp.path().join("iam/policies.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    assert!(yaml.contains("  ignoreFields: [document]\n"));
    std::fs::write(&file, yaml.replace("  ignoreFields: [document]\n", "")).unwrap();
    let o = mlspace(&["plan", "-o", "json"])
        .manifests(tmp.path())
        .aws(&moto)
        .run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let drift = fields(&plan);
    assert!(
        drift.contains(&(
            "ManagedPolicy".to_string(),
            POLICY.to_string(),
            "spec.document".to_string()
        )),
        "{drift:?}"
    );
    assert_eq!(plan["summary"]["update"], 1, "{plan}");
}

#[test]
fn apply_refuses_without_a_terminal_or_auto_approve() {
    let moto = Moto::start();
    let o = cli(&moto, &["apply"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--auto-approve"),
        "{}",
        text(&o)
    );
    // Nothing was created.
    let o = cli(&moto, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn apply_killed_midway_then_rerun_converges() {
    let moto = Moto::start();
    let state = tempfile::tempdir().unwrap();
    for delay_ms in [700u64, 1500] {
        let mut child = mlspace(&["apply", "--auto-approve"])
            .manifests(manifests_dir())
            .state_dir(state.path())
            .aws(&moto)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no cleanup of any kind
        let _ = child.wait();
    }
    let o = mlspace(&["apply", "--auto-approve"])
        .manifests(manifests_dir())
        .state_dir(state.path())
        .aws(&moto)
        .run();
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(&moto, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "not converged after kill -9:\n{}",
        text(&o)
    );
    // Nothing duplicated: exactly one version of each policy unless it was updated.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let aws = moto.aws().await;
        let arn = format!("arn:aws:iam::{ACCOUNT}:policy/mlspace-app-policy");
        assert_eq!(
            policy_versions(&aws, &arn).await.len(),
            1,
            "a retried create made extra versions"
        );
    });
}
