//! `EcrAccess`: a grant of ECR pull (and optionally push) rights, merged into the documents
//! of ManagedPolicies, as the MLSpace "custom algorithms" guide describes. It is not an AWS
//! resource of its own: after rendering only the target policies carry it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::core::{Contribution, DocKind, Reference};
use super::environment::EnvironmentView;
use super::Kind;
use crate::syntax::diag::DocCx;

/// Read or read-and-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EcrAccessLevel {
    /// Pull images: authorization token, layer availability and download, image fetch.
    Read,
    /// Read, plus pushing layers and images and managing repositories.
    Write,
}

/// Spec of the `EcrAccess` kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EcrAccessSpec {
    /// `read` or `write`.
    pub access: EcrAccessLevel,
    /// Repository names in the Environment's account and region, or `["*"]` for all.
    pub repositories: Vec<String>,
    /// ManagedPolicy names (in this directory) whose documents receive the statements.
    pub grant_to: Vec<String>,
}

/// Actions a read grant adds on the repositories.
pub const READ_ACTIONS: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
];
/// Actions a write grant adds on top of the read ones.
pub const WRITE_ACTIONS: &[&str] = &[
    "ecr:SetRepositoryPolicy",
    "ecr:CompleteLayerUpload",
    "ecr:BatchDeleteImage",
    "ecr:UploadLayerPart",
    "ecr:DeleteRepositoryPolicy",
    "ecr:InitiateLayerUpload",
    "ecr:DeleteRepository",
    "ecr:PutImage",
    "ecr:CreateRepository",
];

impl EcrAccessSpec {
    /// Check the fields (references are checked with the whole set).
    pub fn validate(&self, cx: &mut DocCx) {
        if self.repositories.is_empty() {
            cx.error(
                "/spec/repositories",
                "at least one repository name (or \"*\") is required",
            );
        }
        for (i, r) in self.repositories.iter().enumerate() {
            let ok = r == "*"
                || (r.len() >= 2
                    && r.len() <= 256
                    && r.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && r.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c)
                    }));
            if !ok {
                cx.error(&format!("/spec/repositories/{i}"), format_args!("`{r}` is not an ECR repository name (lowercase letters, digits, . _ - /) or \"*\""));
            }
        }
        if self.repositories.len() > 1 && self.repositories.iter().any(|r| r == "*") {
            cx.warning(
                "/spec/repositories",
                "\"*\" already covers every repository; the names beside it add nothing",
            );
        }
        if self.grant_to.is_empty() {
            cx.error(
                "/spec/grantTo",
                "at least one ManagedPolicy name is required",
            );
        }
    }

    /// The statements this grant adds. They carry no Sid: managed policies are capped at
    /// 6,144 characters and MLSpace's boundary leaves little room. With `"*"` the token and
    /// pull actions share one statement, since the token call needs `Resource: "*"` anyway.
    pub fn statements(&self, partition: &str, region: &str, account: &str) -> Vec<Value> {
        let mut actions: Vec<&str> = READ_ACTIONS.to_vec();
        if self.access == EcrAccessLevel::Write {
            actions.extend_from_slice(WRITE_ACTIONS);
        }
        if self.repositories.iter().any(|r| r == "*") {
            let mut all = vec!["ecr:GetAuthorizationToken"];
            all.extend(actions);
            return vec![json!({"Effect": "Allow", "Action": all, "Resource": "*"})];
        }
        let repos: Vec<String> = self
            .repositories
            .iter()
            .map(|r| format!("arn:{partition}:ecr:{region}:{account}:repository/{r}"))
            .collect();
        vec![
            json!({"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}),
            json!({"Effect": "Allow", "Action": actions, "Resource": repos}),
        ]
    }
}

/// The EcrAccess kind: a document, not an AWS resource.
pub struct EcrAccess;

impl DocKind for EcrAccess {
    const KIND: Kind = Kind::EcrAccess;
    type Spec = EcrAccessSpec;

    fn validate(_: &str, spec: &EcrAccessSpec, cx: &mut DocCx, _: &EnvironmentView) {
        spec.validate(cx);
    }

    fn references(spec: &EcrAccessSpec) -> Vec<Reference> {
        spec.grant_to
            .iter()
            .enumerate()
            .map(|(i, t)| Reference {
                pointer: format!("/spec/grantTo/{i}"),
                kind: Kind::ManagedPolicy,
                name: t.clone(),
                hint: None,
            })
            .collect()
    }

    fn contributions(_: &str, spec: &EcrAccessSpec, env: &EnvironmentView) -> Vec<Contribution> {
        let stmts = spec.statements(&env.partition, &env.region, &env.account);
        spec.grant_to
            .iter()
            .enumerate()
            .map(|(i, t)| Contribution {
                pointer: format!("/spec/grantTo/{i}"),
                target: (Kind::ManagedPolicy, t.clone()),
                statements: stmts.clone(),
            })
            .collect()
    }
}
