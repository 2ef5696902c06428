//! deploy/iam: the daemon's own role and policies, written as mlspace-gitops manifests.
//!
//! - They validate (`mlspace-gitops validate -m deploy/iam`).
//! - The policies allow every AWS operation the code calls: the calls are found in src/ as
//!   builder calls (`.create_role()`, `.put_bucket_versioning()`, ...) whose names are
//!   operations of the AWS SDK crates in the build (read from their sources), then turned
//!   into IAM actions (S3 through an explicit table, since its API and IAM names differ).
//! - They allow nothing else: every action granted is needed by some call.
//! - Resources are scoped: every resource of the bundled MLSpace environment (manifests/) and
//!   of deploy/iam itself is covered, names outside the MLSpace prefixes are not, and a
//!   wildcard resource is only used for reads IAM cannot scope or under a condition.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use mlspace_gitops::kinds::ResourceSpec;
use mlspace_gitops::manifest::{load_dir, DesiredState};
use serde_json::Value;

use crate::support::{mlspace, root, rust_files, CommandExt};

/// The AWS services whose SDK clients the daemon holds, with the IAM service prefix.
const SERVICES: &[(&str, &str)] = &[
    ("aws-sdk-iam", "iam"),
    ("aws-sdk-s3", "s3"),
    ("aws-sdk-dynamodb", "dynamodb"),
    ("aws-sdk-sts", "sts"),
    ("aws-sdk-kms", "kms"),
    ("aws-sdk-sqs", "sqs"),
    ("aws-sdk-sns", "sns"),
];

/// S3 API operations and the IAM actions that authorize them (they differ too often for a
/// rule; every S3 operation the code calls must be listed here).
const S3_ACTIONS: &[(&str, &[&str])] = &[
    ("CreateBucket", &["s3:CreateBucket"]),
    ("DeleteBucket", &["s3:DeleteBucket"]),
    ("HeadBucket", &["s3:ListBucket"]),
    ("ListObjectsV2", &["s3:ListBucket"]),
    ("ListObjectVersions", &["s3:ListBucketVersions"]),
    // Keys given with a version id need the version action, others the plain one.
    (
        "DeleteObjects",
        &["s3:DeleteObject", "s3:DeleteObjectVersion"],
    ),
    ("GetBucketLocation", &["s3:GetBucketLocation"]),
    ("GetBucketVersioning", &["s3:GetBucketVersioning"]),
    ("PutBucketVersioning", &["s3:PutBucketVersioning"]),
    ("GetBucketEncryption", &["s3:GetEncryptionConfiguration"]),
    ("PutBucketEncryption", &["s3:PutEncryptionConfiguration"]),
    ("GetPublicAccessBlock", &["s3:GetBucketPublicAccessBlock"]),
    ("PutPublicAccessBlock", &["s3:PutBucketPublicAccessBlock"]),
    (
        "DeletePublicAccessBlock",
        &["s3:PutBucketPublicAccessBlock"],
    ),
    ("GetBucketTagging", &["s3:GetBucketTagging"]),
    ("PutBucketTagging", &["s3:PutBucketTagging"]),
    ("DeleteBucketTagging", &["s3:PutBucketTagging"]),
    (
        "GetBucketLifecycleConfiguration",
        &["s3:GetLifecycleConfiguration"],
    ),
    (
        "PutBucketLifecycleConfiguration",
        &["s3:PutLifecycleConfiguration"],
    ),
    ("DeleteBucketLifecycle", &["s3:PutLifecycleConfiguration"]),
    ("GetBucketCors", &["s3:GetBucketCORS"]),
    ("PutBucketCors", &["s3:PutBucketCORS"]),
    ("DeleteBucketCors", &["s3:PutBucketCORS"]),
    (
        "GetBucketOwnershipControls",
        &["s3:GetBucketOwnershipControls"],
    ),
    (
        "PutBucketOwnershipControls",
        &["s3:PutBucketOwnershipControls"],
    ),
    (
        "DeleteBucketOwnershipControls",
        &["s3:PutBucketOwnershipControls"],
    ),
    ("GetBucketLogging", &["s3:GetBucketLogging"]),
    ("PutBucketLogging", &["s3:PutBucketLogging"]),
    ("GetBucketPolicy", &["s3:GetBucketPolicy"]),
    ("PutBucketPolicy", &["s3:PutBucketPolicy"]),
    ("DeleteBucketPolicy", &["s3:DeleteBucketPolicy"]),
    ("GetBucketWebsite", &["s3:GetBucketWebsite"]),
    ("PutBucketWebsite", &["s3:PutBucketWebsite"]),
    ("DeleteBucketWebsite", &["s3:DeleteBucketWebsite"]),
    (
        "GetBucketNotificationConfiguration",
        &["s3:GetBucketNotification"],
    ),
    (
        "PutBucketNotificationConfiguration",
        &["s3:PutBucketNotification"],
    ),
];

