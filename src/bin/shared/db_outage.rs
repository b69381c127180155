//! Breaking the database under a running service, the way production breaks it. Shared by the
//! black-box tests (`tests/common`) and `capture-faults` (whose `provider_faults` also puts the
//! proxy in front of the providers, to refuse connections).
//!
//! - PostgreSQL: the app reaches the server through a TCP proxy inside the test. An outage
//!   resets every open connection (RST, as a failover or a cut network does) and refuses new
//!   ones until it ends; a blackhole instead holds every byte, both ways, closing nothing (a
//!   network that drops packets), until it ends.
//! - SQLite: another process's transaction holds the write lock (a backup, a migration job),
//!   so the app's writes wait out their busy timeout and fail.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Mutex};

/// A TCP proxy to PostgreSQL that can cut every connection through it.
pub struct TcpProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    down: Arc<AtomicBool>,
    /// While true, no byte goes through in either direction, and nothing is closed.
    blackholed: watch::Sender<bool>,
    /// Bytes that, when a client next sends them, begin a blackhole before they go through.
    armed: Arc<std::sync::Mutex<Option<&'static [u8]>>>,
    /// Bumped at each cut; every forwarding task watches it and resets its sockets.
    cuts: watch::Sender<u64>,
    /// While true, the listening socket is closed: connecting is refused.
    refusing: watch::Sender<bool>,
    /// The server's `ReadyForQuery` messages, over every connection ([`TcpProxy::round_trips`]).
    ready: Arc<AtomicU64>,
    /// The clients' simple queries (`Query` messages), over every connection.
    queries: Arc<AtomicU64>,
    /// Connections let through to the server ([`TcpProxy::connections`]).
    connections: Arc<AtomicU64>,
}

/// Closes a socket with RST instead of FIN, as a crashed peer or a cut link does.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

impl TcpProxy {
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let down = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let (blackholed, _) = watch::channel(false);
        let armed: Arc<std::sync::Mutex<Option<&'static [u8]>>> = Arc::default();
        let proxy = TcpProxy {
            addr,
            upstream,
            down: Arc::clone(&down),
            blackholed: blackholed.clone(),
            armed: Arc::clone(&armed),
            cuts: cuts.clone(),
            refusing: watch::channel(false).0,
            ready: Arc::default(),
            queries: Arc::default(),
            connections: Arc::default(),
        };
        let ready = Arc::clone(&proxy.ready);
        let queries = Arc::clone(&proxy.queries);
        let connections = Arc::clone(&proxy.connections);
        let mut refusing = proxy.refusing.subscribe();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                if *refusing.borrow_and_update() {
                    // Closed: connecting is refused (ECONNREFUSED) until it is bound again.
                    listener = None;
                    if refusing.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                let open = match &listener {
                    Some(open) => open,
                    None => match TcpListener::bind(addr).await {
                        Ok(open) => listener.insert(open),
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let client = tokio::select! {
                    accepted = open.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => return,
                    },
                    _ = refusing.changed() => continue,
                };
                if down.load(Ordering::SeqCst) {
                    reset(&client);
                    continue;
                }
                connections.fetch_add(1, Ordering::SeqCst);
                let mut cut = cuts.subscribe();
                let hole = blackholed.subscribe();
                let trigger = Trigger {
                    armed: Arc::clone(&armed),
                    blackholed: blackholed.clone(),
                };
                let ready = Arc::clone(&ready);
                let queries = Arc::clone(&queries);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        reset(&client);
                        return;
                    };
                    // Every close from here on is a reset, as a cut (below) must be.
                    reset(&client);
                    reset(&server);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        () = forward(client_read, server_write, hole.clone(), Watch::Client(trigger, queries)) => {}
                        () = forward(server_read, client_write, hole, Watch::Server(ready)) => {}
                        _ = cut.changed() => {}
                    }
                    // The halves are dropped here: both sockets close (reset).
                });
            }
        });
        Ok(proxy)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many round trips of PostgreSQL's protocol went through: the server ends each (a
    /// query, a statement's `Sync`, a driver's ping) with one `ReadyForQuery` message.
    pub fn round_trips(&self) -> u64 {
        self.ready.load(Ordering::SeqCst)
    }

    /// How many connections were let through to the server.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// How many simple queries (unprepared statements, such as a `pg_notify`) went through.
    pub fn simple_queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }

    /// Resets every open connection and refuses new ones.
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Resets every open connection and closes the listening socket: connecting is refused
    /// (ECONNREFUSED, the request provably never sent) until [`TcpProxy::accept_again`].
    pub fn refuse(&self) {
        self.refusing.send_replace(true);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn accept_again(&self) {
        self.refusing.send_replace(false);
    }

    /// From now on no byte goes through, either way, and nothing is closed.
    pub fn blackhole(&self) {
        self.blackholed.send_replace(true);
    }

    /// Bytes flow again, those held first.
    pub fn lift_blackhole(&self) {
        if let Ok(mut armed) = self.armed.lock() {
            *armed = None;
        }
        self.blackholed.send_replace(false);
    }

    /// A blackhole begins when a client next sends `bytes` (a statement's text): that
    /// statement, and all after it, are held with the transaction it belongs to in flight.
    pub fn blackhole_at(&self, bytes: &'static [u8]) {
        if let Ok(mut armed) = self.armed.lock() {
            *armed = Some(bytes);
        }
    }
}

