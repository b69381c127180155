//! A scripted stand-in for a provider's HTTP API, for the connector tests: an axum server on a
//! random loopback port that records every request (method, path, query, headers, body) and
//! answers each one from a script of [`Reply`]s, waiting first when a reply says so (to provoke
//! timeouts).
//!
//! A request to `method path` is answered by the first of:
//! 1. the next reply queued for that route with [`MockProvider::reply`];
//! 2. the next reply queued for any request with [`MockProvider::reply_any`];
//! 3. the route's generated answer set with [`MockProvider::default_for`];
//! 4. the default reply ([`MockProvider::default_reply`]; an empty 500 unless set).
//!
//! Provider-specific checks (signatures, header sets) belong to each test file, as functions
//! over the recorded [`SeenRequest`]s.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl SeenRequest {
    /// The value of header `name`, if it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every header name sent, sorted, each once.
    pub fn header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.headers.keys().map(|k| k.as_str().to_owned()).collect();
        names.sort_unstable();
        names
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A scripted answer: a status, headers, a body, and how long to wait before sending it.
///
/// The body goes out as text, so axum labels it `text/plain; charset=utf-8` unless the reply sets
/// its own `content-type` (as [`Reply::json`] does).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Set on the response in order; a later header replaces an earlier one of the same name.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    /// `status` with `body` as it is written and no headers of its own.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with an empty body and no headers of its own.
    pub fn empty(status: u16) -> Reply {
        Reply::text(status, "")
    }

    /// `status` with `content-type: application/json` and `body`: a `serde_json::Value`, or a
    /// string sent as written (even malformed or empty, for tests of unreadable answers).
    pub fn json(status: u16, body: impl ToString) -> Reply {
        Reply::text(status, body.to_string()).header("content-type", "application/json")
    }

    /// The same reply with header `name: value` (replacing an earlier one of that name).
    ///
    /// Panics on a name or value that is not a valid header: a mistake in the test itself.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => self.headers.push((name, value)),
            _ => panic!("not a valid header: {name:?}: {value:?}"),
        }
        self
    }

    /// The same reply, sent only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.body).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// Makes a route's answer from how many requests the route has had, this one included.
type Generate = Box<dyn Fn(usize) -> Reply + Send>;

struct Route {
    method: Method,
    path: String,
    queued: VecDeque<Reply>,
    generate: Option<Generate>,
}

impl Route {
    fn is(&self, method: &Method, path: &str) -> bool {
        self.method == *method && self.path == path
    }
}

struct Script {
    seen: Vec<SeenRequest>,
    routes: Vec<Route>,
    any: VecDeque<Reply>,
    default: Reply,
    /// Requests whose reply is held back ([`Reply::after`]) and not yet sent, and the most
    /// there ever were at once.
    held: usize,
    most_held: usize,
}

impl Script {
    fn route(&mut self, method: Method, path: &str) -> &mut Route {
        let index = match self.routes.iter().position(|r| r.is(&method, path)) {
            Some(index) => index,
            None => {
                self.routes.push(Route {
                    method,
                    path: path.to_owned(),
                    queued: VecDeque::new(),
                    generate: None,
                });
                self.routes.len() - 1
            }
        };
        &mut self.routes[index]
    }

    /// Records `request` and picks its answer.
    fn answer(&mut self, request: SeenRequest) -> Reply {
        let (method, path) = (request.method.clone(), request.path.clone());
        self.seen.push(request);
        let count = self
            .seen
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count();
        let route = self.routes.iter().position(|r| r.is(&method, &path));
        if let Some(reply) = route.and_then(|i| self.routes[i].queued.pop_front()) {
            return reply;
        }
        if let Some(reply) = self.any.pop_front() {
            return reply;
        }
        match route.and_then(|i| self.routes[i].generate.as_ref()) {
            Some(generate) => generate(count),
            None => self.default.clone(),
        }
    }
}

/// A running scripted provider. Dropping it stops the server.
pub struct MockProvider {
    script: Arc<Mutex<Script>>,
    addr: std::net::SocketAddr,
    server: tokio::task::AbortHandle,
}

impl MockProvider {
    /// A stand-in PayPal that grants an access token to every token request, and has nothing
    /// else scripted.
    pub async fn paypal_granting_tokens() -> Result<MockProvider, std::io::Error> {
        let paypal = MockProvider::start().await?;
        paypal.default_for(http::Method::POST, "/v1/oauth2/token", |_| {
            Reply::json(
                200,
                r#"{"access_token":"token","token_type":"Bearer","expires_in":3600}"#,
            )
        });
        Ok(paypal)
    }

    /// Starts a mock on `127.0.0.1` and a random port, with nothing scripted.
    pub async fn start() -> Result<MockProvider, std::io::Error> {
        let script = Arc::new(Mutex::new(Script {
            seen: Vec::new(),
            routes: Vec::new(),
            any: VecDeque::new(),
            default: Reply::empty(500),
            held: 0,
            most_held: 0,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&script));
        let server = tokio::spawn(async move { axum::serve(listener, app).await }).abort_handle();
        Ok(MockProvider {
            script,
            addr,
            server,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The authority clients send as `Host`: `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `reply` for the next `method` request to `path` (the path without the query).
    pub fn reply(&self, method: Method, path: &str, reply: Reply) {
        self.script().route(method, path).queued.push_back(reply);
    }

    /// Queues `reply` for the next request that has no reply queued for its own route.
    pub fn reply_any(&self, reply: Reply) {
        self.script().any.push_back(reply);
    }

    /// Answers `method path` with `generate(n)` when nothing is queued for it, where `n` counts
    /// the requests the route has had, this one included (`1` for the first).
    pub fn default_for(
        &self,
        method: Method,
        path: &str,
        generate: impl Fn(usize) -> Reply + Send + 'static,
    ) {
        self.script().route(method, path).generate = Some(Box::new(generate));
    }

    /// The answer to any request nothing else answers (an empty 500 until set).
    pub fn default_reply(&self, reply: Reply) {
        self.script().default = reply;
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.script().seen.clone()
    }

    /// The requests received so far for `path` (any method), in order of arrival.
    pub fn seen(&self, path: &str) -> Vec<SeenRequest> {
        self.script()
            .seen
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The most requests whose replies were held back ([`Reply::after`]) at one time: how many
    /// such calls the client had in flight at once.
    pub fn most_held_at_once(&self) -> usize {
        self.script().most_held
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = SeenRequest {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: body.to_vec(),
    };
    let reply = lock(&script).answer(request);
    if reply.delay.is_zero() {
        return reply.into_response();
    }
    let _held = Held::new(&script);
    tokio::time::sleep(reply.delay).await;
    reply.into_response()
}

fn lock(script: &Mutex<Script>) -> MutexGuard<'_, Script> {
    script.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A reply held back: counted from its start until it is sent, or its client went away.
struct Held<'a>(&'a Mutex<Script>);

impl<'a> Held<'a> {
    fn new(script: &'a Mutex<Script>) -> Held<'a> {
        let mut counts = lock(script);
        counts.held += 1;
        counts.most_held = counts.most_held.max(counts.held);
        Held(script)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        lock(self.0).held -= 1;
    }
}
