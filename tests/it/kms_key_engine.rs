//! The `KmsKey` kind against moto: observe, plan (`KindPlan`) and apply (`KindAws`) called
//! directly, with drift made behind the engine's back through the raw SDK; import, conflict
//! and prune also through the pipeline with real manifests.

use std::collections::BTreeSet;

use aws_sdk_kms::types as t;
use mlspace_gitops::apply::{apply as apply_plan, ApplyOptions};
use mlspace_gitops::aws::{AwsContext, ErrorClass};
use mlspace_gitops::import::{self, Request};
use mlspace_gitops::kinds::common::{Tags, OWNERSHIP_TAG, OWNERSHIP_VALUE};
use mlspace_gitops::kinds::kms_key::diff::state;
use mlspace_gitops::kinds::kms_key::{
    KeySpec, KeyUsage, KmsKey, KmsKeyObserved, KmsKeySpec, Op, NAME_TAG, WINDOW_TAG,
};
use mlspace_gitops::kinds::runtime::KindAws;
use mlspace_gitops::kinds::{Diff, Kind, KindPlan, PlanCx};
use mlspace_gitops::manifest;
use mlspace_gitops::pipeline::observe_and_plan;
use mlspace_gitops::plan::{Action, Removal, RemovalKind};
use serde_json::{json, Value};

use crate::support::{Clients as _, Moto};

const ACCOUNT: &str = "123456789012";

fn cx() -> PlanCx {
    PlanCx {
        partition: "aws".into(),
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        ..PlanCx::default()
    }
}

/// A key policy: the account may manage the key, `user` may use it (no Deny: moto would
/// refuse DescribeKey, see the kind's emulator gaps).
fn policy(user: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "Allow use of the key", "Effect": "Allow",
         "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:role/{user}")},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"}
    ]})
}

/// Every setting managed.
fn data_key() -> KmsKeySpec {
    KmsKeySpec {
        description: Some("MLSpace data".into()),
        policy: Some(policy("mlspace-app-role")),
        policy_file: None,
        key_spec: KeySpec::SymmetricDefault,
        key_usage: KeyUsage::EncryptDecrypt,
        multi_region: false,
        enable_key_rotation: Some(true),
        rotation_period_in_days: Some(180),
        aliases: vec!["mlspace-data-extra".into()],
        deletion_window_in_days: 7,
        enabled: Some(true),
        tags: [("team".to_string(), "ml".to_string())].into(),
    }
}

/// Only what a manifest must say.
fn bare() -> KmsKeySpec {
    KmsKeySpec {
        description: None,
        policy: None,
        policy_file: None,
        key_spec: KeySpec::default(),
        key_usage: KeyUsage::default(),
        multi_region: false,
        enable_key_rotation: None,
        rotation_period_in_days: None,
        aliases: vec![],
        deletion_window_in_days: 30,
        enabled: None,
        tags: Tags::new(),
    }
}

async fn observe(aws: &AwsContext, name: &str) -> Option<KmsKeyObserved> {
    KmsKey::observe_names(aws, &[name.to_string()], &cx())
        .await
        .unwrap()
        .remove(name)
}

/// Observe (reading what `spec` manages), then plan an update.
async fn plan(aws: &AwsContext, name: &str, spec: &KmsKeySpec) -> Diff<Op> {
    let o = observe_for(aws, name, spec).await.expect("key exists");
    KmsKey::update(name, spec, &o, &cx()).unwrap()
}

async fn observe_for(aws: &AwsContext, name: &str, spec: &KmsKeySpec) -> Option<KmsKeyObserved> {
    let wanted = [mlspace_gitops::kinds::runtime::Wanted {
        name,
        spec: Some(spec),
    }];
    KmsKey::observe(aws, &wanted, &cx())
        .await
        .unwrap()
        .remove(name)
}

