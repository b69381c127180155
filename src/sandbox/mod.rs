//! The built-in sandbox: an emulator of the providers' HTTP APIs that the real connectors call
//! over HTTP, exactly as they call the providers.
//!
//! One axum server serves every emulated provider under its own path prefix
//! (`http://127.0.0.1:PORT/paypal`, `/checkout`, ...), so a connector only needs a different
//! base URL to talk to the sandbox instead of the provider. Each provider is one file holding an
//! [`Emulator`]; adding a provider is that file plus one line in [`Sandbox::start`].
//!
//! Authorizations are made through [`Sandbox::create_authorization`] or the admin endpoint
//! `POST /sandbox/{provider}/authorizations` (mounted by the service on its own HTTP port), each
//! with a [`Scenario`] that decides how the provider will answer its captures. Emulators may add
//! admin endpoints of their own under `/sandbox/{provider}/` (PayPal's capture state changes).
//!
//! Emulators release authorizations as their providers do (voids, and the rest released by a
//! final capture), noted in the book (`book.rs`); scenarios other than `Expired` and `Voided`
//! shape captures only, and the fault injector (`faults.rs`) never touches a release.
//!
//! Checkout.com and PayPal send signed webhooks, as they do, to the service named by
//! [`Sandbox::send_webhooks_to`] (see `webhooks.rs`).

mod book;
pub mod checkout;
pub mod cybersource;
mod faults;
mod kit;
pub mod payment_options;
pub mod paypal;
pub mod stax;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::domain::{Money, MoneyError, Provider};
pub use book::{Charge, Hold, Release, ReleasedBy};
use book::{Charged, Charges};
use faults::Faults;
pub use faults::{Attempt, Fault};
pub use kit::Secrets;
pub use webhooks::WebhookDelivery;
use webhooks::Webhooks;

/// How long [`Sandbox::shutdown`] lets requests in flight finish before cutting them off (a
/// `Timeout` scenario request would otherwise hold the shutdown for a minute).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Money as PayPal writes it, and as the admin endpoint takes it: a code and a major-unit string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyJson {
    pub currency_code: String,
    pub value: String,
}

impl From<Money> for MoneyJson {
    fn from(money: Money) -> Self {
        MoneyJson {
            currency_code: money.currency().code().to_owned(),
            value: money.to_major_string(),
        }
    }
}

/// How the emulated provider will answer captures of an authorization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scenario {
    /// Captures complete.
    #[default]
    Approve,
    /// Captures are accepted but held for review (PayPal `PENDING` / `PENDING_REVIEW`).
    Pending,
    /// Captures are declined; nothing is taken from the authorization.
    Declined,
    /// The authorization has expired: captures are refused.
    Expired,
    /// The authorization was voided: captures are refused.
    Voided,
    /// The provider fails with a 5xx and captures nothing.
    ServerError,
    /// The provider captures, then answers only after longer than any client waits.
    Timeout,
    /// The provider captures, then answers with a body that is not JSON.
    MalformedBody,
}

/// What the admin endpoint takes: the amount to authorize and how its captures will go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewAuthorization {
    pub amount: MoneyJson,
    #[serde(default)]
    pub scenario: Scenario,
    /// Observes the authorization: its capture requests meet these faults in turn, and are
    /// listed at `GET /sandbox/attempts` (see `faults.rs`). Absent: not observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Vec<Fault>>,
}

/// An authorization the sandbox made, ready to be captured through the provider's API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxAuthorization {
    /// The provider's authorization id, as the connector sends it.
    pub id: String,
    /// The provider's name, as in URLs (`paypal`).
    pub provider: String,
    /// The provider's status of the authorization (`CREATED`, `VOIDED`, `EXPIRED`).
    pub status: String,
    /// The authorized amount, with exactly the currency's decimals.
    pub amount: MoneyJson,
    pub scenario: Scenario,
}

impl SandboxAuthorization {
    pub fn new(
        provider: Provider,
        id: String,
        status: &str,
        amount: Money,
        scenario: Scenario,
    ) -> Self {
        SandboxAuthorization {
            id,
            provider: provider.as_str().to_owned(),
            status: status.to_owned(),
            amount: amount.into(),
            scenario,
        }
    }
}

/// Why the sandbox could not make an authorization.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("the sandbox does not emulate {0} yet")]
    NotEmulated(Provider),
    #[error("amount: {0}")]
    InvalidAmount(#[from] MoneyError),
}

