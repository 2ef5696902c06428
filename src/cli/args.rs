//! The flags shared by the commands that talk to AWS, and those of the daemon (`run`).
//! Each also reads an `MLSPACE_GITOPS_*` environment variable.

use std::path::PathBuf;

use clap::ValueEnum;

use mlspace_gitops::aws::AwsOptions;
use mlspace_gitops::inventory::PruneOptions;

/// Options shared by the commands that talk to AWS.
#[derive(clap::Args)]
pub struct AwsArgs {
    #[command(flatten)]
    pub input: ManifestArgs,
    /// AWS endpoint (else AWS_ENDPOINT_URL or the SDK's default).
    #[arg(long, env = "MLSPACE_GITOPS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// How long one AWS request attempt may take before it is abandoned and retried.
    #[arg(long, env = "MLSPACE_GITOPS_AWS_ATTEMPT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub aws_attempt_timeout: std::time::Duration,
    /// Print the AWS requests made, by operation.
    #[arg(long)]
    pub stats: bool,
    /// Directory of the local state (the inventory of managed resources).
    #[arg(long, env = "MLSPACE_GITOPS_STATE_DIR", default_value = ".state")]
    pub state_dir: PathBuf,
    /// State store other than the local file: `dynamodb://TABLE` (created if missing).
    #[arg(long, env = "MLSPACE_GITOPS_STATE")]
    pub state: Option<String>,
    #[command(flatten)]
    pub prune: PruneArgs,
}

/// The manifests a command reads, and what one revision of them may hold.
#[derive(clap::Args)]
pub struct ManifestArgs {
    /// Directories of manifests: an Environment each, or a directory of Environments such as
    /// envs/{dev,staging,prod} (repeat the flag or separate with commas). `plan` and `apply`
    /// reconcile each Environment with its own credentials and inventory, concurrently.
    #[arg(
        long,
        short = 'm',
        default_value = "manifests",
        env = "MLSPACE_GITOPS_MANIFESTS",
        value_delimiter = ','
    )]
    pub manifests: Vec<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Prune settings (each Environment's `spec.prune` also turns pruning on).
#[derive(clap::Args)]
pub struct PruneArgs {
    /// Delete managed resources that left the manifests (also `spec.prune` in the Environment).
    #[arg(long, env = "MLSPACE_GITOPS_PRUNE")]
    pub prune: bool,
    /// Allow one revision to delete more than 25% (or more than 10) of the managed resources.
    #[arg(long, env = "MLSPACE_GITOPS_ALLOW_MASS_PRUNE")]
    pub allow_mass_prune: bool,
}

impl PruneArgs {
    /// The library's prune options.
    pub fn options(&self) -> PruneOptions {
        PruneOptions {
            enabled: self.prune,
            allow_mass: self.allow_mass_prune,
        }
    }
}

/// What one revision of the manifests may hold; a revision over any limit is invalid
/// (refused, reported, the last good one kept).
#[derive(clap::Args, Clone)]
pub struct LimitArgs {
    /// Largest manifest file, or file a manifest names (e.g. 4MiB, 500KiB).
    #[arg(long, env = "MLSPACE_GITOPS_MAX_FILE_SIZE", default_value = "4MiB", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Largest revision: every file read for it (manifests and the files they name), or
    /// every file under the manifests path of a git commit.
    #[arg(long, env = "MLSPACE_GITOPS_MAX_REVISION_SIZE", default_value = "32MiB", value_parser = parse_size)]
    pub max_revision_size: u64,
    /// Most YAML documents in a revision.
    #[arg(long, env = "MLSPACE_GITOPS_MAX_DOCUMENTS", default_value_t = 5000)]
    pub max_documents: usize,
    /// Most YAML nodes in a revision, aliases expanded (where an alias bomb stops).
    #[arg(long, env = "MLSPACE_GITOPS_MAX_YAML_NODES", default_value_t = 250_000)]
    pub max_yaml_nodes: usize,
}

impl LimitArgs {
    /// The library's limits from the flags.
    pub fn limits(&self) -> mlspace_gitops::manifest::Limits {
        mlspace_gitops::manifest::Limits {
            max_file_bytes: self.max_file_size,
            max_revision_bytes: self.max_revision_size,
            max_documents: self.max_documents,
            max_nodes: self.max_yaml_nodes,
        }
    }
}

/// A size: bytes, or with a unit (`4MiB`, `512 KiB`, `1GB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("{e} (write a size such as 4MiB)"))
}

impl AwsArgs {
    /// How to reach AWS, before any Environment's role is assumed.
    pub fn aws_options(&self) -> AwsOptions {
        AwsOptions {
            endpoint_url: self.endpoint_url.clone(),
            attempt_timeout: Some(self.aws_attempt_timeout),
            ..AwsOptions::default()
        }
    }