async fn apply(aws: &AwsContext, name: &str, ops: &[Op]) {
    for op in ops {
        KmsKey::apply(aws, name, op, &cx())
            .await
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
}

async fn create(aws: &AwsContext, name: &str, spec: &KmsKeySpec) {
    let (_, ops) = KmsKey::create(name, spec, &cx());
    apply(aws, name, &ops).await;
}

fn fields(d: &Diff<Op>) -> Vec<&str> {
    d.0.iter().map(|f| f.field.as_str()).collect()
}

/// Every key id of the account and region.
async fn key_ids(aws: &AwsContext) -> BTreeSet<String> {
    let out = aws.kms().list_keys().send().await.unwrap();
    out.keys()
        .iter()
        .filter_map(|k| k.key_id().map(str::to_string))
        .collect()
}

/// The aliases (with `alias/`) that name `key_id`.
async fn aliases_of(aws: &AwsContext, key_id: &str) -> BTreeSet<String> {
    let out = aws
        .kms()
        .list_aliases()
        .key_id(key_id)
        .send()
        .await
        .unwrap();
    out.aliases()
        .iter()
        .filter_map(|a| a.alias_name().map(str::to_string))
        .collect()
}

async fn describe(aws: &AwsContext, key_id: &str) -> t::KeyMetadata {
    aws.kms()
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
}

fn sdk_tags(tags: &[(&str, &str)]) -> Vec<t::Tag> {
    tags.iter()
        .map(|(k, v)| t::Tag::builder().tag_key(*k).tag_value(*v).build().unwrap())
        .collect()
}

#[tokio::test]
async fn a_key_converges_and_drift_in_each_field_is_repaired() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = "mlspace-data";
    let spec = data_key();
    create(&aws, name, &spec).await;
    let keys = key_ids(&aws).await;
    // Creating again converges on the same key (an earlier attempt whose answer was lost).
    create(&aws, name, &spec).await;
    assert_eq!(key_ids(&aws).await, keys);

    let before = aws.stats.total();
    let o = observe_for(&aws, name, &spec).await.expect("created");
    assert_eq!(
        aws.stats.total() - before,
        5,
        "ListAliases, DescribeKey, ListResourceTags, GetKeyPolicy, GetKeyRotationStatus"
    );
    assert!(KmsKey::is_owned(&o));
    assert_eq!(o.tags[OWNERSHIP_TAG], OWNERSHIP_VALUE);
    assert_eq!(o.tags[NAME_TAG], name);
    assert_eq!(o.tags[WINDOW_TAG], "7");
    assert_eq!(o.key_state, state::ENABLED);
    assert_eq!(
        o.aliases,
        BTreeSet::from([name.to_string(), "mlspace-data-extra".to_string()])
    );
    assert_eq!(
        KmsKey::observed_arn(&o).unwrap(),
        format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{}", o.key_id)
    );
    assert!(o.rotation.as_ref().unwrap().enabled);
    assert_eq!(
        KmsKey::update(name, &spec, &o, &cx()).unwrap(),
        (vec![], vec![])
    );
    // A manifest that manages less reads less.
    let before = aws.stats.total();
    observe_for(&aws, name, &bare()).await.unwrap();
    assert_eq!(aws.stats.total() - before, 3);

    // Behind the engine's back: every updatable field.
    let kms = aws.kms();
    let id = o.key_id.as_str();
    kms.update_key_description()
        .key_id(id)
        .description("changed by hand")
        .send()
        .await
        .unwrap();
    kms.put_key_policy()
        .key_id(id)
        .policy_name("default")
        .policy(policy("intruder").to_string())
        .send()
        .await
        .unwrap();
    kms.disable_key_rotation().key_id(id).send().await.unwrap();
    kms.tag_resource()
        .key_id(id)
        .set_tags(Some(sdk_tags(&[("team", "other"), ("intruder", "x")])))
        .send()
        .await
        .unwrap();
    kms.create_alias()
        .alias_name("alias/by-hand")
        .target_key_id(id)
        .send()
        .await
        .unwrap();
    kms.delete_alias()
        .alias_name("alias/mlspace-data-extra")
        .send()
        .await
        .unwrap();
    kms.disable_key().key_id(id).send().await.unwrap();

    let d = plan(&aws, name, &spec).await;
    assert_eq!(
        fields(&d),
        [
            "spec.enabled",
            "spec.tags.intruder",
            "spec.tags.team",
            "spec.description",
            "spec.policy",
            "spec.enableKeyRotation",
            "spec.aliases"
        ]
    );
    // The policy change is shown as statements, as for IAM policies.
    let p = &d.0[4];
    assert_eq!(p.old.as_ref().unwrap().as_array().unwrap().len(), 1);
    assert_eq!(p.new.as_ref().unwrap().as_array().unwrap().len(), 1);
    assert_eq!(
        d.0[6].old,
        Some(json!(["by-hand"])),
        "the manifest name is not listed"
    );
    apply(&aws, name, &d.1).await;
    apply(&aws, name, &d.1).await; // idempotent
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));
    let m = describe(&aws, id).await;
    assert_eq!(m.key_state(), Some(&t::KeyState::Enabled));
    assert_eq!(m.description(), Some("MLSpace data"));
    assert_eq!(
        aliases_of(&aws, id).await,
        BTreeSet::from([
            "alias/mlspace-data".into(),
            "alias/mlspace-data-extra".into()
        ])
    );

    // Disabled through the manifest, and the deletion window kept on the key.
    let mut off = data_key();
    off.enabled = Some(false);
    off.deletion_window_in_days = 14;
    let d = plan(&aws, name, &off).await;
    assert_eq!(fields(&d), ["spec.deletionWindowInDays", "spec.enabled"]);
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &off).await, (vec![], vec![]));
    assert_eq!(
        describe(&aws, id).await.key_state(),
        Some(&t::KeyState::Disabled)
    );
    assert_eq!(observe(&aws, name).await.unwrap().deletion_window(), 14);
}

