//! The `mlspace-gitops` command line: flags, and the exit code of each command. The work is
//! the library's (the same pipeline for `plan`, `apply` and the daemon); what is printed is
//! in [`cli`]. `main` prints an error with its causes and picks the exit code.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use mlspace_gitops::aws::AwsOptions;
use mlspace_gitops::inventory::PruneOptions;
use mlspace_gitops::kinds::Kind;

#[derive(Parser)]
#[command(
    name = "mlspace-gitops",
    version,
    about = "Keep an MLSpace environment's AWS resources equal to YAML manifests in git"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the manifests; print every error as FILE:LINE:COL: error: message.
    Validate {
        /// Directories of manifests: an Environment each, or a directory of Environments
        /// (repeat the flag or separate with commas).
        #[arg(
            long,
            short = 'm',
            default_value = "manifests",
            env = "MLSPACE_GITOPS_MANIFESTS",
            value_delimiter = ','
        )]
        manifests: Vec<PathBuf>,
    },
    /// Print the fully resolved desired state.
    Render {
        /// Directory of manifests.
        #[arg(
            long,
            short = 'm',
            default_value = "manifests",
            env = "MLSPACE_GITOPS_MANIFESTS"
        )]
        manifests: PathBuf,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = RenderFormat::Json)]
        output: RenderFormat,
        /// Read AWS to show references (`{ref:KIND/NAME.ATTRIBUTE}`) with the values AWS has
        /// assigned; without it they are shown as written.
        #[arg(long)]
        resolve: bool,
        /// AWS endpoint for --resolve (else AWS_ENDPOINT_URL or the SDK's default).
        #[arg(long, env = "MLSPACE_GITOPS_ENDPOINT_URL", requires = "resolve")]
        endpoint_url: Option<String>,
    },
    /// Compare AWS with the manifests and print the changes apply would make.
    Plan {
        #[command(flatten)]
        aws: AwsArgs,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = PlanFormat::Text)]
        output: PlanFormat,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// The daemon: watch git (or a directory), reconcile continuously, repair drift, serve
    /// /metrics, /healthz, /readyz, /status and the git webhook.
    Run(Box<RunArgs>),
    /// Print what past reconciles changed (from the state store), newest first.
    History {
        #[command(flatten)]
        aws: AwsArgs,
        /// Records to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Make AWS match the manifests.
    Apply {
        #[command(flatten)]
        aws: AwsArgs,
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
        /// Changes applied at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Print the JSON Schema of a manifest document, for editors (yaml-language-server).
    Schema,
    /// Write manifests for resources that already exist, annotated for adoption: the next
    /// apply only tags them as managed. Account, region and partition become placeholders.
    Import {
        #[command(flatten)]
        aws: AwsArgs,
        /// Kind of the resources named by --name.
        #[arg(long, value_parser = parse_kind, required_unless_present = "all_mlspace", requires = "names")]
        kind: Option<Kind>,
        /// Name of a resource to import (repeatable).
        #[arg(long = "name", requires = "kind")]
        names: Vec<String>,
        /// Import every resource the manifests (--manifests) name; missing ones are reported
        /// and skipped.
        #[arg(long, conflicts_with = "kind")]
        all_mlspace: bool,
        /// Write one file per resource (KIND-NAME.yaml) into this directory instead of
        /// printing one YAML stream.
        #[arg(long, short = 'o')]
        output_dir: Option<PathBuf>,
    },
}

/// A kind `import` can read: any resource kind of the registry.
fn parse_kind(s: &str) -> Result<Kind, String> {
    match Kind::parse(s) {
        Some(k) if k.is_resource() => Ok(k),
        _ => {
            let kinds: Vec<&str> = Kind::RESOURCES.iter().map(|k| k.as_str()).collect();
            Err(format!("expected one of {}", kinds.join(", ")))
        }
    }
}

/// Options shared by the commands that talk to AWS.
#[derive(clap::Args)]
struct AwsArgs {
    /// Directories of manifests: an Environment each, or a directory of Environments such as
    /// envs/{dev,staging,prod} (repeat the flag or separate with commas). Each Environment is
    /// reconciled with its own credentials (`assumeRoleArn`) and inventory, concurrently.
    #[arg(
        long,
        short = 'm',
        default_value = "manifests",
        env = "MLSPACE_GITOPS_MANIFESTS",
        value_delimiter = ','
    )]
    manifests: Vec<PathBuf>,
    /// AWS endpoint (else AWS_ENDPOINT_URL or the SDK's default).
    #[arg(long, env = "MLSPACE_GITOPS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// How long one AWS request attempt may take before it is abandoned and retried.
    #[arg(long, env = "MLSPACE_GITOPS_AWS_ATTEMPT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    aws_attempt_timeout: std::time::Duration,
    /// Print the AWS requests made, by operation.
    #[arg(long)]
    stats: bool,
    /// Directory of the local state (the inventory of managed resources).
    #[arg(long, env = "MLSPACE_GITOPS_STATE_DIR", default_value = ".state")]
    state_dir: PathBuf,
    /// State store other than the local file: `dynamodb://TABLE` (created if missing).
    #[arg(long, env = "MLSPACE_GITOPS_STATE")]
    state: Option<String>,
    /// Delete managed resources that left the manifests (also `spec.prune` in the Environment).
    #[arg(long, env = "MLSPACE_GITOPS_PRUNE")]
    prune: bool,
    /// Allow one revision to delete more than 25% (or more than 10) of the managed resources.
    #[arg(long, env = "MLSPACE_GITOPS_ALLOW_MASS_PRUNE")]
    allow_mass_prune: bool,
}

