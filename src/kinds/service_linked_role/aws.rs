//! ServiceLinkedRole: observe and change in AWS.
//!
//! A few roles are read with GetRole each, more with one ListRoles under
//! `/aws-service-role/`. Deleting is asynchronous in IAM: DeleteServiceLinkedRole starts a
//! task (which fails while a service still uses the role) and
//! GetServiceLinkedRoleDeletionStatus is polled until it ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_iam::operation::delete_service_linked_role::DeleteServiceLinkedRoleError;
use aws_sdk_iam::operation::get_service_linked_role_deletion_status::GetServiceLinkedRoleDeletionStatusError;
use aws_sdk_iam::operation::update_role_description::UpdateRoleDescriptionError;
use aws_sdk_iam::types::DeletionTaskStatusType;
use futures::future::try_join_all;

use super::diff::{Op, ServiceLinkedRole, ServiceLinkedRoleObserved};
use crate::aws::{AwsContext, AwsError, ErrorClass};
use crate::kinds::engine::{KindAws, PlanCx, Wanted};
use crate::kinds::role::aws::get_role;
use crate::kinds::role::aws::iam_snapshot::{PAGE, PER_RESOURCE_MAX};

/// Path prefix of every service-linked role.
const SLR_PREFIX: &str = "/aws-service-role/";

#[async_trait]
impl KindAws for ServiceLinkedRole {
    async fn observe(
        aws: &AwsContext,
        wanted: &[Wanted<'_, Self::Spec>],
        _: &PlanCx,
    ) -> Result<BTreeMap<String, ServiceLinkedRoleObserved>, AwsError> {
        // IAM reads are per resource or per account, never per setting: names suffice.
        let names: Vec<String> = wanted.iter().map(|w| w.name.to_string()).collect();
        let names = names.as_slice();
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let roles: Vec<aws_sdk_iam::types::Role> = if names.len() <= PER_RESOURCE_MAX {
            try_join_all(names.iter().map(|n| get_role(&aws.iam, n)))
                .await?
                .into_iter()
                .flatten()
                .collect()
        } else {
            list_slrs(&aws.iam).await?
        };
        Ok(roles
            .into_iter()
            .filter(|r| names.contains(&r.role_name))
            .map(|r| (r.role_name.clone(), observed(&r)))
            .collect())
    }

    async fn apply(aws: &AwsContext, name: &str, op: &Op, _: &PlanCx) -> Result<(), AwsError> {
        match op {
            Op::Create {
                aws_service_name,
                description,
                custom_suffix,
            } => {
                let res = aws
                    .iam
                    .create_service_linked_role()
                    .aws_service_name(aws_service_name)
                    .set_description(description.clone())
                    .set_custom_suffix(custom_suffix.clone())
                    .send()
                    .await;
                match res {
                    Ok(out) => match out.role {
                        Some(r) if r.role_name != name => Err(AwsError {
                            operation: "iam:CreateServiceLinkedRole".into(),
                            class: ErrorClass::Fatal,
                            message: format!(
                                "AWS named the role `{}`, not `{name}`; set metadata.name to `{}`",
                                r.role_name, r.role_name
                            ),
                        }),
                        _ => Ok(()),
                    },
                    // IAM refuses a second role for the service (InvalidInput; moto says
                    // EntityAlreadyExists): when ours exists, an earlier attempt made it.
                    Err(e) => {
                        let err = AwsError::from_sdk("iam:CreateServiceLinkedRole", e, |_| None);
                        match get_role(&aws.iam, name).await? {
                            Some(_) => Ok(()),
                            None => Err(err),
                        }
                    }
                }
            }
            Op::UpdateDescription { description } => {
                aws.iam
                    .update_role_description()
                    .role_name(name)
                    .description(description)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::from_sdk("iam:UpdateRoleDescription", e, |e| match e {
                            UpdateRoleDescriptionError::NoSuchEntityException(_) => {
                                Some(ErrorClass::NotFound)
                            }
                            _ => None,
                        })
                    })?;
                Ok(())
            }
            Op::Delete => delete(aws, name).await,
        }
    }
}

/// What the plan needs of a service-linked role.
fn observed(r: &aws_sdk_iam::types::Role) -> ServiceLinkedRoleObserved {
    ServiceLinkedRoleObserved {
        arn: r.arn.clone(),
        path: r.path.clone(),
        aws_service_name: ServiceLinkedRoleObserved::service_from_path(&r.path),
        description: r.description.clone(),
    }
}

/// Every service-linked role.
async fn list_slrs(iam: &aws_sdk_iam::Client) -> Result<Vec<aws_sdk_iam::types::Role>, AwsError> {
    let mut roles = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = iam
            .list_roles()
            .path_prefix(SLR_PREFIX)
            .max_items(PAGE)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("iam:ListRoles", e, |_| None))?;
        roles.extend(page.roles);
        match page.marker {
            Some(m) if page.is_truncated && marker.as_ref() != Some(&m) => marker = Some(m),
            _ => break,
        }
    }
    Ok(roles)
}

/// Start the deletion task and wait for it.
async fn delete(aws: &AwsContext, name: &str) -> Result<(), AwsError> {
    let task = match aws
        .iam
        .delete_service_linked_role()
        .role_name(name)
        .send()
        .await
    {
        Ok(out) => out.deletion_task_id,
        Err(e) => {
            let e = AwsError::from_sdk("iam:DeleteServiceLinkedRole", e, |e| match e {
                DeleteServiceLinkedRoleError::NoSuchEntityException(_) => {
                    Some(ErrorClass::NotFound)
                }
                _ => None,
            });
            return if e.is_not_found() { Ok(()) } else { Err(e) };
        }
    };
    let start = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let out = aws
            .iam
            .get_service_linked_role_deletion_status()
            .deletion_task_id(&task)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("iam:GetServiceLinkedRoleDeletionStatus", e, |e| match e {
                    GetServiceLinkedRoleDeletionStatusError::NoSuchEntityException(_) => {
                        Some(ErrorClass::NotFound)
                    }
                    _ => None,
                })
            })?;
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
                return Err(AwsError {
                    operation: "iam:DeleteServiceLinkedRole".into(),
                    class: ErrorClass::Conflict,
                    message: why.unwrap_or_else(|| "deletion failed".into()),
                });
            }
            _ if start.elapsed() + delay > aws.eventual_consistency_timeout => {
                return Err(AwsError {
                    operation: "iam:DeleteServiceLinkedRole".into(),
                    class: ErrorClass::Transient,
                    message: format!("deletion task {task} still running"),
                });
            }
            _ => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
