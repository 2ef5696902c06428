//! The lint test cases: for every document check, a failing example and its fix.
//! Used by tests/lint_checks.rs and by the dump for the parliament comparison.

#![allow(dead_code)]

use mlspace_policy::PolicyKind;
use serde_json::{json, Value};

pub struct Case {
    pub check: &'static str,
    pub kind: PolicyKind,
    pub pointer: &'static str,
    pub bad: Value,
    pub good: Value,
}

pub fn v(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

const GITHUB: &str = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";

pub fn cases() -> Vec<Case> {
    use PolicyKind::*;
    vec![
        Case {
            check: "invalid-structure",
            kind: Identity,
            pointer: "/Statement/0/Effect",
            bad: v(
                json!([{"Effect": "Permit", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "structure-warning",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(
                json!([{"Effect": "Allow", "Action": "S3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "empty-condition-values",
            kind: Identity,
            pointer: "/Statement/0/Condition/ForAnyValue:StringEquals/sagemaker:InstanceTypes",
            bad: v(
                json!([{"Effect": "Deny", "Action": "sagemaker:CreateTrainingJob", "Resource": "*", "Condition": {"ForAnyValue:StringEquals": {"sagemaker:InstanceTypes": []}}}]),
            ),
            good: v(
                json!([{"Effect": "Deny", "Action": "sagemaker:CreateTrainingJob", "Resource": "*", "Condition": {"ForAnyValue:StringEquals": {"sagemaker:InstanceTypes": ["ml.t3.medium"]}}}]),
            ),
        },
        Case {
            check: "missing-version",
            kind: Identity,
            pointer: "",
            bad: json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "duplicate-sid",
            kind: Identity,
            pointer: "/Statement/1/Sid",
            bad: v(json!([
                {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Sid": "Read", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}
            ])),
            good: v(json!([
                {"Sid": "ReadObjects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}
            ])),
        },
        Case {
            check: "unknown-service",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(json!([{"Effect": "Allow", "Action": "sagemakr:CreateModel", "Resource": "*"}])),
            good: v(
                json!([{"Effect": "Allow", "Action": "sagemaker:CreateModel", "Resource": "*"}]),
            ),
        },
        Case {
            check: "unknown-action",
            kind: Identity,
            pointer: "/Statement/0/Action/1",
            bad: v(
                json!([{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObjcet"], "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "action-pattern-matches-nothing",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:Get*Objcet", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:Get*Object", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "arn-unknown-service",
            kind: Identity,
            pointer: "/Statement/0/Resource",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s4:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "arn-malformed",
            kind: Identity,
            pointer: "/Statement/0/Resource",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:us-east-1::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "resource-service-mismatch",
            kind: Identity,
            pointer: "/Statement/0/Resource",
            bad: v(json!([{"Effect": "Allow", "Action": "bedrock:InvokeModel",
                "Resource": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llm"}])),
            good: v(json!([{"Effect": "Allow", "Action": "bedrock:InvokeModel",
                "Resource": "arn:aws:bedrock:us-east-1::foundation-model/*"}])),
        },
        Case {
            check: "resource-type-mismatch",
            kind: Identity,
            pointer: "/Statement/0/Resource",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}]),
            ),
        },
        Case {
            check: "action-resource-mismatch",
            kind: Identity,
            pointer: "/Statement/0/Action/0",
            bad: v(
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "arn:aws:s3:::b"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}]),
            ),
        },
        Case {
            check: "no-resource-level-permissions",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(
                json!([{"Effect": "Allow", "Action": "ec2:DescribeInstances",
                "Resource": "arn:aws:ec2:us-east-1:123456789012:instance/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"}]),
            ),
        },
        Case {
            check: "key-policy-resource",
            kind: KeyPolicy,
            pointer: "/Statement/0/Resource",
            bad: v(json!([{"Sid": "Enable IAM policies", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*",
                "Resource": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}])),
            good: v(json!([{"Sid": "Enable IAM policies", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}])),
        },
        Case {
            check: "unknown-condition-key",
            kind: Identity,
            pointer: "/Statement/0/Condition/StringLike/s3:prefx",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"StringLike": {"s3:prefx": "home/*"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"StringLike": {"s3:prefix": "home/*"}}}]),
            ),
        },
        Case {
            check: "condition-key-not-applicable",
            kind: Identity,
            pointer: "/Statement/0/Condition/StringLike/s3:prefix",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringLike": {"s3:prefix": "home/*"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/home/*"}]),
            ),
        },
        Case {
            check: "condition-type-mismatch",
            kind: Identity,
            pointer: "/Statement/0/Condition/Bool/s3:prefix",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"Bool": {"s3:prefix": "true"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"StringLike": {"s3:prefix": "home/*"}}}]),
            ),
        },
        Case {
            check: "condition-type-loose",
            kind: Identity,
            pointer: "/Statement/0/Condition/StringEquals/aws:SecureTransport",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringEquals": {"aws:SecureTransport": "true"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]),
            ),
        },
        Case {
            check: "condition-value-invalid",
            kind: Identity,
            pointer: "/Statement/0/Condition/Bool/aws:SecureTransport",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "yes"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]),
            ),
        },
        Case {
            check: "set-operator-single-valued",
            kind: Identity,
            pointer: "/Statement/0/Condition/ForAnyValue:StringEquals/aws:SourceVpc",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringEquals": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}}}]),
            ),
        },
        Case {
            check: "multivalued-key-without-set-operator",
            kind: Identity,
            pointer: "/Statement/0/Condition/StringEquals/aws:TagKeys",
            bad: v(
                json!([{"Effect": "Allow", "Action": "iam:TagRole", "Resource": "arn:aws:iam::123456789012:role/app-*",
                "Condition": {"StringEquals": {"aws:TagKeys": "team"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "iam:TagRole", "Resource": "arn:aws:iam::123456789012:role/app-*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "team"}}}]),
            ),
        },
        Case {
            check: "for-all-values-allow",
            kind: Identity,
            pointer: "/Statement/0/Condition/ForAllValues:StringEquals/aws:TagKeys",
            bad: v(
                json!([{"Effect": "Allow", "Action": "iam:TagRole", "Resource": "arn:aws:iam::123456789012:role/app-*",
                "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "iam:TagRole", "Resource": "arn:aws:iam::123456789012:role/app-*",
                "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]},
                              "Null": {"aws:TagKeys": "false"}}}]),
            ),
        },
        Case {
            check: "pass-role-wildcard",
            kind: Identity,
            pointer: "/Statement/0/Action",
            bad: v(json!([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}])),
            good: v(json!([{"Effect": "Allow", "Action": "iam:PassRole",
                "Resource": "arn:aws:iam::123456789012:role/MLSpace*",
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}])),
        },
        Case {
            check: "allow-not-principal",
            kind: Resource,
            pointer: "/Statement/0/NotPrincipal",
            bad: v(
                json!([{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "allow-not-action",
            kind: Identity,
            pointer: "/Statement/0/NotAction",
            bad: v(json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}])),
            good: v(
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "wildcard-principal",
            kind: Resource,
            pointer: "/Statement/0/Principal",
            bad: v(
                json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}]),
            ),
        },
        Case {
            check: "oidc-trust-without-subject",
            kind: Trust,
            pointer: "/Statement/0/Principal/Federated",
            bad: v(
                json!([{"Effect": "Allow", "Principal": {"Federated": GITHUB},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Principal": {"Federated": GITHUB},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                              "StringLike": {"token.actions.githubusercontent.com:sub": "repo:example/mlspace:*"}}}]),
            ),
        },
        Case {
            check: "redundant-action",
            kind: Identity,
            pointer: "/Statement/0/Action/0",
            bad: v(
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:Get*"], "Resource": "arn:aws:s3:::b/*"}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "redundant-resource",
            kind: Identity,
            pointer: "/Statement/0/Resource/1",
            bad: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::b/reports/*"]}]),
            ),
            good: v(
                json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
            ),
        },
        Case {
            check: "redundant-statement",
            kind: Identity,
            pointer: "/Statement/1",
            bad: v(json!([
                {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/reports/*",
                 "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
            ])),
            good: v(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}])),
        },
        Case {
            check: "shadowed-by-deny",
            kind: Identity,
            pointer: "/Statement/0",
            bad: v(json!([
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
            ])),
            good: v(json!([
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
            ])),
        },
    ]
}
