//! Accepting connections, for the twin and the stand-alone S3 endpoint alike.

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The next connection, or `None` once `stopped` changes. A failed accept is logged and skipped.
/// Sockets are set TCP_NODELAY: small answers go out at once rather than waiting on Nagle's
/// algorithm.
pub(crate) async fn next_connection(listener: &TcpListener, stopped: &mut watch::Receiver<bool>) -> Option<TcpStream> {
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
            _ = stopped.changed() => return None,
        };
        if let Err(error) = socket.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        return Some(socket);
    }
}
