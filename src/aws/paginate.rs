//! The one way paginated AWS reads are collected: every page, each failure classified as
//! its service's.

use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, ServiceCode};

/// Every page of a paginated `operation` (`iam:ListRoles`), in order. A failure on any page
/// is the operation's error, classified by the service's codes `C`.
pub async fn all_pages<C, T, E>(
    operation: &str,
    pages: PaginationStream<Result<T, SdkError<E, HttpResponse>>>,
) -> Result<Vec<T>, AwsError>
where
    C: ServiceCode,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    pages
        .try_collect()
        .await
        .map_err(|e| C::error(operation, e))
}
