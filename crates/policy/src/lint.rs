//! Lint: what is wrong or risky in one policy document, beyond what IAM rejects.
//!
//! [`lint`] runs the structural validation of [`crate::validate`] and then the checks
//! that need the IAM catalogue ([`crate::catalog`]): unknown services, actions and
//! condition keys (with "did you mean" hints), resources that no action of the statement
//! acts on, condition operators that do not fit the key's type, risky grants
//! (`iam:PassRole` on `*`, `NotPrincipal` in an Allow, a public principal without a
//! narrowing condition, ...), and redundant or shadowed statements.
//!
//! Every [`Finding`] names a stable check id (see [`CHECKS`] and `docs/lint.md`), so a
//! finding can be silenced per resource by naming its id ([`silence`]). Privilege
//! escalation is judged on a role's effective permissions, across documents, by
//! [`crate::escalation_paths`]; its ids are listed here too.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::arn::PolicyArn;
use crate::catalog::{catalogue, Catalogue, ConditionKey, KeyType, Resolved, ValueType};
use crate::condition::SetQualifier;
use crate::glob::Pattern;
use crate::pointer::Loc;
use crate::statement::{statements, Clause, Effect, Stmt};
use crate::validate::{self, validate_with_checks, PolicyKind};

/// How much a [`Finding`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Wrong: IAM rejects it, or the element cannot do what it says (it matches nothing).
    Error,
    /// Grants more than it seems to, or opens a path to more access.
    SecurityWarning,
    /// Probably not what the author meant.
    Warning,
    /// Works, but could be written more simply.
    Suggestion,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::SecurityWarning => "security-warning",
            Severity::Warning => "warning",
            Severity::Suggestion => "suggestion",
        })
    }
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable check id, e.g. `unknown-action` (see [`CHECKS`]).
    pub check: &'static str,
    /// The check's severity.
    pub severity: Severity,
    /// RFC 6901 JSON pointer to the element, e.g. `/Statement/2/Action/1`.
    pub pointer: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Finding {
    /// `SEVERITY[CHECK-ID]: message`; the caller puts `FILE:LINE:COL: ` in front.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: {}", self.severity, self.check, self.message)
    }
}

/// A lint check: its id, severity and one line on what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable id, used in output and in silencing annotations.
    pub id: &'static str,
    /// Severity of its findings.
    pub severity: Severity,
    /// What it finds.
    pub summary: &'static str,
}

macro_rules! checks {
    ($($name:ident = $id:literal, $sev:ident, $summary:literal;)*) => {
        $(
            #[doc = $summary]
            pub const $name: Check = Check { id: $id, severity: Severity::$sev, summary: $summary };
        )*
        /// Every check, in the order of `docs/lint.md`.
        pub const CHECKS: &[Check] = &[$($name),*];
    };
}

