//! `ServiceLinkedRole`: a role that an AWS service defines and IAM creates on request.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{check_iam_description, check_iam_name};
use super::core::DocKind;
use super::environment::EnvironmentView;
use super::Kind;
use crate::syntax::diag::DocCx;

/// Spec of the `ServiceLinkedRole` kind. `metadata.name` is the role name AWS gives it
/// (for example `AWSServiceRoleForEMRCleanup`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceLinkedRoleSpec {
    /// Service principal the role is linked to, e.g. `elasticmapreduce.amazonaws.com`.
    pub aws_service_name: String,
    /// Description of the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Suffix some services allow for a second role of the same service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_suffix: Option<String>,
}

impl ServiceLinkedRoleSpec {
    /// Check the fields.
    pub fn validate(&self, name: &str, cx: &mut DocCx) {
        check_iam_name(cx, "/metadata/name", "role", name, 64);
        let s = &self.aws_service_name;
        let ok = s.ends_with(".amazonaws.com")
            || s.ends_with(".amazonaws.com.cn")
            || s.ends_with(".c2s.ic.gov")
            || s.ends_with(".sc2s.sgov.gov");
        if !ok || s.contains(char::is_whitespace) {
            cx.error(
                "/spec/awsServiceName",
                format_args!(
                    "`{s}` is not a service principal such as elasticmapreduce.amazonaws.com"
                ),
            );
        }
        if let Some(d) = &self.description {
            check_iam_description(cx, "/spec/description", d);
        }
        if let Some(sfx) = &self.custom_suffix {
            if sfx.is_empty() || sfx.len() > 64 || !sfx.chars().all(super::common::is_iam_name_char)
            {
                cx.error(
                    "/spec/customSuffix",
                    "custom suffix must be 1 to 64 of the characters IAM allows in names",
                );
            }
        }
        if !name.starts_with("AWSServiceRoleFor") {
            cx.warning("/metadata/name", "service-linked role names start with `AWSServiceRoleFor`; IAM chooses the name, so it must match what the service creates");
        }
    }
}

impl DocKind for ServiceLinkedRole {
    const KIND: Kind = Kind::ServiceLinkedRole;
    type Spec = ServiceLinkedRoleSpec;
    // Roles and service-linked roles share IAM's role names.
    const NAME_SPACE: Kind = Kind::Role;

    fn validate(name: &str, spec: &ServiceLinkedRoleSpec, cx: &mut DocCx, _: &EnvironmentView) {
        spec.validate(name, cx);
    }
}

#[cfg(feature = "runtime")]
pub mod aws;
pub mod diff;
pub mod import;
pub use diff::{Op, ServiceLinkedRole};
