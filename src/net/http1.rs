//! Serves a router over HTTP/1.1 on a [`Listener`], with hyper's header-read timeout: a
//! connection that does not finish sending a request head in time (including one that sends
//! nothing, or sits idle between keep-alive requests) is closed. `axum::serve` sets no timer,
//! so it cannot enforce one.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tracing::debug;

use super::Listener;

/// Serves `router` until `shutdown` resolves, then lets open requests finish.
pub async fn serve_http1(
    mut listener: Listener,
    router: axum::Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(conn), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(error = %err, "HTTP connection ended with an error");
            }
        });
    }
    // Stop listening at once, then wait for the requests in progress.
    drop(listener);
    graceful.shutdown().await;
}