checks! {
    INVALID_STRUCTURE = "invalid-structure", Error, "The document is not shaped as IAM (or S3, KMS) requires.";
    STRUCTURE_WARNING = "structure-warning", Warning, "Shape accepted but likely a mistake (uppercase service prefix, variable without Version 2012-10-17, ...).";
    EMPTY_CONDITION_VALUES = "empty-condition-values", Warning, "A condition key is given an empty list of values, which nothing matches: the statement never applies (or, under ForAllValues:, the condition always holds).";
    MISSING_VERSION = "missing-version", Warning, "No Version: policy variables are taken literally.";
    DUPLICATE_SID = "duplicate-sid", Error, "Two statements have the same Sid.";
    UNKNOWN_SERVICE = "unknown-service", Error, "An action's service prefix is not a known service.";
    UNKNOWN_ACTION = "unknown-action", Error, "The service has no action of that name.";
    ACTION_PATTERN_MATCHES_NOTHING = "action-pattern-matches-nothing", Error, "A wildcard action pattern matches no action of its service.";
    ARN_UNKNOWN_SERVICE = "arn-unknown-service", Warning, "No resource type of the catalogue has ARNs with this service part.";
    ARN_MALFORMED = "arn-malformed", Error, "The ARN fits no resource type of its service (region on a global resource, missing account, wrong path).";
    RESOURCE_SERVICE_MISMATCH = "resource-service-mismatch", Error, "A resource belongs to a service none of the statement's actions acts on.";
    RESOURCE_TYPE_MISMATCH = "resource-type-mismatch", Error, "A resource is of a type none of the statement's actions acts on.";
    ACTION_RESOURCE_MISMATCH = "action-resource-mismatch", Error, "An action acts on none of the statement's resources, so it is not granted.";
    NO_RESOURCE_LEVEL_PERMISSIONS = "no-resource-level-permissions", Error, "An action without resource-level permissions is given only specific resources.";
    KEY_POLICY_RESOURCE = "key-policy-resource", Warning, "A key policy statement names a Resource other than \"*\" (the key itself).";
    UNKNOWN_CONDITION_KEY = "unknown-condition-key", Error, "The condition key is neither global nor a key of its service.";
    CONDITION_KEY_NOT_APPLICABLE = "condition-key-not-applicable", Warning, "The condition key is never present in requests for the statement's actions.";
    CONDITION_TYPE_MISMATCH = "condition-type-mismatch", Error, "The operator cannot test a key of this type (Bool on a string, dates on numbers).";
    CONDITION_TYPE_LOOSE = "condition-type-loose", Warning, "The operator compares a typed key as text; the typed operator is meant.";
    CONDITION_VALUE_INVALID = "condition-value-invalid", Error, "A condition value is not of the operator's type (Bool not true/false, bad number, date or CIDR).";
    SET_OPERATOR_SINGLE_VALUED = "set-operator-single-valued", Warning, "ForAllValues:/ForAnyValue: on a single-valued key.";
    MULTIVALUED_KEY_WITHOUT_SET_OPERATOR = "multivalued-key-without-set-operator", Warning, "A multivalued key tested without ForAllValues:/ForAnyValue:.";
    FOR_ALL_VALUES_ALLOW = "for-all-values-allow", SecurityWarning, "Allow with ForAllValues: also matches requests without the key.";
    PASS_ROLE_WILDCARD = "pass-role-wildcard", SecurityWarning, "iam:PassRole on every role.";
    ALLOW_NOT_PRINCIPAL = "allow-not-principal", SecurityWarning, "Allow with NotPrincipal grants everyone else.";
    ALLOW_NOT_ACTION = "allow-not-action", SecurityWarning, "Allow with NotAction on every resource grants every other action, present and future.";
    WILDCARD_PRINCIPAL = "wildcard-principal", SecurityWarning, "A trust, bucket or key policy allows everyone without a narrowing condition.";
    OIDC_TRUST_WITHOUT_SUBJECT = "oidc-trust-without-subject", SecurityWarning, "A web-identity trust does not restrict the token's subject (or Cognito audience).";
    REDUNDANT_ACTION = "redundant-action", Suggestion, "An action is already covered by another one of the same statement.";
    REDUNDANT_RESOURCE = "redundant-resource", Suggestion, "A resource is already covered by another one of the same statement.";
    REDUNDANT_STATEMENT = "redundant-statement", Suggestion, "Another statement already grants (or denies) all of this one.";
    SHADOWED_BY_DENY = "shadowed-by-deny", Warning, "An unconditional Deny takes away all this Allow grants.";
    PRIVESC_CREATE_POLICY_VERSION = "privesc-create-policy-version", SecurityWarning, "Escalation: iam:CreatePolicyVersion rewrites a managed policy (new default version).";
    PRIVESC_SET_DEFAULT_POLICY_VERSION = "privesc-set-default-policy-version", SecurityWarning, "Escalation: iam:SetDefaultPolicyVersion switches a managed policy to a broader old version.";
    PRIVESC_ATTACH_ROLE_POLICY = "privesc-attach-role-policy", SecurityWarning, "Escalation: iam:AttachRolePolicy attaches any managed policy (AdministratorAccess) to a role.";
    PRIVESC_PUT_ROLE_POLICY = "privesc-put-role-policy", SecurityWarning, "Escalation: iam:PutRolePolicy writes any inline policy into a role.";
    PRIVESC_UPDATE_ASSUME_ROLE_POLICY = "privesc-update-assume-role-policy", SecurityWarning, "Escalation: iam:UpdateAssumeRolePolicy lets the holder trust itself into another role.";
    PRIVESC_ATTACH_USER_POLICY = "privesc-attach-user-policy", SecurityWarning, "Escalation: iam:AttachUserPolicy attaches any managed policy to a user.";
    PRIVESC_PUT_USER_POLICY = "privesc-put-user-policy", SecurityWarning, "Escalation: iam:PutUserPolicy writes any inline policy into a user.";
    PRIVESC_ATTACH_GROUP_POLICY = "privesc-attach-group-policy", SecurityWarning, "Escalation: iam:AttachGroupPolicy attaches any managed policy to a group.";
    PRIVESC_PUT_GROUP_POLICY = "privesc-put-group-policy", SecurityWarning, "Escalation: iam:PutGroupPolicy writes any inline policy into a group.";
    PRIVESC_ADD_USER_TO_GROUP = "privesc-add-user-to-group", SecurityWarning, "Escalation: iam:AddUserToGroup joins a more privileged group.";
    PRIVESC_USER_CREDENTIALS = "privesc-user-credentials", SecurityWarning, "Escalation: iam:CreateAccessKey / CreateLoginProfile / UpdateLoginProfile sign in as another user.";
    PRIVESC_PASSROLE_LAMBDA = "privesc-passrole-lambda", SecurityWarning, "Escalation: iam:PassRole + lambda:CreateFunction + a way to invoke it runs code as the role.";
    PRIVESC_LAMBDA_UPDATE_CODE = "privesc-lambda-update-code", SecurityWarning, "Escalation: lambda:UpdateFunctionCode runs new code as an existing function's role.";
    PRIVESC_PASSROLE_EC2 = "privesc-passrole-ec2", SecurityWarning, "Escalation: iam:PassRole + ec2:RunInstances starts an instance with the role.";
    PRIVESC_PASSROLE_AUTOSCALING = "privesc-passrole-autoscaling", SecurityWarning, "Escalation: iam:PassRole + an Auto Scaling group with a launch configuration or template starts instances with the role.";
    PRIVESC_PASSROLE_GLUE = "privesc-passrole-glue", SecurityWarning, "Escalation: iam:PassRole + glue:CreateDevEndpoint, or glue:CreateJob with a way to run it, runs code as the role.";
    PRIVESC_GLUE_UPDATE_DEV_ENDPOINT = "privesc-glue-update-dev-endpoint", SecurityWarning, "Escalation: glue:UpdateDevEndpoint adds an SSH key to an endpoint that runs as its role.";
    PRIVESC_PASSROLE_SAGEMAKER = "privesc-passrole-sagemaker", SecurityWarning, "Escalation: iam:PassRole + a SageMaker notebook, training, processing or tuning job runs code as the role.";
    PRIVESC_SAGEMAKER_NOTEBOOK_URL = "privesc-sagemaker-notebook-url", SecurityWarning, "Escalation: sagemaker:CreatePresignedNotebookInstanceUrl opens an existing notebook, which runs as its role.";
    PRIVESC_PASSROLE_CLOUDFORMATION = "privesc-passrole-cloudformation", SecurityWarning, "Escalation: iam:PassRole + cloudformation:CreateStack (or UpdateStack, CreateChangeSet) makes resources as the role.";
    PRIVESC_PASSROLE_ECS = "privesc-passrole-ecs", SecurityWarning, "Escalation: iam:PassRole + ecs:RegisterTaskDefinition + RunTask/StartTask/CreateService runs a container as the role.";
    PRIVESC_PASSROLE_CODEBUILD = "privesc-passrole-codebuild", SecurityWarning, "Escalation: iam:PassRole + codebuild:CreateProject + StartBuild runs a build as the role.";
    PRIVESC_PASSROLE_DATAPIPELINE = "privesc-passrole-datapipeline", SecurityWarning, "Escalation: iam:PassRole + a Data Pipeline definition runs commands as the role.";
    PRIVESC_PASSROLE_EMR = "privesc-passrole-emr", SecurityWarning, "Escalation: iam:PassRole + elasticmapreduce:RunJobFlow starts a cluster whose steps run as its roles.";
    PRIVESC_SSM_COMMAND = "privesc-ssm-command", SecurityWarning, "Escalation: ssm:SendCommand or ssm:StartSession runs commands on instances, as their roles.";
}

/// The check with id `id`, e.g. to validate the id an annotation names.
pub fn check(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}

/// `findings` without those of the checks named in `silenced` (for per-resource
/// annotations that name check ids).
pub fn silence(findings: Vec<Finding>, silenced: &[&str]) -> Vec<Finding> {
    findings
        .into_iter()
        .filter(|f| !silenced.contains(&f.check))
        .collect()
}

/// Lints one policy document used as `kind`: structural validation plus every check of
/// [`CHECKS`] that looks at a single document (all but the `privesc-*` ones).
///
/// Findings come in document order, structural ones first.
pub fn lint(doc: &Value, kind: PolicyKind) -> Vec<Finding> {
    let mut out: Vec<Finding> = validate_with_checks(doc, kind)
        .into_iter()
        .map(|(id, issue)| Finding {
            check: check(id).map_or(INVALID_STRUCTURE.id, |c| c.id),
            severity: match issue.severity {
                validate::Severity::Error => Severity::Error,
                validate::Severity::Warning => Severity::Warning,
            },
            pointer: issue.pointer,
            message: issue.message,
        })
        .collect();
    let mut linter = Linter {
        cat: catalogue(),
        kind,
        out: &mut out,
    };
    let stmts = statements(doc);
    let facts: Vec<Facts> = stmts.iter().map(|s| linter.statement(s)).collect();
    linter.across(&stmts, &facts);
    out
}

/// One `Action`/`NotAction` string and what it stands for.
struct Entry<'a> {
    index: Option<usize>,
    text: &'a str,
    resolved: Resolved,
}

