//! The `mlspace-gitops` command line: a thin layer over the library that prints errors
//! with their causes and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;

use mlspace_gitops::apply;
use mlspace_gitops::aws::{AwsContext, AwsOptions};
use mlspace_gitops::manifest::{self, render, ManifestError};
use mlspace_gitops::reconcile::{plan_once, Planned};

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
        /// Directory of manifests.
        #[arg(
            long,
            short = 'm',
            default_value = "manifests",
            env = "MLSPACE_GITOPS_MANIFESTS"
        )]
        manifests: PathBuf,
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
}

/// Options shared by the commands that talk to AWS.
#[derive(clap::Args)]
struct AwsArgs {
    /// Directory of manifests.
    #[arg(
        long,
        short = 'm',
        default_value = "manifests",
        env = "MLSPACE_GITOPS_MANIFESTS"
    )]
    manifests: PathBuf,
    /// AWS endpoint (else AWS_ENDPOINT_URL or the SDK's default).
    #[arg(long, env = "MLSPACE_GITOPS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Print the AWS requests made, by operation.
    #[arg(long)]
    stats: bool,
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
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

/// Load manifests; on validation errors print them all and return exit code 1.
fn load(dir: &std::path::Path) -> anyhow::Result<Result<manifest::Loaded, ExitCode>> {
    match manifest::load_dir(dir) {
        Ok(l) => {
            eprint!("{}", l.warnings);
            Ok(Ok(l))
        }
        Err(ManifestError::Invalid(d)) => {
            eprint!("{d}");
            eprintln!("{} error(s) in {}", d.error_count(), dir.display());
            Ok(Err(ExitCode::FAILURE))
        }
        Err(e) => Err(e).with_context(|| format!("loading manifests from {}", dir.display())),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { manifests } => {
            let loaded = match load(&manifests)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            println!(
                "{}: {} resources valid",
                manifests.display(),
                loaded.desired.resources.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { manifests, output } => {
            let loaded = match load(&manifests)? {
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
            let loaded = match load(&aws.manifests)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(plan_cmd(loaded, aws, output, detailed_exitcode))
        }
        Command::Apply {
            aws,
            auto_approve,
            concurrency,
        } => {
            let loaded = match load(&aws.manifests)? {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(apply_cmd(loaded, aws, auto_approve, concurrency))
        }
    }
}

async fn connect(args: &AwsArgs, loaded: &manifest::Loaded) -> AwsContext {
    let opts = AwsOptions {
        endpoint_url: args.endpoint_url.clone(),
        ..AwsOptions::default()
    };
    AwsContext::from_env(&opts, &loaded.desired.environment.region).await
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

async fn plan_cmd(
    loaded: manifest::Loaded,
    args: AwsArgs,
    output: PlanFormat,
    detailed: bool,
) -> anyhow::Result<ExitCode> {
    let aws = connect(&args, &loaded).await;
    let planned = plan_once(&aws, &loaded.desired, &[]).await;
    match output {
        PlanFormat::Text => print!("{}", planned.plan),
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&planned.plan.to_json())?),
    }
    print_stats(&aws, args.stats);
    let failed = report_observe_failures(&planned) || !planned.plan.errors.is_empty();
    Ok(if failed {
        ExitCode::FAILURE
    } else if detailed && planned.plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

async fn apply_cmd(
    loaded: manifest::Loaded,
    args: AwsArgs,
    auto_approve: bool,
    concurrency: usize,
) -> anyhow::Result<ExitCode> {
    let aws = connect(&args, &loaded).await;
    let planned = plan_once(&aws, &loaded.desired, &[]).await;
    print!("{}", planned.plan);
    let observe_failed = report_observe_failures(&planned);
    if !planned.plan.has_changes() {
        print_stats(&aws, args.stats);
        return Ok(if observe_failed || !planned.plan.errors.is_empty() {
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
    println!();
    let report = apply::apply(
        &aws,
        &planned.plan,
        &planned.cx,
        &apply::ApplyOptions { concurrency },
        |ev| match ev {
            apply::Event::Started(c) => println!(
                "{} {} {}: {:?}...",
                c.action.symbol(),
                c.kind,
                c.name,
                c.action
            ),
            apply::Event::Finished(r) => match &r.error {
                None => println!(
                    "  {} {}: done in {:.1}s",
                    r.kind,
                    r.name,
                    r.elapsed.as_secs_f64()
                ),
                Some(e) => println!("  {} {}: FAILED: {e}", r.kind, r.name),
            },
        },
    )
    .await;
    let ok = report.results.iter().filter(|r| r.error.is_none()).count();
    let failed: Vec<_> = report.failures().collect();
    println!(
        "\nApply complete: {ok} succeeded, {} failed. AWS requests: {}.",
        failed.len(),
        aws.stats.total()
    );
    for f in &failed {
        println!(
            "  failed: {} {}: {}",
            f.kind,
            f.name,
            f.error.as_ref().map(|e| e.to_string()).unwrap_or_default()
        );
    }
    print_stats(&aws, args.stats);
    Ok(
        if failed.is_empty() && !observe_failed && planned.plan.errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}
