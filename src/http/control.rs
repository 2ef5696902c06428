//! The control API: suspend and resume an Environment, reconcile now. The handlers check
//! the caller's token and hand the request to the daemon's loop ([`ControlCall`]), which
//! answers it ([`ControlReply`]); the loop owns the schedule, the leases and the store.
//!
//! | route | answer |
//! |---|---|
//! | `POST /api/v1/environments/{env}/suspend` | 200: suspended (body `{"reason": "...", "by": "..."}`, both optional) |
//! | `POST /api/v1/environments/{env}/resume` | 200: resumed, and reconciled now where this replica leads |
//! | `POST /api/v1/environments/{env}/reconcile` | 202: a whole reconcile of the Environment starts now |
//! | `POST /api/v1/reconcile` | 202: a whole reconcile of every Environment this replica leads starts now |
//!
//! Every answer is JSON with a `message`. Authentication: `Authorization: Bearer TOKEN`,
//! the token read from `run --control-token-file`; without that file every control route
//! answers 404 `control not enabled`, a missing or wrong token 401. The token is compared
//! in constant time (as SHA-256 digests, so its length does not show either) and never
//! logged. An unknown Environment is 404; reconciling one this replica does not lead is
//! 409 naming the replica that holds its lease, and one that is suspended 409 too.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use super::HttpState;
use crate::secret::Secret;

/// Longest suspension reason or `by` accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// What the control routes need: the token, and the way to the daemon's loop. The default
/// has neither: control not enabled.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// The bearer token; `None`: control not enabled.
    pub token: Option<Secret>,
    /// Where requests go; `None`: control not enabled.
    pub tx: Option<mpsc::Sender<ControlCall>>,
}

/// What a caller asks of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    /// Suspend an Environment: no reconcile until resumed (kept in the state store).
    Suspend {
        /// The Environment.
        environment: String,
        /// Why, as the caller gave it.
        reason: Option<String>,
        /// Who, as the caller named itself.
        by: Option<String>,
    },
    /// Resume a suspended Environment.
    Resume {
        /// The Environment.
        environment: String,
    },
    /// Reconcile one Environment (or, `None`, every one this replica leads) whole, now.
    Reconcile {
        /// The Environment, or all.
        environment: Option<String>,
    },
}

/// A request with the channel its answer goes back on.
#[derive(Debug)]
pub struct ControlCall {
    /// The request.
    pub request: ControlRequest,
    /// Where the loop answers.
    pub reply: oneshot::Sender<ControlReply>,
}

/// How a control request ended, as an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlStatus {
    /// 200: done.
    Ok,
    /// 202: started.
    Accepted,
    /// 404: no such Environment.
    NotFound,
    /// 409: not possible here and now (another replica leads, suspended).
    Conflict,
    /// 503: the daemon cannot do it now (no valid revision yet, the store unreadable).
    Unavailable,
}

impl ControlStatus {
    fn code(self) -> StatusCode {
        match self {
            ControlStatus::Ok => StatusCode::OK,
            ControlStatus::Accepted => StatusCode::ACCEPTED,
            ControlStatus::NotFound => StatusCode::NOT_FOUND,
            ControlStatus::Conflict => StatusCode::CONFLICT,
            ControlStatus::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The loop's answer: a status and a JSON object holding at least `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlReply {
    /// The HTTP status.
    pub status: ControlStatus,
    /// The body.
    pub body: Value,
}

impl ControlReply {
    /// An answer with `message` alone.
    pub fn new(status: ControlStatus, message: impl Into<String>) -> ControlReply {
        ControlReply {
            status,
            body: json!({ "message": message.into() }),
        }
    }

    /// The answer with `key` set in its body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ControlReply {
        self.body[key] = value.into();
        self
    }
}

impl IntoResponse for ControlReply {
    fn into_response(self) -> Response {
        (self.status.code(), Json(self.body)).into_response()
    }
}

/// The control routes.
pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/api/v1/environments/{env}/suspend", post(suspend))
        .route("/api/v1/environments/{env}/resume", post(resume))
        .route("/api/v1/environments/{env}/reconcile", post(reconcile_one))
        .route("/api/v1/reconcile", post(reconcile_all))
}

/// The body of a suspend request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuspendBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

type AppState = State<Arc<HttpState>>;

