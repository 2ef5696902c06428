//! Inventory and prune through the CLI against moto: nothing outside the inventory is
//! touched, prune needs the flag, `retain` only forgets, mass deletions are refused, and a
//! bucket holding objects needs forceDestroy.

use std::path::Path;
use std::process::Output;

use crate::support::{mlspace, text as out, Clients as _, CommandExt, Moto};

const ENV: &str = "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: prune}\nspec: {region: us-east-1, account: \"123456789012\"}\n";

/// A role the MLSpace application creates at runtime for a project user.
const RUNTIME_ROLE: &str = "MLSpace-demo-7f3a9c21";

fn policy(name: &str, retain: bool) -> String {
    let ann = if retain {
        ", annotations: {mlspace-gitops/deletion-policy: retain}"
    } else {
        ""
    };
    format!("---\napiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: {name}{ann}}}\nspec:\n  document: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: 's3:GetObject', Resource: '*'}}]}}\n")
}

fn bucket(name: &str) -> String {
    format!("---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {{name: {name}}}\nspec: {{versioning: true}}\n")
}

fn write(dir: &Path, docs: &[String]) {
    std::fs::write(dir.join("m.yaml"), format!("{ENV}{}", docs.concat())).unwrap();
}

/// `mlspace-gitops ARGS` on the manifests in `dir` with the state in `state`, against `moto`.
fn cli(moto: &Moto, dir: &Path, state: &Path, args: &[&str]) -> Output {
    mlspace(args)
        .manifests(dir)
        .state_dir(state)
        .aws(moto)
        .run()
}

/// Names of the managed policies attached to `role`.
fn attached_policies(rt: &tokio::runtime::Runtime, moto: &Moto, role: &str) -> Vec<String> {
    rt.block_on(async {
        moto.aws()
            .await
            .iam()
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .unwrap()
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_name().map(str::to_string))
            .collect()
    })
}

fn policy_exists(rt: &tokio::runtime::Runtime, moto: &Moto, name: &str) -> bool {
    rt.block_on(async {
        moto.aws()
            .await
            .iam()
            .get_policy()
            .policy_arn(format!("arn:aws:iam::123456789012:policy/{name}"))
            .send()
            .await
            .is_ok()
    })
}

