//! Fidelity: `render` of the bundled `manifests/` against MLSpace v1.6.10's own CloudFormation.
//!
//! `tests/fixtures/reference/mlspace-cdk-v1.6.10.json` lists every IAM role, managed policy,
//! instance profile, S3 bucket and bucket policy, DynamoDB table and KMS key (with its alias)
//! of MLSpace v1.6.10's default CloudFormation templates, intrinsics resolved for account
//! 123456789012 in us-east-1. What CloudFormation assigns at creation (generated names, the
//! key id, the VPC's subnets and security group) is left as a marker (`<Ref:stack/id>`,
//! `<GetAtt:stack/id.Attr>`), described under `markers`. It is what MLSpace's code runs with,
//! and `manifests/` follows it (docs/mlspace-choices.md).
//!
//! How the comparison works:
//!
//! - Each reference resource is mapped to a rendered one by kind and name. Names
//!   CloudFormation generates, and markers, are mapped through [`GENERATED`]: a name the
//!   manifests chose (docs/mlspace-choices.md, "Names we made up") or an Environment param.
//! - Both sides are brought into one model, field by field, with the defaults AWS applies
//!   to a new resource filled in (a bucket without a public access block setting gets S3's
//!   default, all four flags on; a table without SSE gets an AWS owned key; and so on). A
//!   reference property the model has no field for is reported, never skipped.
//! - Policy documents (trust, managed, inline, bucket and key policies) are compared as sets
//!   of single grants (effect, principal, action, resource, condition), after
//!   `mlspace_policy::normalize`; `Sid` is ignored. Statements split, merged or reordered are
//!   therefore equal; a grant more or less is a difference.
//!
//! Every difference is printed (resource, field, reference, ours). The test fails on any
//! difference not in [`ALLOWED`], and on an [`ALLOWED`] entry that matches nothing.

use std::collections::{BTreeMap, BTreeSet};

use mlspace_policy::normalize;
use serde_json::{json, Map, Value};

use crate::support::cli::render_json;
use crate::support::{manifests_dir, read_json};

/// The reference, relative to the repository root.
const REFERENCE: &str = "tests/fixtures/reference/mlspace-cdk-v1.6.10.json";

/// Annotation that keeps a resource (forgotten, not deleted) when it leaves the manifests:
/// the counterpart of CloudFormation's `DeletionPolicy: Retain`.
const DELETION_POLICY_ANNOTATION: &str = "mlspace-gitops/deletion-policy";

// ---------------------------------------------------------------------------------------
// What the reference leaves to CloudFormation, and where the manifests name it.
// ---------------------------------------------------------------------------------------