#[tokio::test]
async fn key_spec_usage_and_multi_region_cannot_change() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = "mlspace-signing";
    let mut spec = bare();
    spec.key_spec = KeySpec::Rsa2048;
    spec.key_usage = KeyUsage::SignVerify;
    spec.multi_region = true;
    create(&aws, name, &spec).await;
    let o = observe(&aws, name).await.unwrap();
    assert_eq!(
        (o.key_spec.as_str(), o.key_usage.as_str()),
        ("RSA_2048", "SIGN_VERIFY")
    );
    assert!(o.multi_region && o.key_id.starts_with("mrk-"), "{o:?}");
    // An asymmetric key has no automatic rotation: off, not an error.
    assert_eq!(o.rotation.as_ref().map(|r| r.enabled), Some(false));
    assert_eq!(
        KmsKey::update(name, &spec, &o, &cx()).unwrap(),
        (vec![], vec![])
    );

    let errs = KmsKey::update(name, &bare(), &o, &cx()).unwrap_err();
    let got: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(got, ["spec.keySpec", "spec.keyUsage", "spec.multiRegion"]);
    assert!(errs
        .iter()
        .all(|e| e.kind == Kind::KmsKey && e.name == name));
}

#[tokio::test]
async fn aliases_come_and_go_and_rotation_turns_on_and_off() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = "mlspace-notebooks";
    let mut spec = bare();
    spec.enable_key_rotation = Some(false);
    create(&aws, name, &spec).await;
    let id = observe(&aws, name).await.unwrap().key_id;

    // Two aliases added.
    spec.aliases = vec!["nb-a".into(), "nb-b".into()];
    let d = plan(&aws, name, &spec).await;
    assert_eq!(fields(&d), ["spec.aliases"]);
    assert_eq!(
        d.1,
        [
            Op::CreateAlias {
                key_id: Some(id.clone()),
                alias: "nb-a".into()
            },
            Op::CreateAlias {
                key_id: Some(id.clone()),
                alias: "nb-b".into()
            }
        ]
    );
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));
    // One removed; `metadata.name` always stays.
    spec.aliases = vec!["nb-b".into()];
    let d = plan(&aws, name, &spec).await;
    assert_eq!(
        d.1,
        [Op::DeleteAlias {
            key_id: id.clone(),
            alias: "nb-a".into()
        }]
    );
    apply(&aws, name, &d.1).await;
    apply(&aws, name, &d.1).await; // gone is done
    assert_eq!(
        aliases_of(&aws, &id).await,
        BTreeSet::from(["alias/mlspace-notebooks".into(), "alias/nb-b".into()])
    );
    // An alias another key holds is a conflict, not taken over.
    let other = aws
        .kms()
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    aws.kms()
        .create_alias()
        .alias_name("alias/taken")
        .target_key_id(&other)
        .send()
        .await
        .unwrap();
    let op = Op::CreateAlias {
        key_id: Some(id.clone()),
        alias: "taken".into(),
    };
    let err = KmsKey::apply(&aws, name, &op, &cx()).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Conflict, "{err}");
    // An alias planned for removal that moved to another key meanwhile is left to it.
    aws.kms()
        .create_alias()
        .alias_name("alias/moving")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let d = plan(&aws, name, &spec).await;
    assert_eq!(
        d.1,
        [Op::DeleteAlias {
            key_id: id.clone(),
            alias: "moving".into()
        }]
    );
    aws.kms()
        .update_alias()
        .alias_name("alias/moving")
        .target_key_id(&other)
        .send()
        .await
        .unwrap();
    apply(&aws, name, &d.1).await;
    assert!(aliases_of(&aws, &other).await.contains("alias/moving"));
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));

    // Rotation on, with a period (moto does not report it: unknown, no drift).
    spec.enable_key_rotation = Some(true);
    spec.rotation_period_in_days = Some(90);
    let d = plan(&aws, name, &spec).await;
    assert_eq!(fields(&d), ["spec.enableKeyRotation"]);
    assert_eq!(
        d.1,
        [Op::EnableRotation {
            key_id: Some(id.clone()),
            period_in_days: Some(90)
        }]
    );
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));
    let status = aws
        .kms()
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    // Off again.
    spec.enable_key_rotation = Some(false);
    spec.rotation_period_in_days = None;
    let d = plan(&aws, name, &spec).await;
    assert_eq!(d.1, [Op::DisableRotation { key_id: id.clone() }]);
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));
}

