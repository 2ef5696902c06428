//! The read-only web UI on the daemon's listener: server-rendered pages built from the
//! `/status` snapshot, one small committed script and one stylesheet, both compiled into
//! the binary (no CDN, no Node build).
//!
//! | route                                             | page                                    |
//! |---------------------------------------------------|-----------------------------------------|
//! | `GET /`                                           | every Environment, its facts and counts |
//! | `GET /ui/environments/{env}[?state=STATE]`        | its resources, filtered by state        |
//! | `GET /ui/environments/{env}/resources/{kind}/{name}` | a resource: pending change, error    |
//! | `GET /ui/environments/{env}/history`              | what its last reconciles changed        |
//! | `GET /ui/refused`                                 | refused revisions and why               |
//! | `GET /ui/assets/app.css`, `/ui/assets/app.js`     | the committed assets                    |
//!
//! Templates are [maud](https://maud.lambda.xyz/): checked at compile time, and every
//! interpolated value is HTML-escaped unless explicitly marked otherwise (nothing here
//! does), which is what text from git (commit messages, descriptions) and from AWS (error
//! messages) needs; and it has no runtime template files to ship or to get out of step.
//!
//! Every page carries a strict Content-Security-Policy (no inline script or style, nothing
//! from another origin), `nosniff` and `no-referrer`, and an ETag: the script refreshes the
//! page's `<main>` every few seconds with `If-None-Match` (a 304 when nothing changed),
//! pauses while the tab is hidden and backs off on errors. With `--ui-auth-file` the UI
//! and `/status` need a credential ([`auth`]).

pub mod auth;
pub mod pages;

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::Markup;
use sha2::{Digest, Sha256};

use crate::http::HttpState;
use crate::status::Status;
pub use auth::{AuthFileError, UiAuth};

/// The Content-Security-Policy of every UI response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The realm a browser shows when it asks for the UI's user and password.
pub const REALM: &str = "mlspace-gitops";

const APP_CSS: &str = include_str!("assets/app.css");
const APP_JS: &str = include_str!("assets/app.js");

type AppState = State<Arc<HttpState>>;

/// The UI's routes (the caller adds `/status` and the auth layer).
pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/", get(overview))
        .route("/ui/environments/{env}", get(environment))
        .route(
            "/ui/environments/{env}/resources/{kind}/{name}",
            get(resource),
        )
        .route("/ui/environments/{env}/history", get(history))
        .route("/ui/refused", get(refused))
        .route("/ui/assets/app.css", get(css))
        .route("/ui/assets/app.js", get(js))
        .layer(axum::middleware::map_response(security_headers))
}

/// The headers every UI response carries.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// Refuse a request without one of `auth`'s credentials: 401 with a Basic challenge, so
/// that a browser asks for a user and password.
pub async fn require(State(auth): State<Arc<UiAuth>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if auth.allows(given) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mlspace-gitops\", charset=\"UTF-8\""),
        )],
        "authentication required\n",
    )
        .into_response()
}

/// The status as it is now (a writer that panicked leaves it readable).
fn snapshot(st: &HttpState) -> Status {
    st.status.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A page as HTML with its ETag, or 304 when the client has this one already.
fn html(status: StatusCode, page: Markup, req: &HeaderMap) -> Response {
    let body = page.into_string();
    let etag = format!(
        "\"{}\"",
        hex::encode(&Sha256::digest(body.as_bytes())[..12])
    );
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
        (header::CACHE_CONTROL, "no-cache".to_string()),
        (header::ETAG, etag.clone()),
    ];
    let matches = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches && status == StatusCode::OK {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (status, headers, body).into_response()
}

async fn overview(State(st): AppState, req: HeaderMap) -> Response {
    html(StatusCode::OK, pages::overview(&snapshot(&st)), &req)
}

/// `?state=STATE`.
#[derive(Debug, serde::Deserialize)]
struct Filter {
    state: Option<String>,
}

async fn environment(
    State(st): AppState,
    Path(env): Path<String>,
    Query(q): Query<Filter>,
    req: HeaderMap,
) -> Response {
    let s = snapshot(&st);
    match s.environments.iter().find(|e| e.name == env) {
        Some(e) => html(
            StatusCode::OK,
            pages::environment(&s, e, pages::parse_filter(q.state.as_deref())),
            &req,
        ),
        None => not_found(&s, &format!("No Environment {env}."), &req),
    }
}

async fn resource(
    State(st): AppState,
    Path((env, kind, name)): Path<(String, String, String)>,
    req: HeaderMap,
) -> Response {
    let s = snapshot(&st);
    let found = s
        .resources
        .iter()
        .find(|r| r.environment == env && r.kind.as_str() == kind && r.name == name);
    match found {
        Some(r) => html(StatusCode::OK, pages::resource(&s, r), &req),
        None => not_found(&s, &format!("No {kind} {name} in Environment {env}."), &req),
    }
}

async fn history(State(st): AppState, Path(env): Path<String>, req: HeaderMap) -> Response {
    let s = snapshot(&st);
    match s.environments.iter().find(|e| e.name == env) {
        Some(e) => html(StatusCode::OK, pages::history(&s, e), &req),
        None => not_found(&s, &format!("No Environment {env}."), &req),
    }
}

async fn refused(State(st): AppState, req: HeaderMap) -> Response {
    html(StatusCode::OK, pages::refused(&snapshot(&st)), &req)
}

fn not_found(s: &Status, what: &str, req: &HeaderMap) -> Response {
    html(StatusCode::NOT_FOUND, pages::not_found(s, what), req)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Short: a new binary's assets are picked up within minutes.
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}
