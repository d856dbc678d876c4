//! The HTTPS client of every AWS SDK client, and the mapping of AWS SDK failures onto step
//! errors: one rule for S3 and DynamoDB alike.

use aws_sdk_s3::config::SharedHttpClient;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::error::StepError;

type HttpResponse = aws_sdk_s3::config::http::HttpResponse;

/// The HTTP client for AWS SDK clients and configurations (`http_client(...)`): the SDK's own
/// hyper client with rustls, on ring rather than the SDK default's aws-lc, which would add a few
/// MB to every Lambda binary. It trusts the system's root certificates, as the default does.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// Error codes that mean "try again later" on S3 and DynamoDB.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestTimeout",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Classifies an SDK error. `not_found` says whether a 404 means the object is gone (reads) or
/// is a configuration problem (a missing bucket or table on writes).
pub(crate) fn step_error<E>(what: &str, error: &SdkError<E, HttpResponse>, not_found: bool) -> StepError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = |detail: String| format!("{what}: {detail}");
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StepError::TransientError(message(describe(error)))
        }
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let code = context.err().code().unwrap_or_default();
            let detail =
                format!("{} (HTTP {status}{}{})", describe(error), if code.is_empty() { "" } else { ", " }, code);
            if not_found && (status == 404 || code == "NoSuchKey" || code == "NoSuchVersion") {
                StepError::ObjectNotFound(message(detail))
            } else if status == 429 || status >= 500 || TRANSIENT_CODES.contains(&code) {
                StepError::TransientError(message(detail))
            } else {
                StepError::InternalError(message(detail))
            }
        }
        _ => StepError::InternalError(message(describe(error))),
    }
}

/// The SDK's Display says little ("service error"); the error chain says what happened.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = inner.source();
    }
    parts.join(": ")
}

/// Reads a streamed body up to `limit` bytes; a longer body is an [`StepError::ImageTooLarge`].
pub(crate) async fn collect_limited(
    mut body: aws_sdk_s3::primitives::ByteStream,
    expected_len: Option<u64>,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, StepError> {
    let mut bytes = Vec::with_capacity(expected_len.unwrap_or(0).min(limit) as usize);
    while let Some(chunk) = body.try_next().await.map_err(|error| {
        StepError::TransientError(format!("{what}: reading the object failed: {}", describe(&error)))
    })? {
        if bytes.len() as u64 + chunk.len() as u64 > limit {
            return Err(StepError::ImageTooLarge(format!(
                "{what}: the object is larger than the limit of {limit} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
