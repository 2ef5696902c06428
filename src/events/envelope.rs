//! The EventBridge envelope of a CloudTrail event, read from a queue message's body, and the
//! AWS objects the call names.
//!
//! The envelope (`version`, `id`, `detail-type`, `source`, `account`, `time`, `region`,
//! `resources`, `detail`) carries the CloudTrail record in `detail`: `eventSource`,
//! `eventName`, `awsRegion`, `recipientAccountId`, `userIdentity`, `readOnly`, `errorCode`,
//! `requestParameters`, `responseElements` and, for some services, `resources`. Only what
//! decides which resources the call touches is kept; the body is untrusted input and nothing
//! of it is echoed into errors.

use serde_json::{Map, Value};

use crate::kinds::AwsObject;

/// The `detail-type` EventBridge gives CloudTrail's records of API calls.
pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// The services whose calls can change managed resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// IAM (roles, policies, instance profiles, service-linked roles).
    Iam,
    /// S3 (buckets).
    S3,
    /// DynamoDB (tables).
    DynamoDb,
    /// KMS (keys and aliases).
    Kms,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 4] = [Source::Iam, Source::S3, Source::DynamoDb, Source::Kms];

    /// The envelope's `source` (`aws.iam`): also the metrics' `source` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Iam => "aws.iam",
            Source::S3 => "aws.s3",
            Source::DynamoDb => "aws.dynamodb",
            Source::Kms => "aws.kms",
        }
    }

    /// The CloudTrail record's `eventSource` (`iam.amazonaws.com`).
    pub fn event_source(self) -> &'static str {
        match self {
            Source::Iam => "iam.amazonaws.com",
            Source::S3 => "s3.amazonaws.com",
            Source::DynamoDb => "dynamodb.amazonaws.com",
            Source::Kms => "kms.amazonaws.com",
        }
    }

    /// The source an envelope names, when it is one of these.
    pub fn from_envelope(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Why a message is not an event the daemon can read; such a message is left in the queue
/// for its redrive policy.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("the body is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not an EventBridge envelope.
    #[error("not an EventBridge event: `{0}` is missing or not what EventBridge sends")]
    NotAnEnvelope(&'static str),
    /// An API call whose CloudTrail record lacks what every record has.
    #[error("a CloudTrail event without `detail.{0}`")]
    BadDetail(&'static str),
}

/// What a message held.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// An API call of one of the managed services.
    ApiCall(ApiCall),
    /// Another event (another detail type or service): it is about nothing managed.
    Other,
}

/// One API call, as CloudTrail recorded it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiCall {
    /// The event's id (EventBridge's), for logs.
    pub id: String,
    /// The service, when it is one of [`Source`] (always, for a parsed call).
    pub source: Option<Source>,
    /// The call (`AttachRolePolicy`).
    pub event_name: String,
    /// The account the call was made in (`recipientAccountId`, else the envelope's).
    pub account: String,
    /// The region it was recorded in (`awsRegion`, else the envelope's).
    pub region: String,
    /// Who made it: `userIdentity.arn` (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    pub principal: Option<String>,
    /// A read (`readOnly: true`): it changed nothing.
    pub read_only: bool,
    /// It failed (`errorCode` is set): it changed nothing.
    pub failed: bool,
    /// The objects it names by name: a role, a policy, both sides of an attachment, a
    /// bucket, a table, a key or an alias.
    pub objects: Vec<AwsObject>,
    /// The ARNs it names (of a policy, a table, a key, and the record's `resources`).
    pub arns: Vec<String>,
    /// The policy a role call attaches, detaches, puts or deletes (by name, managed or
    /// inline): an attachment the Environment ignores makes the whole call ignored.
    pub attachment: Option<String>,
}

