//! Seed fidelity: every statement of the MLSpace seed policy documents must be granted by
//! the rendered `manifests/`, or be a named deviation.
//!
//! The seed documents are copied verbatim (as data) into `tests/fixtures/seeds/` with the
//! seeds' own `{AWS_ACCOUNT}`-style placeholders; see the README there for where each one
//! comes from. Here each one is resolved with the rendered Environment's values and its
//! statements are looked up in the rendered document that `docs/mlspace-choices.md` maps it
//! to: a ManagedPolicy document or a Role trust policy. A statement is present when the
//! document grants each of its (principal, action, resource) pairs with the same effect and
//! the same condition, after IAM's semantic normal form (`mlspace_policy::normalize`): the
//! manifests follow MLSpace v1.6.10's CloudFormation, which merges statements that share a
//! condition, so a seed statement may be part of a larger one.
//!
//! The deliberate deviations recorded in `docs/mlspace-choices.md` are listed below as
//! named exceptions ([`DEVIATIONS`]): how the manifests changed a seed statement, or that
//! they dropped it. An exception does not skip a statement: the changed statement is checked
//! instead, and a separate test proves each exception is still needed (so a stale one fails
//! too). What the manifests grant beyond their seeds is listed in [`ADDITIONS`], with the
//! same checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mlspace_gitops::manifest::{load_dir, render};
use mlspace_policy::normalize;
use serde_json::{json, Value};

use crate::support::{manifests_copy, manifests_dir, placeholder_in, read_json, root};

// ---------------------------------------------------------------------------------------
// Which seed document is checked against which rendered document.
// ---------------------------------------------------------------------------------------

