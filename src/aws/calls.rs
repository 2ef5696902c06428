//! Every AWS request counted: by service, operation and outcome, for `--stats`, the
//! `mlspace_gitops_aws_requests_total` metric and (in the daemon) readiness.
//!
//! The outcome of an attempt is what the SDK's own retry classifiers say of it: they read
//! the operation's typed error, so a throttled IAM call (HTTP 400 with a throttling code)
//! counts as throttled without anyone reading a response body.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime::client::retries::classifiers::run_classifiers_on_ctx;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::classifiers::{RetryAction, RetryReason};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::ErrorKind;

/// One AWS call's outcome, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallResult {
    /// 2xx.
    Ok,
    /// 4xx (including expected NotFound answers).
    ClientError,
    /// Throttled (429, or an error the service's retry classifier calls throttling).
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
        lock(&self.counts).values().sum()
    }

    /// (service, operation, result) → count.
    pub fn snapshot(&self) -> BTreeMap<(String, String, CallResult), u64> {
        lock(&self.counts).clone()
    }

    /// Requests per operation, summed over results.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for ((svc, op, _), n) in lock(&self.counts).iter() {
            *m.entry(format!("{svc}:{op}")).or_default() += n;
        }
        m
    }

    /// Also report each call to `o`.
    pub fn set_observer(&self, o: Arc<dyn CallObserver>) {
        *lock(&self.observer) = Some(o);
    }

    fn record(&self, service: &str, operation: &str, result: CallResult, elapsed: Duration) {
        *lock(&self.counts)
            .entry((service.to_string(), operation.to_string(), result))
            .or_default() += 1;
        if let Some(o) = lock(&self.observer).as_ref() {
            o.observe(service, operation, result, elapsed);
        }
    }
}

/// Counts cannot be left half-written: a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start time of the current attempt, kept in the config bag.
#[derive(Debug, Clone)]
struct AttemptStart(Instant);
impl aws_smithy_types::config_bag::Storable for AttemptStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// The SDK interceptor feeding [`CallStats`]; every client of an
/// [`super::AwsContext`] carries one (see [`super::ServiceClient`]).
#[derive(Debug, Clone)]
pub struct CallCounter(pub(super) Arc<CallStats>);

impl Intercept for CallCounter {
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
        components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(start) = cfg.load::<AttemptStart>().map(|s| s.0) else {
            return Ok(()); // never transmitted (e.g. failed to sign): not a request
        };
        let (service, op) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_default();
        let result = match ctx.response().map(|r| r.status().as_u16()) {
            None => CallResult::ServerError,
            Some(s) if s < 400 => CallResult::Ok,
            Some(s) => {
                // The operation's own classifiers read its typed error.
                let throttled = matches!(
                    run_classifiers_on_ctx(components.retry_classifiers(), ctx.inner()),
                    RetryAction::RetryIndicated(RetryReason::RetryableError {
                        kind: ErrorKind::ThrottlingError,
                        ..
                    })
                );
                if s == 429 || throttled {
                    CallResult::Throttled
                } else if s >= 500 {
                    CallResult::ServerError
                } else {
                    CallResult::ClientError
                }
            }
        };
        self.0.record(&service, &op, result, start.elapsed());
        Ok(())
    }
}
