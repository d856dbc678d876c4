//! The S3-compatible endpoint: s3s's protocol layer over the twin's own object [`store`] (one
//! file per object, its record in SQLite), which announces every stored object (see
//! [`announcing`]), with read-only anonymous access to objects so that the URLs in the metadata
//! open in a browser.

pub mod announcing;
pub mod in_process;
pub mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, S3Result, s3_error};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use announcing::{AnnouncingStore, ObjectEvents};
pub use in_process::InProcessS3;

#[derive(Debug, thiserror::Error)]
pub enum S3EndpointError {
    #[error("cannot use {path} as the S3 data folder: {message}")]
    Storage { path: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Access key and secret that clients must sign with (SigV4 is checked).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

/// Signed requests may do anything; anonymous ones may only read objects, like a public-read
/// bucket policy.
struct PublicRead;

#[async_trait::async_trait]
impl S3Access for PublicRead {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_some() || matches!(cx.s3_op().name(), "GetObject" | "HeadObject") {
            return Ok(());
        }
        Err(s3_error!(AccessDenied, "Sign the request: anonymous access is limited to reading objects"))
    }
}

/// The S3 service over the buckets under `root`; stored objects are announced to `events`.
pub fn service(
    root: &Path,
    credentials: Credentials,
    events: Arc<dyn ObjectEvents>,
) -> Result<(S3Service, AnnouncingStore), S3EndpointError> {
    let storage = |message: String| S3EndpointError::Storage { path: root.display().to_string(), message };
    let store =
        AnnouncingStore::open(root, events).map_err(|e| storage(e.message().unwrap_or("cannot open").to_owned()))?;
    let mut builder = S3ServiceBuilder::new(store.clone());
    builder.set_auth(SimpleAuth::from_single(credentials.access_key, credentials.secret_key));
    builder.set_access(PublicRead);
    Ok((builder.build(), store))
}

/// The service's answer to one request to the twin, whether it came over TCP or [`in_process`].
/// s3s turns S3 errors into S3's XML error responses itself; what it cannot answer becomes a 500.
pub async fn answer(service: &S3Service, request: Request<Body>) -> Response<Body> {
    match service.call(request).await {
        Ok(response) => response,
        Err(error) => crate::twin::api::json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"message": format!("S3 request failed: {error:?}")}),
        ),
    }
}

/// A running endpoint on its own address, without the rest of the twin (for tests of the steps);
/// it stops when dropped.
pub struct S3Endpoint {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl S3Endpoint {
    /// Serves the buckets under `root` on `addr` (port 0 picks one); nothing is announced.
    pub async fn start(root: &Path, addr: SocketAddr, credentials: Credentials) -> Result<S3Endpoint, S3EndpointError> {
        let (service, _) = service(root, credentials, Arc::new(announcing::Silent))?;
        let listener = TcpListener::bind(addr).await.map_err(|source| S3EndpointError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| S3EndpointError::Bind { addr, source })?;
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            let http = ConnectionBuilder::new(TokioExecutor::new());
            while let Some(socket) = crate::listener::next_connection(&listener, &mut stopped).await {
                let connection = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                // Open keep-alive connections end with the endpoint, not when the client leaves.
                let mut stopping = stopped.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        result = connection => if let Err(error) = result {
                            tracing::debug!(%error, "S3 endpoint: connection ended with an error");
                        },
                        _ = stopping.changed() => {}
                    }
                });
            }
        });
        Ok(S3Endpoint { addr, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for S3Endpoint {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