#[test]
fn prune_deletes_only_inventory_resources_with_the_flag_and_guards() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let names = [
        "pr-a", "pr-b", "pr-c", "pr-d", "pr-e", "pr-f", "pr-g", "pr-h",
    ];
    let mut docs: Vec<String> = names.iter().map(|n| policy(n, false)).collect();
    docs.push(policy("pr-kept", true));
    docs.push(bucket("pr-bucket-with-objects"));
    write(dir.path(), &docs);
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve"],
    );
    assert!(o.status.success(), "{}", out(&o));

    // A resource the MLSpace application creates at runtime, beside ours: never touched.
    rt.block_on(async {
        let aws = moto.aws().await;
        aws.iam().create_policy().policy_name("MLSpace-project-demo").policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#).send().await.unwrap();
        // A per-project-user role as MLSpace makes it: its prefix, the dynamic-user-role tag, an
        // inline policy, its project policy and a copy of a managed role's policy attached.
        let tag = |k: &str, v: &str| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().unwrap();
        aws.iam().create_role().role_name(RUNTIME_ROLE).assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#).tags(tag("dynamic-user-role", "true")).tags(tag("project", "demo")).send().await.unwrap();
        aws.iam().put_role_policy().role_name(RUNTIME_ROLE).policy_name("MLSpace-user-demo").policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#).send().await.unwrap();
        aws.iam().attach_role_policy().role_name(RUNTIME_ROLE).policy_arn("arn:aws:iam::123456789012:policy/MLSpace-project-demo").send().await.unwrap();
        aws.iam().attach_role_policy().role_name(RUNTIME_ROLE).policy_arn("arn:aws:iam::123456789012:policy/pr-kept").send().await.unwrap();
        aws.s3().put_object().bucket("pr-bucket-with-objects").key("data.csv").body(b"a,b\n".to_vec().into()).send().await.unwrap();
    });

    // Drop one policy: without --prune nothing is deleted.
    let mut fewer = docs.clone();
    fewer.remove(0);
    write(dir.path(), &fewer);
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve"],
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(policy_exists(&rt, &moto, "pr-a"), "deleted without --prune");

    // With --prune it goes.
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve", "--prune"],
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        !policy_exists(&rt, &moto, "pr-a"),
        "not pruned:\n{}",
        out(&o)
    );
    assert!(
        policy_exists(&rt, &moto, "MLSpace-project-demo"),
        "pruned a resource outside the inventory"
    );

    // Dropping most of the rest at once is refused by the guard; nothing is deleted.
    write(dir.path(), &[policy("pr-b", false)]);
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve", "--prune"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("refusing to delete"), "{}", out(&o));
    for n in &names[2..] {
        assert!(
            policy_exists(&rt, &moto, n),
            "{n} deleted despite the guard"
        );
    }

    // Allowed: the policies go, the retained one is only forgotten (kept, untagged), and the
    // bucket holding objects is refused (no forceDestroy) but the rest proceeds.
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve", "--prune", "--allow-mass-prune"],
    );
    let text = out(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the non-empty bucket must fail the apply\n{text}"
    );
    for n in &names[2..] {
        assert!(!policy_exists(&rt, &moto, n), "{n} not pruned\n{text}");
    }
    assert!(
        policy_exists(&rt, &moto, "pr-kept"),
        "a retained policy was deleted"
    );
    let tags = rt.block_on(async {
        moto.aws()
            .await
            .iam()
            .list_policy_tags()
            .policy_arn("arn:aws:iam::123456789012:policy/pr-kept")
            .send()
            .await
            .unwrap()
    });
    assert!(
        tags.tags()
            .iter()
            .all(|t| t.key() != "mlspace-gitops:managed-by"),
        "ownership tag kept on a retained policy"
    );
    let bucket = rt.block_on(async {
        moto.aws()
            .await
            .s3()
            .head_bucket()
            .bucket("pr-bucket-with-objects")
            .send()
            .await
            .is_ok()
    });
    assert!(
        bucket,
        "a bucket holding objects was deleted without forceDestroy"
    );
    assert!(policy_exists(&rt, &moto, "MLSpace-project-demo"));

    // The runtime role came through every apply and prune as MLSpace left it.
    let (tags, inline) = rt.block_on(async {
        let iam = moto.aws().await.iam();
        let tags = iam
            .list_role_tags()
            .role_name(RUNTIME_ROLE)
            .send()
            .await
            .unwrap();
        let inline = iam
            .list_role_policies()
            .role_name(RUNTIME_ROLE)
            .send()
            .await
            .unwrap();
        (
            tags.tags()
                .iter()
                .map(|t| format!("{}={}", t.key(), t.value()))
                .collect::<Vec<_>>(),
            inline.policy_names().to_vec(),
        )
    });
    let attached = attached_policies(&rt, &moto, RUNTIME_ROLE);
    assert_eq!(tags, ["dynamic-user-role=true", "project=demo"]);
    assert_eq!(inline, ["MLSpace-user-demo"]);
    assert_eq!(attached, ["MLSpace-project-demo", "pr-kept"]);

    // Each apply that changed something left a history record, newest first.
    write(dir.path(), &[policy("pr-b", false)]);
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["history", "--limit", "50"],
    );
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("- ManagedPolicy pr-a Success"), "{text}");
    assert!(text.contains("~ ManagedPolicy pr-kept Success"), "{text}");
    assert!(
        text.contains("+ Bucket pr-bucket-with-objects Success"),
        "{text}"
    );

    // An empty manifest set (the Environment alone) never deletes anything.
    write(dir.path(), &[]);
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve", "--prune", "--allow-mass-prune"],
    );
    assert!(
        policy_exists(&rt, &moto, "pr-b"),
        "an empty manifest set pruned\n{}",
        out(&o)
    );
}

