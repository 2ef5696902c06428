//! `run`: the daemon's configuration from its flags and secrets, and the shutdown signal.

use anyhow::Context as _;

use mlspace_gitops::aws::AwsOptions;
use mlspace_gitops::daemon;
use mlspace_gitops::notify::dispatch::{NotifyConfig, NotifyError};
use mlspace_gitops::notify::target::{Scheme, Target};
use mlspace_gitops::notify::EventKind;
use mlspace_gitops::secret::Secret;
use mlspace_gitops::source::{GitAuth, SourceConfig};

use super::args::{ModeArg, RunArgs};
use super::Outcome;

/// `run`: the daemon, until SIGTERM or SIGINT.
pub async fn daemon(a: RunArgs) -> anyhow::Result<Outcome> {
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
    let control_token = match &a.control_token_file {
        Some(f) => Some(
            Secret::from_file(f)
                .with_context(|| format!("reading the control token from {}", f.display()))?,
        ),
        None => std::env::var("MLSPACE_GITOPS_CONTROL_TOKEN")
            .ok()
            .map(|s| Secret::new(s.trim()))
            .filter(|s| !s.expose().is_empty()),
    };
    if control_token
        .as_ref()
        .is_some_and(|t| t.expose().is_empty())
    {
        anyhow::bail!("the control token file is empty");
    }
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
    let notify = notify_config(&a.notify, &a.notify_events, a.notify_secret_file.as_deref())?;
    // Refused at start, with the file and line, rather than serving an open UI.
    let ui_auth = match &a.ui_auth_file {
        Some(f) => Some(std::sync::Arc::new(mlspace_gitops::ui::UiAuth::from_file(
            f,
        )?)),
        None => None,
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
        control_token,
        ui_auth,
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
        prune: a.prune.options(),
        lease_ttl: a.lease_ttl,
        max_environments: a.max_environments_per_replica.map(|n| n as usize),
        allowed_signers,
        limits: a.limits.limits(),
        http: mlspace_gitops::http::HttpLimits {
            header_timeout: a.http_header_timeout,
            request_timeout: a.http_request_timeout,
            idle_timeout: a.http_idle_timeout,
            max_connections: a.http_max_connections,
        },
        stuck_after: a.stuck_after,
        max_fetch_bytes: a.max_fetch_size,
        lint_fail_on: a.lint_fail_on.severity(),
        notify,
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
    Ok(Outcome::Done)
}

/// The notification settings from `--notify`, `--notify-events` and `--notify-secret-file`.
/// Errors name the flag and never quote a URL (it may hold a token).
fn notify_config(
    urls: &[String],
    events: &str,
    secret_file: Option<&std::path::Path>,
) -> anyhow::Result<NotifyConfig> {
    let targets = urls
        .iter()
        .filter(|u| !u.trim().is_empty())
        .enumerate()
        .map(|(i, u)| Target::parse(i, u))
        .collect::<Result<Vec<_>, _>>()?;
    let events =
        EventKind::parse_list(events).map_err(|e| anyhow::anyhow!("--notify-events: {e}"))?;
    let secret = match secret_file {
        Some(f) => Some(
            Secret::from_file(f)
                .with_context(|| format!("reading the notification secret from {}", f.display()))?,
        ),
        None => None,
    };
    if secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
        anyhow::bail!("--notify-secret-file: the file is empty");
    }
    // Unsigned notices could be forged by anyone who can reach the receiver.
    if let Some(t) = targets.iter().find(|t| t.scheme == Scheme::Webhook) {
        if secret.is_none() {
            return Err(NotifyError::NoSecret { label: t.label() }.into());
        }
    }
    Ok(NotifyConfig {
        targets,
        events,
        secret,
    })
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