/// What a statement grants, for comparing statements.
struct Facts {
    /// The actions (for `Action` statements).
    actions: Option<ActionCover>,
    /// The resources (for `Resource` statements; `Some(vec![])` where there are none).
    resources: Option<Vec<Pattern>>,
    /// The principals as (kind, id) (for `Principal` statements; empty where none).
    principals: Option<Vec<(String, String)>>,
}

/// A set of actions: all, or catalogue ids plus literal names the catalogue lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ActionCover {
    pub(crate) all: bool,
    pub(crate) ids: Vec<u32>,
    pub(crate) literals: Vec<String>,
}

impl ActionCover {
    pub(crate) fn of(cat: &Catalogue, text: &str, resolved: &Resolved) -> Self {
        match resolved {
            Resolved::All => Self {
                all: true,
                ..Self::default()
            },
            Resolved::Actions { svc, actions } => {
                let s = cat.service_at(*svc);
                Self {
                    all: false,
                    ids: actions.iter().map(|i| s.action_id(*i)).collect(),
                    literals: Vec::new(),
                }
            }
            _ => Self {
                all: false,
                ids: Vec::new(),
                literals: vec![text.to_ascii_lowercase()],
            },
        }
    }

    fn union(&mut self, other: &ActionCover) {
        self.all |= other.all;
        self.ids.extend_from_slice(&other.ids);
        self.literals.extend(other.literals.iter().cloned());
    }

    fn normalize(&mut self) {
        self.ids.sort_unstable();
        self.ids.dedup();
        self.literals.sort();
        self.literals.dedup();
    }

    /// Whether every action of `other` is in `self` (both normalized).
    pub(crate) fn covers(&self, other: &ActionCover) -> bool {
        if self.all {
            return true;
        }
        if other.all {
            return false;
        }
        sorted_subset(&other.ids, &self.ids)
            && other
                .literals
                .iter()
                .all(|l| self.literals.binary_search(l).is_ok())
    }
}

/// Whether sorted `small` is a subset of sorted `big`.
fn sorted_subset(small: &[u32], big: &[u32]) -> bool {
    let mut j = 0;
    for x in small {
        while j < big.len() && big[j] < *x {
            j += 1;
        }
        if j == big.len() || big[j] != *x {
            return false;
        }
    }
    true
}

struct Linter<'c, 'o> {
    cat: &'c Catalogue,
    kind: PolicyKind,
    out: &'o mut Vec<Finding>,
}

