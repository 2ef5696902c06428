//! ServiceLinkedRole: observe and change in AWS. (Placeholder being written.)

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::diff::{ServiceLinkedRole, ServiceLinkedRoleObserved, Op};
use crate::aws::{AwsContext, AwsError};
use crate::kinds::engine::{KindAws, PlanCx};

#[async_trait]
impl KindAws for ServiceLinkedRole {
    async fn observe(_: &AwsContext, _: &[String], _: &PlanCx) -> Result<BTreeMap<String, ServiceLinkedRoleObserved>, AwsError> {
        Ok(BTreeMap::new())
    }
    async fn apply(_: &AwsContext, _: &str, _: &Op, _: &PlanCx) -> Result<(), AwsError> {
        Ok(())
    }
}