    /// Prune settings from the flags (each Environment's `spec.prune` also turns it on).
    pub fn prune(&self) -> PruneOptions {
        self.prune.options()
    }
}

/// Flags of `run`; each also reads an MLSPACE_GITOPS_* environment variable.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Git URL (https, ssh, file) or local directory of the manifests repository.
    #[arg(long, env = "MLSPACE_GITOPS_SOURCE")]
    pub source: String,
    /// Branch to follow.
    #[arg(long, env = "MLSPACE_GITOPS_BRANCH", default_value = "main")]
    pub branch: String,
    /// Directory of manifests inside the repository: one Environment, or a directory of
    /// Environments (e.g. envs/ with dev/, staging/, prod/), each reconciled concurrently with
    /// its own credentials, lease, inventory and status. A local --source is itself that
    /// directory.
    #[arg(long, env = "MLSPACE_GITOPS_PATH", default_value = "manifests")]
    pub path: PathBuf,
    /// Where the git cache clone (and later the inventory) live.
    #[arg(long, env = "MLSPACE_GITOPS_STATE_DIR", default_value = ".state")]
    pub state_dir: PathBuf,
    /// How often the git remote is checked (e.g. 30s, 1m).
    #[arg(long, env = "MLSPACE_GITOPS_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// How often AWS is observed again to repair drift.
    #[arg(long, env = "MLSPACE_GITOPS_RESYNC", default_value = "10m", value_parser = humantime::parse_duration)]
    pub resync: std::time::Duration,
    /// `apply` repairs drift; `detect` only reports it and never writes to AWS.
    #[arg(long, env = "MLSPACE_GITOPS_MODE", value_enum, default_value_t = ModeArg::Apply)]
    pub mode: ModeArg,
    /// HTTP address for /metrics, /healthz, /readyz, /status, /hooks/git and the control API.
    #[arg(long, env = "MLSPACE_GITOPS_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,
    /// File holding the webhook secret (else MLSPACE_GITOPS_WEBHOOK_SECRET).
    #[arg(long, env = "MLSPACE_GITOPS_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// File holding the bearer token of the control API (suspend, resume, reconcile now;
    /// else MLSPACE_GITOPS_CONTROL_TOKEN). Without it the control API is not enabled.
    #[arg(long, env = "MLSPACE_GITOPS_CONTROL_TOKEN_FILE")]
    pub control_token_file: Option<PathBuf>,
    /// File of credentials the web UI and /status need: lines `token TOKEN` (a bearer
    /// token) and `basic USER:PASSWORD`; without it they are open to whoever reaches the
    /// listener.
    #[arg(long, env = "MLSPACE_GITOPS_UI_AUTH_FILE")]
    pub ui_auth_file: Option<PathBuf>,
    /// Environment variable holding the HTTPS git token.
    #[arg(
        long,
        env = "MLSPACE_GITOPS_GIT_TOKEN_ENV",
        default_value = "MLSPACE_GITOPS_GIT_TOKEN"
    )]
    pub git_token_env: String,
    /// File holding the HTTPS git token.
    #[arg(long, env = "MLSPACE_GITOPS_GIT_TOKEN_FILE")]
    pub git_token_file: Option<PathBuf>,
    /// User name sent with the HTTPS token.
    #[arg(long, env = "MLSPACE_GITOPS_GIT_USERNAME")]
    pub git_username: Option<String>,
    /// SSH private key file for ssh git URLs.
    #[arg(long, env = "MLSPACE_GITOPS_SSH_KEY")]
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file; SSH hosts not in it are refused.
    #[arg(long, env = "MLSPACE_GITOPS_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
    /// How long a reconcile in flight may finish after SIGTERM.
    #[arg(long, env = "MLSPACE_GITOPS_GRACE_PERIOD", default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace_period: std::time::Duration,
    /// AWS endpoint (else AWS_ENDPOINT_URL or the SDK's default).
    #[arg(long, env = "MLSPACE_GITOPS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// How long one AWS request attempt may take before it is abandoned and retried.
    #[arg(long, env = "MLSPACE_GITOPS_AWS_ATTEMPT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub aws_attempt_timeout: std::time::Duration,
    /// Changes applied at once.
    #[arg(long, env = "MLSPACE_GITOPS_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
    /// First retry delay of a failed resource.
    #[arg(long, env = "MLSPACE_GITOPS_RETRY_BASE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub retry_base: std::time::Duration,
    /// Longest retry delay of a failed resource.
    #[arg(long, env = "MLSPACE_GITOPS_RETRY_MAX", default_value = "5m", value_parser = humantime::parse_duration)]
    pub retry_max: std::time::Duration,
    /// Log format.
    #[arg(long, env = "MLSPACE_GITOPS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// State store other than the file under --state-dir: `dynamodb://TABLE`.
    #[arg(long, env = "MLSPACE_GITOPS_STATE")]
    pub state: Option<String>,
    #[command(flatten)]
    pub prune: PruneArgs,
    /// Lease time per Environment: with several replicas on one state store, one reconciles
    /// and another takes over within this time after it dies.
    #[arg(long, env = "MLSPACE_GITOPS_LEASE_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease_ttl: std::time::Duration,
    /// The most Environments this replica reconciles. Replicas on one DynamoDB state table
    /// share the Environments evenly (rendezvous hashing with bounded loads); this caps one
    /// replica's share, and what no replica has room for is reconciled by none (the
    /// MlspaceGitopsEnvironmentNotReconciled alert names it).
    #[arg(long, env = "MLSPACE_GITOPS_MAX_ENVIRONMENTS_PER_REPLICA", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_environments_per_replica: Option<u32>,
    /// Apply a git revision only when its head commit is SSH-signed (git's gpg.format=ssh)
    /// by a key of --allowed-signers; other revisions are refused and reported.
    #[arg(long, env = "MLSPACE_GITOPS_VERIFY_COMMITS")]
    pub verify_commits: bool,
    /// Allowed-signers file for --verify-commits (git's gpg.ssh.allowedSignersFile format),
    /// re-read at every poll.
    #[arg(long, env = "MLSPACE_GITOPS_ALLOWED_SIGNERS")]
    pub allowed_signers: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Bytes one git fetch may transfer; a larger fetch is stopped and reported.
    #[arg(long, env = "MLSPACE_GITOPS_MAX_FETCH_SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub max_fetch_size: u64,
    /// How long one step of the loop (a source sync and load, a reconcile pass) may last
    /// before /healthz fails so that the process is restarted.
    #[arg(long, env = "MLSPACE_GITOPS_STUCK_AFTER", default_value = "15m", value_parser = humantime::parse_duration)]
    pub stuck_after: std::time::Duration,
    /// HTTP: time for a request's head to arrive; also closes connections that send nothing.
    #[arg(long, env = "MLSPACE_GITOPS_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_header_timeout: std::time::Duration,
    /// HTTP: time to read a request's body and answer it (408 after it).
    #[arg(long, env = "MLSPACE_GITOPS_HTTP_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http_request_timeout: std::time::Duration,
    /// HTTP: a connection on which no byte moves for this long is closed.
    #[arg(long, env = "MLSPACE_GITOPS_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub http_idle_timeout: std::time::Duration,
    /// HTTP: connections at once; a new one over the cap replaces the longest-idle one.
    #[arg(
        long,
        env = "MLSPACE_GITOPS_HTTP_MAX_CONNECTIONS",
        default_value_t = 256
    )]
    pub http_max_connections: usize,
    /// Refuse a revision whose lint findings include one this severe or worse, like an
    /// invalid revision (errors always refuse it); e.g. security-warning.
    #[arg(long, env = "MLSPACE_GITOPS_LINT_FAIL_ON", value_enum, default_value_t = FailOn::Error)]
    pub lint_fail_on: FailOn,
    /// Send notifications to URL (repeatable; in the environment variable, separated by
    /// spaces): slack+https://… or teams+https://… (incoming webhooks), webhook+https://…
    /// (the notice as JSON, signed with --notify-secret-file) or
    /// sns://arn:aws:sns:REGION:ACCOUNT:TOPIC. URLs hold tokens: they are never shown.
    #[arg(
        long = "notify",
        value_name = "URL",
        env = "MLSPACE_GITOPS_NOTIFY",
        value_delimiter = ' ',
        hide_env_values = true
    )]
    pub notify: Vec<String>,
    /// The events notified, comma-separated: all, or some of revision_applied,
    /// reconcile_failed, drift_detected, drift_repaired, revision_refused, prune_refused,
    /// leadership_changed.
    #[arg(long, env = "MLSPACE_GITOPS_NOTIFY_EVENTS", default_value = "all")]
    pub notify_events: String,
    /// File holding the HMAC-SHA256 key of the X-Signature-256 header of webhook+
    /// notifications (required with a webhook+ URL).
    #[arg(long, env = "MLSPACE_GITOPS_NOTIFY_SECRET_FILE")]
    pub notify_secret_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Apply,
    Detect,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The least severe lint finding that fails `lint`, or refuses a revision in the daemon.
#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum FailOn {
    Error,
    SecurityWarning,
    Warning,
    Suggestion,
}

impl FailOn {
    /// The diagnostics severity.
    pub fn severity(self) -> mlspace_gitops::manifest::diag::Severity {
        use mlspace_gitops::manifest::diag::Severity;
        match self {
            FailOn::Error => Severity::Error,
            FailOn::SecurityWarning => Severity::SecurityWarning,
            FailOn::Warning => Severity::Warning,
            FailOn::Suggestion => Severity::Suggestion,
        }
    }
}
