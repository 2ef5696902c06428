//! Several Environments from one command against moto: a directory of Environments in two
//! accounts (one reached by assuming a role with an external id), each applied with its own
//! credentials and inventory; an Environment whose credentials reach the wrong account is
//! refused without touching anything; names across Environments must be unique.

use std::path::Path;
use std::process::Output;

use crate::support::{mlspace, text as out, Clients as _, CommandExt, Moto};

const DEV_ACCOUNT: &str = "123456789012"; // moto's default account
const PROD_ACCOUNT: &str = "111111111111";

fn env_doc(name: &str, account: &str, extra: &str) -> String {
    format!("apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {{name: {name}}}\nspec:\n  region: us-east-1\n  account: \"{account}\"\n  tags: {{stage: {name}}}\n{extra}")
}

fn role(name: &str) -> String {
    format!("---\napiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: {name}}}\nspec:\n  assumeRolePolicy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{Service: sagemaker.amazonaws.com}}, Action: 'sts:AssumeRole'}}]}}\n")
}

/// A role with the Environment's policy attached (by name, so by that account's ARN).
fn role_attached(name: &str) -> String {
    format!("{}  managedPolicies: [mlspace-env-policy]\n", role(name))
}

fn policy() -> String {
    "---\napiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: mlspace-env-policy}\nspec:\n  document: {Version: '2012-10-17', Statement: [{Effect: Allow, Action: 's3:GetObject', Resource: 'arn:{AWS_PARTITION}:s3:::mlspace-data-{AWS_ACCOUNT}/*'}]}\n".into()
}

fn table(name: &str) -> String {
    format!("---\napiVersion: mlspace-gitops/v1\nkind: Table\nmetadata: {{name: {name}}}\nspec:\n  partitionKey: {{name: id, type: S}}\n")
}

fn write_env(root: &Path, dir: &str, docs: &[String]) {
    let d = root.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("manifests.yaml"), docs.concat()).unwrap();
}

/// `mlspace-gitops ARGS` on every directory of `manifests`, against `moto`, with the state in
/// `state` (for the commands that keep one).
fn cli(moto: &Moto, manifests: &[&Path], state: &Path, args: &[&str]) -> Output {
    let mut c = mlspace(args);
    for m in manifests {
        c.manifests(m);
    }
    if args[0] != "validate" {
        c.state_dir(state);
    }
    c.aws(moto).run()
}

/// IAM clients in `account` (moto's default one, or another reached by assuming a role).
async fn iam_in(moto: &Moto, account: &str) -> aws_sdk_iam::Client {
    if account == DEV_ACCOUNT {
        moto.aws().await.iam()
    } else {
        moto.iam_in_account(account).await
    }
}

async fn role_arn(iam: &aws_sdk_iam::Client, name: &str) -> Option<String> {
    iam.get_role()
        .role_name(name)
        .send()
        .await
        .ok()
        .and_then(|r| r.role().map(|r| r.arn().to_string()))
}

