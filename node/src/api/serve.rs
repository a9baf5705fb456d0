//! The API's HTTP/1.1 server: the router on hyper, one task per connection, with a header-read
//! timeout (`api.header_read_timeout`) that `axum::serve` does not offer.
//!
//! A client that dribbles its headers, or keeps a connection idle without sending the next
//! request, loses the connection once the timeout passes. A response being written (an event
//! stream included) is not bounded here: the request timeout covers handlers, and
//! `api.max_event_streams` the streams.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long open connections may finish their responses once the node stops.
const DRAIN: Duration = Duration::from_secs(2);

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish for
/// [`DRAIN`] and closes the rest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors or a connection reset before accept: the listener is
                // fine; wait a moment rather than spin.
                Err(error) => {
                    tracing::warn!(%error, "the API could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        // The caller's address, for per-client limits ([`super::rate`]).
        let service =
            tower_http::add_extension::AddExtension::new(router.clone(), super::rate::ClientAddr(peer.ip()));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let stop = shutdown.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                // A connection's error (a reset, a timeout) concerns that client only.
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, connection).await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(DRAIN + Duration::from_millis(500), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}