const ENVIRONMENT: &str = r#"apiVersion: mlspace-gitops/v1
kind: Environment
metadata:
  name: keys
spec:
  region: us-east-1
  account: "123456789012"
  tags:
    system: MLSpace
"#;

/// Manifests of the Environment plus `docs`, loaded from a new directory.
fn manifests(docs: &str) -> (tempfile::TempDir, manifest::Loaded) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("environment.yaml"), ENVIRONMENT).unwrap();
    if !docs.is_empty() {
        std::fs::write(dir.path().join("keys.yaml"), docs).unwrap();
    }
    let loaded = manifest::load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, loaded)
}

const DATA_KEY: &str = r#"apiVersion: mlspace-gitops/v1
kind: KmsKey
metadata:
  name: mlspace-data
spec:
  description: MLSpace data
  policy:
    Version: "2012-10-17"
    Statement:
      - Sid: Enable IAM User Permissions
        Effect: Allow
        Principal: {AWS: "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:root"}
        Action: "kms:*"
        Resource: "*"
  aliases: [mlspace-data-old]
  deletionWindowInDays: 9
"#;

#[tokio::test(flavor = "multi_thread")]
async fn prune_schedules_deletion_and_a_returning_manifest_gets_the_key_back() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let (_dir, loaded) = manifests(DATA_KEY);
    let planned = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    assert_eq!(planned.plan.changes[0].action, Action::Create);
    let report = apply_plan(
        &aws,
        &planned.plan,
        &planned.cx,
        &ApplyOptions::default(),
        |_| {},
    )
    .await;
    assert_eq!(report.failures().count(), 0);
    let again = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    assert!(!again.plan.has_changes(), "{}", again.plan);
    let id = observe(&aws, "mlspace-data").await.unwrap().key_id;
    let keys = key_ids(&aws).await;

    // The manifest is gone: prune schedules the deletion with its window, removes the aliases.
    let (_empty, none) = manifests("");
    let removals = [Removal {
        id: (Kind::KmsKey, "mlspace-data".to_string()),
        how: RemovalKind::Delete,
    }];
    let planned = observe_and_plan(&aws, &none.desired, &removals, &[]).await;
    let change = &planned.plan.changes[0];
    assert_eq!(change.action, Action::Delete, "{}", planned.plan);
    let report = apply_plan(
        &aws,
        &planned.plan,
        &planned.cx,
        &ApplyOptions::default(),
        |_| {},
    )
    .await;
    assert_eq!(report.failures().count(), 0);
    let m = describe(&aws, &id).await;
    assert_eq!(m.key_state(), Some(&t::KeyState::PendingDeletion));
    let in_days = (m.deletion_date().unwrap().secs()
        - aws_smithy_types::DateTime::from(std::time::SystemTime::now()).secs())
        as f64
        / 86_400.0;
    assert!((8.9..=9.1).contains(&in_days), "deleted in {in_days} days");
    assert!(aliases_of(&aws, &id).await.is_empty());
    assert!(observe(&aws, "mlspace-data").await.is_none());
    // Nothing left to do: the key is not found any more.
    let planned = observe_and_plan(&aws, &none.desired, &removals, &[]).await;
    assert!(!planned.plan.has_changes(), "{}", planned.plan);

    // Back within the window: the same key, cancelled and enabled, with its aliases.
    let planned = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    assert_eq!(planned.plan.changes[0].action, Action::Create);
    let report = apply_plan(
        &aws,
        &planned.plan,
        &planned.cx,
        &ApplyOptions::default(),
        |_| {},
    )
    .await;
    assert_eq!(report.failures().count(), 0);
    assert_eq!(key_ids(&aws).await, keys, "no new key");
    assert_eq!(
        describe(&aws, &id).await.key_state(),
        Some(&t::KeyState::Enabled)
    );
    assert_eq!(
        aliases_of(&aws, &id).await,
        BTreeSet::from(["alias/mlspace-data".into(), "alias/mlspace-data-old".into()])
    );
    let again = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    assert!(!again.plan.has_changes(), "{}", again.plan);

    // Scheduled by hand while in the manifests (aliases kept): cancelled and enabled.
    aws.kms()
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let planned = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    let change = &planned.plan.changes[0];
    assert_eq!(change.action, Action::Update);
    assert_eq!(change.fields[0].field, "keyState");
    let report = apply_plan(
        &aws,
        &planned.plan,
        &planned.cx,
        &ApplyOptions::default(),
        |_| {},
    )
    .await;
    assert_eq!(report.failures().count(), 0);
    assert_eq!(
        describe(&aws, &id).await.key_state(),
        Some(&t::KeyState::Enabled)
    );
    let again = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    assert!(!again.plan.has_changes(), "{}", again.plan);
}

