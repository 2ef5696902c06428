//! Every privesc-* check: a role granted the path's actions has it (failing example);
//! the same role capped by a boundary without the path's last action, or without one
//! step, has not (passing examples).

use mlspace_policy::escalation_paths;
use mlspace_policy::lint::{Severity, CHECKS};
use serde_json::{json, Value};

/// Per path: one action for each step; `iam:PassRole` steps name the service.
const PATHS: &[(&str, &[&str])] = &[
    (
        "privesc-create-policy-version",
        &["iam:CreatePolicyVersion"],
    ),
    (
        "privesc-set-default-policy-version",
        &["iam:SetDefaultPolicyVersion"],
    ),
    ("privesc-attach-role-policy", &["iam:AttachRolePolicy"]),
    ("privesc-put-role-policy", &["iam:PutRolePolicy"]),
    (
        "privesc-update-assume-role-policy",
        &["iam:UpdateAssumeRolePolicy"],
    ),
    ("privesc-attach-user-policy", &["iam:AttachUserPolicy"]),
    ("privesc-put-user-policy", &["iam:PutUserPolicy"]),
    ("privesc-attach-group-policy", &["iam:AttachGroupPolicy"]),
    ("privesc-put-group-policy", &["iam:PutGroupPolicy"]),
    ("privesc-add-user-to-group", &["iam:AddUserToGroup"]),
    ("privesc-user-credentials", &["iam:CreateAccessKey"]),
    (
        "privesc-passrole-lambda",
        &[
            "iam:PassRole lambda.amazonaws.com",
            "lambda:CreateFunction",
            "lambda:InvokeFunction",
        ],
    ),
    ("privesc-lambda-update-code", &["lambda:UpdateFunctionCode"]),
    (
        "privesc-passrole-ec2",
        &["iam:PassRole ec2.amazonaws.com", "ec2:RunInstances"],
    ),
    (
        "privesc-passrole-autoscaling",
        &[
            "iam:PassRole ec2.amazonaws.com",
            "autoscaling:CreateAutoScalingGroup",
            "autoscaling:CreateLaunchConfiguration",
        ],
    ),
    (
        "privesc-passrole-glue",
        &[
            "iam:PassRole glue.amazonaws.com",
            "glue:CreateJob",
            "glue:StartJobRun",
        ],
    ),
    (
        "privesc-glue-update-dev-endpoint",
        &["glue:UpdateDevEndpoint"],
    ),
    (
        "privesc-passrole-sagemaker",
        &[
            "iam:PassRole sagemaker.amazonaws.com",
            "sagemaker:CreateTrainingJob",
        ],
    ),
    (
        "privesc-sagemaker-notebook-url",
        &["sagemaker:CreatePresignedNotebookInstanceUrl"],
    ),
    (
        "privesc-passrole-cloudformation",
        &[
            "iam:PassRole cloudformation.amazonaws.com",
            "cloudformation:CreateStack",
        ],
    ),
    (
        "privesc-passrole-ecs",
        &[
            "iam:PassRole ecs-tasks.amazonaws.com",
            "ecs:RegisterTaskDefinition",
            "ecs:RunTask",
        ],
    ),
    (
        "privesc-passrole-codebuild",
        &[
            "iam:PassRole codebuild.amazonaws.com",
            "codebuild:CreateProject",
            "codebuild:StartBuild",
        ],
    ),
    (
        "privesc-passrole-datapipeline",
        &[
            "iam:PassRole datapipeline.amazonaws.com",
            "datapipeline:CreatePipeline",
            "datapipeline:PutPipelineDefinition",
            "datapipeline:ActivatePipeline",
        ],
    ),
    (
        "privesc-passrole-emr",
        &[
            "iam:PassRole elasticmapreduce.amazonaws.com",
            "elasticmapreduce:RunJobFlow",
        ],
    ),
    ("privesc-ssm-command", &["ssm:SendCommand"]),
];

/// One statement per step, each on "*"; PassRole limited to its service.
fn statements(steps: &[&str]) -> Vec<Value> {
    steps
        .iter()
        .map(|s| match s.split_once(' ') {
            Some((action, service)) => json!({"Effect": "Allow", "Action": action, "Resource": "*",
                "Condition": {"StringEquals": {"iam:PassedToService": service}}}),
            None => json!({"Effect": "Allow", "Action": s, "Resource": "*"}),
        })
        .collect()
}

fn doc(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[test]
fn every_path_is_found_and_bounded() {
    for (check, steps) in PATHS {
        let granted = doc(statements(steps));
        let paths = escalation_paths(&[&granted], None);
        let found = paths.iter().find(|p| p.check == *check);
        let found = found.unwrap_or_else(|| panic!("{check} not found in {paths:#?}"));
        assert_eq!(found.severity, Severity::SecurityWarning);
        assert_eq!(found.grants.len(), steps.len(), "{check}");
        assert!(!found.conditional, "{check}");

        // Passing: the boundary does not allow the last step.
        let bounded = doc(statements(&steps[..steps.len() - 1]));
        let capped = escalation_paths(&[&granted], Some(&bounded));
        assert!(
            capped.iter().all(|p| p.check != *check),
            "{check} with boundary"
        );
        // Passing: one step missing from the identity policies.
        if steps.len() > 1 {
            let partial = doc(statements(&steps[1..]));
            let paths = escalation_paths(&[&partial], None);
            assert!(
                paths.iter().all(|p| p.check != *check),
                "{check} without PassRole"
            );
        }
    }
}

#[test]
fn every_privesc_check_has_a_case() {
    for c in CHECKS.iter().filter(|c| c.id.starts_with("privesc-")) {
        assert!(
            PATHS.iter().any(|(id, _)| *id == c.id),
            "no case for {}",
            c.id
        );
    }
}

#[test]
fn passrole_to_another_service_opens_no_path() {
    let d = doc(statements(&[
        "iam:PassRole translate.amazonaws.com",
        "lambda:CreateFunction",
        "lambda:InvokeFunction",
        "ec2:RunInstances",
    ]));
    assert!(escalation_paths(&[&d], None).is_empty());
}

#[test]
fn grants_point_into_their_documents() {
    let a = doc(statements(&["iam:PassRole ec2.amazonaws.com"]));
    let b = doc(vec![
        json!({"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:RunInstances"], "Resource": "*"}),
    ]);
    let paths = escalation_paths(&[&a, &b], None);
    assert_eq!(paths.len(), 1);
    let where_: Vec<(usize, &str)> = paths[0]
        .grants
        .iter()
        .map(|g| (g.document, g.pointer.as_str()))
        .collect();
    assert_eq!(
        where_,
        [(0, "/Statement/0/Action"), (1, "/Statement/0/Action/1")]
    );
    let (doc_index, finding) = paths[0].finding();
    assert_eq!(
        (doc_index, finding.pointer.as_str()),
        (0, "/Statement/0/Action")
    );
    assert!(finding
        .to_string()
        .starts_with("security-warning[privesc-passrole-ec2]: "));
}
