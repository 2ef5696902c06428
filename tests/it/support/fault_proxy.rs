//! A fault-injecting HTTP/1.1 proxy between the tool and moto, on loopback, for reliability
//! tests. Point the tool at it with `AWS_ENDPOINT_URL`; every request is either forwarded to
//! moto or answered (or dropped) with a fault chosen per service by a seeded RNG.
//!
//! The service comes from the SigV4 credential scope (`.../REGION/SERVICE/aws4_request`), the
//! operation from the form `Action=` (IAM), `X-Amz-Target` (DynamoDB) or method and path (S3).
//! Only IAM, S3 and DynamoDB get faults; STS and anything else pass through.
//!
//! Faults and the limits of their fidelity:
//! - throttle: IAM 400 `Throttling`, S3 503 `SlowDown`, DynamoDB 400 `ThrottlingException`, with
//!   the service's XML/JSON error shape. No `Retry-After`, no token-bucket behaviour: each
//!   request is throttled independently at the configured rate.
//! - internal: a 500 with the service's body (IAM `InternalFailure`, S3 `InternalError`,
//!   DynamoDB `InternalServerError`, the codes those services really send).
//! - reset before / after: the connection is closed without an answer, before the request
//!   reached moto, or after moto executed it (the write happened, its answer is lost). The
//!   close is an orderly FIN, not a TCP RST; the SDK sees the same "connection closed before
//!   message completed" either way.
//! - latency: a fixed delay before forwarding (no jitter, no slow-body dribbling).
//! - IAM eventual consistency: for a window after a CreateRole / CreatePolicy that moto
//!   answered, any other IAM request naming that role (`RoleName`) or policy (`PolicyArn`)
//!   gets 404 `NoSuchEntity`, and a CreateRole / UpdateAssumeRolePolicy whose trust policy
//!   names the role's ARN gets 400 `MalformedPolicyDocument` "Invalid principal in policy".
//!   Real IAM is inconsistent only sometimes; here it always is, inside the window. Deletes
//!   and re-creates inside the window are not modelled.
//!
//! A test can also aim one fault at the next request for an operation
//! ([`FaultProxy::inject_once`]), for deterministic regression tests.
//!
//! Determinism: the RNG is seeded (the seed is printed), but concurrent requests draw from it
//! in arrival order, so two runs with one seed agree only as far as the scheduling does.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Probability of each random fault for one service (each in 0..=1; their sum at most 1).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Service-shaped throttling error.
    pub throttle: f64,
    /// 500 with the service's internal-error body.
    pub internal: f64,
    /// Connection closed before the request reaches moto.
    pub reset_before: f64,
    /// Request executed by moto, its answer dropped.
    pub reset_after: f64,
    /// Forwarded after [`FaultConfig::latency`].
    pub latency: f64,
}

impl Rates {
    /// Panics unless every rate is in 0..=1 and they sum to at most 1 (one draw per request
    /// picks at most one fault).
    fn check(&self) {
        let all = [
            self.throttle,
            self.internal,
            self.reset_before,
            self.reset_after,
            self.latency,
        ];
        assert!(
            all.iter().all(|r| (0.0..=1.0).contains(r)) && all.iter().sum::<f64>() <= 1.0 + 1e-9,
            "fault rates must be in 0..=1 and sum to at most 1: {self:?}"
        );
    }

    /// `total` split evenly over the five kinds.
    pub fn mixed(total: f64) -> Rates {
        let r = total / 5.0;
        Rates {
            throttle: r,
            internal: r,
            reset_before: r,
            reset_after: r,
            latency: r,
        }
    }

    /// Throttling only, at `rate`.
    pub fn throttle_only(rate: f64) -> Rates {
        Rates {
            throttle: rate,
            ..Rates::default()
        }
    }
}

/// What the proxy does; replaceable while it runs ([`FaultProxy::set_config`]).
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// IAM rates.
    pub iam: Rates,
    /// S3 rates.
    pub s3: Rates,
    /// DynamoDB rates.
    pub dynamodb: Rates,
    /// Delay of a latency fault.
    pub latency: Duration,
    /// How long a just-created role or policy stays invisible (zero: off).
    pub iam_consistency: Duration,
    /// An outage of every service (STS included), instead of the random faults.
    pub outage: Option<Outage>,
}