/// Read a message body: an EventBridge envelope around a CloudTrail record.
pub fn parse(body: &str) -> Result<Envelope, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(ParseError::NotJson)?;
    let env = v
        .as_object()
        .ok_or(ParseError::NotAnEnvelope("the body as an object"))?;
    let detail_type = str_of(env, "detail-type").ok_or(ParseError::NotAnEnvelope("detail-type"))?;
    let source = str_of(env, "source").ok_or(ParseError::NotAnEnvelope("source"))?;
    let detail = env
        .get("detail")
        .and_then(Value::as_object)
        .ok_or(ParseError::NotAnEnvelope("detail"))?;
    if detail_type != DETAIL_TYPE {
        return Ok(Envelope::Other);
    }
    let Some(source) = Source::from_envelope(source) else {
        return Ok(Envelope::Other);
    };
    let event_name = str_of(detail, "eventName").ok_or(ParseError::BadDetail("eventName"))?;
    let account = str_of(detail, "recipientAccountId")
        .or_else(|| str_of(env, "account"))
        .ok_or(ParseError::BadDetail("recipientAccountId"))?;
    let region = str_of(detail, "awsRegion")
        .or_else(|| str_of(env, "region"))
        .ok_or(ParseError::BadDetail("awsRegion"))?;
    let empty = Map::new();
    let request = detail
        .get("requestParameters")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let response = detail
        .get("responseElements")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut call = ApiCall {
        id: str_of(env, "id").unwrap_or_default().to_string(),
        source: Some(source),
        event_name: event_name.to_string(),
        account: account.to_string(),
        region: region.to_string(),
        principal: detail
            .get("userIdentity")
            .and_then(|u| u.get("arn"))
            .and_then(Value::as_str)
            .map(str::to_string),
        read_only: detail.get("readOnly").and_then(Value::as_bool) == Some(true),
        failed: detail.get("errorCode").is_some_and(|c| !c.is_null()),
        ..ApiCall::default()
    };
    match source {
        Source::Iam => iam_objects(request, response, &mut call),
        Source::S3 => {
            if let Some(b) = str_of(request, "bucketName") {
                call.objects.push(AwsObject::Bucket(b.to_string()));
            }
        }
        Source::DynamoDb => {
            if let Some(t) = str_of(request, "tableName") {
                call.objects.push(AwsObject::Table(t.to_string()));
            }
            if let Some(arn) = str_of(request, "resourceArn") {
                if let Some(t) = arn_resource(arn, "table/") {
                    call.objects.push(AwsObject::Table(t.to_string()));
                }
                call.arns.push(arn.to_string());
            }
        }
        Source::Kms => kms_objects(request, response, &mut call),
    }
    // Both lists of resources: the CloudTrail record's (`[{"ARN": ...}]`, KMS and S3 fill
    // it) and the envelope's (plain ARNs).
    for r in detail
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(arn) = r.get("ARN").and_then(Value::as_str) {
            call.arns.push(arn.to_string());
        }
    }
    for r in env
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(arn) = r.as_str() {
            call.arns.push(arn.to_string());
        }
    }
    call.objects.sort();
    call.objects.dedup();
    call.arns.sort();
    call.arns.dedup();
    Ok(Envelope::ApiCall(call))
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// What follows `prefix` in an ARN's resource part, up to the next `/`
/// (`arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x`, `table/` → `t`).
fn arn_resource<'a>(arn: &'a str, prefix: &str) -> Option<&'a str> {
    let resource = arn.strip_prefix("arn:")?.splitn(5, ':').nth(4)?;
    let rest = resource.strip_prefix(prefix)?;
    Some(rest.split('/').next().unwrap_or(rest)).filter(|s| !s.is_empty())
}

/// `arn:PARTITION:iam::ACCOUNT:policy/[PATH/]NAME` → (account, name).
fn iam_policy_arn(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" {
        return None;
    }
    let path = parts[5].strip_prefix("policy/")?;
    let name = path.rsplit('/').next().filter(|n| !n.is_empty())?;
    Some((parts[4], name))
}

