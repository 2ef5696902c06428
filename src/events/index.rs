//! The managed resources of one Environment as events name them, and the verdict on a call:
//! which resources to reconcile, or why nothing is done (and no AWS read is made).

use std::collections::{BTreeMap, BTreeSet};

use super::envelope::ApiCall;
use crate::kinds::environment::IgnoreRule;
use crate::kinds::{AwsObject, Observed, ResourceId};
use crate::manifest::DesiredState;

/// Why an event leads to no reconcile: the `reason` label of the ignored-events metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ignored {
    /// Not an API call of a managed service (another detail type or source).
    OtherEvent,
    /// A read: it changed nothing.
    ReadOnly,
    /// The call failed: it changed nothing.
    FailedCall,
    /// Made in another account than the Environment's.
    OtherAccount,
    /// Made by the daemon itself (its writes never trigger more writes).
    OwnPrincipal,
    /// About an object the Environment's `ignore` rules name (a policy MLSpace attaches).
    IgnoredObject,
    /// About nothing the manifests manage.
    Unmanaged,
}

impl Ignored {
    /// Every reason.
    pub const ALL: [Ignored; 7] = [
        Ignored::OtherEvent,
        Ignored::ReadOnly,
        Ignored::FailedCall,
        Ignored::OtherAccount,
        Ignored::OwnPrincipal,
        Ignored::IgnoredObject,
        Ignored::Unmanaged,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::OtherEvent => "other_event",
            Ignored::ReadOnly => "read_only",
            Ignored::FailedCall => "failed_call",
            Ignored::OtherAccount => "other_account",
            Ignored::OwnPrincipal => "own_principal",
            Ignored::IgnoredObject => "ignored",
            Ignored::Unmanaged => "unmanaged",
        }
    }
}

/// What to do about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Reconcile these managed resources (never empty).
    Act(BTreeSet<ResourceId>),
    /// Nothing, for this reason.
    Ignore(Ignored),
}

/// The managed resources of one Environment by the objects and ARNs events name them with.
#[derive(Debug, Clone, Default)]
pub struct EventIndex {
    account: String,
    partition: String,
    principal: Option<String>,
    ignore: Vec<IgnoreRule>,
    objects: BTreeMap<AwsObject, BTreeSet<ResourceId>>,
    arns: BTreeMap<String, ResourceId>,
}

impl EventIndex {
    /// The index of `desired`: each resource by the objects its kind names it with and by
    /// the ARN its manifest gives it.
    pub fn new(desired: &DesiredState) -> EventIndex {
        let env = &desired.environment;
        let mut index = EventIndex {
            account: env.account.clone(),
            partition: env.partition.clone(),
            principal: None,
            ignore: env.ignore.clone(),
            objects: BTreeMap::new(),
            arns: BTreeMap::new(),
        };
        let place = crate::kinds::Place {
            partition: &env.partition,
            account: &env.account,
            region: &env.region,
        };
        for r in &desired.resources {
            let id = (r.kind, r.name.clone());
            for o in r.spec.event_objects(&r.name) {
                index.objects.entry(o).or_default().insert(id.clone());
            }
            if let Some(arn) = r.spec.arn(&r.name, place) {
                index.arns.insert(arn, id);
            }
        }
        index
    }

    /// Also the ARNs AWS gave the managed resources it has (a key's, which no manifest can
    /// know beforehand).
    pub fn with_observed(mut self, desired: &DesiredState, observed: &Observed) -> EventIndex {
        for r in &desired.resources {
            if let Some(arn) = observed.attribute(r.kind, &r.name, "arn") {
                self.arns.insert(arn, (r.kind, r.name.clone()));
            }
        }
        self
    }

    /// Whether an ARN of `id` is known (declared by its manifest or given by AWS).
    pub fn knows_arn_of(&self, id: &ResourceId) -> bool {
        self.arns.values().any(|v| v == id)
    }

    /// Also `arn` for `id` (read from AWS after the daemon created it).
    pub fn with_arn(mut self, arn: String, id: ResourceId) -> EventIndex {
        self.arns.insert(arn, id);
        self
    }

