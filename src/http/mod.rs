//! The daemon's HTTP server: metrics, health, readiness, status, and the git webhook that
//! triggers an early reconcile.
//!
//! | route             | answer                                                        |
//! |-------------------|---------------------------------------------------------------|
//! | `GET /metrics`    | Prometheus text format 0.0.4                                  |
//! | `GET /healthz`    | 200 `ok` while the loop is not stuck, else 503 with the step  |
//! | `GET /readyz`     | 200 when [`Readiness::is_ready`], else 503 with the reason    |
//! | `GET /status`     | the [`crate::status::Status`] document as JSON                |
//! | `POST /hooks/git` | 202 and a reconcile trigger for a correctly signed body       |
//! | `POST /api/v1/...` | the control API (suspend, resume, reconcile now): [`control`] |
//! | `GET /`, `/ui/…`  | the read-only web UI ([`crate::ui`])                          |
//!
//! With [`HttpState::ui_auth`] set, the UI and `/status` need one of its credentials;
//! `/metrics`, the probes and the webhook (signed on its own) stay open.
//!
//! Connections are served within [`HttpLimits`] (timeouts, a connection cap): see [`conn`].

mod conn;
pub mod control;

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::secret::Secret;
use crate::status::{Readiness, SharedStatus};

pub use conn::HttpLimits;

/// Largest webhook body accepted; GitHub caps push payloads at 25 MiB but ours only
/// trigger a fetch, so anything big is refused (413) before it is hashed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Header carrying GitHub's HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Everything the handlers need.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// Registry rendered on `/metrics`.
    pub registry: prometheus::Registry,
    /// Served on `/status`.
    pub status: SharedStatus,
    /// Decides `/readyz`.
    pub readiness: Arc<Readiness>,
    /// Key of the webhook signatures; without it the webhook refuses every request.
    pub webhook_secret: Option<Secret>,
    /// Notified once per verified webhook delivery.
    pub trigger: Arc<Notify>,
    /// The control API's token and the way to the daemon's loop (default: not enabled).
    pub control: control::Control,
    /// Credentials the UI and `/status` need (`--ui-auth-file`); `None`: open.
    pub ui_auth: Option<Arc<crate::ui::UiAuth>>,
}

/// Why a webhook delivery was refused. Messages are safe to return: they never hold the
/// secret or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No (or an empty) webhook secret is configured.
    #[error("webhook secret not configured")]
    NotConfigured,
    /// No signature header.
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    /// The header is not `sha256=<hex>`.
    #[error("malformed X-Hub-Signature-256 header")]
    MalformedSignature,
    /// The signature does not match the body.
    #[error("signature mismatch")]
    BadSignature,
}

/// The routes, for embedding or testing without a socket.
pub fn router(state: HttpState) -> Router {
    let mut guarded = crate::ui::routes().route("/status", get(status));
    if let Some(auth) = &state.ui_auth {
        guarded = guarded.layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            crate::ui::require,
        ));
    }
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/hooks/git", post(webhook))
        .merge(control::routes())
        .merge(guarded)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(state))
}

/// Serve on `listener` within the default [`HttpLimits`] until `shutdown` completes, then
/// finish in-flight requests and return.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, state, HttpLimits::default(), shutdown).await
}

/// [`serve`] within `limits`.
pub async fn serve_with_limits(
    listener: TcpListener,
    state: HttpState,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "http server listening");
    }
    conn::serve(listener, router(state), limits, shutdown).await
}

type AppState = State<Arc<HttpState>>;

async fn metrics(State(st): AppState) -> Response {
    let body = crate::metrics::encode(&st.registry);
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response()
}

/// Alive unless the daemon's loop is stuck in one step past its deadline
/// ([`Readiness::stuck`]): then the process should be restarted.
async fn healthz(State(st): AppState) -> (StatusCode, String) {
    match st.readiness.stuck() {
        None => (StatusCode::OK, "ok".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(st): AppState) -> (StatusCode, String) {
    match st.readiness.unready_reason() {
        None => (StatusCode::OK, "ready".into()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

async fn status(State(st): AppState) -> Response {
    // Status is plain data: a writer that panicked mid-update leaves it readable.
    let snapshot = st.status.read().unwrap_or_else(|e| e.into_inner()).clone();
    Json(snapshot).into_response()
}

async fn webhook(State(st): AppState, headers: HeaderMap, body: Bytes) -> Response {
    match verify(st.webhook_secret.as_ref(), &headers, &body) {
        Ok(()) => {
            tracing::info!(bytes = body.len(), "webhook accepted: triggering reconcile");
            st.trigger.notify_one();
            (StatusCode::ACCEPTED, "accepted").into_response()
        }
        // 401 rather than 404 when no secret is configured: the route exists and a sender
        // (e.g. GitHub's delivery log) then sees an authentication failure with the reason,
        // which points at the missing secret instead of at a wrong URL.
        Err(e) => {
            tracing::warn!(reason = %e, "webhook refused");
            (StatusCode::UNAUTHORIZED, e.to_string()).into_response()
        }
    }
}

/// Check a GitHub-style `sha256=<hex>` signature of `body` keyed with `secret`.
pub fn verify(
    secret: Option<&Secret>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WebhookError> {
    // An empty key would make signatures computable by anyone who guesses it is empty.
    let secret = secret
        .filter(|s| !s.expose().is_empty())
        .ok_or(WebhookError::NotConfigured)?;
    let value = headers
        .get(SIGNATURE_HEADER)
        .ok_or(WebhookError::MissingSignature)?;
    let sig = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("sha256="))
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(WebhookError::MalformedSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    // Constant-time comparison; a wrong length is a mismatch too.
    mac.verify_slice(&sig)
        .map_err(|_| WebhookError::BadSignature)
}

/// The `X-Hub-Signature-256` value for `body` under `secret` (for senders and tests).
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_sig(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn verify_cases() {
        let s = Secret::new("It's a Secret to Everybody");
        let body = b"Hello, World!";
        // GitHub's documented example signature for this secret and body.
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(&s, body), good);
        assert_eq!(verify(Some(&s), &with_sig(good), body), Ok(()));
        assert_eq!(
            verify(
                Some(&s),
                &with_sig(&good.to_uppercase().replace("SHA256", "sha256")),
                body
            ),
            Ok(())
        );
        assert_eq!(
            verify(Some(&s), &with_sig(good), b"Hello, World?"),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(Some(&s), &with_sig("sha256=abcd"), body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(Some(&s), &with_sig(&good.replace("sha256=", "sha1=")), body),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(
            verify(Some(&s), &with_sig("sha256=zz"), body),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(
            verify(Some(&s), &HeaderMap::new(), body),
            Err(WebhookError::MissingSignature)
        );
        assert_eq!(
            verify(None, &with_sig(good), body),
            Err(WebhookError::NotConfigured)
        );
        assert_eq!(
            verify(Some(&Secret::new("")), &with_sig(good), body),
            Err(WebhookError::NotConfigured)
        );
    }
}