/// What a condition key is, as far as the catalogue knows.
enum KeyInfo<'c> {
    /// A global key, valid with any action.
    Global(&'c ConditionKey),
    /// A key of the key's own service or of a service of the statement's actions.
    Service(&'c ConditionKey),
    /// An `aws:` key some services document, but none of the statement's.
    Foreign(&'c ConditionKey),
    /// A key of a web-identity or SAML provider (`token.actions.githubusercontent.com:sub`).
    Provider,
    /// Not a key of the catalogue; with the closest known key.
    Unknown(Option<&'c str>),
}

/// Keys whose positive test narrows "everyone" to a known account, organization,
/// network or source (lowercase; a `/...` part is not part of these names).
const NARROWING_KEYS: &[&str] = &[
    "aws:sourcearn",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalservicename",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourcevpcarn",
    "aws:sourceip",
    "aws:vpcsourceip",
    "aws:userid",
    "aws:username",
    "aws:vpceaccount",
    "aws:vpceorgid",
    "aws:vpceorgpaths",
    "kms:calleraccount",
    "s3:dataaccesspointaccount",
];

/// `sts` actions authorized as part of an `AssumeRole*` request in a trust policy.
const TRUST_COMPANIONS: &[&str] = &["TagSession", "SetSourceIdentity", "SetContext"];

/// Positive operators: they let a request through only when the key has a listed value.
const POSITIVE_BASES: &[&str] = &[
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnEquals",
    "ArnLike",
    "IpAddress",
];

impl<'c> Linter<'c, '_> {
    fn emit(&mut self, check: &Check, loc: &Loc, message: String) {
        self.out.push(Finding {
            check: check.id,
            severity: check.severity,
            pointer: loc.pointer.clone(),
            message,
        });
    }

    fn statement(&mut self, stmt: &Stmt<'_>) -> Facts {
        let entries: Vec<Entry<'_>> = stmt
            .action
            .iter()
            .flat_map(|l| l.items.iter())
            .map(|(index, text)| Entry {
                index: *index,
                text,
                resolved: self.cat.resolve(text),
            })
            .collect();
        let action_key = stmt.action.as_ref().map_or("Action", |l| l.key);
        self.actions(stmt, action_key, &entries);
        if self.kind.has_resources() {
            self.resources(stmt, &entries);
        }
        self.conditions(stmt, &entries);
        self.security(stmt, &entries);
        self.redundant_entries(stmt, action_key, &entries);

        let actions = stmt.action.as_ref().filter(|l| !l.not).map(|_| {
            let mut cover = ActionCover::default();
            for e in &entries {
                cover.union(&ActionCover::of(self.cat, e.text, &e.resolved));
            }
            cover.normalize();
            cover
        });
        let resources = match &stmt.resource {
            Some(r) if r.not => None,
            Some(r) => Some(r.items.iter().map(|(_, s)| Pattern::policy(s)).collect()),
            None => Some(Vec::new()),
        };
        let principals = match &stmt.principal {
            Some(p) if p.not => None,
            Some(p) => Some(
                p.items
                    .iter()
                    .map(|i| {
                        if i.is_everyone() {
                            ("AWS".to_owned(), "*".to_owned())
                        } else {
                            (i.kind.to_owned(), i.id.to_owned())
                        }
                    })
                    .collect(),
            ),
            None => Some(Vec::new()),
        };
        Facts {
            actions,
            resources,
            principals,
        }
    }

    /// unknown-service, unknown-action, action-pattern-matches-nothing.
    fn actions(&mut self, stmt: &Stmt<'_>, key: &str, entries: &[Entry<'_>]) {
        let negated = key == "NotAction";
        let consequence = if negated {
            "so NotAction excludes nothing by it"
        } else {
            "so it grants nothing"
        };
        for e in entries {
            // Built only for a finding: most entries have none.
            let loc = || stmt.item_loc(key, e.index);
            let (prefix, name) = e.text.split_once(':').unwrap_or((e.text, ""));
            match &e.resolved {
                Resolved::UnknownService => {
                    let hint = self
                        .cat
                        .suggest_service(prefix)
                        .map(|s| format!(" (did you mean \"{s}:{name}\"?)"))
                        .unwrap_or_default();
                    let loc = loc();
                    self.emit(
                        &UNKNOWN_SERVICE,
                        &loc,
                        format!(
                            "{} {}: \"{prefix}\" is not a service prefix{hint}, {consequence}; \
                             use the prefix the Service Authorization Reference gives",
                            loc.name(),
                            quote(e.text)
                        ),
                    );
                }
                Resolved::UnknownAction { svc } => {
                    let s = self.cat.service_at(*svc);
                    let hint = s
                        .suggest_action(name)
                        .map(|a| format!(" (did you mean \"{}:{a}\"?)", s.prefix()))
                        .unwrap_or_default();
                    let loc = loc();
                    self.emit(
                        &UNKNOWN_ACTION,
                        &loc,
                        format!(
                            "{} {}: {} has no action \"{name}\"{hint}, {consequence}; use the \
                             name the Service Authorization Reference gives",
                            loc.name(),
                            quote(e.text),
                            s.prefix()
                        ),
                    );
                }
                Resolved::NoMatch { svc } => {
                    let s = self.cat.service_at(*svc);
                    let loc = loc();
                    self.emit(
                        &ACTION_PATTERN_MATCHES_NOTHING,
                        &loc,
                        format!(
                            "{} {}: the pattern matches no {} action, {consequence}; fix the \
                             pattern or remove it",
                            loc.name(),
                            quote(e.text),
                            s.prefix()
                        ),
                    );
                }
                Resolved::All | Resolved::Actions { .. } | Resolved::Invalid => {}
            }
        }
    }

    /// ARN checks, and whether actions and resources of the statement fit each other.
    fn resources(&mut self, stmt: &Stmt<'_>, entries: &[Entry<'_>]) {
        let Some(res) = &stmt.resource else { return };
        if res.not {
            return;
        }
        if self.kind == PolicyKind::KeyPolicy {
            for (index, r) in &res.items {
                if *r != "*" {
                    let loc = stmt.item_loc(res.key, *index);
                    self.emit(
                        &KEY_POLICY_RESOURCE,
                        &loc,
                        format!(
                            "{} {}: in a key policy the resource is always the key itself, \
                             written \"*\"; another value matches nothing or is misleading",
                            loc.name(),
                            quote(r)
                        ),
                    );
                }
            }
            return;
        }

        // Per resource: parsed ARN (None for "*" or unparsable) and whether it is sound.
        let mut arns: Vec<Option<PolicyArn>> = Vec::with_capacity(res.items.len());
        let mut sound: Vec<bool> = Vec::with_capacity(res.items.len());
        for (index, r) in &res.items {
            let arn = if *r == "*" { None } else { PolicyArn::parse(r) };
            let ok = match &arn {
                Some(a) => self.arn(stmt, &stmt.item_loc(res.key, *index), r, a),
                None => true,
            };
            arns.push(arn);
            sound.push(ok);
        }

        let Some(actions) = &stmt.action else { return };
        if actions.not || entries.iter().any(|e| e.resolved == Resolved::All) {
            return;
        }
        // The services acted on, and for each resource which of their types it can be.
        let mut services: Vec<usize> = entries
            .iter()
            .filter_map(|e| match &e.resolved {
                Resolved::Actions { svc, .. } => Some(*svc),
                _ => None,
            })
            .collect();
        services.sort_unstable();
        services.dedup();
        if services.is_empty() {
            return;
        }
        // fits[r][k][t]: resource r can be type t of services[k]; None = fits anything.
        let fits: Vec<Option<Vec<Vec<bool>>>> = arns
            .iter()
            .map(|arn| {
                arn.as_ref().map(|a| {
                    services
                        .iter()
                        .map(|s| {
                            self.cat
                                .service_at(*s)
                                .resource_types()
                                .iter()
                                .map(|t| a.could_be(t.template()))
                                .collect()
                        })
                        .collect()
                })
            })
            .collect();
        let star_or_unknown: Vec<bool> = res
            .items
            .iter()
            .zip(&arns)
            .map(|((_, r), a)| *r == "*" || a.is_none())
            .collect();
        let applies = |svc: usize, action: u32, r: usize| -> bool {
            let types = self.cat.service_at(svc).action_resources(action);
            if res.items[r].1 == "*" {
                return true;
            }
            let Some(fit) = &fits[r] else { return true };
            let k = services.binary_search(&svc).unwrap_or(0);
            types.iter().any(|t| fit[k][t.index as usize])
        };

        // ARN service parts of every resource type the statement's actions take.
        let mut acted_on: HashSet<String> = HashSet::new();
        for e in entries {
            if let Resolved::Actions { svc, actions } = &e.resolved {
                let s = self.cat.service_at(*svc);
                for a in actions {
                    for t in s.action_resources(*a) {
                        let name = &s.resource_types()[t.index as usize].template().service_name;
                        acted_on.insert(name.to_ascii_lowercase());
                    }
                }
            }
        }

        let mut dead = vec![false; res.items.len()];
        for (r, (index, text)) in res.items.iter().enumerate() {
            let Some(arn) = &arns[r] else { continue };
            let used = entries.iter().any(|e| match &e.resolved {
                Resolved::Actions { svc, actions } => actions.iter().any(|a| applies(*svc, *a, r)),
                _ => false,
            });
            if used {
                continue;
            }
            dead[r] = true;
            if !sound[r] || acted_on.is_empty() {
                continue;
            }
            let loc = stmt.item_loc(res.key, *index);
            if arn.has_literal_service() && !acted_on.contains(&arn.service.to_ascii_lowercase()) {
                let mut names: Vec<&str> = entries.iter().map(|e| e.text).collect();
                names.truncate(4);
                self.emit(
                    &RESOURCE_SERVICE_MISMATCH,
                    &loc,
                    format!(
                        "{} {} is a {} resource, but none of the statement's actions ({}{}) \
                         acts on {} resources: it matches nothing here; use an ARN of the \
                         actions' service",
                        loc.name(),
                        quote(text),
                        arn.service,
                        names.join(", "),
                        if entries.len() > 4 { ", ..." } else { "" },
                        arn.service
                    ),
                );
            } else {
                let expected = self.expected_types(entries, Some(&arn.service));
                self.emit(
                    &RESOURCE_TYPE_MISMATCH,
                    &loc,
                    format!(
                        "{} {} is not of a resource type the statement's actions act on \
                         (expected {expected}): it matches nothing here; use an ARN of one of \
                         those types",
                        loc.name(),
                        quote(text)
                    ),
                );
            }
        }

        let all_dead = (0..res.items.len()).all(|r| dead[r] && !star_or_unknown[r]);
        for e in entries {
            let Resolved::Actions { svc, actions } = &e.resolved else {
                continue;
            };
            let used = actions
                .iter()
                .any(|a| (0..res.items.len()).any(|r| applies(*svc, *a, r)));
            if used {
                continue;
            }
            let s = self.cat.service_at(*svc);
            let loc = stmt.item_loc("Action", e.index);
            if actions.iter().all(|a| s.action_resources(*a).is_empty()) {
                self.emit(
                    &NO_RESOURCE_LEVEL_PERMISSIONS,
                    &loc,
                    format!(
                        "{} {} has no resource-level permissions: IAM grants it only with \
                         \"Resource\": \"*\", so this statement does not grant it; move it to \
                         a statement with \"Resource\": \"*\"",
                        loc.name(),
                        quote(e.text)
                    ),
                );
            } else if !all_dead {
                let expected = self.expected_types(std::slice::from_ref(e), None);
                self.emit(
                    &ACTION_RESOURCE_MISMATCH,
                    &loc,
                    format!(
                        "{} {} acts on {expected}, and no Resource of the statement is one: \
                         the statement does not grant it; add such an ARN or move the action",
                        loc.name(),
                        quote(e.text)
                    ),
                );
            }
        }
    }

    /// The resource types the entries act on, as `name (template)`, at most four; only
    /// those whose ARN service is `service` when given.
    fn expected_types(&self, entries: &[Entry<'_>], service: Option<&str>) -> String {
        let mut seen: Vec<String> = Vec::new();
        for e in entries {
            let Resolved::Actions { svc, actions } = &e.resolved else {
                continue;
            };
            let s = self.cat.service_at(*svc);
            for a in actions {
                for t in s.action_resources(*a) {
                    let rt = &s.resource_types()[t.index as usize];
                    if service.is_some_and(|x| !rt.template().service_name.eq_ignore_ascii_case(x))
                    {
                        continue;
                    }
                    let text = format!("{} ({})", rt.name(), rt.arn());
                    if !seen.contains(&text) {
                        seen.push(text);
                    }
                }
            }
        }
        let more = seen.len() > 4;
        seen.truncate(4);
        let mut out = seen.join(", ");
        if more {
            out.push_str(", ...");
        }
        if out.is_empty() {
            out.push_str("no resource type");
        }
        out
    }

    /// arn-unknown-service and arn-malformed; whether the ARN fits some resource type.
    fn arn(&mut self, _stmt: &Stmt<'_>, loc: &Loc, text: &str, arn: &PolicyArn) -> bool {
        if !arn.has_literal_service() {
            return true;
        }
        let types = self.cat.resource_types_of_arn_service(&arn.service);
        if types.is_empty() {
            self.emit(
                &ARN_UNKNOWN_SERVICE,
                loc,
                format!(
                    "{} {}: no resource type of the catalogue has ARNs of service \"{}\"; \
                     check the service part of the ARN",
                    loc.name(),
                    quote(text),
                    arn.service
                ),
            );
            return false;
        }
        let template =
            |&(s, t): &(u16, u16)| &self.cat.service_at(s as usize).resource_types()[t as usize];
        if types.iter().any(|p| arn.could_be(template(p).template())) {
            return true;
        }
        let near: Vec<_> = types
            .iter()
            .map(template)
            .filter(|t| arn.could_be_but_for_location(t.template()))
            .collect();
        let why = if near.is_empty() {
            let mut examples: Vec<&str> = types.iter().map(|p| template(p).arn()).collect();
            examples.dedup();
            let more = examples.len() > 4;
            examples.truncate(4);
            format!(
                "matches no {} resource type (such as {}{})",
                arn.service,
                examples.join(", "),
                if more { ", ..." } else { "" }
            )
        } else {
            let t = near[0];
            if near.iter().all(|t| !t.template().has_region) && !arn.region_can_be_empty() {
                format!(
                    "has region \"{}\", but {} ARNs have none ({}): leave the region empty",
                    arn.region,
                    t.name(),
                    t.arn()
                )
            } else if near.iter().all(|t| t.template().has_region) && !arn.region_can_be_set() {
                format!(
                    "has no region, but {} ARNs need one ({})",
                    t.name(),
                    t.arn()
                )
            } else if near.iter().all(|t| !t.template().has_account) && !arn.account_can_be_empty()
            {
                format!(
                    "has account \"{}\", but {} ARNs have none ({}): leave the account empty",
                    arn.account,
                    t.name(),
                    t.arn()
                )
            } else if near.iter().all(|t| t.template().has_account) && !arn.account_can_be_set() {
                format!(
                    "is missing the account: {} ARNs need the 12-digit account ID ({})",
                    t.name(),
                    t.arn()
                )
            } else {
                format!("does not fit {} ARNs ({})", t.name(), t.arn())
            }
        };
        self.emit(
            &ARN_MALFORMED,
            loc,
            format!("{} {} {why}", loc.name(), quote(text)),
        );
        false
    }

    fn resolve_key(&self, key: &str, services: &[usize]) -> KeyInfo<'c> {
        let cat = self.cat;
        if let Some(k) = cat.global_condition_key(key) {
            return KeyInfo::Global(k);
        }
        let prefix = key.split_once(':').map_or(key, |(p, _)| p);
        let own = cat.service_index(prefix);
        if let Some(k) = own.and_then(|s| cat.service_at(s).condition_key(key)) {
            return KeyInfo::Service(k);
        }
        for s in services {
            if let Some(k) = cat.service_at(*s).condition_key(key) {
                return KeyInfo::Service(k);
            }
        }
        if prefix.eq_ignore_ascii_case("aws") {
            if let Some(k) = cat.services().iter().find_map(|s| s.condition_key(key)) {
                return KeyInfo::Foreign(k);
            }
        }
        // Web-identity providers are named by host (token.actions.githubusercontent.com,
        // oidc.eks.REGION.amazonaws.com/id/ID); SAML keys are listed under sts.
        if prefix.contains('.') || prefix.eq_ignore_ascii_case("saml") {
            return KeyInfo::Provider;
        }
        let mut candidates: Vec<&str> = Vec::new();
        match own {
            Some(s) => candidates.extend(
                cat.service_at(s)
                    .condition_keys()
                    .iter()
                    .map(ConditionKey::name),
            ),
            None => {
                candidates.extend(cat.global_condition_keys().iter().map(ConditionKey::name));
                for s in services {
                    candidates.extend(
                        cat.service_at(*s)
                            .condition_keys()
                            .iter()
                            .map(ConditionKey::name),
                    );
                }
            }
        }
        KeyInfo::Unknown(crate::catalog::closest(key, candidates.into_iter()))
    }

    fn conditions(&mut self, stmt: &Stmt<'_>, entries: &[Entry<'_>]) {
        if stmt.clauses.is_empty() {
            return;
        }
        let mut services: Vec<usize> = entries
            .iter()
            .filter_map(|e| match &e.resolved {
                Resolved::Actions { svc, .. }
                | Resolved::UnknownAction { svc }
                | Resolved::NoMatch { svc } => Some(*svc),
                _ => None,
            })
            .collect();
        services.sort_unstable();
        services.dedup();
        // Applicability is judged only where every action is known and listed.
        let judge_applicability = stmt.action.as_ref().is_some_and(|l| !l.not)
            && !entries.is_empty()
            && entries
                .iter()
                .all(|e| matches!(e.resolved, Resolved::Actions { .. }));
        for clause in &stmt.clauses {
            if clause.op.is_none() {
                continue;
            }
            let loc = stmt.clause_loc(clause);
            let info = self.resolve_key(clause.key, &services);
            let key = match info {
                KeyInfo::Unknown(hint) => {
                    let hint = hint
                        .map(|h| format!(" (did you mean \"{h}\"?)"))
                        .unwrap_or_default();
                    self.emit(
                        &UNKNOWN_CONDITION_KEY,
                        &loc,
                        format!(
                            "{}: \"{}\" is not a global condition key nor a key of its \
                             service{hint}; IAM accepts it, but no request carries it, so the \
                             condition never matches as intended; use a documented key",
                            stmt.loc().key("Condition").key(clause.operator).name(),
                            clause.key
                        ),
                    );
                    continue;
                }
                KeyInfo::Provider => continue,
                KeyInfo::Global(k) => k,
                KeyInfo::Service(k) | KeyInfo::Foreign(k) => {
                    if judge_applicability {
                        self.applicability(stmt, clause, &loc, entries);
                    }
                    k
                }
            };
            self.operator_fit(stmt, clause, &loc, key.key_type());
        }
    }

    /// condition-key-not-applicable.
    fn applicability(
        &mut self,
        stmt: &Stmt<'_>,
        clause: &Clause<'_>,
        loc: &Loc,
        entries: &[Entry<'_>],
    ) {
        let mut total = 0usize;
        let mut unsupported: Vec<String> = Vec::new();
        for e in entries {
            let Resolved::Actions { svc, actions } = &e.resolved else {
                continue;
            };
            let s = self.cat.service_at(*svc);
            for a in actions {
                let name = s.actions()[*a as usize].name();
                // Session tags, source identity and context are authorized within the
                // AssumeRole* request, which carries its keys (sts:ExternalId, ...).
                if self.kind == PolicyKind::Trust
                    && s.prefix() == "sts"
                    && TRUST_COMPANIONS.contains(&name)
                {
                    continue;
                }
                total += 1;
                if !s.action_supports_key(*a, clause.key) {
                    unsupported.push(format!(
                        "{}:{}",
                        s.prefix(),
                        s.actions()[*a as usize].name()
                    ));
                }
            }
        }
        if unsupported.is_empty() || total == 0 {
            return;
        }
        let effect = match (stmt.effect, clause.op.map(|o| o.base)) {
            (_, Some("Null")) => "Null then tests a key that is never there".to_owned(),
            (_, _) if clause.op.is_some_and(|o| o.if_exists) => {
                "…IfExists then always passes, so the condition has no effect".to_owned()
            }
            (Some(Effect::Deny), _) => "the Deny then never applies".to_owned(),
            _ => "the statement then grants nothing".to_owned(),
        };
        let name = stmt
            .loc()
            .key("Condition")
            .key(clause.operator)
            .name()
            .to_owned();
        if unsupported.len() == total {
            self.emit(
                &CONDITION_KEY_NOT_APPLICABLE,
                loc,
                format!(
                    "{name}: \"{}\" is not a condition key of any of the statement's actions, \
                     so requests for them never carry it ({effect}); use a key the actions \
                     document",
                    clause.key
                ),
            );
        } else if entries.iter().all(|e| !crate::glob::has_wildcard(e.text)) {
            // Patterns mix actions with and without the key by design; exact lists do not.
            let more = unsupported.len() > 5;
            unsupported.truncate(5);
            self.emit(
                &CONDITION_KEY_NOT_APPLICABLE,
                loc,
                format!(
                    "{name}: \"{}\" is not a condition key of {}{} (for those, {effect}); \
                     move them to a statement of their own",
                    clause.key,
                    unsupported.join(", "),
                    if more { ", ..." } else { "" }
                ),
            );
        }
    }

    /// Operator versus key type, values versus operator, set operators.
    fn operator_fit(&mut self, stmt: &Stmt<'_>, clause: &Clause<'_>, loc: &Loc, t: KeyType) {
        let Some(op) = clause.op else { return };
        let name = stmt
            .loc()
            .key("Condition")
            .key(clause.operator)
            .name()
            .to_owned();
        let family = family(op.base);
        match fit(family, t.value, clause.key) {
            Fit::Ok => {}
            Fit::Loose => self.emit(
                &CONDITION_TYPE_LOOSE,
                loc,
                format!(
                    "{name}: \"{}\" is of type {t}, which {} compares as text; use {} \
                     operators",
                    clause.key,
                    op.base,
                    family_for(t.value)
                ),
            ),
            Fit::Wrong => self.emit(
                &CONDITION_TYPE_MISMATCH,
                loc,
                format!(
                    "{name}: {} cannot test \"{}\", which is of type {t}: the condition never \
                     matches; use {} operators",
                    op.base,
                    clause.key,
                    family_for(t.value)
                ),
            ),
        }
        let bad: Vec<&String> = clause
            .values
            .iter()
            .filter(|v| !v.contains("${") && !value_fits(family, v))
            .collect();
        if let Some(v) = bad.first() {
            self.emit(
                &CONDITION_VALUE_INVALID,
                loc,
                format!(
                    "{name}: value {} is not {} for {}, so it never matches; write such a \
                     value",
                    quote(v),
                    value_kind(family),
                    op.base
                ),
            );
        }
        match op.qualifier {
            Some(q) if !t.multivalued => {
                let q = match q {
                    SetQualifier::ForAnyValue => "ForAnyValue:",
                    SetQualifier::ForAllValues => "ForAllValues:",
                };
                self.emit(
                    &SET_OPERATOR_SINGLE_VALUED,
                    loc,
                    format!(
                        "{name}: \"{}\" is single-valued, but {q} is for multivalued keys; use \
                         {} without it",
                        clause.key,
                        clause.operator.trim_start_matches(q)
                    ),
                );
            }
            None if t.multivalued && op.base != "Null" => self.emit(
                &MULTIVALUED_KEY_WITHOUT_SET_OPERATOR,
                loc,
                format!(
                    "{name}: \"{}\" is multivalued ({t}); say which values must match with \
                     ForAnyValue:{} or ForAllValues:{}",
                    clause.key, clause.operator, clause.operator
                ),
            ),
            _ => {}
        }
        if op.qualifier == Some(SetQualifier::ForAllValues)
            && stmt.effect == Some(Effect::Allow)
            && !requires_key(stmt, clause.key)
        {
            self.emit(
                &FOR_ALL_VALUES_ALLOW,
                loc,
                format!(
                    "{name}: ForAllValues: is true when the request has no \"{}\" at all, so \
                     this Allow also grants requests without it; add \"Null\": {{\"{}\": \
                     \"false\"}}",
                    clause.key, clause.key
                ),
            );
        }
    }

    fn security(&mut self, stmt: &Stmt<'_>, entries: &[Entry<'_>]) {
        if stmt.effect != Some(Effect::Allow) {
            return;
        }
        if let Some(p) = &stmt.principal {
            if p.not {
                let loc = stmt.loc().key(p.key);
                self.emit(
                    &ALLOW_NOT_PRINCIPAL,
                    &loc,
                    format!(
                        "{}: Allow with NotPrincipal grants every principal not listed, \
                         including anonymous users and other accounts; list the principals \
                         allowed in Principal instead",
                        loc.name()
                    ),
                );
            } else if self.kind.has_principals() && !narrowed(stmt) {
                for item in p.items.iter().filter(|i| i.is_everyone()) {
                    let loc = stmt.principal_loc(item);
                    let what = match self.kind {
                        PolicyKind::Trust => "anyone can assume this role",
                        PolicyKind::KeyPolicy => "anyone can use this key as allowed",
                        _ => "the statement is public",
                    };
                    self.emit(
                        &WILDCARD_PRINCIPAL,
                        &loc,
                        format!(
                            "{}: principal \"*\" without a narrowing condition: {what}; name \
                             the principals, or add a condition such as aws:SourceAccount, \
                             aws:SourceArn or aws:PrincipalOrgID",
                            loc.name()
                        ),
                    );
                }
            }
            if self.kind == PolicyKind::Trust && !p.not {
                self.web_identity(stmt);
            }
        }
        let Some(actions) = &stmt.action else { return };
        if actions.not {
            let broad = stmt.has_star_resource()
                || stmt.resource.as_ref().is_some_and(|r| r.not)
                || !self.kind.has_resources();
            if broad {
                let loc = stmt.loc().key("NotAction");
                self.emit(
                    &ALLOW_NOT_ACTION,
                    &loc,
                    format!(
                        "{}: Allow with NotAction on every resource grants every other action \
                         of every service, including ones AWS adds later; list the actions \
                         allowed in Action instead",
                        loc.name()
                    ),
                );
            }
            return;
        }
        let passrole = self
            .cat
            .service_index("iam")
            .and_then(|s| Some((s, self.cat.service_at(s).action_index("PassRole")?)));
        let Some((iam, pass)) = passrole else { return };
        let Some(res) = stmt.resource.as_ref().filter(|r| !r.not) else {
            return;
        };
        let every_role = res.items.iter().find(|(_, r)| {
            *r == "*"
                || PolicyArn::parse(r).is_some_and(|a| {
                    (a.service == "iam" || !a.has_literal_service()) && a.resource_covers("role/*")
                })
        });
        let Some((_, every_role)) = every_role else {
            return;
        };
        for e in entries {
            let grants = match &e.resolved {
                Resolved::All => true,
                Resolved::Actions { svc, actions } => *svc == iam && actions.contains(&pass),
                _ => false,
            };
            if grants {
                let loc = stmt.item_loc("Action", e.index);
                let limited = stmt
                    .clauses
                    .iter()
                    .any(|c| c.key.eq_ignore_ascii_case("iam:PassedToService"));
                self.emit(
                    &PASS_ROLE_WILDCARD,
                    &loc,
                    format!(
                        "{} {} allows iam:PassRole on {}: the holder can hand any role, \
                         administrator roles included, to {}; list the roles it may pass \
                         (arn:aws:iam::ACCOUNT:role/NAME){}",
                        loc.name(),
                        quote(e.text),
                        quote(every_role),
                        if limited {
                            "the services iam:PassedToService names"
                        } else {
                            "any service"
                        },
                        if limited {
                            ""
                        } else {
                            " and limit iam:PassedToService"
                        }
                    ),
                );
            }
        }
    }

    /// oidc-trust-without-subject.
    fn web_identity(&mut self, stmt: &Stmt<'_>) {
        let Some(p) = &stmt.principal else { return };
        for item in p.items.iter().filter(|i| i.kind == "Federated") {
            let required = if let Some((_, host)) = item.id.split_once(":oidc-provider/") {
                format!("{host}:sub")
            } else if item
                .id
                .eq_ignore_ascii_case("cognito-identity.amazonaws.com")
            {
                "cognito-identity.amazonaws.com:aud".to_owned()
            } else {
                continue;
            };
            let restricted = stmt.clauses.iter().any(|c| {
                c.key.eq_ignore_ascii_case(&required)
                    && c.op
                        .is_some_and(|o| POSITIVE_BASES.contains(&o.base) && !o.if_exists)
                    && !c.values.iter().any(|v| v == "*")
            });
            if !restricted {
                let loc = stmt.principal_loc(item);
                self.emit(
                    &OIDC_TRUST_WITHOUT_SUBJECT,
                    &loc,
                    format!(
                        "{}: web-identity principal {} without a condition on \"{required}\": \
                         any token the provider issues (any repository, cluster or app) can \
                         assume this role; add StringEquals or StringLike on \"{required}\"",
                        loc.name(),
                        quote(item.id)
                    ),
                );
            }
        }
    }

    /// redundant-action and redundant-resource.
    fn redundant_entries(&mut self, stmt: &Stmt<'_>, action_key: &str, entries: &[Entry<'_>]) {
        let covers: Vec<ActionCover> = entries
            .iter()
            .map(|e| {
                let mut c = ActionCover::of(self.cat, e.text, &e.resolved);
                c.normalize();
                c
            })
            .collect();
        for (j, ej) in entries.iter().enumerate() {
            let by = entries.iter().enumerate().find(|(i, _)| {
                *i != j
                    && covers[*i].covers(&covers[j])
                    && (*i < j || !covers[j].covers(&covers[*i]))
            });
            if let Some((_, ei)) = by {
                let loc = stmt.item_loc(action_key, ej.index);
                let other = stmt.item_loc(action_key, ei.index);
                self.emit(
                    &REDUNDANT_ACTION,
                    &loc,
                    format!(
                        "{} {} is already covered by {} {}: remove it",
                        loc.name(),
                        quote(ej.text),
                        other.name(),
                        quote(ei.text)
                    ),
                );
            }
        }
        let Some(res) = &stmt.resource else { return };
        let pats: Vec<Pattern> = res.items.iter().map(|(_, r)| Pattern::policy(r)).collect();
        for (j, (jdx, jr)) in res.items.iter().enumerate() {
            let by = res.items.iter().enumerate().find(|(i, _)| {
                *i != j && pats[*i].covers(&pats[j]) && (*i < j || !pats[j].covers(&pats[*i]))
            });
            if let Some((_, (idx, r))) = by {
                let loc = stmt.item_loc(res.key, *jdx);
                let other = stmt.item_loc(res.key, *idx);
                self.emit(
                    &REDUNDANT_RESOURCE,
                    &loc,
                    format!(
                        "{} {} is already covered by {} {}: remove it",
                        loc.name(),
                        quote(jr),
                        other.name(),
                        quote(r)
                    ),
                );
            }
        }
    }

    /// redundant-statement and shadowed-by-deny.
    fn across(&mut self, stmts: &[Stmt<'_>], facts: &[Facts]) {
        let conds: Vec<_> = stmts.iter().map(Stmt::conditions).collect();
        // a dominates b: same effect, and a grants (or denies) all b does, or more.
        let dominates = |a: usize, b: usize| {
            stmts[a].effect.is_some()
                && stmts[a].effect == stmts[b].effect
                && covers(&facts[a], &facts[b])
                && conds[b].implies(&conds[a])
        };
        for (b, sb) in stmts.iter().enumerate() {
            let Some(eb) = sb.effect else { continue };
            // Of two equal statements, only the later one is reported.
            let redundant = (0..stmts.len())
                .find(|&a| a != b && dominates(a, b) && (a < b || !dominates(b, a)));
            if let Some(a) = redundant {
                let verb = if eb == Effect::Allow {
                    "allows"
                } else {
                    "denies"
                };
                self.emit(
                    &REDUNDANT_STATEMENT,
                    &sb.loc(),
                    format!(
                        "{} is redundant: {} already {verb} all of it (the same or more \
                         actions and resources, the same or fewer conditions); remove it or \
                         merge the two",
                        label(sb),
                        label(&stmts[a])
                    ),
                );
                continue;
            }
            if eb != Effect::Allow {
                continue;
            }
            let shadow = (0..stmts.len()).find(|&a| {
                stmts[a].effect == Some(Effect::Deny)
                    && conds[a].is_empty()
                    && covers(&facts[a], &facts[b])
            });
            if let Some(a) = shadow {
                self.emit(
                    &SHADOWED_BY_DENY,
                    &sb.loc(),
                    format!(
                        "{} grants nothing: {} denies all of it without a condition; remove \
                         the Allow or narrow the Deny",
                        label(sb),
                        label(&stmts[a])
                    ),
                );
            }
        }
    }
}

