//! ServiceLinkedRole: the pure diff between the manifest and what AWS has.
//!
//! AWS defines and manages these roles (their trust and permissions) and they cannot carry
//! our tag, so the only things planned are creating a missing one, updating its
//! description, and deleting it.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ServiceLinkedRoleSpec;
use crate::kinds::core::{Diff, KindPlan, Place, PlanCx, PlanError};
use crate::kinds::{FieldChange, Kind};

/// The ServiceLinkedRole kind.
pub struct ServiceLinkedRole;

/// What AWS has for one service-linked role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceLinkedRoleObserved {
    /// The role's name as IAM chose it (found by its service, so it may differ from
    /// `metadata.name`, e.g. on emulators).
    pub role_name: String,
    /// The role's ARN.
    pub arn: String,
    /// IAM path, `/aws-service-role/SERVICE/`.
    pub path: String,
    /// The service the role is linked to, read from the path.
    pub aws_service_name: Option<String>,
    /// Description.
    pub description: Option<String>,
}

impl ServiceLinkedRoleObserved {
    /// The service named by a service-linked role's path.
    pub fn service_from_path(path: &str) -> Option<String> {
        path.strip_prefix("/aws-service-role/")?
            .strip_suffix('/')
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .map(str::to_string)
    }
}

/// One step on a service-linked role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// CreateServiceLinkedRole; when the role already exists, nothing to do.
    Create {
        /// Service principal.
        aws_service_name: String,
        /// Description.
        description: Option<String>,
        /// Suffix for a second role of the same service.
        custom_suffix: Option<String>,
    },
    /// UpdateRoleDescription.
    UpdateDescription {
        /// The role's actual name.
        role_name: String,
        /// New description.
        description: String,
    },
    /// DeleteServiceLinkedRole, then wait for the deletion task to finish.
    Delete {
        /// The role's actual name.
        role_name: String,
    },
}

impl KindPlan for ServiceLinkedRole {
    type Observed = ServiceLinkedRoleObserved;
    type Op = Op;

    // IAM, not the manifest, names the role: it is found by its service.
    const OBSERVE_BY_SPEC: bool = true;

    fn stand_in(name: &str, attribute: &str, at: Place) -> Option<String> {
        match attribute {
            "arn" => Some(format!(
                "arn:{}:iam::{}:role/aws-service-role/{name}",
                at.partition, at.account
            )),
            "name" => Some(name.to_string()),
            _ => None,
        }
    }

    fn arn(name: &str, spec: &ServiceLinkedRoleSpec, at: Place) -> Option<String> {
        Some(format!(
            "arn:{}:iam::{}:role/aws-service-role/{}/{name}",
            at.partition, at.account, spec.aws_service_name
        ))
    }

    /// Events name it by role name, and CreateServiceLinkedRole by the service.
    fn event_objects(name: &str, spec: &ServiceLinkedRoleSpec) -> Vec<crate::kinds::AwsObject> {
        vec![
            crate::kinds::AwsObject::IamRole(name.to_string()),
            crate::kinds::AwsObject::IamServiceLinkedRole(spec.aws_service_name.clone()),
        ]
    }

    /// AWS creates and manages service-linked roles and they cannot carry our tag: one
    /// named in a manifest is ours.
    fn observed_arn(o: &ServiceLinkedRoleObserved) -> Option<String> {
        Some(o.arn.clone())
    }

    fn is_owned(_: &ServiceLinkedRoleObserved) -> bool {
        true
    }

    fn create(_: &str, spec: &ServiceLinkedRoleSpec, _: &PlanCx) -> Diff<Op> {
        let mut fields = vec![FieldChange::new(
            "spec.awsServiceName",
            None,
            Some(json!(spec.aws_service_name)),
        )];
        if let Some(d) = &spec.description {
            fields.push(FieldChange::new("spec.description", None, Some(json!(d))));
        }
        if let Some(s) = &spec.custom_suffix {
            fields.push(FieldChange::new("spec.customSuffix", None, Some(json!(s))));
        }
        let op = Op::Create {
            aws_service_name: spec.aws_service_name.clone(),
            description: spec.description.clone(),
            custom_suffix: spec.custom_suffix.clone(),
        };
        (fields, vec![op])
    }