/// How AWS is unreachable during an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Every connection is closed without an answer (an endpoint that is down).
    Refuse,
    /// Requests are read and never answered (a network black hole): only the client's own
    /// timeouts end them.
    Blackhole,
}

impl FaultConfig {
    fn check(&self) {
        self.iam.check();
        self.s3.check();
        self.dynamodb.check();
    }

    /// The reliability tests' mix: 20% of each service's requests faulted, latency faults of
    /// 200 ms, and a 2 s IAM consistency window.
    pub fn twenty_percent() -> FaultConfig {
        FaultConfig {
            latency: Duration::from_millis(200),
            iam_consistency: Duration::from_secs(2),
            ..FaultConfig::uniform(Rates::mixed(0.20))
        }
    }

    /// The same rates for every service.
    pub fn uniform(rates: Rates) -> FaultConfig {
        FaultConfig {
            iam: rates,
            s3: rates,
            dynamodb: rates,
            latency: Duration::from_millis(300),
            iam_consistency: Duration::ZERO,
            outage: None,
        }
    }
}

/// A fault the proxy injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Throttling error.
    Throttle,
    /// 500.
    Internal,
    /// Closed before forwarding.
    ResetBefore,
    /// Closed after moto answered.
    ResetAfter,
    /// Delayed.
    Latency,
    /// IAM `NoSuchEntity` for a just-created role or policy.
    NotYetVisible,
    /// IAM "Invalid principal" for a trust policy naming a just-created role.
    InvalidPrincipal,
    /// Refused or never answered: [`FaultConfig::outage`].
    Outage,
}

/// Counters, per service.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Requests received, by service.
    pub requests: BTreeMap<String, u64>,
    /// Requests that reached moto, by service.
    pub forwarded: BTreeMap<String, u64>,
    /// Faults injected, by (service, fault).
    pub faults: BTreeMap<(String, Fault), u64>,
    /// Requests by `service:operation`.
    pub operations: BTreeMap<String, u64>,
    /// Arrival times (since the proxy started) of the attempts of each SDK invocation, by
    /// its `amz-sdk-invocation-id` (the same on every retry of one logical request).
    pub invocations: BTreeMap<String, Vec<Duration>>,
}

impl Counts {
    /// Total requests received.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Total of one fault over all services.
    pub fn fault(&self, f: Fault) -> u64 {
        self.faults
            .iter()
            .filter(|((_, k), _)| *k == f)
            .map(|(_, n)| n)
            .sum()
    }

    /// The most attempts any one invocation made.
    pub fn max_attempts(&self) -> usize {
        self.invocations.values().map(Vec::len).max().unwrap_or(0)
    }

    /// The wait before each retry (gap between consecutive attempts), over all invocations.
    pub fn retry_gaps(&self) -> Vec<Duration> {
        self.invocations
            .values()
            .flat_map(|t| t.windows(2).map(|w| w[1].saturating_sub(w[0])))
            .collect()
    }

    /// Total faults of every kind.
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }
}

struct State {
    upstream: SocketAddr,
    started: Instant,
    config: Mutex<FaultConfig>,
    rng: Mutex<StdRng>,
    counts: Mutex<Counts>,
    /// Creation times of roles and policies, by name (IAM eventual consistency).
    created_roles: Mutex<HashMap<String, Instant>>,
    created_policies: Mutex<HashMap<String, Instant>>,
    /// One-shot faults: the next request for the operation gets the fault.
    once: Mutex<Vec<(String, Fault)>>,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The RNG seed.
    pub seed: u64,
    state: Arc<State>,
    thread: Option<std::thread::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Start a proxy to `upstream` (`http://127.0.0.1:PORT`) on its own thread and runtime.
    /// The seed comes from `FAULT_SEED` when set, else from the clock; it is printed.
    pub fn start(upstream: &str, config: FaultConfig) -> FaultProxy {
        config.check();
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .map(|s| s.parse().expect("FAULT_SEED must be a u64"))
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("fault proxy seed: {seed} (rerun with FAULT_SEED={seed})");
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://IP:PORT");
        let state = Arc::new(State {
            upstream,
            started: Instant::now(),
            config: Mutex::new(config),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counts: Mutex::new(Counts::default()),
            created_roles: Mutex::new(HashMap::new()),
            created_policies: Mutex::new(HashMap::new()),
            once: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(listener, st, rx));
        });
        FaultProxy {
            endpoint,
            seed,
            state,
            thread: Some(thread),
            shutdown: Some(tx),
        }
    }

    /// Replace the configuration (takes effect for the next request).
    pub fn set_config(&self, config: FaultConfig) {
        config.check();
        *self.state.config.lock().unwrap() = config;
    }

    /// Give the next request for `operation` (e.g. `CreatePolicyVersion`) `fault`, once;
    /// a random fault kind (not the IAM consistency ones).
    pub fn inject_once(&self, operation: &str, fault: Fault) {
        self.state
            .once
            .lock()
            .unwrap()
            .push((operation.to_string(), fault));
    }

    /// A copy of the counters.
    pub fn counts(&self) -> Counts {
        self.state.counts.lock().unwrap().clone()
    }

    /// Zero the counters.
    pub fn reset_counts(&self) {
        *self.state.counts.lock().unwrap() = Counts::default();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
            _ = &mut shutdown => return,
        };
        let st = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
            // A dropped answer ends the connection with an error: expected, not reported.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault proxy dropped the connection")
    }
}
impl std::error::Error for Dropped {}

