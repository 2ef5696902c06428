//! The IAM kinds (ManagedPolicy, Role, ServiceLinkedRole) against a real moto server:
//! observe → plan → apply, drift made behind the engine's back, the five-version limit,
//! deletion of a role that still has attachments, ownership, and the number of reads.

use std::collections::{BTreeMap, BTreeSet};

use mlspace_gitops::aws::{AwsContext, ErrorClass};
use mlspace_gitops::kinds::common::{Tags, OWNERSHIP_TAG, OWNERSHIP_VALUE};
use mlspace_gitops::kinds::managed_policy::diff::ManagedPolicyObserved;
use mlspace_gitops::kinds::managed_policy::{ManagedPolicy, ManagedPolicySpec, Op as PolicyOp};
use mlspace_gitops::kinds::role::diff::RoleObserved;
use mlspace_gitops::kinds::role::{Role, RoleSpec};
use mlspace_gitops::kinds::runtime::KindAws;
use mlspace_gitops::kinds::service_linked_role::diff::ServiceLinkedRoleObserved;
use mlspace_gitops::kinds::service_linked_role::{ServiceLinkedRole, ServiceLinkedRoleSpec};
use mlspace_gitops::kinds::{Kind, KindPlan, PlanCx};
use serde_json::{json, Value};

use crate::support::moto::policy_versions;
use crate::support::{Clients as _, Moto};

const ACCOUNT: &str = "123456789012";
const READONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

fn policy_arn(path: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy{path}{name}")
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn s3_doc(bucket: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "Objects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": [format!("arn:aws:s3:::{bucket}/*")]}]})
}

fn boundary_doc() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "logs:*", "sagemaker:*"], "Resource": "*"}]})
}

fn trust(service: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
}

fn policy_spec(doc: Value) -> ManagedPolicySpec {
    ManagedPolicySpec {
        document: Some(doc),
        document_file: None,
        path: "/mlspace/".into(),
        description: Some("MLSpace".into()),
        tags: tags(&[("team", "ml")]),
    }
}

/// The two policies and the role of the MLSpace notebook, as rendered manifests give them.
struct Fixture {
    cx: PlanCx,
    policies: BTreeMap<String, ManagedPolicySpec>,
    role: RoleSpec,
}

fn fixture() -> Fixture {
    let policies: BTreeMap<String, ManagedPolicySpec> = [
        ("boundary".to_string(), policy_spec(boundary_doc())),
        ("app".to_string(), policy_spec(s3_doc("data"))),
    ]
    .into();
    let mut cx = PlanCx {
        partition: "aws".into(),
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        ..PlanCx::default()
    };
    for (n, p) in &policies {
        cx.declare(Kind::ManagedPolicy, n, Some(p.arn("aws", ACCOUNT, n)));
    }
    let mut managed = vec![policy_arn("/mlspace/", "app"), READONLY.to_string()];
    managed.sort();
    let role = RoleSpec {
        assume_role_policy: Some(trust("sagemaker.amazonaws.com")),
        assume_role_policy_file: None,
        managed_policies: managed,
        inline_policies: [("s3".to_string(), s3_doc("scratch"))].into(),
        permissions_boundary: Some(policy_arn("/mlspace/", "boundary")),
        path: "/mlspace/".into(),
        description: Some("MLSpace notebook".into()),
        max_session_duration: Some(7200),
        instance_profile: true,
        tags: tags(&[("team", "ml"), ("env", "test")]),
    };
    Fixture { cx, policies, role }
}

async fn run<K: KindAws>(aws: &AwsContext, name: &str, ops: &[K::Op], cx: &PlanCx) {
    for op in ops {
        K::apply(aws, name, op, cx)
            .await
            .unwrap_or_else(|e| panic!("{name}: {op:?}: {e}"));
    }
}

async fn observe<K: KindAws>(
    aws: &AwsContext,
    names: &[&str],
    cx: &PlanCx,
) -> BTreeMap<String, K::Observed> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    K::observe_names(aws, &names, cx).await.unwrap()
}

async fn observe_policy(aws: &AwsContext, name: &str, cx: &PlanCx) -> ManagedPolicyObserved {
    observe::<ManagedPolicy>(aws, &[name], cx)
        .await
        .remove(name)
        .unwrap_or_else(|| panic!("policy {name} not observed"))
}