/// Whether the statement with facts `a` covers the one with `b` in actions, resources and
/// principals (conditions aside). Negated elements never compare.
fn covers(a: &Facts, b: &Facts) -> bool {
    let actions = || matches!((&a.actions, &b.actions), (Some(x), Some(y)) if x.covers(y));
    let resources = || match (&a.resources, &b.resources) {
        (Some(x), Some(y)) => y.iter().all(|p| x.iter().any(|q| q.covers(p))),
        _ => false,
    };
    let principals = || match (&a.principals, &b.principals) {
        (Some(x), Some(y)) => y.iter().all(|pb| {
            x.iter()
                .any(|pa| pa == pb || (pa.0 == "AWS" && pa.1 == "*"))
        }),
        _ => false,
    };
    actions() && resources() && principals()
}

/// `Statement[2]` or, with a Sid, `Statement[2] ("ReadData")`.
fn label(stmt: &Stmt<'_>) -> String {
    let loc = stmt.loc();
    match stmt.sid {
        Some(sid) if !sid.is_empty() => format!("{} ({})", loc.name(), quote(sid)),
        _ => loc.name().to_owned(),
    }
}

/// Whether the statement's conditions narrow "everyone" (see [`NARROWING_KEYS`]).
fn narrowed(stmt: &Stmt<'_>) -> bool {
    stmt.clauses.iter().any(|c| {
        let key = c.key.to_ascii_lowercase();
        NARROWING_KEYS.contains(&key.as_str())
            && c.op
                .is_some_and(|o| POSITIVE_BASES.contains(&o.base) && !o.if_exists)
            && !c.values.is_empty()
            && !c.values.iter().any(|v| v == "*")
    })
}

