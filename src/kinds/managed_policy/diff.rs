//! ManagedPolicy: the pure diff between the manifest and what AWS has.
//!
//! IAM cannot move a policy to another path or change its description, so those are plan
//! errors. A document change becomes a new default version; since a policy keeps at most
//! five versions, the step names the oldest non-default version to delete first.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ManagedPolicySpec;
use crate::kinds::common::Tags;
use crate::kinds::core::{
    has_ownership_tag, Diff, HeldAs, HeldDocument, Holdings, KindPlan, Place, PlanCx, PlanError,
};
use crate::kinds::iam::{document_change, tag_changes, tag_fields};
use crate::kinds::{FieldChange, Kind};

/// IAM keeps at most this many versions of a managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

/// The ManagedPolicy kind.
pub struct ManagedPolicy;

/// What AWS has for one customer managed policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManagedPolicyObserved {
    /// The policy's ARN.
    pub arn: String,
    /// IAM path.
    pub path: String,
    /// Description (IAM returns none when it was never set).
    pub description: Option<String>,
    /// The default version's document, decoded.
    pub document: Value,
    /// Id of the default version, e.g. `v3`.
    pub default_version: String,
    /// Every version id, oldest first (the default included).
    pub versions: Vec<String>,
    /// Tags.
    pub tags: Tags,
}

impl ManagedPolicyObserved {
    /// The oldest version that is not the default: the one to delete to make room.
    pub fn oldest_non_default(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| **v != self.default_version)
            .map(String::as_str)
    }
}

/// One step on a managed policy. Every step is idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// CreatePolicy with its tags (ownership included). When the policy already exists
    /// (the answer to an earlier attempt was lost), converge it instead.
    Create {
        /// The ARN the policy will have (to converge an existing one).
        arn: String,
        /// IAM path.
        path: String,
        /// Document.
        document: Value,
        /// Description.
        description: Option<String>,
        /// Tags, ownership included.
        tags: Tags,
    },
    /// Make `document` the default version, deleting `delete_oldest` first to stay within
    /// IAM's five versions.
    CreateVersion {
        /// Policy ARN.
        arn: String,
        /// New default document.
        document: Value,
        /// Non-default version to delete first.
        delete_oldest: Option<String>,
    },
    /// Add or overwrite tags.
    Tag {
        /// Policy ARN.
        arn: String,
        /// Tags to set.
        tags: Tags,
    },
    /// Remove tags.
    Untag {
        /// Policy ARN.
        arn: String,
        /// Keys to remove.
        keys: Vec<String>,
    },
    /// Delete the non-default versions, detach the policy from every role, user and group,
    /// then delete it.
    Delete {
        /// Policy ARN.
        arn: String,
        /// Non-default versions seen when planning.
        versions: Vec<String>,
    },
}

/// A managed policy's document, as the access analysis sees it.
fn held(document: &Value) -> HeldDocument<'_> {
    HeldDocument {
        label: "policy document".into(),
        pointer: "/spec/document".into(),
        held_as: HeldAs::Managed,
        policy_kind: mlspace_policy::PolicyKind::Identity,
        document,
    }
}

impl KindPlan for ManagedPolicy {
    type Observed = ManagedPolicyObserved;
    type Op = Op;