/// One emulated provider: its HTTP API and how it creates authorizations.
trait Emulator: Send + Sync + 'static {
    fn provider(&self) -> Provider;
    /// The provider's API, with paths relative to the provider's prefix.
    fn routes(self: Arc<Self>) -> Router;
    /// Records a new authorization of `amount` whose captures follow `scenario`.
    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization;
    /// The `CAPTURE_<PROVIDER>_*` variables a service needs to capture here.
    fn service_env(&self) -> Vec<(String, String)>;
    /// Admin endpoints of this provider's own, with paths relative to `/sandbox/{provider}`.
    fn admin_routes(self: Arc<Self>) -> Option<Router> {
        None
    }
    /// The authorization a request captures, if it is a capture request (`path` relative to
    /// the provider's prefix), for the fault injector.
    fn captured_authorization(&self, path: &str, body: &[u8]) -> Option<String>;
    /// The idempotency key a capture request carries, as the book records it (none where the
    /// provider takes none).
    fn idempotency_key(&self, _headers: &HeaderMap, _body: &[u8]) -> Option<String> {
        None
    }
    /// Where a capture it accepted stands now, in the service's words (`COMPLETED`, `PENDING`,
    /// `DECLINED`, `PARTIALLY_REFUNDED`, `REFUNDED`), for providers whose captures change
    /// after the answer; none where a capture is complete once accepted.
    fn capture_status(&self, _authorization_id: &str, _capture_id: &str) -> Option<String> {
        None
    }
}

/// The emulated providers, shared by the provider server and the admin endpoint.
struct Emulators {
    all: Vec<Arc<dyn Emulator>>,
    /// What they charged and released, for `GET /sandbox/book` and `/sandbox/book/holds`.
    charges: Charges,
    /// The observed authorizations and their attempts, for `GET /sandbox/attempts`.
    faults: Faults,
    /// Where webhooks go, set by `POST /sandbox/webhooks` too.
    webhooks: Webhooks,
}

impl Emulators {
    fn authorize(
        &self,
        provider: Provider,
        request: NewAuthorization,
    ) -> Result<SandboxAuthorization, SandboxError> {
        let emulator = self
            .all
            .iter()
            .find(|e| e.provider() == provider)
            .ok_or(SandboxError::NotEmulated(provider))?;
        let amount = Money::parse_positive(&request.amount.currency_code, &request.amount.value)?;
        let authorization = emulator.authorize(amount, request.scenario);
        self.charges.authorized(provider, &authorization.id, amount);
        if let Some(faults) = request.faults {
            self.faults.observe(&authorization.id, faults);
        }
        Ok(authorization)
    }

    /// The book, each charge with where its capture stands now at its provider.
    fn book(&self) -> Vec<Charge> {
        let mut charges = self.charges.all();
        for charge in &mut charges {
            let emulator = self
                .all
                .iter()
                .find(|e| e.provider().as_str() == charge.provider);
            charge.status = emulator
                .and_then(|e| e.capture_status(&charge.authorization_id, &charge.capture_id))
                .unwrap_or_else(|| "COMPLETED".to_owned());
        }
        charges
    }

    /// Every authorization with what it gave: captured, released.
    fn holds(&self) -> Vec<Hold> {
        self.charges.holds(&self.book())
    }
}

