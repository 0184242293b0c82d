//! Accepting connections and shutting down gracefully.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;

/// How long shutdown waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections past which a connection is closed after its answer instead of kept alive, so
/// idle keep-alive connections cannot take every file descriptor. (An idle connection is also
/// closed when no new request starts within the header timeout.)
const KEEP_ALIVE_CAP: usize = 512;

/// An open-files limit below this is worth a note at start.
pub const FEW_OPEN_FILES: u64 = 1024;

/// How often a failing `accept` is reported on stderr at most.
const ACCEPT_ERROR_EVERY: Duration = Duration::from_secs(1);

/// Raises the soft limit on open files to the hard limit (a default soft limit of 256 or 1024
/// makes `accept` fail long before the machine is busy); returns the soft limit in force.
#[cfg(unix)]
pub fn raise_open_files() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let wanted = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, wanted).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    limit.current
}

/// Open-file limits are a Unix matter.
#[cfg(not(unix))]
pub fn raise_open_files() -> Option<u64> {
    None
}

/// Failed `accept`s (out of file descriptors, mostly), reported at most once a second with how
/// many there were since the last report.
#[derive(Default)]
struct AcceptErrors {
    last: Option<Instant>,
    unreported: u64,
}

impl AcceptErrors {
    fn failed(&mut self, e: &std::io::Error) {
        self.unreported += 1;
        if self.last.is_some_and(|at| at.elapsed() < ACCEPT_ERROR_EVERY) {
            return;
        }
        let more = match self.unreported - 1 {
            0 => String::new(),
            n => format!(" ({n} more since the last report)"),
        };
        eprintln!("warning: accepting a connection failed: {e}{more}");
        self.last = Some(Instant::now());
        self.unreported = 0;
    }
}

/// Counts a connection as open until dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves each connection with hyper's HTTP/1 server, which closes connections whose headers do
/// not arrive within `header_timeout` (axum::serve sets no timer, so it never times them out).
/// The peer address is not kept.
pub async fn accept_loop(listener: tokio::net::TcpListener, app: Router, header_timeout: Duration) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut errors = AcceptErrors::default();
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        errors.failed(&e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let counted = Open(Arc::clone(&open));
                let keep_alive = open.fetch_add(1, Ordering::Relaxed) < KEEP_ALIVE_CAP;
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .keep_alive(keep_alive)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // Client errors (resets, timeouts, garbage) end only that connection.
                    let _ = conn.await;
                    drop(counted);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}

/// Resolves on Ctrl-C or SIGTERM, so in-flight requests finish and SQLite closes cleanly.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