#[tokio::test(flavor = "multi_thread")]
async fn retain_releases_the_key_and_changes_nothing_else() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = "mlspace-kept";
    let mut spec = data_key();
    spec.aliases.clear();
    create(&aws, name, &spec).await;
    let o = observe(&aws, name).await.unwrap();

    let (_empty, none) = manifests("");
    let removals = [Removal {
        id: (Kind::KmsKey, name.to_string()),
        how: RemovalKind::Release,
    }];
    let planned = observe_and_plan(&aws, &none.desired, &removals, &[]).await;
    assert_eq!(planned.plan.changes[0].action, Action::Forget);
    let report = apply_plan(
        &aws,
        &planned.plan,
        &planned.cx,
        &ApplyOptions::default(),
        |_| {},
    )
    .await;
    assert_eq!(report.failures().count(), 0);

    let after = observe(&aws, name).await.unwrap();
    assert!(!KmsKey::is_owned(&after));
    for k in [OWNERSHIP_TAG, NAME_TAG, WINDOW_TAG] {
        assert!(!after.tags.contains_key(k), "{k}: {:?}", after.tags);
    }
    assert_eq!(after.tags["team"], "ml");
    assert_eq!(
        (
            after.key_id.as_str(),
            after.key_state.as_str(),
            &after.aliases,
            &after.policy
        ),
        (o.key_id.as_str(), state::ENABLED, &o.aliases, &o.policy)
    );
    // Released is not ours: pruning it again does nothing.
    let planned = observe_and_plan(&aws, &none.desired, &removals, &[]).await;
    assert!(!planned.plan.has_changes(), "{}", planned.plan);
}