type Answer = Result<Response<Full<Bytes>>, Dropped>;

/// What the proxy learned about a request.
struct Call {
    service: String,
    operation: String,
    /// IAM form parameters (decoded).
    params: HashMap<String, String>,
}

fn identify(req: &hyper::http::request::Parts, body: &[u8]) -> Call {
    let header = |n: &str| {
        req.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    // Credential=AKID/DATE/REGION/SERVICE/aws4_request
    let service = header("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string();
    let mut params = HashMap::new();
    let operation = match service.as_str() {
        "dynamodb" => header("x-amz-target")
            .rsplit('.')
            .next()
            .unwrap_or("")
            .to_string(),
        "s3" => format!(
            "{} {}",
            req.method,
            req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        ),
        _ => {
            for pair in String::from_utf8_lossy(body).split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                params.insert(form_decode(k), form_decode(v));
            }
            params.get("Action").cloned().unwrap_or_default()
        }
    };
    Call {
        service,
        operation,
        params,
    }
}

fn form_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let call = identify(&parts, &body);
    let config = state.config.lock().unwrap().clone();
    {
        let mut c = state.counts.lock().unwrap();
        *c.requests.entry(call.service.clone()).or_default() += 1;
        *c.operations
            .entry(format!("{}:{}", call.service, call.operation))
            .or_default() += 1;
        if let Some(id) = parts
            .headers
            .get("amz-sdk-invocation-id")
            .and_then(|v| v.to_str().ok())
        {
            c.invocations
                .entry(id.to_string())
                .or_default()
                .push(state.started.elapsed());
        }
    }
    let count = |f: Fault| {
        *state
            .counts
            .lock()
            .unwrap()
            .faults
            .entry((call.service.clone(), f))
            .or_default() += 1;
    };

    match config.outage {
        Some(Outage::Refuse) => {
            count(Fault::Outage);
            return Err(Dropped);
        }
        Some(Outage::Blackhole) => {
            count(Fault::Outage);
            // Held until the client gives up and closes the connection.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Err(Dropped);
        }
        None => {}
    }
    if call.service == "iam" && !config.iam_consistency.is_zero() {
        if let Some((fault, answer)) = consistency_fault(&state, &call, config.iam_consistency) {
            count(fault);
            return Ok(answer);
        }
    }

    let rates = match call.service.as_str() {
        "iam" => config.iam,
        "s3" => config.s3,
        "dynamodb" => config.dynamodb,
        _ => Rates::default(),
    };
    let draw: f64 = state.rng.lock().unwrap().random();
    let mut edge = 0.0;
    let mut fault = {
        let mut once = state.once.lock().unwrap();
        let hit = once.iter().position(|(op, _)| *op == call.operation);
        hit.map(|i| once.remove(i).1)
    };
    for (f, r) in [
        (Fault::Throttle, rates.throttle),
        (Fault::Internal, rates.internal),
        (Fault::ResetBefore, rates.reset_before),
        (Fault::ResetAfter, rates.reset_after),
        (Fault::Latency, rates.latency),
    ] {
        edge += r;
        if fault.is_none() && draw < edge {
            fault = Some(f);
            break;
        }
    }
    if let Some(f) = fault {
        count(f);
    }
    match fault {
        Some(Fault::Throttle) => return Ok(throttle(&call.service)),
        Some(Fault::Internal) => return Ok(internal(&call.service)),
        Some(Fault::ResetBefore) => return Err(Dropped),
        Some(Fault::Latency) => tokio::time::sleep(config.latency).await,
        _ => {}
    }
    let answer = forward(&state, parts, body).await?;
    *state
        .counts
        .lock()
        .unwrap()
        .forwarded
        .entry(call.service.clone())
        .or_default() += 1;
    if call.service == "iam" && answer.status().is_success() {
        remember_creation(&state, &call);
    }
    if fault == Some(Fault::ResetAfter) {
        return Err(Dropped);
    }
    Ok(answer)
}

