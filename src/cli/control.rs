//! `suspend`, `resume` and `reconcile`: requests to a running daemon's control API
//! (`mlspace_gitops::http::control`), with the token of `--token-file`. The server's
//! message is printed; the exit code is 0 when it agreed, 1 otherwise.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use mlspace_gitops::secret::Secret;

use super::Outcome;

/// Where the daemon listens unless told (`run --listen`'s default).
pub const DEFAULT_DAEMON: &str = "http://127.0.0.1:9464";

/// How long a request may take: the daemon answers between reconcile passes.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The flags every control command takes.
#[derive(clap::Args)]
pub struct ControlArgs {
    /// The daemon's HTTP address (its `run --listen`), as http://HOST:PORT.
    #[arg(long, env = "MLSPACE_GITOPS_DAEMON", default_value = DEFAULT_DAEMON)]
    pub daemon: String,
    /// File holding the control token (the daemon's --control-token-file); else
    /// MLSPACE_GITOPS_CONTROL_TOKEN.
    #[arg(long, env = "MLSPACE_GITOPS_CONTROL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// What to ask.
pub enum Ask {
    /// Suspend `env`.
    Suspend {
        /// The Environment.
        env: String,
        /// Why.
        reason: Option<String>,
        /// Who.
        by: Option<String>,
    },
    /// Resume `env`.
    Resume {
        /// The Environment.
        env: String,
    },
    /// Reconcile `env`, or every Environment.
    Reconcile {
        /// The Environment, or all.
        env: Option<String>,
    },
}

/// The token from `--token-file` or `MLSPACE_GITOPS_CONTROL_TOKEN`.
pub fn token(file: Option<&PathBuf>) -> anyhow::Result<Secret> {
    let token = match file {
        Some(f) => Secret::from_file(f)
            .with_context(|| format!("reading the control token from {}", f.display()))?,
        None => std::env::var("MLSPACE_GITOPS_CONTROL_TOKEN")
            .ok()
            .map(|t| Secret::new(t.trim()))
            .unwrap_or_else(|| Secret::new("")),
    };
    if token.expose().is_empty() {
        anyhow::bail!(
            "no control token: pass --token-file FILE (or set MLSPACE_GITOPS_CONTROL_TOKEN)"
        );
    }
    Ok(token)
}

/// Send `request` to the daemon and print its answer.
pub async fn control(args: ControlArgs, request: Ask) -> anyhow::Result<Outcome> {
    let token = token(args.token_file.as_ref())?;
    let seg = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let (path, body) = match &request {
        Ask::Suspend { env, reason, by } => (
            format!("/api/v1/environments/{}/suspend", seg(env)),
            serde_json::json!({ "reason": reason, "by": by }).to_string(),
        ),
        Ask::Resume { env } => (
            format!("/api/v1/environments/{}/resume", seg(env)),
            String::new(),
        ),
        Ask::Reconcile { env: Some(env) } => (
            format!("/api/v1/environments/{}/reconcile", seg(env)),
            String::new(),
        ),
        Ask::Reconcile { env: None } => ("/api/v1/reconcile".to_string(), String::new()),
    };
    let (status, answer) = tokio::time::timeout(TIMEOUT, post(&args.daemon, &path, &token, body))
        .await
        .with_context(|| format!("no answer from {} within {TIMEOUT:?}", args.daemon))??;
    let message = serde_json::from_str::<Value>(&answer)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or(answer);
    let message = mlspace_gitops::manifest::diag::escape_control(&message).into_owned();
    if (200..300).contains(&status) {
        println!("{message}");
        Ok(Outcome::Done)
    } else {
        eprintln!("error: {message} (HTTP {status})");
        Ok(Outcome::Failed)
    }
}

/// One POST over a fresh connection; the status and the body.
async fn post(
    daemon: &str,
    path: &str,
    token: &Secret,
    body: String,
) -> anyhow::Result<(u16, String)> {
    let base: Uri = daemon
        .parse()
        .with_context(|| format!("--daemon {daemon:?} is not a URL"))?;
    if base.scheme_str() != Some("http") {
        anyhow::bail!("--daemon {daemon:?}: expected http://HOST:PORT");
    }
    let authority = base
        .authority()
        .with_context(|| format!("--daemon {daemon:?} names no host"))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .with_context(|| format!("connecting to the daemon at {daemon}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake with the daemon")?;
    tokio::spawn(conn);
    // A daemon behind a path prefix keeps it.
    let prefix = base.path().trim_end_matches('/');
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{prefix}{path}"))
        .header(hyper::header::HOST, authority.as_str())
        .header(
            hyper::header::AUTHORIZATION,
            format!("Bearer {}", token.expose()),
        )
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .context("building the request")?;
    let res = sender
        .send_request(req)
        .await
        .with_context(|| format!("sending the request to {daemon}"))?;
    let status = res.status().as_u16();
    let bytes = res
        .into_body()
        .collect()
        .await
        .context("reading the daemon's answer")?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