/// Whether the statement requires `key` to be present (`"Null": {key: "false"}`).
fn requires_key(stmt: &Stmt<'_>, key: &str) -> bool {
    stmt.clauses.iter().any(|c| {
        c.key.eq_ignore_ascii_case(key)
            && c.op.is_some_and(|o| o.base == "Null")
            && c.values.iter().all(|v| v.eq_ignore_ascii_case("false"))
    })
}

/// Operator families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    String,
    Arn,
    Numeric,
    Date,
    Bool,
    Ip,
    Binary,
    Null,
}

fn family(base: &str) -> Family {
    if base.starts_with("String") {
        Family::String
    } else if base.starts_with("Arn") {
        Family::Arn
    } else if base.starts_with("Numeric") {
        Family::Numeric
    } else if base.starts_with("Date") {
        Family::Date
    } else if base == "Bool" {
        Family::Bool
    } else if base.ends_with("IpAddress") {
        Family::Ip
    } else if base == "BinaryEquals" {
        Family::Binary
    } else {
        Family::Null
    }
}

/// The operator family meant for a value type, for messages.
fn family_for(t: ValueType) -> &'static str {
    match t {
        ValueType::String => "String",
        ValueType::Arn => "Arn (or String)",
        ValueType::Bool => "Bool",
        ValueType::Numeric => "Numeric",
        ValueType::Date => "Date",
        ValueType::IpAddress => "IpAddress/NotIpAddress",
        ValueType::Binary => "BinaryEquals",
    }
}