/// The running sandbox. Owns its server task: dropping it or [`Sandbox::shutdown`] stops it.
pub struct Sandbox {
    /// `http://127.0.0.1:PORT`, without a provider prefix.
    origin: String,
    emulators: Arc<Emulators>,
    /// Where the emulators' webhooks go, and the record of their deliveries.
    webhooks: Webhooks,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port) and serves every emulated provider.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Sandbox> {
        Self::start_with(addr, Duration::ZERO, &Secrets::default()).await
    }

    /// As [`Sandbox::start`], with every provider API answer held back by `latency`, as a
    /// distant provider's would be (load tests of slow providers; admin calls are not delayed),
    /// and the emulators' credentials from `secrets` (random, or derived from a seed).
    pub async fn start_with(
        addr: SocketAddr,
        latency: Duration,
        secrets: &Secrets,
    ) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let url = |p: Provider| format!("{origin}/{}", p.as_str());
        let webhooks = Webhooks::default();
        let charges = Charges::default();
        // One line per emulated provider.
        let emulators: Vec<Arc<dyn Emulator>> = vec![
            Arc::new(paypal::PaypalEmulator::new(
                url(Provider::Paypal),
                webhooks.clone(),
                charges.clone(),
                secrets,
            )),
            Arc::new(checkout::CheckoutEmulator::new(
                url(Provider::Checkout),
                webhooks.clone(),
                charges.clone(),
                secrets,
            )),
            Arc::new(cybersource::CybersourceEmulator::new(
                url(Provider::Cybersource),
                charges.clone(),
                secrets,
            )),
            Arc::new(payment_options::PaymentOptionsEmulator::new(
                url(Provider::PaymentOptions),
                charges.clone(),
                secrets,
            )),
            Arc::new(stax::StaxEmulator::new(
                url(Provider::Stax),
                charges.clone(),
                secrets,
            )),
        ];

        let faults = Faults::default();
        let emulators = Arc::new(Emulators {
            all: emulators,
            charges,
            faults: faults.clone(),
            webhooks: webhooks.clone(),
        });
        // The providers' APIs under their prefixes, and the helper endpoint beside them.
        let mut app = admin_router(&emulators);
        for emulator in &emulators.all {
            let prefix = format!("/{}", emulator.provider().as_str());
            let mut routes = emulator
                .clone()
                .routes()
                .layer(axum::middleware::from_fn_with_state(
                    (faults.clone(), Arc::clone(emulator)),
                    faults::inject,
                ));
            if !latency.is_zero() {
                routes = routes.layer(axum::middleware::from_fn(move |request, next| {
                    delayed(latency, request, next)
                }));
            }
            app = app.nest(&prefix, routes);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server =
                axum::serve(listener.tap_io(no_delay), app).with_graceful_shutdown(async {
                    let _ = stopped.await;
                });
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "sandbox server stopped");
            }
        });
        tracing::info!(%origin, "sandbox serving emulated providers");
        Ok(Sandbox {
            origin,
            emulators,
            webhooks,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The provider's base URL in the sandbox. Providers not emulated yet still get their URL;
    /// it answers 404 until they are.
    pub fn base_url(&self, provider: Provider) -> String {
        format!("{}/{}", self.origin, provider.as_str())
    }

    /// The `CAPTURE_<PROVIDER>_*` variables (base URLs and credentials) with which a service
    /// captures at every emulated provider, as it would at the real ones.
    pub fn service_env(&self) -> Vec<(String, String)> {
        self.emulators
            .all
            .iter()
            .flat_map(|e| e.service_env())
            .collect()
    }

    /// Makes an authorization at an emulated provider.
    pub async fn create_authorization(
        &self,
        provider: Provider,
        request: NewAuthorization,
    ) -> Result<SandboxAuthorization, SandboxError> {
        self.emulators.authorize(provider, request)
    }

    /// Sends the emulators' webhooks to `{origin}/webhooks/{provider}` from now on (`origin` as
    /// `http://127.0.0.1:8080`); replaces the origin set before. Until it is set, none is sent.
    pub fn send_webhooks_to(&self, origin: &str) {
        self.webhooks.send_to(origin);
    }

    /// Every capture the emulated providers accepted so far, oldest first (also `GET
    /// /sandbox/book`).
    pub fn charges(&self) -> Vec<Charge> {
        self.emulators.book()
    }

    /// Every authorization so far, with what it gave (also `GET /sandbox/book/holds`).
    pub fn holds(&self) -> Vec<Hold> {
        self.emulators.holds()
    }

    /// Every webhook delivery attempt so far (at most the last thousand), oldest first.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.webhooks.deliveries()
    }

    /// `POST /sandbox/{provider}/authorizations` and the emulators' own admin endpoints under
    /// `/sandbox/{provider}/`, for the service to mount on its HTTP port (the sandbox serves
    /// them on its own port too).
    pub fn admin_router(&self) -> Router {
        admin_router(&self.emulators)
    }

    /// `http://127.0.0.1:PORT`: the sandbox's own address.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Stops accepting connections, lets requests in flight finish briefly, then stops.
    pub async fn shutdown(mut self) {
        self.webhooks.stop();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.webhooks.stop();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Answers after `latency`, like a provider on the far side of a network.
async fn delayed(
    latency: Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    tokio::time::sleep(latency).await;
    response
}

/// Sends small answers at once instead of waiting on delayed ACKs.
fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "could not set TCP_NODELAY");
    }
}

fn admin_router(emulators: &Arc<Emulators>) -> Router {
    let mut router = Router::new()
        .route("/sandbox/{provider}/authorizations", post(admin_authorize))
        .route("/sandbox/book", get(book))
        .route("/sandbox/book/holds", get(holds))
        .with_state(Arc::clone(emulators))
        .merge(emulators.faults.routes())
        .merge(emulators.webhooks.routes());
    for emulator in &emulators.all {
        if let Some(routes) = Arc::clone(emulator).admin_routes() {
            router = router.nest(
                &format!("/sandbox/{}", emulator.provider().as_str()),
                routes,
            );
        }
    }
    router
}

/// `GET /sandbox/book`: every charge, oldest first, with where its capture stands now.
async fn book(State(emulators): State<Arc<Emulators>>) -> Json<Vec<Charge>> {
    Json(emulators.book())
}

/// `GET /sandbox/book/holds`: every authorization, oldest first, with what it gave.
async fn holds(State(emulators): State<Arc<Emulators>>) -> Json<Vec<Hold>> {
    Json(emulators.holds())
}

/// 201 with the authorization; 404 for a provider that is unknown or not emulated; 400 for a
/// body that is not a valid [`NewAuthorization`].
async fn admin_authorize(
    State(emulators): State<Arc<Emulators>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let error = |status: StatusCode, message: String| {
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    };
    let Some(provider) = Provider::parse(&name) else {
        return error(StatusCode::NOT_FOUND, format!("unknown provider {name:?}"));
    };
    let request: NewAuthorization = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match emulators.authorize(provider, request) {
        Ok(authorization) => (StatusCode::CREATED, Json(authorization)).into_response(),
        Err(e @ SandboxError::NotEmulated(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ SandboxError::InvalidAmount(_)) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
