//! An HTTP client for the AWS SDK that hands each request straight to the twin's own S3 service,
//! without sockets: the steps inside the twin keep speaking the real S3 protocol (the SDK's
//! serialisation, SigV4 signing and checksums; s3s's signature check, routing and XML), but
//! their bytes are no longer copied through loopback TCP. Clients outside the process keep
//! using the twin's TCP listener.
//!
//! A request is given what a hyper client would put on the wire and a hyper server would hand
//! over: an origin-form URI, a `Host` header from the URI's authority (the SDK signs the host
//! without setting the header), and `Content-Length` for a body of known length. Responses get
//! `Content-Length` the same way.

use std::sync::{Arc, OnceLock};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use http::header::{CONTENT_LENGTH, HOST, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use hyper::body::Body as _;
use s3s::Body;
use s3s::service::S3Service;

/// The SDK's view of the twin's S3 service. Cheap to clone; clones share the service, which may
/// be connected after the SDK client is built (the twin's S3 service announces objects to the
/// engine, whose steps need this client first).
#[derive(Clone, Default)]
pub struct InProcessS3 {
    service: Arc<OnceLock<S3Service>>,
}

impl std::fmt::Debug for InProcessS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessS3").field("connected", &self.service.get().is_some()).finish()
    }
}

impl InProcessS3 {
    /// A client whose requests go to `service`.
    pub fn new(service: S3Service) -> InProcessS3 {
        let client = InProcessS3::default();
        client.connect(service);
        client
    }

    /// Sends every later request to `service`; a client is connected once (later calls are
    /// ignored).
    pub fn connect(&self, service: S3Service) {
        let _ = self.service.set(service);
    }
}

impl HttpConnector for InProcessS3 {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let service = self.service.get().cloned();
        HttpConnectorFuture::new(async move {
            let service = service
                .ok_or_else(|| ConnectorError::other("the twin's S3 service is not connected yet".into(), None))?;
            let request = server_request(request)?;
            let response = super::answer(&service, request).await;
            sdk_response(response)
        })
    }
}