/// A key and alias made by hand, as someone else would.
async fn foreign_key(aws: &AwsContext, alias: &str) -> String {
    let id = aws
        .kms()
        .create_key()
        .description("made by hand")
        .policy(policy("mlspace-app-role").to_string())
        .key_usage(t::KeyUsageType::EncryptDecrypt)
        .set_tags(Some(sdk_tags(&[("team", "ml"), ("system", "MLSpace")])))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    aws.kms()
        .create_alias()
        .alias_name(format!("alias/{alias}"))
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_without_the_ownership_tag_is_a_conflict() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let id = foreign_key(&aws, "mlspace-data").await;

    let (_dir, loaded) = manifests(DATA_KEY);
    let planned = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    let change = &planned.plan.changes[0];
    assert_eq!(change.action, Action::Conflict, "{}", planned.plan);
    assert!(change.steps.is_empty());
    // Creating over it is refused too (a plan made before the alias appeared).
    let (_, ops) = KmsKey::create("mlspace-data", &data_key(), &cx());
    let err = KmsKey::apply(&aws, "mlspace-data", &ops[0], &cx())
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Conflict, "{err}");
    assert!(!KmsKey::is_owned(
        &observe(&aws, "mlspace-data").await.unwrap()
    ));
    assert_eq!(key_ids(&aws).await, BTreeSet::from([id]));
}

#[tokio::test(flavor = "multi_thread")]
async fn import_writes_a_manifest_that_plans_as_a_no_op() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let id = foreign_key(&aws, "mlspace-imported").await;
    aws.kms()
        .create_alias()
        .alias_name("alias/mlspace-imported-old")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    aws.kms()
        .enable_key_rotation()
        .key_id(&id)
        .send()
        .await
        .unwrap();

    let (dir, env_only) = manifests("");
    let request = Request::from([(
        Kind::KmsKey,
        vec!["mlspace-imported".to_string(), "not-there".to_string()],
    )]);
    let imported = import::import(&aws, &env_only.desired, &request)
        .await
        .unwrap();
    assert_eq!(imported.missing, [(Kind::KmsKey, "not-there".to_string())]);
    import::write_dir(dir.path(), &imported.documents).unwrap();
    let yaml = std::fs::read_to_string(dir.path().join("kms-key-mlspace-imported.yaml")).unwrap();
    for want in [
        "kind: KmsKey",
        "mlspace-gitops/adopt: \"true\"",
        "description: \"made by hand\"",
        "\"arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/mlspace-app-role\"",
        "enableKeyRotation: true",
        "- mlspace-imported-old",
        "team: ml",
    ] {
        assert!(yaml.contains(want), "{want} missing in\n{yaml}");
    }
    assert!(!yaml.contains("system: MLSpace"), "{yaml}");
    assert!(!yaml.contains(ACCOUNT), "{yaml}");

    // Adopting adds the tags of mlspace-gitops and changes nothing else.
    let loaded = manifest::load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let planned = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    assert!(planned.plan.errors.is_empty(), "{:?}", planned.plan.errors);
    let change = &planned.plan.changes[0];
    assert_eq!(change.action, Action::Update, "{}", planned.plan);
    let got: Vec<&str> = change.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        got,
        [
            "spec.deletionWindowInDays",
            format!("spec.tags.{OWNERSHIP_TAG}").as_str(),
            format!("spec.tags.{NAME_TAG}").as_str()
        ],
        "{}",
        planned.plan
    );
    let report = apply_plan(
        &aws,
        &planned.plan,
        &planned.cx,
        &ApplyOptions::default(),
        |_| {},
    )
    .await;
    assert_eq!(report.failures().count(), 0);
    let again = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    assert!(!again.plan.has_changes(), "{}", again.plan);
    assert_eq!(key_ids(&aws).await, BTreeSet::from([id]));
}