/// Operations of the other services whose IAM action is not `service:OperationName`.
const OTHER_ACTIONS: &[(&str, &[&str])] = &[
    // STS answers GetCallerIdentity for any credentials; no policy can deny it.
    ("sts:GetCallerIdentity", &[]),
    // A transaction is authorized item by item, by the item actions it may contain.
    (
        "dynamodb:TransactWriteItems",
        &[
            "dynamodb:ConditionCheckItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ],
    ),
    ("dynamodb:TransactGetItems", &["dynamodb:GetItem"]),
    // A batch of deletes is authorized as deletes.
    ("sqs:DeleteMessageBatch", &["sqs:DeleteMessage"]),
];

/// Actions AWS checks in addition to the operation's own, for the way the code calls it.
const ALSO_NEEDED: &[(&str, &[&str])] = &[
    // Creating with tags also needs the tag action.
    ("iam:CreateRole", &["iam:TagRole"]),
    ("iam:CreatePolicy", &["iam:TagPolicy"]),
    ("iam:CreateInstanceProfile", &["iam:TagInstanceProfile"]),
    ("dynamodb:CreateTable", &["dynamodb:TagResource"]),
    ("kms:CreateKey", &["kms:TagResource"]),
    // Putting a role in an instance profile passes the role.
    ("iam:AddRoleToInstanceProfile", &["iam:PassRole"]),
    // CreateBucket sets ObjectOwnership.
    ("s3:CreateBucket", &["s3:PutBucketOwnershipControls"]),
];

/// Actions granted for calls the scan of src/ cannot see, with the reason.
const PLANNED: &[(&str, &str)] = &[(
    "sts:AssumeRole",
    "an Environment's assumeRoleArn is assumed by the SDK's AssumeRoleProvider (aws-config), \
     not by a call written in src/",
)];

/// The target triple of this toolchain (for `cargo metadata --filter-platform`).
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("running rustc -vV");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

/// Operation builder name (`create_role`) → (IAM service prefix, API name `CreateRole`),
/// read from the SDK crates this build uses.
fn sdk_operations() -> BTreeMap<String, Vec<(String, String)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host_triple()])
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ops: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (krate, prefix) in SERVICES {
        let pkg = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == *krate)
            .unwrap_or_else(|| panic!("{krate} is not in the dependency graph"));
        let dir = Path::new(pkg["manifest_path"].as_str().unwrap())
            .parent()
            .unwrap()
            .join("src/operation");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "rs") {
                continue;
            }
            let snake = path.file_name().unwrap().to_string_lossy().to_string();
            let api = api_name(&dir.join(format!("{snake}.rs")));
            ops.entry(snake)
                .or_default()
                .push((prefix.to_string(), api));
            n += 1;
        }
        assert!(
            n > 5,
            "{krate}: only {n} operations found in {}",
            dir.display()
        );
    }
    ops
}

/// The API name the SDK sends for an operation (`Metadata::new("CreateRole", "IAM")`).
fn api_name(module: &Path) -> String {
    let text = std::fs::read_to_string(module).unwrap();
    let at = text
        .find("Metadata::new(")
        .unwrap_or_else(|| panic!("{}: no operation metadata", module.display()));
    let rest = text[at + "Metadata::new(".len()..].trim_start();
    let rest = rest
        .strip_prefix('"')
        .expect("the name is the first argument");
    rest[..rest.find('"').unwrap()].to_string()
}

