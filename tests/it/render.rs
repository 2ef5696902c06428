//! `render`: the resolved desired state of the bundled `manifests/`, pinned as golden files,
//! and the properties of the render contract.
//!
//! Golden files: `tests/golden/render.json` and `tests/golden/render.yaml`. After an intended
//! change, regenerate with `UPDATE_GOLDEN=1 cargo test --test it render::` and review the
//! diff.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::support::cli::{render, render_json};
use crate::support::golden::{self, diff_hint};
use crate::support::{manifests_copy, manifests_dir, placeholder_in, root};

/// Every string of `v`, map keys included, with its JSON pointer.
fn strings<'a>(v: &'a Value, ptr: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((ptr, s)),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                strings(x, format!("{ptr}/{i}"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push((format!("{p} (key)"), k));
                strings(x, p, out);
            }
        }
        _ => {}
    }
}

fn resource<'a>(r: &'a Value, kind: &str, name: &str) -> &'a Value {
    r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == kind && x["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the render"))
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().expect("string").to_string())
            .collect(),
        _ => vec![],
    }
}

/// Whether the document allows `action` on `resource` through an unconditional Allow
/// statement listing both literally (how EcrAccess grants are written; merged or not).
fn allows(doc: &Value, action: &str, resource: &str) -> bool {
    doc["Statement"].as_array().unwrap().iter().any(|s| {
        s["Effect"] == "Allow"
            && s.get("Condition").is_none()
            && as_list(&s["Action"])
                .iter()
                .any(|a| a.eq_ignore_ascii_case(action))
            && as_list(&s["Resource"]).iter().any(|r| r == resource)
    })
}

fn ecr_actions(doc: &Value) -> BTreeSet<String> {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| as_list(&s["Action"]))
        .filter(|a| a.to_ascii_lowercase().starts_with("ecr:"))
        .collect()
}

// ---------------------------------------------------------------------------------------

#[test]
fn render_json_matches_golden() {
    golden::check(
        "tests/golden/render.json",
        &render(&manifests_dir(), "json"),
        "render::",
    );
}

#[test]
fn render_yaml_matches_golden() {
    golden::check(
        "tests/golden/render.yaml",
        &render(&manifests_dir(), "yaml"),
        "render::",
    );
}

#[test]
fn render_is_deterministic() {
    for format in ["json", "yaml"] {
        let a = render(&manifests_dir(), format);
        let b = render(&manifests_dir(), format);
        assert!(a == b, "two `render -o {format}` runs differ");
    }
    // The library too (no hash-order leaks between loads).
    let a = mlspace_gitops::manifest::load_dir(&manifests_dir()).unwrap();
    let b = mlspace_gitops::manifest::load_dir(&manifests_dir()).unwrap();
    assert_eq!(
        mlspace_gitops::manifest::render::to_json(&a.desired),
        mlspace_gitops::manifest::render::to_json(&b.desired)
    );
}