    /// The daemon's own principal in this account (`userIdentity.arn` of its calls, which
    /// STS `GetCallerIdentity` returns): its calls are ignored.
    pub fn with_principal(mut self, principal: Option<String>) -> EventIndex {
        self.principal = principal;
        self
    }

    /// The principal set by [`Self::with_principal`].
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    fn ignored(&self, name: &str) -> bool {
        self.ignore.iter().any(|r| r.matches(name, None))
    }

    /// What to do about `call`. Costs no AWS read: the decision is made from the call and
    /// the manifests alone.
    pub fn classify(&self, call: &ApiCall) -> Verdict {
        if call.source.is_none() {
            return Verdict::Ignore(Ignored::OtherEvent);
        }
        if call.read_only {
            return Verdict::Ignore(Ignored::ReadOnly);
        }
        if call.failed {
            return Verdict::Ignore(Ignored::FailedCall);
        }
        if call.account != self.account {
            return Verdict::Ignore(Ignored::OtherAccount);
        }
        if call.principal.is_some() && call.principal == self.principal {
            return Verdict::Ignore(Ignored::OwnPrincipal);
        }
        // Attaching or putting a policy the application owns changes nothing managed: such
        // attachments are never drift.
        if call.attachment.as_deref().is_some_and(|a| self.ignored(a)) {
            return Verdict::Ignore(Ignored::IgnoredObject);
        }
        let mut ids = BTreeSet::new();
        let mut ignored = false;
        for o in &call.objects {
            match self.objects.get(o) {
                Some(found) => ids.extend(found.iter().cloned()),
                None => ignored |= self.ignored(object_name(o)),
            }
            // A key given by id is known by its ARN (the one AWS gave it).
            if let AwsObject::KmsKey(id) = o {
                let arn = format!(
                    "arn:{}:kms:{}:{}:key/{id}",
                    self.partition, call.region, call.account
                );
                ids.extend(self.arns.get(&arn).cloned());
            }
        }
        for arn in &call.arns {
            ids.extend(self.arns.get(arn).cloned());
        }
        if !ids.is_empty() {
            Verdict::Act(ids)
        } else if ignored {
            Verdict::Ignore(Ignored::IgnoredObject)
        } else {
            Verdict::Ignore(Ignored::Unmanaged)
        }
    }
}