/// Send the request to moto on a fresh connection and buffer its answer.
async fn forward(
    state: &State,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let stream = tokio::net::TcpStream::connect(state.upstream)
        .await
        .map_err(|_| Dropped)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Dropped)?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|_| Dropped)?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn remember_creation(state: &State, call: &Call) {
    let now = Instant::now();
    match call.operation.as_str() {
        "CreateRole" => {
            if let Some(n) = call.params.get("RoleName") {
                state.created_roles.lock().unwrap().insert(n.clone(), now);
            }
        }
        "CreatePolicy" => {
            if let Some(n) = call.params.get("PolicyName") {
                state
                    .created_policies
                    .lock()
                    .unwrap()
                    .insert(n.clone(), now);
            }
        }
        _ => {}
    }
}

fn fresh(map: &Mutex<HashMap<String, Instant>>, name: &str, window: Duration) -> bool {
    map.lock()
        .unwrap()
        .get(name)
        .is_some_and(|t| t.elapsed() < window)
}

/// The IAM eventual-consistency answer for this call, if it names something just created.
fn consistency_fault(
    state: &State,
    call: &Call,
    window: Duration,
) -> Option<(Fault, Response<Full<Bytes>>)> {
    let trust = match call.operation.as_str() {
        "CreateRole" => call.params.get("AssumeRolePolicyDocument"),
        "UpdateAssumeRolePolicy" => call.params.get("PolicyDocument"),
        _ => None,
    };
    if let Some(doc) = trust {
        let roles = state.created_roles.lock().unwrap();
        let principal = roles
            .iter()
            .filter(|(_, t)| t.elapsed() < window)
            .find(|(name, _)| doc.contains(&format!(":role/{name}\"")));
        if let Some((name, _)) = principal {
            let msg = format!("Invalid principal in policy: \"AWS\":\"{name}\"");
            return Some((
                Fault::InvalidPrincipal,
                iam_error(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", &msg),
            ));
        }
    }
    if matches!(call.operation.as_str(), "CreateRole" | "CreatePolicy") {
        return None;
    }
    if let Some(role) = call.params.get("RoleName") {
        if fresh(&state.created_roles, role, window) {
            let msg = format!("The role with name {role} cannot be found.");
            return Some((
                Fault::NotYetVisible,
                iam_error(StatusCode::NOT_FOUND, "NoSuchEntity", &msg),
            ));
        }
    }
    if let Some(arn) = call.params.get("PolicyArn") {
        let name = arn.rsplit('/').next().unwrap_or("");
        if fresh(&state.created_policies, name, window) {
            let msg = format!("Policy {arn} was not found.");
            return Some((
                Fault::NotYetVisible,
                iam_error(StatusCode::NOT_FOUND, "NoSuchEntity", &msg),
            ));
        }
    }
    None
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "fault-proxy")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn iam_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    respond(
        status,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
        ),
    )
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
        ),
    )
}

fn dynamodb_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/x-amz-json-1.0",
        format!(
            "{{\"__type\":\"com.amazonaws.dynamodb.v20120810#{code}\",\"message\":\"{message}\"}}"
        ),
    )
}

fn throttle(service: &str) -> Response<Full<Bytes>> {
    match service {
        "s3" => s3_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate.",
        ),
        "dynamodb" => dynamodb_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        ),
        _ => iam_error(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded"),
    }
}

fn internal(service: &str) -> Response<Full<Bytes>> {
    match service {
        "s3" => s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        "dynamodb" => dynamodb_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal server error",
        ),
        _ => iam_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The request processing has failed because of an unknown error.",
        ),
    }
}
