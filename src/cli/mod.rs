//! The commands of the binary: each loads manifests, runs the library's pipeline (or the
//! daemon) and prints what it found. Nothing here decides anything the daemon would decide
//! differently.

pub mod args;
pub mod control;
mod daemon;
mod prompt;
mod review;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use mlspace_gitops::apply::Event;
use mlspace_gitops::aws::{AwsContext, AwsOptions, DisplayChain};
use mlspace_gitops::import;
use mlspace_gitops::kinds::Kind;
use mlspace_gitops::manifest::{self, render, Limits, LoadOptions, Loaded, ManifestError};
use mlspace_gitops::pipeline::{self, Clients, Context, EnvReport, Gate, RevisionInfo, Settings};
use mlspace_gitops::plan::Action;
use mlspace_gitops::state::{self, StateStore};

pub use daemon::daemon;
pub use review::{diff, lint, Format};

use args::AwsArgs;

/// What a command found, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, nothing wrong.
    Done,
    /// A plan with changes (`plan --detailed-exitcode`), or revisions that differ (`diff`).
    Changes,
    /// A plan or diff that widens access, with `--deny-widening`.
    Widens,
    /// Something failed; the reason was printed.
    Failed,
}

/// Log to stderr, filtered by `RUST_LOG` (else `default_filter`); colours only on a
/// terminal and never with `NO_COLOR` set. Every event is one line ([`OneLine`]).
pub fn init_logging(default_filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(move || OneLine {
            inner: std::io::stderr(),
            colour,
        });
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A log writer that keeps every event on one line: control characters in it (a name
/// from a manifest, a message from a git remote) are escaped, all but the event's final
/// newline and, on a terminal, the colours' escape character (tracing-subscriber escapes
/// that one in the fields it writes). tracing-subscriber writes each event with one
/// `write_all`, and this writer takes all of it in one `write`.
struct OneLine<W> {
    inner: W,
    colour: bool,
}

impl<W: std::io::Write> std::io::Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (&*text, ""),
        };
        let clean = if self.colour {
            // Escape everything but ESC (the colours).
            body.split('\u{1b}')
                .map(|part| manifest::diag::escape_control(part).into_owned())
                .collect::<Vec<_>>()
                .join("\u{1b}")
        } else {
            manifest::diag::escape_control(body).into_owned()
        };
        self.inner.write_all(clean.as_bytes())?;
        self.inner.write_all(end.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Run an async command on a fresh runtime. Blocking work still running when the command
/// is done (a source sync abandoned on shutdown) is not waited for.
pub fn block_on(
    fut: impl std::future::Future<Output = anyhow::Result<Outcome>>,
) -> anyhow::Result<Outcome> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let out = rt.block_on(fut);
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    out
}

/// Load every Environment under `paths` within `limits`; all must be valid, or errors of
/// all are printed (nothing is applied anywhere).
fn load_all(paths: &[PathBuf], limits: &Limits) -> anyhow::Result<Option<Vec<(PathBuf, Loaded)>>> {
    let shown = || {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let opts = LoadOptions {
        limits: *limits,
        cancel: None,
    };
    match manifest::load_environments_with(paths, &opts) {
        Ok(all) => {
            for (_, l) in &all {
                eprint!("{}", l.warnings);
            }
            Ok(Some(all))
        }
        Err(ManifestError::Invalid(d)) => {
            eprint!("{d}");
            eprintln!("{} error(s) in {}", d.error_count(), shown());
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("loading manifests from {}", shown())),
    }
}

/// [`load_all`] for a command that works on one Environment (`what` says which).
fn load_one(paths: &[PathBuf], what: &str, limits: &Limits) -> anyhow::Result<Option<Loaded>> {
    let Some(mut all) = load_all(paths, limits)? else {
        return Ok(None);
    };
    if all.len() != 1 {
        anyhow::bail!(
            "{what} one Environment, and -m names {}; pass one Environment directory",
            all.len()
        );
    }
    Ok(Some(all.remove(0).1))
}

/// `validate`.
pub fn validate(paths: &[PathBuf], limits: &Limits) -> anyhow::Result<Outcome> {
    let Some(all) = load_all(paths, limits)? else {
        return Ok(Outcome::Failed);
    };
    for (dir, loaded) in &all {
        println!(
            "{}: {} resources valid",
            dir.display(),
            loaded.desired.resources.len()
        );
    }
    Ok(Outcome::Done)
}

/// `render`.
pub fn render(path: &Path, yaml: bool, limits: &Limits) -> anyhow::Result<Outcome> {
    let Some(loaded) = load_one(&[path.to_path_buf()], "render prints", limits)? else {
        return Ok(Outcome::Failed);
    };
    print!(
        "{}",
        if yaml {
            render::to_yaml(&loaded.desired)
        } else {
            render::to_json(&loaded.desired)
        }
    );
    Ok(Outcome::Done)
}

/// `render --resolve`: references shown with the values AWS has assigned (those of
/// resources AWS does not have yet stay as written).
pub async fn render_resolved(
    path: &Path,
    yaml: bool,
    aws: AwsOptions,
    limits: &Limits,
) -> anyhow::Result<Outcome> {
    let Some(loaded) = load_one(&[path.to_path_buf()], "render prints", limits)? else {
        return Ok(Outcome::Failed);
    };
    let mut clients = Clients::new(aws, None);
    let aws = clients
        .connect(&loaded.desired.environment)
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayChain(&e)))?;
    let values = pipeline::reference_values(&aws, &loaded.desired).await;
    let mut v = render::to_json_value(&loaded.desired);
    mlspace_gitops::syntax::refs::substitute(&mut v, &|r| values.get(r).cloned());
    if yaml {
        print!("{}", render::json_to_yaml_text(&v));
    } else {
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(Outcome::Done)
}

/// `schema`.
pub fn schema() -> anyhow::Result<Outcome> {
    let schema = mlspace_gitops::schema::manifest_schema();
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(Outcome::Done)
}

/// The state store, shared by every Environment. A DynamoDB table lives in the account of
/// the standard chain's credentials (the daemon's own), not in an assumed one.
async fn open_store(args: &AwsArgs, region: &str) -> anyhow::Result<Box<dyn StateStore>> {
    let home = match &args.state {
        Some(_) => Some(AwsContext::from_env(&args.aws_options(), region).await),
        None => None,
    };
    state::open(args.state.as_deref(), &args.state_dir, home.as_ref())
        .await
        .context("opening the state store")
}

/// The manifests' git commit when they sit in a repository, for the inventory and history.
fn local_revision(dir: &Path) -> RevisionInfo {
    let commit = git2::Repository::discover(dir).ok().and_then(|r| {
        r.head().ok()?.peel_to_commit().ok().map(|c| RevisionInfo {
            id: c.id().to_string(),
            author: Some(c.author().to_string()),
            message: c.summary().ok().flatten().map(str::to_string),
        })
    });
    commit.unwrap_or_else(|| RevisionInfo {
        id: "local".into(),
        ..RevisionInfo::default()
    })
}

/// One Environment's run, with what it ran on.
struct Run {
    dir: PathBuf,
    loaded: Loaded,
    clients: Clients,
    report: EnvReport,
}

impl Run {
    fn env(&self) -> &manifest::EnvironmentView {
        &self.loaded.desired.environment
    }
}

/// Run the pipeline for every Environment, concurrently, each with its own clients.
async fn run_all(
    all: Vec<(PathBuf, Loaded)>,
    args: &AwsArgs,
    store: &dyn StateStore,
    settings: &Settings,
    gate: &dyn Gate,
    on_event: &(dyn Fn(&str, Event<'_>) + Sync),
) -> Vec<Run> {
    let jobs = all.into_iter().map(|(dir, loaded)| async move {
        let mut clients = Clients::new(args.aws_options(), None);
        let revision = local_revision(&dir);
        let name = loaded.desired.environment.name.clone();
        let events = |ev: Event<'_>| on_event(&name, ev);
        let report = pipeline::run(
            &loaded.desired,
            &revision,
            settings,
            Context {
                clients: &mut clients,
                store,
                lease: None,
                gate,
                on_event: &events,
            },
        )
        .await;
        Run {
            dir,
            loaded,
            clients,
            report,
        }
    });
    futures::future::join_all(jobs).await
}

/// A heading per Environment when there are several.
fn heading(run: &Run, several: bool) {
    if several {
        let env = run.env();
        println!(
            "# Environment {} (account {}, {}) from {}",
            env.name,
            env.account,
            env.region,
            run.dir.display()
        );
    }
}

/// Print what went wrong in a run (and its AWS requests); true when something did.
fn report_problems(run: &Run, stats: bool, several: bool) -> bool {
    if let Some(aws) = run.clients.current() {
        print_stats(aws, stats);
    }
    let problems = run.report.problems();
    for p in &problems {
        if several {
            eprintln!("error: Environment {}: {p}", run.env().name);
        } else {
            eprintln!("error: {p}");
        }
    }
    !problems.is_empty()
}

fn print_stats(aws: &AwsContext, detailed: bool) {
    eprintln!("AWS requests: {}", aws.stats.total());
    if detailed {
        for (op, n) in aws.stats.by_operation() {
            eprintln!("  {op}: {n}");
        }
    }
}

/// `plan`.
pub async fn plan(
    args: AwsArgs,
    format: Format,
    detailed: bool,
    deny_widening: bool,
) -> anyhow::Result<Outcome> {
    let Some(all) = load_all(&args.input.manifests, &args.input.limits.limits())? else {
        return Ok(Outcome::Failed);
    };
    let several = all.len() > 1;
    let store = open_store(&args, &all[0].1.desired.environment.region).await?;
    let settings = Settings {
        mode: pipeline::Mode::Plan,
        prune: args.prune(),
        ..Settings::default()
    };
    let runs = run_all(
        all,
        &args,
        store.as_ref(),
        &settings,
        &pipeline::ApproveAll,
        &|_, _| {},
    )
    .await;
    let planned: Vec<&Run> = runs.iter().filter(|r| r.report.plan().is_some()).collect();
    if format == Format::Markdown {
        let envs: Vec<(String, &mlspace_gitops::plan::Plan)> = planned
            .iter()
            .map(|r| {
                let title = format!("{} ({})", r.env().name, r.dir.display());
                (title, r.report.plan().expect("filtered"))
            })
            .collect();
        let mut findings = manifest::diag::Diagnostics::default();
        for r in &planned {
            findings.extend(r.loaded.warnings.clone());
        }
        print!("{}", review::plan_markdown(&envs, &findings));
    } else if format == Format::Json {
        // One Environment keeps the plan's own JSON contract; several are listed by name.
        let value = if several {
            let envs: Vec<serde_json::Value> = planned
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "environment": r.env().name,
                        "directory": r.dir.display().to_string(),
                        "plan": r.report.plan().map(|p| p.to_json()),
                    })
                })
                .collect();
            serde_json::json!({ "environments": envs })
        } else {
            planned
                .first()
                .and_then(|r| r.report.plan())
                .map(|p| p.to_json())
                .unwrap_or_default()
        };
        if !planned.is_empty() {
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    } else {
        for run in &planned {
            heading(run, several);
            print!("{}", run.report.plan().expect("filtered"));
            if several {
                println!();
            }
        }
    }
    let mut failed = false;
    for run in &runs {
        failed |= report_problems(run, args.stats, several);
    }
    let widens = planned
        .iter()
        .any(|r| r.report.plan().is_some_and(|p| p.widens_access()));
    Ok(if failed {
        Outcome::Failed
    } else if deny_widening && widens {
        Outcome::Widens
    } else if detailed && runs.iter().any(|r| r.report.has_changes()) {
        Outcome::Changes
    } else {
        Outcome::Done
    })
}

