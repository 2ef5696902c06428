//! Role: the pure diff between the manifest and what AWS has.
//!
//! The manifest owns a role's permissions wholly: an inline policy, an attached policy or
//! a permissions boundary it does not list is drift and is removed. Settings it leaves out
//! (description, maximum session duration) are not drift. IAM cannot move a role to
//! another path, so a path change is a plan error.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::RoleSpec;
use crate::kinds::common::Tags;
use crate::kinds::core::{
    has_ownership_tag, Diff, HeldAs, HeldDocument, Holdings, KindPlan, Place, PlanCx, PlanError,
};
use crate::kinds::iam::{document_change, tag_changes, tag_fields};
use crate::kinds::{FieldChange, Kind, ResourceId};

/// IAM's maximum session duration when none was set.
pub const DEFAULT_MAX_SESSION: u32 = 3600;

/// The Role kind.
pub struct Role;

/// What AWS has for one role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleObserved {
    /// The role's ARN.
    pub arn: String,
    /// IAM path.
    pub path: String,
    /// Trust policy, decoded.
    pub assume_role_policy: Value,
    /// Description (none when never set).
    pub description: Option<String>,
    /// Maximum session duration in seconds (none when the API did not say).
    pub max_session_duration: Option<u32>,
    /// Inline policies: name → decoded document.
    pub inline_policies: BTreeMap<String, Value>,
    /// ARNs of the attached managed policies.
    pub managed_policies: BTreeSet<String>,
    /// ARN of the permissions boundary.
    pub permissions_boundary: Option<String>,
    /// Names of the instance profiles holding the role.
    pub instance_profiles: BTreeSet<String>,
    /// Tags.
    pub tags: Tags,
}

/// What CreateRole is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRole {
    /// IAM path.
    pub path: String,
    /// Trust policy.
    pub assume_role_policy: Value,
    /// Description.
    pub description: Option<String>,
    /// Maximum session duration.
    pub max_session_duration: Option<u32>,
    /// Permissions boundary ARN.
    pub permissions_boundary: Option<String>,
    /// Tags, ownership included.
    pub tags: Tags,
}

/// One step on a role. Every step is idempotent; the role is named by the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// CreateRole with everything CreateRole takes (the boundary too, so the role never
    /// exists without it). When the role already exists (an earlier answer was lost),
    /// converge it instead.
    Create(NewRole),
    /// UpdateAssumeRolePolicy.
    UpdateTrust {
        /// New trust policy.
        document: Value,
    },
    /// PutRolePolicy (creates or replaces).
    PutInline {
        /// Inline policy name.
        policy_name: String,
        /// Document.
        document: Value,
    },
    /// DeleteRolePolicy.
    DeleteInline {
        /// Inline policy name.
        policy_name: String,
    },
    /// AttachRolePolicy.
    Attach {
        /// Policy ARN.
        arn: String,
    },
    /// DetachRolePolicy.
    Detach {
        /// Policy ARN.
        arn: String,
    },
    /// PutRolePermissionsBoundary.
    PutBoundary {
        /// Policy ARN.
        arn: String,
    },
    /// DeleteRolePermissionsBoundary.
    DeleteBoundary,
    /// UpdateRole. Both values are always sent, the unchanged one as observed, because
    /// an omitted value may be reset.
    UpdateRole {
        /// Description.
        description: Option<String>,
        /// Maximum session duration.
        max_session_duration: Option<u32>,
    },
    /// TagRole.
    Tag {
        /// Tags to set.
        tags: Tags,
    },
    /// UntagRole.
    Untag {
        /// Keys to remove.
        keys: Vec<String>,
    },
    /// Create the instance profile named like the role (tagged) unless it exists, and put
    /// the role in it.
    CreateInstanceProfile {
        /// IAM path (the role's).
        path: String,
        /// Tags, ownership included.
        tags: Tags,
    },
    /// Take the role out of the instance profile named like it, and delete that profile
    /// when it carries the ownership tag.
    DeleteInstanceProfile,
    /// Take the role out of any instance profile left, then DeleteRole.
    Delete,
}