async fn observe_role(aws: &AwsContext, name: &str, cx: &PlanCx) -> RoleObserved {
    observe::<Role>(aws, &[name], cx)
        .await
        .remove(name)
        .unwrap_or_else(|| panic!("role {name} not observed"))
}

/// Create the fixture's policies, then the role, as the executor would.
async fn create_all(aws: &AwsContext, f: &Fixture, role: &str) {
    for (n, spec) in &f.policies {
        let (_, ops) = ManagedPolicy::create(n, spec, &f.cx);
        run::<ManagedPolicy>(aws, n, &ops, &f.cx).await;
    }
    let (_, ops) = Role::create(role, &f.role, &f.cx);
    run::<Role>(aws, role, &ops, &f.cx).await;
}

fn field_names(fields: &[mlspace_gitops::plan::FieldChange]) -> Vec<&str> {
    fields.iter().map(|f| f.field.as_str()).collect()
}

#[tokio::test]
async fn created_resources_observed_back_have_no_changes() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let f = fixture();
    create_all(&aws, &f, "notebook").await;

    for (n, spec) in &f.policies {
        let o = observe_policy(&aws, n, &f.cx).await;
        assert!(ManagedPolicy::is_owned(&o));
        assert_eq!(o.versions, ["v1"]);
        assert_eq!(
            ManagedPolicy::update(n, spec, &o, &f.cx).unwrap(),
            (vec![], vec![]),
            "{n}: {o:#?}"
        );
    }
    let o = observe_role(&aws, "notebook", &f.cx).await;
    assert!(Role::is_owned(&o));
    assert_eq!(
        o.instance_profiles,
        BTreeSet::from(["notebook".to_string()])
    );
    assert_eq!(
        o.permissions_boundary.as_deref(),
        Some(policy_arn("/mlspace/", "boundary").as_str())
    );
    assert_eq!(
        Role::update("notebook", &f.role, &o, &f.cx).unwrap(),
        (vec![], vec![]),
        "{o:#?}"
    );

    // Many names go through GetAccountAuthorizationDetails: the same picture, absent names left out.
    let via_gaad = observe::<Role>(
        &aws,
        &["notebook", "absent-1", "absent-2", "absent-3"],
        &f.cx,
    )
    .await;
    assert_eq!(via_gaad.keys().collect::<Vec<_>>(), ["notebook"]);
    assert_eq!(via_gaad["notebook"], o);
    let via_gaad =
        observe::<ManagedPolicy>(&aws, &["app", "boundary", "absent-1", "absent-2"], &f.cx).await;
    assert_eq!(via_gaad.keys().collect::<Vec<_>>(), ["app", "boundary"]);
    for (n, o) in &via_gaad {
        assert_eq!(*o, observe_policy(&aws, n, &f.cx).await);
    }
}

#[tokio::test]
async fn drift_made_behind_its_back_is_reported_and_repaired() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let f = fixture();
    create_all(&aws, &f, "notebook").await;

    let iam = &aws.iam();
    iam.update_assume_role_policy()
        .role_name("notebook")
        .policy_document(trust("ec2.amazonaws.com").to_string())
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("notebook")
        .policy_name("s3")
        .policy_document(s3_doc("elsewhere").to_string())
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("notebook")
        .policy_name("extra")
        .policy_document(s3_doc("extra").to_string())
        .send()
        .await
        .unwrap();
    iam.tag_role()
        .role_name("notebook")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("extra")
                .value("x")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name("notebook")
        .policy_arn(policy_arn("/mlspace/", "app"))
        .send()
        .await
        .unwrap();

    let o = observe_role(&aws, "notebook", &f.cx).await;
    let (fields, ops) = Role::update("notebook", &f.role, &o, &f.cx).unwrap();
    assert_eq!(
        field_names(&fields),
        [
            "spec.assumeRolePolicy",
            "spec.managedPolicies",
            "spec.inlinePolicies.extra",
            "spec.inlinePolicies.s3",
            "spec.tags.extra"
        ]
    );
    // Documents show the statements that go and come, not whole documents.
    assert_eq!(
        fields[0].old,
        Some(trust("ec2.amazonaws.com")["Statement"].clone())
    );
    assert_eq!(
        fields[0].new,
        Some(trust("sagemaker.amazonaws.com")["Statement"].clone())
    );
    assert_eq!(fields[1].old, Some(json!([])));
    assert_eq!(fields[1].new, Some(json!([policy_arn("/mlspace/", "app")])));
    assert_eq!(fields[4].new, None);

    run::<Role>(&aws, "notebook", &ops, &f.cx).await;
    let o = observe_role(&aws, "notebook", &f.cx).await;
    assert_eq!(
        Role::update("notebook", &f.role, &o, &f.cx).unwrap(),
        (vec![], vec![]),
        "{o:#?}"
    );

    // Tags of a policy too.
    iam.tag_policy()
        .policy_arn(policy_arn("/mlspace/", "app"))
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("other")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let o = observe_policy(&aws, "app", &f.cx).await;
    let (fields, ops) = ManagedPolicy::update("app", &f.policies["app"], &o, &f.cx).unwrap();
    assert_eq!(field_names(&fields), ["spec.tags.team"]);
    run::<ManagedPolicy>(&aws, "app", &ops, &f.cx).await;
    let o = observe_policy(&aws, "app", &f.cx).await;
    assert_eq!(
        ManagedPolicy::update("app", &f.policies["app"], &o, &f.cx).unwrap(),
        (vec![], vec![])
    );
}

