//! The `mlspace-gitops` command line: flags, and the exit code of each command. The work is
//! the library's (the same pipeline for `plan`, `apply` and the daemon); what is printed is
//! in [`cli`]. `main` prints an error with its causes and picks the exit code.

mod cli;

use cli::args::{AwsArgs, FailOn, LimitArgs, LogFormat, ManifestArgs, RunArgs};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use mlspace_gitops::aws::AwsOptions;
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
    /// Check the manifests; print every error and finding as
    /// FILE:LINE:COL: SEVERITY[CHECK-ID]: message (lint included). Fails on errors only.
    Validate {
        #[command(flatten)]
        input: ManifestArgs,
    },
    /// Lint the manifests offline: every finding of docs/lint.md (errors, security
    /// warnings, warnings, suggestions) as FILE:LINE:COL: SEVERITY[CHECK-ID]: message.
    Lint {
        #[command(flatten)]
        input: ManifestArgs,
        /// Exit 1 when a finding is this severe or worse.
        #[arg(long, value_enum, default_value_t = FailOn::Error)]
        fail_on: FailOn,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Compare the desired state of two git revisions of this repository, offline (no AWS):
    /// resources added, changed and removed, the access each change adds and removes, and
    /// the lint findings the head adds. Exit 0 when equal, 2 when they differ, 1 on error.
    Diff {
        /// Base revision (branch, tag or commit), e.g. origin/main.
        #[arg(long)]
        base: String,
        /// Head revision; the working tree when left out.
        #[arg(long)]
        head: Option<String>,
        /// The manifests, as directories of the working tree.
        #[command(flatten)]
        input: ManifestArgs,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// Exit 3 when the change widens access (a gate for CI).
        #[arg(long)]
        deny_widening: bool,
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
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Compare AWS with the manifests and print the changes apply would make.
    Plan {
        #[command(flatten)]
        aws: AwsArgs,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Exit 3 when the plan widens access: an Allow added, a Deny removed, a boundary
        /// lifted, or a policy of unknown content attached (a gate for CI).
        #[arg(long)]
        deny_widening: bool,
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
    /// Suspend an Environment on a running daemon: it is not reconciled (no AWS request)
    /// until resumed, on every replica and across restarts.
    Suspend {
        /// The Environment (its metadata.name).
        env: String,
        /// Why; shown in /status and the logs.
        #[arg(long)]
        reason: Option<String>,
        /// Who is asking; shown in /status (default: $USER).
        #[arg(long, env = "USER")]
        by: Option<String>,
        #[command(flatten)]
        control: cli::control::ControlArgs,
    },
    /// Resume a suspended Environment on a running daemon; its leader reconciles it now.
    Resume {
        /// The Environment (its metadata.name).
        env: String,
        #[command(flatten)]
        control: cli::control::ControlArgs,
    },
    /// Reconcile now on a running daemon: one Environment, or every one the daemon leads.
    /// Exit 1 when the daemon refuses (e.g. another replica leads: it is named).
    Reconcile {
        /// The Environment (its metadata.name); all when left out.
        env: Option<String>,
        #[command(flatten)]
        control: cli::control::ControlArgs,
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

#[derive(Clone, Copy, ValueEnum, PartialEq)]
/// Output of plan, lint and diff.
enum OutputFormat {
    Text,
    Json,
    /// A pull-request comment body (GitHub-flavoured markdown, under 65,536 characters).
    Markdown,
}

impl OutputFormat {
    fn format(self) -> cli::Format {
        match self {
            OutputFormat::Text => cli::Format::Text,
            OutputFormat::Json => cli::Format::Json,
            OutputFormat::Markdown => cli::Format::Markdown,
        }
    }
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
            // Paths and messages may come from the manifests or a remote: one line each.
            let line = |x: &dyn std::fmt::Display| {
                mlspace_gitops::manifest::diag::escape_control(&x.to_string()).into_owned()
            };
            eprintln!("error: {}", line(&e));
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {}", line(&cause));
            }
            ExitCode::FAILURE
        }
    }
}

/// What a command found, as an exit code: 1 for any error; with `plan --detailed-exitcode`
/// (and always for `diff`), 2 for changes; with `--deny-widening`, 3 when access widens.
fn exit_code(outcome: cli::Outcome) -> ExitCode {
    match outcome {
        cli::Outcome::Failed => ExitCode::FAILURE,
        cli::Outcome::Changes => ExitCode::from(2),
        cli::Outcome::Widens => ExitCode::from(3),
        cli::Outcome::Done => ExitCode::SUCCESS,
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let outcome = match cli.command {
        Command::Validate { input } => cli::validate(&input.manifests, &input.limits.limits()),
        Command::Lint {
            input,
            fail_on,
            output,
        } => cli::lint(
            &input.manifests,
            fail_on.severity(),
            output.format(),
            &input.limits.limits(),
        ),
        Command::Diff {
            base,
            head,
            input,
            output,
            deny_widening,
        } => cli::diff(
            &input.manifests,
            &base,
            head.as_deref(),
            output.format(),
            deny_widening,
            &input.limits.limits(),
        ),
        Command::Render {
            manifests,
            output,
            resolve,
            endpoint_url,
            limits,
        } => {
            let yaml = output == RenderFormat::Yaml;
            if resolve {
                let aws = AwsOptions {
                    endpoint_url,
                    ..AwsOptions::default()
                };
                cli::block_on(cli::render_resolved(
                    &manifests,
                    yaml,
                    aws,
                    &limits.limits(),
                ))
            } else {
                cli::render(&manifests, yaml, &limits.limits())
            }
        }
        Command::Schema => cli::schema(),
        Command::Plan {
            aws,
            output,
            detailed_exitcode,
            deny_widening,
        } => cli::block_on(cli::plan(
            aws,
            output.format(),
            detailed_exitcode,
            deny_widening,
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
        Command::Suspend {
            env,
            reason,
            by,
            control,
        } => cli::block_on(cli::control::control(
            control,
            cli::control::Ask::Suspend { env, reason, by },
        )),
        Command::Resume { env, control } => cli::block_on(cli::control::control(
            control,
            cli::control::Ask::Resume { env },
        )),
        Command::Reconcile { env, control } => cli::block_on(cli::control::control(
            control,
            cli::control::Ask::Reconcile { env },
        )),
    };
    Ok(exit_code(outcome?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cli::args::parse_size;

    #[test]
    fn default_limits_are_the_library_defaults() {
        let cli = Cli::parse_from(["mlspace-gitops", "validate"]);
        let Command::Validate { input } = cli.command else {
            panic!("validate")
        };
        assert_eq!(
            input.limits.limits(),
            mlspace_gitops::manifest::Limits::default()
        );
        let cli = Cli::parse_from(["mlspace-gitops", "run", "--source", "x"]);
        let Command::Run(a) = cli.command else {
            panic!("run")
        };
        assert_eq!(
            a.limits.limits(),
            mlspace_gitops::manifest::Limits::default()
        );
        let http = mlspace_gitops::http::HttpLimits::default();
        assert_eq!(
            (
                a.http_header_timeout,
                a.http_request_timeout,
                a.http_idle_timeout,
                a.http_max_connections
            ),
            (
                http.header_timeout,
                http.request_timeout,
                http.idle_timeout,
                http.max_connections
            )
        );
        assert_eq!(a.stuck_after, mlspace_gitops::status::DEFAULT_STUCK_AFTER);
        assert_eq!(
            a.max_fetch_size,
            mlspace_gitops::source::DEFAULT_MAX_FETCH_BYTES
        );
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
    }
}