/// `.name()` calls in `text` with white space removed, so chains split over lines count.
fn empty_calls(text: &str) -> BTreeSet<String> {
    let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = BTreeSet::new();
    for (i, _) in flat.match_indices('.') {
        let rest = &flat[i + 1..];
        let len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        if len > 0 && rest[len..].starts_with("()") {
            out.insert(rest[..len].to_string());
        }
    }
    out
}

/// The Rust name of the SDK crate of a service prefix (`kms` → `aws_sdk_kms`).
fn crate_ident(prefix: &str) -> String {
    let (krate, _) = SERVICES
        .iter()
        .find(|(_, p)| *p == prefix)
        .expect("a prefix of SERVICES");
    krate.replace('-', "_")
}

/// (service prefix, API name) → the source files calling it.
fn called_operations() -> BTreeMap<(String, String), BTreeSet<String>> {
    let ops = sdk_operations();
    let files = rust_files(&root().join("src"));
    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for call in empty_calls(&text) {
            let Some(services) = ops.get(&call) else {
                continue;
            };
            // An operation several services have (`tag_resource`) is the one of the SDK
            // crate the file names.
            // SNS is called from one file, which names its crate; its operation names are
            // also other types' methods (`subscribe` of tokio's watch channel).
            let named: Vec<&(String, String)> = services
                .iter()
                .filter(|(prefix, _)| {
                    (services.len() == 1 && prefix != "sns") || text.contains(&crate_ident(prefix))
                })
                .collect();
            if named.is_empty() && services.iter().all(|(prefix, _)| prefix == "sns") {
                continue;
            }
            assert_eq!(
                named.len(),
                1,
                "`{call}` is an operation of several services ({services:?}) and {} names \
                 not exactly one of their SDK crates; the scan cannot tell which",
                f.display()
            );
            let rel = f.strip_prefix(root()).unwrap().display().to_string();
            found.entry(named[0].clone()).or_default().insert(rel);
        }
    }
    found
}

/// The IAM actions authorizing one operation, or an error naming the missing table entry.
fn actions_for(service: &str, api: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = if service == "s3" {
        S3_ACTIONS
            .iter()
            .find(|(op, _)| *op == api)
            .map(|(_, a)| a.iter().map(|s| s.to_string()).collect())
            .ok_or_else(|| {
                format!("S3 operation {api} is called but has no IAM action in S3_ACTIONS")
            })?
    } else {
        let key = format!("{service}:{api}");
        OTHER_ACTIONS
            .iter()
            .find(|(op, _)| *op == key)
            .map(|(_, a)| a.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|| vec![key])
    };
    let extra: Vec<String> = out
        .iter()
        .flat_map(|a| {
            ALSO_NEEDED
                .iter()
                .filter(move |(op, _)| op == a)
                .flat_map(|(_, more)| more.iter().map(|s| s.to_string()))
        })
        .collect();
    out.extend(extra);
    Ok(out)
}

/// Every action the daemon needs → why (the operation and the files calling it).
fn required_actions() -> BTreeMap<String, String> {
    let calls = called_operations();
    // The scan must see the daemon's core calls, or it is broken rather than the policy right.
    for must in [
        ("iam", "CreateRole"),
        ("iam", "GetAccountAuthorizationDetails"),
        ("s3", "CreateBucket"),
        ("dynamodb", "CreateTable"),
        ("dynamodb", "DescribeTable"),
        ("kms", "CreateKey"),
        ("kms", "TagResource"),
        ("dynamodb", "TagResource"),
    ] {
        let key = (must.0.to_string(), must.1.to_string());
        assert!(
            calls.contains_key(&key),
            "the scan missed {must:?}: {calls:?}"
        );
    }
    let mut required = BTreeMap::new();
    let mut unmapped = Vec::new();
    for ((service, api), files) in &calls {
        match actions_for(service, api) {
            Ok(actions) => {
                for a in actions {
                    required.entry(a).or_insert_with(|| {
                        format!(
                            "{service}:{api} in {}",
                            Vec::from_iter(files.clone()).join(", ")
                        )
                    });
                }
            }
            Err(e) => unmapped.push(e),
        }
    }
    assert!(unmapped.is_empty(), "{}", unmapped.join("\n"));
    for (a, why) in PLANNED {
        required.insert(a.to_string(), format!("planned: {why}"));
    }
    required
}