/// Where a seed document must be found after rendering.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    /// `spec.document` of the ManagedPolicy with this name.
    Policy(&'static str),
    /// `spec.assumeRolePolicy` of the Role with this name.
    Trust(&'static str),
}

/// Seed fixture → rendered document, as `docs/mlspace-choices.md` ("Which policy version",
/// "Names we made up", "Roles") assigns them.
const MAPPINGS: &[(&str, Target)] = &[
    // Seed 002, the newer Notebook Policy page: statements 1..14 (15 statements, the page
    // numbers "Statement 11" twice).
    (
        "002-notebook-policy-page.notebook-policy.json",
        Target::Policy("mlspace-notebook-policy"),
    ),
    // Seed 003, the newer Project User Permission Boundary page: the "Full Policy".
    (
        "003-permission-boundary-page.permission-boundary-policy.json",
        Target::Policy("mlspace-project-user-permission-boundary"),
    ),
    // Seed 000, CDK Deployment doc: the policies no newer page replaces.
    (
        "000-cdk-deployment.app-policy.json",
        Target::Policy("mlspace-app-policy"),
    ),
    (
        "000-cdk-deployment.system-policy.json",
        Target::Policy("mlspace-system-policy"),
    ),
    (
        "000-cdk-deployment.s3-reader-policy.json",
        Target::Policy("mlspace-website-read-policy"),
    ),
    // Seed 000 trust policies ("Custom trust policy" of each role section).
    (
        "000-cdk-deployment.notebook-role-trust-policy.json",
        Target::Trust("mlspace-notebook-role"),
    ),
    (
        "000-cdk-deployment.app-role-trust-policy.json",
        Target::Trust("mlspace-app-role"),
    ),
    (
        "000-cdk-deployment.system-role-trust-policy.json",
        Target::Trust("mlspace-system-role"),
    ),
    (
        "000-cdk-deployment.s3-reader-role-trust-policy.json",
        Target::Trust("mlspace-s3-reader-Role"),
    ),
    (
        "000-cdk-deployment.apigw-cloudwatch-role-trust-policy.json",
        Target::Trust("mlspace-apigw-cloudwatch-role"),
    ),
];

/// Seed fixtures kept as data but not checked, with the reason.
const SUPERSEDED: &[(&str, &str)] = &[
    (
        "000-cdk-deployment.notebook-policy.json",
        "older version of the notebook policy: seed 002 (the Notebook Policy page) replaces it and is \
         what mlspace-notebook-policy is checked against (docs/mlspace-choices.md, \"Which policy version\"). \
         The two versions differ statement by statement (e.g. 000 has no translate job, ListWorkteams, PassRole or bedrock \
         grants and no `system=MLSpace` tag conditions), so one policy cannot match both.",
    ),
    (
        "000-cdk-deployment.permission-boundary-policy.json",
        "older version of the permission boundary: seed 003 (the Project User Permission Boundary \
         page, \"Full Policy\") replaces it and is what mlspace-project-user-permission-boundary \
         is checked against (docs/mlspace-choices.md, \"Which policy version\"). The 000 version lacks the \
         group/* dataset prefix and the translate PassRole, among others.",
    ),
];

// ---------------------------------------------------------------------------------------
// Deliberate deviations (docs/mlspace-choices.md, "Deviations from the seed pages").
// ---------------------------------------------------------------------------------------
//
// manifests/ follows MLSpace v1.6.10's CloudFormation (tests/it/fidelity.rs); where that
// differs from a seed document, the seed statement is named here with what the manifests
// hold instead, or as dropped, and the statements the manifests add are in ADDITIONS.

/// A named exception: one seed statement the manifests change or drop on purpose.
struct Deviation {
    /// Short name, used in failure messages.
    name: &'static str,
    /// The seed fixture.
    fixture: &'static str,
    /// 0-based index into the fixture's `Statement` list.
    index: usize,
    /// Why (from docs/mlspace-choices.md).
    reason: &'static str,
    /// Turns the seed statement into what the manifests must hold (`null`: nothing).
    apply: fn(&mut Value),
}

const NOTEBOOK_PAGE: &str = "002-notebook-policy-page.notebook-policy.json";
const BOUNDARY_PAGE: &str = "003-permission-boundary-page.permission-boundary-policy.json";
const APP_POLICY: &str = "000-cdk-deployment.app-policy.json";
const SYSTEM_POLICY: &str = "000-cdk-deployment.system-policy.json";

const DEVIATIONS: &[Deviation] = &[
    // Seed 002, the Notebook Policy page.
    Deviation {
        name: "notebook statement 4: translate:List* for the three translate List actions",
        fixture: NOTEBOOK_PAGE,
        index: 3,
        reason: "v1.6.10 grants translate:List* (also ListParallelData and any later List action)",
        apply: translate_list_wildcard,
    },
    Deviation {
        name: "notebook statement 5: CreateEndpoint on any SageMaker resource",
        fixture: NOTEBOOK_PAGE,
        index: 4,
        reason: "v1.6.10 grants CreateEndpoint (with the same tag conditions) on arn:...:sagemaker:REGION:ACCOUNT:*, \
                 so the condition also covers the endpoint config the request names",
        apply: any_sagemaker_resource,
    },
    Deviation {
        name: "notebook statement 8: CreateLabelingJob on any SageMaker resource",
        fixture: NOTEBOOK_PAGE,
        index: 7,
        reason: "v1.6.10 grants CreateLabelingJob (with the same tag conditions) on arn:...:sagemaker:REGION:ACCOUNT:*",
        apply: any_sagemaker_resource,
    },
    Deviation {
        name: "notebook statement 9: conditions on the resource's tags",
        fixture: NOTEBOOK_PAGE,
        index: 8,
        reason: "the page conditions Describe/Stop/Delete/Invoke/Update on aws:RequestTag/user|project|system, \
                 keys those requests never carry, so the statement would grant nothing; v1.6.10 and the page's \
                 own text use the resource's tags (all three present, system=MLSpace)",
        apply: request_tag_to_resource_tag,
    },
    Deviation {
        name: "notebook statement 14: bedrock only for tagged requests and resources",
        fixture: NOTEBOOK_PAGE,
        index: 14, // "Statement 14" on the page (15th statement: "Statement 11" is used twice)
        reason: "the page's JSON allows bedrock only when the project/user/system tags are absent \
                 (Null: true, StringNotEqualsIgnoreCase), against its own text (\"if it is tagged appropriately\"); \
                 v1.6.10 requires the tags present and system=MLSpace (the duplicate bedrock:Retrieve* goes too)",
        apply: bedrock_requires_tags,
    },
    // Seed 003, the Project User Permission Boundary page.
    Deviation {
        name: "boundary statement 9: translate:List* for the three translate List actions",
        fixture: BOUNDARY_PAGE,
        index: 8,
        reason: "v1.6.10 grants translate:List*, as in the notebook policy",
        apply: translate_list_wildcard,
    },
    Deviation {
        name: "boundary statement 10: CreateEndpoint on any SageMaker resource, system=MLSpace",
        fixture: BOUNDARY_PAGE,
        index: 9,
        reason: "v1.6.10 allows CreateEndpoint/CreateEndpointConfig/CreateLabelingJob/CreateTransformJob in one \
                 statement on arn:*:sagemaker:*:ACCOUNT:* and requires system=MLSpace (the page: any system tag)",
        apply: create_on_any_resource_for_mlspace,
    },
    Deviation {
        name: "boundary statement 12: CreateModel requires system=MLSpace",
        fixture: BOUNDARY_PAGE,
        index: 11,
        reason: "v1.6.10 requires the system tag to be MLSpace, as the notebook policy does (the page: any system tag)",
        apply: request_system_is_mlspace,
    },
    Deviation {
        name: "boundary statement 13: CreateLabelingJob on any SageMaker resource, system=MLSpace",
        fixture: BOUNDARY_PAGE,
        index: 12,
        reason: "v1.6.10's combined Create statement (see boundary statement 10)",
        apply: create_on_any_resource_for_mlspace,
    },
    Deviation {
        name: "boundary statement 14: Describe/Stop/... require system=MLSpace",
        fixture: BOUNDARY_PAGE,
        index: 13,
        reason: "v1.6.10 requires the resource's system tag to be MLSpace, as the notebook policy does \
                 (the page: any system tag)",
        apply: resource_system_is_mlspace,
    },
    Deviation {
        name: "boundary statement 18: CreateEndpointConfig on any SageMaker resource, system=MLSpace",
        fixture: BOUNDARY_PAGE,
        index: 17,
        reason: "v1.6.10's combined Create statement (see boundary statement 10)",
        apply: create_on_any_resource_for_mlspace,
    },
    Deviation {
        name: "boundary statement 19: CreateHyperParameterTuningJob/CreateTrainingJob require system=MLSpace",
        fixture: BOUNDARY_PAGE,
        index: 18,
        reason: "v1.6.10 requires the system tag to be MLSpace (the page: any system tag)",
        apply: request_system_is_mlspace,
    },
    Deviation {
        name: "boundary statement 20: CreateTransformJob on any SageMaker resource, system=MLSpace",
        fixture: BOUNDARY_PAGE,
        index: 19,
        reason: "v1.6.10's combined Create statement (see boundary statement 10)",
        apply: create_on_any_resource_for_mlspace,
    },
    // Seed 000, the App Role's application policy.
    Deviation {
        name: "app policy: CreateNotebookInstance does not require a system tag",
        fixture: APP_POLICY,
        index: 7,
        reason: "v1.6.10 requires the user and project request tags (and the VPC settings) but not the system tag",
        apply: drop_null_request_system,
    },
    Deviation {
        name: "app policy: the translate statement is left to the notebook policy",
        fixture: APP_POLICY,
        index: 15,
        reason: "v1.6.10's app policy has no translate statement; the notebook policy, attached to the app role \
                 too, grants translate:DescribeTextTranslationJob, List*, Start/StopTextTranslationJob, \
                 TranslateDocument and TranslateText",
        apply: dropped,
    },
    Deviation {
        name: "app policy: attach/detach only MLSpace-app-denied-services",
        fixture: APP_POLICY,
        index: 18,
        reason: "v1.6.10 lets the app attach and detach only MLSpace-app-denied-services on the app, notebook and \
                 MLSpace* roles; the instance-constraint policies are attached at deployment",
        apply: attach_only_denied_services,
    },
    // Seed 000, the System Role's least-privilege policy. v1.6.10 takes the page's other option
    // ("re-use the policy you created ... for the App Role as well as the notebook policy"): the
    // system policy is the app policy for the system role, and the notebook policy is attached too.
    Deviation {
        name: "system policy: translate statement left to the notebook policy",
        fixture: SYSTEM_POLICY,
        index: 13,
        reason: "v1.6.10's system policy is the app policy's shape; the notebook policy, attached to the system \
                 role, grants these translate actions",
        apply: dropped,
    },
    Deviation {
        name: "system policy: CloudWatch and Logs actions left to the notebook policy",
        fixture: SYSTEM_POLICY,
        index: 15,
        reason: "the notebook policy, attached to the system role, grants cloudwatch:PutMetricData and the logs \
                 actions; v1.6.10's system policy keeps only the iam reads",
        apply: drop_cloudwatch_and_logs,
    },
    Deviation {
        name: "system policy: KMS data actions left to the notebook policy",
        fixture: SYSTEM_POLICY,
        index: 16,
        reason: "the notebook policy, attached to the system role, grants them on the same key",
        apply: dropped,
    },
    Deviation {
        name: "system policy: kms:CreateGrant left to the notebook policy",
        fixture: SYSTEM_POLICY,
        index: 17,
        reason: "the notebook policy, attached to the system role, grants it with the same condition",
        apply: dropped,
    },
    Deviation {
        name: "system policy: network interfaces left to the notebook policy",
        fixture: SYSTEM_POLICY,
        index: 18,
        reason: "the notebook policy, attached to the system role, grants them on the same resources",
        apply: dropped,
    },
    Deviation {
        name: "system policy: EC2 network reads left to the notebook policy",
        fixture: SYSTEM_POLICY,
        index: 19,
        reason: "the notebook policy, attached to the system role, grants them",
        apply: dropped,
    },
    Deviation {
        name: "system policy: SageMaker list actions left to the notebook policy",
        fixture: SYSTEM_POLICY,
        index: 20,
        reason: "the notebook policy, attached to the system role, grants them",
        apply: dropped,
    },
    Deviation {
        name: "system policy: Describe/Stop/... of any tagged SageMaker resource",
        fixture: SYSTEM_POLICY,
        index: 21,
        reason: "v1.6.10's system role has these only through the notebook policy, i.e. for resources tagged \
                 system=MLSpace (which every MLSpace resource is)",
        apply: dropped,
    },
];

const TRUST_TRANSLATE: &str = r#"{"Effect": "Allow", "Principal": {"Service": "translate.amazonaws.com"},
    "Action": "sts:AssumeRole"}"#;