#[tokio::test]
async fn six_updates_keep_at_most_five_versions() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let f = fixture();
    let (_, ops) = ManagedPolicy::create("app", &f.policies["app"], &f.cx);
    run::<ManagedPolicy>(&aws, "app", &ops, &f.cx).await;
    let arn = policy_arn("/mlspace/", "app");

    for i in 1..=6 {
        let spec = policy_spec(s3_doc(&format!("bucket-{i}")));
        let o = observe_policy(&aws, "app", &f.cx).await;
        let (fields, ops) = ManagedPolicy::update("app", &spec, &o, &f.cx).unwrap();
        assert_eq!(field_names(&fields), ["spec.document"]);
        let [PolicyOp::CreateVersion { delete_oldest, .. }] = &ops[..] else {
            panic!("{ops:?}")
        };
        assert_eq!(
            delete_oldest.is_some(),
            o.versions.len() == 5,
            "update {i}: {:?}",
            o.versions
        );
        run::<ManagedPolicy>(&aws, "app", &ops, &f.cx).await;

        let versions = policy_versions(&aws, &arn).await;
        assert!(
            versions.len() <= 5,
            "update {i}: {} versions",
            versions.len()
        );
        assert_eq!(versions.iter().filter(|v| v.is_default_version).count(), 1);
        let o = observe_policy(&aws, "app", &f.cx).await;
        assert_eq!(
            ManagedPolicy::update("app", &spec, &o, &f.cx).unwrap(),
            (vec![], vec![]),
            "update {i}"
        );
        assert_eq!(o.default_version, format!("v{}", i + 1));
    }
    let o = observe_policy(&aws, "app", &f.cx).await;
    assert_eq!(o.versions, ["v3", "v4", "v5", "v6", "v7"]);
}

#[tokio::test]
async fn deleting_a_role_removes_attachments_inline_policies_and_instance_profile() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let f = fixture();
    create_all(&aws, &f, "notebook").await;
    let iam = &aws.iam();
    // Also in somebody else's instance profile, which stays (emptied).
    iam.create_instance_profile()
        .instance_profile_name("other-profile")
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name("other-profile")
        .role_name("notebook")
        .send()
        .await
        .unwrap();

    let o = observe_role(&aws, "notebook", &f.cx).await;
    let ops = Role::delete("notebook", &o);
    run::<Role>(&aws, "notebook", &ops, &f.cx).await;
    assert!(observe::<Role>(&aws, &["notebook"], &f.cx).await.is_empty());
    assert!(
        iam.get_instance_profile()
            .instance_profile_name("notebook")
            .send()
            .await
            .is_err(),
        "our instance profile is deleted"
    );
    let other = iam
        .get_instance_profile()
        .instance_profile_name("other-profile")
        .send()
        .await
        .unwrap();
    assert!(other.instance_profile.unwrap().roles.is_empty());
    // Steps are idempotent: running them again changes nothing and does not fail.
    run::<Role>(&aws, "notebook", &ops, &f.cx).await;

    // A policy with old versions, attached to a role that is not ours, is deleted too.
    let app = policy_arn("/mlspace/", "app");
    iam.create_role()
        .role_name("outsider")
        .assume_role_policy_document(trust("ec2.amazonaws.com").to_string())
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name("outsider")
        .policy_arn(&app)
        .send()
        .await
        .unwrap();
    iam.create_policy_version()
        .policy_arn(&app)
        .policy_document(s3_doc("v2").to_string())
        .set_as_default(false)
        .send()
        .await
        .unwrap();
    let o = observe_policy(&aws, "app", &f.cx).await;
    let ops = ManagedPolicy::delete("app", &o);
    assert_eq!(
        ops,
        vec![PolicyOp::Delete {
            arn: app.clone(),
            versions: vec!["v2".into()]
        }]
    );
    run::<ManagedPolicy>(&aws, "app", &ops, &f.cx).await;
    assert!(observe::<ManagedPolicy>(&aws, &["app"], &f.cx)
        .await
        .is_empty());
    let attached = iam
        .list_attached_role_policies()
        .role_name("outsider")
        .send()
        .await
        .unwrap();
    assert!(attached.attached_policies().is_empty());
    run::<ManagedPolicy>(&aws, "app", &ops, &f.cx).await;
}