// ---------------------------------------------------------------------------------------
// A small IAM policy evaluator: Allow statements, wildcards, the condition operators used.
// ---------------------------------------------------------------------------------------

/// `*` and `?` wildcard match.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        s @ Value::Object(_) => vec![s],
        _ => Vec::new(),
    }
}

fn action_matches(stmt: &Value, action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    strings(&stmt["Action"])
        .iter()
        .any(|p| glob(&p.to_ascii_lowercase(), &a))
}

/// Whether the statement's conditions hold for `context` (a missing key fails them).
fn conditions_hold(stmt: &Value, context: &BTreeMap<&str, &str>) -> bool {
    let Some(ops) = stmt["Condition"].as_object() else {
        return true;
    };
    ops.iter().all(|(op, keys)| {
        keys.as_object().unwrap().iter().all(|(key, want)| {
            let Some(have) = context.get(key.as_str()) else {
                return false;
            };
            strings(want).iter().any(|w| match op.as_str() {
                "StringEquals" | "ArnEquals" => w == have,
                // The context holds one value per key, so "any value" is that one.
                "StringLike" | "ArnLike" | "ForAnyValue:StringLike" => glob(w, have),
                other => panic!("the evaluator does not know condition operator {other}"),
            })
        })
    })
}

/// Whether some Allow statement of `docs` grants `action` on `resource` in `context`.
fn allowed(docs: &[Value], action: &str, resource: &str, context: &BTreeMap<&str, &str>) -> bool {
    docs.iter().flat_map(statements).any(|s| {
        s["Effect"] == "Allow"
            && action_matches(s, action)
            && strings(&s["Resource"]).iter().any(|r| glob(r, resource))
            && conditions_hold(s, context)
    })
}

/// The identity policies of the daemon's role, resolved from deploy/iam.
fn daemon_policies() -> (DesiredState, Vec<Value>) {
    let loaded = load_dir(&root().join("deploy/iam")).expect("deploy/iam validates");
    let desired = loaded.desired;
    let role = desired
        .resources
        .iter()
        .find_map(|r| match &r.spec {
            ResourceSpec::Role(s) if r.name == "mlspace-gitops" => Some(s.clone()),
            _ => None,
        })
        .expect("deploy/iam defines the role mlspace-gitops");
    let mut docs: Vec<Value> = role.inline_policies.values().cloned().collect();
    for arn in &role.managed_policies {
        let doc = desired.resources.iter().find_map(|r| match &r.spec {
            ResourceSpec::ManagedPolicy(p) if arn.ends_with(&format!(":policy/{}", r.name)) => {
                p.document.clone()
            }
            _ => None,
        });
        docs.push(doc.unwrap_or_else(|| panic!("{arn} is not a ManagedPolicy of deploy/iam")));
    }
    assert!(!docs.is_empty());
    (desired, docs)
}

#[test]
fn deploy_iam_validates() {
    let out = mlspace(&["validate"])
        .manifests(root().join("deploy/iam"))
        .run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("resources valid"));
}

#[test]
fn policy_allows_every_aws_operation_the_code_calls() {
    let (_, docs) = daemon_policies();
    let missing: Vec<String> = required_actions()
        .into_iter()
        .filter(|(action, _)| {
            !docs
                .iter()
                .flat_map(statements)
                .any(|s| s["Effect"] == "Allow" && action_matches(s, action))
        })
        .map(|(action, why)| format!("{action} (needed by {why})"))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/iam/policies do not allow:\n{}",
        missing.join("\n")
    );
}