/// A statement the manifests hold that no seed statement (after the deviations) grants.
struct Addition {
    name: &'static str,
    target: Target,
    /// The statement, with the seeds' placeholders.
    statement: &'static str,
    reason: &'static str,
}

const ADDITIONS: &[Addition] = &[
    // Seed 000 trust policies: v1.6.10 trusts translate.amazonaws.com as well.
    Addition {
        name: "notebook role trust: translate.amazonaws.com",
        target: Target::Trust("mlspace-notebook-role"),
        statement: TRUST_TRANSLATE,
        reason: "v1.6.10 trusts translate.amazonaws.com as well; without it the seeds' own iam:PassRole grants \
                 with iam:PassedToService=translate.amazonaws.com are useless",
    },
    Addition {
        name: "app role trust: translate.amazonaws.com",
        target: Target::Trust("mlspace-app-role"),
        statement: TRUST_TRANSLATE,
        reason: "Translate batch jobs run as the app role (the seed 000 app policy passes it to \
                 translate.amazonaws.com); v1.6.10 trusts translate.amazonaws.com",
    },
    Addition {
        name: "system role trust: translate.amazonaws.com",
        target: Target::Trust("mlspace-system-role"),
        statement: TRUST_TRANSLATE,
        reason: "the seed 000 system policy passes the system role to translate.amazonaws.com; v1.6.10 trusts \
                 translate.amazonaws.com",
    },
    Addition {
        name: "boundary: bedrock for tagged requests and resources",
        target: Target::Policy("mlspace-project-user-permission-boundary"),
        statement: r#"{"Effect": "Allow",
            "Action": ["bedrock:Apply*", "bedrock:Associate*", "bedrock:BatchDelete*", "bedrock:Create*", "bedrock:Delete*",
                       "bedrock:Detect*", "bedrock:Get*", "bedrock:Invoke*", "bedrock:List*", "bedrock:Put*",
                       "bedrock:Retrieve*", "bedrock:Start*", "bedrock:Update*"],
            "Resource": "arn:*:sagemaker:*:{AWS_ACCOUNT}:*",
            "Condition": {"Null": {"aws:RequestTag/project": "false", "aws:RequestTag/user": "false",
                                   "aws:ResourceTag/project": "false", "aws:ResourceTag/system": "false",
                                   "aws:ResourceTag/user": "false"},
                          "StringEqualsIgnoreCase": {"aws:RequestTag/system": "MLSpace"}}}"#,
        reason: "the page has no bedrock statement, so a boundary would cap the notebook policy's bedrock grant \
                 to nothing; v1.6.10's boundary has the notebook policy's bedrock statement",
    },
    Addition {
        name: "app policy: iam:ListRoleTags on any role",
        target: Target::Policy("mlspace-app-policy"),
        statement: r#"{"Effect": "Allow", "Action": "iam:ListRoleTags", "Resource": "*"}"#,
        reason: "v1.6.10's app policy reads any role's tags (dynamic-role discovery)",
    },
    Addition {
        name: "app policy: iam:AttachRolePolicy on MLSpace* roles without a condition",
        target: Target::Policy("mlspace-app-policy"),
        statement: r#"{"Effect": "Allow", "Action": "iam:AttachRolePolicy",
            "Resource": "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/MLSpace*"}"#,
        reason: "v1.6.10 grants it with iam:SimulatePrincipalPolicy and iam:TagRole: the app attaches policies \
                 to the per-user roles it has just created (and tagged)",
    },
    Addition {
        name: "system policy: the app policy's reads, EMR launch and S3 writes",
        target: Target::Policy("mlspace-system-policy"),
        statement: r#"[
            {"Effect": "Allow", "Action": ["ec2:DescribeInstanceTypes", "elasticmapreduce:ListReleaseLabels",
                "elasticmapreduce:RunJobFlow", "iam:ListRoleTags"], "Resource": "*"},
            {"Effect": "Allow", "Action": "elasticmapreduce:AddTags",
             "Resource": "arn:{AWS_PARTITION}:elasticmapreduce:{AWS_REGION}:{AWS_ACCOUNT}:cluster/*"},
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:PutObjectTagging"], "Resource": "arn:{AWS_PARTITION}:s3:::*"}
        ]"#,
        reason: "v1.6.10's system policy is the app policy for the system role (seed 000 offers re-using the app \
                 policy for the system role)",
    },
    Addition {
        name: "system policy: the app policy's notebook instance actions",
        target: Target::Policy("mlspace-system-policy"),
        statement: r#"[
            {"Effect": "Allow", "Action": "sagemaker:CreateNotebookInstance",
             "Resource": "arn:{AWS_PARTITION}:sagemaker:{AWS_REGION}:{AWS_ACCOUNT}:notebook-instance/*",
             "Condition": {"StringEquals": {"sagemaker:DirectInternetAccess": "Disabled", "sagemaker:RootAccess": "Disabled"},
                           "Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false",
                                    "aws:RequestTag/user": "false", "aws:RequestTag/project": "false"}}},
            {"Effect": "Allow", "Action": "sagemaker:StartNotebookInstance",
             "Resource": "arn:{AWS_PARTITION}:sagemaker:{AWS_REGION}:{AWS_ACCOUNT}:notebook-instance/*",
             "Condition": {"Null": {"aws:ResourceTag/project": "false", "aws:ResourceTag/system": "false",
                                    "aws:ResourceTag/user": "false"}}},
            {"Effect": "Allow", "Action": "sagemaker:CreateNotebookInstanceLifecycleConfig",
             "Resource": "arn:{AWS_PARTITION}:sagemaker:{AWS_REGION}:{AWS_ACCOUNT}:notebook-instance-lifecycle-config/*"},
            {"Effect": "Allow", "Action": "sagemaker:CreatePresignedNotebookInstanceUrl",
             "Resource": "arn:{AWS_PARTITION}:sagemaker:{AWS_REGION}:{AWS_ACCOUNT}:notebook-instance/*"}
        ]"#,
        reason: "v1.6.10's system policy is the app policy for the system role",
    },
    Addition {
        name: "system policy: the app policy's role management",
        target: Target::Policy("mlspace-system-policy"),
        statement: r#"[
            {"Effect": "Allow", "Action": "iam:CreateRole", "Resource": "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/MLSpace*",
             "Condition": {"StringEquals": {"iam:PermissionsBoundary": "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:policy/mlspace-project-user-permission-boundary"},
                           "StringEqualsIgnoreCase": {"iam:ResourceTag/system": "MLSpace"}}},
            {"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/MLSpace*",
             "Condition": {"StringEqualsIgnoreCase": {"iam:ResourceTag/system": "MLSpace"}}},
            {"Effect": "Allow", "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
             "Resource": ["arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/MLSpace*",
                          "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/{MLSPACE_APP_ROLE_NAME}",
                          "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/{MLSPACE_NOTEBOOK_ROLE_NAME}"],
             "Condition": {"StringEqualsIgnoreCase": {"iam:ResourceTag/system": "MLSpace",
                 "iam:PolicyARN": "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:policy/MLSpace-app-denied-services"}}},
            {"Effect": "Allow", "Action": ["iam:AttachRolePolicy", "iam:SimulatePrincipalPolicy", "iam:TagRole"],
             "Resource": "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/MLSpace*"}
        ]"#,
        reason: "v1.6.10's system policy is the app policy for the system role: the system lambdas manage the \
                 per-user roles and the denied-services policy as the app does",
    },
];

