//! The HTTPS client of every AWS SDK client, and the mapping of AWS SDK failures onto step
//! errors: one rule for S3 and DynamoDB alike.

use aws_sdk_s3::config::SharedHttpClient;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use bytes::Bytes;

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
) -> Result<Bytes, StepError> {
    let expected_len = expected_len.unwrap_or(0).min(limit) as usize;
    // A body that comes in one piece (the local twin's in-process S3 reads whole photos at once)
    // is handed on as it is: turning it into a Vec would copy it.
    let mut whole: Option<Bytes> = None;
    let mut joined = Vec::new();
    let mut received = 0u64;
    while let Some(chunk) = body.try_next().await.map_err(|error| {
        StepError::TransientError(format!("{what}: reading the object failed: {}", describe(&error)))
    })? {
        received += chunk.len() as u64;
        if received > limit {
            return Err(StepError::ImageTooLarge(format!(
                "{what}: the object is larger than the limit of {limit} bytes"
            )));
        }
        match whole.take() {
            None if joined.is_empty() => whole = Some(chunk),
            first => {
                if let Some(first) = first {
                    joined.reserve(expected_len.max(first.len() + chunk.len()));
                    joined.extend_from_slice(&first);
                }
                joined.extend_from_slice(&chunk);
            }
        }
    }
    Ok(whole.unwrap_or_else(|| Bytes::from(joined)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::primitives::ByteStream;

    #[tokio::test]
    async fn bodies_are_collected_whole_in_one_piece_or_many_up_to_the_limit() {
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let one_piece = || ByteStream::from(content.clone());
        assert_eq!(collect_limited(one_piece(), Some(10_000), 10_000, "x").await.unwrap(), content);
        let error = collect_limited(one_piece(), None, 9_999, "x").await.unwrap_err();
        assert_eq!(error.asl_name(), "ImageTooLarge", "{error}");

        let path = std::env::temp_dir().join(format!("imgflow-collect-{}", std::process::id()));
        std::fs::write(&path, &content).unwrap();
        let in_pieces = || aws_sdk_s3::primitives::FsBuilder::new().path(&path).buffer_size(1_000).build();
        assert_eq!(collect_limited(in_pieces().await.unwrap(), Some(10_000), 10_000, "x").await.unwrap(), content);
        assert_eq!(collect_limited(in_pieces().await.unwrap(), None, 10_000, "x").await.unwrap(), content);
        let error = collect_limited(in_pieces().await.unwrap(), Some(10_000), 9_999, "x").await.unwrap_err();
        assert_eq!(error.asl_name(), "ImageTooLarge", "{error}");
        std::fs::remove_file(&path).unwrap();
    }
}