#[test]
fn render_json_follows_the_contract() {
    let r = render_json(&manifests_dir());
    let top: Vec<&str> = r
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top, ["environment", "resources"]);

    let env = r["environment"]
        .as_object()
        .expect("environment is an object");
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "name",
            "partition",
            "region",
            "account",
            "params",
            "tags",
            "ignore",
            "ignoreTags"
        ]
    );
    for k in ["name", "partition", "region", "account"] {
        assert!(env[k].is_string(), "environment.{k} must be a string");
    }
    let account = env["account"].as_str().unwrap();
    assert!(
        account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()),
        "account {account}"
    );
    for k in ["params", "tags"] {
        assert!(
            env[k].as_object().expect(k).values().all(Value::is_string),
            "environment.{k} maps strings to strings"
        );
    }

    let resources = r["resources"].as_array().expect("resources is a list");
    assert!(!resources.is_empty());
    const ORDER: [&str; 6] = [
        "ManagedPolicy",
        "Role",
        "ServiceLinkedRole",
        "KmsKey",
        "Bucket",
        "Table",
    ];
    let mut prev: Option<(usize, &str)> = None;
    for res in resources {
        let obj = res.as_object().expect("each resource is an object");
        // `annotations` and `ignoreFields` are part of a resource only when the manifest has
        // some: `mlspace-gitops/deletion-policy: retain` where MLSpace's CloudFormation retains
        // the resource, `ignoreFields` on the policies MLSpace re-versions.
        let keys: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "annotations" && *k != "ignoreFields")
            .collect();
        assert_eq!(keys, ["kind", "name", "spec"], "{res}");
        if let Some(a) = obj.get("annotations") {
            let a = a.as_object().expect("annotations is a map");
            assert!(!a.is_empty() && a.values().all(Value::is_string), "{res}");
        }
        if let Some(f) = obj.get("ignoreFields") {
            let f = f.as_array().expect("ignoreFields is a list");
            assert!(!f.is_empty() && f.iter().all(Value::is_string), "{res}");
        }
        let kind = res["kind"].as_str().expect("kind is a string");
        let name = res["name"].as_str().expect("name is a string");
        assert!(!name.is_empty());
        let rank = ORDER
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_else(|| panic!("kind {kind} must not be rendered"));
        assert!(res["spec"].is_object(), "{kind} {name}: spec is an object");
        // Sorted by kind (in the order above), then name; no duplicates.
        if let Some(p) = prev {
            assert!(
                p < (rank, name),
                "{kind} {name} is out of order after {p:?}"
            );
        }
        prev = Some((rank, name));
    }
    let count = |k: &str| resources.iter().filter(|x| x["kind"] == k).count();
    // docs/mlspace-choices.md, "Layout".
    assert_eq!(
        [
            count("ManagedPolicy"),
            count("Role"),
            count("ServiceLinkedRole"),
            count("KmsKey"),
            count("Bucket"),
            count("Table")
        ],
        [8, 8, 1, 1, 5, 12]
    );

    // Resolved forms: policy files inlined, references turned into ARNs, tags merged.
    let partition = env["partition"].as_str().unwrap();
    for res in resources {
        let spec = &res["spec"];
        assert!(
            spec.get("documentFile").is_none() && spec.get("assumeRolePolicyFile").is_none(),
            "{}: file reference left",
            res["name"]
        );
        match res["kind"].as_str().unwrap() {
            "ManagedPolicy" => assert!(spec["document"].is_object()),
            "Role" => {
                assert!(spec["assumeRolePolicy"].is_object());
                for p in spec["managedPolicies"].as_array().unwrap() {
                    let p = p.as_str().unwrap();
                    assert!(
                        p.starts_with(&format!("arn:{partition}:iam::")) && p.contains(":policy/"),
                        "{}: {p} is not a policy ARN",
                        res["name"]
                    );
                }
            }
            _ => {}
        }
        if let Some(tags) = spec.get("tags") {
            for (k, v) in env["tags"].as_object().unwrap() {
                assert!(
                    tags.get(k).is_some(),
                    "{}: Environment tag {k}={v} not merged",
                    res["name"]
                );
            }
        }
    }
}

#[test]
fn render_leaves_no_placeholder_unresolved() {
    let r = render_json(&manifests_dir());
    let mut all = Vec::new();
    strings(&r, String::new(), &mut all);
    assert!(all.len() > 500, "only {} strings rendered", all.len());
    let left: Vec<String> = all
        .iter()
        .filter_map(|(p, s)| placeholder_in(s).map(|t| format!("{p}: {t} in `{s}`")))
        .collect();
    assert!(
        left.is_empty(),
        "render -o json left placeholders:\n{}",
        left.join("\n")
    );
    let yaml = render(&manifests_dir(), "yaml");
    let line = yaml.lines().find(|l| placeholder_in(l).is_some());
    assert!(
        line.is_none(),
        "render -o yaml left a placeholder: {}",
        line.unwrap()
    );
    // The checker itself: it sees tokens, and it lets IAM variables be.
    assert_eq!(
        placeholder_in("arn:{AWS_PARTITION}:s3"),
        Some("{AWS_PARTITION}")
    );
    assert_eq!(
        placeholder_in("x/${aws:username}/{lower}/${AWS_X}/{9X}"),
        None
    );
}