fn iam_objects(request: &Map<String, Value>, response: &Map<String, Value>, call: &mut ApiCall) {
    let role = str_of(request, "roleName");
    if let Some(r) = role {
        call.objects.push(AwsObject::IamRole(r.to_string()));
    }
    // CreateRole and CreateServiceLinkedRole answer with the role.
    if let Some(r) = response
        .get("role")
        .and_then(Value::as_object)
        .and_then(|r| str_of(r, "roleName"))
    {
        call.objects.push(AwsObject::IamRole(r.to_string()));
    }
    if let Some(arn) = str_of(request, "policyArn") {
        call.arns.push(arn.to_string());
        if let Some((account, name)) = iam_policy_arn(arn) {
            // AWS managed policies (account `aws`) are never managed here.
            if account != "aws" {
                call.objects.push(AwsObject::IamPolicy(name.to_string()));
            }
            if role.is_some() {
                call.attachment = Some(name.to_string());
            }
        }
    }
    // PutRolePolicy names an inline policy; CreatePolicy a managed one. User and group
    // policies are nothing the kinds manage.
    if let Some(p) = str_of(request, "policyName") {
        if role.is_some() {
            call.attachment = Some(p.to_string());
        } else if str_of(request, "userName").is_none() && str_of(request, "groupName").is_none() {
            call.objects.push(AwsObject::IamPolicy(p.to_string()));
        }
    }
    if let Some(arn) = response
        .get("policy")
        .and_then(Value::as_object)
        .and_then(|p| str_of(p, "arn"))
    {
        call.arns.push(arn.to_string());
    }
    if let Some(ip) = str_of(request, "instanceProfileName") {
        call.objects
            .push(AwsObject::IamInstanceProfile(ip.to_string()));
    }
    if let Some(s) = str_of(request, "awsServiceName") {
        call.objects
            .push(AwsObject::IamServiceLinkedRole(s.to_string()));
    }
}

/// A KMS key given as CloudTrail records it: a key id, a key ARN, an alias name
/// (`alias/NAME`) or an alias ARN.
fn kms_key_ref(s: &str, call: &mut ApiCall) {
    if let Some(alias) = s.strip_prefix("alias/") {
        call.objects.push(AwsObject::KmsAlias(alias.to_string()));
    } else if s.starts_with("arn:") {
        call.arns.push(s.to_string());
        if let Some(alias) = arn_resource_all(s, "alias/") {
            call.objects.push(AwsObject::KmsAlias(alias.to_string()));
        } else if let Some(id) = arn_resource(s, "key/") {
            call.objects.push(AwsObject::KmsKey(id.to_string()));
        }
    } else {
        call.objects.push(AwsObject::KmsKey(s.to_string()));
    }
}

/// Everything after `prefix` in an ARN's resource part (alias names may hold `/`).
fn arn_resource_all<'a>(arn: &'a str, prefix: &str) -> Option<&'a str> {
    let resource = arn.strip_prefix("arn:")?.splitn(5, ':').nth(4)?;
    resource.strip_prefix(prefix).filter(|s| !s.is_empty())
}

