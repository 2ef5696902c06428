//! AWS clients, request accounting and error classification shared by every kind.
//!
//! Clients come from the standard credential chain and region; `AWS_ENDPOINT_URL` (or an
//! explicit endpoint) points them at an emulator. The SDK's standard retry strategy handles
//! throttling and 5xx with jittered exponential backoff; [`retry_eventual`] adds the
//! longer retries that IAM's eventual consistency needs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Default [`AwsOptions::attempt_timeout`]: well above the slowest single AWS answer the
/// tool waits for (a large GetAccountAuthorizationDetails page takes seconds).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Time to open a connection (the SDK's own default; set again because a timeout config
/// replaces the defaults as a whole).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// How to reach AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// Endpoint override (else `AWS_ENDPOINT_URL` / the SDK's resolution).
    pub endpoint_url: Option<String>,
    /// Region override (else the standard chain; the Environment's region when unset).
    pub region: Option<String>,
    /// Attempts per request for throttling and 5xx (SDK standard retry).
    pub max_attempts: Option<u32>,
    /// How long one attempt may take before it is abandoned and retried (else
    /// [`DEFAULT_ATTEMPT_TIMEOUT`]). Without it, an endpoint that accepts connections but
    /// never answers would hold a request, and the reconcile waiting on it, for ever.
    pub attempt_timeout: Option<Duration>,
    /// Role to assume with the standard chain's credentials (an Environment's `assumeRoleArn`).
    pub assume_role: Option<AssumeRole>,
}

/// A role assumed to reach an Environment's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    /// The role ARN.
    pub arn: String,
    /// `sts:ExternalId`, when the role's trust policy requires one.
    pub external_id: Option<String>,
    /// Session name, shown in CloudTrail (`mlspace-gitops-ENVIRONMENT`).
    pub session_name: String,
}

impl AwsOptions {
    /// These options for one Environment: its region as the fallback region is passed to
    /// [`AwsContext::from_env`]; its `assumeRoleArn`, when set, is assumed.
    pub fn for_environment(&self, env: &crate::manifest::EnvironmentView) -> AwsOptions {
        let mut o = self.clone();
        o.assume_role = env.assume_role_arn.as_ref().map(|arn| AssumeRole {
            arn: arn.clone(),
            external_id: env.external_id.clone(),
            session_name: session_name(&env.name),
        });
        o
    }
}

/// `mlspace-gitops-NAME`, cut to the 64 characters STS allows and to its character set.
fn session_name(env: &str) -> String {
    let mut s: String = format!("mlspace-gitops-{env}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(64);
    s
}

/// One AWS call's outcome, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallResult {
    /// 2xx.
    Ok,
    /// 4xx (including expected NotFound answers).
    ClientError,
    /// Throttled (429, or a 400/503 with a throttling code).
    Throttled,
    /// 5xx or no answer.
    ServerError,
}

impl CallResult {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CallResult::Ok => "ok",
            CallResult::ClientError => "client_error",
            CallResult::Throttled => "throttled",
            CallResult::ServerError => "server_error",
        }
    }
}

/// Something that wants to hear about every AWS request (metrics, in the daemon).
pub trait CallObserver: Send + Sync + fmt::Debug {
    /// Called once per HTTP attempt.
    fn observe(&self, service: &str, operation: &str, result: CallResult, elapsed: Duration);
}

/// Counts of AWS requests by service and operation (every attempt, retries included).
#[derive(Debug, Default)]
pub struct CallStats {
    counts: Mutex<BTreeMap<(String, String, CallResult), u64>>,
    observer: Mutex<Option<Arc<dyn CallObserver>>>,
}

impl CallStats {
    /// Total requests sent.
    pub fn total(&self) -> u64 {
        self.counts.lock().unwrap().values().sum()
    }

    /// (service, operation, result) → count.
    pub fn snapshot(&self) -> BTreeMap<(String, String, CallResult), u64> {
        self.counts.lock().unwrap().clone()
    }

    /// Requests per operation, summed over results.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for ((svc, op, _), n) in self.counts.lock().unwrap().iter() {
            *m.entry(format!("{svc}:{op}")).or_default() += n;
        }
        m
    }

    /// Also report each call to `o`.
    pub fn set_observer(&self, o: Arc<dyn CallObserver>) {
        *self.observer.lock().unwrap() = Some(o);
    }

    fn record(&self, service: &str, operation: &str, result: CallResult, elapsed: Duration) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry((service.to_string(), operation.to_string(), result))
            .or_default() += 1;
        if let Some(o) = self.observer.lock().unwrap().as_ref() {
            o.observe(service, operation, result, elapsed);
        }
    }
}

