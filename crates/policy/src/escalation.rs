//! Privilege-escalation paths in a role's effective permissions.
//!
//! A path is a known way for a principal to give itself more access than its policies
//! grant: rewrite or attach a policy, trust itself into another role, or hand a role to a
//! service that runs code as that role (`iam:PassRole` plus, say, `lambda:CreateFunction`
//! and `lambda:InvokeFunction`). [`escalation_paths`] judges a role as IAM does: the union
//! of its identity policies (attached and inline), less what unconditional Denies take
//! away, capped by its permissions boundary when it has one.
//!
//! The analysis is deliberately conservative in what it reports: a grant under a
//! condition still counts (the condition may well hold), but the path says so
//! ([`Escalation::conditional`]). `iam:PassedToService` is honoured: a `PassRole`
//! limited to SageMaker opens the SageMaker path, not the Lambda one.

use serde::Serialize;
use serde_json::Value;

use crate::arn::PolicyArn;
use crate::catalog::{catalogue, Catalogue};
use crate::glob::{wild_match_ci, Pattern};
use crate::lint::{self, Check, Finding, Severity};
use crate::statement::{statements, Effect, Stmt};

/// One step of a path: any one of these actions; for `iam:PassRole`, passed to `service`.
struct Step {
    any_of: &'static [&'static str],
    passed_to: Option<&'static str>,
}

const fn one(action: &'static [&'static str]) -> Step {
    Step {
        any_of: action,
        passed_to: None,
    }
}

const fn pass_role(service: &'static str) -> Step {
    Step {
        any_of: &["iam:PassRole"],
        passed_to: Some(service),
    }
}

/// A named path: every step must be granted.
struct PathDef {
    check: Check,
    steps: &'static [Step],
}

