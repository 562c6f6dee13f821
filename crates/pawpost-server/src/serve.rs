//! The accept loop: HTTP/1.1 only (which also carries the toy's WebSocket upgrade), over
//! plain TCP or TLS, with the limits that keep sockets which never finish a request from
//! piling up:
//!
//! - **Header deadline.** A request's headers must arrive whole within
//!   [`HEADER_READ_TIMEOUT`] of the connection's start (after its TLS handshake) or of
//!   the answer before them, however slowly they trickle. An idle kept-alive connection
//!   is thus closed after as long.
//! - **Per address.** One client address holds at most
//!   [`MAX_PENDING_CONNECTIONS_PER_ADDRESS`] connections that have not yet sent a whole
//!   request (TLS handshakes included); a newer one closes the oldest, once they are
//!   [`NEW_CONNECTION_GRACE`] old (a burst of new connections may have requests waiting
//!   that are simply not read yet, so such a burst may pass the cap). A trusted proxy
//!   (`--trusted-proxy`) is not counted: all the clients behind it share its address,
//!   and which client a connection carries is only known from the headers (its
//!   `X-Forwarded-For`) this limit is about. The proxy is expected to read a request
//!   whole before it forwards it, as nginx and HAProxy in HTTP mode do, and to limit
//!   its own clients; its connections still have the header deadline and count towards
//!   the descriptor budget.
//! - **Descriptor budget.** Client connections may hold the process's descriptor limit
//!   less [`FD_RESERVE`] (or a quarter of the limit, if less), kept for the database,
//!   blob files and logs. At the budget, new connections wait in the kernel's backlog
//!   while the oldest connection that sits idle between requests, or has sent no whole
//!   request in all it sent, is closed to make room (one that has sent nothing, or whose
//!   bytes are not read yet, gives way only when there is no such one); when every
//!   connection is busy, they
//!   wait for one to end. Should accepting still fail for want of descriptors,
//!   the oldest such connection is closed and accepting pauses for
//!   [`ACCEPT_ERROR_PAUSE`] instead of spinning.
//!
//! Closing such a connection loses nothing: it has no request in flight, and a client
//! reopens a kept-alive connection that the server closed. A connection handed to a
//! WebSocket counts towards the budget until it closes but is never closed here (the
//! toy's WebSocket has deadlines of its own).
use crate::config::{
    FD_RESERVE, HEADER_READ_TIMEOUT, MAX_PENDING_CONNECTIONS_PER_ADDRESS, NEW_CONNECTION_GRACE,
};
use crate::proxy::TrustedProxy;
use crate::ratelimit::address_key;
use crate::tls::Handshakes;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long accepting pauses after an error that would repeat at once, such as running
/// out of file descriptors, so that the loop does not spin.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Connections told to close to make room that may be closing at once: one usually
/// suffices, a few more cover one that turned busy as it was chosen.
const CLOSING_AT_ONCE: usize = 8;