#[test]
fn attachments_matching_ignore_rules_are_neither_drift_nor_removed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let role = "---\napiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {name: mlspace-app-role}\nspec:\n  assumeRolePolicy: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: 'sts:AssumeRole'}]}\n  managedPolicies: [pr-a]\n";
    let env_ignoring = ENV.replace("spec: {region: us-east-1, account: \"123456789012\"}", "spec:\n  region: us-east-1\n  account: \"123456789012\"\n  ignore:\n    - name: MLSpace-app-denied-services\n");
    std::fs::write(
        dir.path().join("m.yaml"),
        format!("{env_ignoring}{}{role}", policy("pr-a", false)),
    )
    .unwrap();
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve"],
    );
    assert!(o.status.success(), "{}", out(&o));

    // What MLSpace does at runtime: create the denied-services policy and attach it.
    rt.block_on(async {
        let aws = moto.aws().await;
        aws.iam().create_policy().policy_name("MLSpace-app-denied-services").policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"comprehend:*","Resource":"*"}]}"#).send().await.unwrap();
        aws.iam().attach_role_policy().role_name("mlspace-app-role").policy_arn("arn:aws:iam::123456789012:policy/MLSpace-app-denied-services").send().await.unwrap();
    });
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["plan", "--detailed-exitcode"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "an ignored attachment is drift:\n{}",
        out(&o)
    );
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve", "--prune"],
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        attached_policies(&rt, &moto, "mlspace-app-role")
            .iter()
            .any(|p| p == "MLSpace-app-denied-services"),
        "the runtime attachment was removed"
    );

    // Without the rule the same attachment is drift (what a role's permissions are belongs to the manifest).
    std::fs::write(
        dir.path().join("m.yaml"),
        format!("{ENV}{}{role}", policy("pr-a", false)),
    )
    .unwrap();
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["plan", "--detailed-exitcode"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        out(&o).contains("MLSpace-app-denied-services"),
        "{}",
        out(&o)
    );
}

/// Regression: pruning a managed policy detached it from every role first, including the
/// per-user roles MLSpace makes at runtime (it copies the notebook role's policies onto
/// them), which changed roles the daemon does not own.
#[test]
fn a_pruned_policy_still_used_by_an_ignored_runtime_role_is_kept() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let env_ignoring = ENV.replace(
        "spec: {region: us-east-1, account: \"123456789012\"}",
        "spec:\n  region: us-east-1\n  account: \"123456789012\"\n  ignore:\n    - tags: {dynamic-user-role: \"true\"}\n",
    );
    let write_docs = |docs: &[String]| {
        std::fs::write(
            dir.path().join("m.yaml"),
            format!("{env_ignoring}{}", docs.concat()),
        )
        .unwrap()
    };
    write_docs(&[policy("pr-shared", false), policy("pr-alone", false)]);
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve"],
    );
    assert!(o.status.success(), "{}", out(&o));
    rt.block_on(async {
        let aws = moto.aws().await;
        let tag = aws_sdk_iam::types::Tag::builder()
            .key("dynamic-user-role")
            .value("true")
            .build()
            .unwrap();
        aws.iam().create_role().role_name(RUNTIME_ROLE).assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#).tags(tag).send().await.unwrap();
        aws.iam()
            .attach_role_policy()
            .role_name(RUNTIME_ROLE)
            .policy_arn("arn:aws:iam::123456789012:policy/pr-shared")
            .send()
            .await
            .unwrap();
    });

    // Both leave the manifests (one resource must stay, or nothing is pruned at all).
    write_docs(&[policy("pr-other", false)]);
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve", "--prune", "--allow-mass-prune"],
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "still attached to role {RUNTIME_ROLE}, which the Environment's ignore rules leave to its owner"
        )),
        "{text}"
    );
    assert!(!policy_exists(&rt, &moto, "pr-alone"), "{text}");
    assert!(policy_exists(&rt, &moto, "pr-shared"), "{text}");
    assert_eq!(attached_policies(&rt, &moto, RUNTIME_ROLE), ["pr-shared"]);
}

/// Policies `{p}a`, `{p}b` and `{p}c`, or only the first two.
fn abc(p: &str, with_c: bool) -> Vec<String> {
    let n = if with_c { 3 } else { 2 };
    ["a", "b", "c"][..n]
        .iter()
        .map(|x| policy(&format!("{p}{x}"), false))
        .collect()
}

