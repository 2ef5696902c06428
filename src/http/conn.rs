//! The daemon's connections, hardened against slow and idle clients and floods:
//!
//! - **header timeout**: a request's head must arrive within [`HttpLimits::header_timeout`]
//!   of the connection being ready for one (hyper's `header_read_timeout`: it also closes a
//!   connection that sends nothing, and a keep-alive connection idle between requests);
//! - **request timeout**: reading the body and answering take at most
//!   [`HttpLimits::request_timeout`] (tower-http's `TimeoutLayer`, 408);
//! - **idle timeout**: a connection on which no byte moves either way for
//!   [`HttpLimits::idle_timeout`] is closed (a client that stops reading its answer);
//! - **connection cap**: at most [`HttpLimits::max_connections`] at once. A connection over
//!   the cap takes the place of the one that has been quiet the longest without a request
//!   in flight, so a flood of idle or slow clients cannot lock out a health check; when
//!   every connection is busy with a request, the new one is closed at once.
//!
//! Neither hyper, hyper-util nor tower-http has an idle timeout over both directions or a
//! connection cap that evicts instead of refusing, so those two are here (an activity stamp
//! on the socket, and a table of connections).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Timeouts and the connection cap of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time for a request's head to arrive (`--http-header-timeout`).
    pub header_timeout: Duration,
    /// Time to read a request's body and answer it (`--http-request-timeout`).
    pub request_timeout: Duration,
    /// Time a connection may go without a byte moving either way (`--http-idle-timeout`).
    pub idle_timeout: Duration,
    /// Connections at once (`--http-max-connections`).
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

/// One connection's entry in the table.
struct Slot {
    /// Milliseconds since the server started when a byte last moved.
    last_active: AtomicU64,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// Told to close (another connection took its place).
    evict: Notify,
}

/// The open connections.
struct Table {
    started: Instant,
    next: u64,
    slots: HashMap<u64, Arc<Slot>>,
}

impl Table {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The connection quiet the longest with no request in flight.
    fn quietest_idle(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter(|(_, s)| s.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, s)| s.last_active.load(Ordering::Relaxed))
            .map(|(id, _)| *id)
    }
}

/// Serve `router` on `listener` within `limits` until `shutdown` resolves; then stop
/// accepting, let requests in flight finish (up to the request timeout) and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let service = TowerToHyperService::new(router);
    let started = Instant::now();
    let table = Arc::new(Mutex::new(Table {
        started,
        next: 0,
        slots: HashMap::new(),
    }));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    let mut accept_errors: u64 = 0;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Some((id, slot)) = admit(&table, limits.max_connections) else {
                        // Every connection is answering a request: refused at once.
                        drop(stream);
                        continue;
                    };
                    let conn = Conn {
                        id,
                        slot,
                        table: table.clone(),
                        limits,
                        stop: stop_rx.clone(),
                    };
                    tasks.spawn(conn.run(stream, service.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, say: keep serving the connections open, and
                    // do not spin on the error.
                    accept_errors += 1;
                    if accept_errors.is_power_of_two() {
                        tracing::warn!(error = %e, count = accept_errors, "cannot accept a connection");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.request_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("closing connections still open after the request timeout");
        tasks.abort_all();
    }
    Ok(())
}

/// A place for a new connection: a free one, or the quietest idle connection's (which is
/// told to close). `None` when every connection has a request in flight.
fn admit(table: &Mutex<Table>, max: usize) -> Option<(u64, Arc<Slot>)> {
    let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
    if t.slots.len() >= max.max(1) {
        let victim = t.quietest_idle()?;
        if let Some(s) = t.slots.remove(&victim) {
            s.evict.notify_one();
        }
    }
    let id = t.next;
    t.next += 1;
    let slot = Arc::new(Slot {
        last_active: AtomicU64::new(t.now_ms()),
        in_flight: AtomicUsize::new(0),
        evict: Notify::new(),
    });
    t.slots.insert(id, slot.clone());
    Some((id, slot))
}

/// One connection and what it needs.
struct Conn {
    id: u64,
    slot: Arc<Slot>,
    table: Arc<Mutex<Table>>,
    limits: HttpLimits,
    stop: watch::Receiver<bool>,
}

impl Conn {
    async fn run(mut self, stream: TcpStream, service: TowerToHyperService<Router>) {
        let started = self.table.lock().unwrap_or_else(|e| e.into_inner()).started;
        let io = TokioIo::new(Stamped {
            inner: stream,
            slot: self.slot.clone(),
            started,
        });
        let slot = self.slot.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let guard = InFlight::new(slot.clone());
            let answer = hyper::service::Service::call(&service, req);
            async move {
                let r = answer.await;
                drop(guard);
                r
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        let conn = builder.serve_connection(io, svc);
        tokio::pin!(conn);
        let mut closing = *self.stop.borrow();
        if closing {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            let now = started.elapsed().as_millis() as u64;
            let quiet = now.saturating_sub(self.slot.last_active.load(Ordering::Relaxed));
            let idle_left = self
                .limits
                .idle_timeout
                .saturating_sub(Duration::from_millis(quiet));
            tokio::select! {
                _ = conn.as_mut() => break,
                _ = self.slot.evict.notified() => break,
                _ = tokio::time::sleep(idle_left) => {
                    let now = started.elapsed().as_millis() as u64;
                    let last = self.slot.last_active.load(Ordering::Relaxed);
                    if Duration::from_millis(now.saturating_sub(last)) >= self.limits.idle_timeout {
                        break;
                    }
                }
                changed = self.stop.changed(), if !closing => {
                    if changed.is_err() || *self.stop.borrow() {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slots
            .remove(&self.id);
    }
}

/// Counts a request in flight on its connection until dropped.
struct InFlight(Arc<Slot>);

impl InFlight {
    fn new(slot: Arc<Slot>) -> InFlight {
        slot.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(slot)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that stamps its slot whenever bytes move.
struct Stamped {
    inner: TcpStream,
    slot: Arc<Slot>,
    started: Instant,
}

impl Stamped {
    fn stamp(&self) {
        self.slot
            .last_active
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.stamp();
        }
        r
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.stamp();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.stamp();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(last_active: u64, in_flight: usize) -> Arc<Slot> {
        Arc::new(Slot {
            last_active: AtomicU64::new(last_active),
            in_flight: AtomicUsize::new(in_flight),
            evict: Notify::new(),
        })
    }

    #[test]
    fn over_the_cap_the_quietest_idle_connection_makes_room() {
        let table = Mutex::new(Table {
            started: Instant::now(),
            next: 3,
            slots: HashMap::from([(0, slot(50, 0)), (1, slot(10, 1)), (2, slot(20, 0))]),
        });
        // 1 is quieter but answering a request: 2 goes.
        let (id, _) = admit(&table, 3).unwrap();
        assert_eq!(id, 3);
        let t = table.lock().unwrap();
        let mut ids: Vec<u64> = t.slots.keys().copied().collect();
        ids.sort();
        assert_eq!(ids, [0, 1, 3]);
        drop(t);
        // Every one busy: refused.
        let busy = Mutex::new(Table {
            started: Instant::now(),
            next: 1,
            slots: HashMap::from([(0, slot(0, 1))]),
        });
        assert!(admit(&busy, 1).is_none());
    }
}
