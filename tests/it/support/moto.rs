//! A real moto server on a free loopback port, started per test through `scripts/moto.sh`,
//! and AWS clients pointed at it. Each test starts its own server: tests run in parallel in
//! one process, and some reset or count what their server holds.

use std::path::PathBuf;
use std::process::Command;

use super::{require, root};

use mlspace_gitops::aws::AwsContext;

/// The service clients of a context, for tests that look at AWS directly.
pub trait Clients {
    /// IAM.
    fn iam(&self) -> aws_sdk_iam::Client;
    /// S3.
    fn s3(&self) -> aws_sdk_s3::Client;
    /// DynamoDB.
    fn dynamodb(&self) -> aws_sdk_dynamodb::Client;
    /// STS.
    fn sts(&self) -> aws_sdk_sts::Client;
    /// KMS.
    fn kms(&self) -> aws_sdk_kms::Client;
}

impl Clients for AwsContext {
    fn iam(&self) -> aws_sdk_iam::Client {
        self.client()
    }
    fn s3(&self) -> aws_sdk_s3::Client {
        self.client()
    }
    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        self.client()
    }
    fn sts(&self) -> aws_sdk_sts::Client {
        self.client()
    }
    fn kms(&self) -> aws_sdk_kms::Client {
        self.client()
    }
}

/// The account's customer managed policies.
pub async fn local_policies(aws: &AwsContext) -> Vec<aws_sdk_iam::types::Policy> {
    aws.iam()
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .max_items(1000)
        .send()
        .await
        .unwrap()
        .policies
        .unwrap_or_default()
}

/// The versions of the managed policy `arn`.
pub async fn policy_versions(
    aws: &AwsContext,
    arn: &str,
) -> Vec<aws_sdk_iam::types::PolicyVersion> {
    aws.iam()
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .unwrap()
        .versions
        .unwrap_or_default()
}

/// The KMS keys mlspace-gitops made (they carry its name tag; moto also makes the services'
/// `aws/...` keys, and does not report them all as AWS managed) that are not pending
/// deletion: a key made twice shows as two.
pub async fn keys_made(aws: &AwsContext) -> usize {
    let mut made = 0;
    for k in aws.kms().list_keys().send().await.unwrap().keys() {
        let id = k.key_id().unwrap();
        let meta = aws.kms().describe_key().key_id(id).send().await.unwrap();
        let pending = meta.key_metadata().unwrap().key_state()
            == Some(&aws_sdk_kms::types::KeyState::PendingDeletion);
        let tags = aws
            .kms()
            .list_resource_tags()
            .key_id(id)
            .send()
            .await
            .unwrap();
        let named = tags
            .tags()
            .iter()
            .any(|t| t.tag_key() == mlspace_gitops::kinds::kms_key::NAME_TAG);
        if named && !pending {
            made += 1;
        }
    }
    made
}

/// The project's Python venv, which `scripts/moto.sh install` makes for moto
/// (`$MLSPACE_GITOPS_VENV`, by default `.venv`).
pub fn venv() -> PathBuf {
    std::env::var_os("MLSPACE_GITOPS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"))
}

/// The venv's Python, with moto and botocore: `scripts/moto.sh install` makes the venv
/// first when needed (as [`Moto::start`] does), and the test fails with its output when it
/// cannot.
pub fn venv_python() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("scripts/moto.sh"))
        .arg("install")
        .output()
        .expect("run scripts/moto.sh install");
    let py = venv().join("bin/python");
    assert!(
        out.status.success() && py.exists(),
        "scripts/moto.sh install did not make {}, the project venv's Python with botocore \
         (it needs python3 with its venv module: Debian's python3-venv):\n{}",
        py.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    py
}

/// A running moto server; killed on drop.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pid: u32,
    /// moto's log.
    pub log: PathBuf,
}

impl Moto {
    /// Install (if needed) and start moto. Panics with moto's log when it cannot start:
    /// a test never silently skips because the emulator is missing.
    pub fn start() -> Moto {
        // scripts/moto.sh waits for the server with curl, and would only time out without it.
        require("curl");
        let dir = tempfile::Builder::new()
            .prefix("moto")
            .tempdir()
            .unwrap()
            .keep();
        let log = dir.join("moto.log");
        let pid_file = dir.join("moto.pid");
        let out = Command::new("bash")
            .arg(root().join("scripts/moto.sh"))
            .arg("start")
            .arg(&log)
            .env("MOTO_PID_FILE", &pid_file)
            .output()
            .expect("run scripts/moto.sh");
        assert!(
            out.status.success(),
            "moto did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let endpoint = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Moto { endpoint, pid, log }
    }

    /// Environment variables that point the SDK (and the CLI) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// [`Moto::env`] with AWS reached at `endpoint` (a fault proxy in front of this server).
    pub fn env_via(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        for (k, v) in &mut env {
            if *k == "AWS_ENDPOINT_URL" {
                *v = endpoint.to_string();
            }
        }
        env
    }

    /// Clients for this server (the same construction the CLI uses).
    pub async fn aws(&self) -> AwsContext {
        AwsContext::from_sdk_config(&sdk_config(&self.endpoint, test_credentials()).load().await)
    }

    /// IAM in another moto account, reached by assuming a role there (moto maps the
    /// credentials it hands out to the account of the role ARN).
    pub async fn iam_in_account(&self, account: &str) -> aws_sdk_iam::Client {
        let c = self
            .aws()
            .await
            .sts()
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/mlspace-gitops"))
            .role_session_name("test-check")
            .send()
            .await
            .unwrap();
        let c = c.credentials().unwrap();
        let creds = aws_sdk_iam::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "assumed",
        );
        aws_sdk_iam::Client::new(&sdk_config(&self.endpoint, creds).load().await)
    }

    /// Empty every account of this server (moto's `POST /moto-api/reset`): a clean account
    /// without the cost of a new server. AWS managed policies are loaded again.
    pub fn reset(&self) {
        let out = Command::new(require("curl"))
            .args(["-fsS", "-X", "POST"])
            .arg(format!("{}/moto-api/reset", self.endpoint))
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "moto reset failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Number of requests moto has logged so far (one line per request).
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("HTTP/1.1\""))
            .count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

/// The fixed credentials moto accepts.
pub fn test_credentials() -> aws_sdk_iam::config::Credentials {
    aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "test")
}

/// SDK config for AWS at `endpoint` in us-east-1 with `creds`, ready to load (or to adjust
/// first, e.g. its retries).
pub fn sdk_config(
    endpoint: &str,
    creds: aws_sdk_iam::config::Credentials,
) -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
}