impl AwsArgs {
    /// How to reach AWS, before any Environment's role is assumed.
    fn aws_options(&self) -> AwsOptions {
        AwsOptions {
            endpoint_url: self.endpoint_url.clone(),
            attempt_timeout: Some(self.aws_attempt_timeout),
            ..AwsOptions::default()
        }
    }

    /// Prune settings from the flags (each Environment's `spec.prune` also turns it on).
    fn prune(&self) -> PruneOptions {
        PruneOptions {
            enabled: self.prune,
            allow_mass: self.allow_mass_prune,
        }
    }
}

/// Flags of `run`; each also reads an MLSPACE_GITOPS_* environment variable.
#[derive(clap::Args)]
struct RunArgs {
    /// Git URL (https, ssh, file) or local directory of the manifests repository.
    #[arg(long, env = "MLSPACE_GITOPS_SOURCE")]
    source: String,
    /// Branch to follow.
    #[arg(long, env = "MLSPACE_GITOPS_BRANCH", default_value = "main")]
    branch: String,
    /// Directory of manifests inside the repository: one Environment, or a directory of
    /// Environments (e.g. envs/ with dev/, staging/, prod/), each reconciled concurrently with
    /// its own credentials, lease, inventory and status. A local --source is itself that
    /// directory.
    #[arg(long, env = "MLSPACE_GITOPS_PATH", default_value = "manifests")]
    path: PathBuf,
    /// Where the git cache clone (and later the inventory) live.
    #[arg(long, env = "MLSPACE_GITOPS_STATE_DIR", default_value = ".state")]
    state_dir: PathBuf,
    /// How often the git remote is checked (e.g. 30s, 1m).
    #[arg(long, env = "MLSPACE_GITOPS_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    interval: std::time::Duration,
    /// How often AWS is observed again to repair drift.
    #[arg(long, env = "MLSPACE_GITOPS_RESYNC", default_value = "10m", value_parser = humantime::parse_duration)]
    resync: std::time::Duration,
    /// `apply` repairs drift; `detect` only reports it and never writes to AWS.
    #[arg(long, env = "MLSPACE_GITOPS_MODE", value_enum, default_value_t = ModeArg::Apply)]
    mode: ModeArg,
    /// HTTP address for /metrics, /healthz, /readyz, /status and /hooks/git.
    #[arg(long, env = "MLSPACE_GITOPS_LISTEN", default_value = "127.0.0.1:9464")]
    listen: std::net::SocketAddr,
    /// File holding the webhook secret (else MLSPACE_GITOPS_WEBHOOK_SECRET).
    #[arg(long, env = "MLSPACE_GITOPS_WEBHOOK_SECRET_FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// Environment variable holding the HTTPS git token.
    #[arg(
        long,
        env = "MLSPACE_GITOPS_GIT_TOKEN_ENV",
        default_value = "MLSPACE_GITOPS_GIT_TOKEN"
    )]
    git_token_env: String,
    /// File holding the HTTPS git token.
    #[arg(long, env = "MLSPACE_GITOPS_GIT_TOKEN_FILE")]
    git_token_file: Option<PathBuf>,
    /// User name sent with the HTTPS token.
    #[arg(long, env = "MLSPACE_GITOPS_GIT_USERNAME")]
    git_username: Option<String>,
    /// SSH private key file for ssh git URLs.
    #[arg(long, env = "MLSPACE_GITOPS_SSH_KEY")]
    ssh_key: Option<PathBuf>,
    /// known_hosts file; SSH hosts not in it are refused.
    #[arg(long, env = "MLSPACE_GITOPS_KNOWN_HOSTS")]
    known_hosts: Option<PathBuf>,
    /// How long a reconcile in flight may finish after SIGTERM.
    #[arg(long, env = "MLSPACE_GITOPS_GRACE_PERIOD", default_value = "30s", value_parser = humantime::parse_duration)]
    grace_period: std::time::Duration,
    /// AWS endpoint (else AWS_ENDPOINT_URL or the SDK's default).
    #[arg(long, env = "MLSPACE_GITOPS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// How long one AWS request attempt may take before it is abandoned and retried.
    #[arg(long, env = "MLSPACE_GITOPS_AWS_ATTEMPT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    aws_attempt_timeout: std::time::Duration,
    /// Changes applied at once.
    #[arg(long, env = "MLSPACE_GITOPS_CONCURRENCY", default_value_t = 8)]
    concurrency: usize,
    /// First retry delay of a failed resource.
    #[arg(long, env = "MLSPACE_GITOPS_RETRY_BASE", default_value = "5s", value_parser = humantime::parse_duration)]
    retry_base: std::time::Duration,
    /// Longest retry delay of a failed resource.
    #[arg(long, env = "MLSPACE_GITOPS_RETRY_MAX", default_value = "5m", value_parser = humantime::parse_duration)]
    retry_max: std::time::Duration,
    /// Log format.
    #[arg(long, env = "MLSPACE_GITOPS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// State store other than the file under --state-dir: `dynamodb://TABLE`.
    #[arg(long, env = "MLSPACE_GITOPS_STATE")]
    state: Option<String>,
    /// Delete managed resources that left the manifests (also `spec.prune`).
    #[arg(long, env = "MLSPACE_GITOPS_PRUNE")]
    prune: bool,
    /// Allow one revision to delete more than 25% (or more than 10) of the managed resources.
    #[arg(long, env = "MLSPACE_GITOPS_ALLOW_MASS_PRUNE")]
    allow_mass_prune: bool,
    /// Lease time per Environment: with several replicas on one state store, one reconciles
    /// and another takes over within this time after it dies.
    #[arg(long, env = "MLSPACE_GITOPS_LEASE_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    lease_ttl: std::time::Duration,
    /// Apply a git revision only when its head commit is SSH-signed (git's gpg.format=ssh)
    /// by a key of --allowed-signers; other revisions are refused and reported.
    #[arg(long, env = "MLSPACE_GITOPS_VERIFY_COMMITS")]
    verify_commits: bool,
    /// Allowed-signers file for --verify-commits (git's gpg.ssh.allowedSignersFile format),
    /// re-read at every poll.
    #[arg(long, env = "MLSPACE_GITOPS_ALLOWED_SIGNERS")]
    allowed_signers: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Apply,
    Detect,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum PlanFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum RenderFormat {
    Json,
    Yaml,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs what it does; one-shot commands only warnings (RUST_LOG overrides).
    let (default_filter, json) = match &cli.command {
        Command::Run(a) => ("info", a.log_format == LogFormat::Json),
        _ => ("warn", false),
    };
    cli::init_logging(default_filter, json);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// What a command found, as an exit code: 1 for any error; with `plan --detailed-exitcode`,
/// 2 for a plan with changes.
fn exit_code(outcome: cli::Outcome) -> ExitCode {
    match outcome {
        cli::Outcome::Failed => ExitCode::FAILURE,
        cli::Outcome::Changes => ExitCode::from(2),
        cli::Outcome::Done => ExitCode::SUCCESS,
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let outcome = match cli.command {
        Command::Validate { manifests } => cli::validate(&manifests),
        Command::Render {
            manifests,
            output,
            resolve,
            endpoint_url,
        } => {
            let yaml = output == RenderFormat::Yaml;
            if resolve {
                let aws = AwsOptions {
                    endpoint_url,
                    ..AwsOptions::default()
                };
                cli::block_on(cli::render_resolved(&manifests, yaml, aws))
            } else {
                cli::render(&manifests, yaml)
            }
        }
        Command::Schema => cli::schema(),
        Command::Plan {
            aws,
            output,
            detailed_exitcode,
        } => cli::block_on(cli::plan(
            aws,
            output == PlanFormat::Json,
            detailed_exitcode,
        )),
        Command::Apply {
            aws,
            auto_approve,
            concurrency,
        } => cli::block_on(cli::apply(aws, auto_approve, concurrency)),
        Command::History { aws, limit } => cli::block_on(cli::history(aws, limit)),
        Command::Import {
            aws,
            kind,
            names,
            all_mlspace,
            output_dir,
        } => {
            let request = match kind {
                Some(k) if !all_mlspace => Some((k, names)),
                _ => None,
            };
            cli::block_on(cli::import(aws, request, output_dir))
        }
        Command::Run(args) => cli::block_on(cli::daemon(*args)),
    };
    Ok(exit_code(outcome?))
}
