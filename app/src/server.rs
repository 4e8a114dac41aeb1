//! The accept loop: HTTP/1.1 via hyper with a header-read timeout (slow clients cannot hold a
//! connection forever), a cap on concurrent connections, and graceful shutdown that lets in-flight
//! requests finish within a grace period.
//!
//! The binary serves with one single-threaded runtime per core, each accepting on its own
//! `SO_REUSEPORT` socket (the kernel spreads connections over them): a connection lives on one
//! thread, so no request pays for waking another thread or for work stealing, which measured
//! about a quarter of the service's CPU with a shared multi-threaded runtime (docs/BENCHMARKS.md).
//! The connection cap is one across them; one shutdown signal drains them all.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;

/// Connection-level settings of the server.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// Listen even when another process listens on the port with SO_REUSEPORT (it then takes
    /// part of the connections); refused by default.
    pub share_port: bool,
}

impl From<&ServerConfig> for Settings {
    fn from(c: &ServerConfig) -> Self {
        Self {
            header_read_timeout: c.header_read_timeout,
            max_connections: c.max_connections,
            shutdown_grace: c.shutdown_grace,
            share_port: c.share_port,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the connection limiter was closed")]
    LimiterClosed,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish for up to `shutdown_grace`, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, max_connections = settings.max_connections, "listening");
    }
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    let drained = accept_loop(listener, app, settings, limit, shutdown).await?;
    if drained {
        tracing::info!("all connections closed; shutdown complete");
    }
    Ok(())
}

/// A listening socket on `addr` that other sockets may share (`SO_REUSEPORT`), in the std form
/// a runtime on another thread can adopt.
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?;
    listener.into_std()
}

/// Refuses a port another process listens on. Our sockets share the port with SO_REUSEPORT, and
/// Linux lets any other socket of the same user that sets it too (a second `app`) join in and
/// take part of the connections, silently; a socket that does not set it is refused the port
/// while anything listens there, which is the question asked here (port 0 picks a free one).
fn refuse_a_port_in_use(addr: SocketAddr) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // A connection of an earlier run in TIME_WAIT is no listener.
    probe.set_reuseaddr(true)?;
    match probe.bind(addr) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(std::io::Error::new(
            e.kind(),
            format!(
                "port {} is in use: another process listens on {addr} (another `app`?). Stop it, pick \
                 another port (--port/PORT), or share it on purpose (--share-port/SHARE_PORT=1)",
                addr.port()
            ),
        )),
        Err(e) => Err(e),
    }
}

/// Serves on `addr` with `threads` single-threaded runtimes, each accepting on its own
/// `SO_REUSEPORT` socket (port 0: the first socket picks the port, the others share it) and
/// serving its own app from `make_app` (so nothing a request touches is shared between threads
/// but what the app shares on purpose), until
/// `shutdown` resolves; then each drains as `serve` does. Call it inside a runtime (the caller's
/// serves the signal and the sampler). Returns once every thread has finished.
pub async fn serve_per_core(
    addr: SocketAddr,
    threads: usize,
    make_app: impl Fn() -> Router,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    if !settings.share_port {
        refuse_a_port_in_use(addr)?;
    }
    let first = reuseport_listener(addr)?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads.max(1) {
        listeners.push(reuseport_listener(bound)?);
    }
    tracing::info!(addr = %bound, threads = listeners.len(), max_connections = settings.max_connections, "listening");
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (app, limit, mut stopped) = (make_app(), Arc::clone(&limit), stopped.clone());
        let worker = std::thread::Builder::new().name(format!("serve-{i}")).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                accept_loop(listener, app, settings, limit, stop).await.map_err(std::io::Error::other)
            })
        })?;
        workers.push(worker);
    }
    shutdown.await;
    let _ = stop.send(true);
    // Joining blocks: off this runtime's thread, which may still serve the sampler.
    let results =
        tokio::task::spawn_blocking(move || workers.into_iter().map(std::thread::JoinHandle::join).collect::<Vec<_>>())
            .await
            .map_err(std::io::Error::other)?;
    let mut drained = true;
    for r in results {
        drained &= r.map_err(|_| std::io::Error::other("a serving thread panicked"))??;
    }
    if drained {
        tracing::info!("all connections closed; shutdown complete");
    }
    Ok(())
}

/// Accepts and serves until `shutdown`, then drains for up to the grace period; whether every
/// connection closed in time.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    settings: Settings,
    limit: Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
) -> Result<bool, ServeError> {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // writev(false): the head and the (small) body go out in one flattened write; measured a few
    // percent faster than a vectored write per answer (docs/BENCHMARKS.md).
    http.timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout).keep_alive(true).writev(false);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&limit).acquire_owned() => permit.map_err(|_| ServeError::LimiterClosed)?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the next accept may work.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::debug!(grace = ?settings.shutdown_grace, "stopped accepting; draining in-flight requests");
    let drained = tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!("grace period over; closing the remaining connections");
            false
        }
    };
    Ok(drained)
}
