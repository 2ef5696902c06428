//! ManagedPolicy: observe and change in AWS. (Placeholder being written.)

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::diff::{ManagedPolicy, ManagedPolicyObserved, Op};
use crate::aws::{AwsContext, AwsError};
use crate::kinds::engine::{KindAws, PlanCx};

#[async_trait]
impl KindAws for ManagedPolicy {
    async fn observe(_: &AwsContext, _: &[String], _: &PlanCx) -> Result<BTreeMap<String, ManagedPolicyObserved>, AwsError> {
        Ok(BTreeMap::new())
    }
    async fn apply(_: &AwsContext, _: &str, _: &Op, _: &PlanCx) -> Result<(), AwsError> {
        Ok(())
    }
}
