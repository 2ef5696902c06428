//! Unit tests of the import stage's pure part: documents, placeholders and YAML.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::kinds::role::diff::RoleObserved;
use crate::kinds::role::Role;
use crate::kinds::Import;
use crate::manifest::EnvironmentView;

const ACCOUNT: &str = "123456789012";

fn env() -> EnvironmentView {
    EnvironmentView {
        name: "mlspace".into(),
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: ACCOUNT.into(),
        params: Default::default(),
        tags: [("system".to_string(), "MLSpace".to_string())].into(),
        prune: false,
        ignore: vec![],
        ignore_tags: vec![],
        assume_role_arn: None,
        external_id: None,
        event_queues: vec![],
        source: None,
    }
}

fn role() -> RoleObserved {
    RoleObserved {
        arn: format!("arn:aws:iam::{ACCOUNT}:role/app"),
        path: "/".into(),
        assume_role_policy: json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}),
        description: Some("The app role".into()),
        max_session_duration: Some(3600),
        inline_policies: [(
            "logs".to_string(),
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": ["logs:PutLogEvents"],
                "Resource": format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/*")}]}),
        )]
        .into(),
        managed_policies: [
            format!("arn:aws:iam::{ACCOUNT}:policy/app-policy"),
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".to_string(),
        ]
        .into(),
        permissions_boundary: None,
        instance_profiles: Default::default(),
        tags: [
            ("system".to_string(), "MLSpace".to_string()),
            ("team".to_string(), "ml".to_string()),
        ]
        .into(),
    }
}

#[test]
fn an_imported_role_is_pretty_yaml_with_placeholders() {
    let cx = PlanCx::default();
    let spec = Role::import("app", &role(), &cx);
    let doc = document(Kind::Role, "app", &spec, &env());
    let yaml = json_to_yaml_text(&doc);
    let want = r#"apiVersion: mlspace-gitops/v1
kind: Role
metadata:
  name: app
  annotations:
    mlspace-gitops/adopt: "true"
spec:
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Principal:
          Service: sagemaker.amazonaws.com
        Action: "sts:AssumeRole"
        Condition:
          StringEquals:
            "aws:SourceAccount": "{AWS_ACCOUNT}"
  managedPolicies:
    - "arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:policy/app-policy"
    - "arn:{AWS_PARTITION}:iam::aws:policy/AmazonS3ReadOnlyAccess"
  inlinePolicies:
    logs:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action:
            - "logs:PutLogEvents"
          Resource: "arn:{AWS_PARTITION}:logs:{AWS_REGION}:{AWS_ACCOUNT}:log-group:/aws/sagemaker/*"
  description: "The app role"
  tags:
    team: ml
"#;
    assert_eq!(yaml, want, "{yaml}");
    // It reads back as the same document.
    let back = crate::manifest::yaml::parse_documents(&Arc::from(std::path::Path::new("t")), &yaml)
        .unwrap();
    assert_eq!(back[0].value, doc);
}

#[test]
fn a_policy_in_the_manifests_is_named_not_given_by_arn() {
    let mut cx = PlanCx::default();
    cx.declare(
        Kind::ManagedPolicy,
        "app-policy",
        Some(format!("arn:aws:iam::{ACCOUNT}:policy/app-policy")),
    );
    let spec = Role::import("app", &role(), &cx);
    assert_eq!(
        spec.managed_policies,
        [
            "app-policy",
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
        ]
    );
}

#[test]
fn partition_is_replaced_only_inside_arns() {
    let mut v = json!({"arn:aws:s3:::b-123456789012/*": ["aws", "aws:SourceArn", "us-east-1a",
        "arn:aws-us-gov:iam::1:role/x"]});
    to_placeholders(&mut v, "aws", ACCOUNT, "us-east-1");
    assert_eq!(
        v,
        json!({"arn:{AWS_PARTITION}:s3:::b-{AWS_ACCOUNT}/*": ["aws", "aws:SourceArn",
            "{AWS_REGION}a", "arn:aws-us-gov:iam::1:role/x"]})
    );
}

#[test]
fn files_are_named_by_kind_and_name() {
    assert_eq!(file_name(Kind::ManagedPolicy, "p"), "managed-policy-p.yaml");
    assert_eq!(
        file_name(Kind::ServiceLinkedRole, "AWSServiceRoleForX"),
        "service-linked-role-AWSServiceRoleForX.yaml"
    );
}

#[test]
fn the_environment_and_ecr_access_are_not_importable() {
    let desired = DesiredState {
        environment: env(),
        resources: vec![],
    };
    assert!(request_all(&desired).is_empty());
}