/// Begins the blackhole when an armed pattern passes from a client.
struct Trigger {
    armed: Arc<std::sync::Mutex<Option<&'static [u8]>>>,
    blackholed: watch::Sender<bool>,
}

impl Trigger {
    fn check(&self, sent: &[u8]) {
        let Ok(mut armed) = self.armed.lock() else {
            return;
        };
        if let Some(pattern) = *armed {
            if sent.windows(pattern.len()).any(|w| w == pattern) {
                *armed = None;
                self.blackholed.send_replace(true);
            }
        }
    }
}

/// What a forwarding task watches in the bytes it copies.
enum Watch {
    /// A client's: the armed pattern that begins a blackhole, and its simple queries.
    Client(Trigger, Arc<AtomicU64>),
    /// The server's: its `ReadyForQuery` messages.
    Server(Arc<AtomicU64>),
}

/// Counts the messages of one type in one direction of PostgreSQL's protocol, in plain text.
/// Every message is a type byte and a big-endian length that counts itself, except a client's
/// first (the startup message: the length alone).
struct MessageCounter {
    kind: u8,
    /// Whether the next message is a client's startup message.
    startup: bool,
    header: [u8; 5],
    filled: usize,
    /// What is left of the current message's body.
    skip: usize,
}

impl MessageCounter {
    fn client(kind: u8) -> MessageCounter {
        MessageCounter {
            startup: true,
            ..MessageCounter::server(kind)
        }
    }

    fn server(kind: u8) -> MessageCounter {
        MessageCounter {
            kind,
            startup: false,
            header: [0; 5],
            filled: 0,
            skip: 0,
        }
    }

    /// How many messages of the type begin in `bytes`.
    fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut found = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let header = if self.startup { 4 } else { 5 };
            let n = (header - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled < header {
                continue;
            }
            let length = if self.startup {
                [
                    self.header[0],
                    self.header[1],
                    self.header[2],
                    self.header[3],
                ]
            } else {
                if self.header[0] == self.kind {
                    found += 1;
                }
                [
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]
            };
            self.skip = (u32::from_be_bytes(length) as usize).saturating_sub(4);
            self.startup = false;
            self.filled = 0;
        }
        found
    }
}