#[test]
fn a_directory_of_environments_in_two_accounts_applies_each_with_its_own_credentials() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let envs = root.path().join("envs");
    write_env(
        &envs,
        "dev",
        &[
            env_doc("dev", DEV_ACCOUNT, ""),
            policy(),
            role_attached("mlspace-dev-role"),
            table("mlspace-dev-table"),
        ],
    );
    write_env(
        &envs,
        "prod",
        &[
            env_doc(
                "prod",
                PROD_ACCOUNT,
                "  assumeRoleArn: \"arn:{AWS_PARTITION}:iam::{AWS_ACCOUNT}:role/mlspace-gitops\"\n  externalId: mlspace-prod-2026\n",
            ),
            policy(),
            role_attached("mlspace-prod-role"),
        ],
    );

    let o = cli(&moto, &[&envs], state.path(), &["validate"]);
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("dev: 3 resources valid"), "{text}");
    assert!(text.contains("prod: 2 resources valid"), "{text}");

    let o = cli(&moto, &[&envs], state.path(), &["apply", "--auto-approve"]);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("# Environment dev (account 123456789012"),
        "{text}"
    );
    assert!(
        text.contains("# Environment prod (account 111111111111"),
        "{text}"
    );
    assert!(text.contains("[prod] + Role mlspace-prod-role"), "{text}");

    rt.block_on(async {
        let dev = iam_in(&moto, DEV_ACCOUNT).await;
        let prod = iam_in(&moto, PROD_ACCOUNT).await;
        assert_eq!(
            role_arn(&dev, "mlspace-dev-role").await.as_deref(),
            Some("arn:aws:iam::123456789012:role/mlspace-dev-role")
        );
        assert_eq!(
            role_arn(&prod, "mlspace-prod-role").await.as_deref(),
            Some("arn:aws:iam::111111111111:role/mlspace-prod-role")
        );
        // Each account holds only its own Environment's resources.
        assert_eq!(role_arn(&dev, "mlspace-prod-role").await, None);
        assert_eq!(role_arn(&prod, "mlspace-dev-role").await, None);
        // The shared policy name exists once per account, with that account's ARN inside.
        let doc = prod
            .get_policy_version()
            .policy_arn("arn:aws:iam::111111111111:policy/mlspace-env-policy")
            .version_id("v1")
            .send()
            .await
            .unwrap();
        let text = doc
            .policy_version()
            .unwrap()
            .document()
            .unwrap()
            .to_string();
        assert!(text.contains("mlspace-data-111111111111"), "{text}");
    });

    // Each Environment has its own inventory.
    for (env, n) in [("dev", 3), ("prod", 2)] {
        let file = state.path().join(format!("state/{env}.json"));
        let inv: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let entries = inv["inventory"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or_else(|| panic!("{inv}"));
        assert_eq!(entries, n, "{env}: {inv}");
    }

    // Converged: a second plan of both has nothing to do; the JSON names each Environment.
    let o = cli(
        &moto,
        &[&envs],
        state.path(),
        &["plan", "--detailed-exitcode", "-o", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["environment"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "prod"]);

    // The same directories named one by one give the same result.
    let o = cli(
        &moto,
        &[&envs.join("dev"), &envs.join("prod")],
        state.path(),
        &["plan", "--detailed-exitcode"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

#[test]
fn credentials_of_another_account_are_refused_and_nothing_is_touched() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let envs = root.path().join("envs");
    write_env(
        &envs,
        "dev",
        &[env_doc("dev", DEV_ACCOUNT, ""), role("mlspace-ok-role")],
    );
    // No assumeRoleArn: the standard chain reaches moto's default account, not this one.
    write_env(
        &envs,
        "prod",
        &[
            env_doc("prod", "222222222222", ""),
            role("mlspace-wrong-role"),
        ],
    );
    let o = cli(&moto, &[&envs], state.path(), &["apply", "--auto-approve"]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the credentials for Environment prod reach account 123456789012, not 222222222222; nothing was read or changed"),
        "{text}"
    );
    rt.block_on(async {
        let dev = iam_in(&moto, DEV_ACCOUNT).await;
        // The reachable Environment still converges; the refused one created nothing.
        assert!(role_arn(&dev, "mlspace-ok-role").await.is_some());
        assert_eq!(role_arn(&dev, "mlspace-wrong-role").await, None);
    });
    assert!(!state.path().join("state/prod.json").exists());
}

#[test]
fn environments_need_distinct_names_and_one_owner_per_resource() {
    let moto = Moto::start();
    let state = tempfile::tempdir().unwrap();

    // Two Environments with one name would share an inventory and a lease.
    let root = tempfile::tempdir().unwrap();
    let envs = root.path().join("envs");
    write_env(
        &envs,
        "a",
        &[env_doc("same", DEV_ACCOUNT, ""), role("mlspace-a-role")],
    );
    write_env(
        &envs,
        "b",
        &[env_doc("same", DEV_ACCOUNT, ""), role("mlspace-b-role")],
    );
    let o = cli(&moto, &[&envs], state.path(), &["apply", "--auto-approve"]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let b = envs.join("b/manifests.yaml");
    assert!(
        text.contains(&format!(
            "{}:3:18: error: metadata.name: Environment `same` is also defined in {}",
            b.display(),
            envs.join("a").display()
        )),
        "{text}"
    );
    // Validation failed: nothing was planned, so nothing reached AWS.
    assert!(!text.contains("Role"), "{text}");

    // Two Environments in one account may not both manage one role.
    let root = tempfile::tempdir().unwrap();
    let envs = root.path().join("envs");
    write_env(
        &envs,
        "a",
        &[
            env_doc("alpha", DEV_ACCOUNT, ""),
            role("mlspace-shared-role"),
        ],
    );
    write_env(
        &envs,
        "b",
        &[
            env_doc("beta", DEV_ACCOUNT, ""),
            role("mlspace-shared-role"),
        ],
    );
    let o = cli(&moto, &[&envs], state.path(), &["validate"]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "{}:9:11: error: metadata.name: Role `mlspace-shared-role` in account 123456789012 is also managed by Environment `alpha`; one resource has one owner",
            envs.join("b/manifests.yaml").display()
        )),
        "{text}"
    );
}