/// Progress of an apply, one line per event (prefixed by the Environment when several).
fn print_event(env: &str, several: bool, ev: Event<'_>) {
    let p = if several {
        format!("[{env}] ")
    } else {
        String::new()
    };
    match ev {
        Event::Started(c) => println!(
            "{p}{} {} {}: {} ({} steps)...",
            c.action.symbol(),
            c.kind,
            c.name,
            match c.action {
                Action::Create => "creating",
                Action::Delete => "deleting",
                _ => "updating",
            },
            c.steps.len()
        ),
        Event::StepDone(st) => println!(
            "{p}    {} {}: step {}/{} {} done",
            st.kind, st.name, st.index, st.total, st.op
        ),
        Event::Finished(r) => match &r.error {
            None => println!(
                "{p}  {} {}: done in {:.1}s",
                r.kind,
                r.name,
                r.elapsed.as_secs_f64()
            ),
            Some(e) => println!("{p}  {} {}: FAILED: {}", r.kind, r.name, DisplayChain(e)),
        },
    }
}

/// `apply`.
pub async fn apply(
    args: AwsArgs,
    auto_approve: bool,
    concurrency: usize,
) -> anyhow::Result<Outcome> {
    let Some(all) = load_all(&args.input.manifests, &args.input.limits.limits())? else {
        return Ok(Outcome::Failed);
    };
    let several = all.len() > 1;
    let store = open_store(&args, &all[0].1.desired.environment.region).await?;
    let settings = Settings {
        mode: pipeline::Mode::Apply,
        prune: args.prune(),
        concurrency,
        stop: None,
        only: None,
    };
    let headings: Vec<(String, String)> = all
        .iter()
        .map(|(dir, l)| {
            let e = &l.desired.environment;
            (
                e.name.clone(),
                format!(
                    "# Environment {} (account {}, {}) from {}",
                    e.name,
                    e.account,
                    e.region,
                    dir.display()
                ),
            )
        })
        .collect();
    let gate = Arc::new(prompt::Prompt::new(headings, several, auto_approve));
    let on_event = |env: &str, ev: Event<'_>| print_event(env, several, ev);
    let runs = run_all(
        all,
        &args,
        store.as_ref(),
        &settings,
        gate.as_ref(),
        &on_event,
    )
    .await;
    if let Some(why) = gate.refusal() {
        anyhow::bail!("{why}");
    }
    let mut failed = false;
    for run in &runs {
        if let Some(applied) = &run.report.applied {
            if applied.results.is_empty() && !run.report.has_changes() {
                // Nothing to apply here: the plan said so.
            } else {
                let ok = applied.results.iter().filter(|r| r.error.is_none()).count();
                let label = if several {
                    format!(" for Environment {}", run.env().name)
                } else {
                    String::new()
                };
                println!(
                    "\nApply complete{label}: {ok} succeeded, {} failed. AWS requests: {}.",
                    applied.failures().count(),
                    run.report.requests
                );
                for f in applied.failures() {
                    if let Some(e) = &f.error {
                        println!("  failed: {} {}: {}", f.kind, f.name, DisplayChain(e));
                    }
                }
            }
        }
        failed |= report_problems(run, args.stats, several);
    }
    if gate.cancelled() {
        eprintln!("Apply cancelled.");
        return Ok(Outcome::Failed);
    }
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Done
    })
}

