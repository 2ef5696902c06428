//! An Environment's clients: its region and assumed role, made on first use and kept while
//! the options stay the same, and refused when the credentials reach another account than
//! the Environment's (then nothing is read or written there).

use std::sync::Arc;

use crate::aws::{AccountError, AssumeRole, AwsContext, AwsOptions, CallObserver};
use crate::kinds::environment::EnvironmentView;

/// Why an Environment's clients were refused; nothing was read or changed there.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The credentials reach another account.
    #[error("the credentials for Environment {environment} reach account {actual}, not {expected}; nothing was read or changed (set spec.assumeRoleArn, or run with that account's credentials)")]
    WrongAccount {
        /// The Environment.
        environment: String,
        /// The account the credentials reach.
        actual: String,
        /// The Environment's account.
        expected: String,
    },
    /// STS did not say whose the credentials are.
    #[error("checking the credentials for Environment {environment}; nothing was read or changed")]
    Identity {
        /// The Environment.
        environment: String,
        /// The check's error.
        #[source]
        source: AccountError,
    },
}

/// The clients of one Environment, cached between runs (the daemon keeps one per
/// Environment; the CLI one per command).
#[derive(Debug)]
pub struct Clients {
    base: AwsOptions,
    observer: Option<Arc<dyn CallObserver>>,
    current: Option<(AwsOptions, String, AwsContext)>,
    /// The principal the current clients act as (`GetCallerIdentity`'s ARN).
    principal: Option<String>,
}

impl Clients {
    /// Clients built from `base` (endpoint, timeouts), every request also reported to
    /// `observer` (metrics and readiness, in the daemon).
    pub fn new(base: AwsOptions, observer: Option<Arc<dyn CallObserver>>) -> Clients {
        Clients {
            base,
            observer,
            current: None,
            principal: None,
        }
    }

    /// The options for Environment `env`: its `assumeRoleArn`, when set, is assumed.
    pub fn options_for(&self, env: &EnvironmentView) -> AwsOptions {
        let mut o = self.base.clone();
        o.assume_role = env.assume_role_arn.as_ref().map(|arn| {
            AssumeRole::for_environment(&env.name, arn.clone(), env.external_id.clone())
        });
        o
    }

    /// The Environment's clients, checked to reach its account when they are (re)made.
    pub async fn connect(&mut self, env: &EnvironmentView) -> Result<AwsContext, ConnectError> {
        let opts = self.options_for(env);
        if let Some((o, region, aws)) = &self.current {
            if *o == opts && region == &env.region {
                return Ok(aws.clone());
            }
        }
        let aws = AwsContext::from_env(&opts, &env.region).await;
        if let Some(o) = &self.observer {
            aws.stats.set_observer(o.clone());
        }
        let principal = match aws.check_account(&env.account).await {
            Ok(arn) => arn,
            Err(AccountError::WrongAccount { actual, expected }) => {
                return Err(ConnectError::WrongAccount {
                    environment: env.name.clone(),
                    actual,
                    expected,
                })
            }
            Err(source) => {
                return Err(ConnectError::Identity {
                    environment: env.name.clone(),
                    source,
                })
            }
        };
        self.current = Some((opts, env.region.clone(), aws.clone()));
        self.principal = principal;
        Ok(aws)
    }

    /// The principal the current clients act as: the ARN CloudTrail records for the calls
    /// they make (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`); `None` before the first
    /// connection.
    pub fn principal(&self) -> Option<&str> {
        self.current.as_ref().and(self.principal.as_deref())
    }

    /// The clients made last, if any (for request counts after a run).
    pub fn current(&self) -> Option<&AwsContext> {
        self.current.as_ref().map(|(_, _, aws)| aws)
    }
}