    const IGNORABLE_FIELDS: &'static [&'static str] = &["document", "description", "tags"];
    // A policy is deleted once the roles deleted with it have let go of it.
    const DELETE_AFTER: &'static [Kind] = &[Kind::Role];

    fn stand_in(name: &str, attribute: &str, at: Place) -> Option<String> {
        match attribute {
            "arn" => Some(format!(
                "arn:{}:iam::{}:policy/{name}",
                at.partition, at.account
            )),
            "name" => Some(name.to_string()),
            _ => None,
        }
    }

    fn arn(name: &str, spec: &ManagedPolicySpec, at: Place) -> Option<String> {
        Some(spec.arn(at.partition, at.account, name))
    }

    fn observed_arn(o: &ManagedPolicyObserved) -> Option<String> {
        Some(o.arn.clone())
    }

    /// Events name a policy by ARN, whose last part is its name (unique in an account
    /// whatever the path).
    fn event_objects(name: &str, _: &ManagedPolicySpec) -> Vec<crate::kinds::AwsObject> {
        vec![crate::kinds::AwsObject::IamPolicy(name.to_string())]
    }

    fn holdings(spec: &ManagedPolicySpec) -> Holdings<'_> {
        Holdings {
            documents: spec.document.iter().map(held).collect(),
            ..Holdings::default()
        }
    }

    fn observed_holdings(o: &ManagedPolicyObserved) -> Holdings<'_> {
        Holdings {
            documents: vec![held(&o.document)],
            ..Holdings::default()
        }
    }

    fn keep_observed(spec: &mut ManagedPolicySpec, o: &ManagedPolicyObserved, field: &str) {
        match field {
            "document" => spec.document = Some(o.document.clone()),
            "description" => spec.description = o.description.clone(),
            "tags" => spec.tags = crate::kinds::common::settable_tags(&o.tags),
            _ => {}
        }
    }

    fn observed_tags(o: &ManagedPolicyObserved) -> Option<&Tags> {
        Some(&o.tags)
    }

    fn is_owned(o: &ManagedPolicyObserved) -> bool {
        has_ownership_tag(&o.tags)
    }

    fn create(name: &str, spec: &ManagedPolicySpec, cx: &PlanCx) -> Diff<Op> {
        let document = spec.document.clone().unwrap_or(Value::Null);
        let mut fields = vec![FieldChange::new(
            "spec.document",
            None,
            Some(document.clone()),
        )];
        if spec.path != "/" {
            fields.push(FieldChange::new("spec.path", None, Some(json!(spec.path))));
        }
        if let Some(d) = &spec.description {
            fields.push(FieldChange::new("spec.description", None, Some(json!(d))));
        }
        fields.extend(tag_fields(&spec.tags));
        let op = Op::Create {
            arn: spec.arn(&cx.partition, &cx.account, name),
            path: spec.path.clone(),
            document,
            description: spec.description.clone(),
            tags: cx.desired_tags(&spec.tags),
        };
        (fields, vec![op])
    }

    fn update(
        name: &str,
        spec: &ManagedPolicySpec,
        o: &ManagedPolicyObserved,
        cx: &PlanCx,
    ) -> Result<Diff<Op>, Vec<PlanError>> {
        let mut errors = Vec::new();
        if spec.path != o.path {
            errors.push(PlanError::new(Kind::ManagedPolicy, name, "spec.path", format!("IAM cannot move a policy from path `{}` to `{}`; delete and recreate it by hand", o.path, spec.path)));
        }
        if let Some(d) = &spec.description {
            if o.description.as_deref().unwrap_or("") != d {
                errors.push(PlanError::new(Kind::ManagedPolicy, name, "spec.description", format!("IAM cannot change a policy's description (it is {:?}); delete and recreate it by hand", o.description.as_deref().unwrap_or(""))));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut fields = Vec::new();
        let mut ops = Vec::new();
        if let Some(doc) = &spec.document {
            if let Some(f) = document_change("spec.document", doc, &o.document) {
                fields.push(f);
                let delete_oldest = if o.versions.len() >= MAX_POLICY_VERSIONS {
                    o.oldest_non_default().map(str::to_string)
                } else {
                    None
                };
                ops.push(Op::CreateVersion {
                    arn: o.arn.clone(),
                    document: doc.clone(),
                    delete_oldest,
                });
            }
        }
        let (tag_fields, set, remove) = {
            let want = cx.desired_tags(&spec.tags);
            let have = cx.managed_tags(&o.tags, &want);
            tag_changes(&want, &have)
        };
        fields.extend(tag_fields);
        if !set.is_empty() {
            ops.push(Op::Tag {
                arn: o.arn.clone(),
                tags: set,
            });
        }
        if !remove.is_empty() {
            ops.push(Op::Untag {
                arn: o.arn.clone(),
                keys: remove,
            });
        }
        Ok((fields, ops))
    }

    fn release(_: &str, o: &ManagedPolicyObserved) -> Vec<Op> {
        vec![Op::Untag {
            arn: o.arn.clone(),
            keys: vec![crate::kinds::common::OWNERSHIP_TAG.to_string()],
        }]
    }

    fn delete(_: &str, o: &ManagedPolicyObserved) -> Vec<Op> {
        let versions = o
            .versions
            .iter()
            .filter(|v| **v != o.default_version)
            .cloned()
            .collect();
        vec![Op::Delete {
            arn: o.arn.clone(),
            versions,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::common::{OWNERSHIP_TAG, OWNERSHIP_VALUE};

    fn cx() -> PlanCx {
        PlanCx {
            partition: "aws".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            ..PlanCx::default()
        }
    }

    fn doc() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}]})
    }

    fn spec() -> ManagedPolicySpec {
        ManagedPolicySpec {
            document: Some(doc()),
            document_file: None,
            path: "/mlspace/".into(),
            description: Some("reads b".into()),
            tags: [("team".to_string(), "ml".to_string())].into(),
        }
    }

    /// What AWS holds right after running the create step.
    fn created(spec: &ManagedPolicySpec) -> ManagedPolicyObserved {
        let (_, ops) = ManagedPolicy::create("p", spec, &cx());
        let Op::Create {
            arn,
            path,
            document,
            description,
            tags,
        } = ops[0].clone()
        else {
            panic!("{ops:?}")
        };
        ManagedPolicyObserved {
            arn,
            path,
            description,
            document,
            default_version: "v1".into(),
            versions: vec!["v1".into()],
            tags,
        }
    }

    #[test]
    fn create_lists_fields_and_tags_ownership() {
        let (fields, ops) = ManagedPolicy::create("p", &spec(), &cx());
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "spec.document",
                "spec.path",
                "spec.description",
                "spec.tags.team"
            ]
        );
        assert!(fields.iter().all(|f| f.old.is_none() && f.new.is_some()));
        let Op::Create { arn, tags, .. } = &ops[0] else {
            panic!()
        };
        assert_eq!(arn, "arn:aws:iam::123456789012:policy/mlspace/p");
        assert_eq!(
            tags.get(OWNERSHIP_TAG).map(String::as_str),
            Some(OWNERSHIP_VALUE)
        );
    }

    #[test]
    fn created_state_has_no_diff() {
        let s = spec();
        let o = created(&s);
        assert!(ManagedPolicy::is_owned(&o));
        assert_eq!(
            ManagedPolicy::update("p", &s, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn url_encoded_and_reformatted_document_is_equal() {
        let s = spec();
        let mut o = created(&s);
        // As GetPolicyVersion returns it: URL-encoded, one-element lists as strings.
        let raw = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Sid%22%3A%22Read%22%2C%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22S3%3AGetObject%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Ab%2F%2A%22%7D%7D";
        o.document = mlspace_policy::decode_iam_document(raw).unwrap();
        assert_eq!(
            ManagedPolicy::update("p", &s, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn document_change_shows_statements_and_creates_a_version() {
        let s = spec();
        let mut o = created(&s);
        o.document = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
        let (fields, ops) = ManagedPolicy::update("p", &s, &o, &cx()).unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].field, "spec.document");
        assert_eq!(
            fields[0].old,
            Some(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]))
        );
        assert_eq!(fields[0].new, Some(doc()["Statement"].clone()));
        assert_eq!(
            ops,
            vec![Op::CreateVersion {
                arn: o.arn.clone(),
                document: doc(),
                delete_oldest: None
            }]
        );
    }

    #[test]
    fn version_limit_deletes_oldest_non_default() {
        let s = spec();
        let mut o = created(&s);
        o.document = json!({"Version": "2012-10-17", "Statement": []});
        o.versions = ["v1", "v2", "v3", "v4", "v5"].map(String::from).to_vec();
        o.default_version = "v1".into(); // a rolled-back default is not the one to delete
        let (_, ops) = ManagedPolicy::update("p", &s, &o, &cx()).unwrap();
        assert_eq!(
            ops,
            vec![Op::CreateVersion {
                arn: o.arn.clone(),
                document: doc(),
                delete_oldest: Some("v2".into())
            }]
        );
        o.versions.truncate(4);
        let (_, ops) = ManagedPolicy::update("p", &s, &o, &cx()).unwrap();
        assert!(matches!(
            &ops[0],
            Op::CreateVersion {
                delete_oldest: None,
                ..
            }
        ));
    }

    #[test]
    fn extra_and_changed_tags_are_drift() {
        let s = spec();
        let mut o = created(&s);
        o.tags.insert("extra".into(), "x".into());
        o.tags.insert("team".into(), "other".into());
        o.tags
            .insert("aws:cloudformation:stack-name".into(), "s".into());
        let (fields, ops) = ManagedPolicy::update("p", &s, &o, &cx()).unwrap();
        assert_eq!(
            fields,
            vec![
                FieldChange::new("spec.tags.extra", Some(json!("x")), None),
                FieldChange::new("spec.tags.team", Some(json!("other")), Some(json!("ml")))
            ]
        );
        assert_eq!(
            ops,
            vec![
                Op::Tag {
                    arn: o.arn.clone(),
                    tags: [("team".to_string(), "ml".to_string())].into()
                },
                Op::Untag {
                    arn: o.arn.clone(),
                    keys: vec!["extra".into()]
                }
            ]
        );
    }

    #[test]
    fn missing_ownership_tag_is_not_owned() {
        let s = spec();
        let mut o = created(&s);
        o.tags.remove(OWNERSHIP_TAG);
        assert!(!ManagedPolicy::is_owned(&o));
        // Adopted: the update adds the tag.
        let (fields, _) = ManagedPolicy::update("p", &s, &o, &cx()).unwrap();
        assert_eq!(fields[0].field, format!("spec.tags.{OWNERSHIP_TAG}"));
    }

    #[test]
    fn path_and_description_changes_are_plan_errors() {
        let s = spec();
        let mut o = created(&s);
        o.path = "/other/".into();
        o.description = Some("old".into());
        let errs = ManagedPolicy::update("p", &s, &o, &cx()).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.path", "spec.description"]);
        // An unset description is not drift.
        let mut s2 = s.clone();
        s2.description = None;
        o.path = s.path.clone();
        assert!(ManagedPolicy::update("p", &s2, &o, &cx())
            .unwrap()
            .0
            .is_empty());
    }

    #[test]
    fn delete_lists_non_default_versions() {
        let mut o = created(&spec());
        o.versions = ["v2", "v3", "v4"].map(String::from).to_vec();
        o.default_version = "v3".into();
        assert_eq!(
            ManagedPolicy::delete("p", &o),
            vec![Op::Delete {
                arn: o.arn.clone(),
                versions: vec!["v2".into(), "v4".into()]
            }]
        );
    }
}
