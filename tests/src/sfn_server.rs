//! A minimal HTTP server in front of [`imgflow_local::sfn::handle`] on 127.0.0.1 for tests and
//! benchmarks: `POST /` with `X-Amz-Target: AWSStepFunctions.<Operation>`, answered the way the
//! twin's server answers (status, body, Content-Type, `x-amzn-ErrorType`).

use std::net::SocketAddr;

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use imgflow_engine::Engine;
use imgflow_local::sfn::{self, CONTENT_TYPE, TARGET_PREFIX};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{ACCESS_KEY, REGION, SECRET_KEY};

/// The endpoint, serving until dropped.
pub struct SfnServer {
    pub address: SocketAddr,
    accept_loop: JoinHandle<()>,
}

impl SfnServer {
    /// Serves `engine` on a free port of 127.0.0.1.
    pub async fn start(engine: Engine) -> std::io::Result<SfnServer> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let address = listener.local_addr()?;
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // Answers are small: send each at once rather than wait to coalesce (Nagle).
                if let Err(error) = stream.set_nodelay(true) {
                    eprintln!("sfn test server: cannot set TCP_NODELAY: {error}");
                }
                let engine = engine.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| route(engine.clone(), request));
                    // A client closing its connection mid-request is not the server's failure.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(SfnServer { address, accept_loop })
    }

    /// The URL clients use as their endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// An aws-sdk-sfn client pointed at this endpoint with dummy credentials.
    pub fn client(&self) -> aws_sdk_sfn::Client {
        let config = aws_sdk_sfn::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "imgflow-tests"))
            .endpoint_url(self.url())
            .http_client(imgflow_steps::https_client())
            .build();
        aws_sdk_sfn::Client::from_conf(config)
    }
}

impl Drop for SfnServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn route(engine: Engine, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|target| target.to_str().ok())
        .and_then(|target| target.strip_prefix(TARGET_PREFIX))
        .map(str::to_owned);
    let Some(operation) = operation.filter(|_| request.method() == Method::POST && request.uri().path() == "/") else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not a Step Functions request")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    };
    let body = request.into_body().collect().await?.to_bytes();
    let answer = sfn::handle(&engine, &operation, &body).await;
    let mut response = Response::builder().status(answer.status).header(hyper::header::CONTENT_TYPE, CONTENT_TYPE);
    if let Some(error_type) = &answer.error_type {
        response = response.header("x-amzn-ErrorType", error_type);
    }
    Ok(response
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"unrepresentable response")))))
}
