//! The fault proxy: a TCP relay between the clients and one node, whose faults can be
//! switched at any moment, on connections already open too.
//!
//! Clients always connect through it, so the harness can delay, stall or cut their traffic
//! without touching the server. Faults are published through a `watch` channel: a relay
//! looks at it with one atomic load per chunk (`has_changed`), so with no fault active the
//! relay is a plain read/write loop with no lock and no extra task hop.
//!
//! Latency keeps byte order: each chunk is stamped when it arrives and released at
//! `arrival + delay`, in arrival order, by a writer task fed through a bounded queue (so a
//! bandwidth limit back-pressures the sender instead of buffering without bound).
//!
//! A proxy started with a [`Protocol`] follows it on every connection, so an [`Aim`] can
//! act on single messages (see [`super::aim`]); with no aim set a followed chunk is still
//! relayed whole, straight away.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

use super::aim::{self, Aim, Armed, Firings, Follow, Piece, Plan, Protocol, Shared};

/// The faults a proxy applies to the traffic it relays. The default is "no fault".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyFaults {
    /// Added to every chunk going client -> server.
    pub up_latency: Duration,
    /// Added to every chunk going server -> client.
    pub down_latency: Duration,
    /// A uniform random extra delay in `[0, jitter]` on each delayed chunk, so the latency
    /// is never below the configured value.
    pub jitter: Duration,
    /// A partition: connections are accepted but nothing is forwarded either way; open
    /// connections stall (their bytes are held, as TCP would retransmit them) until healed.
    pub blackhole: bool,
    /// Bytes per second per direction and connection; `None` for unlimited.
    pub bandwidth: Option<u64>,
}

impl ProxyFaults {
    /// Whether no fault is set (the relay's fast path).
    pub fn is_clear(&self) -> bool {
        *self == ProxyFaults::default()
    }

    /// A round-trip latency of `latency` added on the client -> server direction.
    pub fn latency(latency: Duration, jitter: Duration) -> ProxyFaults {
        ProxyFaults {
            up_latency: latency,
            jitter,
            ..ProxyFaults::default()
        }
    }

    /// A partition between the clients and the node.
    pub fn partition() -> ProxyFaults {
        ProxyFaults {
            blackhole: true,
            ..ProxyFaults::default()
        }
    }

    fn base_delay(&self, dir: Direction) -> Duration {
        match dir {
            Direction::Up => self.up_latency,
            Direction::Down => self.down_latency,
        }
    }

    fn delays(&self, dir: Direction) -> bool {
        !self.base_delay(dir).is_zero() || self.bandwidth.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client -> server.
    Up,
    /// Server -> client.
    Down,
}

#[derive(Debug, Clone, Default)]
struct State {
    faults: ProxyFaults,
    /// The aimed fault in force, if any.
    armed: Option<Armed>,
}

/// Why an aimed fault cannot be set on a proxy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AimError {
    /// The proxy does not follow the protocol the aim acts on.
    #[error("this proxy does not follow the {wanted:?} protocol (it follows {has:?})")]
    WrongProtocol {
        /// What the aim needs.
        wanted: Protocol,
        /// What the proxy follows.
        has: Protocol,
    },
}

/// The open connections, so a reset (or dropping the proxy) can abort them all.
///
/// A std Mutex taken once when a connection opens and once when it closes, never per
/// chunk: a reset aborts the connection's tasks, which drops its sockets.
#[derive(Debug, Default)]
struct Connections {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, AbortHandle>>,
    /// Chunks a latency fault delayed, and chunks or connection attempts a partition
    /// held, ever: the nemesis reads it before and after a window to tell whether the
    /// fault struck any traffic at all (a window that opened is not a strike).
    hits: AtomicU64,
}

impl Connections {
    fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, AbortHandle>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn abort_all(&self) {
        for (_, handle) in std::mem::take(&mut *self.lock()) {
            handle.abort();
        }
    }
}

/// Where a proxy forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket of a server on this machine. The proxy's own hop then skips the
    /// loopback TCP stack (and netfilter), which is most of what relaying costs.
    Unix(PathBuf),
}

