//! The accept loop every TCP listener here runs (RTMP, RTSP): the total connection cap, the
//! per-IP cap on connections still in handshake, one task per connection (a panic in one is
//! contained and logged), and at stop a grace for the connections to wind down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::limit::{PendingLimiter, PendingSlot};

/// What one listener's loop needs besides its socket.
pub(crate) struct Accept {
    /// `RTMP`, `RTSP`: for log lines.
    pub(crate) protocol: &'static str,
    /// Fired when the listener stops; every connection watches it.
    pub(crate) cancel: CancellationToken,
    /// Fired when the listener stops accepting (a child of `cancel`, or `cancel` itself).
    /// Fired alone, the listener drains: its socket closes, and its connections run on
    /// until they end or `cancel` fires.
    pub(crate) accepting: CancellationToken,
    /// Connections open at once.
    pub(crate) max_connections: usize,
    /// Handshakes in flight per IP.
    pub(crate) pending: Arc<PendingLimiter>,
}

/// Accepts until cancelled: each connection gets a [`PendingSlot`] and runs `serve` in its own
/// task, inside the span `span` makes for its peer; a connection refused at accept is counted
/// with `refused` (which returns the count before it).
pub(crate) async fn run<F, Fut>(
    listener: TcpListener,
    accept: Accept,
    refused: impl Fn() -> u64,
    span: impl Fn(SocketAddr) -> tracing::Span,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, PendingSlot) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Accept {
        protocol,
        cancel,
        accepting,
        max_connections,
        pending,
    } = accept;
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut tasks = JoinSet::new();
    let refuse = |socket: TcpStream, peer: SocketAddr, why: &str| {
        drop(socket);
        let n = refused();
        if n.is_multiple_of(100) {
            tracing::warn!(%peer, refused = n + 1, "{protocol} connection refused: {why}");
        }
    };
    loop {
        tokio::select! {
            () = accepting.cancelled() => break,
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = joined
                    && e.is_panic()
                {
                    tracing::error!("an {protocol} connection task panicked: {e}");
                }
            }
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accepting an {protocol} connection failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    refuse(socket, peer, "the listener's connection cap is reached");
                    continue;
                };
                let Some(slot) = pending.enter(peer.ip()) else {
                    refuse(socket, peer, "too many connections from this IP in handshake");
                    continue;
                };
                let connection = serve(socket, peer, slot);
                tasks.spawn(
                    async move {
                        connection.await;
                        drop(permit);
                    }
                    .instrument(span(peer)),
                );
            }
        }
    }
    drop(listener);
    if !cancel.is_cancelled() {
        tracing::info!(connections = tasks.len(), "{protocol} listener draining");
        tokio::select! {
            () = cancel.cancelled() => {}
            () = async { while tasks.join_next().await.is_some() {} } => {}
        }
    }
    tracing::info!(connections = tasks.len(), "{protocol} listener stopping");
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, drained).await.is_err() {
        tracing::warn!(
            remaining = tasks.len(),
            "{protocol} connections still open after {STOP_GRACE:?}; cutting them"
        );
    }
}

/// A listener's accept loop as its handle holds it: stopped by the listener's stop signal,
/// which every connection watches too; dropping it stops the listener.
pub(crate) struct Running {
    cancel: CancellationToken,
    /// The accept loop; it owns the connection tasks.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Runs `accept_loop` as the listener's task, stopped by `cancel`.
    pub(crate) fn spawn(
        cancel: CancellationToken,
        accept_loop: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self {
            cancel,
            task: Some(tokio::spawn(accept_loop)),
        }
    }

    /// Stops accepting and closes every connection; returns at once.
    pub(crate) fn stop(&self) {
        self.cancel.cancel();
    }

    /// Stops, and waits until the port is closed and every connection has ended (at most
    /// about [`STOP_GRACE`]: connections still flushing then are cut).
    pub(crate) async fn shutdown(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// How long the accept loop pauses after a failed `accept` (EMFILE and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a stopping listener waits for its connections to close.
const STOP_GRACE: Duration = Duration::from_secs(2);