fn kms_objects(request: &Map<String, Value>, response: &Map<String, Value>, call: &mut ApiCall) {
    for key in ["keyId", "targetKeyId", "aliasName"] {
        if let Some(s) = str_of(request, key) {
            kms_key_ref(s, call);
        }
    }
    if let Some(meta) = response.get("keyMetadata").and_then(Value::as_object) {
        if let Some(arn) = str_of(meta, "arn") {
            call.arns.push(arn.to_string());
        }
        if let Some(id) = str_of(meta, "keyId") {
            call.objects.push(AwsObject::KmsKey(id.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An envelope as EventBridge delivers it to SQS (field order and shape of AWS's
    /// documentation examples).
    fn envelope(source: &str, detail: Value) -> String {
        json!({
            "version": "0",
            "id": "6f87d04b-9f74-4f04-a780-7acf4b0a9b38",
            "detail-type": DETAIL_TYPE,
            "source": source,
            "account": "123456789012",
            "time": "2026-12-01T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail
        })
        .to_string()
    }

    fn call(source: &str, detail: Value) -> ApiCall {
        match parse(&envelope(source, detail)).unwrap() {
            Envelope::ApiCall(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn iam(event: &str, request: Value) -> ApiCall {
        call(
            "aws.iam",
            json!({
                "eventVersion": "1.08",
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/Admin/alice"},
                "eventTime": "2026-12-01T10:00:00Z",
                "eventSource": "iam.amazonaws.com",
                "eventName": event,
                "awsRegion": "us-east-1",
                "requestParameters": request,
                "responseElements": null,
                "readOnly": false,
                "eventType": "AwsApiCall",
                "recipientAccountId": "123456789012"
            }),
        )
    }

    #[test]
    fn an_attachment_names_both_sides() {
        let c = iam(
            "AttachRolePolicy",
            json!({"roleName": "mlspace-app-role", "policyArn": "arn:aws:iam::123456789012:policy/team/mlspace-app-policy"}),
        );
        assert_eq!(c.source, Some(Source::Iam));
        assert_eq!(c.event_name, "AttachRolePolicy");
        assert_eq!(
            c.principal.as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/Admin/alice")
        );
        assert_eq!(
            c.objects,
            [
                AwsObject::IamRole("mlspace-app-role".into()),
                AwsObject::IamPolicy("mlspace-app-policy".into())
            ]
        );
        assert_eq!(c.attachment.as_deref(), Some("mlspace-app-policy"));
        assert!(!c.read_only && !c.failed);
        // An AWS managed policy is only the role's side.
        let c = iam(
            "DetachRolePolicy",
            json!({"roleName": "r", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        );
        assert_eq!(c.objects, [AwsObject::IamRole("r".into())]);
        assert_eq!(c.attachment.as_deref(), Some("ReadOnlyAccess"));
    }

    #[test]
    fn iam_calls_name_roles_policies_profiles_and_services() {
        let c = iam(
            "PutRolePolicy",
            json!({"roleName": "r", "policyName": "inline", "policyDocument": "{}"}),
        );
        assert_eq!(c.objects, [AwsObject::IamRole("r".into())]);
        assert_eq!(c.attachment.as_deref(), Some("inline"));
        let c = iam(
            "CreatePolicy",
            json!({"policyName": "p", "path": "/", "policyDocument": "{}"}),
        );
        assert_eq!(c.objects, [AwsObject::IamPolicy("p".into())]);
        assert_eq!(c.attachment, None);
        let c = iam(
            "PutUserPolicy",
            json!({"userName": "u", "policyName": "p", "policyDocument": "{}"}),
        );
        assert!(c.objects.is_empty());
        let c = iam(
            "RemoveRoleFromInstanceProfile",
            json!({"roleName": "r", "instanceProfileName": "r"}),
        );
        assert_eq!(
            c.objects,
            [
                AwsObject::IamRole("r".into()),
                AwsObject::IamInstanceProfile("r".into())
            ]
        );
        let c = call(
            "aws.iam",
            json!({
                "eventSource": "iam.amazonaws.com", "eventName": "CreateServiceLinkedRole",
                "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
                "requestParameters": {"awsServiceName": "elasticmapreduce.amazonaws.com"},
                "responseElements": {"role": {"roleName": "AWSServiceRoleForEMRCleanup", "arn": "arn:aws:iam::123456789012:role/aws-service-role/elasticmapreduce.amazonaws.com/AWSServiceRoleForEMRCleanup"}}
            }),
        );
        assert_eq!(
            c.objects,
            [
                AwsObject::IamRole("AWSServiceRoleForEMRCleanup".into()),
                AwsObject::IamServiceLinkedRole("elasticmapreduce.amazonaws.com".into())
            ]
        );
        assert_eq!(c.principal, None);
    }

    #[test]
    fn buckets_tables_keys_and_aliases() {
        let c = call(
            "aws.s3",
            json!({
                "eventSource": "s3.amazonaws.com", "eventName": "PutBucketVersioning",
                "awsRegion": "eu-west-1", "recipientAccountId": "123456789012",
                "requestParameters": {"bucketName": "mlspace-data", "Host": "mlspace-data.s3.eu-west-1.amazonaws.com", "versioning": ""},
                "resources": [{"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::mlspace-data"}]
            }),
        );
        assert_eq!(c.objects, [AwsObject::Bucket("mlspace-data".into())]);
        assert_eq!(c.arns, ["arn:aws:s3:::mlspace-data"]);
        assert_eq!(c.region, "eu-west-1");
        let c = call(
            "aws.dynamodb",
            json!({
                "eventSource": "dynamodb.amazonaws.com", "eventName": "TagResource",
                "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
                "requestParameters": {"resourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/mlspace-users", "tags": []}
            }),
        );
        assert_eq!(c.objects, [AwsObject::Table("mlspace-users".into())]);
        let c = call(
            "aws.kms",
            json!({
                "eventSource": "kms.amazonaws.com", "eventName": "UpdateAlias",
                "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
                "requestParameters": {"aliasName": "alias/mlspace-data", "targetKeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"},
                "resources": [{"ARN": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}]
            }),
        );
        assert_eq!(
            c.objects,
            [
                AwsObject::KmsKey("1234abcd-12ab-34cd-56ef-1234567890ab".into()),
                AwsObject::KmsAlias("mlspace-data".into())
            ]
        );
        let c = call(
            "aws.kms",
            json!({
                "eventSource": "kms.amazonaws.com", "eventName": "ScheduleKeyDeletion",
                "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
                "requestParameters": {"keyId": "arn:aws:kms:us-east-1:123456789012:alias/team/key", "pendingWindowInDays": 7}
            }),
        );
        assert_eq!(c.objects, [AwsObject::KmsAlias("team/key".into())]);
    }

    #[test]
    fn reads_failures_and_other_events() {
        let mut d = json!({
            "eventSource": "iam.amazonaws.com", "eventName": "GetRole",
            "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
            "requestParameters": {"roleName": "r"}, "readOnly": true
        });
        assert!(call("aws.iam", d.clone()).read_only);
        d["readOnly"] = json!(false);
        d["errorCode"] = json!("AccessDenied");
        assert!(call("aws.iam", d.clone()).failed);
        // Another detail type, another service: parsed, about nothing managed.
        let other = json!({"detail-type": "AWS Console Sign In via CloudTrail", "source": "aws.signin", "detail": {}});
        assert_eq!(parse(&other.to_string()).unwrap(), Envelope::Other);
        assert_eq!(
            parse(&envelope("aws.ec2", json!({"eventName": "RunInstances"}))).unwrap(),
            Envelope::Other
        );
        // The account and region fall back to the envelope's.
        let c = call(
            "aws.s3",
            json!({"eventName": "DeleteBucket", "requestParameters": {"bucketName": "b"}}),
        );
        assert_eq!(
            (c.account.as_str(), c.region.as_str()),
            ("123456789012", "us-east-1")
        );
    }

    #[test]
    fn unparsable_bodies_say_why_without_echoing_them() {
        for (body, want) in [
            ("not json at all", "not JSON"),
            ("[1, 2]", "the body as an object"),
            ("{\"source\": \"aws.iam\", \"detail\": {}}", "detail-type"),
            (
                "{\"detail-type\": \"AWS API Call via CloudTrail\", \"source\": \"aws.iam\", \"detail\": \"x\"}",
                "`detail`",
            ),
            (
                "{\"detail-type\": \"AWS API Call via CloudTrail\", \"source\": \"aws.iam\", \"detail\": {}}",
                "eventName",
            ),
        ] {
            let e = parse(body).unwrap_err().to_string();
            assert!(e.contains(want), "{body}: {e}");
            assert!(!e.contains("aws.iam"), "{e}");
        }
    }
}