#[test]
fn policy_allows_nothing_the_code_does_not_call() {
    let (_, docs) = daemon_policies();
    let required = required_actions();
    let mut extra = Vec::new();
    for s in docs.iter().flat_map(statements) {
        for a in strings(&s["Action"]) {
            assert!(
                !a.contains('*') && !a.contains('?'),
                "{a}: name each action, least privilege leaves no room for wildcards"
            );
            if !required.contains_key(a) {
                extra.push(format!("{a} (statement {})", s["Sid"]));
            }
        }
        assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none());
    }
    assert!(
        extra.is_empty(),
        "granted but not needed by any call in src/:\n{}",
        extra.join("\n")
    );
}

#[test]
fn wildcard_resources_only_where_iam_cannot_scope() {
    let (desired, docs) = daemon_policies();
    let account = &desired.environment.account;
    const UNSCOPABLE: &[&str] = &[
        "iam:GetAccountAuthorizationDetails",
        "iam:ListPolicies",
        "iam:ListRoles",
        "kms:ListAliases",
        "kms:ListKeys",
    ];
    for s in docs.iter().flat_map(statements) {
        for r in strings(&s["Resource"]) {
            let bare = r == "*"
                || r.ends_with(":*")
                || [
                    ":role/*",
                    ":policy/*",
                    ":user/*",
                    ":group/*",
                    ":instance-profile/*",
                    ":s3:::*",
                    ":table/*",
                    ":key/*",
                ]
                .iter()
                .any(|suffix| r.ends_with(suffix));
            if !bare {
                continue;
            }
            let only_unscopable = strings(&s["Action"]).iter().all(|a| UNSCOPABLE.contains(a));
            assert!(
                only_unscopable || s.get("Condition").is_some(),
                "statement {} grants {r} without a condition",
                s["Sid"]
            );
        }
    }
    // The role's own account, not any.
    let iam_resources: Vec<&str> = docs
        .iter()
        .flat_map(statements)
        .flat_map(|s| strings(&s["Resource"]))
        .filter(|r| r.contains(":iam::") && !r.contains(":role/mlspace-gitops*"))
        .collect();
    for r in iam_resources {
        assert!(r.contains(&format!(":iam::{account}:")), "{r}");
    }
}

/// ARN helpers for one environment.
struct Arns<'a> {
    p: &'a str,
    region: &'a str,
    account: &'a str,
}

impl Arns<'_> {
    fn iam(&self, what: &str) -> String {
        format!("arn:{}:iam::{}:{what}", self.p, self.account)
    }
    fn bucket(&self, name: &str) -> String {
        format!("arn:{}:s3:::{name}", self.p)
    }
    fn table(&self, name: &str) -> String {
        format!(
            "arn:{}:dynamodb:{}:{}:table/{name}",
            self.p, self.region, self.account
        )
    }
    fn kms(&self, what: &str) -> String {
        format!("arn:{}:kms:{}:{}:{what}", self.p, self.region, self.account)
    }
}

/// What the daemon does to a KMS key `alias/NAME` of the manifests: the key reads and
/// writes (keys have random ids, so they are scoped by alias or by the ownership tag) and
/// its aliases.
const KEY_ACTIONS: &[&str] = &[
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:EnableKeyRotation",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
];