fn object_name(o: &AwsObject) -> &str {
    match o {
        AwsObject::IamRole(n)
        | AwsObject::IamPolicy(n)
        | AwsObject::IamInstanceProfile(n)
        | AwsObject::IamServiceLinkedRole(n)
        | AwsObject::Bucket(n)
        | AwsObject::Table(n)
        | AwsObject::KmsKey(n)
        | AwsObject::KmsAlias(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::events::{parse, Envelope, Source, DETAIL_TYPE};
    use crate::kinds::Kind;

    const ME: &str = "arn:aws:sts::123456789012:assumed-role/mlspace-gitops/mlspace-gitops-dev";

    fn desired() -> DesiredState {
        crate::manifest::compile_text(
            r#"apiVersion: mlspace-gitops/v1
kind: Environment
metadata: {name: dev}
spec:
  region: us-east-1
  account: "123456789012"
  ignore: [{name: MLSpace-app-denied-services}, {name: "MLSpace-project-*"}]
---
apiVersion: mlspace-gitops/v1
kind: ManagedPolicy
metadata: {name: mlspace-app-policy}
spec:
  path: /team/
  document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}
---
apiVersion: mlspace-gitops/v1
kind: Role
metadata: {name: mlspace-app-role}
spec:
  assumeRolePolicy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: "sts:AssumeRole"}]}
  managedPolicies: [mlspace-app-policy]
  instanceProfile: true
---
apiVersion: mlspace-gitops/v1
kind: ServiceLinkedRole
metadata: {name: AWSServiceRoleForEMRCleanup}
spec: {awsServiceName: elasticmapreduce.amazonaws.com}
---
apiVersion: mlspace-gitops/v1
kind: Bucket
metadata: {name: mlspace-data}
spec: {}
---
apiVersion: mlspace-gitops/v1
kind: Table
metadata: {name: mlspace-users}
spec: {partitionKey: {name: id, type: S}}
---
apiVersion: mlspace-gitops/v1
kind: KmsKey
metadata: {name: mlspace-key}
spec: {aliases: [mlspace-key-old]}
"#,
        )
        .desired
    }

    fn index() -> EventIndex {
        EventIndex::new(&desired()).with_principal(Some(ME.into()))
    }

    fn verdict(source: &str, event: &str, extra: serde_json::Value) -> Verdict {
        let mut detail = json!({
            "eventSource": format!("{}.amazonaws.com", source.trim_start_matches("aws.")),
            "eventName": event,
            "awsRegion": "us-east-1",
            "recipientAccountId": "123456789012",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/Admin/alice"},
            "readOnly": false
        });
        for (k, v) in extra.as_object().unwrap() {
            detail[k] = v.clone();
        }
        let body = json!({"version": "0", "id": "1", "detail-type": DETAIL_TYPE, "source": source,
            "account": "123456789012", "time": "2026-12-01T10:00:00Z", "region": "us-east-1",
            "resources": [], "detail": detail});
        match parse(&body.to_string()).unwrap() {
            Envelope::ApiCall(c) => index().classify(&c),
            Envelope::Other => Verdict::Ignore(Ignored::OtherEvent),
        }
    }

    fn act(ids: &[(Kind, &str)]) -> Verdict {
        Verdict::Act(ids.iter().map(|(k, n)| (*k, n.to_string())).collect())
    }

    #[test]
    fn managed_resources_are_found_by_name_and_arn() {
        let v = verdict(
            "aws.iam",
            "AttachRolePolicy",
            json!({"requestParameters": {"roleName": "mlspace-app-role", "policyArn": "arn:aws:iam::123456789012:policy/team/mlspace-app-policy"}}),
        );
        assert_eq!(
            v,
            act(&[
                (Kind::ManagedPolicy, "mlspace-app-policy"),
                (Kind::Role, "mlspace-app-role")
            ])
        );
        let v = verdict(
            "aws.iam",
            "DeleteInstanceProfile",
            json!({"requestParameters": {"instanceProfileName": "mlspace-app-role"}}),
        );
        assert_eq!(v, act(&[(Kind::Role, "mlspace-app-role")]));
        let v = verdict(
            "aws.iam",
            "CreateServiceLinkedRole",
            json!({"requestParameters": {"awsServiceName": "elasticmapreduce.amazonaws.com"}}),
        );
        assert_eq!(
            v,
            act(&[(Kind::ServiceLinkedRole, "AWSServiceRoleForEMRCleanup")])
        );
        let v = verdict(
            "aws.s3",
            "DeleteBucketPolicy",
            json!({"requestParameters": {"bucketName": "mlspace-data"}}),
        );
        assert_eq!(v, act(&[(Kind::Bucket, "mlspace-data")]));
        // By ARN alone (the record's resources).
        let v = verdict(
            "aws.dynamodb",
            "UpdateTable",
            json!({"requestParameters": {}, "resources": [{"ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/mlspace-users"}]}),
        );
        assert_eq!(v, act(&[(Kind::Table, "mlspace-users")]));
    }

    #[test]
    fn what_is_ignored_and_why() {
        let role = json!({"requestParameters": {"roleName": "mlspace-app-role"}});
        let mut read = role.clone();
        read["readOnly"] = json!(true);
        assert_eq!(
            verdict("aws.iam", "GetRole", read),
            Verdict::Ignore(Ignored::ReadOnly)
        );
        let mut failed = role.clone();
        failed["errorCode"] = json!("AccessDenied");
        assert_eq!(
            verdict("aws.iam", "TagRole", failed),
            Verdict::Ignore(Ignored::FailedCall)
        );
        let mut other = role.clone();
        other["recipientAccountId"] = json!("210987654321");
        assert_eq!(
            verdict("aws.iam", "TagRole", other),
            Verdict::Ignore(Ignored::OtherAccount)
        );
        let mut mine = role.clone();
        mine["userIdentity"] = json!({"type": "AssumedRole", "arn": ME});
        assert_eq!(
            verdict("aws.iam", "TagRole", mine),
            Verdict::Ignore(Ignored::OwnPrincipal)
        );
        // MLSpace attaching its own policy to a managed role.
        assert_eq!(
            verdict(
                "aws.iam",
                "AttachRolePolicy",
                json!({"requestParameters": {"roleName": "mlspace-app-role", "policyArn": "arn:aws:iam::123456789012:policy/MLSpace-app-denied-services"}})
            ),
            Verdict::Ignore(Ignored::IgnoredObject)
        );
        assert_eq!(
            verdict(
                "aws.iam",
                "CreateRole",
                json!({"requestParameters": {"roleName": "MLSpace-project-demo"}})
            ),
            Verdict::Ignore(Ignored::IgnoredObject)
        );
        assert_eq!(
            verdict(
                "aws.s3",
                "PutBucketVersioning",
                json!({"requestParameters": {"bucketName": "someone-elses"}})
            ),
            Verdict::Ignore(Ignored::Unmanaged)
        );
        assert_eq!(
            verdict("aws.ec2", "RunInstances", json!({})),
            Verdict::Ignore(Ignored::OtherEvent)
        );
        // No principal known (STS not asked yet): nothing is taken for the daemon's own.
        let call = ApiCall {
            source: Some(Source::Iam),
            account: "123456789012".into(),
            objects: vec![AwsObject::IamRole("mlspace-app-role".into())],
            ..ApiCall::default()
        };
        assert_eq!(
            EventIndex::new(&desired()).classify(&call),
            act(&[(Kind::Role, "mlspace-app-role")])
        );
    }

    #[test]
    fn a_key_is_found_by_the_arn_aws_gave_it() {
        use crate::kinds::role::diff::RoleObserved;
        let d = desired();
        let mut observed = Observed::default();
        observed.Role.insert(
            "mlspace-app-role".into(),
            RoleObserved {
                arn: "arn:aws:iam::123456789012:role/elsewhere/mlspace-app-role".into(),
                path: "/elsewhere/".into(),
                assume_role_policy: json!({}),
                description: None,
                max_session_duration: None,
                inline_policies: Default::default(),
                managed_policies: Default::default(),
                permissions_boundary: None,
                instance_profiles: Default::default(),
                tags: Default::default(),
            },
        );
        let index = EventIndex::new(&d).with_observed(&d, &observed);
        let call = ApiCall {
            source: Some(Source::Iam),
            account: "123456789012".into(),
            arns: vec!["arn:aws:iam::123456789012:role/elsewhere/mlspace-app-role".into()],
            ..ApiCall::default()
        };
        assert_eq!(
            index.classify(&call),
            act(&[(Kind::Role, "mlspace-app-role")])
        );
        // A key id is looked up as the key's ARN in the call's region and account.
        // A key is known by its aliases, and by id once AWS gave it one (the observed ARN,
        // in the call's region and account).
        let mut index = EventIndex::new(&d);
        let alias = ApiCall {
            source: Some(Source::Kms),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            objects: vec![AwsObject::KmsAlias("mlspace-key-old".into())],
            ..ApiCall::default()
        };
        assert_eq!(
            index.classify(&alias),
            act(&[(Kind::KmsKey, "mlspace-key")])
        );
        let by_id = ApiCall {
            objects: vec![AwsObject::KmsKey("1234abcd".into())],
            ..alias.clone()
        };
        assert_eq!(index.classify(&by_id), Verdict::Ignore(Ignored::Unmanaged));
        index.arns.insert(
            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd".into(),
            (Kind::KmsKey, "mlspace-key".into()),
        );
        assert_eq!(
            index.classify(&by_id),
            act(&[(Kind::KmsKey, "mlspace-key")])
        );
        // The same id in another region is another key.
        let elsewhere = ApiCall {
            region: "us-east-1".into(),
            ..by_id
        };
        assert_eq!(
            index.classify(&elsewhere),
            Verdict::Ignore(Ignored::Unmanaged)
        );
    }
}