/// The paths, after the well-known AWS IAM escalation research (Rhino Security Labs'
/// list and its successors). Each is a fact about AWS, not a heuristic.
const PATHS: &[PathDef] = &[
    PathDef {
        check: lint::PRIVESC_CREATE_POLICY_VERSION,
        steps: &[one(&["iam:CreatePolicyVersion"])],
    },
    PathDef {
        check: lint::PRIVESC_SET_DEFAULT_POLICY_VERSION,
        steps: &[one(&["iam:SetDefaultPolicyVersion"])],
    },
    PathDef {
        check: lint::PRIVESC_ATTACH_ROLE_POLICY,
        steps: &[one(&["iam:AttachRolePolicy"])],
    },
    PathDef {
        check: lint::PRIVESC_PUT_ROLE_POLICY,
        steps: &[one(&["iam:PutRolePolicy"])],
    },
    PathDef {
        check: lint::PRIVESC_UPDATE_ASSUME_ROLE_POLICY,
        steps: &[one(&["iam:UpdateAssumeRolePolicy"])],
    },
    PathDef {
        check: lint::PRIVESC_ATTACH_USER_POLICY,
        steps: &[one(&["iam:AttachUserPolicy"])],
    },
    PathDef {
        check: lint::PRIVESC_PUT_USER_POLICY,
        steps: &[one(&["iam:PutUserPolicy"])],
    },
    PathDef {
        check: lint::PRIVESC_ATTACH_GROUP_POLICY,
        steps: &[one(&["iam:AttachGroupPolicy"])],
    },
    PathDef {
        check: lint::PRIVESC_PUT_GROUP_POLICY,
        steps: &[one(&["iam:PutGroupPolicy"])],
    },
    PathDef {
        check: lint::PRIVESC_ADD_USER_TO_GROUP,
        steps: &[one(&["iam:AddUserToGroup"])],
    },
    PathDef {
        check: lint::PRIVESC_USER_CREDENTIALS,
        steps: &[one(&[
            "iam:CreateAccessKey",
            "iam:CreateLoginProfile",
            "iam:UpdateLoginProfile",
        ])],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_LAMBDA,
        steps: &[
            pass_role("lambda.amazonaws.com"),
            one(&["lambda:CreateFunction"]),
            one(&[
                "lambda:InvokeFunction",
                "lambda:CreateEventSourceMapping",
                "lambda:AddPermission",
                "lambda:CreateFunctionUrlConfig",
            ]),
        ],
    },
    PathDef {
        check: lint::PRIVESC_LAMBDA_UPDATE_CODE,
        steps: &[one(&["lambda:UpdateFunctionCode"])],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_EC2,
        steps: &[pass_role("ec2.amazonaws.com"), one(&["ec2:RunInstances"])],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_AUTOSCALING,
        steps: &[
            pass_role("ec2.amazonaws.com"),
            one(&["autoscaling:CreateAutoScalingGroup"]),
            one(&[
                "autoscaling:CreateLaunchConfiguration",
                "ec2:CreateLaunchTemplate",
            ]),
        ],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_GLUE,
        steps: &[
            pass_role("glue.amazonaws.com"),
            one(&["glue:CreateDevEndpoint", "glue:CreateJob"]),
            one(&[
                "glue:CreateDevEndpoint",
                "glue:StartJobRun",
                "glue:CreateTrigger",
            ]),
        ],
    },
    PathDef {
        check: lint::PRIVESC_GLUE_UPDATE_DEV_ENDPOINT,
        steps: &[one(&["glue:UpdateDevEndpoint"])],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_SAGEMAKER,
        steps: &[
            pass_role("sagemaker.amazonaws.com"),
            one(&[
                "sagemaker:CreateNotebookInstance",
                "sagemaker:CreateTrainingJob",
                "sagemaker:CreateProcessingJob",
                "sagemaker:CreateHyperParameterTuningJob",
            ]),
        ],
    },
    PathDef {
        check: lint::PRIVESC_SAGEMAKER_NOTEBOOK_URL,
        steps: &[one(&["sagemaker:CreatePresignedNotebookInstanceUrl"])],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_CLOUDFORMATION,
        steps: &[
            pass_role("cloudformation.amazonaws.com"),
            one(&[
                "cloudformation:CreateStack",
                "cloudformation:UpdateStack",
                "cloudformation:CreateChangeSet",
            ]),
        ],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_ECS,
        steps: &[
            pass_role("ecs-tasks.amazonaws.com"),
            one(&["ecs:RegisterTaskDefinition"]),
            one(&[
                "ecs:RunTask",
                "ecs:StartTask",
                "ecs:CreateService",
                "ecs:UpdateService",
            ]),
        ],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_CODEBUILD,
        steps: &[
            pass_role("codebuild.amazonaws.com"),
            one(&["codebuild:CreateProject"]),
            one(&["codebuild:StartBuild", "codebuild:StartBuildBatch"]),
        ],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_DATAPIPELINE,
        steps: &[
            pass_role("datapipeline.amazonaws.com"),
            one(&["datapipeline:CreatePipeline"]),
            one(&["datapipeline:PutPipelineDefinition"]),
            one(&["datapipeline:ActivatePipeline"]),
        ],
    },
    PathDef {
        check: lint::PRIVESC_PASSROLE_EMR,
        steps: &[
            pass_role("elasticmapreduce.amazonaws.com"),
            one(&["elasticmapreduce:RunJobFlow"]),
        ],
    },
    PathDef {
        check: lint::PRIVESC_SSM_COMMAND,
        steps: &[one(&["ssm:SendCommand", "ssm:StartSession"])],
    },
];

/// A statement that grants one action of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathGrant {
    /// The action granted, as the catalogue spells it, e.g. `iam:PassRole`.
    pub action: String,
    /// Index of the identity document (in the slice given) holding the statement.
    pub document: usize,
    /// JSON pointer to the granting `Action` entry (or the `NotAction` element).
    pub pointer: String,
    /// The statement's resources as written (`NotResource` ones prefixed with `not `).
    pub resources: Vec<String>,
    /// Whether the grant depends on a condition (of the statement or of the boundary).
    pub conditional: bool,
}

