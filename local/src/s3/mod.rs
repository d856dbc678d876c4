//! The S3-compatible endpoint: s3s's protocol layer over s3s-fs's filesystem backend.

use std::net::SocketAddr;
use std::path::Path;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::watch;

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

/// A running endpoint; it stops when dropped.
pub struct S3Endpoint {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl S3Endpoint {
    /// Serves the buckets under `root` (one folder per bucket) on `addr` (port 0 picks one).
    pub async fn start(root: &Path, addr: SocketAddr, credentials: Credentials) -> Result<S3Endpoint, S3EndpointError> {
        let storage = |message: String| S3EndpointError::Storage { path: root.display().to_string(), message };
        std::fs::create_dir_all(root).map_err(|e| storage(e.to_string()))?;
        let filesystem = s3s_fs::FileSystem::new(root).map_err(|e| storage(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(filesystem);
        builder.set_auth(SimpleAuth::from_single(credentials.access_key, credentials.secret_key));
        let service = builder.build();
        let listener = TcpListener::bind(addr).await.map_err(|source| S3EndpointError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| S3EndpointError::Bind { addr, source })?;
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            let http = ConnectionBuilder::new(TokioExecutor::new());
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(error) => {
                            tracing::warn!(%error, "S3 endpoint: accept failed");
                            continue;
                        }
                    },
                    _ = stopped.changed() => break,
                };
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