/// Where the manifests get a value CloudFormation generates.
enum Source {
    /// A name the manifests chose (docs/mlspace-choices.md, "Names we made up").
    Literal(&'static str),
    /// The Environment's `spec.params` entry of this name.
    Param(&'static str),
}

/// Construct path of a reference resource (or marker) whose name or id CloudFormation
/// generates → where the manifests have it.
const GENERATED: &[(&str, Source)] = &[
    (
        "mlspace-iam/mlspace-app-policy/Resource",
        Source::Literal("mlspace-app-policy"),
    ),
    (
        "mlspace-iam/mlspace-notebook-policy/Resource",
        Source::Literal("mlspace-notebook-policy"),
    ),
    (
        "mlspace-iam/mlspace-system-policy/Resource",
        Source::Literal("mlspace-system-policy"),
    ),
    (
        "mlspace-iam/mlspace-website-read-policy/Resource",
        Source::Literal("mlspace-website-read-policy"),
    ),
    // The account-wide API Gateway CloudWatch role of the IAM stack (ENABLE_ACCESS_LOGGING).
    (
        "mlspace-iam/mlspace-cwl-role/Resource",
        Source::Literal("mlspace-apigw-cloudwatch-role"),
    ),
    // The CloudWatch role the REST API construct creates for itself (cloudWatchRole: true).
    (
        "mlspace-web-tier/mlspace-api/CloudWatchRole/Resource",
        Source::Param("MLSPACE_API_CLOUDWATCH_ROLE_NAME"),
    ),
    // The MLSpace KMS key: the KmsKey of that name (its id is KMS's to choose; the policies
    // name it by reference).
    (
        "mlspace-kms/mlspace-kms-key/Resource",
        Source::Literal("mlspace-key"),
    ),
    // The VPC: only its default security group (`GetAtt ....DefaultSecurityGroup`) is used.
    (
        "mlspace-vpc/MLSpace-VPC/Resource",
        Source::Param("MLSPACE_VPC_SECURITY_GROUP"),
    ),
    (
        "mlspace-vpc/MLSpace-VPC/MLSpace-PrivateSubnet1/Subnet",
        Source::Param("MLSPACE_PRIVATE_SUBNET_1"),
    ),
    (
        "mlspace-vpc/MLSpace-VPC/MLSpace-PrivateSubnet2/Subnet",
        Source::Param("MLSPACE_PRIVATE_SUBNET_2"),
    ),
    (
        "mlspace-vpc/MLSpace-VPC/MLSpace-PrivateSubnet3/Subnet",
        Source::Param("MLSPACE_PRIVATE_SUBNET_3"),
    ),
];

// ---------------------------------------------------------------------------------------
// The differences that are meant to stay (docs/mlspace-choices.md).
// ---------------------------------------------------------------------------------------

/// A difference that stays. `resource` and `field` are globs (`*` any run of characters)
/// on [`Difference::resource`] and [`Difference::field`]; `text`, when not empty, must occur
/// in the difference's reference or ours side.
struct Allowed {
    resource: &'static str,
    field: &'static str,
    text: &'static str,
    why: &'static str,
}

const ALLOWED: &[Allowed] = &[
    // Choice that stays (docs/mlspace-choices.md, "Tags"): the Environment's tags on every
    // managed policy (one difference per tag). CloudFormation cannot tag managed policies; ownership needs the tags.
    Allowed {
        resource: "ManagedPolicy *",
        field: "tags.*",
        text: "",
        why: "CloudFormation cannot tag managed policies; the Environment's tags mark ownership",
    },
    // Choice that stays (docs/mlspace-choices.md, "Roles"): the EMR cleanup service-linked
    // role, which the deployment guide (seed 000, "EMR Roles") asks to exist.
    Allowed {
        resource: "ServiceLinkedRole AWSServiceRoleForEMRCleanup",
        field: "(resource)",
        text: "",
        why: "the deployment guide asks for the EMR cleanup service-linked role",
    },
    // Choice that stays (docs/mlspace-choices.md, "Buckets"): log delivery to the
    // access-logs bucket is granted by a bucket policy statement instead of the
    // LogDeliveryWrite canned ACL, which the format cannot express.
    Allowed {
        resource: "Bucket mlspace-access-logs-*",
        field: "policy",
        text: "logging.s3.amazonaws.com",
        why: "log delivery granted by bucket policy instead of the LogDeliveryWrite ACL",
    },
    Allowed {
        resource: "Bucket mlspace-access-logs-*",
        field: "accessControl",
        text: "LogDeliveryWrite",
        why: "log delivery granted by bucket policy instead of the LogDeliveryWrite ACL",
    },
    // Not expressible (docs/mlspace-choices.md, "Buckets"): the format has no canned ACL.
    // BucketOwnerFullControl on a bucket grants the owner alone, as a new bucket does anyway.
    Allowed {
        resource: "Bucket mlspace-website-*",
        field: "accessControl",
        text: "BucketOwnerFullControl",
        why: "no canned ACL field; this one grants only the owner, like a new bucket",
    },
    // Not expressible (docs/mlspace-choices.md, "Buckets"): tags CDK's BucketDeployment
    // helper writes to mark the buckets it fills; the helper itself is excluded from the
    // reference (CDK-internal) and nothing in MLSpace reads the tags.
    Allowed {
        resource: "Bucket *",
        field: "tags.aws-cdk:cr-owned:*",
        text: "",
        why: "ownership marker of CDK's (excluded) BucketDeployment helper",
    },
    // Documented example (docs/mlspace-choices.md, "Buckets"): the notifier Lambda belongs to
    // the MLSpace application, which deploys it after this footprint; a notification to a
    // function that does not exist yet would fail. docs/examples/data-bucket-notifications.yaml.
    Allowed {
        resource: "Bucket mlspace-data-*",
        field: "notifications",
        text: "mls-lambda-s3-notifier",
        why: "the notifier Lambda belongs to the application: a documented example",
    },
    // Choice (docs/mlspace-choices.md, "KMS key"): an alias is removed when its key is
    // deleted, kept when its key is released; CloudFormation's alias has no Retain of its own
    // while its key has.
    Allowed {
        resource: "KmsAlias alias/mlspace-key",
        field: "deletionPolicy",
        text: "Retain",
        why: "the alias follows its key: released with the retained key",
    },
];

// ---------------------------------------------------------------------------------------
// The model both sides are brought into.
// ---------------------------------------------------------------------------------------

/// Field name → value of one resource.
type Fields = BTreeMap<String, Value>;
/// (kind, name) → fields.
type Model = BTreeMap<(String, String), Fields>;

/// Fields holding a policy document, compared grant by grant.
fn is_policy_field(field: &str) -> bool {
    matches!(
        field,
        "assumeRolePolicy" | "document" | "policy" | "keyPolicy"
    ) || field.starts_with("inlinePolicies/")
}

/// One difference between the reference and the rendered manifests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Difference {
    /// `Kind name`, e.g. `ManagedPolicy mlspace-app-policy`.
    resource: String,
    /// The model field, or `(resource)` when the whole resource is on one side only.
    field: String,
    reference: String,
    ours: String,
}

/// The rendered Environment: what placeholders resolve to.
struct Env {
    partition: String,
    region: String,
    account: String,
    params: BTreeMap<String, String>,
}

impl Env {
    fn from_rendered(rendered: &Value) -> Env {
        let e = &rendered["environment"];
        let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
        let params = e["params"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Env {
            partition: text("partition"),
            region: text("region"),
            account: text("account"),
            params,
        }
    }

    fn iam_arn(&self, what: &str) -> String {
        format!("arn:{}:iam::{}:{what}", self.partition, self.account)
    }

    /// The manifests' name for a resource CloudFormation names, by construct path.
    fn generated(&self, construct_path: &str) -> Option<String> {
        let (_, source) = GENERATED.iter().find(|(p, _)| *p == construct_path)?;
        match source {
            Source::Literal(name) => Some((*name).to_string()),
            Source::Param(param) => self.params.get(*param).cloned(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Small JSON helpers.
// ---------------------------------------------------------------------------------------

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Removes `key` from `props`, `Null` when absent.
fn take(props: &mut Map<String, Value>, key: &str) -> Value {
    props.remove(key).unwrap_or(Value::Null)
}

fn or(v: Value, default: Value) -> Value {
    if v.is_null() {
        default
    } else {
        v
    }
}

/// CloudFormation `Tags` (`[{Key, Value}]`) as a map.
fn cfn_tags(tags: Value) -> Value {
    let mut out = Map::new();
    for t in tags.as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (t["Key"].as_str(), t["Value"].as_str()) {
            out.insert(k.to_string(), json!(v));
        }
    }
    Value::Object(out)
}

/// A list of strings, sorted (an unordered set).
fn sorted_strings(v: &Value) -> Value {
    let mut items: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    items.sort();
    json!(items)
}

/// An empty string means "none" in CloudFormation's `Description`.
fn description(v: Value) -> Value {
    match v.as_str() {
        Some("") => Value::Null,
        _ => v,
    }
}

/// Replaces every marker in the strings (and keys) of `v`.
fn replace_markers(v: &mut Value, markers: &[(String, String)]) {
    let sub = |s: &str| -> String {
        let mut out = s.to_string();
        for (marker, value) in markers {
            if out.contains(marker.as_str()) {
                out = out.replace(marker.as_str(), value);
            }
        }
        out
    };
    match v {
        Value::String(s) => *s = sub(s),
        Value::Array(items) => items.iter_mut().for_each(|i| replace_markers(i, markers)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut val) in old {
                replace_markers(&mut val, markers);
                map.insert(sub(&k), val);
            }
        }
        _ => {}
    }
}

/// What a marker stands for in the manifests, when [`GENERATED`] knows it.
fn resolve_marker(marker: &str, info: &Value, env: &Env) -> Option<String> {
    let ty = info["type"].as_str()?;
    let name = env.generated(info["constructPath"].as_str()?)?;
    let inner = marker.strip_prefix('<')?.strip_suffix('>')?;
    let (how, target) = inner.split_once(':')?;
    let attr = target.rsplit_once('.').map(|(_, a)| a);
    match (how, ty, attr) {
        ("Ref", "AWS::IAM::ManagedPolicy", _) => Some(env.iam_arn(&format!("policy/{name}"))),
        ("GetAtt", "AWS::IAM::Role", Some("Arn")) => Some(env.iam_arn(&format!("role/{name}"))),
        ("Ref", "AWS::KMS::Key", _) => Some(key_id_ref(&name)),
        ("Ref", "AWS::IAM::Role" | "AWS::EC2::Subnet", _) => Some(name),
        ("GetAtt", "AWS::EC2::VPC", Some("DefaultSecurityGroup")) => Some(name),
        _ => None,
    }
}

/// How the model writes the id of the KmsKey `name`, which KMS assigns at creation: the
/// reference the manifests would use for it. A key's ARN (`{ref:KmsKey/NAME.arn}` in the
/// manifests, `arn:...:key/<Ref:...>` in the reference) is brought to the ARN built from it.
fn key_id_ref(name: &str) -> String {
    format!("{{ref:KmsKey/{name}.id}}")
}

/// `{ref:KmsKey/NAME.arn}` in every string of `v` → `arn:PARTITION:kms:REGION:ACCOUNT:key/`
/// followed by [`key_id_ref`], the form the reference's markers resolve to.
fn expand_key_arns(v: &mut Value, env: &Env) {
    match v {
        Value::String(text) => {
            let mut from = 0;
            while let Some(found) = text[from..].find("{ref:KmsKey/") {
                let start = from + found;
                let Some(len) = text[start..].find('}') else {
                    break;
                };
                let inner = &text[start + "{ref:KmsKey/".len()..start + len];
                let arn = match inner.strip_suffix(".arn") {
                    Some(name) => format!(
                        "arn:{}:kms:{}:{}:key/{}",
                        env.partition,
                        env.region,
                        env.account,
                        key_id_ref(name)
                    ),
                    None => text[start..=start + len].to_string(),
                };
                text.replace_range(start..=start + len, &arn);
                from = start + arn.len();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| expand_key_arns(i, env)),
        Value::Object(map) => map.values_mut().for_each(|i| expand_key_arns(i, env)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Policy documents as sets of single grants.
// ---------------------------------------------------------------------------------------

/// One grant: a statement with one principal, one action and one resource. `NotAction`,
/// `NotResource` and `NotPrincipal` sets are kept whole (they do not split).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    effect: String,
    /// `{}`, `{"Principal":{TYPE:ID}}` or `{"NotPrincipal":{...}}`, as JSON text.
    principal: String,
    /// The normalized `Condition` as JSON text, `{}` for none.
    condition: String,
    /// `Action` or `NotAction`.
    action_key: String,
    /// One action, or the whole `NotAction` set as JSON text.
    action: String,
    /// `Resource`, `NotResource`, or empty (trust policies).
    resource_key: String,
    /// One resource, or the whole `NotResource` set as JSON text.
    resource: String,
}

fn statements(doc: &Value) -> Vec<Value> {
    match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| compact(i), str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        Value::Null => Vec::new(),
        other => vec![compact(other)],
    }
}

/// The grants of a document (after `mlspace_policy::normalize`, without `Sid`).
fn grants(doc: &Value) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for stmt in statements(doc) {
        let normal = normalize(&json!({ "Statement": [stmt] }));
        let s = &normal["Statement"][0];
        let effect = s["Effect"].as_str().unwrap_or_default().to_string();
        let condition = compact(s.get("Condition").unwrap_or(&json!({})));

        let principals: Vec<String> = if let Some(p) = s.get("Principal") {
            match p.as_object() {
                Some(types) => types
                    .iter()
                    .flat_map(|(kind, ids)| {
                        strings(ids)
                            .into_iter()
                            .map(move |id| compact(&json!({"Principal": {kind.clone(): id}})))
                    })
                    .collect(),
                None => vec![compact(&json!({ "Principal": p }))],
            }
        } else if let Some(p) = s.get("NotPrincipal") {
            vec![compact(&json!({ "NotPrincipal": p }))]
        } else {
            vec!["{}".to_string()]
        };
        let actions: Vec<(String, String)> = if let Some(a) = s.get("Action") {
            strings(a)
                .into_iter()
                .map(|a| ("Action".to_string(), a))
                .collect()
        } else if let Some(a) = s.get("NotAction") {
            vec![("NotAction".to_string(), compact(a))]
        } else {
            vec![(String::new(), String::new())]
        };
        let resources: Vec<(String, String)> = if let Some(r) = s.get("Resource") {
            strings(r)
                .into_iter()
                .map(|r| ("Resource".to_string(), r))
                .collect()
        } else if let Some(r) = s.get("NotResource") {
            vec![("NotResource".to_string(), compact(r))]
        } else {
            vec![(String::new(), String::new())]
        };
        for principal in &principals {
            for (action_key, action) in &actions {
                for (resource_key, resource) in &resources {
                    out.insert(Grant {
                        effect: effect.clone(),
                        principal: principal.clone(),
                        condition: condition.clone(),
                        action_key: action_key.clone(),
                        action: action.clone(),
                        resource_key: resource_key.clone(),
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Grants put back together into as few statements as a reader needs: the actions of one
/// (effect, principal, condition, resource) together, then the resources of one action set.
fn regroup<'a>(grants: impl IntoIterator<Item = &'a Grant>) -> Vec<Value> {
    type Head = (String, String, String, String);
    let mut by_resource: BTreeMap<(Head, String, String), BTreeSet<String>> = BTreeMap::new();
    for g in grants {
        let head = (
            g.effect.clone(),
            g.principal.clone(),
            g.condition.clone(),
            g.action_key.clone(),
        );
        by_resource
            .entry((head, g.resource_key.clone(), g.resource.clone()))
            .or_default()
            .insert(g.action.clone());
    }
    let mut by_actions: BTreeMap<(Head, BTreeSet<String>, String), Vec<String>> = BTreeMap::new();
    for ((head, resource_key, resource), actions) in by_resource {
        by_actions
            .entry((head, actions, resource_key))
            .or_default()
            .push(resource);
    }
    by_actions
        .into_iter()
        .map(
            |(((effect, principal, condition, action_key), actions, resource_key), resources)| {
                let mut stmt = Map::new();
                stmt.insert("Effect".into(), json!(effect));
                if let Ok(Value::Object(p)) = serde_json::from_str::<Value>(&principal) {
                    stmt.extend(p);
                }
                let list = |key: &str, items: Vec<String>| -> Value {
                    if key.starts_with("Not") {
                        serde_json::from_str(&items[0]).unwrap_or(Value::Null)
                    } else {
                        json!(items)
                    }
                };
                if !action_key.is_empty() {
                    let actions: Vec<String> = actions.into_iter().collect();
                    stmt.insert(action_key.clone(), list(&action_key, actions));
                }
                if !resource_key.is_empty() {
                    stmt.insert(resource_key.clone(), list(&resource_key, resources));
                }
                if condition != "{}" {
                    stmt.insert(
                        "Condition".into(),
                        serde_json::from_str(&condition).unwrap_or(Value::Null),
                    );
                }
                Value::Object(stmt)
            },
        )
        .collect()
}

/// The differences between two policy documents: `Version`, then each grant on one side
/// only (regrouped into statements).
fn policy_differences(
    resource: &str,
    field: &str,
    reference: &Value,
    ours: &Value,
) -> Vec<Difference> {
    let diff = |field: String, reference: String, ours: String| Difference {
        resource: resource.to_string(),
        field,
        reference,
        ours,
    };
    match (reference.is_null(), ours.is_null()) {
        (true, true) => return Vec::new(),
        (false, true) | (true, false) => {
            let side = |d: &Value| {
                if d.is_null() {
                    "none".to_string()
                } else {
                    compact(d)
                }
            };
            return vec![diff(field.to_string(), side(reference), side(ours))];
        }
        (false, false) => {}
    }
    let mut out = Vec::new();
    if reference["Version"] != ours["Version"] {
        out.push(diff(
            format!("{field}.Version"),
            compact(&reference["Version"]),
            compact(&ours["Version"]),
        ));
    }
    let (r, o) = (grants(reference), grants(ours));
    for stmt in regroup(r.difference(&o)) {
        out.push(diff(field.to_string(), compact(&stmt), "-".into()));
    }
    for stmt in regroup(o.difference(&r)) {
        out.push(diff(field.to_string(), "-".into(), compact(&stmt)));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The reference in the model.
// ---------------------------------------------------------------------------------------

/// S3's settings for a new bucket: all four public access block flags on.
fn default_public_access_block() -> Value {
    json!({"blockPublicAcls": true, "ignorePublicAcls": true, "blockPublicPolicy": true, "restrictPublicBuckets": true})
}

fn reference_model(reference: &Value, env: &Env) -> Model {
    let markers: Vec<(String, String)> = reference["markers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(m, info)| resolve_marker(m, info, env).map(|v| (m.clone(), v)))
        .collect();
    let mut model = Model::new();
    let mut bucket_policies = Vec::new();
    for r in reference["resources"].as_array().into_iter().flatten() {
        let mut r = r.clone();
        replace_markers(&mut r, &markers);
        let ty = r["type"].as_str().unwrap_or_default().to_string();
        let construct = r["constructPath"].as_str().unwrap_or_default().to_string();
        let name = r["name"]
            .as_str()
            .map(str::to_string)
            .or_else(|| env.generated(&construct))
            .unwrap_or_else(|| format!("<generated:{construct}>"));
        let deletion = or(r["deletionPolicy"].clone(), json!("Delete"));
        let mut p = r["properties"].as_object().cloned().unwrap_or_default();
        let mut f = Fields::new();
        let kind = match ty.as_str() {
            "AWS::IAM::Role" => {
                take(&mut p, "RoleName");
                f.insert(
                    "assumeRolePolicy".into(),
                    take(&mut p, "AssumeRolePolicyDocument"),
                );
                f.insert(
                    "managedPolicies".into(),
                    sorted_strings(&take(&mut p, "ManagedPolicyArns")),
                );
                for inline in take(&mut p, "Policies").as_array().into_iter().flatten() {
                    let n = inline["PolicyName"].as_str().unwrap_or_default();
                    f.insert(
                        format!("inlinePolicies/{n}"),
                        inline["PolicyDocument"].clone(),
                    );
                }
                f.insert(
                    "permissionsBoundary".into(),
                    take(&mut p, "PermissionsBoundary"),
                );
                f.insert("path".into(), or(take(&mut p, "Path"), json!("/")));
                f.insert(
                    "description".into(),
                    description(take(&mut p, "Description")),
                );
                f.insert(
                    "maxSessionDuration".into(),
                    or(take(&mut p, "MaxSessionDuration"), json!(3600)),
                );
                f.insert("tags".into(), cfn_tags(take(&mut p, "Tags")));
                "Role"
            }
            "AWS::IAM::ManagedPolicy" => {
                take(&mut p, "ManagedPolicyName");
                f.insert("document".into(), take(&mut p, "PolicyDocument"));
                f.insert("path".into(), or(take(&mut p, "Path"), json!("/")));
                f.insert(
                    "description".into(),
                    description(take(&mut p, "Description")),
                );
                // CloudFormation has no Tags property for managed policies.
                f.insert("tags".into(), json!({}));
                "ManagedPolicy"
            }
            "AWS::IAM::InstanceProfile" => {
                take(&mut p, "InstanceProfileName");
                f.insert("roles".into(), sorted_strings(&take(&mut p, "Roles")));
                f.insert("path".into(), or(take(&mut p, "Path"), json!("/")));
                "InstanceProfile"
            }
            "AWS::S3::Bucket" => {
                take(&mut p, "BucketName");
                reference_bucket(&mut p, &mut f);
                "Bucket"
            }
            "AWS::S3::BucketPolicy" => {
                let bucket = take(&mut p, "Bucket")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let doc = take(&mut p, "PolicyDocument");
                bucket_policies.push((bucket, doc, p));
                continue;
            }
            "AWS::DynamoDB::Table" => {
                take(&mut p, "TableName");
                reference_table(&mut p, &mut f);
                "Table"
            }
            "AWS::KMS::Key" => {
                f.insert(
                    "description".into(),
                    description(take(&mut p, "Description")),
                );
                f.insert(
                    "enableKeyRotation".into(),
                    or(take(&mut p, "EnableKeyRotation"), json!(false)),
                );
                f.insert("keyPolicy".into(), take(&mut p, "KeyPolicy"));
                f.insert("tags".into(), cfn_tags(take(&mut p, "Tags")));
                "KmsKey"
            }
            "AWS::KMS::Alias" => {
                take(&mut p, "AliasName");
                f.insert("targetKeyId".into(), take(&mut p, "TargetKeyId"));
                "KmsAlias"
            }
            other => other,
        }
        .to_string();
        f.insert("deletionPolicy".into(), deletion);
        // Whatever the model has no field for is reported, never dropped.
        for (k, v) in p {
            f.insert(format!("{k} (no manifest field)"), v);
        }
        model.insert((kind, name), f);
    }
    // Bucket policies are a field of their bucket; so are the notifications CDK configures
    // through a custom resource (`related`).
    for ((_, name), f) in model.iter_mut().filter(|((k, _), _)| k == "Bucket") {
        f.insert("policy".into(), Value::Null);
        f.insert("notifications".into(), Value::Null);
        for (bucket, doc, rest) in &bucket_policies {
            if bucket == name {
                f.insert("policy".into(), doc.clone());
                for (k, v) in rest {
                    f.insert(format!("BucketPolicy {k} (no manifest field)"), v.clone());
                }
            }
        }
        for rel in reference["related"].as_array().into_iter().flatten() {
            let props = &rel["properties"];
            if rel["type"] == "Custom::S3BucketNotifications"
                && props["BucketName"] == name.as_str()
            {
                f.insert(
                    "notifications".into(),
                    props["NotificationConfiguration"].clone(),
                );
            }
        }
    }
    model
}

fn reference_bucket(p: &mut Map<String, Value>, f: &mut Fields) {
    let sse = take(p, "BucketEncryption");
    let rule = &sse["ServerSideEncryptionConfiguration"][0];
    let by_default = &rule["ServerSideEncryptionByDefault"];
    let mut encryption = Map::new();
    encryption.insert(
        "sseAlgorithm".into(),
        or(by_default["SSEAlgorithm"].clone(), json!("AES256")),
    );
    if let Some(key) = by_default["KMSMasterKeyID"].as_str() {
        encryption.insert("kmsKeyId".into(), json!(key));
    }
    if rule["BucketKeyEnabled"] == json!(true) {
        encryption.insert("bucketKeyEnabled".into(), json!(true));
    }
    f.insert("encryption".into(), Value::Object(encryption));
    f.insert(
        "versioning".into(),
        json!(take(p, "VersioningConfiguration")["Status"] == "Enabled"),
    );
    let pab = take(p, "PublicAccessBlockConfiguration");
    f.insert(
        "publicAccessBlock".into(),
        if pab.is_null() {
            default_public_access_block()
        } else {
            json!({
                "blockPublicAcls": pab["BlockPublicAcls"] == json!(true),
                "ignorePublicAcls": pab["IgnorePublicAcls"] == json!(true),
                "blockPublicPolicy": pab["BlockPublicPolicy"] == json!(true),
                "restrictPublicBuckets": pab["RestrictPublicBuckets"] == json!(true),
            })
        },
    );
    let logging = take(p, "LoggingConfiguration");
    f.insert(
        "logging".into(),
        if logging.is_null() {
            Value::Null
        } else {
            json!({
                "targetBucket": logging["DestinationBucketName"],
                "targetPrefix": or(logging["LogFilePrefix"].clone(), json!("")),
            })
        },
    );
    let cors: Vec<Value> = take(p, "CorsConfiguration")["CorsRules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            cors_rule(
                &r["Id"],
                &r["AllowedMethods"],
                &r["AllowedOrigins"],
                &r["AllowedHeaders"],
                &r["ExposedHeaders"],
                &r["MaxAge"],
            )
        })
        .collect();
    f.insert("cors".into(), json!(cors));
    let lifecycle: Vec<Value> = take(p, "LifecycleConfiguration")["Rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let transitions: Vec<Value> = r["Transitions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| json!({"days": t["TransitionInDays"], "storageClass": t["StorageClass"]}))
                .collect();
            lifecycle_rule(json!({
                "id": r["Id"],
                "enabled": r["Status"] == "Enabled",
                "prefix": or(r["Prefix"].clone(), json!("")),
                "expirationDays": r["ExpirationInDays"],
                "noncurrentVersionExpirationDays": or(
                    r["NoncurrentVersionExpiration"]["NoncurrentDays"].clone(),
                    r["NoncurrentVersionExpirationInDays"].clone(),
                ),
                "abortIncompleteMultipartUploadDays": r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"],
                "transitions": transitions,
            }))
        })
        .collect();
    f.insert("lifecycleRules".into(), json!(lifecycle));
    f.insert(
        "ownership".into(),
        or(
            take(p, "OwnershipControls")["Rules"][0]["ObjectOwnership"].clone(),
            json!("BucketOwnerEnforced"),
        ),
    );
    f.insert("tags".into(), cfn_tags(take(p, "Tags")));
    // A CloudFormation bucket is deleted only when empty: forceDestroy off.
    f.insert("forceDestroy".into(), json!(false));
    f.insert(
        "accessControl".into(),
        or(take(p, "AccessControl"), json!("Private")),
    );
    f.insert("website".into(), take(p, "WebsiteConfiguration"));
}

/// A rendered `website` in CloudFormation's `WebsiteConfiguration` shape (absent or `{}`:
/// none).
fn rendered_website(w: &Value) -> Value {
    let mut out = Map::new();
    let put = |out: &mut Map<String, Value>, k: &str, v: &Value| {
        if !v.is_null() {
            out.insert(k.into(), v.clone());
        }
    };
    put(&mut out, "IndexDocument", &w["indexDocument"]);
    put(&mut out, "ErrorDocument", &w["errorDocument"]);
    let r = &w["redirectAllRequestsTo"];
    if !r.is_null() {
        let mut to = Map::new();
        put(&mut to, "HostName", &r["hostName"]);
        put(&mut to, "Protocol", &r["protocol"]);
        out.insert("RedirectAllRequestsTo".into(), Value::Object(to));
    }
    let rules: Vec<Value> = w["routingRules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let (c, d) = (&r["condition"], &r["redirect"]);
            let mut rule = Map::new();
            let mut redirect = Map::new();
            put(&mut redirect, "HostName", &d["hostName"]);
            let code = d["httpRedirectCode"].as_u64().map(|n| json!(n.to_string()));
            put(&mut redirect, "HttpRedirectCode", &code.unwrap_or_default());
            put(&mut redirect, "Protocol", &d["protocol"]);
            put(
                &mut redirect,
                "ReplaceKeyPrefixWith",
                &d["replaceKeyPrefixWith"],
            );
            put(&mut redirect, "ReplaceKeyWith", &d["replaceKeyWith"]);
            rule.insert("RedirectRule".into(), Value::Object(redirect));
            if !c.is_null() {
                let mut condition = Map::new();
                let code = c["httpErrorCodeReturnedEquals"]
                    .as_u64()
                    .map(|n| json!(n.to_string()));
                put(
                    &mut condition,
                    "HttpErrorCodeReturnedEquals",
                    &code.unwrap_or_default(),
                );
                put(&mut condition, "KeyPrefixEquals", &c["keyPrefixEquals"]);
                rule.insert("RoutingRuleCondition".into(), Value::Object(condition));
            }
            Value::Object(rule)
        })
        .collect();
    if !rules.is_empty() {
        out.insert("RoutingRules".into(), json!(rules));
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// Rendered `notifications` in the S3 API's `NotificationConfiguration` shape, as CDK's
/// notifications resource holds it (absent or `{}`: none).
fn rendered_notifications(n: &Value) -> Value {
    let mut out = Map::new();
    for (field, list, arn) in [
        (
            "lambdaFunctions",
            "LambdaFunctionConfigurations",
            "LambdaFunctionArn",
        ),
        ("queues", "QueueConfigurations", "QueueArn"),
        ("topics", "TopicConfigurations", "TopicArn"),
    ] {
        let entries: Vec<Value> = n[field]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                let mut e = Map::new();
                e.insert("Events".into(), d["events"].clone());
                e.insert(arn.into(), d["arn"].clone());
                if !d["id"].is_null() {
                    e.insert("Id".into(), d["id"].clone());
                }
                let rules: Vec<Value> = ["prefix", "suffix"]
                    .into_iter()
                    .filter(|k| !d["filter"][*k].is_null())
                    .map(|k| json!({"Name": k, "Value": d["filter"][k]}))
                    .collect();
                if !rules.is_empty() {
                    e.insert("Filter".into(), json!({"Key": {"FilterRules": rules}}));
                }
                Value::Object(e)
            })
            .collect();
        if !entries.is_empty() {
            out.insert(list.into(), json!(entries));
        }
    }
    if n["eventBridge"] == json!(true) {
        out.insert("EventBridgeConfiguration".into(), json!({}));
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// A CORS rule in the model (empty lists and absent values left out).
fn cors_rule(
    id: &Value,
    methods: &Value,
    origins: &Value,
    headers: &Value,
    expose: &Value,
    max_age: &Value,
) -> Value {
    let mut rule = Map::new();
    rule.insert("allowedMethods".into(), json!(strings(methods)));
    rule.insert("allowedOrigins".into(), json!(strings(origins)));
    for (k, v) in [("allowedHeaders", headers), ("exposeHeaders", expose)] {
        if !strings(v).is_empty() {
            rule.insert(k.into(), json!(strings(v)));
        }
    }
    for (k, v) in [("id", id), ("maxAgeSeconds", max_age)] {
        if !v.is_null() {
            rule.insert(k.into(), v.clone());
        }
    }
    Value::Object(rule)
}

/// A lifecycle rule in the model (absent values and empty lists left out).
fn lifecycle_rule(rule: Value) -> Value {
    let mut out = Map::new();
    for (k, v) in rule.as_object().into_iter().flatten() {
        let empty = v.is_null() || v.as_array().is_some_and(Vec::is_empty);
        if !empty {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn reference_table(p: &mut Map<String, Value>, f: &mut Fields) {
    let attrs = take(p, "AttributeDefinitions");
    let attr = |name: &Value| -> Value {
        let ty = attrs
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["AttributeName"] == *name)
            .map_or(Value::Null, |a| a["AttributeType"].clone());
        json!({"name": name, "type": ty})
    };
    let key = |schema: &Value, kind: &str| -> Value {
        schema
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["KeyType"] == kind)
            .map_or(Value::Null, |k| attr(&k["AttributeName"]))
    };
    let projection = |p: &Value| -> Value {
        let mut out = json!({"type": or(p["ProjectionType"].clone(), json!("ALL"))});
        let non_key = strings(&p["NonKeyAttributes"]);
        if !non_key.is_empty() {
            out["nonKeyAttributes"] = json!(non_key);
        }
        out
    };
    let throughput = |t: &Value| -> Value {
        if t.is_null() {
            Value::Null
        } else {
            json!({"readCapacityUnits": t["ReadCapacityUnits"], "writeCapacityUnits": t["WriteCapacityUnits"]})
        }
    };
    let schema = take(p, "KeySchema");
    let table_hash = key(&schema, "HASH");
    f.insert("partitionKey".into(), table_hash.clone());
    f.insert("sortKey".into(), key(&schema, "RANGE"));
    f.insert(
        "billingMode".into(),
        or(take(p, "BillingMode"), json!("PROVISIONED")),
    );
    f.insert(
        "provisionedThroughput".into(),
        throughput(&take(p, "ProvisionedThroughput")),
    );
    let mut gsis: Vec<Value> = take(p, "GlobalSecondaryIndexes")
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            json!({
                "name": i["IndexName"],
                "partitionKey": key(&i["KeySchema"], "HASH"),
                "sortKey": key(&i["KeySchema"], "RANGE"),
                "projection": projection(&i["Projection"]),
                "provisionedThroughput": throughput(&i["ProvisionedThroughput"]),
            })
        })
        .collect();
    gsis.sort_by_key(|i| compact(&i["name"]));
    f.insert("globalSecondaryIndexes".into(), json!(gsis));
    let mut lsis: Vec<Value> = take(p, "LocalSecondaryIndexes")
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            // An LSI's partition key is the table's by definition.
            let hash = key(&i["KeySchema"], "HASH");
            let mut lsi = json!({
                "name": i["IndexName"],
                "sortKey": key(&i["KeySchema"], "RANGE"),
                "projection": projection(&i["Projection"]),
            });
            if hash != table_hash {
                lsi["partitionKey"] = hash;
            }
            lsi
        })
        .collect();
    lsis.sort_by_key(|i| compact(&i["name"]));
    f.insert("localSecondaryIndexes".into(), json!(lsis));
    let sse = take(p, "SSESpecification");
    let encryption = match (
        sse["SSEEnabled"] == json!(true),
        sse["KMSMasterKeyId"].as_str(),
    ) {
        (true, Some(key)) => json!({"type": "KMS", "kmsKeyId": key}),
        (true, None) => json!({"type": "AWS_MANAGED"}),
        (false, _) => json!({"type": "AWS_OWNED"}),
    };
    f.insert("encryption".into(), encryption);
    f.insert(
        "pointInTimeRecovery".into(),
        json!(
            take(p, "PointInTimeRecoverySpecification")["PointInTimeRecoveryEnabled"]
                == json!(true)
        ),
    );
    let ttl = take(p, "TimeToLiveSpecification");
    f.insert(
        "ttl".into(),
        if ttl["Enabled"] == json!(true) {
            json!({"attribute": ttl["AttributeName"]})
        } else {
            Value::Null
        },
    );
    let streams = take(p, "StreamSpecification");
    f.insert(
        "streams".into(),
        match streams["StreamViewType"].as_str() {
            Some(view) => json!({"enabled": true, "viewType": view}),
            None => json!({"enabled": false}),
        },
    );
    f.insert(
        "deletionProtection".into(),
        json!(take(p, "DeletionProtectionEnabled") == json!(true)),
    );
    f.insert("tags".into(), cfn_tags(take(p, "Tags")));
}

// ---------------------------------------------------------------------------------------
// The rendered manifests in the model.
// ---------------------------------------------------------------------------------------

fn rendered_model(rendered: &Value) -> Model {
    let env = Env::from_rendered(rendered);
    let mut model = Model::new();
    for r in rendered["resources"].as_array().into_iter().flatten() {
        let kind = r["kind"].as_str().unwrap_or_default().to_string();
        let name = r["name"].as_str().unwrap_or_default().to_string();
        let mut s = r["spec"].clone();
        expand_key_arns(&mut s, &env);
        let s = &s;
        let tags = or(s["tags"].clone(), json!({}));
        let deletion = if r["annotations"][DELETION_POLICY_ANNOTATION] == "retain" {
            json!("Retain")
        } else {
            json!("Delete")
        };
        let mut f = Fields::new();
        match kind.as_str() {
            "Role" => {
                f.insert("assumeRolePolicy".into(), s["assumeRolePolicy"].clone());
                f.insert(
                    "managedPolicies".into(),
                    sorted_strings(&s["managedPolicies"]),
                );
                for (n, doc) in s["inlinePolicies"].as_object().into_iter().flatten() {
                    f.insert(format!("inlinePolicies/{n}"), doc.clone());
                }
                f.insert(
                    "permissionsBoundary".into(),
                    s["permissionsBoundary"].clone(),
                );
                f.insert("path".into(), or(s["path"].clone(), json!("/")));
                f.insert("description".into(), s["description"].clone());
                f.insert(
                    "maxSessionDuration".into(),
                    or(s["maxSessionDuration"].clone(), json!(3600)),
                );
                f.insert("tags".into(), tags);
                if s["instanceProfile"] == json!(true) {
                    let mut ip = Fields::new();
                    ip.insert("roles".into(), json!([name]));
                    ip.insert("path".into(), or(s["path"].clone(), json!("/")));
                    ip.insert("deletionPolicy".into(), deletion.clone());
                    model.insert(("InstanceProfile".into(), name.clone()), ip);
                }
            }
            "ManagedPolicy" => {
                f.insert("document".into(), s["document"].clone());
                f.insert("path".into(), or(s["path"].clone(), json!("/")));
                f.insert("description".into(), s["description"].clone());
                f.insert("tags".into(), tags);
            }
            "Bucket" => {
                let mut encryption = Map::new();
                let e = &s["encryption"];
                encryption.insert(
                    "sseAlgorithm".into(),
                    or(e["sseAlgorithm"].clone(), json!("AES256")),
                );
                if !e["kmsKeyId"].is_null() {
                    encryption.insert("kmsKeyId".into(), e["kmsKeyId"].clone());
                }
                if e["bucketKeyEnabled"] == json!(true) {
                    encryption.insert("bucketKeyEnabled".into(), json!(true));
                }
                f.insert("encryption".into(), Value::Object(encryption));
                f.insert("versioning".into(), json!(s["versioning"] == json!(true)));
                let pab = &s["publicAccessBlock"];
                f.insert(
                    "publicAccessBlock".into(),
                    match pab {
                        Value::Null => default_public_access_block(),
                        Value::Bool(all) => json!({"blockPublicAcls": all, "ignorePublicAcls": all, "blockPublicPolicy": all, "restrictPublicBuckets": all}),
                        flags => json!({
                            "blockPublicAcls": flags["blockPublicAcls"] == json!(true),
                            "ignorePublicAcls": flags["ignorePublicAcls"] == json!(true),
                            "blockPublicPolicy": flags["blockPublicPolicy"] == json!(true),
                            "restrictPublicBuckets": flags["restrictPublicBuckets"] == json!(true),
                        }),
                    },
                );
                let logging = &s["logging"];
                f.insert(
                    "logging".into(),
                    if logging.is_null() {
                        Value::Null
                    } else {
                        json!({
                            "targetBucket": logging["targetBucket"],
                            "targetPrefix": or(logging["targetPrefix"].clone(), json!("")),
                        })
                    },
                );
                let cors: Vec<Value> = s["cors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        cors_rule(
                            &r["id"],
                            &r["allowedMethods"],
                            &r["allowedOrigins"],
                            &r["allowedHeaders"],
                            &r["exposeHeaders"],
                            &r["maxAgeSeconds"],
                        )
                    })
                    .collect();
                f.insert("cors".into(), json!(cors));
                let lifecycle: Vec<Value> = s["lifecycleRules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let mut r = r.clone();
                        if r["enabled"].is_null() {
                            r["enabled"] = json!(true);
                        }
                        if r["prefix"].is_null() {
                            r["prefix"] = json!("");
                        }
                        lifecycle_rule(r)
                    })
                    .collect();
                f.insert("lifecycleRules".into(), json!(lifecycle));
                f.insert(
                    "ownership".into(),
                    or(s["ownership"].clone(), json!("BucketOwnerEnforced")),
                );
                f.insert("tags".into(), tags);
                f.insert(
                    "forceDestroy".into(),
                    json!(s["forceDestroy"] == json!(true)),
                );
                // The format has no canned ACL field.
                f.insert("accessControl".into(), json!("Private"));
                f.insert("website".into(), rendered_website(&s["website"]));
                f.insert(
                    "notifications".into(),
                    rendered_notifications(&s["notifications"]),
                );
                f.insert("policy".into(), s["policy"].clone());
            }
            "Table" => rendered_table(s, tags, &mut f),
            "ServiceLinkedRole" => {
                f.insert("awsServiceName".into(), s["awsServiceName"].clone());
            }
            "KmsKey" => {
                f.insert("description".into(), s["description"].clone());
                f.insert(
                    "enableKeyRotation".into(),
                    or(s["enableKeyRotation"].clone(), json!(false)),
                );
                f.insert("keyPolicy".into(), s["policy"].clone());
                f.insert("tags".into(), tags);
                // The key's aliases: `metadata.name`, then `aliases`, each naming the key.
                let aliases = std::iter::once(name.clone()).chain(
                    s["aliases"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_string)),
                );
                for alias in aliases {
                    let mut a = Fields::new();
                    a.insert(
                        "targetKeyId".into(),
                        json!(format!(
                            "arn:{}:kms:{}:{}:key/{}",
                            env.partition,
                            env.region,
                            env.account,
                            key_id_ref(&name)
                        )),
                    );
                    a.insert("deletionPolicy".into(), deletion.clone());
                    model.insert(("KmsAlias".into(), format!("alias/{alias}")), a);
                }
            }
            _ => {
                f.insert("spec".into(), s.clone());
            }
        }
        f.insert("deletionPolicy".into(), deletion);
        model.insert((kind, name), f);
    }
    model
}

fn rendered_table(s: &Value, tags: Value, f: &mut Fields) {
    let key = |k: &Value| -> Value {
        if k.is_null() {
            Value::Null
        } else {
            json!({"name": k["name"], "type": k["type"]})
        }
    };
    let projection = |p: &Value| -> Value {
        let mut out = json!({"type": or(p["type"].clone(), json!("ALL"))});
        let non_key = strings(&p["nonKeyAttributes"]);
        if !non_key.is_empty() {
            out["nonKeyAttributes"] = json!(non_key);
        }
        out
    };
    let throughput = |t: &Value| -> Value {
        if t.is_null() {
            Value::Null
        } else {
            json!({"readCapacityUnits": t["readCapacityUnits"], "writeCapacityUnits": t["writeCapacityUnits"]})
        }
    };
    f.insert("partitionKey".into(), key(&s["partitionKey"]));
    f.insert("sortKey".into(), key(&s["sortKey"]));
    f.insert(
        "billingMode".into(),
        or(s["billingMode"].clone(), json!("PAY_PER_REQUEST")),
    );
    f.insert(
        "provisionedThroughput".into(),
        throughput(&s["provisionedThroughput"]),
    );
    let mut gsis: Vec<Value> = s["globalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            json!({
                "name": i["name"],
                "partitionKey": key(&i["partitionKey"]),
                "sortKey": key(&i["sortKey"]),
                "projection": projection(&i["projection"]),
                "provisionedThroughput": throughput(&i["provisionedThroughput"]),
            })
        })
        .collect();
    gsis.sort_by_key(|i| compact(&i["name"]));
    f.insert("globalSecondaryIndexes".into(), json!(gsis));
    let mut lsis: Vec<Value> = s["localSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            json!({
                "name": i["name"],
                "sortKey": key(&i["sortKey"]),
                "projection": projection(&i["projection"]),
            })
        })
        .collect();
    lsis.sort_by_key(|i| compact(&i["name"]));
    f.insert("localSecondaryIndexes".into(), json!(lsis));
    let e = &s["encryption"];
    f.insert(
        "encryption".into(),
        match e["type"].as_str() {
            None => json!({"type": "AWS_OWNED"}),
            Some("KMS") => json!({"type": "KMS", "kmsKeyId": e["kmsKeyId"]}),
            Some(other) => json!({ "type": other }),
        },
    );
    f.insert(
        "pointInTimeRecovery".into(),
        json!(s["pointInTimeRecovery"] == json!(true)),
    );
    f.insert(
        "ttl".into(),
        if s["ttl"].is_null() {
            Value::Null
        } else {
            json!({"attribute": s["ttl"]["attribute"]})
        },
    );
    let streams = &s["streams"];
    f.insert(
        "streams".into(),
        match (streams["enabled"].as_bool(), streams["viewType"].as_str()) {
            (Some(false), _) | (None, None) => json!({"enabled": false}),
            (_, view) => json!({"enabled": true, "viewType": view}),
        },
    );
    f.insert(
        "deletionProtection".into(),
        json!(s["deletionProtection"] == json!(true)),
    );
    f.insert("tags".into(), tags);
}