    fn update(
        name: &str,
        spec: &ServiceLinkedRoleSpec,
        o: &ServiceLinkedRoleObserved,
        _: &PlanCx,
    ) -> Result<Diff<Op>, Vec<PlanError>> {
        if let Some(actual) = &o.aws_service_name {
            if !actual.eq_ignore_ascii_case(&spec.aws_service_name) {
                return Err(vec![PlanError::new(Kind::ServiceLinkedRole, name, "spec.awsServiceName", format!("the role `{name}` is linked to `{actual}`; a service-linked role cannot change its service"))]);
            }
        }
        match &spec.description {
            Some(d) if o.description.as_deref().unwrap_or("") != d => {
                let field = FieldChange::new(
                    "spec.description",
                    o.description.as_ref().map(|x| json!(x)),
                    Some(json!(d)),
                );
                Ok((
                    vec![field],
                    vec![Op::UpdateDescription {
                        role_name: o.role_name.clone(),
                        description: d.clone(),
                    }],
                ))
            }
            _ => Ok((vec![], vec![])),
        }
    }

    fn release(_: &str, _: &ServiceLinkedRoleObserved) -> Vec<Op> {
        // Service-linked roles carry no ownership tag: nothing to hand back.
        vec![]
    }

    fn delete(_: &str, o: &ServiceLinkedRoleObserved) -> Vec<Op> {
        vec![Op::Delete {
            role_name: o.role_name.clone(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceLinkedRoleSpec {
        ServiceLinkedRoleSpec {
            aws_service_name: "elasticmapreduce.amazonaws.com".into(),
            description: None,
            custom_suffix: None,
        }
    }

    fn observed() -> ServiceLinkedRoleObserved {
        let path = "/aws-service-role/elasticmapreduce.amazonaws.com/".to_string();
        ServiceLinkedRoleObserved {
            role_name: "AWSServiceRoleForEMRCleanup".into(),
            arn: format!("arn:aws:iam::123456789012:role{path}AWSServiceRoleForEMRCleanup"),
            aws_service_name: ServiceLinkedRoleObserved::service_from_path(&path),
            path,
            description: None,
        }
    }

    #[test]
    fn missing_role_is_created_existing_one_is_left_alone() {
        let (fields, ops) =
            ServiceLinkedRole::create("AWSServiceRoleForEMRCleanup", &spec(), &PlanCx::default());
        assert_eq!(fields[0].field, "spec.awsServiceName");
        assert_eq!(
            ops,
            vec![Op::Create {
                aws_service_name: "elasticmapreduce.amazonaws.com".into(),
                description: None,
                custom_suffix: None
            }]
        );
        let o = observed();
        assert!(ServiceLinkedRole::is_owned(&o));
        assert_eq!(
            ServiceLinkedRole::update(
                "AWSServiceRoleForEMRCleanup",
                &spec(),
                &o,
                &PlanCx::default()
            )
            .unwrap(),
            (vec![], vec![])
        );
        assert_eq!(
            ServiceLinkedRole::delete("x", &o),
            vec![Op::Delete {
                role_name: "AWSServiceRoleForEMRCleanup".into()
            }]
        );
    }

    #[test]
    fn description_is_updated_and_service_cannot_change() {
        let mut s = spec();
        s.description = Some("EMR cleanup".into());
        let (_, ops) = ServiceLinkedRole::update("r", &s, &observed(), &PlanCx::default()).unwrap();
        assert_eq!(
            ops,
            vec![Op::UpdateDescription {
                role_name: "AWSServiceRoleForEMRCleanup".into(),
                description: "EMR cleanup".into()
            }]
        );
        s.aws_service_name = "sagemaker.amazonaws.com".into();
        let errs = ServiceLinkedRole::update("r", &s, &observed(), &PlanCx::default()).unwrap_err();
        assert_eq!(errs[0].field, "spec.awsServiceName");
    }

    #[test]
    fn service_is_read_from_the_path() {
        assert_eq!(
            ServiceLinkedRoleObserved::service_from_path("/aws-service-role/ecs.amazonaws.com/")
                .as_deref(),
            Some("ecs.amazonaws.com")
        );
        assert_eq!(ServiceLinkedRoleObserved::service_from_path("/"), None);
    }
}