#[tokio::test]
async fn resources_without_the_ownership_tag_are_not_owned() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let f = fixture();
    let iam = &aws.iam();
    iam.create_role()
        .role_name("handmade")
        .assume_role_policy_document(trust("ec2.amazonaws.com").to_string())
        .send()
        .await
        .unwrap();
    iam.create_policy()
        .policy_name("handmade-policy")
        .policy_document(s3_doc("x").to_string())
        .send()
        .await
        .unwrap();
    let ownership = aws_sdk_iam::types::Tag::builder()
        .key(OWNERSHIP_TAG)
        .value(OWNERSHIP_VALUE)
        .build()
        .unwrap();
    iam.create_role()
        .role_name("tagged")
        .assume_role_policy_document(trust("ec2.amazonaws.com").to_string())
        .tags(ownership)
        .send()
        .await
        .unwrap();

    let roles = observe::<Role>(&aws, &["handmade", "tagged"], &f.cx).await;
    assert!(!Role::is_owned(&roles["handmade"]));
    assert!(Role::is_owned(&roles["tagged"]));
    let policies = observe::<ManagedPolicy>(&aws, &["handmade-policy"], &f.cx).await;
    assert!(!ManagedPolicy::is_owned(&policies["handmade-policy"]));

    // A create that meets somebody else's role refuses to take it over.
    let (_, ops) = Role::create("handmade", &f.role, &f.cx);
    let err = Role::apply(&aws, "handmade", &ops[0], &f.cx)
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Conflict, "{err}");
}

#[tokio::test]
async fn create_steps_run_twice_converge() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let f = fixture();
    create_all(&aws, &f, "notebook").await;
    // As if every answer had been lost and the executor ran the steps again.
    create_all(&aws, &f, "notebook").await;
    for (n, spec) in &f.policies {
        let o = observe_policy(&aws, n, &f.cx).await;
        assert_eq!(o.versions, ["v1"], "{n}: no version for an equal document");
        assert_eq!(
            ManagedPolicy::update(n, spec, &o, &f.cx).unwrap(),
            (vec![], vec![])
        );
    }
    let o = observe_role(&aws, "notebook", &f.cx).await;
    assert_eq!(
        Role::update("notebook", &f.role, &o, &f.cx).unwrap(),
        (vec![], vec![])
    );

    // A create meeting our own role whose trust policy drifted converges it.
    aws.iam()
        .update_assume_role_policy()
        .role_name("notebook")
        .policy_document(trust("ec2.amazonaws.com").to_string())
        .send()
        .await
        .unwrap();
    let (_, ops) = Role::create("notebook", &f.role, &f.cx);
    Role::apply(&aws, "notebook", &ops[0], &f.cx).await.unwrap();
    let o = observe_role(&aws, "notebook", &f.cx).await;
    assert_eq!(
        Role::update("notebook", &f.role, &o, &f.cx).unwrap(),
        (vec![], vec![])
    );
}