#[test]
fn iam_policy_variables_survive_render() {
    let tmp = manifests_copy(&[]);
    std::fs::write(
        tmp.path().join("home-dirs.yaml"),
        r#"apiVersion: mlspace-gitops/v1
kind: ManagedPolicy
metadata:
  name: mlspace-test-home-dirs
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Action: s3:GetObject
        Resource: arn:{AWS_PARTITION}:s3:::mlspace-data-{AWS_ACCOUNT}/private/${aws:username}/*
      - Effect: Allow
        Action: s3:ListBucket
        Resource: arn:{AWS_PARTITION}:s3:::mlspace-data-{AWS_ACCOUNT}
        Condition:
          StringLike:
            s3:prefix: ["private/${aws:username}/*", "project/${aws:PrincipalTag/project}/*"]
"#,
    )
    .unwrap();
    let r = render_json(tmp.path());
    let doc = &resource(&r, "ManagedPolicy", "mlspace-test-home-dirs")["spec"]["document"];
    let account = r["environment"]["account"].as_str().unwrap();
    let partition = r["environment"]["partition"].as_str().unwrap();
    assert_eq!(
        doc["Statement"][0]["Resource"],
        format!("arn:{partition}:s3:::mlspace-data-{account}/private/${{aws:username}}/*")
    );
    assert_eq!(
        doc["Statement"][1]["Condition"]["StringLike"]["s3:prefix"],
        serde_json::json!([
            "private/${aws:username}/*",
            "project/${aws:PrincipalTag/project}/*"
        ])
    );
    let yaml = render(tmp.path(), "yaml");
    assert!(yaml.contains("${aws:username}") && yaml.contains("${aws:PrincipalTag/project}"));
}

#[test]
fn render_yaml_carries_the_same_data_as_json() {
    let json = render_json(&manifests_dir());
    let yaml = render(&manifests_dir(), "yaml");
    let file: Arc<Path> = Arc::from(Path::new("render.yaml"));
    let docs = mlspace_gitops::manifest::yaml::parse_documents(&file, &yaml)
        .unwrap_or_else(|e| panic!("render -o yaml does not parse: {}", e.message));
    assert_eq!(docs.len(), 1, "one YAML document");
    assert!(
        docs[0].value == json,
        "render -o yaml, read back, differs from render -o json"
    );
}

#[test]
fn ecr_access_example_is_merged_into_its_target_policies() {
    let baseline = render_json(&manifests_dir());
    let tmp = manifests_copy(&["docs/examples/ecr-read-access.yaml"]);
    let r = render_json(tmp.path());

    let env = &r["environment"];
    let (partition, region, account) = (
        env["partition"].as_str().unwrap(),
        env["region"].as_str().unwrap(),
        env["account"].as_str().unwrap(),
    );
    let repos: Vec<String> = ["custom-repo1", "custom-repo2", "custom-repo3"]
        .iter()
        .map(|n| format!("arn:{partition}:ecr:{region}:{account}:repository/{n}"))
        .collect();
    const PULL: [&str; 3] = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
    ];

    // No ECR grant without the example.
    for res in baseline["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "ManagedPolicy")
    {
        assert!(
            ecr_actions(&res["spec"]["document"]).is_empty(),
            "{} has ECR actions without EcrAccess",
            res["name"]
        );
    }

    // App and notebook policies: the token on "*", the pulls on exactly the three repositories.
    for name in ["mlspace-app-policy", "mlspace-notebook-policy"] {
        let doc = &resource(&r, "ManagedPolicy", name)["spec"]["document"];
        assert!(
            allows(doc, "ecr:GetAuthorizationToken", "*"),
            "{name}: no ecr:GetAuthorizationToken on *"
        );
        for a in PULL {
            for repo in &repos {
                assert!(allows(doc, a, repo), "{name}: no {a} on {repo}");
            }
            assert!(
                !allows(doc, a, "*"),
                "{name}: {a} must be scoped to the repositories, not *"
            );
        }
        let mut expected: BTreeSet<String> = PULL.iter().map(|s| s.to_string()).collect();
        expected.insert("ecr:GetAuthorizationToken".into());
        assert_eq!(ecr_actions(doc), expected, "{name}: read access only");
        let pull_stmt = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                as_list(&s["Action"])
                    .iter()
                    .any(|a| a == "ecr:BatchGetImage")
            })
            .unwrap();
        assert_eq!(
            as_list(&pull_stmt["Resource"]),
            repos,
            "{name}: the pull statement names the three repository ARNs"
        );
    }

    // The boundary: every read action on "*" (the example grants it `repositories: ["*"]`).
    let boundary = &resource(
        &r,
        "ManagedPolicy",
        "mlspace-project-user-permission-boundary",
    )["spec"]["document"];
    for a in ["ecr:GetAuthorizationToken"].into_iter().chain(PULL) {
        assert!(allows(boundary, a, "*"), "boundary: no {a} on *");
    }

    // Nothing else changes, and EcrAccess is not a rendered resource.
    assert!(
        r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["kind"] != "EcrAccess"),
        "EcrAccess must not be rendered"
    );
    assert_eq!(
        r["resources"].as_array().unwrap().len(),
        baseline["resources"].as_array().unwrap().len()
    );
    for (a, b) in r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .zip(baseline["resources"].as_array().unwrap())
    {
        assert_eq!((&a["kind"], &a["name"]), (&b["kind"], &b["name"]));
        let target = [
            "mlspace-app-policy",
            "mlspace-notebook-policy",
            "mlspace-project-user-permission-boundary",
        ]
        .contains(&a["name"].as_str().unwrap());
        if !target {
            assert_eq!(
                a, b,
                "{} {} changed although the example does not grant to it",
                a["kind"], a["name"]
            );
        }
    }
    assert_eq!(r["environment"], baseline["environment"]);
    // Still within IAM's managed policy quota (the loader refuses larger ones; check the numbers).
    for name in [
        "mlspace-app-policy",
        "mlspace-notebook-policy",
        "mlspace-project-user-permission-boundary",
    ] {
        let len =
            mlspace_policy::quota_len(&resource(&r, "ManagedPolicy", name)["spec"]["document"]);
        assert!(
            len <= mlspace_policy::MANAGED_POLICY_MAX_LEN,
            "{name}: {len} characters"
        );
    }
}

#[test]
fn diff_hint_points_at_the_first_difference() {
    let hint = diff_hint(
        Path::new("tests/golden/x.json"),
        "a\nb\nc\nd\n",
        "a\nB\nc\nd\n",
        "render::",
    );
    assert!(hint.contains("- b\n+ B\n"), "{hint}");
    assert!(
        hint.contains("UPDATE_GOLDEN=1 cargo test --test it render::"),
        "{hint}"
    );
    let hint = diff_hint(Path::new("x"), "a\n", "a\nextra\n", "render::");
    assert!(hint.contains("+ extra"), "{hint}");
    // Only the first hunk is shown.
    let hint = diff_hint(
        Path::new("x"),
        "a\nb\nc\nd\ne\nf\ng\nh\n",
        "a\nB\nc\nd\ne\nf\nG\nh\n",
        "render::",
    );
    assert!(
        hint.contains("- b\n+ B\n  c\n") && !hint.contains("+ G"),
        "{hint}"
    );
}

#[test]
fn docs_manifests_md_examples_validate_and_render() {
    // Every full example in docs/manifests.md (each ```yaml block with an apiVersion),
    // together, must validate; the files they name are stubbed here.
    let text = std::fs::read_to_string(root().join("docs/manifests.md")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    for block in text.split("```yaml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        // The header sketch at the top (`spec: {}` of a Role) is not a complete manifest.
        if !block.contains("apiVersion:") || block.contains("spec: {}") {
            continue;
        }
        n += 1;
        std::fs::write(tmp.path().join(format!("example-{n}.yaml")), block).unwrap();
    }
    assert!(n >= 7, "expected an example per kind, found {n}");
    std::fs::create_dir_all(tmp.path().join("policies")).unwrap();
    let trust = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:FilterLogEvents", "Resource": "*"}]}"#;
    std::fs::write(tmp.path().join("policies/ec2-trust.json"), trust).unwrap();
    std::fs::write(tmp.path().join("policies/mlspace-app-policy.json"), policy).unwrap();
    // The EcrAccess example also grants to the notebook policy.
    std::fs::write(
        tmp.path().join("notebook.yaml"),
        "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata:\n  name: mlspace-notebook-policy\nspec:\n  documentFile: policies/mlspace-app-policy.json\n",
    )
    .unwrap();
    let r = render_json(tmp.path());
    let kinds: BTreeSet<&str> = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Bucket",
            "KmsKey",
            "ManagedPolicy",
            "Role",
            "ServiceLinkedRole",
            "Table"
        ]
        .into_iter()
        .collect()
    );
    assert!(
        !ecr_actions(&resource(&r, "ManagedPolicy", "mlspace-app-policy")["spec"]["document"])
            .is_empty()
    );
}

#[test]
fn data_bucket_notifications_example_fits_the_bundled_data_bucket() {
    // The example's `notifications` block, added to the bundled data bucket as its comment says.
    let example =
        std::fs::read_to_string(root().join("docs/examples/data-bucket-notifications.yaml"))
            .unwrap();
    let block = &example[example
        .find("  notifications:")
        .expect("a notifications block")..];
    let tmp = manifests_copy(&[]);
    let buckets = tmp.path().join("s3/buckets.yaml");
    let text = std::fs::read_to_string(&buckets).unwrap();
    let at = text
        .find("  name: mlspace-data-{AWS_ACCOUNT}\nspec:\n")
        .expect("the data bucket");
    let insert = at + "  name: mlspace-data-{AWS_ACCOUNT}\nspec:\n".len();
    std::fs::write(
        &buckets,
        format!("{}{block}{}", &text[..insert], &text[insert..]),
    )
    .unwrap();
    let r = render_json(tmp.path());
    let data = resource(&r, "Bucket", "mlspace-data-123456789012");
    assert_eq!(
        data["spec"]["notifications"],
        serde_json::json!({"lambdaFunctions": [{
            "arn": "arn:aws:lambda:us-east-1:123456789012:function:mls-lambda-s3-notifier",
            "events": ["s3:ObjectCreated:*"]
        }]})
    );
}

#[test]
fn kms_key_example_renders_with_the_bundled_manifests() {
    let tmp = manifests_copy(&["docs/examples/kms-key.yaml"]);
    let r = render_json(tmp.path());
    let kinds: Vec<&str> = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    // Listed (and created) after the IAM kinds its policy may name, before buckets and tables;
    // the bundled key and the example's, by name.
    let at = kinds.iter().position(|k| *k == "KmsKey").expect("the keys");
    assert_eq!(kinds[at - 1], "ServiceLinkedRole");
    assert_eq!(kinds[at..at + 2], ["KmsKey", "KmsKey"]);
    assert_eq!(kinds[at + 2], "Bucket");
    assert_eq!(r["resources"][at]["name"], "mlspace-key");
    let key = &r["resources"][at + 1];
    assert_eq!(key["name"], "mlspace-project-data");
    let spec = &key["spec"];
    let account = r["environment"]["account"].as_str().unwrap();
    assert_eq!(
        spec["policy"]["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{account}:root")
    );
    // Defaults are left out, the settings given are kept; the Environment's tags are merged in.
    assert!(spec.get("keySpec").is_none() && spec.get("keyUsage").is_none());
    assert_eq!(spec["deletionWindowInDays"], 14);
    assert_eq!(spec["rotationPeriodInDays"], 365);
    assert_eq!(
        spec["aliases"],
        serde_json::json!(["mlspace-project-data-encryption"])
    );
    assert_eq!(spec["tags"]["purpose"], "project-data");
    assert_eq!(spec["tags"]["system"], r["environment"]["tags"]["system"]);
}
