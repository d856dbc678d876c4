//! The upload API, with the routes and answers of the API Gateway deployment:
//! `POST /upload`, `GET /images/{imageId}`, `GET /images?status=…`.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use imgflow_steps::event::UPLOADS_PREFIX;
use imgflow_steps::metadata::{ImageStatus, ListQuery, MetadataStore};
use s3s::dto::StreamingBlob;
use s3s::{Body, S3ErrorCode};
use serde_json::{Value, json};

use super::pipeline::Pipeline;
use crate::s3::AnnouncingStore;

/// API Gateway's payload limit.
pub const DEFAULT_UPLOAD_LIMIT: usize = 10 * 1024 * 1024;

pub struct UploadApi {
    pub pipeline: std::sync::Arc<Pipeline>,
    pub objects: AnnouncingStore,
    pub metadata: std::sync::Arc<dyn MetadataStore>,
    pub upload_limit: usize,
    /// The twin's own URL, for `statusUrl`.
    pub base_url: String,
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    json_response(status, &json!({"message": message.into()}))
}

/// The image of a multipart/form-data request: its bytes and Content-Type.
struct Upload {
    bytes: Bytes,
    content_type: Option<String>,
}

impl UploadApi {
    /// `POST /upload`: a raw `image/*` body or multipart/form-data with a `file` field.
    pub async fn upload(&self, headers: &HeaderMap, body: Incoming) -> Response<Body> {
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.upload_limit as u64) {
            return self.too_large();
        }
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let image_id = uuid::Uuid::new_v4().to_string();
        let key = format!("{UPLOADS_PREFIX}{image_id}");
        let bucket = self.pipeline.bucket().to_owned();
        let stored = if essence.starts_with("image/") {
            // The body goes to the store as it arrives: hashed on the way, never concatenated.
            let mut body = LimitedBody { body, limit: self.upload_limit, received: 0 };
            let first = match body.next_chunk().await {
                Ok(Some(first)) => first,
                Ok(None) => return error(StatusCode::BAD_REQUEST, "the image is empty"),
                Err(failure) => return self.body_failure(failure),
            };
            let exceeded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stream = body.into_stream(first, exceeded.clone());
            match self.objects.put_stream(&bucket, &key, Some(content_type), StreamingBlob::wrap(stream)).await {
                Err(_) if exceeded.load(std::sync::atomic::Ordering::SeqCst) => return self.too_large(),
                stored => stored,
            }
        } else {
            let bytes = match Limited::new(body, self.upload_limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => return self.too_large(),
                Err(error) => return error_response_for_body(&*error),
            };
            let upload = match parse_form(&essence, &content_type, bytes).await {
                Ok(upload) => upload,
                Err(response) => return response,
            };
            if upload.bytes.is_empty() {
                return error(StatusCode::BAD_REQUEST, "the image is empty");
            }
            self.objects.put_bytes(&bucket, &key, upload.content_type, upload.bytes).await
        };
        match stored {
            Ok(object) => json_response(
                StatusCode::ACCEPTED,
                &json!({
                    "imageId": image_id,
                    "key": key,
                    "statusUrl": format!("{}/images/{image_id}", self.base_url),
                    "executionArn": self.pipeline.execution_arn(&object),
                }),
            ),
            Err(failure) if *failure.code() == S3ErrorCode::SlowDown => {
                let mut response = error(StatusCode::SERVICE_UNAVAILABLE, failure.message().unwrap_or("busy"));
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                response
            }
            Err(failure) if *failure.code() == S3ErrorCode::IncompleteBody => {
                error(StatusCode::BAD_REQUEST, failure.message().unwrap_or("the request body could not be read"))
            }
            Err(failure) => {
                tracing::error!(error = ?failure, "upload: storing failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, failure.message().unwrap_or("the upload could not be stored"))
            }
        }
    }

    fn body_failure(&self, failure: BodyFailure) -> Response<Body> {
        match failure {
            BodyFailure::TooLarge => self.too_large(),
            BodyFailure::Unreadable(failure) => error_response_for_body(&failure),
        }
    }