/// Copies `from` to `to`, holding what it read, and the end of the stream, while the proxy is
/// blackholed.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut hole: watch::Receiver<bool>,
    watch: Watch,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    let (mut counter, count) = match &watch {
        Watch::Client(_, queries) => (MessageCounter::client(b'Q'), queries),
        Watch::Server(ready) => (MessageCounter::server(b'Z'), ready),
    };
    loop {
        let read = from.read(&mut buf).await;
        if let Ok(n) = &read {
            if let Watch::Client(trigger, _) = &watch {
                trigger.check(&buf[..*n]);
            }
            count.fetch_add(counter.feed(&buf[..*n]), Ordering::SeqCst);
        }
        // Held, like the bytes: a blackhole carries no close either.
        while *hole.borrow_and_update() {
            if hole.changed().await.is_err() {
                return;
            }
        }
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Which database an outage breaks.
pub enum Target {
    /// The PostgreSQL server at this address.
    Postgres(SocketAddr),
    Sqlite,
}

/// A way to make the app's database unusable for a while.
pub enum Outage {
    Postgres(TcpProxy),
    /// The database file, and the other process's lock while the outage lasts.
    Sqlite {
        url: std::sync::Mutex<String>,
        holder: Mutex<Option<DatabaseConnection>>,
    },
}

impl Outage {
    /// Prepares an outage for `db`; the app's database URL must then go through [`route`].
    ///
    /// [`route`]: Outage::route
    pub async fn prepare(target: Target) -> std::io::Result<Outage> {
        Ok(match target {
            Target::Postgres(server) => Outage::Postgres(TcpProxy::start(server).await?),
            Target::Sqlite => Outage::Sqlite {
                url: std::sync::Mutex::new(String::new()),
                holder: Mutex::new(None),
            },
        })
    }

    /// The app's database URL, routed through the outage.
    pub fn route(&self, database_url: &str) -> String {
        match self {
            Outage::Postgres(proxy) => {
                let upstream = proxy.upstream.to_string();
                let routed = database_url.replacen(&upstream, &proxy.addr().to_string(), 1);
                // In plain text, so that a blackhole can begin at a chosen statement.
                let join = if routed.contains('?') { '&' } else { '?' };
                format!("{routed}{join}sslmode=disable")
            }
            Outage::Sqlite { url, .. } => {
                if let Ok(mut url) = url.lock() {
                    *url = database_url.to_owned();
                }
                database_url.to_owned()
            }
        }
    }

    /// From now on the database cannot be used.
    pub async fn begin(&self) -> Result<(), sea_orm::DbErr> {
        match self {
            Outage::Postgres(proxy) => proxy.cut(),
            Outage::Sqlite { url, holder } => {
                // One connection, so BEGIN and ROLLBACK run on the same one.
                let url = url.lock().map(|u| u.clone()).unwrap_or_default();
                let mut options = ConnectOptions::new(url);
                options.max_connections(1).sqlx_logging(false);
                let connection = Database::connect(options).await?;
                connection.execute_unprepared("BEGIN IMMEDIATE").await?;
                *holder.lock().await = Some(connection);
            }
        }
        Ok(())
    }

    /// The database answers nothing and closes nothing from the moment the app next sends
    /// `statement` (PostgreSQL: its network drops every packet, with that statement's
    /// transaction in flight); SQLite's file is locked by another process at once, as in
    /// [`Outage::begin`] (a local file has no network to lose).
    pub async fn blackhole_at(&self, statement: &'static [u8]) -> Result<(), sea_orm::DbErr> {
        match self {
            Outage::Postgres(proxy) => {
                proxy.blackhole_at(statement);
                Ok(())
            }
            Outage::Sqlite { .. } => self.begin().await,
        }
    }

    /// The database answers nothing and closes nothing from now on (PostgreSQL: its network
    /// drops every packet); SQLite's file is locked by another process, as in
    /// [`Outage::begin`].
    pub async fn blackhole(&self) -> Result<(), sea_orm::DbErr> {
        match self {
            Outage::Postgres(proxy) => {
                proxy.blackhole();
                Ok(())
            }
            Outage::Sqlite { .. } => self.begin().await,
        }
    }

    /// The database is back.
    pub async fn end(&self) -> Result<(), sea_orm::DbErr> {
        match self {
            Outage::Postgres(proxy) => {
                proxy.lift_blackhole();
                proxy.restore();
            }
            Outage::Sqlite { holder, .. } => {
                if let Some(connection) = holder.lock().await.take() {
                    connection.execute_unprepared("ROLLBACK").await?;
                    connection.close().await?;
                }
            }
        }
        Ok(())
    }
}
