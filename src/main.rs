//! The `mlspace-gitops` command line: a thin layer over the library that prints errors
//! with their causes and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use mlspace_gitops::manifest::{self, render, ManifestError};

#[derive(Parser)]
#[command(name = "mlspace-gitops", version, about = "Keep an MLSpace environment's AWS resources equal to YAML manifests in git")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the manifests; print every error as FILE:LINE:COL: error: message.
    Validate {
        /// Directory of manifests.
        #[arg(long, short = 'm', default_value = "manifests", env = "MLSPACE_GITOPS_MANIFESTS")]
        manifests: PathBuf,
    },
    /// Print the fully resolved desired state.
    Render {
        /// Directory of manifests.
        #[arg(long, short = 'm', default_value = "manifests", env = "MLSPACE_GITOPS_MANIFESTS")]
        manifests: PathBuf,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = RenderFormat::Json)]
        output: RenderFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RenderFormat {
    Json,
    Yaml,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            println!("{}: {} resources valid", manifests.display(), loaded.desired.resources.len());
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
    }
}