fn translate_list_wildcard(stmt: &mut Value) {
    let actions = stmt["Action"].as_array_mut().expect("Action list");
    actions.retain(|a| {
        !matches!(
            a.as_str(),
            Some(
                "translate:ListLanguages"
                    | "translate:ListTerminologies"
                    | "translate:ListTextTranslationJobs"
            )
        )
    });
    actions.push(json!("translate:List*"));
}

/// `arn:...:sagemaker:REGION:ACCOUNT:endpoint/*` -> `arn:...:sagemaker:REGION:ACCOUNT:*`.
fn any_sagemaker_resource(stmt: &mut Value) {
    let resource = stmt["Resource"].as_str().expect("one Resource");
    let (head, _) = resource.rsplit_once(':').expect("an ARN");
    stmt["Resource"] = json!(format!("{head}:*"));
}

fn condition_block<'a>(
    stmt: &'a mut Value,
    operator: &str,
) -> &'a mut serde_json::Map<String, Value> {
    let cond = stmt["Condition"].as_object_mut().expect("a Condition");
    cond.entry(operator)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("operator block")
}

/// The request's system tag must be MLSpace (instead of merely present).
fn request_system_is_mlspace(stmt: &mut Value) {
    condition_block(stmt, "Null").remove("aws:RequestTag/system");
    condition_block(stmt, "StringEqualsIgnoreCase")
        .insert("aws:RequestTag/system".into(), json!("MLSpace"));
}

fn create_on_any_resource_for_mlspace(stmt: &mut Value) {
    any_sagemaker_resource(stmt);
    request_system_is_mlspace(stmt);
}

/// The resource's system tag must be MLSpace (present, as before, and equal).
fn resource_system_is_mlspace(stmt: &mut Value) {
    condition_block(stmt, "StringEqualsIgnoreCase")
        .insert("aws:ResourceTag/system".into(), json!("MLSpace"));
}

fn request_tag_to_resource_tag(stmt: &mut Value) {
    let cond = stmt["Condition"]
        .as_object_mut()
        .expect("statement 9 has a Condition");
    for block in cond.values_mut() {
        let keys = block.as_object_mut().expect("operator block");
        let old = std::mem::take(keys);
        for (k, v) in old {
            keys.insert(k.replace("aws:RequestTag/", "aws:ResourceTag/"), v);
        }
    }
    condition_block(stmt, "Null").insert("aws:ResourceTag/system".into(), json!("false"));
}