/// A role's documents: the trust policy, the inline policies, what it attaches and its
/// boundary (the same for a spec and for what IAM has).
fn role_holdings<'a>(
    trust: Option<&'a Value>,
    inline: &'a BTreeMap<String, Value>,
    attached: impl Iterator<Item = &'a str>,
    boundary: Option<&'a str>,
) -> Holdings<'a> {
    let mut documents: Vec<HeldDocument> = trust
        .into_iter()
        .map(|d| HeldDocument {
            label: "trust policy".into(),
            pointer: "/spec/assumeRolePolicy".into(),
            held_as: HeldAs::Trust,
            policy_kind: mlspace_policy::PolicyKind::Trust,
            document: d,
        })
        .collect();
    documents.extend(inline.iter().map(|(name, d)| HeldDocument {
        label: format!("inline policy {name}"),
        pointer: format!(
            "/spec/inlinePolicies/{}",
            crate::syntax::yaml::escape_segment(name)
        ),
        held_as: HeldAs::Identity,
        policy_kind: mlspace_policy::PolicyKind::Identity,
        document: d,
    }));
    Holdings {
        documents,
        attached: attached
            .map(|a| (a, "/spec/managedPolicies".to_string()))
            .collect(),
        boundary: boundary.map(|b| (b, "/spec/permissionsBoundary".to_string())),
    }
}

impl KindPlan for Role {
    type Observed = RoleObserved;
    type Op = Op;

