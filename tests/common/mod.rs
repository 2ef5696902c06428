//! Test harness: a real moto server on a free loopback port, started per test binary
//! (or per test) through `scripts/moto.sh`, and AWS clients pointed at it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

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
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::Builder::new()
            .prefix("moto")
            .tempdir()
            .unwrap()
            .keep();
        let log = dir.join("moto.log");
        let pid_file = dir.join("moto.pid");
        let out = Command::new("bash")
            .arg(root.join("scripts/moto.sh"))
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

    /// Clients for this server (the same construction the CLI uses).
    pub async fn aws(&self) -> AwsContext {
        let creds = aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "test");
        AwsContext::from_sdk_config(&self.sdk_config(creds).await)
    }

    /// SDK config for this server with the given credentials.
    async fn sdk_config(&self, creds: aws_sdk_iam::config::Credentials) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .load()
            .await
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
        aws_sdk_iam::Client::new(&self.sdk_config(creds).await)
    }

    /// Empty every account of this server (moto's `POST /moto-api/reset`): a clean account
    /// without the cost of a new server. AWS managed policies are loaded again.
    pub fn reset(&self) {
        let out = Command::new("curl")
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

/// The bundled manifests directory.
pub fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// An inventory entry in environment `dev`, as the state store tests write them.
pub fn entry(
    kind: mlspace_gitops::kinds::Kind,
    name: &str,
    revision: &str,
) -> mlspace_gitops::state::InventoryEntry {
    mlspace_gitops::state::InventoryEntry {
        kind,
        name: name.into(),
        arn: (kind == mlspace_gitops::kinds::Kind::Role)
            .then(|| format!("arn:aws:iam::123456789012:role/{name}")),
        environment: "dev".into(),
        revision: revision.into(),
        spec_digest: mlspace_gitops::state::spec_digest(&serde_json::json!({ "name": name })),
        updated_at: 1_700_000_000_000,
        retain: false,
        force_destroy: false,
        creating: false,
    }
}