fn bedrock_requires_tags(stmt: &mut Value) {
    let actions = stmt["Action"].as_array_mut().expect("Action list");
    let mut seen = std::collections::BTreeSet::new();
    actions.retain(|a| seen.insert(a.as_str().unwrap_or_default().to_string()));
    for v in condition_block(stmt, "Null").values_mut() {
        *v = json!("false");
    }
    let cond = stmt["Condition"].as_object_mut().expect("a Condition");
    let system = cond
        .remove("StringNotEqualsIgnoreCase")
        .expect("the page's StringNotEqualsIgnoreCase");
    cond.insert("StringEqualsIgnoreCase".into(), system);
}

fn drop_null_request_system(stmt: &mut Value) {
    condition_block(stmt, "Null").remove("aws:RequestTag/system");
}

fn attach_only_denied_services(stmt: &mut Value) {
    let cond = stmt["Condition"].as_object_mut().expect("a Condition");
    let arns = cond
        .remove("ForAnyValue:StringLike")
        .expect("the seed's ForAnyValue:StringLike");
    let denied = arns["iam:PolicyARN"][0].clone();
    condition_block(stmt, "StringEqualsIgnoreCase").insert("iam:PolicyARN".into(), denied);
}

fn drop_cloudwatch_and_logs(stmt: &mut Value) {
    let actions = stmt["Action"].as_array_mut().expect("Action list");
    actions.retain(|a| {
        let a = a.as_str().unwrap_or_default();
        !a.starts_with("cloudwatch:") && !a.starts_with("logs:")
    });
}

fn dropped(stmt: &mut Value) {
    *stmt = Value::Null;
}

// ---------------------------------------------------------------------------------------
// Loading and resolving.
// ---------------------------------------------------------------------------------------

const FIXTURES: &str = "tests/fixtures/seeds";

/// The rendered desired state of a manifests directory, as the JSON render contract.
fn rendered(dir: &Path) -> Value {
    match load_dir(dir) {
        Ok(l) => render::to_json_value(&l.desired),
        Err(mlspace_gitops::manifest::ManifestError::Invalid(d)) => {
            panic!("{} does not validate:\n{d}", dir.display())
        }
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

/// Placeholder values of the rendered Environment: the three built-ins and the params.
fn env_vars(rendered: &Value) -> BTreeMap<String, String> {
    let env = &rendered["environment"];
    let mut vars: BTreeMap<String, String> = env["params"]
        .as_object()
        .expect("environment.params")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("param value").to_string()))
        .collect();
    for (name, field) in [
        ("AWS_PARTITION", "partition"),
        ("AWS_REGION", "region"),
        ("AWS_ACCOUNT", "account"),
    ] {
        vars.insert(name.into(), env[field].as_str().expect(field).to_string());
    }
    vars
}

/// Replace every `{NAME}` in the strings (and keys) of `v`; panics on a leftover token.
fn resolve(v: &mut Value, vars: &BTreeMap<String, String>, what: &str) {
    let sub = |s: &str| -> String {
        let mut out = s.to_string();
        for (k, val) in vars {
            out = out.replace(&format!("{{{k}}}"), val);
        }
        if let Some(p) = placeholder_in(&out) {
            panic!("{what}: placeholder {p} in `{s}` has no value in the rendered Environment");
        }
        out
    };
    match v {
        Value::String(s) => *s = sub(s),
        Value::Array(items) => items.iter_mut().for_each(|i| resolve(i, vars, what)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut val) in old {
                resolve(&mut val, vars, what);
                map.insert(sub(&k), val);
            }
        }
        _ => {}
    }
}

/// A seed document, resolved, in two forms: as the seed has it, and with the deviations
/// applied (a dropped statement is `null`), and the resolved [`ADDITIONS`] for its target.
struct Seed {
    fixture: &'static str,
    target: Target,
    original: Value,
    expected: Value,
    additions: Vec<Value>,
}

fn read_fixture(name: &str) -> Value {
    read_json(&format!("{FIXTURES}/{name}"))
}

fn seeds(vars: &BTreeMap<String, String>) -> Vec<Seed> {
    MAPPINGS
        .iter()
        .map(|&(fixture, target)| {
            let mut original = read_fixture(fixture);
            resolve(&mut original, vars, fixture);
            let mut expected = original.clone();
            for d in DEVIATIONS.iter().filter(|d| d.fixture == fixture) {
                let stmt = expected["Statement"].get_mut(d.index).unwrap_or_else(|| {
                    panic!(
                        "deviation `{}`: {fixture} has no statement {}",
                        d.name, d.index
                    )
                });
                (d.apply)(stmt);
            }
            let additions = ADDITIONS
                .iter()
                .filter(|a| a.target == target)
                .flat_map(|a| addition_statements(a, vars))
                .collect();
            Seed {
                fixture,
                target,
                original,
                expected,
                additions,
            }
        })
        .collect()
}

/// The rendered document a target names.
fn target_doc(rendered: &Value, target: Target) -> Option<&Value> {
    let (kind, name, field) = match target {
        Target::Policy(n) => ("ManagedPolicy", n, "document"),
        Target::Trust(n) => ("Role", n, "assumeRolePolicy"),
    };
    rendered["resources"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
        .and_then(|r| r["spec"].get(field))
}

fn statements(doc: &Value) -> Vec<Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        one => vec![one.clone()],
    }
}

/// The statements of an addition, resolved.
fn addition_statements(a: &Addition, vars: &BTreeMap<String, String>) -> Vec<Value> {
    let mut v: Value =
        serde_json::from_str(a.statement).unwrap_or_else(|e| panic!("addition `{}`: {e}", a.name));
    resolve(&mut v, vars, a.name);
    match v {
        Value::Array(items) => items,
        one => vec![one],
    }
}