/// Serves `router` on `listener` (through `tls` when given) until `stop` completes; then
/// stops accepting, closes connections that have no request in flight, lets the others
/// finish their requests, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Handshakes>,
    trusted_proxies: Vec<TrustedProxy>,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let budget = connection_budget();
    tracing::debug!(budget, "client connections allowed at once");
    let shared = Arc::new(Shared {
        router,
        tls,
        http: http1(),
        connections: Arc::new(Connections::new(budget)),
    });
    let (stopping, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(stop);
    loop {
        // Past the budget, new connections wait in the kernel's backlog, not in ours,
        // while the oldest idle ones are closed to make room.
        let room = shared.connections.room();
        tokio::select! {
            () = &mut stop => break,
            Some(_) = tasks.join_next() => {}
            () = shared.connections.closed.notified(), if !room => {}
            accepted = listener.accept(), if room => match accepted {
                Ok((stream, peer)) => {
                    let trusted = trusted_proxies.iter().any(|p| p.contains(peer.ip()));
                    let key = (!trusted).then(|| address_key(peer.ip()));
                    let registration = shared.connections.admit(key);
                    tasks.spawn(connection(
                        shared.clone(),
                        registration,
                        stream,
                        peer,
                        stop_rx.clone(),
                    ));
                }
                Err(e) => accept_failed(e, &shared.connections).await,
            },
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// What every connection task needs.
struct Shared {
    router: Router,
    tls: Option<Handshakes>,
    http: hyper::server::conn::http1::Builder,
    connections: Arc<Connections>,
}

fn http1() -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    http
}

/// Connections the process may hold: its descriptor limit less the reserve.
fn connection_budget() -> usize {
    use rustix::process::{getrlimit, Resource};
    match getrlimit(Resource::Nofile).current {
        Some(limit) => {
            let reserve = FD_RESERVE.min(limit / 4);
            usize::try_from(limit - reserve).unwrap_or(usize::MAX)
        }
        None => usize::MAX,
    }
}

/// Errors about one connection are that connection's problem. Running out of
/// descriptors closes the oldest connection that does no work; that, and any other
/// error, would repeat at once, so accepting pauses a moment.
async fn accept_failed(e: io::Error, connections: &Connections) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    use rustix::io::Errno;
    let errno = Errno::from_io_error(&e);
    if errno == Some(Errno::MFILE) || errno == Some(Errno::NFILE) {
        let shed = connections.shed_oldest_idle();
        tracing::warn!(
            error = %e,
            closed_an_idle_connection = shed,
            pause = ?ACCEPT_ERROR_PAUSE,
            "out of file descriptors; raise the limit (ulimit -n, LimitNOFILE) if this repeats"
        );
    } else {
        tracing::error!(error = %e, pause = ?ACCEPT_ERROR_PAUSE, "cannot accept connections");
    }
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// One connection, from its TLS handshake to its end (or its hand-over to a WebSocket).
async fn connection(
    shared: Arc<Shared>,
    registration: Registration,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let activity = registration.activity.clone();
    let io = Counted {
        io: stream,
        registration,
    };
    let Some(tls) = &shared.tls else {
        return http(&shared, io, peer, &activity, stop).await;
    };
    let handshake = tls.accept(io, peer);
    let tls_stream = tokio::select! {
        done = handshake => done,
        () = activity.close.notified() => None,
        _ = stop.changed() => None,
    };
    if let Some(tls_stream) = tls_stream {
        http(&shared, tls_stream, peer, &activity, stop).await;
    }
}

/// Speaks HTTP/1.1 on `io` until the connection ends or is upgraded.
async fn http<I>(
    shared: &Arc<Shared>,
    io: I,
    peer: SocketAddr,
    activity: &Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let shared = shared.clone();
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: axum::http::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let request = request.map(axum::body::Body::new);
            let router = shared.router.clone();
            let in_flight = InFlight::start(&shared.connections, &activity);
            async move {
                let response = router.oneshot(request).await?;
                // The request counts as in flight until its answer's body is sent (or
                // dropped), so that a long download is never taken for an idle socket.
                Ok::<_, std::convert::Infallible>(response.map(move |body| {
                    body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    })
                }))
            }
        })
    };
    let conn = shared
        .http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    // A client that hung up or sent garbage, or the header deadline.
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                break;
            }
            () = activity.close.notified() => {
                if !activity.started() {
                    return;
                }
                conn.as_mut().graceful_shutdown();
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                if !activity.started() {
                    return;
                }
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    // Upgraded, the socket now belongs to the WebSocket, which is never closed here.
    activity.ended.store(true, Ordering::Relaxed);
}

/// One open connection, as the accept loop and the shedding see it: what it is doing,
/// and how to tell it to close. One allocation per connection, shared by its socket and
/// [`Registry::open`].
struct Activity {
    /// The connection's place in [`Registry::open`].
    id: u64,
    accepted: Instant,
    /// Told to close; its socket still counts until it is closed (changed only under
    /// the registry's lock).
    closing: AtomicBool,
    /// Woken to tell the connection to close.
    close: Notify,
    /// A first request has arrived.
    started: AtomicBool,
    /// Requests whose answer is not yet sent.
    in_flight: AtomicUsize,
    /// The HTTP connection is over (closing, or handed to a WebSocket).
    ended: AtomicBool,
    /// The last read found nothing to read, and nothing was written since: whatever the
    /// client sent has been read, and whatever was answered is sent.
    starved: AtomicBool,
    /// Some bytes have been read (a connection read before its client sent anything is
    /// starved too, for a moment).
    heard: AtomicBool,
}

impl Activity {
    fn past_grace(&self) -> bool {
        self.accepted.elapsed() >= NEW_CONNECTION_GRACE
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    fn started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    /// Closing it costs nobody a request: none has arrived, or none is in flight.
    fn idle(&self) -> bool {
        !self.ended.load(Ordering::Relaxed)
            && (!self.started() || self.in_flight.load(Ordering::Relaxed) == 0)
    }

    /// Idle, and surely so: read to the end of what the client sent, with no request in
    /// flight and the last answer sent (a new connection may hold an unread request, one
    /// just answered may not have sent all of its answer).
    fn surely_idle(&self) -> bool {
        self.idle() && self.heard.load(Ordering::Relaxed) && self.starved.load(Ordering::Relaxed)
    }
}

/// A request in flight on a connection, until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(connections: &Connections, activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        if !activity.started.swap(true, Ordering::Relaxed) {
            connections.first_request(activity.id);
        }
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The open client connections, oldest first, and how many of each client address have
/// not sent a request yet.
struct Connections {
    budget: usize,
    registry: Mutex<Registry>,
    /// Woken when a connection's socket closes.
    closed: Notify,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    open: BTreeMap<u64, Arc<Activity>>,
    /// Entries of `open` told to close.
    closing: usize,
    /// The connections of `open` from a counted address (not a trusted proxy's) that
    /// have sent no request yet, with their address's key, oldest first. A connection
    /// leaves it at its first request: an open WebSocket keeps no address here.
    waiting: BTreeMap<u64, String>,
    /// How many of `waiting` each address has.
    pending: HashMap<String, usize>,
}