// ---------------------------------------------------------------------------------------
// Comparing.
// ---------------------------------------------------------------------------------------

fn compare(reference: &Model, ours: &Model) -> Vec<Difference> {
    let keys: BTreeSet<&(String, String)> = reference.keys().chain(ours.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let resource = format!("{} {}", key.0, key.1);
        match (reference.get(key), ours.get(key)) {
            (Some(_), None) => out.push(Difference {
                resource,
                field: "(resource)".into(),
                reference: "present".into(),
                ours: "missing".into(),
            }),
            (None, Some(_)) => out.push(Difference {
                resource,
                field: "(resource)".into(),
                reference: "missing".into(),
                ours: "present".into(),
            }),
            (Some(r), Some(o)) => {
                let fields: BTreeSet<&String> = r.keys().chain(o.keys()).collect();
                for field in fields {
                    let rv = r.get(field).unwrap_or(&Value::Null);
                    let ov = o.get(field).unwrap_or(&Value::Null);
                    if is_policy_field(field) {
                        out.extend(policy_differences(&resource, field, rv, ov));
                    } else if let (Value::Object(rt), Value::Object(ot)) = (rv, ov) {
                        // Maps (tags) key by key, so one tag allowed is not every tag.
                        let keys: BTreeSet<&String> = rt.keys().chain(ot.keys()).collect();
                        for k in keys {
                            let (a, b) = (rt.get(k), ot.get(k));
                            if a != b {
                                let side =
                                    |v: Option<&Value>| v.map_or("none".to_string(), compact);
                                out.push(Difference {
                                    resource: resource.clone(),
                                    field: format!("{field}.{k}"),
                                    reference: side(a),
                                    ours: side(b),
                                });
                            }
                        }
                    } else if rv != ov {
                        out.push(Difference {
                            resource: resource.clone(),
                            field: field.clone(),
                            reference: compact(rv),
                            ours: compact(ov),
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

fn allows(a: &Allowed, d: &Difference) -> bool {
    glob(a.resource, &d.resource)
        && glob(a.field, &d.field)
        && (a.text.is_empty() || d.reference.contains(a.text) || d.ours.contains(a.text))
}

// ---------------------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------------------

/// `mlspace-gitops render -m manifests -o json`.
fn render_bundled() -> Value {
    render_json(&manifests_dir())
}

/// Every difference between the reference and the rendered manifests, the Environment's
/// account, region and partition first.
fn differences(reference: &Value, rendered: &Value) -> Vec<Difference> {
    let env = Env::from_rendered(rendered);
    let mut out = Vec::new();
    for (field, ours) in [
        ("partition", &env.partition),
        ("region", &env.region),
        ("account", &env.account),
    ] {
        if reference[field].as_str() != Some(ours.as_str()) {
            out.push(Difference {
                resource: "Environment".into(),
                field: field.into(),
                reference: compact(&reference[field]),
                ours: compact(&json!(ours)),
            });
        }
    }
    out.extend(compare(
        &reference_model(reference, &env),
        &rendered_model(rendered),
    ));
    out
}

fn report(diffs: &[Difference]) -> String {
    let mut text = String::new();
    for d in diffs {
        let allowed = ALLOWED.iter().find(|a| allows(a, d));
        let mark = allowed.map_or("DIFFERS".to_string(), |a| format!("allowed: {}", a.why));
        text.push_str(&format!(
            "- {} · {} [{mark}]\n    reference: {}\n    ours:      {}\n",
            d.resource, d.field, d.reference, d.ours
        ));
    }
    text
}

// ---------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------

#[test]
fn bundled_manifests_match_mlspace_v1_6_10() {
    let diffs = differences(&read_json(REFERENCE), &render_bundled());
    let unexplained: Vec<&Difference> = diffs
        .iter()
        .filter(|d| !ALLOWED.iter().any(|a| allows(a, d)))
        .collect();
    let stale: Vec<&str> = ALLOWED
        .iter()
        .filter(|a| !diffs.iter().any(|d| allows(a, d)))
        .map(|a| a.why)
        .collect();
    let text = report(&diffs);
    println!(
        "{} differences, {} not allowed:\n{text}",
        diffs.len(),
        unexplained.len()
    );
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "{} of {} differences with MLSpace v1.6.10 are not in ALLOWED; {} ALLOWED entries match nothing {stale:?}.\n\
         Follow the reference, or record the choice in docs/mlspace-choices.md and ALLOWED:\n{text}",
        unexplained.len(),
        diffs.len(),
        stale.len(),
    );
}

#[test]
fn every_reference_resource_is_in_the_model() {
    // Nothing of the reference is silently dropped: each resource is one model entry (bucket
    // policies as their bucket's field), and every generated name and marker resolves.
    let reference = read_json(REFERENCE);
    let env = Env::from_rendered(&render_bundled());
    let model = reference_model(&reference, &env);
    let resources = reference["resources"].as_array().unwrap();
    let policies = resources
        .iter()
        .filter(|r| r["type"] == "AWS::S3::BucketPolicy")
        .count();
    assert_eq!(model.len(), resources.len() - policies);
    for ((kind, name), f) in &model {
        assert!(
            !name.starts_with("<generated:"),
            "{kind} {name}: add it to GENERATED"
        );
        let text = serde_json::to_string(f).unwrap();
        assert!(
            !text.contains("<Ref:") && !text.contains("<GetAtt:"),
            "{kind} {name}: unresolved marker in {text}"
        );
        assert!(
            !text.contains("(no manifest field)"),
            "{kind} {name}: a property the model does not map: {text}"
        );
    }
    for (path, source) in GENERATED {
        assert!(
            env.generated(path).is_some(),
            "{path}: no value in the rendered Environment"
        );
        if let Source::Param(p) = source {
            assert!(env.params.contains_key(*p), "{p}");
        }
    }
}

#[test]
fn split_merged_and_reordered_statements_are_equal() {
    let merged = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::c/*"]},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "arn:aws:s3:::b",
         "Condition": {"Bool": {"aws:SecureTransport": false}}}
    ]});
    let split = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": ["S3:*"], "Resource": ["arn:aws:s3:::b"],
         "Condition": {"Bool": {"aws:securetransport": "false"}}},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": ["arn:aws:s3:::c/*", "arn:aws:s3:::b/*"]},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::c/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::c/*"}
    ]});
    assert_eq!(grants(&merged), grants(&split));
    assert!(policy_differences("x", "document", &merged, &split).is_empty());
}

#[test]
fn a_grant_more_or_less_is_a_difference_and_reads_as_a_statement() {
    let reference = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:CreateRole", "iam:TagRole"], "Resource": "arn:aws:iam::1:role/MLSpace*",
         "Condition": {"StringEqualsIgnoreCase": {"aws:RequestTag/system": "MLSpace"}}},
        {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}
    ]});
    // The condition loosened (system tag only required to exist), one action dropped.
    let ours = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:CreateRole", "Resource": "arn:aws:iam::1:role/MLSpace*",
         "Condition": {"Null": {"aws:RequestTag/system": "false"}}},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": ["*"]}
    ]});
    let diffs = policy_differences("ManagedPolicy p", "document", &reference, &ours);
    let sides: Vec<(&str, &str)> = diffs
        .iter()
        .map(|d| (d.reference.as_str(), d.ours.as_str()))
        .collect();
    assert_eq!(
        sides,
        [
            (
                r#"{"Effect":"Allow","Action":["iam:createrole","iam:tagrole"],"Resource":["arn:aws:iam::1:role/MLSpace*"],"Condition":{"StringEqualsIgnoreCase":{"aws:requesttag/system":["MLSpace"]}}}"#,
                "-"
            ),
            (
                "-",
                r#"{"Effect":"Allow","Action":["iam:createrole"],"Resource":["arn:aws:iam::1:role/MLSpace*"],"Condition":{"Null":{"aws:requesttag/system":["false"]}}}"#
            ),
        ]
    );
}

#[test]
fn markers_resolve_through_the_environment() {
    let rendered = render_bundled();
    let env = Env::from_rendered(&rendered);
    let info = |ty: &str, path: &str| json!({"type": ty, "constructPath": path});
    assert_eq!(
        resolve_marker(
            "<Ref:mlspace-iam/mlspaceapppolicy03A94A78>",
            &info(
                "AWS::IAM::ManagedPolicy",
                "mlspace-iam/mlspace-app-policy/Resource"
            ),
            &env
        ),
        Some(env.iam_arn("policy/mlspace-app-policy"))
    );
    assert_eq!(
        resolve_marker(
            "<Ref:mlspace-kms/mlspacekmskey45FC93EC>",
            &info("AWS::KMS::Key", "mlspace-kms/mlspace-kms-key/Resource"),
            &env
        ),
        Some(key_id_ref("mlspace-key"))
    );
    assert_eq!(
        resolve_marker(
            "<GetAtt:mlspace-vpc/MLSpaceVPC5A366115.DefaultSecurityGroup>",
            &info("AWS::EC2::VPC", "mlspace-vpc/MLSpace-VPC/Resource"),
            &env
        ),
        env.params.get("MLSPACE_VPC_SECURITY_GROUP").cloned()
    );
    // Unknown constructs, and attributes other than the ones listed, stay markers.
    assert_eq!(
        resolve_marker(
            "<GetAtt:mlspace-core/Fn.Arn>",
            &info("AWS::Lambda::Function", "mlspace-core/Fn/Resource"),
            &env
        ),
        None
    );
    assert_eq!(
        resolve_marker(
            "<GetAtt:mlspace-vpc/MLSpaceVPC5A366115.CidrBlock>",
            &info("AWS::EC2::VPC", "mlspace-vpc/MLSpace-VPC/Resource"),
            &env
        ),
        None
    );
}

#[test]
fn allowlist_globs() {
    assert!(glob(
        "Bucket mlspace-access-logs-*",
        "Bucket mlspace-access-logs-123456789012"
    ));
    assert!(glob("ManagedPolicy *", "ManagedPolicy mlspace-app-policy"));
    assert!(glob("*", ""));
    assert!(!glob("Bucket mlspace-data-*", "Bucket mlspace-datasets"));
    assert!(!glob("KmsKey *", "KmsAlias alias/mlspace-key"));
}

#[test]
fn maps_differ_key_by_key_and_missing_resources_are_reported() {
    let model = |tags: Value, extra: bool| -> Model {
        let mut m = Model::new();
        let mut f = Fields::new();
        f.insert("tags".into(), tags);
        f.insert("path".into(), json!("/"));
        m.insert(("Role".into(), "r".into()), f);
        if extra {
            m.insert(("Bucket".into(), "b".into()), Fields::new());
        }
        m
    };
    let diffs = compare(
        &model(json!({"a": "1", "b": "2"}), true),
        &model(json!({"a": "1", "b": "3", "c": "4"}), false),
    );
    let got: Vec<(&str, &str, &str, &str)> = diffs
        .iter()
        .map(|d| {
            (
                d.resource.as_str(),
                d.field.as_str(),
                d.reference.as_str(),
                d.ours.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Bucket b", "(resource)", "present", "missing"),
            ("Role r", "tags.b", "\"2\"", "\"3\""),
            ("Role r", "tags.c", "none", "\"4\""),
        ]
    );
}