/// The single grants of some statements: (effect, principal, action, resource, condition)
/// in IAM's semantic normal form, as JSON text. `Sid` is ignored; `NotAction`,
/// `NotResource` and `NotPrincipal` are kept whole. A `null` statement (dropped) grants
/// nothing.
fn grants<'a>(statements: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for stmt in statements.into_iter().filter(|s| s.is_object()) {
        let normal = normalize(&json!({ "Statement": [stmt] }));
        let s = &normal["Statement"][0];
        let split = |key: &str, not_key: &str| -> Vec<Value> {
            match (s.get(key), s.get(not_key)) {
                (Some(Value::Array(items)), _) => items.iter().map(|i| json!({ key: i })).collect(),
                (_, Some(whole)) => vec![json!({ not_key: whole })],
                _ => vec![json!({})],
            }
        };
        let principals: Vec<Value> = match (s.get("Principal"), s.get("NotPrincipal")) {
            (Some(Value::Object(types)), _) => types
                .iter()
                .flat_map(|(kind, ids)| {
                    ids.as_array()
                        .into_iter()
                        .flatten()
                        .map(move |id| json!({ "Principal": { kind.clone(): id } }))
                })
                .collect(),
            (_, Some(whole)) => vec![json!({ "NotPrincipal": whole })],
            _ => vec![json!({})],
        };
        for p in &principals {
            for a in split("Action", "NotAction") {
                for r in split("Resource", "NotResource") {
                    out.insert(
                        json!([
                            s["Effect"],
                            p,
                            a,
                            r,
                            s.get("Condition").unwrap_or(&json!({}))
                        ])
                        .to_string(),
                    );
                }
            }
        }
    }
    out
}

/// Whether `doc` grants every (principal, action, resource) of `stmt` with the same effect
/// and condition (IAM normal form: Sid, order, string-vs-list, action case and duplicates do
/// not matter, nor whether `doc` merges `stmt` with other grants).
fn present(stmt: &Value, doc: &Value) -> bool {
    grants([stmt]).is_subset(&grants(&statements(doc)))
}

/// What a rendered document grants beyond, and short of, a seed with its deviations and
/// additions, as (extra, missing) grants.
fn beyond_and_short(seed: &Seed, doc: &Value) -> (Vec<String>, Vec<String>) {
    let expected_stmts = statements(&seed.expected);
    let expected = grants(expected_stmts.iter().chain(&seed.additions));
    let rendered = grants(&statements(doc));
    (
        rendered.difference(&expected).cloned().collect(),
        expected.difference(&rendered).cloned().collect(),
    )
}

/// One seed statement the rendered state lacks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Missing {
    fixture: &'static str,
    index: usize,
}

/// Every seed statement (deviations applied) without an equivalent in its rendered document.
fn missing_statements(seeds: &[Seed], rendered: &Value) -> Vec<(Missing, String)> {
    let mut out = Vec::new();
    for s in seeds {
        let Some(doc) = target_doc(rendered, s.target) else {
            out.push((
                Missing {
                    fixture: s.fixture,
                    index: usize::MAX,
                },
                format!("{:?} is not in the rendered resources", s.target),
            ));
            continue;
        };
        for (i, stmt) in statements(&s.expected).iter().enumerate() {
            if !stmt.is_null() && !present(stmt, doc) {
                let note = DEVIATIONS
                    .iter()
                    .find(|d| d.fixture == s.fixture && d.index == i)
                    .map(|d| format!(" (after the named deviation `{}`)", d.name))
                    .unwrap_or_default();
                out.push((
                    Missing { fixture: s.fixture, index: i },
                    format!(
                        "{} statement [{i}]{note} is missing from {:?}:\n  seed:   {}\n  normal: {}",
                        s.fixture,
                        s.target,
                        serde_json::to_string(stmt).unwrap(),
                        serde_json::to_string(&normalize(&json!({ "Statement": [stmt] }))["Statement"][0]).unwrap(),
                    ),
                ));
            }
        }
    }
    out
}

fn bundled() -> (Value, Vec<Seed>) {
    let r = rendered(&manifests_dir());
    let vars = env_vars(&r);
    let s = seeds(&vars);
    (r, s)
}

fn report(missing: &[(Missing, String)]) -> String {
    missing
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------

#[test]
fn every_seed_fixture_is_checked_or_explicitly_superseded() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join(FIXTURES))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = MAPPINGS
        .iter()
        .map(|m| m.0)
        .chain(SUPERSEDED.iter().map(|s| s.0))
        .map(String::from)
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every fixture under tests/fixtures/seeds/ must be in MAPPINGS or SUPERSEDED (and only once)");
    for (name, _) in SUPERSEDED {
        // Still well-formed seed data, even though not checked.
        assert!(
            read_fixture(name)["Statement"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{name}"
        );
    }
    let (r, _) = bundled();
    for (fixture, target) in MAPPINGS {
        assert!(
            target_doc(&r, *target).is_some(),
            "{fixture}: {target:?} is not in the rendered manifests"
        );
    }
}

#[test]
fn seed_fixtures_resolve_with_the_bundled_environment() {
    // resolve() panics on any placeholder the Environment does not define.
    let (r, seeds) = bundled();
    assert_eq!(seeds.len(), MAPPINGS.len());
    let vars = env_vars(&r);
    for (name, _) in SUPERSEDED {
        let mut doc = read_fixture(name);
        resolve(&mut doc, &vars, name);
    }
    // The page examples' literal values are all gone.
    for s in &seeds {
        let text = serde_json::to_string(&s.original).unwrap();
        for literal in [
            "012345678910",
            "80b28a33-4686-4d87-9dda-4a87e889875a",
            "sg-0c001c111cbcdcdf6",
            "subnet-0f9f0555e69d3d687",
        ] {
            assert!(
                !text.contains(literal),
                "{}: example value {literal} was not turned into a placeholder",
                s.fixture
            );
        }
    }
}

#[test]
fn every_seed_statement_is_present_in_the_rendered_manifests() {
    let (r, seeds) = bundled();
    let missing = missing_statements(&seeds, &r);
    let total: usize = seeds.iter().map(|s| statements(&s.expected).len()).sum();
    assert!(total >= 90, "only {total} seed statements were checked");
    assert!(
        missing.is_empty(),
        "{} of {total} seed statements are not in the rendered manifests. Either restore them, or, if the \
         change is deliberate, record it in docs/mlspace-choices.md and add a named DEVIATION in tests/it/seeds.rs:\n{}",
        missing.len(),
        report(&missing)
    );
}

