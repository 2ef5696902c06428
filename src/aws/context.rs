//! The clients of one Environment (or of the daemon's own account): the SDK config from the
//! standard credential chain and region, optionally an assumed role, one request counter,
//! and service clients made on first use.
//!
//! A kind gets its client with [`AwsContext::client`]; the client type says how it is built
//! ([`ServiceClient`], implemented beside the code that uses the service), so a new service
//! needs no change here.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;

use super::calls::{CallCounter, CallStats};

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

impl AssumeRole {
    /// The role of Environment `environment`, its session named after it.
    pub fn for_environment(environment: &str, arn: String, external_id: Option<String>) -> Self {
        AssumeRole {
            arn,
            external_id,
            session_name: session_name(environment),
        }
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

/// A service client an [`AwsContext`] can make: built from the context's SDK config with
/// its request counter as an interceptor.
pub trait ServiceClient: Clone + Send + Sync + 'static {
    /// Build the client.
    fn build(conf: &aws_config::SdkConfig, counter: CallCounter) -> Self;
}

/// Clients for one account and region, sharing one request counter. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AwsContext {
    conf: aws_config::SdkConfig,
    clients: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
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

    /// A context on a loaded SDK config; clients are made on first use.
    pub fn from_sdk_config(conf: &aws_config::SdkConfig) -> AwsContext {
        AwsContext {
            conf: conf.clone(),
            clients: Arc::default(),
            stats: Arc::new(CallStats::default()),
            eventual_consistency_timeout: Duration::from_secs(120),
        }
    }

    /// The SDK config the clients are built from.
    pub fn sdk_config(&self) -> &aws_config::SdkConfig {
        &self.conf
    }

    /// The client of type `C`, made on first use with this context's counter.
    pub fn client<C: ServiceClient>(&self) -> C {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let entry = clients
            .entry(TypeId::of::<C>())
            .or_insert_with(|| Box::new(C::build(&self.conf, CallCounter(self.stats.clone()))));
        entry
            .downcast_ref::<C>()
            .expect("clients are stored under their own type id")
            .clone()
    }

    /// The same credentials, endpoint, retry settings and request counter in `region` (an
    /// Environment's event queue in us-east-1, where IAM's events arrive). Its clients are
    /// its own.
    pub fn in_region(&self, region: &str) -> AwsContext {
        if self.conf.region().map(|r| r.as_ref()) == Some(region) {
            return self.clone();
        }
        AwsContext {
            conf: self
                .conf
                .to_builder()
                .region(aws_config::Region::new(region.to_string()))
                .build(),
            clients: Arc::default(),
            stats: self.stats.clone(),
            eventual_consistency_timeout: self.eventual_consistency_timeout,
        }
    }

    /// Whether `other` is a clone of this context (the same clients and credentials), not
    /// one built again.
    pub fn same_as(&self, other: &AwsContext) -> bool {
        Arc::ptr_eq(&self.clients, &other.clients)
    }

    /// Use `client` for its type instead of building one (tests with mocked answers).
    pub fn with_client<C: ServiceClient>(self, client: C) -> AwsContext {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(TypeId::of::<C>(), Box::new(client));
        self
    }
}
