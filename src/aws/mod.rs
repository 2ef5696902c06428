//! AWS: the clients of an Environment, request accounting, error classes and the few
//! helpers every kind's AWS half shares.
//!
//! Clients come from the standard credential chain and region; `AWS_ENDPOINT_URL` (or an
//! explicit endpoint) points them at an emulator. The SDK's standard retry strategy handles
//! throttling and 5xx with jittered exponential backoff and a timeout per attempt;
//! [`retry_eventual`] adds the longer retries that IAM's eventual consistency needs.
//!
//! - [`context`]: [`AwsContext`] and its options; clients made on first use
//!   ([`ServiceClient`]).
//! - [`calls`]: every request counted by service, operation and outcome.
//! - [`error`]: [`AwsError`] (keeps its SDK error), [`ErrorClass`], each service's typed
//!   codes ([`ServiceCode`]).
//! - [`paginate`]: the one way paginated reads are collected.
//! - [`services`]: STS (the account check), DynamoDB and SQS, which the tool itself uses.
//! - [`emulator`]: workarounds for the emulator the tests run against, each named.

pub mod calls;
pub mod context;
pub mod emulator;
pub mod error;
pub mod paginate;
pub mod services;

pub use calls::{CallCounter, CallObserver, CallResult, CallStats};
pub use context::{AssumeRole, AwsContext, AwsOptions, ServiceClient, DEFAULT_ATTEMPT_TIMEOUT};
pub use error::{gone_ok, retry_eventual, AwsError, DisplayChain, ErrorClass, ServiceCode};
pub use paginate::all_pages;
pub use services::{dynamodb, AccountError, DynamoDbCode, SqsCode, StsCode};
