//! The services the tool itself uses, whatever the kinds: STS (whose credentials these
//! are), DynamoDB (the state table, and the Table kind) and SQS (the queues of an
//! Environment's events, read by the daemon). Their clients and error codes live here; a
//! kind's own service keeps them in the kind's folder.

use super::calls::CallCounter;
use super::context::{AwsContext, ServiceClient};
use super::error::{AwsError, ErrorClass, ServiceCode};

impl ServiceClient for aws_sdk_sts::Client {
    fn build(conf: &aws_config::SdkConfig, counter: CallCounter) -> Self {
        aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(conf)
                .interceptor(counter)
                .build(),
        )
    }
}

impl ServiceClient for aws_sdk_dynamodb::Client {
    fn build(conf: &aws_config::SdkConfig, counter: CallCounter) -> Self {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(conf)
                .interceptor(counter)
                .build(),
        )
    }
}

impl ServiceClient for aws_sdk_sqs::Client {
    fn build(conf: &aws_config::SdkConfig, counter: CallCounter) -> Self {
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(conf)
                .interceptor(counter)
                .build(),
        )
    }
}

/// The DynamoDB client of a context.
pub fn dynamodb(aws: &super::AwsContext) -> aws_sdk_dynamodb::Client {
    aws.client()
}

/// The STS error codes the engine tells apart (none beyond the common ones: every STS
/// failure to say whose credentials these are is reported as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsCode {
    /// The credentials have expired.
    ExpiredToken,
}

impl ServiceCode for StsCode {
    fn parse(code: &str) -> Option<Self> {
        match code {
            "ExpiredToken" | "ExpiredTokenException" => Some(StsCode::ExpiredToken),
            _ => None,
        }
    }

    fn class(self) -> Option<ErrorClass> {
        match self {
            StsCode::ExpiredToken => Some(ErrorClass::Fatal),
        }
    }
}

/// The SQS error codes the daemon tells apart when it reads an event queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqsCode {
    /// The queue does not exist (or not in this account and region).
    QueueDoesNotExist,
    /// A receipt handle no longer valid: the message was deleted or received again since.
    ReceiptHandleIsInvalid,
    /// Too many messages in flight.
    OverLimit,
    /// The queue's KMS key cannot be used by the reader.
    KmsAccessDenied,
}

impl ServiceCode for SqsCode {
    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            // The JSON protocol's code, then the query protocol's.
            "QueueDoesNotExist" | "AWS.SimpleQueueService.NonExistentQueue" => {
                SqsCode::QueueDoesNotExist
            }
            "ReceiptHandleIsInvalid" => SqsCode::ReceiptHandleIsInvalid,
            "OverLimit" => SqsCode::OverLimit,
            "KmsAccessDenied" | "KMS.AccessDeniedException" => SqsCode::KmsAccessDenied,
            _ => return None,
        })
    }

    fn class(self) -> Option<ErrorClass> {
        Some(match self {
            SqsCode::QueueDoesNotExist | SqsCode::ReceiptHandleIsInvalid => ErrorClass::NotFound,
            SqsCode::OverLimit => ErrorClass::Transient,
            SqsCode::KmsAccessDenied => ErrorClass::Fatal,
        })
    }
}

/// The DynamoDB error codes the engine tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamoDbCode {
    /// The table (or item's table) does not exist.
    ResourceNotFound,
    /// The table is being created, updated or deleted.
    ResourceInUse,
    /// Too many control-plane operations at once.
    LimitExceeded,
    /// Capacity exceeded.
    ProvisionedThroughputExceeded,
    /// A conditional write's condition did not hold (a lease or fence).
    ConditionalCheckFailed,
    /// A transaction was cancelled; its reasons say why.
    TransactionCanceled,
    /// Another transaction holds the item.
    TransactionInProgress,
    /// A transaction is writing the item at the same time.
    TransactionConflict,
    /// The request is invalid for the table's state.
    Validation,
    /// Point-in-time recovery cannot be set yet (right after CreateTable).
    ContinuousBackupsUnavailable,
}

impl ServiceCode for DynamoDbCode {
    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "ResourceNotFoundException" | "TableNotFoundException" => {
                DynamoDbCode::ResourceNotFound
            }
            "ResourceInUseException" => DynamoDbCode::ResourceInUse,
            "LimitExceededException" => DynamoDbCode::LimitExceeded,
            "ProvisionedThroughputExceededException" => DynamoDbCode::ProvisionedThroughputExceeded,
            // The code inside a transaction's cancellation reasons, and the exception.
            "ConditionalCheckFailed" | "ConditionalCheckFailedException" => {
                DynamoDbCode::ConditionalCheckFailed
            }
            "TransactionCanceledException" => DynamoDbCode::TransactionCanceled,
            "TransactionInProgressException" => DynamoDbCode::TransactionInProgress,
            "TransactionConflictException" => DynamoDbCode::TransactionConflict,
            "ValidationException" => DynamoDbCode::Validation,
            "ContinuousBackupsUnavailableException" => DynamoDbCode::ContinuousBackupsUnavailable,
            _ => return None,
        })
    }

    fn class(self) -> Option<ErrorClass> {
        Some(match self {
            DynamoDbCode::ResourceNotFound => ErrorClass::NotFound,
            DynamoDbCode::ResourceInUse
            | DynamoDbCode::LimitExceeded
            | DynamoDbCode::ProvisionedThroughputExceeded
            | DynamoDbCode::TransactionInProgress
            | DynamoDbCode::TransactionConflict => ErrorClass::Transient,
            DynamoDbCode::ConditionalCheckFailed | DynamoDbCode::TransactionCanceled => {
                ErrorClass::Conflict
            }
            DynamoDbCode::Validation => ErrorClass::Fatal,
            DynamoDbCode::ContinuousBackupsUnavailable => ErrorClass::Transient,
        })
    }
}

impl AwsContext {
    /// Check that the credentials reach `expected` (STS GetCallerIdentity, which needs no
    /// permission). Done for an Environment before anything is read or written, so that a
    /// dev manifest set never lands in a prod account. Returns the caller's ARN (the
    /// principal CloudTrail records for its calls), when STS gives one.
    pub async fn check_account(&self, expected: &str) -> Result<Option<String>, AccountError> {
        let sts: aws_sdk_sts::Client = self.client();
        let out = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AccountError::Identity(StsCode::error("sts:GetCallerIdentity", e)))?;
        let actual = out.account().unwrap_or_default();
        if actual != expected {
            return Err(AccountError::WrongAccount {
                actual: actual.to_string(),
                expected: expected.to_string(),
            });
        }
        Ok(out.arn().map(str::to_string))
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
