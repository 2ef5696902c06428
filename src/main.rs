//! The `mlspace-gitops` command line: a thin layer over the library that prints errors
//! with their causes and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;

use mlspace_gitops::apply;
use mlspace_gitops::aws::{AccountError, AwsContext, AwsOptions};
use mlspace_gitops::daemon;
use mlspace_gitops::import;
use mlspace_gitops::kinds::Kind;
use mlspace_gitops::manifest::{self, render, ManifestError};
use mlspace_gitops::reconcile::{inventory, plan_with_inventory, Planned};
use mlspace_gitops::secret::Secret;
use mlspace_gitops::source::{GitAuth, SourceConfig};
use mlspace_gitops::state;

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

fn parse_kind(s: &str) -> Result<Kind, String> {
    match Kind::parse(s) {
        Some(
            k @ (Kind::ManagedPolicy
            | Kind::Role
            | Kind::ServiceLinkedRole
            | Kind::Bucket
            | Kind::Table),
        ) => Ok(k),
        _ => Err("expected ManagedPolicy, Role, ServiceLinkedRole, Bucket or Table".into()),
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

#[derive(Clone, Copy, ValueEnum)]
enum PlanFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
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

/// Load every Environment under `paths`; all must be valid, or errors of all are printed
/// and the exit code is 1 (nothing is applied anywhere).
fn load_all(
    paths: &[PathBuf],
) -> anyhow::Result<Result<Vec<(PathBuf, manifest::Loaded)>, ExitCode>> {
    let shown = || {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match manifest::load_environments(paths) {
        Ok(all) => {
            for (_, l) in &all {
                eprint!("{}", l.warnings);
            }
            Ok(Ok(all))
        }
        Err(ManifestError::Invalid(d)) => {
            eprint!("{d}");
            eprintln!("{} error(s) in {}", d.error_count(), shown());
            Ok(Err(ExitCode::FAILURE))
        }
        Err(e) => Err(e).with_context(|| format!("loading manifests from {}", shown())),
    }
}

/// [`load_all`] for a command that works on one Environment (`what` says which).
fn load_one(paths: &[PathBuf], what: &str) -> anyhow::Result<Result<manifest::Loaded, ExitCode>> {
    let mut all = match load_all(paths)? {
        Ok(all) => all,
        Err(code) => return Ok(Err(code)),
    };
    if all.len() != 1 {
        anyhow::bail!(
            "{what} one Environment, and -m names {}; pass one Environment directory",
            all.len()
        );
    }
    Ok(Ok(all.remove(0).1))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { manifests } => {
            let all = match load_all(&manifests)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            for (dir, loaded) in &all {
                println!(
                    "{}: {} resources valid",
                    dir.display(),
                    loaded.desired.resources.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { manifests, output } => {
            let loaded = match load_one(std::slice::from_ref(&manifests), "render prints")? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let text = match output {
                RenderFormat::Json => render::to_json(&loaded.desired),
                RenderFormat::Yaml => render::to_yaml(&loaded.desired),
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            aws,
            output,
            detailed_exitcode,
        } => {
            let all = match load_all(&aws.manifests)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(plan_cmd(all, aws, output, detailed_exitcode))
        }
        Command::History { aws, limit } => {
            let all = match load_all(&aws.manifests)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(history_cmd(all, aws, limit))
        }
        Command::Run(args) => {
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(run_daemon(*args))
        }
        Command::Apply {
            aws,
            auto_approve,
            concurrency,
        } => {
            let all = match load_all(&aws.manifests)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(apply_cmd(all, aws, auto_approve, concurrency))
        }
        Command::Import {
            aws,
            kind,
            names,
            all_mlspace,
            output_dir,
        } => {
            let loaded = match load_one(&aws.manifests, "import writes manifests for")? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let request = match kind {
                Some(k) if !all_mlspace => import::Request::from([(k, names)]),
                _ => import::request_all(&loaded.desired),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(import_cmd(loaded, aws, request, all_mlspace, output_dir))
        }
        Command::Schema => {
            let schema = mlspace_gitops::schema::manifest_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Clients for one Environment: the standard chain, then its `assumeRoleArn` when set. The
/// account the credentials reach must be the Environment's, or nothing is read or changed.
async fn connect(args: &AwsArgs, env: &manifest::EnvironmentView) -> anyhow::Result<AwsContext> {
    let opts = args.aws_options().for_environment(env);
    let aws = AwsContext::from_env(&opts, &env.region).await;
    match aws.check_account(&env.account).await {
        Ok(()) => {}
        Err(AccountError::WrongAccount { actual, expected }) => anyhow::bail!(
            "the credentials for Environment {} reach account {actual}, not {expected}; nothing was read or changed (set spec.assumeRoleArn, or run with that account's credentials)",
            env.name
        ),
        Err(e) => {
            return Err(e).with_context(|| {
                format!("checking the credentials for Environment {}", env.name)
            })
        }
    }
    Ok(aws)
}

/// The state store, shared by every Environment. A DynamoDB table lives in the account of
/// the standard chain's credentials (the daemon's own), not in an assumed one.
async fn open_store(
    args: &AwsArgs,
    region: &str,
) -> anyhow::Result<(Box<dyn state::StateStore>, Option<AwsContext>)> {
    let home = match &args.state {
        Some(_) => Some(AwsContext::from_env(&args.aws_options(), region).await),
        None => None,
    };
    let store = state::open(args.state.as_deref(), &args.state_dir, home.as_ref())
        .await
        .context("opening the state store")?;
    Ok((store, home))
}

fn print_stats(aws: &AwsContext, detailed: bool) {
    eprintln!("AWS requests: {}", aws.stats.total());
    if detailed {
        for (op, n) in aws.stats.by_operation() {
            eprintln!("  {op}: {n}");
        }
    }
}

/// Print observation failures; they make the plan partial, so the command fails.
fn report_observe_failures(planned: &Planned) -> bool {
    for (kind, e) in &planned.observation.failures {
        eprintln!("error: cannot read {kind} resources: {e}");
    }
    !planned.observation.failures.is_empty()
}

/// The inventory, and the removals it implies.
struct Inventory {
    entries: Vec<state::InventoryEntry>,
    removals: inventory::Removals,
}

async fn open_inventory(
    args: &AwsArgs,
    store: &dyn state::StateStore,
    desired: &manifest::DesiredState,
) -> Inventory {
    let env = &desired.environment.name;
    let read = store.inventory(env).await;
    let opts = inventory::PruneOptions {
        enabled: args.prune || desired.environment.prune,
        allow_mass: args.allow_mass_prune,
    };
    let removals = inventory::removals(desired, read.as_deref().map_err(|e| aws_chain(e)), opts);
    if let Some(why) = &removals.refused {
        eprintln!("error: Environment {env}: {why}");
    }
    Inventory {
        entries: read.unwrap_or_default(),
        removals,
    }
}

fn aws_chain(e: &dyn std::error::Error) -> String {
    mlspace_gitops::aws::DisplayChain(e).to_string()
}

/// The manifests' git commit when they sit in a repository, for the inventory and history.
fn local_revision(dir: &std::path::Path) -> (String, Option<String>, Option<String>) {
    let commit = git2::Repository::discover(dir).ok().and_then(|r| {
        r.head().ok()?.peel_to_commit().ok().map(|c| {
            (
                c.id().to_string(),
                c.author().to_string(),
                c.summary().ok().flatten().map(str::to_string),
            )
        })
    });
    match commit {
        Some((id, author, msg)) => (id, Some(author), msg),
        None => ("local".into(), None, None),
    }
}

/// One Environment of `plan` or `apply`: its manifests, clients, inventory and plan.
struct EnvRun {
    dir: PathBuf,
    /// The manifests' commit, author and message ([`local_revision`]), for the inventory and
    /// history.
    revision: (String, Option<String>, Option<String>),
    loaded: manifest::Loaded,
    aws: AwsContext,
    inv: Inventory,
    planned: Planned,
}

impl EnvRun {
    fn name(&self) -> &str {
        &self.loaded.desired.environment.name
    }

    /// Whether anything keeps this Environment's run from being a clean success.
    fn has_errors(&self) -> bool {
        !self.planned.observation.failures.is_empty()
            || !self.planned.plan.errors.is_empty()
            || self.inv.removals.refused.is_some()
    }
}

/// Connect, read the inventory and plan every Environment, concurrently. An Environment
/// that cannot be reached is reported and left out; the others go on.
async fn plan_all(
    all: Vec<(PathBuf, manifest::Loaded)>,
    args: &AwsArgs,
    store: &dyn state::StateStore,
) -> (Vec<EnvRun>, usize) {
    let jobs = all.into_iter().map(|(dir, loaded)| async move {
        let aws = connect(args, &loaded.desired.environment).await?;
        let inv = open_inventory(args, store, &loaded.desired).await;
        let planned =
            plan_with_inventory(&aws, &loaded.desired, &inv.removals.removals, &inv.entries).await;
        anyhow::Ok(EnvRun {
            revision: local_revision(&dir),
            dir,
            loaded,
            aws,
            inv,
            planned,
        })
    });
    let mut runs = Vec::new();
    let mut failed = 0;
    for r in futures::future::join_all(jobs).await {
        match r {
            Ok(run) => runs.push(run),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    (runs, failed)
}

/// A heading per Environment when there are several.
fn heading(run: &EnvRun, several: bool) {
    if several {
        let env = &run.loaded.desired.environment;
        println!(
            "# Environment {} (account {}, {}) from {}",
            env.name,
            env.account,
            env.region,
            run.dir.display()
        );
    }
}

async fn plan_cmd(
    all: Vec<(PathBuf, manifest::Loaded)>,
    args: AwsArgs,
    output: PlanFormat,
    detailed: bool,
) -> anyhow::Result<ExitCode> {
    let several = all.len() > 1;
    let region = all[0].1.desired.environment.region.clone();
    let (store, _home) = open_store(&args, &region).await?;
    let (runs, unreachable) = plan_all(all, &args, store.as_ref()).await;
    match output {
        PlanFormat::Text => {
            for run in &runs {
                heading(run, several);
                print!("{}", run.planned.plan);
                if several {
                    println!();
                }
            }
        }
        // One Environment keeps the plan's own JSON contract; several are listed by name.
        PlanFormat::Json if !several => {
            for run in &runs {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&run.planned.plan.to_json())?
                );
            }
        }
        PlanFormat::Json => {
            let envs: Vec<serde_json::Value> = runs
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "environment": r.name(),
                        "directory": r.dir.display().to_string(),
                        "plan": r.planned.plan.to_json(),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "environments": envs }))?
            );
        }
    }
    let mut failed = unreachable > 0;
    for run in &runs {
        print_stats(&run.aws, args.stats);
        failed |= report_observe_failures(&run.planned) | run.has_errors();
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else if detailed && runs.iter().any(|r| r.planned.plan.has_changes()) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

async fn apply_cmd(
    all: Vec<(PathBuf, manifest::Loaded)>,
    args: AwsArgs,
    auto_approve: bool,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let several = all.len() > 1;
    let region = all[0].1.desired.environment.region.clone();
    let (store, _home) = open_store(&args, &region).await?;
    let (runs, unreachable) = plan_all(all, &args, store.as_ref()).await;
    for run in &runs {
        heading(run, several);
        print!("{}", run.planned.plan);
    }
    let mut failed = unreachable > 0;
    for run in &runs {
        failed |= report_observe_failures(&run.planned) | run.has_errors();
    }
    if !runs.iter().any(|r| r.planned.plan.has_changes()) {
        for run in &runs {
            print_stats(&run.aws, args.stats);
            record_inventory(store.as_ref(), run, None).await?;
        }
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }

    if !auto_approve {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("refusing to apply without confirmation: no terminal to ask on; pass --auto-approve");
        }
        eprint!("\nApply these changes? Only 'yes' is accepted: ");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("reading the confirmation")?;
        if answer.trim() != "yes" {
            eprintln!("Apply cancelled.");
            return Ok(ExitCode::FAILURE);
        }
    }
    for run in &runs {
        record_creates(store.as_ref(), run).await?;
    }
    println!();
    let applies = runs.iter().map(|run| {
        let prefix = if several {
            format!("[{}] ", run.name())
        } else {
            String::new()
        };
        apply_env(run, concurrency, prefix)
    });
    let reports = futures::future::join_all(applies).await;
    for (run, report) in runs.iter().zip(&reports) {
        let ok = report.results.iter().filter(|r| r.error.is_none()).count();
        let failures: Vec<_> = report.failures().collect();
        let label = if several {
            format!(" for Environment {}", run.name())
        } else {
            String::new()
        };
        println!(
            "\nApply complete{label}: {ok} succeeded, {} failed. AWS requests: {}.",
            failures.len(),
            run.aws.stats.total()
        );
        for f in &failures {
            println!(
                "  failed: {} {}: {}",
                f.kind,
                f.name,
                f.error.as_ref().map(|e| e.to_string()).unwrap_or_default()
            );
        }
        print_stats(&run.aws, args.stats);
        record_inventory(store.as_ref(), run, Some(report)).await?;
        failed |= !failures.is_empty();
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Apply one Environment's plan, printing each step as it completes.
async fn apply_env(run: &EnvRun, concurrency: usize, p: String) -> apply::ApplyReport {
    apply::apply(
        &run.aws,
        &run.planned.plan,
        &run.planned.cx,
        &apply::ApplyOptions {
            concurrency,
            stop: None,
        },
        |ev| match ev {
            apply::Event::Started(c) => println!(
                "{p}{} {} {}: {} ({} steps)...",
                c.action.symbol(),
                c.kind,
                c.name,
                match c.action {
                    mlspace_gitops::plan::Action::Create => "creating",
                    mlspace_gitops::plan::Action::Delete => "deleting",
                    _ => "updating",
                },
                c.steps.len()
            ),
            apply::Event::StepDone(st) => println!(
                "{p}    {} {}: step {}/{} {} done",
                st.kind, st.name, st.index, st.total, st.op
            ),
            apply::Event::Finished(r) => match &r.error {
                None => println!(
                    "{p}  {} {}: done in {:.1}s",
                    r.kind,
                    r.name,
                    r.elapsed.as_secs_f64()
                ),
                Some(e) => println!("{p}  {} {}: FAILED: {e}", r.kind, r.name),
            },
        },
    )
    .await
}

async fn import_cmd(
    loaded: manifest::Loaded,
    args: AwsArgs,
    request: import::Request,
    all: bool,
    output_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let aws = connect(&args, &loaded.desired.environment).await?;
    let imported = import::import(&aws, &loaded.desired, &request).await?;
    for (kind, name) in &imported.missing {
        eprintln!(
            "{}: {kind} {name} does not exist; skipped",
            if all { "warning" } else { "error" }
        );
    }
    match &output_dir {
        Some(dir) => {
            for path in import::write_dir(dir, &imported.documents)? {
                eprintln!("wrote {}", path.display());
            }
        }
        None => print!("{}", import::to_yaml(&imported.documents)),
    }
    print_stats(&aws, args.stats);
    Ok(if imported.missing.is_empty() || all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_daemon(a: RunArgs) -> anyhow::Result<ExitCode> {
    // Checked here rather than with clap's `requires`, which would also fire for
    // MLSPACE_GITOPS_VERIFY_COMMITS=false. Half a configuration is refused: it would
    // otherwise look like verification while verifying nothing.
    let allowed_signers = match (a.verify_commits, a.allowed_signers) {
        (true, Some(f)) => Some(f),
        (false, None) => None,
        (true, None) => anyhow::bail!("--verify-commits needs --allowed-signers FILE"),
        (false, Some(_)) => {
            anyhow::bail!("--allowed-signers is set but --verify-commits is not; set both")
        }
    };
    let webhook_secret = match &a.webhook_secret_file {
        Some(f) => Some(
            Secret::from_file(f)
                .with_context(|| format!("reading the webhook secret from {}", f.display()))?,
        ),
        None => std::env::var("MLSPACE_GITOPS_WEBHOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .map(Secret::new),
    };
    let token = match &a.git_token_file {
        Some(f) => Some(
            Secret::from_file(f)
                .with_context(|| format!("reading the git token from {}", f.display()))?,
        ),
        None => std::env::var(&a.git_token_env)
            .ok()
            .filter(|s| !s.is_empty())
            .map(Secret::new),
    };
    let cfg = daemon::DaemonConfig {
        source: SourceConfig {
            location: a.source,
            branch: a.branch,
            path: a.path,
            state_dir: a.state_dir,
            auth: GitAuth {
                token,
                username: a.git_username,
                ssh_key: a.ssh_key,
                known_hosts: a.known_hosts,
            },
        },
        interval: a.interval,
        resync: a.resync,
        mode: match a.mode {
            ModeArg::Apply => daemon::Mode::Apply,
            ModeArg::Detect => daemon::Mode::Detect,
        },
        listen: a.listen,
        webhook_secret,
        grace: a.grace_period,
        aws: AwsOptions {
            endpoint_url: a.endpoint_url,
            attempt_timeout: Some(a.aws_attempt_timeout),
            ..AwsOptions::default()
        },
        concurrency: a.concurrency,
        retry_base: a.retry_base,
        retry_max: a.retry_max,
        state: a.state,
        prune: inventory::PruneOptions {
            enabled: a.prune,
            allow_mass: a.allow_mass_prune,
        },
        lease_ttl: a.lease_ttl,
        allowed_signers,
        holder: format!(
            "{}-{}-{:08x}",
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "host".into()),
            std::process::id(),
            rand::random::<u32>()
        ),
    };
    daemon::run(cfg, prometheus::Registry::new(), shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM (ECS, systemd) or SIGINT (a terminal).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// Before applying: list the buckets about to be created in the inventory, so that one a
/// crash leaves without its ownership tag is still known to be ours.
async fn record_creates(store: &dyn state::StateStore, run: &EnvRun) -> anyhow::Result<()> {
    let env = run.name();
    let revision = &run.revision.0;
    let creates = inventory::before_apply(
        &run.loaded.desired,
        &run.planned.plan,
        revision,
        &run.inv.entries,
        state::now_ms(),
    );
    if !creates.is_empty() {
        store
            .record(env, &creates, &[], None)
            .await
            .with_context(|| format!("writing the inventory of Environment {env}"))?;
    }
    Ok(())
}

/// Write the inventory (and a history record when something was applied) back.
async fn record_inventory(
    store: &dyn state::StateStore,
    run: &EnvRun,
    report: Option<&apply::ApplyReport>,
) -> anyhow::Result<()> {
    let env = run.name();
    let (revision, author, message) = run.revision.clone();
    let now = state::now_ms();
    let (upserts, removed) = inventory::after_apply(
        &run.loaded.desired,
        &run.planned.plan,
        report,
        &run.inv.removals.removals,
        &revision,
        &run.inv.entries,
        &run.planned.observation.failed_kinds(),
        now,
    );
    if !upserts.is_empty() || !removed.is_empty() {
        store
            .record(env, &upserts, &removed, None)
            .await
            .with_context(|| format!("writing the inventory of Environment {env}"))?;
    }
    if let Some(h) =
        report.and_then(|r| inventory::history(env, &revision, author, message, r, now))
    {
        store
            .append_history(&h, None)
            .await
            .with_context(|| format!("writing the history of Environment {env}"))?;
    }
    Ok(())
}

async fn history_cmd(
    all: Vec<(PathBuf, manifest::Loaded)>,
    args: AwsArgs,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    let region = all[0].1.desired.environment.region.clone();
    let (store, _home) = open_store(&args, &region).await?;
    for (_, loaded) in &all {
        let env = &loaded.desired.environment.name;
        let records = store
            .history(env, limit)
            .await
            .with_context(|| format!("reading the history of Environment {env}"))?;
        if all.len() > 1 {
            println!("# Environment {env}");
        }
        if records.is_empty() {
            println!("No history for environment {env} in {}.", store.location());
        }
        for r in records {
            let when = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.at),
            );
            println!(
                "{when}  {}  {}  {}",
                r.revision,
                r.result,
                r.author.as_deref().unwrap_or("-")
            );
            if let Some(m) = &r.message {
                println!("    {m}");
            }
            for c in &r.changes {
                let err = c
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                println!(
                    "    {} {} {} {:?}{err}",
                    c.action.symbol(),
                    c.kind,
                    c.name,
                    c.result
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