    fn too_large(&self) -> Response<Body> {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds the {}-byte limit; nothing was stored", self.upload_limit),
        )
    }

    /// `GET /images/{imageId}`: the metadata item; while the image is being processed, the
    /// status of its execution.
    pub async fn image(&self, image_id: &str) -> Response<Body> {
        let stored = match self.metadata.get(image_id).await {
            Ok(stored) => stored,
            Err(failure) => return error(StatusCode::INTERNAL_SERVER_ERROR, failure.to_string()),
        };
        let processing = self.pipeline.processing(image_id);
        match (stored, processing) {
            // A FAILED image being replayed shows its new execution.
            (Some(record), Some(running)) if record.status == ImageStatus::Failed => processing_response(&running),
            (Some(record), _) => match serde_json::to_value(&record) {
                Ok(value) => json_response(StatusCode::OK, &value),
                Err(failure) => error(StatusCode::INTERNAL_SERVER_ERROR, failure.to_string()),
            },
            (None, Some(running)) => processing_response(&running),
            (None, None) => error(StatusCode::NOT_FOUND, format!("no image {image_id}")),
        }
    }

    /// `GET /images?status=&limit=&nextToken=`: newest upload first, paginated.
    pub async fn images(&self, query: Option<&str>) -> Response<Body> {
        let mut list = ListQuery::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match name.as_ref() {
                "status" => match ImageStatus::parse(&value) {
                    Some(status) => list.status = Some(status),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            format!("status must be SUCCEEDED, REJECTED or FAILED, not {value:?}"),
                        );
                    }
                },
                "limit" => match value.parse::<u32>() {
                    Ok(limit) if (1..=1000).contains(&limit) => list.limit = limit,
                    _ => return error(StatusCode::BAD_REQUEST, "limit must be a number from 1 to 1000"),
                },
                "nextToken" => list.next_token = Some(value.into_owned()),
                _ => {}
            }
        }
        match self.metadata.list(&list).await {
            Ok(page) => match serde_json::to_value(&page) {
                Ok(value) => json_response(StatusCode::OK, &value),
                Err(failure) => error(StatusCode::INTERNAL_SERVER_ERROR, failure.to_string()),
            },
            Err(imgflow_steps::StepError::InvalidInput(message)) => error(StatusCode::BAD_REQUEST, message),
            Err(failure) => error(StatusCode::INTERNAL_SERVER_ERROR, failure.to_string()),
        }
    }
}

fn processing_response(running: &super::pipeline::Processing) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({
            "imageId": running.image_id,
            "key": running.key,
            "status": "PROCESSING",
            "executionArn": running.execution_arn,
            "uploadedAt": running.started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }),
    )
}

fn error_response_for_body(failure: &(dyn std::error::Error + Send + Sync)) -> Response<Body> {
    error(StatusCode::BAD_REQUEST, format!("the request body could not be read: {failure}"))
}

/// Why an upload's body could not be taken.
#[derive(Debug, thiserror::Error)]
enum BodyFailure {
    #[error("the body is over the upload limit")]
    TooLarge,
    #[error(transparent)]
    Unreadable(hyper::Error),
}

/// A raw upload's body, refused as soon as it passes the limit.
struct LimitedBody {
    body: Incoming,
    limit: usize,
    received: usize,
}

impl LimitedBody {
    /// The next chunk of data; `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyFailure> {
        while let Some(frame) = self.body.frame().await {
            let Ok(data) = frame.map_err(BodyFailure::Unreadable)?.into_data() else { continue };
            self.received += data.len();
            if self.received > self.limit {
                return Err(BodyFailure::TooLarge);
            }
            if !data.is_empty() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// `first`, then the rest of the body; passing the limit sets `exceeded` and ends the stream
    /// with an error.
    fn into_stream(
        self,
        first: Bytes,
        exceeded: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> impl futures::Stream<Item = Result<Bytes, BodyFailure>> + Send + Sync + 'static {
        let rest = futures::stream::try_unfold(self, move |mut body| {
            let exceeded = exceeded.clone();
            async move {
                match body.next_chunk().await {
                    Ok(chunk) => Ok(chunk.map(|chunk| (chunk, body))),
                    Err(failure) => {
                        if matches!(failure, BodyFailure::TooLarge) {
                            exceeded.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(failure)
                    }
                }
            }
        });
        futures::StreamExt::chain(futures::stream::once(async move { Ok(first) }), rest)
    }
}

/// The image of a multipart/form-data request (field `file`); an error response for any other
/// content type.
async fn parse_form(essence: &str, content_type: &str, bytes: Bytes) -> Result<Upload, Response<Body>> {
    if essence != "multipart/form-data" {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the image as the body with an image/* Content-Type, or as multipart/form-data field \"file\"",
        ));
    }
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("multipart/form-data without a boundary: {e}")))?;
    let stream = futures::stream::once(async move { Ok::<Bytes, Infallible>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    let malformed = |e: multer::Error| error(StatusCode::BAD_REQUEST, format!("malformed multipart/form-data: {e}"));
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        if field.name() != Some("file") {
            continue;
        }
        let content_type =
            field.content_type().map(|mime| mime.essence_str().to_owned()).filter(|t| t.starts_with("image/"));
        let bytes = field.bytes().await.map_err(malformed)?;
        return Ok(Upload { bytes, content_type });
    }
    Err(error(StatusCode::BAD_REQUEST, "the multipart/form-data has no \"file\" field"))
}