/// Condition keys and their values in a request.
type Context = Vec<(&'static str, String)>;

/// What the daemon does to the KMS key `alias/NAME`: (action, resource, request context). A
/// key is reached through its alias, and while it has none (created a moment ago, or pruned)
/// through the ownership tag; it is created only with that tag.
fn key_needs(arns: &Arns, n: &str) -> Vec<(&'static str, String, Context)> {
    let key = arns.kms("key/1234abcd-12ab-34cd-56ef-1234567890ab");
    let alias = format!("alias/{n}");
    let by_alias = vec![("kms:ResourceAliases", alias.clone())];
    let owned = vec![(
        "aws:ResourceTag/mlspace-gitops:managed-by",
        "mlspace-gitops".to_string(),
    )];
    let request = vec![(
        "aws:RequestTag/mlspace-gitops:managed-by",
        "mlspace-gitops".to_string(),
    )];
    let mut needs = Vec::new();
    for a in KEY_ACTIONS {
        needs.push((*a, key.clone(), by_alias.clone()));
        needs.push((*a, key.clone(), owned.clone()));
    }
    needs.push(("kms:CreateAlias", arns.kms(&alias), vec![]));
    needs.push(("kms:DeleteAlias", arns.kms(&alias), vec![]));
    needs.push(("kms:CreateKey", "*".into(), request.clone()));
    needs.push(("kms:TagResource", "*".into(), request));
    needs
}

#[test]
fn policy_covers_every_managed_resource_and_nothing_outside_the_prefixes() {
    let (own, docs) = daemon_policies();
    let mlspace = load_dir(&root().join("manifests")).unwrap().desired;
    let env = &own.environment;
    assert_eq!(
        (&mlspace.environment.account, &mlspace.environment.region),
        (&env.account, &env.region),
        "deploy/iam and manifests/ should describe the same example account"
    );
    let arns = Arns {
        p: &env.partition,
        region: &env.region,
        account: &env.account,
    };
    let none = BTreeMap::new();
    let mut missing = Vec::new();
    let mut want = |action: &str, arn: String, cx: &BTreeMap<&str, &str>| {
        if !allowed(&docs, action, &arn, cx) {
            missing.push(format!("{action} on {arn}"));
        }
    };
    // The daemon manages the MLSpace environment and its own role.
    for r in mlspace.resources.iter().chain(&own.resources) {
        let n = r.name.as_str();
        match &r.spec {
            ResourceSpec::Role(s) => {
                let role = arns.iam(&format!("role{}{n}", s.path));
                for a in [
                    "iam:CreateRole",
                    "iam:TagRole",
                    "iam:GetRole",
                    "iam:PutRolePolicy",
                    "iam:AttachRolePolicy",
                    "iam:DetachRolePolicy",
                    "iam:DeleteRole",
                ] {
                    want(a, role.clone(), &none);
                }
                if s.instance_profile {
                    let ip = arns.iam(&format!("instance-profile{}{n}", s.path));
                    want("iam:CreateInstanceProfile", ip.clone(), &none);
                    want("iam:AddRoleToInstanceProfile", ip, &none);
                    want("iam:PassRole", role, &none);
                }
            }
            ResourceSpec::ManagedPolicy(s) => {
                let policy = arns.iam(&format!("policy{}{n}", s.path));
                for a in [
                    "iam:CreatePolicy",
                    "iam:CreatePolicyVersion",
                    "iam:DeletePolicy",
                ] {
                    want(a, policy.clone(), &none);
                }
                // Deleting a policy first detaches it from whoever holds it.
                let cx = BTreeMap::from([("iam:PolicyARN", policy.as_str())]);
                want("iam:DetachUserPolicy", arns.iam("user/someone"), &cx);
                want("iam:DetachGroupPolicy", arns.iam("group/team"), &cx);
                want("iam:DetachRolePolicy", arns.iam("role/other"), &cx);
            }
            ResourceSpec::ServiceLinkedRole(s) => {
                let role = arns.iam(&format!("role/aws-service-role/{}/{n}", s.aws_service_name));
                let cx = BTreeMap::from([("iam:AWSServiceName", s.aws_service_name.as_str())]);
                want("iam:CreateServiceLinkedRole", role.clone(), &cx);
                want("iam:DeleteServiceLinkedRole", role, &none);
            }
            ResourceSpec::Bucket(_) => {
                for a in ["s3:CreateBucket", "s3:PutBucketPolicy", "s3:DeleteBucket"] {
                    want(a, arns.bucket(n), &none);
                }
                // forceDestroy empties the bucket first.
                want("s3:ListBucketVersions", arns.bucket(n), &none);
                want(
                    "s3:DeleteObjectVersion",
                    arns.bucket(&format!("{n}/a/key")),
                    &none,
                );
            }
            ResourceSpec::Table(_) => {
                for a in [
                    "dynamodb:CreateTable",
                    "dynamodb:UpdateTable",
                    "dynamodb:TagResource",
                ] {
                    want(a, arns.table(n), &none);
                }
            }
            ResourceSpec::KmsKey(_) => {
                for (a, arn, cx) in key_needs(&arns, n) {
                    want(a, arn, &cx.iter().map(|(k, v)| (*k, v.as_str())).collect());
                }
            }
            ResourceSpec::EcrAccess(_) => {}
        }
    }
    // The bundled manifests hold no KMS key: an example one.
    for (a, arn, cx) in key_needs(&arns, "mlspace-data") {
        want(a, arn, &cx.iter().map(|(k, v)| (*k, v.as_str())).collect());
    }
    let state = own.environment.params["STATE_TABLE"].clone();
    for a in [
        "dynamodb:CreateTable",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ] {
        want(a, arns.table(&state), &none);
    }
    want(
        "sts:AssumeRole",
        "arn:aws:iam::210987654321:role/mlspace-gitops".into(),
        &none,
    );
    assert!(missing.is_empty(), "not allowed:\n{}", missing.join("\n"));

    // Outside the MLSpace names nothing is allowed.
    let outside = [
        ("iam:CreateRole", arns.iam("role/admin")),
        (
            "iam:PutRolePolicy",
            arns.iam("role/OrganizationAccountAccessRole"),
        ),
        ("iam:PassRole", arns.iam("role/admin")),
        ("iam:AttachRolePolicy", arns.iam("role/mlspace/with-path")),
        (
            "iam:CreatePolicyVersion",
            arns.iam("policy/AdministratorAccess"),
        ),
        ("iam:DetachUserPolicy", arns.iam("user/someone")),
        (
            "iam:CreateInstanceProfile",
            arns.iam("instance-profile/web"),
        ),
        (
            "iam:CreateServiceLinkedRole",
            arns.iam(
                "role/aws-service-role/elasticmapreduce.amazonaws.com/AWSServiceRoleForEMRCleanup",
            ),
        ),
        ("s3:PutBucketPolicy", arns.bucket("company-data")),
        ("s3:DeleteObject", arns.bucket("company-data/report.csv")),
        ("s3:DeleteBucket", arns.bucket("cdk-hnb659fds-assets")),
        ("dynamodb:DeleteTable", arns.table("orders")),
        ("dynamodb:PutItem", arns.table("mlspace-users")),
        ("kms:CreateKey", "*".into()),
        (
            "kms:ScheduleKeyDeletion",
            arns.kms("key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        ),
        (
            "kms:PutKeyPolicy",
            arns.kms("key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        ),
        ("kms:CreateAlias", arns.kms("alias/company-data")),
        (
            "sts:AssumeRole",
            "arn:aws:iam::210987654321:role/admin".into(),
        ),
    ];
    for (action, arn) in outside {
        assert!(
            !allowed(&docs, action, &arn, &none),
            "{action} on {arn} must not be allowed"
        );
    }
}

#[test]
fn scan_and_matcher_work() {
    let calls = empty_calls("aws.iam\n    .create_role()\n    .role_name(n)\n    .send()");
    assert!(calls.contains("create_role") && calls.contains("send"));
    assert!(!calls.contains("role_name"));
    assert!(glob("iam:List*", "iam:ListRoles"));
    assert!(glob(
        "arn:aws:s3:::mlspace-*",
        "arn:aws:s3:::mlspace-data-1"
    ));
    assert!(!glob("arn:aws:s3:::mlspace-*", "arn:aws:s3:::other"));
    assert!(!glob("role/mlspace-*", "role/MLSPACE-x"));
    assert_eq!(
        actions_for("s3", "GetBucketEncryption").unwrap(),
        ["s3:GetEncryptionConfiguration"]
    );
    assert_eq!(actions_for("iam", "GetRole").unwrap(), ["iam:GetRole"]);
    assert!(actions_for("s3", "RestoreObject").is_err());
}

/// The statements of a deploy/iam managed policy, by name.
fn deploy_policy(desired: &DesiredState, name: &str) -> Vec<Value> {
    desired
        .resources
        .iter()
        .find_map(|r| match &r.spec {
            ResourceSpec::ManagedPolicy(p) if r.name == name => p.document.clone(),
            _ => None,
        })
        .map(|d| statements(&d).into_iter().cloned().collect())
        .unwrap_or_else(|| panic!("deploy/iam has no ManagedPolicy {name}"))
}

fn access_level(action: &str) -> mlspace_policy::catalog::AccessLevel {
    mlspace_policy::catalogue()
        .action(action)
        .unwrap_or_else(|| panic!("{action} is not in the IAM catalogue"))
        .1
        .access_level()
}

/// The CI role that runs `plan` on pull requests reads what the daemon reads and writes
/// nothing: its policy holds exactly the List and Read actions of the daemon's policies,
/// each on the resources the daemon's statement names (and under its conditions).
#[test]
fn ci_plan_policy_is_the_read_level_of_the_daemons_policy() {
    use mlspace_policy::catalog::AccessLevel;
    let (desired, daemon) = daemon_policies();
    let plan = deploy_policy(&desired, "mlspace-gitops-plan");
    // Only in the lease's transactions, which plan never takes; and receiving from the
    // event queue, which would hide the daemon's events from it (plan reads no event).
    const NOT_FOR_PLAN: &[&str] = &["dynamodb:ConditionCheckItem", "sqs:ReceiveMessage"];
    let reads = |docs: &[Value]| -> BTreeSet<(String, String, String)> {
        docs.iter()
            .flat_map(statements)
            .flat_map(|s| {
                strings(&s["Action"])
                    .into_iter()
                    .filter(|a| {
                        matches!(access_level(a), AccessLevel::Read | AccessLevel::List)
                            && !NOT_FOR_PLAN.contains(a)
                    })
                    .map(|a| {
                        (
                            a.to_string(),
                            s["Resource"].to_string(),
                            s["Condition"].to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let want = reads(&daemon);
    let wrapped: Vec<Value> = vec![serde_json::json!({ "Statement": plan })];
    let got = reads(&wrapped);
    let all_plan: usize = plan.iter().map(|s| strings(&s["Action"]).len()).sum();
    assert_eq!(
        got.len(),
        all_plan,
        "the plan policy holds an action that is not List or Read"
    );
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "deploy/iam/policies/mlspace-gitops-plan.json differs from the read level of the daemon's policies\nmissing: {missing:#?}\nextra: {extra:#?}"
    );
}

/// The CI roles trust one repository's pull-request identities, nothing wider.
#[test]
fn ci_roles_trust_only_their_repository() {
    let loaded = load_dir(&root().join("deploy/iam")).expect("deploy/iam validates");
    for (name, sub) in [
        (
            "mlspace-gitops-plan-github",
            "repo:example-org/mlspace-manifests:pull_request",
        ),
        (
            "mlspace-gitops-plan-gitlab",
            "project_path:example-group/mlspace-manifests:ref_type:branch:ref:*",
        ),
    ] {
        let role = loaded
            .desired
            .resources
            .iter()
            .find_map(|r| match &r.spec {
                ResourceSpec::Role(s) if r.name == name => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("deploy/iam has no Role {name}"));
        assert_eq!(
            role.managed_policies,
            ["arn:aws:iam::123456789012:policy/mlspace-gitops-plan"]
        );
        assert!(role.inline_policies.is_empty());
        let trust = role.assume_role_policy.unwrap();
        let stmts = statements(&trust);
        assert_eq!(stmts.len(), 1, "{name}");
        let s = stmts[0];
        assert_eq!(s["Action"], "sts:AssumeRoleWithWebIdentity");
        let subs: Vec<&str> = s["Condition"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|keys| keys.as_object().unwrap().iter())
            .filter(|(k, _)| k.ends_with(":sub"))
            .flat_map(|(_, v)| strings(v))
            .collect();
        assert_eq!(subs, [sub], "{name}");
    }
}