/// A privilege-escalation path a role's permissions open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Escalation {
    /// Stable check id, e.g. `privesc-passrole-lambda`.
    pub check: &'static str,
    /// Always [`Severity::SecurityWarning`].
    pub severity: Severity,
    /// Every statement that grants an action of the path.
    pub grants: Vec<PathGrant>,
    /// Whether some step is granted only under conditions, which may or may not hold.
    pub conditional: bool,
    /// What the path is and what to do.
    pub message: String,
}

impl Escalation {
    /// The path as a lint finding, anchored at its first grant: the document index and
    /// the finding (whose pointer is into that document).
    pub fn finding(&self) -> (usize, Finding) {
        let (document, pointer) = self
            .grants
            .first()
            .map_or((0, String::new()), |g| (g.document, g.pointer.clone()));
        let finding = Finding {
            check: self.check,
            severity: self.severity,
            pointer,
            message: self.message.clone(),
        };
        (document, finding)
    }
}

/// The escalation paths open to a principal whose identity policies (attached managed
/// and inline) are `identity`, capped by permissions boundary `boundary`.
///
/// A path is open when each of its steps is granted: an Allow in some identity document
/// covers the action on a resource of a type the action takes, no unconditional Deny
/// (in any document or the boundary) covers it, and, with a boundary, an Allow of the
/// boundary covers the action on an overlapping resource. Paths come in [`lint::CHECKS`]
/// order.
pub fn escalation_paths(identity: &[&Value], boundary: Option<&Value>) -> Vec<Escalation> {
    let cat = catalogue();
    let docs: Vec<Vec<Stmt<'_>>> = identity.iter().map(|d| statements(d)).collect();
    let bound: Option<Vec<Stmt<'_>>> = boundary.map(statements);
    let mut out = Vec::new();
    for path in PATHS {
        let mut grants: Vec<PathGrant> = Vec::new();
        let mut conditional = false;
        let mut open = true;
        for step in path.steps {
            let step_grants: Vec<PathGrant> = step
                .any_of
                .iter()
                .flat_map(|a| grants_of(cat, a, step.passed_to, &docs, bound.as_deref()))
                .collect();
            if step_grants.is_empty() {
                open = false;
                break;
            }
            conditional |= step_grants.iter().all(|g| g.conditional);
            for g in step_grants {
                if !grants.contains(&g) {
                    grants.push(g);
                }
            }
        }
        if open {
            out.push(Escalation {
                check: path.check.id,
                severity: path.check.severity,
                message: message(&path.check, &grants, conditional),
                grants,
                conditional,
            });
        }
    }
    out
}

fn message(check: &Check, grants: &[PathGrant], conditional: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    for g in grants {
        let on = match g.resources.as_slice() {
            [] => String::new(),
            [one] => format!(" on {one}"),
            [first, rest @ ..] => format!(" on {first} (+{} more)", rest.len()),
        };
        parts.push(format!(
            "{}{on} (document {}, {})",
            g.action, g.document, g.pointer
        ));
    }
    let summary = check.summary.trim_start_matches("Escalation: ");
    format!(
        "privilege escalation: {}; granted by {}{}. Remove one of these grants, narrow its \
         resources, or cap the role with a permissions boundary that does not allow it",
        summary.trim_end_matches('.'),
        parts.join(", "),
        if conditional {
            " (only under conditions: check that they hold for no untrusted caller)"
        } else {
            ""
        }
    )
}