#[test]
fn every_named_deviation_is_still_needed_and_matches_the_manifests() {
    let (r, seeds) = bundled();
    for d in DEVIATIONS {
        assert!(!d.reason.is_empty());
        let seed = seeds
            .iter()
            .find(|s| s.fixture == d.fixture)
            .unwrap_or_else(|| panic!("deviation `{}`: {} is not in MAPPINGS", d.name, d.fixture));
        let doc = target_doc(&r, seed.target).unwrap();
        let original = &statements(&seed.original)[d.index];
        let changed = &statements(&seed.expected)[d.index];
        assert_ne!(
            original, changed,
            "deviation `{}` changes nothing in the seed statement",
            d.name
        );
        // A dropped statement (null) is trivially present.
        assert!(
            present(changed, doc),
            "deviation `{}`: the changed statement is not in {:?}",
            d.name,
            seed.target
        );
        assert!(
            !present(original, doc),
            "deviation `{}` is stale: the seed's own statement is in {:?} again; remove the exception ({})",
            d.name,
            seed.target,
            d.reason
        );
    }
    // One deviation per seed statement.
    let mut keys: Vec<(&str, usize)> = DEVIATIONS.iter().map(|d| (d.fixture, d.index)).collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    assert_eq!(
        before,
        keys.len(),
        "two deviations name the same seed statement"
    );
}

#[test]
fn every_addition_is_needed_and_in_the_manifests() {
    let (r, seeds) = bundled();
    let vars = env_vars(&r);
    for a in ADDITIONS {
        assert!(!a.reason.is_empty());
        let seed = seeds
            .iter()
            .find(|s| s.target == a.target)
            .unwrap_or_else(|| panic!("addition `{}`: {:?} is not in MAPPINGS", a.name, a.target));
        let doc = target_doc(&r, a.target).unwrap();
        let stmts = addition_statements(a, &vars);
        let added = grants(&stmts);
        assert!(!added.is_empty(), "addition `{}` grants nothing", a.name);
        assert!(
            added.is_subset(&grants(&statements(doc))),
            "addition `{}` is not in {:?}",
            a.name,
            a.target
        );
        let from_seed = grants(&statements(&seed.expected));
        assert!(
            !added.is_subset(&from_seed),
            "addition `{}` is stale: {} grants it already; remove it ({})",
            a.name,
            seed.fixture,
            a.reason
        );
    }
}