#[tokio::test]
async fn a_crash_between_create_key_and_create_alias_leaves_no_second_key() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let name = "mlspace-crash";
    let spec = data_key();
    // What the create step's CreateKey leaves when the process dies before CreateAlias.
    let (_, ops) = KmsKey::create(name, &spec, &cx());
    let Op::Create { key } = &ops[0] else {
        panic!("{ops:?}")
    };
    let tags: Vec<(&str, &str)> = key
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let orphan = aws
        .kms()
        .create_key()
        .key_usage(t::KeyUsageType::EncryptDecrypt)
        .set_tags(Some(sdk_tags(&tags)))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    // A key of someone else's carrying the same name tag but not ours is not taken.
    let foreign = aws
        .kms()
        .create_key()
        .set_tags(Some(sdk_tags(&[(NAME_TAG, name)])))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    assert!(
        observe(&aws, name).await.is_none(),
        "no alias yet: not found"
    );

    // The next run plans a create again, which takes the orphan.
    apply(&aws, name, &ops).await;
    assert_eq!(
        key_ids(&aws).await,
        BTreeSet::from([orphan.clone(), foreign])
    );
    let o = observe(&aws, name).await.unwrap();
    assert_eq!(o.key_id, orphan);
    // It was made by the crashed step with the manifest's settings but the description and
    // policy, which the next plan repairs.
    let d = plan(&aws, name, &spec).await;
    assert_eq!(fields(&d), ["spec.description", "spec.policy"]);
    apply(&aws, name, &d.1).await;
    assert_eq!(plan(&aws, name, &spec).await, (vec![], vec![]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_names_the_key_by_reference_before_and_after_it_exists() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let policy = r#"apiVersion: mlspace-gitops/v1
kind: ManagedPolicy
metadata:
  name: mlspace-app-policy
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Action: [kms:Decrypt, kms:GenerateDataKey]
        Resource: "{ref:KmsKey/mlspace-data.arn}"
"#;
    let (_dir, loaded) = manifests(&format!("{DATA_KEY}---\n{policy}"));
    let planned = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    let order: Vec<Kind> = planned.plan.changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        order,
        [Kind::KmsKey, Kind::ManagedPolicy],
        "{}",
        planned.plan
    );
    assert!(
        planned
            .plan
            .to_string()
            .contains("known after apply: KmsKey/mlspace-data.arn"),
        "{}",
        planned.plan
    );
    let report = apply_plan(
        &aws,
        &planned.plan,
        &planned.cx,
        &ApplyOptions::default(),
        |_| {},
    )
    .await;
    assert_eq!(report.failures().count(), 0);

    // The policy holds the ARN KMS gave the key, and the next plan fills it in from AWS.
    let key = observe(&aws, "mlspace-data").await.unwrap();
    let version = aws
        .iam()
        .get_policy_version()
        .policy_arn(format!("arn:aws:iam::{ACCOUNT}:policy/mlspace-app-policy"))
        .version_id("v1")
        .send()
        .await
        .unwrap();
    let doc =
        mlspace_policy::decode_iam_document(version.policy_version().unwrap().document().unwrap())
            .unwrap();
    assert_eq!(doc["Statement"][0]["Resource"], json!(key.arn), "{doc}");
    let again = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    assert!(!again.plan.has_changes(), "{}", again.plan);
}