/// One `apply --prune` after `{p}c` left the manifests, with the state in `state_args`.
fn prune_without_c(moto: &Moto, p: &str, dir: &Path, state: &Path, state_args: &[&str]) -> Output {
    write(dir, &abc(p, false));
    // One of three is a "mass" prune; that guard is tested above, not here.
    let mut args = vec!["apply", "--auto-approve", "--prune", "--allow-mass-prune"];
    args.extend_from_slice(state_args);
    cli(moto, dir, state, &args)
}

#[test]
fn a_corrupt_state_file_or_item_is_reported_and_prunes_nothing_until_fixed() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();

    // The state file, cut in half (a disk that filled up, a bad copy).
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    write(dir.path(), &abc("pr-file-", true));
    let o = cli(
        &moto,
        dir.path(),
        state.path(),
        &["apply", "--auto-approve"],
    );
    assert!(o.status.success(), "{}", out(&o));
    let file = state.path().join("state").join("prune.json");
    let good = std::fs::read(&file).unwrap();
    std::fs::write(&file, &good[..good.len() / 2]).unwrap();
    let o = prune_without_c(&moto, "pr-file-", dir.path(), state.path(), &[]);
    let text = out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(text.contains("corrupt"), "{text}");
    assert!(
        policy_exists(&rt, &moto, "pr-file-c"),
        "pruned with a corrupt state file"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        &good[..good.len() / 2],
        "the corrupt file was overwritten"
    );
    eprintln!(
        "FIGURES truncated state file: exit {:?}, nothing deleted; reported: {}",
        o.status.code(),
        text.lines().find(|l| l.contains("corrupt")).unwrap_or("")
    );
    // Fixed (the file restored): the prune goes ahead.
    std::fs::write(&file, &good).unwrap();
    let o = prune_without_c(&moto, "pr-file-", dir.path(), state.path(), &[]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        !policy_exists(&rt, &moto, "pr-file-c"),
        "not pruned once fixed"
    );

    // The DynamoDB state table, one item with a number where a string belongs.
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let table = ["--state", "dynamodb://mlspace-gitops-state-corrupt"];
    write(dir.path(), &abc("pr-item-", true));
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(&table);
    let o = cli(&moto, dir.path(), state.path(), &args);
    assert!(o.status.success(), "{}", out(&o));
    assert!(policy_exists(&rt, &moto, "pr-item-c"));
    let key = |sk: &str| {
        std::collections::HashMap::from([
            ("pk".to_string(), AttributeValue::S("env#prune".into())),
            ("sk".to_string(), AttributeValue::S(sk.into())),
        ])
    };
    let item = rt.block_on(async {
        let aws = moto.aws().await;
        let item = aws
            .dynamodb()
            .get_item()
            .table_name("mlspace-gitops-state-corrupt")
            .set_key(Some(key("res#ManagedPolicy#pr-item-b")))
            .send()
            .await
            .unwrap()
            .item
            .expect("the inventory item of pr-item-b");
        let mut broken = item.clone();
        broken.insert("revision".into(), AttributeValue::N("7".into()));
        aws.dynamodb()
            .put_item()
            .table_name("mlspace-gitops-state-corrupt")
            .set_item(Some(broken))
            .send()
            .await
            .unwrap();
        item
    });
    let o = prune_without_c(&moto, "pr-item-", dir.path(), state.path(), &table);
    let text = out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("res#ManagedPolicy#pr-item-b"), "{text}");
    assert!(text.contains("revision"), "{text}");
    assert!(
        policy_exists(&rt, &moto, "pr-item-c"),
        "pruned with a corrupt state item"
    );
    eprintln!(
        "FIGURES corrupt state item: exit {:?}, nothing deleted; reported: {}",
        o.status.code(),
        text.lines()
            .find(|l| l.contains("res#ManagedPolicy#pr-item-b"))
            .unwrap_or("")
    );
    rt.block_on(async {
        moto.aws()
            .await
            .dynamodb()
            .put_item()
            .table_name("mlspace-gitops-state-corrupt")
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    });
    let o = prune_without_c(&moto, "pr-item-", dir.path(), state.path(), &table);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        !policy_exists(&rt, &moto, "pr-item-c"),
        "not pruned once fixed"
    );
}