/// `history`.
pub async fn history(args: AwsArgs, limit: usize) -> anyhow::Result<Outcome> {
    let Some(all) = load_all(&args.input.manifests, &args.input.limits.limits())? else {
        return Ok(Outcome::Failed);
    };
    let store = open_store(&args, &all[0].1.desired.environment.region).await?;
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
    Ok(Outcome::Done)
}

/// `import`: `request` names one kind's resources; `None` imports every resource the
/// manifests name (`--all-mlspace`), skipping those AWS does not have.
pub async fn import(
    args: AwsArgs,
    request: Option<(Kind, Vec<String>)>,
    output_dir: Option<PathBuf>,
) -> anyhow::Result<Outcome> {
    let Some(loaded) = load_one(
        &args.input.manifests,
        "import writes manifests for",
        &args.input.limits.limits(),
    )?
    else {
        return Ok(Outcome::Failed);
    };
    let all = request.is_none();
    let request = match request {
        Some((k, names)) => import::Request::from([(k, names)]),
        None => import::request_all(&loaded.desired),
    };
    let mut clients = Clients::new(args.aws_options(), None);
    let aws = clients
        .connect(&loaded.desired.environment)
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayChain(&e)))?;
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
        Outcome::Done
    } else {
        Outcome::Failed
    })
}