/// Start time of the current attempt, kept in the config bag.
#[derive(Debug, Clone)]
struct AttemptStart(Instant);
impl aws_smithy_types::config_bag::Storable for AttemptStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// SDK interceptor feeding [`CallStats`].
#[derive(Debug)]
struct Counter(Arc<CallStats>);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "mlspace-gitops-call-counter"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStart(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(start) = cfg.load::<AttemptStart>().map(|s| s.0) else {
            return Ok(()); // never transmitted (e.g. failed to sign): not a request
        };
        let (service, op) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_default();
        let result = match ctx.response() {
            None => CallResult::ServerError,
            Some(r) => {
                let s = r.status().as_u16();
                // For the metric label (and, in the daemon, readiness, where it only tells a
                // busy AWS from a failing one): the error code sits in the (buffered) body,
                // `<Code>Throttling</Code>` for IAM, `"__type":"...#ThrottlingException"` for DynamoDB.
                let throttled_body =
                    s >= 400 && r.body().bytes().is_some_and(body_has_throttling_code);
                if s == 429 || throttled_body {
                    CallResult::Throttled
                } else if s >= 500 {
                    CallResult::ServerError
                } else if s >= 400 {
                    CallResult::ClientError
                } else {
                    CallResult::Ok
                }
            }
        };
        self.0.record(&service, &op, result, start.elapsed());
        Ok(())
    }
}

/// Whether an error response body carries one of the throttling codes.
fn body_has_throttling_code(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]);
    let code = if let Some(i) = text.find("<Code>") {
        text[i + 6..].split('<').next().unwrap_or("")
    } else if let Some(i) = text.find("\"__type\"") {
        text[i..]
            .split('"')
            .nth(3)
            .unwrap_or("")
            .rsplit('#')
            .next()
            .unwrap_or("")
    } else {
        ""
    };
    is_throttling_code(code)
}

/// Error codes AWS services use for throttling.
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
    )
}

/// Clients for the services the engine manages, sharing one request counter.
#[derive(Clone, Debug)]
pub struct AwsContext {
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// S3 (path-style addressing when an endpoint is set).
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// STS (the caller's account).
    pub sts: aws_sdk_sts::Client,
    /// Requests made through these clients.
    pub stats: Arc<CallStats>,
    /// How long to keep retrying IAM eventual-consistency errors.
    pub eventual_consistency_timeout: Duration,
}

impl AwsContext {
    /// Build clients from the standard chain, with `default_region` when none is configured;
    /// with `opts.assume_role`, the clients use that role's credentials (refreshed before
    /// they expire), obtained with the standard chain's.
    pub async fn from_env(opts: &AwsOptions, default_region: &str) -> AwsContext {
        let base = Self::loader(opts, default_region).load().await;
        let Some(role) = &opts.assume_role else {
            return Self::from_sdk_config(&base);
        };
        let mut provider = aws_config::sts::AssumeRoleProvider::builder(role.arn.clone())
            .session_name(role.session_name.clone())
            .configure(&base);
        if let Some(id) = &role.external_id {
            provider = provider.external_id(id.clone());
        }
        let provider = provider.build().await;
        let conf = Self::loader(opts, default_region)
            .credentials_provider(provider)
            .load()
            .await;
        Self::from_sdk_config(&conf)
    }

    /// The SDK config loader for these options (region, endpoint, retry).
    fn loader(opts: &AwsOptions, default_region: &str) -> aws_config::ConfigLoader {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        let region = opts.region.clone();
        let fallback = default_region.to_string();
        loader = loader.region(
            aws_config::meta::region::RegionProviderChain::first_try(
                region.map(aws_config::Region::new),
            )
            .or_default_provider()
            .or_else(aws_config::Region::new(fallback)),
        );
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        let retry = RetryConfig::standard()
            .with_max_attempts(opts.max_attempts.unwrap_or(8))
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(20));
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(opts.attempt_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT))
            .build();
        loader.retry_config(retry).timeout_config(timeouts)
    }

    /// Check that the credentials reach `expected` (STS GetCallerIdentity, which needs no
    /// permission). Done for an Environment before anything is read or written, so that a
    /// dev manifest set never lands in a prod account.
    pub async fn check_account(&self, expected: &str) -> Result<(), AccountError> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| {
            AccountError::Identity(AwsError::from_sdk("sts:GetCallerIdentity", e, |_| None))
        })?;
        let actual = out.account().unwrap_or_default();
        if actual != expected {
            return Err(AccountError::WrongAccount {
                actual: actual.to_string(),
                expected: expected.to_string(),
            });
        }
        Ok(())
    }

    /// Build clients from a loaded SDK config.
    pub fn from_sdk_config(conf: &aws_config::SdkConfig) -> AwsContext {
        let stats = Arc::new(CallStats::default());
        let counter = || Counter(stats.clone());
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(conf)
                .interceptor(counter())
                .build(),
        );
        // Emulators and custom endpoints serve buckets by path, not by virtual host.
        let path_style = conf.endpoint_url().is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(conf)
                .force_path_style(path_style)
                .interceptor(counter())
                .build(),
        );
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(conf)
                .interceptor(counter())
                .build(),
        );
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(conf)
                .interceptor(counter())
                .build(),
        );
        AwsContext {
            iam,
            s3,
            dynamodb,
            sts,
            stats,
            eventual_consistency_timeout: Duration::from_secs(120),
        }
    }
}

