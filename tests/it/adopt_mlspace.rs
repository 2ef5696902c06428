//! Adopting a real MLSpace install: the footprint `../shared/reference/mlspace-cdk-v1.6.10.json`
//! describes (MLSpace v1.6.10's own CloudFormation, every role, policy, instance profile, bucket
//! and bucket policy, table, KMS key and alias) is built in moto with the SDK, as CloudFormation
//! would have made it, then adopted with the bundled manifests. The plan changes tags only and
//! deletes nothing; the one grant it adds is the documented log-delivery choice; after apply a
//! plan is a no-op; `import --all-mlspace` of that account writes manifests that plan as a no-op.
//!
//! Where the templates leave a name to CloudFormation, the footprint gets the name the manifests
//! chose (docs/mlspace-choices.md, "Names we made up"), or a generated-looking name that the
//! Environment's params carry (the REST API's CloudWatch role); the key's id is KMS's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::{manifests_dir, Clients, Moto};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, SseSpecification,
};
use aws_sdk_s3::types::{
    BucketCannedAcl, BucketLoggingStatus, BucketVersioningStatus, CorsConfiguration, CorsRule,
    ErrorDocument, IndexDocument, LoggingEnabled, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tagging, VersioningConfiguration, WebsiteConfiguration,
};
use mlspace_gitops::aws::AwsContext;
use mlspace_gitops::import::{self, Request};
use mlspace_gitops::kinds::common::OWNERSHIP_TAG;
use mlspace_gitops::kinds::Kind;
use mlspace_gitops::manifest;
use mlspace_gitops::pipeline::observe_and_plan;
use mlspace_gitops::plan::{Action, Plan};
use serde_json::Value;

/// The name the footprint gives the CloudWatch role of MLSpace's REST API, shaped like the
/// names CloudFormation generates; the adopting Environment's params carry it.
const API_CLOUDWATCH_ROLE: &str = "mlspace-web-tier-mlspaceapiCloudWatchRoleC8CEC80C-X1Y2Z3A4B5C6";

