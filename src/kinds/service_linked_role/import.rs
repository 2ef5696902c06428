//! ServiceLinkedRole: the manifest spec that describes an existing service-linked role
//! (the `import` command).

use super::diff::{ServiceLinkedRole, ServiceLinkedRoleObserved};
use super::ServiceLinkedRoleSpec;
use crate::kinds::core::{Import, PlanCx};

/// The spec of `o`: its service (from the observation, else its path), its description,
/// and the custom suffix IAM appended after `_` to the role name, if any.
pub fn spec(name: &str, o: &ServiceLinkedRoleObserved) -> ServiceLinkedRoleSpec {
    let aws_service_name = o
        .aws_service_name
        .clone()
        .or_else(|| ServiceLinkedRoleObserved::service_from_path(&o.path))
        .unwrap_or_default();
    let role_name = if o.role_name.is_empty() {
        name
    } else {
        &o.role_name
    };
    ServiceLinkedRoleSpec {
        aws_service_name,
        description: o.description.clone().filter(|d| !d.is_empty()),
        custom_suffix: role_name
            .split_once('_')
            .map(|(_, s)| s.to_string())
            .filter(|s| !s.is_empty()),
    }
}

impl Import for ServiceLinkedRole {
    fn import(name: &str, o: &ServiceLinkedRoleObserved, _: &PlanCx) -> ServiceLinkedRoleSpec {
        spec(name, o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_from_the_path_and_suffix_from_the_name() {
        let o = ServiceLinkedRoleObserved {
            role_name: "AWSServiceRoleForAutoScaling_ml".into(),
            arn: String::new(),
            path: "/aws-service-role/autoscaling.amazonaws.com/".into(),
            aws_service_name: None,
            description: None,
        };
        let s = spec("AWSServiceRoleForAutoScaling_ml", &o);
        assert_eq!(s.aws_service_name, "autoscaling.amazonaws.com");
        assert_eq!(s.custom_suffix.as_deref(), Some("ml"));
    }
}