enum Fit {
    Ok,
    /// Works by comparing text, but a typed operator is meant.
    Loose,
    /// Cannot match as intended.
    Wrong,
}

fn fit(family: Family, t: ValueType, key: &str) -> Fit {
    use Family as F;
    use ValueType as V;
    match (family, t) {
        (F::Null, _) => Fit::Ok,
        (F::String, V::String | V::Arn) => Fit::Ok,
        (F::String, _) => Fit::Loose,
        (F::Arn, V::Arn) => Fit::Ok,
        (F::Arn, V::String) => Fit::Loose,
        (F::Numeric, V::Numeric) => Fit::Ok,
        // aws:EpochTime is documented as a date that numeric operators may test.
        (F::Numeric, V::Date) if key.eq_ignore_ascii_case("aws:EpochTime") => Fit::Ok,
        (F::Date, V::Date) => Fit::Ok,
        (F::Bool, V::Bool) => Fit::Ok,
        (F::Ip, V::IpAddress) => Fit::Ok,
        (F::Binary, V::Binary) => Fit::Ok,
        (F::Binary, V::String) => Fit::Loose,
        _ => Fit::Wrong,
    }
}

fn value_kind(family: Family) -> &'static str {
    match family {
        Family::Bool | Family::Null => "\"true\" or \"false\"",
        Family::Numeric => "a number",
        Family::Date => "a date (ISO 8601, e.g. 2026-01-31T00:00:00Z, or epoch seconds)",
        Family::Ip => "an IP address or CIDR range",
        _ => "valid",
    }
}