#[test]
fn rendered_documents_hold_nothing_beyond_their_seeds() {
    // docs/mlspace-choices.md: nothing is changed, dropped or added beyond the named
    // deviations and additions.
    let (r, seeds) = bundled();
    let mut problems = Vec::new();
    for s in &seeds {
        let doc = target_doc(&r, s.target).unwrap();
        let (beyond, short) = beyond_and_short(s, doc);
        if !beyond.is_empty() || !short.is_empty() || doc["Version"] != s.expected["Version"] {
            problems.push(format!(
                "{:?} differs from {} (with the named deviations and additions):\n  only rendered: {}\n  only seed: {}\n  Version: rendered {} / seed {}",
                s.target,
                s.fixture,
                beyond.join("\n    "),
                short.join("\n    "),
                doc["Version"],
                s.expected["Version"],
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn comparison_is_semantic_not_textual() {
    // Reordered statements, a string turned into a one-element list, other action case and
    // condition values as booleans must all still count as present.
    let (mut r, seeds) = bundled();
    for res in r["resources"].as_array_mut().unwrap() {
        let field = match res["kind"].as_str() {
            Some("ManagedPolicy") => "document",
            Some("Role") => "assumeRolePolicy",
            _ => continue,
        };
        let Some(doc) = res["spec"].get_mut(field) else {
            continue;
        };
        let stmts = doc["Statement"].as_array_mut().unwrap();
        stmts.reverse();
        for st in stmts.iter_mut() {
            if let Some(Value::String(a)) = st.get("Action").cloned() {
                st["Action"] = json!([a.to_ascii_uppercase()]);
            }
            if let Some(Value::String(res)) = st.get("Resource").cloned() {
                st["Resource"] = json!([res]);
            }
            if let Some(null) = st
                .pointer_mut("/Condition/Null")
                .and_then(Value::as_object_mut)
            {
                for v in null.values_mut() {
                    if let Some(b) = v.as_str().and_then(|s| s.parse::<bool>().ok()) {
                        *v = json!(b);
                    }
                }
            }
        }
    }
    let missing = missing_statements(&seeds, &r);
    assert!(missing.is_empty(), "{}", report(&missing));
}

#[test]
fn a_missing_or_altered_statement_is_detected() {
    let (r, seeds) = bundled();
    assert!(
        missing_statements(&seeds, &r).is_empty(),
        "the bundled manifests must pass first"
    );

    fn doc_mut(r: &mut Value, target: Target) -> &mut Value {
        let (kind, name, field) = match target {
            Target::Policy(n) => ("ManagedPolicy", n, "document"),
            Target::Trust(n) => ("Role", n, "assumeRolePolicy"),
        };
        let res = r["resources"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|x| x["kind"] == kind && x["name"] == name)
            .unwrap();
        &mut res["spec"][field]
    }
    fn find(doc: &Value, pred: impl Fn(&Value) -> bool) -> usize {
        statements(doc)
            .iter()
            .position(pred)
            .expect("the statement to mutate")
    }
    fn seed_index(seeds: &[Seed], fixture: &str, pred: impl Fn(&Value) -> bool) -> usize {
        statements(
            &seeds
                .iter()
                .find(|s| s.fixture == fixture)
                .unwrap()
                .expected,
        )
        .iter()
        .position(pred)
        .unwrap()
    }
    let has_action = |a: &'static str| {
        move |s: &Value| {
            s["Action"] == a
                || s["Action"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|x| x == a))
        }
    };

    let mut m = r.clone();
    let mut expected = Vec::new();

    // 1. A whole statement dropped: the app policy's iam:CreateRole (the one that pins the boundary).
    let app = doc_mut(&mut m, Target::Policy("mlspace-app-policy"));
    let i = find(app, has_action("iam:CreateRole"));
    app["Statement"].as_array_mut().unwrap().remove(i);
    expected.push(Missing {
        fixture: "000-cdk-deployment.app-policy.json",
        index: seed_index(
            &seeds,
            "000-cdk-deployment.app-policy.json",
            has_action("iam:CreateRole"),
        ),
    });

    // 2. One condition value dropped: the boundary's PassRole no longer covers translate.
    let boundary = doc_mut(
        &mut m,
        Target::Policy("mlspace-project-user-permission-boundary"),
    );
    let two_services = |s: &Value| {
        s.pointer("/Condition/StringEquals/iam:PassedToService")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() == 2)
    };
    let i = find(boundary, two_services);
    boundary["Statement"][i]["Condition"]["StringEquals"]["iam:PassedToService"] =
        json!(["sagemaker.amazonaws.com"]);
    expected.push(Missing {
        fixture: "003-permission-boundary-page.permission-boundary-policy.json",
        index: seed_index(
            &seeds,
            "003-permission-boundary-page.permission-boundary-policy.json",
            two_services,
        ),
    });

    // 3. One resource changed: a subnet ARN of the notebook policy.
    let nb = doc_mut(&mut m, Target::Policy("mlspace-notebook-policy"));
    let subnets = |s: &Value| {
        s["Resource"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|x| x.contains(":subnet/")))
        })
    };
    let i = find(nb, subnets);
    for res in nb["Statement"][i]["Resource"].as_array_mut().unwrap() {
        if res.as_str().unwrap().contains(":subnet/") {
            *res = json!(res.as_str().unwrap().replace(":subnet/", ":subnet/x"));
            break;
        }
    }
    expected.push(Missing {
        fixture: "002-notebook-policy-page.notebook-policy.json",
        index: seed_index(
            &seeds,
            "002-notebook-policy-page.notebook-policy.json",
            subnets,
        ),
    });

    // 4. An Effect flipped: the notebook policy's Deny on untagged HPO/training jobs.
    let nb = doc_mut(&mut m, Target::Policy("mlspace-notebook-policy"));
    let hpo_deny =
        |s: &Value| s["Effect"] == "Deny" && has_action("sagemaker:CreateTrainingJob")(s);
    let i = find(nb, hpo_deny);
    nb["Statement"][i]["Effect"] = json!("Allow");
    expected.push(Missing {
        fixture: "002-notebook-policy-page.notebook-policy.json",
        index: seed_index(
            &seeds,
            "002-notebook-policy-page.notebook-policy.json",
            hpo_deny,
        ),
    });

    // 5. A trust principal dropped: the notebook role no longer trusts SageMaker.
    let trust = doc_mut(&mut m, Target::Trust("mlspace-notebook-role"));
    trust["Statement"][0]["Principal"]["Service"] = json!(["translate.amazonaws.com"]);
    expected.push(Missing {
        fixture: "000-cdk-deployment.notebook-role-trust-policy.json",
        index: 0,
    });

    // 6. A deviation undone: notebook statement 9 back to the page's RequestTag keys.
    let nb = doc_mut(&mut m, Target::Policy("mlspace-notebook-policy"));
    let i = find(nb, |s| {
        s.pointer("/Condition/StringEqualsIgnoreCase/aws:ResourceTag~1system")
            .is_some()
    });
    let text = serde_json::to_string(&nb["Statement"][i])
        .unwrap()
        .replace("aws:ResourceTag/", "aws:RequestTag/");
    nb["Statement"][i] = serde_json::from_str(&text).unwrap();
    expected.push(Missing {
        fixture: "002-notebook-policy-page.notebook-policy.json",
        index: 8,
    });

    // 7. A role's document gone altogether.
    let mut gone = r.clone();
    gone["resources"]
        .as_array_mut()
        .unwrap()
        .retain(|x| x["name"] != "mlspace-s3-reader-Role");

    let mut got: Vec<Missing> = missing_statements(&seeds, &m)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(
        got, expected,
        "each mutation must be reported, and nothing else"
    );

    let got: Vec<Missing> = missing_statements(&seeds, &gone)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(
        got,
        vec![Missing {
            fixture: "000-cdk-deployment.s3-reader-role-trust-policy.json",
            index: usize::MAX
        }]
    );

    // An extra statement is not a missing one, but the "nothing beyond the seeds" check sees it.
    let mut extra = r.clone();
    doc_mut(&mut extra, Target::Policy("mlspace-website-read-policy"))["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}));
    assert!(missing_statements(&seeds, &extra).is_empty());
    let seed = seeds
        .iter()
        .find(|s| s.fixture == "000-cdk-deployment.s3-reader-policy.json")
        .unwrap();
    let (beyond, short) = beyond_and_short(seed, target_doc(&extra, seed.target).unwrap());
    assert_eq!(beyond.len(), 1, "{beyond:?}");
    assert!(short.is_empty(), "{short:?}");
}

#[test]
fn seed_statements_survive_the_ecr_example_merge() {
    // docs/examples/ecr-read-access.yaml merges ECR actions into existing statements of the
    // app, notebook and boundary policies. Once the ECR actions are taken out again, every
    // seed statement must be there unchanged: the merge may only add.
    let tmp = manifests_copy(&["docs/examples/ecr-read-access.yaml"]);
    let mut r = rendered(tmp.path());
    let vars = env_vars(&r);
    let seeds = seeds(&vars);

    let mut touched = 0;
    for res in r["resources"].as_array_mut().unwrap() {
        if res["kind"] != "ManagedPolicy" {
            continue;
        }
        let stmts = res["spec"]["document"]["Statement"].as_array_mut().unwrap();
        let before = stmts.clone();
        for st in stmts.iter_mut() {
            if let Some(a) = st.get_mut("Action").and_then(Value::as_array_mut) {
                a.retain(|x| !x.as_str().unwrap_or_default().starts_with("ecr:"));
            }
        }
        stmts.retain(|st| st["Action"].as_array().is_none_or(|a| !a.is_empty()));
        touched += usize::from(*stmts != before);
    }
    assert_eq!(touched, 3, "the example grants to three policies");
    let missing = missing_statements(&seeds, &r);
    assert!(missing.is_empty(), "{}", report(&missing));
    for s in &seeds {
        let (beyond, short) = beyond_and_short(s, target_doc(&r, s.target).unwrap());
        assert!(
            beyond.is_empty() && short.is_empty(),
            "{:?}: beyond {beyond:?}, short {short:?}",
            s.target
        );
    }
}