#[tokio::test]
async fn service_linked_role_is_created_updated_and_deleted() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let cx = PlanCx {
        partition: "aws".into(),
        account: ACCOUNT.into(),
        ..PlanCx::default()
    };
    // The name moto gives the role for this service.
    let name = "AWSServiceRoleForelasticmapreduce";
    let mut spec = ServiceLinkedRoleSpec {
        aws_service_name: "elasticmapreduce.amazonaws.com".into(),
        description: None,
        custom_suffix: None,
    };
    assert!(observe::<ServiceLinkedRole>(&aws, &[name], &cx)
        .await
        .is_empty());
    let (_, ops) = ServiceLinkedRole::create(name, &spec, &cx);
    run::<ServiceLinkedRole>(&aws, name, &ops, &cx).await;
    run::<ServiceLinkedRole>(&aws, name, &ops, &cx).await; // exists: nothing to do

    let o: ServiceLinkedRoleObserved = observe::<ServiceLinkedRole>(&aws, &[name], &cx)
        .await
        .remove(name)
        .unwrap();
    assert!(ServiceLinkedRole::is_owned(&o));
    assert_eq!(
        o.aws_service_name.as_deref(),
        Some("elasticmapreduce.amazonaws.com")
    );
    assert_eq!(
        ServiceLinkedRole::update(name, &spec, &o, &cx).unwrap(),
        (vec![], vec![])
    );

    spec.description = Some("EMR".into());
    let (_, ops) = ServiceLinkedRole::update(name, &spec, &o, &cx).unwrap();
    run::<ServiceLinkedRole>(&aws, name, &ops, &cx).await;
    let many = observe::<ServiceLinkedRole>(&aws, &[name, "a", "b", "c"], &cx).await;
    assert_eq!(many[name].description.as_deref(), Some("EMR"));
    assert_eq!(
        ServiceLinkedRole::update(name, &spec, &many[name], &cx).unwrap(),
        (vec![], vec![])
    );

    run::<ServiceLinkedRole>(&aws, name, &ServiceLinkedRole::delete(name, &o), &cx).await;
    assert!(observe::<ServiceLinkedRole>(&aws, &[name], &cx)
        .await
        .is_empty());
    run::<ServiceLinkedRole>(&aws, name, &ServiceLinkedRole::delete(name, &o), &cx).await;
}

/// Requests per operation made while `f` ran.
async fn calls<F: std::future::Future>(aws: &AwsContext, f: F) -> BTreeMap<String, u64> {
    let before = aws.stats.by_operation();
    f.await;
    let mut after = aws.stats.by_operation();
    for (op, n) in before {
        *after.get_mut(&op).unwrap() -= n;
    }
    after.retain(|_, n| *n > 0);
    after
}

#[tokio::test]
async fn many_roles_and_policies_are_read_with_one_authorization_details_call() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let cx = PlanCx {
        partition: "aws".into(),
        account: ACCOUNT.into(),
        ..PlanCx::default()
    };
    let roles: Vec<String> = (0..20).map(|i| format!("role-{i}")).collect();
    let policies: Vec<String> = (0..21).map(|i| format!("policy-{i}")).collect();
    for r in &roles {
        aws.iam()
            .create_role()
            .role_name(r)
            .assume_role_policy_document(trust("ec2.amazonaws.com").to_string())
            .send()
            .await
            .unwrap();
        aws.iam()
            .put_role_policy()
            .role_name(r)
            .policy_name("inline")
            .policy_document(s3_doc(r).to_string())
            .send()
            .await
            .unwrap();
    }
    for p in &policies {
        aws.iam()
            .create_policy()
            .policy_name(p)
            .policy_document(s3_doc(p).to_string())
            .send()
            .await
            .unwrap();
    }

    // Observed together, as the observe stage does.
    let mut seen = (BTreeMap::new(), BTreeMap::new());
    let n = calls(&aws, async {
        let (r, p) = tokio::join!(
            Role::observe_names(&aws, &roles, &cx),
            ManagedPolicy::observe_names(&aws, &policies, &cx)
        );
        seen = (r.unwrap(), p.unwrap());
    })
    .await;
    assert_eq!((seen.0.len(), seen.1.len()), (20, 21));
    assert_eq!(seen.0["role-3"].inline_policies["inline"], s3_doc("role-3"));
    let expected: BTreeMap<String, u64> = [
        ("IAM:GetAccountAuthorizationDetails".to_string(), 1),
        ("IAM:ListRoles".to_string(), 1),
        ("IAM:ListPolicyTags".to_string(), 21),
    ]
    .into();
    assert_eq!(n, expected);

    // One after the other: the second reader takes the first one's answer.
    let n = calls(&aws, async {
        Role::observe_names(&aws, &roles, &cx).await.unwrap();
        ManagedPolicy::observe_names(&aws, &policies, &cx)
            .await
            .unwrap();
    })
    .await;
    assert_eq!(n, expected);

    // A write in between: the answer is stale, so the second reader asks again.
    let n = calls(&aws, async {
        Role::observe_names(&aws, &roles, &cx).await.unwrap();
        aws.iam()
            .delete_role_policy()
            .role_name("role-0")
            .policy_name("inline")
            .send()
            .await
            .unwrap();
        let again = Role::observe_names(&aws, &roles, &cx).await.unwrap();
        assert!(again["role-0"].inline_policies.is_empty());
        ManagedPolicy::observe_names(&aws, &policies, &cx)
            .await
            .unwrap();
    })
    .await;
    assert_eq!(n["IAM:GetAccountAuthorizationDetails"], 2);

    // Three or fewer names are read resource by resource, without GAAD.
    let n = calls(&aws, async {
        Role::observe_names(&aws, &roles[1..2], &cx).await.unwrap();
    })
    .await;
    assert_eq!(
        n.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "IAM:GetRole",
            "IAM:GetRolePolicy",
            "IAM:ListAttachedRolePolicies",
            "IAM:ListInstanceProfilesForRole",
            "IAM:ListRolePolicies"
        ]
    );
}

