//! ServiceLinkedRole: observe and change in AWS.
//!
//! A few roles are read with GetRole each, more with one ListRoles under
//! `/aws-service-role/`. Deleting is asynchronous in IAM: DeleteServiceLinkedRole starts a
//! task (which fails while a service still uses the role) and
//! GetServiceLinkedRoleDeletionStatus is polled until it ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_iam::types::DeletionTaskStatusType;
use futures::future::try_join_all;

use super::diff::{Op, ServiceLinkedRole, ServiceLinkedRoleObserved};
use crate::aws::{AwsContext, AwsError, ErrorClass, ServiceCode};
use crate::kinds::core::PlanCx;
use crate::kinds::iam::sdk::{get_role, iam, roles_under, IamCode, PER_RESOURCE_MAX};
use crate::kinds::runtime::{KindAws, Wanted};

/// Path prefix of every service-linked role.
const SLR_PREFIX: &str = "/aws-service-role/";

#[async_trait]
impl KindAws for ServiceLinkedRole {
    async fn observe(
        aws: &AwsContext,
        wanted: &[Wanted<'_, Self::Spec>],
        _: &PlanCx,
    ) -> Result<BTreeMap<String, ServiceLinkedRoleObserved>, AwsError> {
        // IAM, not the manifest, names a service-linked role: with a spec the role is found
        // by its service (and suffix) under /aws-service-role/; without one, by name.
        let (by_service, by_name): (Vec<_>, Vec<_>) = wanted.iter().partition(|w| w.spec.is_some());
        let mut out = BTreeMap::new();
        if !by_service.is_empty() {
            let all = if by_service.len() <= PER_RESOURCE_MAX {
                let names: Vec<&str> = by_service.iter().map(|w| w.name).collect();
                let client = iam(aws);
                let direct: Vec<_> = try_join_all(names.iter().map(|n| get_role(&client, n)))
                    .await?
                    .into_iter()
                    .flatten()
                    .collect();
                // The common case (IAM used the manifest's name) costs one GetRole each.
                if direct.len() == by_service.len() {
                    direct
                } else {
                    list_slrs(&client).await?
                }
            } else {
                list_slrs(&iam(aws)).await?
            };
            for w in &by_service {
                let spec = w.spec.expect("partitioned on spec");
                let found = all
                    .iter()
                    .find(|r| r.role_name == w.name)
                    .or_else(|| all.iter().find(|r| linked_to(r, spec)));
                if let Some(r) = found {
                    out.insert(w.name.to_string(), observed(r));
                }
            }
        }
        for w in by_name {
            if let Some(r) = get_role(&iam(aws), w.name).await? {
                out.insert(w.name.to_string(), observed(&r));
            }
        }
        Ok(out)
    }

    async fn apply(aws: &AwsContext, name: &str, op: &Op, _: &PlanCx) -> Result<(), AwsError> {
        match op {
            Op::Create {
                aws_service_name,
                description,
                custom_suffix,
            } => {
                let res = iam(aws)
                    .create_service_linked_role()
                    .aws_service_name(aws_service_name)
                    .set_description(description.clone())
                    .set_custom_suffix(custom_suffix.clone())
                    .send()
                    .await;
                match res {
                    Ok(out) => {
                        if let Some(r) = out.role.filter(|r| r.role_name != name) {
                            // The role is tracked by its service, so this still converges.
                            tracing::warn!(expected = name, actual = %r.role_name, "IAM named the service-linked role differently from metadata.name");
                        }
                        Ok(())
                    }
                    // IAM refuses a second role for the service (InvalidInput; moto says
                    // EntityAlreadyExists): when ours exists, an earlier attempt made it.
                    Err(e) => {
                        let err = IamCode::error("iam:CreateServiceLinkedRole", e);
                        let spec = crate::kinds::service_linked_role::ServiceLinkedRoleSpec {
                            aws_service_name: aws_service_name.clone(),
                            description: None,
                            custom_suffix: custom_suffix.clone(),
                        };
                        let exists = get_role(&iam(aws), name).await?.is_some()
                            || list_slrs(&iam(aws))
                                .await?
                                .iter()
                                .any(|r| linked_to(r, &spec));
                        if exists {
                            Ok(())
                        } else {
                            Err(err)
                        }
                    }
                }
            }
            Op::UpdateDescription {
                role_name,
                description,
            } => {
                iam(aws)
                    .update_role_description()
                    .role_name(role_name)
                    .description(description)
                    .send()
                    .await
                    .map_err(|e| IamCode::error("iam:UpdateRoleDescription", e))?;
                Ok(())
            }
            Op::Delete { role_name } => delete(aws, role_name).await,
        }
    }
}

/// Whether `r` is the service-linked role `spec` describes: linked to its service, and with
/// its custom suffix (IAM appends `_SUFFIX` to the name) or none.
fn linked_to(
    r: &aws_sdk_iam::types::Role,
    spec: &crate::kinds::service_linked_role::ServiceLinkedRoleSpec,
) -> bool {
    let service_ok = ServiceLinkedRoleObserved::service_from_path(&r.path)
        .is_some_and(|s| s.eq_ignore_ascii_case(&spec.aws_service_name));
    let suffix_ok = match &spec.custom_suffix {
        Some(sfx) => r.role_name.ends_with(&format!("_{sfx}")),
        None => !r.role_name.contains('_'),
    };
    service_ok && suffix_ok
}

/// What the plan needs of a service-linked role.
fn observed(r: &aws_sdk_iam::types::Role) -> ServiceLinkedRoleObserved {
    ServiceLinkedRoleObserved {
        role_name: r.role_name.clone(),
        arn: r.arn.clone(),
        path: r.path.clone(),
        aws_service_name: ServiceLinkedRoleObserved::service_from_path(&r.path),
        description: r.description.clone(),
    }
}

/// Every service-linked role.
async fn list_slrs(iam: &aws_sdk_iam::Client) -> Result<Vec<aws_sdk_iam::types::Role>, AwsError> {
    roles_under(iam, SLR_PREFIX).await
}

/// Start the deletion task and wait for it.
async fn delete(aws: &AwsContext, name: &str) -> Result<(), AwsError> {
    let task = match iam(aws)
        .delete_service_linked_role()
        .role_name(name)
        .send()
        .await
    {
        Ok(out) => out.deletion_task_id,
        Err(e) => {
            let e = IamCode::error("iam:DeleteServiceLinkedRole", e);
            return if e.is_not_found() { Ok(()) } else { Err(e) };
        }
    };
    let start = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let out = iam(aws)
            .get_service_linked_role_deletion_status()
            .deletion_task_id(&task)
            .send()
            .await
            .map_err(|e| IamCode::error("iam:GetServiceLinkedRoleDeletionStatus", e))?;
        match out.status {
            DeletionTaskStatusType::Succeeded => return Ok(()),
            DeletionTaskStatusType::Failed => {
                let why = out.reason.map(|r| {
                    let users: Vec<String> = r
                        .role_usage_list()
                        .iter()
                        .flat_map(|u| {
                            u.resources()
                                .iter()
                                .map(move |res| format!("{} ({res})", u.region().unwrap_or("?")))
                        })
                        .collect();
                    format!(
                        "{}{}",
                        r.reason().unwrap_or("the role is in use"),
                        if users.is_empty() {
                            String::new()
                        } else {
                            format!("; used by {}", users.join(", "))
                        }
                    )
                });
                return Err(AwsError::new(
                    "iam:DeleteServiceLinkedRole",
                    ErrorClass::Conflict,
                    why.unwrap_or_else(|| "deletion failed".into()),
                ));
            }
            _ if start.elapsed() + delay > aws.eventual_consistency_timeout => {
                return Err(AwsError::new(
                    "iam:DeleteServiceLinkedRole",
                    ErrorClass::Transient,
                    format!("deletion task {task} still running"),
                ));
            }
            _ => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
