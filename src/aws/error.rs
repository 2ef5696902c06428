//! What an AWS error means to the engine. Each service's error codes are a type
//! ([`ServiceCode`]) beside its client (IAM in `kinds/iam`, S3 in `kinds/bucket`, DynamoDB
//! and STS in [`super::services`], a new service in its kind's folder): the code a service
//! answers is parsed once into it and classified once by it. Callers match on those types,
//! never on messages or code strings, and a test keeps it so.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What an AWS error means to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The resource does not exist.
    NotFound,
    /// Throttled or a 5xx that outlived the SDK's retries, or no answer; try again later.
    Transient,
    /// IAM has not yet propagated something this run created; retry soon.
    EventualConsistency,
    /// The request conflicts with the resource's state (e.g. DeleteConflict).
    Conflict,
    /// Anything else: the request is wrong or not allowed.
    Fatal,
}

/// A service's error codes as a type: parsed once from the code the service answered, and
/// classified once.
pub trait ServiceCode: Copy + PartialEq + fmt::Debug + Sized + 'static {
    /// The code, when it is one the engine tells apart.
    fn parse(code: &str) -> Option<Self>;

    /// What the code means to the engine; `None` lets the common codes and then the HTTP
    /// status decide (5xx transient, else fatal).
    fn class(self) -> Option<ErrorClass>;

    /// An SDK error of this service's `operation` (`iam:GetRole`), classified.
    fn error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        AwsError::from_sdk::<Self, E>(operation, err)
    }
}

/// Codes AWS services use for throttling and for their own trouble, whatever the service
/// (AWS's documented common errors). Every service's classification falls back to these.
pub fn common_class(code: &str) -> Option<ErrorClass> {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "RequestThrottled"
        | "BandwidthLimitExceeded"
        | "SlowDown"
        | "PriorRequestNotComplete"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "InternalError"
        | "InternalFailure"
        | "InternalServerError"
        | "ServiceFailure" => Some(ErrorClass::Transient),
        _ => None,
    }
}

/// An AWS call that failed. It keeps the SDK error it came from ([`std::error::Error::source`]);
/// its own message already says what that error says, so [`DisplayChain`] stops at it.
#[derive(Debug, Clone)]
pub struct AwsError {
    /// Operation name, e.g. `iam:CreateRole`.
    pub operation: String,
    /// Classification.
    pub class: ErrorClass,
    /// The service's error code, when the service answered with one (read it as the
    /// service's [`ServiceCode`] with [`AwsError::code`]).
    pub raw_code: Option<String>,
    /// The service's code and message, or what went wrong on the way.
    pub message: String,
    /// The SDK error.
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.message)
    }
}

impl std::error::Error for AwsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl AwsError {
    /// An error the engine itself raises about an operation (no SDK error behind it).
    pub fn new(
        operation: impl Into<String>,
        class: ErrorClass,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            operation: operation.into(),
            class,
            raw_code: None,
            message: message.into(),
            source: None,
        }
    }

    /// Build from an SDK error, classified by the service's codes `C` (then the common
    /// codes, then the HTTP status); transport failures and timeouts are transient.
    pub fn from_sdk<C: ServiceCode, E>(operation: &str, err: SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (class, code, message) = match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().map(str::to_string);
                let class = code
                    .as_deref()
                    .and_then(|c| C::parse(c).and_then(C::class).or_else(|| common_class(c)))
                    .unwrap_or(if se.raw().status().is_server_error() {
                        ErrorClass::Transient
                    } else {
                        ErrorClass::Fatal
                    });
                let message = format!(
                    "{}: {}",
                    code.as_deref().unwrap_or("Unknown"),
                    e.message().unwrap_or("(no message)")
                );
                (class, code, message)
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => (ErrorClass::Transient, None, chain_text(&err)),
            _ => (ErrorClass::Fatal, None, chain_text(&err)),
        };
        AwsError {
            operation: operation.to_string(),
            class,
            raw_code: code,
            message,
            source: Some(Arc::new(err)),
        }
    }

    /// The same error with another class when the service answered `code`: a caller that
    /// knows what the code means here (NoSuchEntity for a policy created a moment ago is
    /// eventual consistency, not absence).
    pub fn reclass<C: ServiceCode>(mut self, code: C, class: ErrorClass) -> AwsError {
        if self.code::<C>() == Some(code) {
            self.class = class;
        }
        self
    }

    /// The same error with another class.
    pub fn with_class(mut self, class: ErrorClass) -> AwsError {
        self.class = class;
        self
    }

    /// The same error with `message` said first (the engine's explanation of the refusal).
    pub fn explained(mut self, message: impl fmt::Display) -> AwsError {
        self.message = format!("{message}; AWS says: {}", self.message);
        self
    }

    /// The service's code, as the service's type `C`.
    pub fn code<C: ServiceCode>(&self) -> Option<C> {
        self.raw_code.as_deref().and_then(C::parse)
    }

    /// Whether the resource did not exist.
    pub fn is_not_found(&self) -> bool {
        self.class == ErrorClass::NotFound
    }
}

/// `Ok(())` for success and for NotFound: the thing to remove is already gone.
pub fn gone_ok<T>(r: Result<T, AwsError>) -> Result<(), AwsError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// `err` and its sources on one line (for SDK errors whose own text says little).
fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    DisplayChain(err).to_string()
}

/// Display an error with its sources, for messages that must say everything on one line.
/// An [`AwsError`] ends the chain: its message already says what its SDK error says.
pub struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        if self.0.downcast_ref::<AwsError>().is_some() {
            return Ok(());
        }
        let mut src = self.0.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            if s.downcast_ref::<AwsError>().is_some() {
                break;
            }
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
                    Err(AwsError::new(
                        "iam:AttachRolePolicy",
                        ErrorClass::EventualConsistency,
                        "NoSuchEntity",
                    ))
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
            async { Err(AwsError::new("x", ErrorClass::Fatal, "no")) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn the_chain_stops_at_an_aws_error() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write the inventory")]
        struct Outer(#[source] AwsError);
        let inner = AwsError::new("dynamodb:PutItem", ErrorClass::Transient, "timeout");
        assert_eq!(
            DisplayChain(&Outer(inner)).to_string(),
            "cannot write the inventory: dynamodb:PutItem: timeout"
        );
    }
}