/// Construct path → the name the footprint gives a resource CloudFormation names.
fn generated_name(construct: &str) -> Option<&'static str> {
    Some(match construct {
        "mlspace-iam/mlspace-app-policy/Resource" => "mlspace-app-policy",
        "mlspace-iam/mlspace-notebook-policy/Resource" => "mlspace-notebook-policy",
        "mlspace-iam/mlspace-system-policy/Resource" => "mlspace-system-policy",
        "mlspace-iam/mlspace-website-read-policy/Resource" => "mlspace-website-read-policy",
        "mlspace-iam/mlspace-cwl-role/Resource" => "mlspace-apigw-cloudwatch-role",
        "mlspace-web-tier/mlspace-api/CloudWatchRole/Resource" => API_CLOUDWATCH_ROLE,
        _ => return None,
    })
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> Value {
    let path = repo().join("../shared/reference/mlspace-cdk-v1.6.10.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the reference lives beside the repository)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// The bundled Environment's params, as the reference's VPC markers resolve to them.
fn bundled_params() -> BTreeMap<String, String> {
    let loaded = manifest::load_dir(&manifests_dir()).unwrap();
    loaded
        .desired
        .environment
        .params
        .clone()
        .into_iter()
        .collect()
}

/// Marker → value, for the markers the footprint knows once the key exists.
fn markers(reference: &Value, key_id: &str) -> Vec<(String, String)> {
    let params = bundled_params();
    let mut out = Vec::new();
    for (marker, info) in reference["markers"].as_object().unwrap() {
        let path = info["constructPath"].as_str().unwrap();
        let value = match (info["type"].as_str().unwrap(), marker.starts_with("<Ref:")) {
            ("AWS::IAM::ManagedPolicy", true) => {
                generated_name(path).map(|n| format!("arn:aws:iam::123456789012:policy/{n}"))
            }
            ("AWS::IAM::Role", false) => {
                generated_name(path).map(|n| format!("arn:aws:iam::123456789012:role/{n}"))
            }
            ("AWS::KMS::Key", true) => Some(key_id.to_string()),
            ("AWS::EC2::Subnet", true) => {
                let n = path
                    .split("PrivateSubnet")
                    .nth(1)
                    .unwrap()
                    .chars()
                    .next()
                    .unwrap();
                Some(params[&format!("MLSPACE_PRIVATE_SUBNET_{n}")].clone())
            }
            ("AWS::EC2::VPC", false) => Some(params["MLSPACE_VPC_SECURITY_GROUP"].clone()),
            _ => None,
        };
        if let Some(v) = value {
            out.push((marker.clone(), v));
        }
    }
    out
}

fn replace_markers(v: &mut Value, markers: &[(String, String)]) {
    match v {
        Value::String(s) => {
            for (m, to) in markers {
                if s.contains(m.as_str()) {
                    *s = s.replace(m.as_str(), to);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace_markers(x, markers)),
        Value::Object(o) => o.values_mut().for_each(|x| replace_markers(x, markers)),
        _ => {}
    }
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().map(text).collect()
}

fn cfn_tags(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| (text(&t["Key"]), text(&t["Value"])))
        .collect()
}

fn iam_tags(v: &Value) -> Vec<aws_sdk_iam::types::Tag> {
    cfn_tags(v)
        .into_iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .unwrap()
        })
        .collect()
}

/// Builds the reference footprint; returns the KMS key's id.
async fn build_footprint(aws: &AwsContext, reference: &Value) -> String {
    let resources: Vec<&Value> = reference["resources"].as_array().unwrap().iter().collect();
    let of = |ty: &str| -> Vec<Value> {
        resources
            .iter()
            .filter(|r| r["type"] == ty)
            .map(|r| (*r).clone())
            .collect()
    };
    let name = |r: &Value| -> String {
        r["name"].as_str().map(str::to_string).unwrap_or_else(|| {
            generated_name(r["constructPath"].as_str().unwrap())
                .unwrap_or_else(|| panic!("no name for {}", r["constructPath"]))
                .to_string()
        })
    };

    // The key first: the policies name it.
    let key = &of("AWS::KMS::Key")[0]["properties"];
    let created = aws
        .kms()
        .create_key()
        // CloudFormation's defaults, sent as it sends them (moto leaves a key created without
        // them with no key usage at all, which KMS never does).
        .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
        .key_spec(aws_sdk_kms::types::KeySpec::SymmetricDefault)
        .description(text(&key["Description"]))
        .policy(key["KeyPolicy"].to_string())
        .set_tags(Some(
            cfn_tags(&key["Tags"])
                .into_iter()
                .map(|(k, v)| {
                    aws_sdk_kms::types::Tag::builder()
                        .tag_key(k)
                        .tag_value(v)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    let key_id = created.key_metadata().unwrap().key_id().to_string();
    assert_eq!(
        key["EnableKeyRotation"], false,
        "rotation stays off, as KMS makes a key"
    );
    let markers = markers(reference, &key_id);
    let resolved = |ty: &str| -> Vec<Value> {
        of(ty)
            .into_iter()
            .map(|mut r| {
                replace_markers(&mut r, &markers);
                r
            })
            .collect()
    };
    for alias in resolved("AWS::KMS::Alias") {
        let p = &alias["properties"];
        aws.kms()
            .create_alias()
            .alias_name(text(&p["AliasName"]))
            .target_key_id(text(&p["TargetKeyId"]))
            .send()
            .await
            .unwrap();
    }

    for policy in resolved("AWS::IAM::ManagedPolicy") {
        let p = &policy["properties"];
        let mut req = aws
            .iam()
            .create_policy()
            .policy_name(name(&policy))
            .policy_document(p["PolicyDocument"].to_string())
            .path(p["Path"].as_str().unwrap_or("/"));
        if let Some(d) = p["Description"].as_str().filter(|d| !d.is_empty()) {
            req = req.description(d);
        }
        req.send().await.unwrap();
    }
    for role in resolved("AWS::IAM::Role") {
        let p = &role["properties"];
        let role_name = name(&role);
        let mut req = aws
            .iam()
            .create_role()
            .role_name(&role_name)
            .assume_role_policy_document(p["AssumeRolePolicyDocument"].to_string())
            .set_tags(Some(iam_tags(&p["Tags"])));
        if let Some(d) = p["Description"].as_str() {
            req = req.description(d);
        }
        req.send().await.unwrap();
        for arn in strings(&p["ManagedPolicyArns"]) {
            assert!(!arn.contains('<'), "unresolved marker in {arn}");
            aws.iam()
                .attach_role_policy()
                .role_name(&role_name)
                .policy_arn(arn)
                .send()
                .await
                .unwrap();
        }
    }
    for profile in resolved("AWS::IAM::InstanceProfile") {
        let p = &profile["properties"];
        let profile_name = text(&p["InstanceProfileName"]);
        aws.iam()
            .create_instance_profile()
            .instance_profile_name(&profile_name)
            .send()
            .await
            .unwrap();
        for role in strings(&p["Roles"]) {
            aws.iam()
                .add_role_to_instance_profile()
                .instance_profile_name(&profile_name)
                .role_name(role)
                .send()
                .await
                .unwrap();
        }
    }
    // The EMR cleanup service-linked role the deployment guide has the operator create
    // (docs/mlspace-choices.md, "Roles"): it exists in an install, outside the templates.
    aws.iam()
        .create_service_linked_role()
        .aws_service_name("elasticmapreduce.amazonaws.com")
        .send()
        .await
        .unwrap();

    // Buckets: the access-logs bucket first, the others log into it.
    let mut buckets = resolved("AWS::S3::Bucket");
    buckets.sort_by_key(|b| !text(&b["properties"]["BucketName"]).contains("access-logs"));
    for bucket in &buckets {
        make_bucket(aws, &bucket["properties"]).await;
    }
    for policy in resolved("AWS::S3::BucketPolicy") {
        let p = &policy["properties"];
        aws.s3()
            .put_bucket_policy()
            .bucket(text(&p["Bucket"]))
            .policy(p["PolicyDocument"].to_string())
            .send()
            .await
            .unwrap();
    }
    for table in resolved("AWS::DynamoDB::Table") {
        make_table(aws, &table["properties"]).await;
    }
    key_id
}

async fn make_bucket(aws: &AwsContext, p: &Value) {
    let s3 = aws.s3();
    let bucket = text(&p["BucketName"]);
    let mut req = s3.create_bucket().bucket(&bucket);
    if let Some(acl) = p["AccessControl"].as_str() {
        let acl = match acl {
            "LogDeliveryWrite" => BucketCannedAcl::from("log-delivery-write"),
            "BucketOwnerFullControl" => BucketCannedAcl::from("bucket-owner-full-control"),
            other => panic!("canned ACL {other}"),
        };
        req = req.acl(acl);
    }
    req.send().await.unwrap();
    // What S3 gives a new bucket: every public access block flag on, objects owned by the
    // bucket owner, unless the template says otherwise.
    s3.put_public_access_block()
        .bucket(&bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ownership = p["OwnershipControls"]["Rules"][0]["ObjectOwnership"]
        .as_str()
        .unwrap_or("BucketOwnerEnforced");
    s3.put_bucket_ownership_controls()
        .bucket(&bucket)
        .ownership_controls(
            OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(ObjectOwnership::from(ownership))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let sse = &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        ["ServerSideEncryptionByDefault"];
    s3.put_bucket_encryption()
        .bucket(&bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::from(
                                    text(&sse["SSEAlgorithm"]).as_str(),
                                ))
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    if p["VersioningConfiguration"]["Status"] == "Enabled" {
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    if let Some(rules) = p["CorsConfiguration"]["CorsRules"].as_array() {
        let rules = rules
            .iter()
            .map(|r| {
                CorsRule::builder()
                    .set_allowed_headers(
                        Some(strings(&r["AllowedHeaders"])).filter(|h| !h.is_empty()),
                    )
                    .set_allowed_methods(Some(strings(&r["AllowedMethods"])))
                    .set_allowed_origins(Some(strings(&r["AllowedOrigins"])))
                    .set_expose_headers(
                        Some(strings(&r["ExposedHeaders"])).filter(|h| !h.is_empty()),
                    )
                    .build()
                    .unwrap()
            })
            .collect();
        s3.put_bucket_cors()
            .bucket(&bucket)
            .cors_configuration(
                CorsConfiguration::builder()
                    .set_cors_rules(Some(rules))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let logging = &p["LoggingConfiguration"];
    if logging.is_object() {
        s3.put_bucket_logging()
            .bucket(&bucket)
            .bucket_logging_status(
                BucketLoggingStatus::builder()
                    .logging_enabled(
                        LoggingEnabled::builder()
                            .target_bucket(text(&logging["DestinationBucketName"]))
                            .target_prefix(text(&logging["LogFilePrefix"]))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let website = &p["WebsiteConfiguration"];
    if website.is_object() {
        s3.put_bucket_website()
            .bucket(&bucket)
            .website_configuration(
                WebsiteConfiguration::builder()
                    .index_document(
                        IndexDocument::builder()
                            .suffix(text(&website["IndexDocument"]))
                            .build()
                            .unwrap(),
                    )
                    .error_document(
                        ErrorDocument::builder()
                            .key(text(&website["ErrorDocument"]))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let tags = cfn_tags(&p["Tags"]);
    if !tags.is_empty() {
        s3.put_bucket_tagging()
            .bucket(&bucket)
            .tagging(
                Tagging::builder()
                    .set_tag_set(Some(
                        tags.into_iter()
                            .map(|(k, v)| {
                                aws_sdk_s3::types::Tag::builder()
                                    .key(k)
                                    .value(v)
                                    .build()
                                    .unwrap()
                            })
                            .collect(),
                    ))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
}

fn key_schema(v: &Value) -> Vec<KeySchemaElement> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(&k["AttributeName"]))
                .key_type(KeyType::from(text(&k["KeyType"]).as_str()))
                .build()
                .unwrap()
        })
        .collect()
}

fn projection(v: &Value) -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::from(text(&v["ProjectionType"]).as_str()))
        .set_non_key_attributes(Some(strings(&v["NonKeyAttributes"])).filter(|a| !a.is_empty()))
        .build()
}

async fn make_table(aws: &AwsContext, p: &Value) {
    let attrs = p["AttributeDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(text(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    text(&a["AttributeType"]).as_str(),
                ))
                .build()
                .unwrap()
        })
        .collect();
    let gsis: Vec<GlobalSecondaryIndex> = p["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            GlobalSecondaryIndex::builder()
                .index_name(text(&g["IndexName"]))
                .set_key_schema(Some(key_schema(&g["KeySchema"])))
                .projection(projection(&g["Projection"]))
                .build()
                .unwrap()
        })
        .collect();
    let lsis: Vec<LocalSecondaryIndex> = p["LocalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            LocalSecondaryIndex::builder()
                .index_name(text(&l["IndexName"]))
                .set_key_schema(Some(key_schema(&l["KeySchema"])))
                .projection(projection(&l["Projection"]))
                .build()
                .unwrap()
        })
        .collect();
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    aws.dynamodb()
        .create_table()
        .table_name(text(&p["TableName"]))
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attrs))
        .set_key_schema(Some(key_schema(&p["KeySchema"])))
        .set_global_secondary_indexes(Some(gsis).filter(|g| !g.is_empty()))
        .set_local_secondary_indexes(Some(lsis).filter(|l| !l.is_empty()))
        .sse_specification(
            SseSpecification::builder()
                .enabled(p["SSESpecification"]["SSEEnabled"] == true)
                .build(),
        )
        .set_tags(Some(
            cfn_tags(&p["Tags"])
                .into_iter()
                .map(|(k, v)| {
                    aws_sdk_dynamodb::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap();
}

/// `mlspace-gitops/adopt: "true"` on every resource document of a manifests file.
fn annotate_adopt(yaml: &str) -> String {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        out.push(lines[i].to_string());
        if lines[i].trim_end() == "metadata:" {
            // The metadata block: indented lines (and comments) up to the next top-level key.
            let end = (i + 1..lines.len())
                .find(|&j| !lines[j].starts_with(' ') && !lines[j].trim().is_empty())
                .unwrap_or(lines.len());
            match (i + 1..end).find(|&j| lines[j].trim_end() == "  annotations:") {
                Some(at) => {
                    out.extend(lines[i + 1..=at].iter().map(|l| l.to_string()));
                    out.push("    mlspace-gitops/adopt: \"true\"".into());
                    i = at;
                }
                None => {
                    out.push("  annotations:".into());
                    out.push("    mlspace-gitops/adopt: \"true\"".into());
                }
            }
        }
        i += 1;
    }
    out.join("\n") + "\n"
}

fn copy_tree(from: &Path, to: &Path, edit: &dyn Fn(&Path, String) -> String) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target, edit);
        } else {
            let body = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(&target, edit(&entry.path(), body)).unwrap();
        }
    }
}

/// The bundled manifests, every resource annotated for adoption, the REST API's CloudWatch
/// role named as the footprint names it.
fn adopting_manifests() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("manifests");
    std::fs::create_dir_all(&root).unwrap();
    copy_tree(&manifests_dir(), &root, &|path, body| {
        if path.extension().is_none_or(|e| e != "yaml") {
            return body;
        }
        if path.file_name().is_some_and(|n| n == "environment.yaml") {
            let from = "MLSPACE_API_CLOUDWATCH_ROLE_NAME: mlspace-api-cloudwatch-role";
            assert!(body.contains(from));
            return body.replace(
                from,
                &format!("MLSPACE_API_CLOUDWATCH_ROLE_NAME: {API_CLOUDWATCH_ROLE}"),
            );
        }
        annotate_adopt(&body)
    });
    (dir, root)
}

/// Every changed field of the plan, as `KIND NAME FIELD`.
fn changed_fields(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .flat_map(|c| {
            c.fields
                .iter()
                .map(move |f| format!("{} {} {}", c.kind, c.name, f.field))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mlspace_install_is_adopted_with_tag_changes_only_then_plans_as_a_no_op() {
    let moto = Moto::start();
    let aws = moto.aws().await;
    let reference = reference();
    build_footprint(&aws, &reference).await;

    let (_keep, dir) = adopting_manifests();
    let loaded = manifest::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let planned = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    let plan = &planned.plan;
    assert!(
        planned.observation.failures.is_empty(),
        "{:?}",
        planned.observation.failures
    );
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);

    // Every resource of the manifests exists: nothing is created, nothing deleted.
    for c in &plan.changes {
        assert!(
            matches!(c.action, Action::Update | Action::NoOp),
            "{} {}: {:?}\n{plan}",
            c.kind,
            c.name,
            c.action
        );
    }
    // Tags only: the ownership tag on every resource; the stack tags on the managed
    // policies, which CloudFormation cannot tag (docs/mlspace-choices.md, "Tags"); the key's
    // own tags (its name and its pending window, `deletionWindowInDays`, kept as tags on the
    // key). CDK's `aws-cdk:cr-owned:...` bucket tags stay (`ignoreTags`). The one other change
    // is the access-logs bucket's policy: log delivery granted by bucket policy rather than
    // the LogDeliveryWrite ACL (docs/mlspace-choices.md, "Buckets").
    let mut other = Vec::new();
    for field in changed_fields(plan) {
        let tag = field.contains(" spec.tags.");
        let ownership = field.ends_with(&format!(" spec.tags.{OWNERSHIP_TAG}"));
        let policy_stack_tag = field.starts_with("ManagedPolicy ") && tag;
        let key_tag =
            field.starts_with("KmsKey ") && (tag || field.ends_with(" spec.deletionWindowInDays"));
        if !(ownership || policy_stack_tag || key_tag) {
            other.push(field);
        }
    }
    assert_eq!(
        other,
        ["Bucket mlspace-access-logs-123456789012 spec.policy"],
        "{plan}"
    );
    let owned: usize = plan
        .changes
        .iter()
        .filter(|c| {
            c.fields
                .iter()
                .any(|f| f.field == format!("spec.tags.{OWNERSHIP_TAG}"))
        })
        .count();
    let taggable = plan
        .changes
        .iter()
        .filter(|c| c.kind != Kind::ServiceLinkedRole)
        .count();
    assert_eq!(
        owned, taggable,
        "every taggable resource gains the ownership tag\n{plan}"
    );

    // What the change grants: only the log-delivery statement, to S3's logging service.
    let access = plan.access.as_ref().expect("an access summary");
    let widening: Vec<String> = plan
        .changes
        .iter()
        .flat_map(|c| c.access.iter())
        .flat_map(|a| {
            a.delta
                .added
                .iter()
                .map(move |g| format!("{} {g}", a.subject))
        })
        .collect();
    assert!(
        !widening.is_empty()
            && widening
                .iter()
                .all(|g| g.contains("logging.s3.amazonaws.com")),
        "{widening:#?}\n{access}"
    );

    // Apply, then nothing is left to do.
    let report = mlspace_gitops::apply::apply(
        &aws,
        &planned.plan,
        &planned.cx,
        &mlspace_gitops::apply::ApplyOptions::default(),
        |_| {},
    )
    .await;
    assert!(report.success(), "{report:?}");
    // CDK's marks on the buckets it fills are still there (spec.ignoreTags).
    let tagging = aws
        .s3()
        .get_bucket_tagging()
        .bucket("mlspace-config-123456789012")
        .send()
        .await
        .unwrap();
    assert!(
        tagging
            .tag_set()
            .iter()
            .any(|t| t.key().starts_with("aws-cdk:cr-owned:")),
        "{:?}",
        tagging.tag_set()
    );
    let again = observe_and_plan(&aws, &loaded.desired, &[], &[]).await;
    assert!(!again.plan.has_changes(), "{}", again.plan);

    // import --all-mlspace of this account writes manifests that plan as a no-op too.
    let out = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("environment.yaml"),
        out.path().join("environment.yaml"),
    )
    .unwrap();
    let request: Request = import::request_all(&loaded.desired);
    let imported = import::import(&aws, &loaded.desired, &request)
        .await
        .unwrap();
    assert!(imported.missing.is_empty(), "{:?}", imported.missing);
    import::write_dir(out.path(), &imported.documents).unwrap();
    let written = manifest::load_dir(out.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        written.desired.resources.len(),
        loaded.desired.resources.len(),
        "every resource is imported"
    );
    let imported_plan = observe_and_plan(&aws, &written.desired, &[], &[]).await;
    assert!(
        imported_plan.plan.errors.is_empty(),
        "{:?}",
        imported_plan.plan.errors
    );
    assert!(!imported_plan.plan.has_changes(), "{}", imported_plan.plan);
}