#[tokio::test]
async fn roles_are_listed_only_when_a_spec_manages_description_or_session_length() {
    use mlspace_gitops::kinds::runtime::Wanted;
    let moto = Moto::start();
    let aws = moto.aws().await;
    let cx = fixture().cx;
    let names: Vec<String> = (0..5).map(|i| format!("listed-{i}")).collect();
    for r in &names {
        aws.iam()
            .create_role()
            .role_name(r)
            .description("made elsewhere")
            .assume_role_policy_document(trust("ec2.amazonaws.com").to_string())
            .send()
            .await
            .unwrap();
    }
    let plain = RoleSpec {
        description: None,
        max_session_duration: None,
        ..fixture().role
    };
    let described = RoleSpec {
        max_session_duration: None,
        ..fixture().role
    };
    let observe_with = |specs: Vec<RoleSpec>| {
        let aws = aws.clone();
        let cx = cx.clone();
        let names = names.clone();
        async move {
            let wanted: Vec<Wanted<'_, RoleSpec>> = names
                .iter()
                .zip(&specs)
                .map(|(n, s)| Wanted {
                    name: n,
                    spec: Some(s),
                })
                .collect();
            let mut seen = BTreeMap::new();
            let n = calls(&aws, async {
                seen = Role::observe(&aws, &wanted, &cx).await.unwrap();
            })
            .await;
            (n, seen)
        }
    };
    // No spec manages either setting: no ListRoles (it pages through every role of the
    // account).
    let (n, seen) = observe_with(vec![plain.clone(); 5]).await;
    assert_eq!(seen.len(), 5);
    assert!(!n.contains_key("IAM:ListRoles"), "{n:?}");
    assert_eq!(
        seen["listed-0"].description, None,
        "not read, so never compared"
    );
    // One does: listed, and the description is read.
    let mut specs = vec![plain; 5];
    specs[2] = described;
    let (n, seen) = observe_with(specs).await;
    assert_eq!(n.get("IAM:ListRoles"), Some(&1), "{n:?}");
    assert_eq!(
        seen["listed-2"].description.as_deref(),
        Some("made elsewhere")
    );
}

#[tokio::test]
async fn path_change_is_a_plan_error_not_a_missing_resource() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let f = fixture();
    create_all(&aws, &f, "notebook").await;

    // The manifests now say /other/: the policy is found by name at its old path.
    let mut moved = f.policies["app"].clone();
    moved.path = "/other/".into();
    let mut cx = f.cx.clone();
    // Declaring it again replaces its ARN.
    cx.by_arn.retain(|_, (_, n)| n != "app");
    cx.declare(
        Kind::ManagedPolicy,
        "app",
        Some(moved.arn("aws", ACCOUNT, "app")),
    );
    let o = observe_policy(&aws, "app", &cx).await;
    assert_eq!(o.path, "/mlspace/");
    let errs = ManagedPolicy::update("app", &moved, &o, &cx).unwrap_err();
    assert_eq!(field_names_of(&errs), ["spec.path"]);

    let mut role = f.role.clone();
    role.path = "/other/".into();
    let o = observe_role(&aws, "notebook", &f.cx).await;
    let errs = Role::update("notebook", &role, &o, &f.cx).unwrap_err();
    assert_eq!(field_names_of(&errs), ["spec.path"]);
}

fn field_names_of(errs: &[mlspace_gitops::plan::PlanError]) -> Vec<&str> {
    errs.iter().map(|e| e.field.as_str()).collect()
}