/// Why clients were refused for an Environment's account.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// STS did not say whose credentials these are.
    #[error("cannot find the account of the credentials")]
    Identity(#[source] AwsError),
    /// The credentials belong to another account.
    #[error("the credentials reach account {actual}, not {expected}")]
    WrongAccount {
        /// The account the credentials reach.
        actual: String,
        /// The Environment's account.
        expected: String,
    },
}

/// What an AWS error means to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The resource does not exist.
    NotFound,
    /// Throttled or a 5xx that outlived the SDK's retries; try again later.
    Transient,
    /// IAM has not yet propagated something this run created; retry soon.
    EventualConsistency,
    /// The request conflicts with the resource's state (e.g. DeleteConflict).
    Conflict,
    /// Anything else: the request is wrong or not allowed.
    Fatal,
}

/// An AWS call that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct AwsError {
    /// Operation name, e.g. `iam:CreateRole`.
    pub operation: String,
    /// Classification.
    pub class: ErrorClass,
    /// The service's code and message.
    pub message: String,
}

impl AwsError {
    /// Build from an SDK error; `classify` maps the typed service error, the rest of the
    /// classes come from the SDK's own error kinds and the HTTP status.
    pub fn from_sdk<E>(
        operation: &str,
        err: SdkError<E, HttpResponse>,
        classify: impl FnOnce(&E) -> Option<ErrorClass>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (class, message) = match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown");
                let class = classify(e).unwrap_or_else(|| {
                    if is_throttling_code(code) || se.raw().status().is_server_error() {
                        ErrorClass::Transient
                    } else {
                        ErrorClass::Fatal
                    }
                });
                (
                    class,
                    format!("{code}: {}", e.message().unwrap_or("(no message)")),
                )
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => (ErrorClass::Transient, DisplayChain(&err).to_string()),
            _ => (ErrorClass::Fatal, DisplayChain(&err).to_string()),
        };
        AwsError {
            operation: operation.to_string(),
            class,
            message,
        }
    }

    /// Whether the resource did not exist.
    pub fn is_not_found(&self) -> bool {
        self.class == ErrorClass::NotFound
    }
}

/// Display an error with its sources, for messages that must say everything on one line.
pub struct DisplayChain<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut src = self.0.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

/// Retry `f` while it fails with [`ErrorClass::EventualConsistency`] or
/// [`ErrorClass::Transient`], with jittered exponential backoff, for up to `timeout`.
pub async fn retry_eventual<T, F, Fut>(timeout: Duration, mut f: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e)
                if matches!(
                    e.class,
                    ErrorClass::EventualConsistency | ErrorClass::Transient
                ) && start.elapsed() + delay < timeout =>
            {
                tracing::debug!(operation = %e.operation, error = %e.message, delay_ms = delay.as_millis() as u64, "retrying");
                let jitter = rand::random_range(0.5..1.0);
                tokio::time::sleep(delay.mul_f64(jitter)).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retry_eventual_gives_up_on_fatal_and_retries_consistency() {
        let mut n = 0;
        let r: Result<u32, _> = retry_eventual(Duration::from_secs(5), || {
            n += 1;
            let attempt = n;
            async move {
                if attempt < 3 {
                    Err(AwsError {
                        operation: "iam:AttachRolePolicy".into(),
                        class: ErrorClass::EventualConsistency,
                        message: "NoSuchEntity".into(),
                    })
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: Result<(), _> = retry_eventual(Duration::from_secs(5), || {
            calls += 1;
            async {
                Err(AwsError {
                    operation: "x".into(),
                    class: ErrorClass::Fatal,
                    message: "no".into(),
                })
            }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}