/// A fault-injecting TCP proxy in front of one node, listening on `127.0.0.1:0`.
/// Dropping it closes its listener and every connection it relays.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: Upstream,
    protocol: Protocol,
    state: watch::Sender<State>,
    connections: Arc<Connections>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("faults", &self.faults())
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream`, with no fault active.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        FaultProxy::start_to(Upstream::Tcp(upstream)).await
    }

    /// Starts a proxy forwarding to a TCP address or a unix socket, relaying bytes unread.
    pub async fn start_to(upstream: Upstream) -> io::Result<FaultProxy> {
        FaultProxy::start_following(upstream, Protocol::Raw).await
    }

    /// Starts a proxy that follows `protocol` on every connection, so aimed faults can be
    /// set on it ([`FaultProxy::aim`]).
    pub async fn start_following(upstream: Upstream, protocol: Protocol) -> io::Result<FaultProxy> {
        let runtime = proxy_runtime()?;
        // Sockets belong to the runtime whose reactor polls them: bind on the proxy's.
        let listener = runtime
            .spawn(TcpListener::bind("127.0.0.1:0"))
            .await
            .map_err(|_| gone())??;
        let addr = listener.local_addr()?;
        let (state, rx) = watch::channel(State::default());
        let connections = Arc::new(Connections::default());
        let accept = runtime.spawn(accept_loop(
            listener,
            Route {
                upstream: upstream.clone(),
                protocol,
                shared: Arc::new(Shared::default()),
            },
            rx,
            connections.clone(),
        ));
        Ok(FaultProxy {
            addr,
            upstream,
            protocol,
            state,
            connections,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node it forwards to.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The protocol it follows.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Replaces the active faults; open connections follow from their next chunk on.
    pub fn set(&self, faults: ProxyFaults) {
        self.state.send_modify(|s| s.faults = faults);
    }

    /// Sets an aimed fault (replacing any other aim); each message it acts on is reported
    /// to `firings`. [`FaultProxy::heal`] lifts it; firings still queued can be taken
    /// after that.
    pub fn aim(&self, aim: impl Aim + 'static, firings: &Firings) -> Result<(), AimError> {
        if aim.protocol() != self.protocol {
            return Err(AimError::WrongProtocol {
                wanted: aim.protocol(),
                has: self.protocol,
            });
        }
        let armed = Armed::new(Arc::new(aim), firings);
        self.state.send_modify(|s| s.armed = Some(armed));
        Ok(())
    }

    /// The aimed fault in force, if any.
    pub fn aimed(&self) -> Option<Arc<dyn Aim>> {
        self.state.borrow().armed.as_ref().map(|a| a.aim.clone())
    }

    /// The faults active now.
    pub fn faults(&self) -> ProxyFaults {
        self.state.borrow().faults
    }

    /// Removes every fault, aimed ones included; stalled connections resume.
    pub fn heal(&self) {
        self.state.send_modify(|s| *s = State::default());
    }

    /// Closes every connection open now (clients see the connection drop); new ones work.
    pub fn reset_connections(&self) {
        self.connections.abort_all();
    }

    /// How many chunks a latency fault has delayed and how many chunks or connection
    /// attempts a partition has held, since the proxy started.
    pub fn hits(&self) -> u64 {
        self.connections.hits.load(Ordering::Relaxed)
    }

    /// How many client connections are open through the proxy.
    pub fn open_connections(&self) -> usize {
        self.connections.lock().len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.connections.abort_all();
    }
}

/// The runtime every proxy runs on: one thread of its own, for the whole process.
///
/// Relaying is a few system calls per chunk; on one thread a single `epoll_wait` hands over
/// many ready sockets at once and no wake-up crosses threads, which measurably beats
/// sharing the caller's multi-threaded runtime. It also keeps the run's client tasks from
/// delaying the proxy's timers, which would add latency nobody asked for.
fn proxy_runtime() -> io::Result<tokio::runtime::Handle> {
    // A std Mutex: held only while the runtime is built, never across an await.
    static RUNTIME: Mutex<Option<tokio::runtime::Handle>> = Mutex::new(None);
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(handle) = &*slot {
        return Ok(handle.clone());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("overbook-proxy".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// Where a proxy's connections go and how they are followed.
#[derive(Clone)]
struct Route {
    upstream: Upstream,
    protocol: Protocol,
    shared: Arc<Shared>,
}

async fn accept_loop(
    listener: TcpListener,
    route: Route,
    rx: watch::Receiver<State>,
    connections: Arc<Connections>,
) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            // Out of fds and the like: back off rather than spin, keep serving.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let id = connections.next_id.fetch_add(1, Ordering::Relaxed);
        let registry = connections.clone();
        // Registered under the lock before the task can finish and deregister itself.
        let mut open = connections.lock();
        let follows = aim::follow_connection(route.protocol, id, &route.shared);
        let task = tokio::spawn(relay(
            client,
            route.upstream.clone(),
            rx.clone(),
            follows,
            Deregister(registry, id),
        ));
        open.insert(id, task.abort_handle());
    }
}

/// Removes a connection from the registry when its task ends or is aborted.
struct Deregister(Arc<Connections>, u64);

impl Drop for Deregister {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

/// Waits while a partition is active; returns the faults once it is not, or `None` when
/// the proxy is gone.
async fn wait_unblocked(rx: &mut watch::Receiver<State>) -> Option<ProxyFaults> {
    loop {
        let faults = rx.borrow_and_update().faults;
        if !faults.blackhole {
            return Some(faults);
        }
        rx.changed().await.ok()?;
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "proxy stopped")
}

async fn relay(
    client: TcpStream,
    upstream: Upstream,
    mut rx: watch::Receiver<State>,
    follows: (Follow, Follow),
    registered: Deregister,
) {
    // In a partition even the connection attempt does not reach the node.
    if rx.borrow().faults.blackhole {
        registered.0.hit();
    }
    if wait_unblocked(&mut rx).await.is_none() {
        return;
    }
    let hits = registered.0.clone();
    // Requests and replies are small; Nagle would add its own delay to ours.
    let _ = client.set_nodelay(true);
    let (cr, cw) = client.into_split();
    // A failed connect means the node is down (killed): the client sees its connection
    // closed.
    match upstream {
        Upstream::Tcp(addr) => {
            let Ok(server) = TcpStream::connect(addr).await else {
                return;
            };
            let _ = server.set_nodelay(true);
            let (sr, sw) = server.into_split();
            relay_halves(cr, cw, sr, sw, rx, follows, hits).await;
        }
        Upstream::Unix(path) => {
            let Ok(server) = UnixStream::connect(path).await else {
                return;
            };
            let (sr, sw) = server.into_split();
            relay_halves(cr, cw, sr, sw, rx, follows, hits).await;
        }
    }
}

async fn relay_halves<CR, CW, SR, SW>(
    cr: CR,
    cw: CW,
    sr: SR,
    sw: SW,
    rx: watch::Receiver<State>,
    (up_follow, down_follow): (Follow, Follow),
    hits: Arc<Connections>,
) where
    CR: AsyncRead + Unpin + Send + 'static,
    CW: AsyncWrite + Unpin + Send + 'static,
    SR: AsyncRead + Unpin + Send + 'static,
    SW: AsyncWrite + Unpin + Send + 'static,
{
    // Each direction is its own task, so a wake-up polls only the side that is ready and
    // the two sides can run on different workers. Aborting this task drops the other.
    let mut down = AbortOnDrop(tokio::spawn(pump(
        sr,
        cw,
        Direction::Down,
        rx.clone(),
        down_follow,
        hits.clone(),
    )));
    let up = pump(cr, sw, Direction::Up, rx, up_follow, hits);
    tokio::pin!(up);
    tokio::select! {
        ended = &mut up => {
            if matches!(ended, Ok(Ended::Eof)) {
                let _ = (&mut down.0).await;
            }
        }
        ended = &mut down.0 => {
            // A cut (lost-commit-ack) ends both directions at once: returning drops the
            // client's and the server's sockets, which is the reset the client sees.
            if !matches!(ended, Ok(Ok(Ended::Cut))) {
                let _ = up.await;
            }
        }
    }
}

/// How one direction of a connection ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The sender closed its side.
    Eof,
    /// An aimed fault cut the connection.
    Cut,
}

/// Aborts the delayed writer if the connection is dropped (reset), so queued bytes are
/// not delivered after the connection was cut.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Bytes to write, when, and an optional signal that releases them earlier.
type Chunk = (Instant, Vec<u8>, Option<oneshot::Receiver<()>>);

enum Out<W> {
    /// Fast path: write each chunk as soon as it is read.
    Direct(W),
    /// Delayed: chunks go through a writer task that releases them on time, in order.
    Queued {
        tx: mpsc::Sender<Chunk>,
        writer: AbortOnDrop<io::Result<W>>,
    },
    /// Transitional while switching modes.
    Empty,
}

impl<W: AsyncWrite + Unpin + Send + 'static> Out<W> {
    /// Switches to the fast path after every queued chunk was written, keeping order.
    async fn into_direct(self) -> io::Result<W> {
        match self {
            Out::Direct(w) => Ok(w),
            Out::Queued { tx, mut writer } => {
                drop(tx);
                let res = (&mut writer.0).await;
                res.map_err(|_| gone())?
            }
            Out::Empty => Err(gone()),
        }
    }

    fn into_queued(self, rx: &watch::Receiver<State>) -> Out<W> {
        match self {
            Out::Direct(w) => {
                let (tx, chunks) = mpsc::channel(64);
                let writer = tokio::spawn(delayed_writer(w, chunks, rx.clone()));
                Out::Queued {
                    tx,
                    writer: AbortOnDrop(writer),
                }
            }
            other => other,
        }
    }
}

async fn pump<R, W>(
    mut from: R,
    to: W,
    dir: Direction,
    mut rx: watch::Receiver<State>,
    mut follow: Follow,
    hits: Arc<Connections>,
) -> io::Result<Ended>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = vec![0u8; 64 * 1024];
    let (mut faults, mut armed) = {
        let state = rx.borrow_and_update();
        (state.faults, state.armed.clone())
    };
    let mut out = Out::Direct(to);
    // Under a bandwidth limit, when the link is next free.
    let mut link_free = Instant::now();
    // Stream offset of the next chunk, for the follower's byte ranges.
    let mut pos: u64 = 0;
    loop {
        let n = from.read(&mut buf).await?;
        // One atomic load per chunk: the fault seen is the one active when it arrived.
        if rx.has_changed().map_err(|_| gone())? {
            let state = rx.borrow_and_update();
            faults = state.faults;
            armed = state.armed.clone();
        }
        if n == 0 {
            let mut w = out.into_direct().await?;
            w.shutdown().await?;
            return Ok(Ended::Eof);
        }
        if faults.blackhole {
            hits.hit();
            faults = wait_unblocked(&mut rx).await.ok_or_else(gone)?;
        }
        let start = pos;
        pos += n as u64;
        if let Plan::Act { pieces, cut } = follow.feed(&buf[..n], armed.as_ref()) {
            let arrival = Instant::now();
            for piece in pieces {
                let (bytes, hold, early) = match piece {
                    Piece::Bytes { range, hold, early } => {
                        let slice =
                            &buf[(range.start - start) as usize..(range.end - start) as usize];
                        (std::borrow::Cow::Borrowed(slice), hold, early)
                    }
                    Piece::Insert(v) => (std::borrow::Cow::Owned(v), Duration::ZERO, None),
                };
                if bytes.is_empty() {
                    continue;
                }
                if let (Out::Direct(w), true, None) = (&mut out, hold.is_zero(), &early) {
                    w.write_all(&bytes).await?;
                    continue;
                }
                out = std::mem::replace(&mut out, Out::Empty).into_queued(&rx);
                if let Out::Queued { tx, .. } = &out {
                    tx.send((arrival + hold, bytes.into_owned(), early))
                        .await
                        .map_err(|_| gone())?;
                }
            }
            if cut {
                // What came before the swallowed message is delivered, then the cut.
                let mut w = std::mem::replace(&mut out, Out::Empty)
                    .into_direct()
                    .await?;
                let _ = w.flush().await;
                return Ok(Ended::Cut);
            }
            continue;
        }
        if !faults.delays(dir) {
            if !matches!(out, Out::Direct(_)) {
                out = Out::Direct(
                    std::mem::replace(&mut out, Out::Empty)
                        .into_direct()
                        .await?,
                );
            }
            if let Out::Direct(w) = &mut out {
                w.write_all(&buf[..n]).await?;
            }
            continue;
        }
        hits.hit();
        let arrival = Instant::now();
        let mut delay = faults.base_delay(dir);
        if !faults.jitter.is_zero() && !delay.is_zero() {
            let extra = rand::rng().random_range(0..=faults.jitter.as_micros() as u64);
            delay += Duration::from_micros(extra);
        }
        let mut release = arrival + delay;
        if let Some(bps) = faults.bandwidth {
            release = release.max(link_free);
            let send_time = Duration::from_secs_f64(n as f64 / bps.max(1) as f64);
            link_free = release + send_time;
        }
        out = std::mem::replace(&mut out, Out::Empty).into_queued(&rx);
        if let Out::Queued { tx, .. } = &out {
            tx.send((release, buf[..n].to_vec(), None))
                .await
                .map_err(|_| gone())?;
        }
    }
}

async fn delayed_writer<W: AsyncWrite + Unpin>(
    mut to: W,
    mut chunks: mpsc::Receiver<Chunk>,
    mut rx: watch::Receiver<State>,
) -> io::Result<W> {
    while let Some((release, chunk, early)) = chunks.recv().await {
        match early {
            // Released at `release`, or as soon as the signal comes (a dropped sender is
            // no signal).
            Some(mut signal) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(release) => {}
                    Ok(()) = &mut signal => {}
                }
            }
            None => tokio::time::sleep_until(release).await,
        }
        // A partition that starts while bytes are queued holds them too.
        if rx.borrow().faults.blackhole {
            wait_unblocked(&mut rx).await.ok_or_else(gone)?;
        }
        to.write_all(&chunk).await?;
    }
    Ok(to)
}
