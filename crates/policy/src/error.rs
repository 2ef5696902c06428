//! The crate's error type.
//!
//! Validation findings are not errors in this sense: [`crate::validate`] returns them as
//! data ([`crate::Issue`]). `PolicyError` is for operations that cannot produce a result.

use thiserror::Error;

/// Why a policy document could not be produced.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The percent-decoded bytes of a URL-encoded document are not UTF-8.
    #[error("URL-decoded policy document is not valid UTF-8: {source}")]
    InvalidUtf8 {
        /// The underlying decoding error.
        #[source]
        source: std::str::Utf8Error,
    },
    /// The document text is not JSON.
    #[error(
        "policy document{} is not valid JSON: {source}",
        if *url_decoded { " (after URL-decoding)" } else { "" }
    )]
    InvalidJson {
        /// Whether the text had been URL-decoded before parsing.
        url_decoded: bool,
        /// The underlying parse error, with line and column.
        #[source]
        source: serde_json::Error,
    },
}