async fn suspend(
    State(st): AppState,
    Path(env): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tx = match authorize(&st.control, &headers) {
        Ok(tx) => tx,
        Err((code, why)) => return refused(code, why),
    };
    let body: SuspendBody = if body.iter().all(u8::is_ascii_whitespace) {
        SuspendBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    format!("body: {e} (expected {{\"reason\": \"...\", \"by\": \"...\"}})"),
                )
            }
        }
    };
    let (reason, by) = match (note("reason", body.reason), note("by", body.by)) {
        (Ok(r), Ok(b)) => (r, b),
        (Err(e), _) | (_, Err(e)) => return refused(StatusCode::BAD_REQUEST, e),
    };
    call(
        tx,
        ControlRequest::Suspend {
            environment: env,
            reason,
            by,
        },
    )
    .await
}

async fn resume(State(st): AppState, Path(env): Path<String>, headers: HeaderMap) -> Response {
    match authorize(&st.control, &headers) {
        Ok(tx) => call(tx, ControlRequest::Resume { environment: env }).await,
        Err((code, why)) => refused(code, why),
    }
}

async fn reconcile_one(
    State(st): AppState,
    Path(env): Path<String>,
    headers: HeaderMap,
) -> Response {
    match authorize(&st.control, &headers) {
        Ok(tx) => {
            call(
                tx,
                ControlRequest::Reconcile {
                    environment: Some(env),
                },
            )
            .await
        }
        Err((code, why)) => refused(code, why),
    }
}

async fn reconcile_all(State(st): AppState, headers: HeaderMap) -> Response {
    match authorize(&st.control, &headers) {
        Ok(tx) => call(tx, ControlRequest::Reconcile { environment: None }).await,
        Err((code, why)) => refused(code, why),
    }
}

/// A free-text note (reason, by): trimmed, empty is none, one line of printable text.
fn note(field: &str, v: Option<String>) -> Result<Option<String>, String> {
    let Some(v) = v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_NOTE_CHARS {
        return Err(format!(
            "{field} is longer than {MAX_NOTE_CHARS} characters"
        ));
    }
    // Shown in /status, logs and the UI: no terminal controls, one line.
    Ok(Some(crate::syntax::diag::escape_control(&v).into_owned()))
}

/// The way to the loop when the request carries the control token; the refusal otherwise.
fn authorize(
    control: &Control,
    headers: &HeaderMap,
) -> Result<mpsc::Sender<ControlCall>, (StatusCode, String)> {
    let (Some(token), Some(tx)) = (&control.token, &control.tx) else {
        return Err((
            StatusCode::NOT_FOUND,
            "control not enabled (start the daemon with --control-token-file)".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else {
        tracing::warn!("control request refused: no bearer token");
        return Err((
            StatusCode::UNAUTHORIZED,
            "missing Authorization: Bearer TOKEN".into(),
        ));
    };
    if !token_matches(token, given) {
        tracing::warn!("control request refused: wrong token");
        return Err((StatusCode::UNAUTHORIZED, "wrong token".into()));
    }
    Ok(tx.clone())
}

/// Whether `given` is the token, compared in constant time over SHA-256 digests (equal
/// lengths whatever was sent). An empty token matches nothing.
pub fn token_matches(token: &Secret, given: &str) -> bool {
    if token.expose().is_empty() {
        return false;
    }
    let want = Sha256::digest(token.expose().as_bytes());
    let got = Sha256::digest(given.as_bytes());
    want.ct_eq(&got).into()
}

fn refused(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// Hand `request` to the loop and wait for its answer.
async fn call(tx: mpsc::Sender<ControlCall>, request: ControlRequest) -> Response {
    tracing::info!(request = ?request, "control request");
    let (reply, answer) = oneshot::channel();
    let gone = || {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down".into(),
        )
    };
    if tx.send(ControlCall { request, reply }).await.is_err() {
        return gone();
    }
    match answer.await {
        Ok(r) => r.into_response(),
        Err(_) => gone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly() {
        let t = Secret::new("s3cret-token");
        assert!(token_matches(&t, "s3cret-token"));
        for wrong in [
            "",
            "s3cret",
            "s3cret-token ",
            "S3CRET-TOKEN",
            "s3cret-tokenX",
        ] {
            assert!(!token_matches(&t, wrong), "{wrong:?}");
        }
        assert!(!token_matches(&Secret::new(""), ""));
    }

    #[test]
    fn notes_are_trimmed_bounded_and_one_line() {
        assert_eq!(note("reason", None), Ok(None));
        assert_eq!(note("reason", Some("  ".into())), Ok(None));
        assert_eq!(
            note("reason", Some(" incident 42 ".into())),
            Ok(Some("incident 42".into()))
        );
        let two = note("reason", Some("a\nb\u{1b}[31m".into()))
            .unwrap()
            .unwrap();
        assert!(!two.contains('\n') && !two.contains('\u{1b}'), "{two}");
        assert!(note("by", Some("x".repeat(MAX_NOTE_CHARS + 1)))
            .unwrap_err()
            .contains("longer than"));
    }
}