fn value_fits(family: Family, v: &str) -> bool {
    match family {
        Family::Bool | Family::Null => {
            v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
        }
        Family::Numeric => v.parse::<f64>().is_ok(),
        Family::Date => is_date(v),
        Family::Ip => is_cidr(v),
        _ => true,
    }
}

/// ISO 8601 date or date-time (as IAM accepts them), or epoch seconds.
fn is_date(v: &str) -> bool {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let b = v.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let date = b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10);
    date && (b.len() == 10 || matches!(b[10], b'T' | b't' | b' '))
}

fn is_cidr(v: &str) -> bool {
    let (addr, prefix) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|n| n <= max))
}

/// A string as a JSON literal, shortened for messages.
fn quote(s: &str) -> String {
    const MAX: usize = 100;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", Value::from(&s[..cut])),
        None => Value::from(s).to_string(),
    }
}

/// Ids of every check [`lint`] can report for a document of `kind` (all but `privesc-*`).
pub fn document_checks() -> impl Iterator<Item = &'static Check> {
    CHECKS.iter().filter(|c| !c.id.starts_with("privesc-"))
}

/// The distinct check ids in `findings`, sorted.
pub fn checks_found(findings: &[Finding]) -> BTreeSet<&'static str> {
    findings.iter().map(|f| f.check).collect()
}