impl HttpClient for InProcessS3 {
    /// There is no connection to time out or pool: every request is a function call.
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// The request as the twin's listener would receive it.
fn server_request(request: HttpRequest) -> Result<http::Request<Body>, ConnectorError> {
    let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(HOST)
        && let Some(host) = host_header(&parts.uri)
    {
        parts.headers.insert(HOST, host);
    }
    let path = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(path);
    let body_may_be_empty = matches!(parts.method, http::Method::GET | http::Method::HEAD | http::Method::DELETE);
    if !parts.headers.contains_key(CONTENT_LENGTH)
        && let Some(length) = body.content_length()
        && (length > 0 || !body_may_be_empty)
    {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    Ok(http::Request::from_parts(parts, Body::http_body(body)))
}

/// `host[:port]` as a hyper client writes it: the port only when it is not the scheme's default.
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let value = match uri.port_u16() {
        Some(port) if port != default_port => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    HeaderValue::try_from(value).ok()
}

/// The service's answer as the SDK reads it off a connection.
fn sdk_response(response: http::Response<Body>) -> Result<HttpResponse, ConnectorError> {
    let (mut parts, body) = response.into_parts();
    if !parts.headers.contains_key(CONTENT_LENGTH)
        && let Some(length) = body.size_hint().exact()
    {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    let response = http::Response::from_parts(parts, SdkBody::from_body_1_x(body));
    HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_carry_the_port_unless_it_is_the_default() {
        let host = |uri: &str| host_header(&uri.parse().unwrap()).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(host("http://127.0.0.1:4566/images/a").as_deref(), Some("127.0.0.1:4566"));
        assert_eq!(host("http://localhost/images").as_deref(), Some("localhost"));
        assert_eq!(host("https://s3.amazonaws.com:443/x").as_deref(), Some("s3.amazonaws.com"));
        assert_eq!(host("/images/a"), None);
    }

    #[test]
    fn requests_arrive_in_origin_form_with_host_and_length() {
        let mut request = HttpRequest::new(SdkBody::from("hello"));
        request.set_uri("http://127.0.0.1:4566/images/uploads/a?x-id=PutObject").unwrap();
        request.set_method("PUT").unwrap();
        let request = server_request(request).unwrap();
        assert_eq!(request.uri(), "/images/uploads/a?x-id=PutObject");
        assert_eq!(request.headers()[HOST], "127.0.0.1:4566");
        assert_eq!(request.headers()[CONTENT_LENGTH], "5");

        // An empty GET has no Content-Length, as hyper sends it.
        let mut request = HttpRequest::new(SdkBody::empty());
        request.set_uri("http://127.0.0.1:4566/images?list-type=2").unwrap();
        let request = server_request(request).unwrap();
        assert!(!request.headers().contains_key(CONTENT_LENGTH));
        assert_eq!(request.uri(), "/images?list-type=2");
    }

    #[tokio::test]
    async fn an_unconnected_client_fails_as_a_dispatch_failure() {
        let mut request = HttpRequest::new(SdkBody::empty());
        request.set_uri("http://127.0.0.1:4566/images").unwrap();
        let error = InProcessS3::default().call(request).await.unwrap_err();
        assert!(error.is_other(), "{error:?}");
    }

    /// The same operations through a TCP endpoint and in-process, over the same folder: the
    /// answers agree, successes and S3 errors alike.
    #[tokio::test]
    async fn in_process_requests_get_the_answers_tcp_requests_get() {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        use aws_sdk_s3::primitives::ByteStream;

        let root = tempfile::tempdir().unwrap();
        let credentials = || super::super::Credentials { access_key: "key".into(), secret_key: "secret".into() };
        let tcp_endpoint =
            super::super::S3Endpoint::start(root.path(), ([127, 0, 0, 1], 0).into(), credentials()).await.unwrap();
        let (service, _) =
            super::super::service(root.path(), credentials(), Arc::new(super::super::announcing::Silent)).unwrap();
        let client = |secret: &str, connection: Option<InProcessS3>| {
            let mut config = aws_sdk_s3::config::Builder::new()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new("key", secret, None, None, "test"))
                .endpoint_url(tcp_endpoint.url())
                .force_path_style(true);
            config = match connection {
                Some(connection) => config.http_client(connection),
                None => config.http_client(imgflow_steps::https_client()),
            };
            aws_sdk_s3::Client::from_conf(config.build())
        };
        let tcp = client("secret", None);
        let in_process = client("secret", Some(InProcessS3::new(service.clone())));
        tcp.create_bucket().bucket("images").send().await.unwrap();

        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let mut etags = Vec::new();
        for (client, key) in [(&tcp, "uploads/tcp"), (&in_process, "uploads/in-process")] {
            let put = client
                .put_object()
                .bucket("images")
                .key(key)
                .content_type("image/jpeg")
                .body(ByteStream::from(content.clone()))
                .send()
                .await
                .unwrap();
            etags.push(put.e_tag().unwrap().to_owned());
        }
        assert_eq!(etags[0], etags[1], "both stores answer the MD5 of the content");

        for key in ["uploads/tcp", "uploads/in-process"] {
            let mut answers = Vec::new();
            for client in [&tcp, &in_process] {
                let whole = client.get_object().bucket("images").key(key).send().await.unwrap();
                let facts =
                    (whole.e_tag().map(str::to_owned), whole.content_length(), whole.content_type().map(str::to_owned));
                let body = whole.body.collect().await.unwrap().into_bytes();
                let range = client.get_object().bucket("images").key(key).range("bytes=10-19").send().await.unwrap();
                let range_facts = (range.content_range().map(str::to_owned), range.content_length());
                let range_body = range.body.collect().await.unwrap().into_bytes();
                answers.push((facts, body, range_facts, range_body));
            }
            assert_eq!(answers[0], answers[1], "{key}");
            assert_eq!(answers[0].1, content.as_slice());
            assert_eq!(answers[0].3, &content[10..20]);
        }

        let listed = |output: aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output| {
            output
                .contents()
                .iter()
                .map(|o| (o.key().map(str::to_owned), o.size(), o.e_tag().map(str::to_owned)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            listed(tcp.list_objects_v2().bucket("images").send().await.unwrap()),
            listed(in_process.list_objects_v2().bucket("images").send().await.unwrap()),
        );

        // Errors: the same status and S3 error code.
        let wrong_secret = client("wrong", Some(InProcessS3::new(service.clone())));
        let wrong_secret_tcp = client("wrong", None);
        let mut failures = Vec::new();
        for (client, signs_wrongly) in [(&tcp, &wrong_secret_tcp), (&in_process, &wrong_secret)] {
            let missing = client.get_object().bucket("images").key("uploads/none").send().await.unwrap_err();
            let replaced =
                client.get_object().bucket("images").key("uploads/tcp").if_match("\"other\"").send().await.unwrap_err();
            let unsigned = signs_wrongly.list_objects_v2().bucket("images").send().await.unwrap_err();
            failures.push([
                (missing.raw_response().map(|r| r.status().as_u16()), missing.code().map(str::to_owned)),
                (replaced.raw_response().map(|r| r.status().as_u16()), None),
                (unsigned.raw_response().map(|r| r.status().as_u16()), unsigned.code().map(str::to_owned)),
            ]);
        }
        assert_eq!(failures[0], failures[1]);
        assert_eq!(failures[0][0], (Some(404), Some("NoSuchKey".to_owned())));
        assert_eq!(failures[0][1].0, Some(412));
        assert_eq!(failures[0][2], (Some(403), Some("SignatureDoesNotMatch".to_owned())));
    }
}