/// The statements of `docs` that grant `action` (passed to `passed_to` for PassRole).
fn grants_of(
    cat: &Catalogue,
    action: &str,
    passed_to: Option<&str>,
    docs: &[Vec<Stmt<'_>>],
    boundary: Option<&[Stmt<'_>]>,
) -> Vec<PathGrant> {
    let Some((svc, act)) = cat.action(action) else {
        return Vec::new();
    };
    let canonical = format!("{}:{}", svc.prefix(), act.name());
    let index = svc.action_index(act.name()).unwrap_or_default();
    let templates: Vec<_> = svc
        .action_resources(index)
        .iter()
        .map(|t| svc.resource_types()[t.index as usize].template())
        .collect();
    // Whether a Resource string can name a resource this action acts on.
    let fits = |r: &str| -> bool {
        if r == "*" {
            return true;
        }
        match PolicyArn::parse(r) {
            // Without resource-level permissions only "*" grants the action.
            Some(a) => templates.iter().any(|t| a.could_be(t)),
            None => !templates.is_empty(),
        }
    };
    let denied = |resources: &[&str]| -> bool {
        let all_docs = docs.iter().flatten().chain(boundary.into_iter().flatten());
        all_docs
            .filter(|s| s.effect == Some(Effect::Deny) && s.clauses.is_empty())
            .filter(|s| stmt_has_action(s, &canonical))
            .any(|s| match &s.resource {
                Some(r) if !r.not => resources.iter().all(|g| {
                    let gp = Pattern::policy(g);
                    r.items.iter().any(|(_, d)| Pattern::policy(d).covers(&gp))
                }),
                _ => false,
            })
    };

    let mut out = Vec::new();
    for (d, stmts) in docs.iter().enumerate() {
        for s in stmts {
            if s.effect != Some(Effect::Allow) || !stmt_has_action(s, &canonical) {
                continue;
            }
            let Some(pointer) = action_pointer(s, &canonical) else {
                continue;
            };
            let resources: Vec<&str> = match &s.resource {
                Some(r) if !r.not => r
                    .items
                    .iter()
                    .map(|(_, x)| *x)
                    .filter(|x| fits(x))
                    .collect(),
                Some(_) => vec!["*"],
                None => continue,
            };
            if resources.is_empty() || !passes_to(s, passed_to) || denied(&resources) {
                continue;
            }
            let mut conditional = s
                .clauses
                .iter()
                .any(|c| !c.key.eq_ignore_ascii_case("iam:PassedToService"));
            if let Some(b) = boundary {
                let Some(cap) = b.iter().find(|bs| {
                    bs.effect == Some(Effect::Allow)
                        && stmt_has_action(bs, &canonical)
                        && passes_to(bs, passed_to)
                        && overlaps(bs, &resources)
                }) else {
                    continue;
                };
                conditional |= cap
                    .clauses
                    .iter()
                    .any(|c| !c.key.eq_ignore_ascii_case("iam:PassedToService"));
            }
            out.push(PathGrant {
                action: canonical.clone(),
                document: d,
                pointer,
                resources: match &s.resource {
                    Some(r) if r.not => r.items.iter().map(|(_, x)| format!("not {x}")).collect(),
                    _ => resources.iter().map(|x| (*x).to_owned()).collect(),
                },
                conditional,
            });
        }
    }
    out
}

/// Whether an `Action` string grants `action` (`service:Name`, catalogue spelling).
fn entry_grants(entry: &str, action: &str) -> bool {
    if entry == "*" {
        return true;
    }
    let (Some((ep, en)), Some((ap, an))) = (entry.split_once(':'), action.split_once(':')) else {
        return false;
    };
    ep.eq_ignore_ascii_case(ap) && wild_match_ci(en, an)
}

/// Whether the statement's `Action`/`NotAction` covers `action`.
fn stmt_has_action(s: &Stmt<'_>, action: &str) -> bool {
    match &s.action {
        Some(l) if l.not => !l.items.iter().any(|(_, e)| entry_grants(e, action)),
        Some(l) => l.items.iter().any(|(_, e)| entry_grants(e, action)),
        None => false,
    }
}

/// Pointer to the entry granting `action`, or to the `NotAction` element.
fn action_pointer(s: &Stmt<'_>, action: &str) -> Option<String> {
    let l = s.action.as_ref()?;
    if l.not {
        return Some(s.loc().key(l.key).pointer);
    }
    l.items
        .iter()
        .find(|(_, e)| entry_grants(e, action))
        .map(|(i, _)| s.item_loc(l.key, *i).pointer)
}

/// Whether the statement lets the role be passed to `service` (always when no service
/// is asked about, or the statement does not test `iam:PassedToService`).
fn passes_to(s: &Stmt<'_>, service: Option<&str>) -> bool {
    let Some(service) = service else { return true };
    s.clauses
        .iter()
        .filter(|c| c.key.eq_ignore_ascii_case("iam:PassedToService"))
        .all(|c| {
            let Some(op) = c.op else { return true };
            let hit = c.values.iter().any(|v| {
                if op.base.contains("Like") {
                    wild_match_ci(v, service)
                } else {
                    v.eq_ignore_ascii_case(service)
                }
            });
            if op.base.contains("Not") {
                !hit
            } else {
                hit
            }
        })
}

/// Whether the statement's resources overlap any of `resources`.
fn overlaps(s: &Stmt<'_>, resources: &[&str]) -> bool {
    match &s.resource {
        Some(r) if !r.not => r.items.iter().any(|(_, b)| {
            let bp = Pattern::policy(b);
            resources.iter().any(|g| bp.intersects(&Pattern::policy(g)))
        }),
        // NotResource: assume some overlap rather than hide a path.
        Some(_) => true,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(statements: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    fn ids(paths: &[Escalation]) -> Vec<&str> {
        paths.iter().map(|p| p.check).collect()
    }

    #[test]
    fn single_action_paths() {
        let d = doc(
            json!([{"Effect": "Allow", "Action": ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"], "Resource": "*"}]),
        );
        let paths = escalation_paths(&[&d], None);
        assert_eq!(
            ids(&paths),
            [
                "privesc-create-policy-version",
                "privesc-set-default-policy-version"
            ]
        );
        assert_eq!(paths[0].grants[0].pointer, "/Statement/0/Action/0");
        assert_eq!(paths[1].grants[0].pointer, "/Statement/0/Action/1");
        assert!(!paths[0].conditional);
        assert!(paths[0].message.contains("iam:CreatePolicyVersion on *"));
    }

    #[test]
    fn passrole_needs_the_compute_actions_too() {
        let pass = doc(
            json!([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/app-*"}]),
        );
        assert!(escalation_paths(&[&pass], None).is_empty());
        let lambda = doc(
            json!([{"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"}]),
        );
        let paths = escalation_paths(&[&pass, &lambda], None);
        assert_eq!(ids(&paths), ["privesc-passrole-lambda"]);
        let docs: Vec<usize> = paths[0].grants.iter().map(|g| g.document).collect();
        assert_eq!(docs, [0, 1, 1]);
        assert_eq!(
            paths[0].grants[0].resources,
            ["arn:aws:iam::123456789012:role/app-*"]
        );
    }

    #[test]
    fn passed_to_service_selects_the_path() {
        let d = doc(json!([
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
             "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}},
            {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction", "sagemaker:CreateTrainingJob"], "Resource": "*"}
        ]));
        let paths = escalation_paths(&[&d], None);
        assert_eq!(ids(&paths), ["privesc-passrole-sagemaker"]);
        // PassedToService alone does not make the grant conditional.
        assert!(!paths[0].conditional);
    }

    #[test]
    fn wildcards_and_not_action_grant() {
        let star = doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]));
        let paths = escalation_paths(&[&star], None);
        assert!(paths.len() >= 20, "{:?}", ids(&paths));
        let iam_star = doc(json!([{"Effect": "Allow", "Action": "iam:Put*", "Resource": "*"}]));
        assert_eq!(
            ids(&escalation_paths(&[&iam_star], None)),
            [
                "privesc-put-role-policy",
                "privesc-put-user-policy",
                "privesc-put-group-policy"
            ]
        );
        let not = doc(json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]));
        let paths = escalation_paths(&[&not], None);
        assert!(ids(&paths).contains(&"privesc-lambda-update-code"));
        assert!(!ids(&paths).contains(&"privesc-put-role-policy"));
        assert_eq!(paths[0].grants[0].pointer, "/Statement/0/NotAction");
    }

    #[test]
    fn resources_of_the_wrong_type_grant_nothing() {
        let d = doc(
            json!([{"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "arn:aws:iam::123456789012:user/x"}]),
        );
        assert!(escalation_paths(&[&d], None).is_empty());
        let r = doc(
            json!([{"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "arn:aws:iam::123456789012:role/x"}]),
        );
        assert_eq!(
            ids(&escalation_paths(&[&r], None)),
            ["privesc-put-role-policy"]
        );
    }

    #[test]
    fn unconditional_deny_removes_a_path() {
        let allow =
            doc(json!([{"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": "*"}]));
        let deny = doc(json!([{"Effect": "Deny", "Action": "iam:Attach*", "Resource": "*"}]));
        assert!(escalation_paths(&[&allow, &deny], None).is_empty());
        let conditional_deny = doc(
            json!([{"Effect": "Deny", "Action": "iam:Attach*", "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}]),
        );
        assert_eq!(
            escalation_paths(&[&allow, &conditional_deny], None).len(),
            1
        );
        let narrow_deny = doc(
            json!([{"Effect": "Deny", "Action": "iam:AttachRolePolicy", "Resource": "arn:aws:iam::123456789012:role/admin"}]),
        );
        assert_eq!(escalation_paths(&[&allow, &narrow_deny], None).len(), 1);
    }

    #[test]
    fn boundary_caps_the_paths() {
        let identity = doc(
            json!([{"Effect": "Allow", "Action": ["iam:CreatePolicyVersion", "iam:PassRole", "ec2:RunInstances"], "Resource": "*"}]),
        );
        assert_eq!(
            ids(&escalation_paths(&[&identity], None)),
            ["privesc-create-policy-version", "privesc-passrole-ec2"]
        );
        let boundary = doc(
            json!([{"Effect": "Allow", "Action": ["ec2:*", "iam:PassRole"], "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}]),
        );
        let paths = escalation_paths(&[&identity], Some(&boundary));
        assert_eq!(ids(&paths), ["privesc-passrole-ec2"]);
        assert!(paths[0].conditional);
        // A boundary allowing PassRole only to SageMaker closes the EC2 path too.
        let sm_only = doc(
            json!([{"Effect": "Allow", "Action": ["ec2:*", "iam:PassRole"], "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}]),
        );
        assert!(escalation_paths(&[&identity], Some(&sm_only)).is_empty());
        // A boundary on other resources does not cap.
        let other = doc(
            json!([{"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": "arn:aws:iam::123456789012:policy/x"}]),
        );
        let narrow = doc(
            json!([{"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": "arn:aws:iam::123456789012:policy/y"}]),
        );
        assert!(escalation_paths(&[&narrow], Some(&other)).is_empty());
        assert_eq!(escalation_paths(&[&other], Some(&other)).len(), 1);
        // A Deny in the boundary removes the path.
        let deny = doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"},
                               {"Effect": "Deny", "Action": "iam:CreatePolicyVersion", "Resource": "*"}]));
        assert_eq!(
            ids(&escalation_paths(&[&identity], Some(&deny))),
            ["privesc-passrole-ec2"]
        );
    }

    #[test]
    fn conditional_grants_are_marked() {
        let d = doc(
            json!([{"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": "*",
            "Condition": {"StringEquals": {"iam:ResourceTag/team": "ml"}}}]),
        );
        let paths = escalation_paths(&[&d], None);
        assert!(paths[0].conditional);
        assert!(paths[0].message.contains("only under conditions"));
        let (doc_index, finding) = paths[0].finding();
        assert_eq!(doc_index, 0);
        assert_eq!(finding.check, "privesc-attach-role-policy");
        assert_eq!(finding.severity, Severity::SecurityWarning);
        assert_eq!(finding.pointer, "/Statement/0/Action");
    }

    #[test]
    fn every_path_action_is_in_the_catalogue() {
        let cat = catalogue();
        for path in PATHS {
            assert!(lint::check(path.check.id).is_some());
            for step in path.steps {
                for a in step.any_of {
                    assert!(cat.action(a).is_some(), "{a} ({})", path.check.id);
                }
            }
        }
    }
}