    const IGNORABLE_FIELDS: &'static [&'static str] = &[
        "assumeRolePolicy",
        "managedPolicies",
        "inlinePolicies",
        "permissionsBoundary",
        "description",
        "maxSessionDuration",
        "tags",
    ];

    fn keep_observed(spec: &mut RoleSpec, o: &RoleObserved, field: &str) {
        match field {
            "assumeRolePolicy" => spec.assume_role_policy = Some(o.assume_role_policy.clone()),
            "managedPolicies" => {
                spec.managed_policies = o.managed_policies.iter().cloned().collect()
            }
            "inlinePolicies" => spec.inline_policies = o.inline_policies.clone(),
            "permissionsBoundary" => spec.permissions_boundary = o.permissions_boundary.clone(),
            "description" => spec.description = o.description.clone(),
            "maxSessionDuration" => spec.max_session_duration = o.max_session_duration,
            "tags" => spec.tags = crate::kinds::common::settable_tags(&o.tags),
            _ => {}
        }
    }

    fn stand_in(name: &str, attribute: &str, at: Place) -> Option<String> {
        match attribute {
            "arn" => Some(format!(
                "arn:{}:iam::{}:role/{name}",
                at.partition, at.account
            )),
            "name" => Some(name.to_string()),
            _ => None,
        }
    }

    fn arn(name: &str, spec: &RoleSpec, at: Place) -> Option<String> {
        Some(format!(
            "arn:{}:iam::{}:role{}{name}",
            at.partition, at.account, spec.path
        ))
    }

    fn observed_arn(o: &RoleObserved) -> Option<String> {
        Some(o.arn.clone())
    }

    /// Events name a role by name, and its instance profile (same name) by name.
    fn event_objects(name: &str, spec: &RoleSpec) -> Vec<crate::kinds::AwsObject> {
        let mut v = vec![crate::kinds::AwsObject::IamRole(name.to_string())];
        if spec.instance_profile {
            v.push(crate::kinds::AwsObject::IamInstanceProfile(
                name.to_string(),
            ));
        }
        v
    }

    fn holdings(spec: &RoleSpec) -> Holdings<'_> {
        role_holdings(
            spec.assume_role_policy.as_ref(),
            &spec.inline_policies,
            spec.managed_policies.iter().map(String::as_str),
            spec.permissions_boundary.as_deref(),
        )
    }

    fn observed_holdings(o: &RoleObserved) -> Holdings<'_> {
        role_holdings(
            Some(&o.assume_role_policy),
            &o.inline_policies,
            o.managed_policies.iter().map(String::as_str),
            o.permissions_boundary.as_deref(),
        )
    }

    fn depends_on(_: &str, spec: &RoleSpec, cx: &PlanCx) -> Vec<ResourceId> {
        let deps: BTreeSet<ResourceId> = spec
            .managed_policies
            .iter()
            .chain(spec.permissions_boundary.iter())
            .filter_map(|arn| cx.named_by_arn(Kind::ManagedPolicy, arn))
            .map(|n| (Kind::ManagedPolicy, n.to_string()))
            .collect();
        deps.into_iter().collect()
    }

    fn observed_tags(o: &RoleObserved) -> Option<&Tags> {
        Some(&o.tags)
    }

    fn is_owned(o: &RoleObserved) -> bool {
        has_ownership_tag(&o.tags)
    }

    fn create(_: &str, spec: &RoleSpec, cx: &PlanCx) -> Diff<Op> {
        let trust = spec.assume_role_policy.clone().unwrap_or(Value::Null);
        let mut fields = vec![FieldChange::new(
            "spec.assumeRolePolicy",
            None,
            Some(trust.clone()),
        )];
        if spec.path != "/" {
            fields.push(FieldChange::new("spec.path", None, Some(json!(spec.path))));
        }
        if let Some(d) = &spec.description {
            fields.push(FieldChange::new("spec.description", None, Some(json!(d))));
        }
        if let Some(s) = spec.max_session_duration {
            fields.push(FieldChange::new(
                "spec.maxSessionDuration",
                None,
                Some(json!(s)),
            ));
        }
        if let Some(b) = &spec.permissions_boundary {
            fields.push(FieldChange::new(
                "spec.permissionsBoundary",
                None,
                Some(json!(b)),
            ));
        }
        if !spec.managed_policies.is_empty() {
            fields.push(FieldChange::new(
                "spec.managedPolicies",
                None,
                Some(json!(spec.managed_policies)),
            ));
        }
        for (p, d) in &spec.inline_policies {
            fields.push(FieldChange::new(
                format!("spec.inlinePolicies.{p}"),
                None,
                Some(d.clone()),
            ));
        }
        if spec.instance_profile {
            fields.push(FieldChange::new(
                "spec.instanceProfile",
                None,
                Some(json!(true)),
            ));
        }
        fields.extend(tag_fields(&spec.tags));
        let tags = cx.desired_tags(&spec.tags);
        let mut ops = vec![Op::Create(NewRole {
            path: spec.path.clone(),
            assume_role_policy: trust,
            description: spec.description.clone(),
            max_session_duration: spec.max_session_duration,
            permissions_boundary: spec.permissions_boundary.clone(),
            tags: tags.clone(),
        })];
        ops.extend(spec.inline_policies.iter().map(|(p, d)| Op::PutInline {
            policy_name: p.clone(),
            document: d.clone(),
        }));
        ops.extend(
            spec.managed_policies
                .iter()
                .map(|arn| Op::Attach { arn: arn.clone() }),
        );
        if spec.instance_profile {
            ops.push(Op::CreateInstanceProfile {
                path: spec.path.clone(),
                tags,
            });
        }
        (fields, ops)
    }

    fn update(
        name: &str,
        spec: &RoleSpec,
        o: &RoleObserved,
        cx: &PlanCx,
    ) -> Result<Diff<Op>, Vec<PlanError>> {
        if spec.path != o.path {
            return Err(vec![PlanError::new(
                Kind::Role,
                name,
                "spec.path",
                format!(
                    "IAM cannot move a role from path `{}` to `{}`; delete and recreate it by hand",
                    o.path, spec.path
                ),
            )]);
        }
        let mut fields = Vec::new();
        let mut ops = Vec::new();

        // Steps narrow before they widen, so the role never holds more than the old or the
        // new manifest grants: a new boundary first, removals (detach, delete inline), the
        // trust policy, then additions (attach, put inline), and a boundary removal last.
        // The fields keep the manifest's order.
        let mut narrowing = Vec::new();
        let mut trust_ops = Vec::new();
        let mut widening = Vec::new();
        let mut last = Vec::new();
        if let Some(trust) = &spec.assume_role_policy {
            if let Some(f) = document_change("spec.assumeRolePolicy", trust, &o.assume_role_policy)
            {
                fields.push(f);
                trust_ops.push(Op::UpdateTrust {
                    document: trust.clone(),
                });
            }
        }

        // Detach before attaching: a role at its attachment quota has no room otherwise.
        let desired: BTreeSet<&String> = spec.managed_policies.iter().collect();
        // Attachments the Environment ignores (MLSpace attaches some at runtime) stay.
        let detach: Vec<&String> = o
            .managed_policies
            .iter()
            .filter(|a| !desired.contains(a) && !cx.ignored_arn(a))
            .collect();
        let attach: Vec<&String> = spec
            .managed_policies
            .iter()
            .filter(|a| !o.managed_policies.contains(*a))
            .collect();
        if !detach.is_empty() || !attach.is_empty() {
            fields.push(FieldChange::new(
                "spec.managedPolicies",
                Some(json!(detach)),
                Some(json!(attach)),
            ));
            narrowing.extend(detach.iter().map(|a| Op::Detach { arn: (*a).clone() }));
            widening.extend(attach.iter().map(|a| Op::Attach { arn: (*a).clone() }));
        }

        for (p, actual) in &o.inline_policies {
            if !spec.inline_policies.contains_key(p) && !cx.ignored(p, None) {
                fields.push(FieldChange::new(
                    format!("spec.inlinePolicies.{p}"),
                    Some(actual.clone()),
                    None,
                ));
                narrowing.push(Op::DeleteInline {
                    policy_name: p.clone(),
                });
            }
        }
        for (p, doc) in &spec.inline_policies {
            let field = format!("spec.inlinePolicies.{p}");
            let change = match o.inline_policies.get(p) {
                None => Some(FieldChange::new(field, None, Some(doc.clone()))),
                Some(actual) => document_change(&field, doc, actual),
            };
            if let Some(f) = change {
                fields.push(f);
                widening.push(Op::PutInline {
                    policy_name: p.clone(),
                    document: doc.clone(),
                });
            }
        }

        if spec.permissions_boundary != o.permissions_boundary {
            fields.push(FieldChange::new(
                "spec.permissionsBoundary",
                o.permissions_boundary.as_ref().map(|b| json!(b)),
                spec.permissions_boundary.as_ref().map(|b| json!(b)),
            ));
            match &spec.permissions_boundary {
                Some(arn) => ops.push(Op::PutBoundary { arn: arn.clone() }),
                None => last.push(Op::DeleteBoundary),
            }
        }
        ops.extend(narrowing);
        ops.extend(trust_ops);
        ops.extend(widening);

        let actual_description = o.description.as_deref().unwrap_or("");
        let description_differs = spec
            .description
            .as_deref()
            .is_some_and(|d| d != actual_description);
        if description_differs {
            fields.push(FieldChange::new(
                "spec.description",
                o.description.as_ref().map(|d| json!(d)),
                spec.description.as_ref().map(|d| json!(d)),
            ));
        }
        let actual_session = o.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION);
        let session_differs = spec
            .max_session_duration
            .is_some_and(|s| s != actual_session);
        if session_differs {
            fields.push(FieldChange::new(
                "spec.maxSessionDuration",
                Some(json!(actual_session)),
                spec.max_session_duration.map(|s| json!(s)),
            ));
        }
        if description_differs || session_differs {
            ops.push(Op::UpdateRole {
                description: spec.description.clone().or_else(|| o.description.clone()),
                max_session_duration: spec.max_session_duration.or(o.max_session_duration),
            });
        }
        ops.extend(last);

        let (tag_fields, set, remove) = {
            let want = cx.desired_tags(&spec.tags);
            let have = cx.managed_tags(&o.tags, &want);
            tag_changes(&want, &have)
        };
        fields.extend(tag_fields);
        if !set.is_empty() {
            ops.push(Op::Tag { tags: set });
        }
        if !remove.is_empty() {
            ops.push(Op::Untag { keys: remove });
        }

        // `instanceProfile: false` leaves an existing profile alone: EC2 instances may use it.
        if spec.instance_profile && !o.instance_profiles.contains(name) {
            fields.push(FieldChange::new(
                "spec.instanceProfile",
                Some(json!(false)),
                Some(json!(true)),
            ));
            ops.push(Op::CreateInstanceProfile {
                path: spec.path.clone(),
                tags: cx.desired_tags(&spec.tags),
            });
        }
        Ok((fields, ops))
    }

    fn release(_: &str, _: &RoleObserved) -> Vec<Op> {
        vec![Op::Untag {
            keys: vec![crate::kinds::common::OWNERSHIP_TAG.to_string()],
        }]
    }

    fn delete(name: &str, o: &RoleObserved) -> Vec<Op> {
        let mut ops = Vec::new();
        if o.instance_profiles.contains(name) {
            ops.push(Op::DeleteInstanceProfile);
        }
        ops.extend(
            o.managed_policies
                .iter()
                .map(|a| Op::Detach { arn: a.clone() }),
        );
        ops.extend(o.inline_policies.keys().map(|p| Op::DeleteInline {
            policy_name: p.clone(),
        }));
        if o.permissions_boundary.is_some() {
            ops.push(Op::DeleteBoundary);
        }
        ops.push(Op::Delete);
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::common::OWNERSHIP_TAG;

    const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/mlspace/boundary";
    const APP: &str = "arn:aws:iam::123456789012:policy/mlspace/app";
    const READONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

    fn cx() -> PlanCx {
        let mut cx = PlanCx {
            partition: "aws".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            ..PlanCx::default()
        };
        cx.declare(Kind::ManagedPolicy, "boundary", Some(BOUNDARY.into()));
        cx.declare(Kind::ManagedPolicy, "app", Some(APP.into()));
        cx
    }

    fn trust() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]})
    }

    fn inline() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"}]})
    }

    fn spec() -> RoleSpec {
        RoleSpec {
            assume_role_policy: Some(trust()),
            assume_role_policy_file: None,
            managed_policies: vec![APP.into(), READONLY.into()],
            inline_policies: [("s3".to_string(), inline())].into(),
            permissions_boundary: Some(BOUNDARY.into()),
            path: "/mlspace/".into(),
            description: Some("notebook role".into()),
            max_session_duration: Some(7200),
            instance_profile: true,
            tags: [("team".to_string(), "ml".to_string())].into(),
        }
    }

    /// What AWS holds after running the create steps.
    fn created(name: &str, spec: &RoleSpec) -> RoleObserved {
        let (_, ops) = Role::create(name, spec, &cx());
        let mut o = RoleObserved::default();
        for op in ops {
            match op {
                Op::Create(NewRole {
                    path,
                    assume_role_policy,
                    description,
                    max_session_duration,
                    permissions_boundary,
                    tags,
                }) => {
                    o = RoleObserved {
                        arn: format!("arn:aws:iam::123456789012:role{path}{name}"),
                        path,
                        assume_role_policy,
                        description,
                        max_session_duration,
                        permissions_boundary,
                        tags,
                        ..o
                    };
                    o.max_session_duration.get_or_insert(DEFAULT_MAX_SESSION);
                }
                Op::PutInline {
                    policy_name,
                    document,
                } => {
                    o.inline_policies.insert(policy_name, document);
                }
                Op::Attach { arn } => {
                    o.managed_policies.insert(arn);
                }
                Op::CreateInstanceProfile { .. } => {
                    o.instance_profiles.insert(name.to_string());
                }
                other => panic!("unexpected create step {other:?}"),
            }
        }
        o
    }

    #[test]
    fn depends_on_manifest_policies_only() {
        assert_eq!(
            Role::depends_on("r", &spec(), &cx()),
            vec![
                (Kind::ManagedPolicy, "app".to_string()),
                (Kind::ManagedPolicy, "boundary".to_string())
            ]
        );
    }

    #[test]
    fn create_has_every_step_and_field() {
        let (fields, ops) = Role::create("r", &spec(), &cx());
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "spec.assumeRolePolicy",
                "spec.path",
                "spec.description",
                "spec.maxSessionDuration",
                "spec.permissionsBoundary",
                "spec.managedPolicies",
                "spec.inlinePolicies.s3",
                "spec.instanceProfile",
                "spec.tags.team"
            ]
        );
        assert!(
            matches!(&ops[0], Op::Create(NewRole { permissions_boundary: Some(b), tags, .. }) if b == BOUNDARY && tags.contains_key(OWNERSHIP_TAG))
        );
        assert_eq!(ops.len(), 5);
        assert!(
            matches!(ops.last(), Some(Op::CreateInstanceProfile { tags, .. }) if tags.contains_key(OWNERSHIP_TAG))
        );
    }

    #[test]
    fn created_state_has_no_diff() {
        let s = spec();
        let o = created("r", &s);
        assert!(Role::is_owned(&o));
        assert_eq!(Role::update("r", &s, &o, &cx()).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn unset_settings_are_not_drift() {
        let mut s = spec();
        s.description = None;
        s.max_session_duration = None;
        let mut o = created("r", &spec());
        o.description = Some("set by hand".into());
        o.max_session_duration = Some(43200);
        assert_eq!(Role::update("r", &s, &o, &cx()).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn encoded_trust_policy_is_equal() {
        let s = spec();
        let mut o = created("r", &s);
        o.assume_role_policy = mlspace_policy::decode_iam_document(
            "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22sagemaker.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D",
        )
        .unwrap();
        assert_eq!(Role::update("r", &s, &o, &cx()).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn extra_inline_attached_boundary_and_tag_are_drift() {
        let mut s = spec();
        s.permissions_boundary = None;
        let mut o = created("r", &spec());
        o.inline_policies.insert("extra".into(), inline());
        o.managed_policies
            .insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
        o.tags.insert("extra".into(), "x".into());
        let (fields, ops) = Role::update("r", &s, &o, &cx()).unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "spec.managedPolicies",
                "spec.inlinePolicies.extra",
                "spec.permissionsBoundary",
                "spec.tags.extra"
            ]
        );
        assert_eq!(
            fields[0],
            FieldChange::new(
                "spec.managedPolicies",
                Some(json!(["arn:aws:iam::aws:policy/AdministratorAccess"])),
                Some(json!([]))
            )
        );
        assert_eq!(
            fields[2],
            FieldChange::new("spec.permissionsBoundary", Some(json!(BOUNDARY)), None)
        );
        assert_eq!(
            ops,
            vec![
                Op::Detach {
                    arn: "arn:aws:iam::aws:policy/AdministratorAccess".into()
                },
                Op::DeleteInline {
                    policy_name: "extra".into()
                },
                Op::DeleteBoundary,
                Op::Untag {
                    keys: vec!["extra".into()]
                },
            ]
        );
    }

    #[test]
    fn changed_documents_show_statements() {
        let s = spec();
        let mut o = created("r", &s);
        let widened = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole"}]});
        o.assume_role_policy = widened.clone();
        o.inline_policies.insert("s3".into(), json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}));
        let (fields, ops) = Role::update("r", &s, &o, &cx()).unwrap();
        assert_eq!(
            fields[0],
            FieldChange::new(
                "spec.assumeRolePolicy",
                Some(widened["Statement"].clone()),
                Some(trust()["Statement"].clone())
            )
        );
        assert_eq!(fields[1].field, "spec.inlinePolicies.s3");
        assert_eq!(
            fields[1].old,
            Some(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]))
        );
        assert_eq!(
            ops,
            vec![
                Op::UpdateTrust { document: trust() },
                Op::PutInline {
                    policy_name: "s3".into(),
                    document: inline()
                }
            ]
        );
    }

    #[test]
    fn description_and_session_update_together() {
        let mut s = spec();
        s.description = None;
        let mut o = created("r", &spec());
        o.description = Some("kept".into());
        o.max_session_duration = Some(3600);
        let (fields, ops) = Role::update("r", &s, &o, &cx()).unwrap();
        assert_eq!(
            fields,
            vec![FieldChange::new(
                "spec.maxSessionDuration",
                Some(json!(3600)),
                Some(json!(7200))
            )]
        );
        assert_eq!(
            ops,
            vec![Op::UpdateRole {
                description: Some("kept".into()),
                max_session_duration: Some(7200)
            }]
        );
    }

    #[test]
    fn missing_instance_profile_is_created() {
        let s = spec();
        let mut o = created("r", &s);
        o.instance_profiles.clear();
        o.instance_profiles.insert("someone-elses".into());
        let (fields, ops) = Role::update("r", &s, &o, &cx()).unwrap();
        assert_eq!(
            fields,
            vec![FieldChange::new(
                "spec.instanceProfile",
                Some(json!(false)),
                Some(json!(true))
            )]
        );
        assert!(matches!(&ops[..], [Op::CreateInstanceProfile { .. }]));
    }

    #[test]
    fn path_change_is_a_plan_error() {
        let s = spec();
        let mut o = created("r", &s);
        o.path = "/".into();
        let errs = Role::update("r", &s, &o, &cx()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            (errs[0].kind, errs[0].field.as_str()),
            (Kind::Role, "spec.path")
        );
    }

    #[test]
    fn delete_empties_the_role_first() {
        let o = created("r", &spec());
        let ops = Role::delete("r", &o);
        assert_eq!(
            ops,
            vec![
                Op::DeleteInstanceProfile,
                Op::Detach { arn: APP.into() },
                Op::Detach {
                    arn: READONLY.into()
                },
                Op::DeleteInline {
                    policy_name: "s3".into()
                },
                Op::DeleteBoundary,
                Op::Delete,
            ]
        );
    }

    /// Regression: a role gaining a boundary and an attachment got the attachment first, so
    /// for a moment it held the new permissions unbounded.
    #[test]
    fn steps_narrow_before_they_widen() {
        let mut s = spec();
        let mut o = created("r", &s);
        o.permissions_boundary = None;
        s.managed_policies
            .push("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".into());
        s.inline_policies.insert("extra".into(), inline());
        let (_, ops) = Role::update("r", &s, &o, &cx()).unwrap();
        let at = |f: fn(&Op) -> bool| ops.iter().position(f).unwrap();
        let boundary = at(|op| matches!(op, Op::PutBoundary { .. }));
        assert!(
            boundary < at(|op| matches!(op, Op::Attach { .. })),
            "{ops:?}"
        );
        assert!(
            boundary < at(|op| matches!(op, Op::PutInline { .. })),
            "{ops:?}"
        );
        // Removing the boundary widens: it comes after everything else that changes access.
        let mut o = created("r", &spec());
        o.managed_policies
            .insert("arn:aws:iam::aws:policy/PowerUserAccess".into());
        let mut s = spec();
        s.permissions_boundary = None;
        let (_, ops) = Role::update("r", &s, &o, &cx()).unwrap();
        let last_access = ops
            .iter()
            .rposition(|op| matches!(op, Op::Detach { .. } | Op::Attach { .. }))
            .unwrap();
        let delete = ops
            .iter()
            .position(|op| matches!(op, Op::DeleteBoundary))
            .unwrap();
        assert!(delete > last_access, "{ops:?}");
    }
}