impl Connections {
    fn new(budget: usize) -> Self {
        Self {
            budget,
            registry: Mutex::default(),
            closed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection from `key` (`None` for a trusted proxy), making room
    /// for it first; `None` if there is none to make.
    fn admit(self: &Arc<Self>, key: Option<String>) -> Registration {
        let mut registry = self.lock();
        if let Some(key) = &key {
            while registry.pending.get(key).copied().unwrap_or(0)
                >= MAX_PENDING_CONNECTIONS_PER_ADDRESS
            {
                let oldest = registry
                    .waiting
                    .iter()
                    .filter(|(_, k)| *k == key)
                    .find(|(id, _)| {
                        registry
                            .open
                            .get(id)
                            .is_some_and(|a| !a.closing() && a.past_grace())
                    })
                    .map(|(id, _)| *id);
                let Some(id) = oldest else { break };
                tracing::debug!("an address's oldest connection without a request closed");
                registry.shed(id);
            }
        }
        let id = registry.next_id;
        registry.next_id += 1;
        if let Some(key) = key {
            *registry.pending.entry(key.clone()).or_default() += 1;
            registry.waiting.insert(id, key);
        }
        let activity = Arc::new(Activity {
            id,
            accepted: Instant::now(),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            started: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            starved: AtomicBool::new(false),
            heard: AtomicBool::new(false),
        });
        registry.open.insert(id, activity.clone());
        Registration {
            connections: self.clone(),
            activity,
        }
    }

    /// A connection's first request has arrived: it no longer counts as pending.
    fn first_request(&self, id: u64) {
        self.lock().forget_waiting(id);
    }

    fn shed_oldest_idle(&self) -> bool {
        self.lock().shed_oldest_idle()
    }

    /// True if another connection fits in the budget; if not, has the oldest idle one
    /// closed (unless enough are closing already), so that [`Self::closed`] wakes the
    /// accept loop.
    fn room(&self) -> bool {
        let mut registry = self.lock();
        if registry.open.len() < self.budget {
            return true;
        }
        if registry.closing < CLOSING_AT_ONCE {
            registry.shed_oldest_idle();
        }
        false
    }
}

impl Registry {
    /// Closes the oldest connection that is surely idle, else the oldest that is idle at
    /// all (even one whose request is not read yet); false if none is.
    fn shed_oldest_idle(&mut self) -> bool {
        let oldest = |idle: fn(&Activity) -> bool| {
            self.open
                .iter()
                .find(|(_, a)| !a.closing() && idle(a))
                .map(|(id, _)| *id)
        };
        let oldest = oldest(Activity::surely_idle).or_else(|| oldest(Activity::idle));
        match oldest {
            Some(id) => {
                tracing::debug!("the oldest connection doing no work closed to make room");
                self.shed(id);
                true
            }
            None => false,
        }
    }

    /// Tells connection `id` to close; it no longer counts for its address.
    fn shed(&mut self, id: u64) {
        let Some(activity) = self.open.get(&id) else {
            return;
        };
        activity.closing.store(true, Ordering::Relaxed);
        activity.close.notify_one();
        self.closing += 1;
        self.forget_waiting(id);
    }

    /// The socket of connection `id` is closed.
    fn remove(&mut self, id: u64) {
        let Some(activity) = self.open.remove(&id) else {
            return;
        };
        if activity.closing() {
            self.closing -= 1;
        }
        self.forget_waiting(id);
    }

    /// Connection `id` no longer counts for its address: it sent a request, or it is
    /// closing.
    fn forget_waiting(&mut self, id: u64) {
        let Some(key) = self.waiting.remove(&id) else {
            return;
        };
        if let Some(n) = self.pending.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(&key);
            }
        }
    }
}

/// A connection's place among the open ones, given up when dropped: when the socket
/// closes, whether HTTP or a WebSocket held it last.
struct Registration {
    connections: Arc<Connections>,
    activity: Arc<Activity>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections.lock().remove(self.activity.id);
        self.connections.closed.notify_one();
    }
}

/// A client's TCP socket, as the accept loop hands it to HTTP (and TLS): the toy's
/// WebSocket takes it back from hyper after the upgrade (`routes/toy_ws/socket.rs`).
pub(crate) type ClientSocket = Counted<TcpStream>;

/// A client socket that holds its [`Registration`] for as long as it is open, and
/// notes when a read finds nothing waiting.
pub(crate) struct Counted<S> {
    io: S,
    registration: Registration,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        let activity = &self.registration.activity;
        activity.starved.store(read.is_pending(), Ordering::Relaxed);
        if buf.filled().len() > before {
            activity.heard.store(true, Ordering::Relaxed);
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.registration
            .activity
            .starved
            .store(false, Ordering::Relaxed);
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.registration
            .activity
            .starved
            .store(false, Ordering::Relaxed);
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
