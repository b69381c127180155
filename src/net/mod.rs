//! The listening sockets, guarded against callers that open connections and say nothing.
//!
//! HTTP/1 and HTTP/2 have their own idle rules (hyper's header-read timeout, HTTP/2 keep-alive
//! pings), but neither covers a connection that never sends its first bytes, nor bounds how
//! many connections are open at once. [`Listener`] does both, once for both ports:
//! - at most `max_connections` are open; past that it stops accepting (new connections wait in
//!   the kernel's backlog) and says so in the log;
//! - each accepted socket gets TCP_NODELAY and TCP keepalive;
//! - optionally, a connection must send its first `n` bytes (the HTTP/2 client preface) within
//!   a deadline, or its reads fail and the server closes it.

mod http1;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tracing::{debug, warn};

pub use http1::serve_http1;

/// The HTTP/2 client preface every gRPC connection starts with (RFC 9113 §3.4).
pub const HTTP2_PREFACE_LEN: usize = 24;

/// How accepted connections are guarded.
#[derive(Debug, Clone, Copy)]
pub struct ListenerRules {
    pub max_connections: usize,
    /// Idle time before TCP keepalive probes start; `None` leaves the system default (off).
    pub tcp_keepalive: Option<Duration>,
    /// The first bytes a connection must send, and how long it has to send them.
    pub first_bytes: Option<(usize, Duration)>,
}

/// A TCP listener that enforces [`ListenerRules`].
pub struct Listener {
    inner: TcpListener,
    rules: ListenerRules,
    slots: Arc<Semaphore>,
    /// Whether the last accept found every slot taken (so the limit is logged once per episode).
    full: bool,
    name: &'static str,
}

impl Listener {
    pub fn new(inner: TcpListener, rules: ListenerRules, name: &'static str) -> Self {
        Listener {
            inner,
            slots: Arc::new(Semaphore::new(rules.max_connections)),
            rules,
            full: false,
            name,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The next connection, once a slot is free. Accept errors (such as running out of file
    /// descriptors) are logged and retried after a pause, never returned: a listener that
    /// stopped on them would lock everyone out for good.
    pub async fn accept(&mut self) -> Guarded {
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => {
                self.full = false;
                permit
            }
            Err(_) => {
                if !self.full {
                    warn!(
                        listener = self.name,
                        max_connections = self.rules.max_connections,
                        "connection limit reached: new connections wait until one closes (CAPTURE_MAX_CONNECTIONS)"
                    );
                    self.full = true;
                }
                match Arc::clone(&self.slots).acquire_owned().await {
                    Ok(permit) => permit,
                    // The semaphore is never closed; wait forever rather than spin if it were.
                    Err(_) => std::future::pending().await,
                }
            }
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    self.configure(&stream, peer);
                    return Guarded::new(stream, permit, self.rules.first_bytes);
                }
                // Out of descriptors or memory: pause, or the loop spins on the same error.
                Err(err) if is_resource_exhaustion(&err) => {
                    warn!(listener = self.name, error = %err, "accept failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // One connection failed (reset or aborted before it was accepted): next.
                Err(err) => debug!(listener = self.name, error = %err, "accept failed"),
            }
        }
    }

    /// The connections as a stream, for tonic's `serve_with_incoming`.
    pub fn into_incoming(
        self,
    ) -> impl futures_util::Stream<Item = Result<Guarded, io::Error>> + Send + 'static {
        futures_util::stream::unfold(self, |mut listener| async move {
            let conn = listener.accept().await;
            Some((Ok(conn), listener))
        })
    }

    fn configure(&self, stream: &TcpStream, peer: SocketAddr) {
        // Without TCP_NODELAY small answers wait on delayed ACKs (~40 ms).
        if let Err(err) = stream.set_nodelay(true) {
            debug!(%peer, error = %err, "could not set TCP_NODELAY");
        }
        if let Some(idle) = self.rules.tcp_keepalive {
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(idle.min(Duration::from_secs(10)));
            if let Err(err) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
                debug!(%peer, error = %err, "could not set TCP keepalive");
            }
        }
    }
}

fn is_resource_exhaustion(err: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            err.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        true
    }
}

/// An accepted connection: holds its slot until dropped, and fails its reads if the peer does
/// not send its first bytes in time.
pub struct Guarded {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    first_bytes: Option<FirstBytes>,
}

struct FirstBytes {
    still_needed: usize,
    deadline: Pin<Box<Sleep>>,
    within: Duration,
}

impl Guarded {
    fn new(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        first_bytes: Option<(usize, Duration)>,
    ) -> Self {
        Guarded {
            stream,
            _slot: slot,
            first_bytes: first_bytes.map(|(n, within)| FirstBytes {
                still_needed: n,
                deadline: Box::pin(tokio::time::sleep(within)),
                within,
            }),
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(first) = &mut this.first_bytes {
            if first.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the peer did not send its first {} bytes within {:?}",
                        first.still_needed, first.within
                    ),
                )));
            }
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        let read = buf.filled().len() - before;
        if let Some(first) = &mut this.first_bytes {
            first.still_needed = first.still_needed.saturating_sub(read);
            // Done once the bytes came, or at end of stream (the server closes anyway).
            if first.still_needed == 0 || read == 0 {
                this.first_bytes = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Guarded {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// Raises the soft open-file limit to the hard one (as Go's runtime does), and returns the
/// soft limit then in force, if it can be read.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        Some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        None
    }
}
