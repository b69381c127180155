//! A stand-in for the service's webhook endpoint: records the headers and raw body of every
//! `POST /webhooks/{provider}` and answers with a chosen status.

use std::error::Error;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::task::JoinHandle;

/// One delivery as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    /// `{provider}` of the path it was POSTed to.
    pub provider: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A running receiver; dropping it stops it.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, what `Sandbox::send_webhooks_to` takes.
    pub origin: String,
    log: Log,
    task: JoinHandle<()>,
}

impl Receiver {
    /// A receiver answering every delivery with `status`.
    pub async fn start(status: StatusCode) -> Result<Receiver, Box<dyn Error>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let log = Log::default();
        let app = Router::new()
            .route("/webhooks/{provider}", post(receive))
            .with_state((Arc::clone(&log), status));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { origin, log, task })
    }

    pub fn received(&self) -> Vec<Received> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The deliveries once there are at least `count` (waiting up to 5 s), then a little longer
    /// to catch any that should not have come.
    pub async fn wait_for(&self, count: usize) -> Result<Vec<Received>, Box<dyn Error>> {
        for _ in 0..100 {
            if self.received().len() >= count {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Ok(self.received());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "{count} deliveries expected, {} came",
            self.received().len()
        )
        .into())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State((log, status)): State<(Log, StatusCode)>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received {
            provider,
            headers,
            body,
        });
    status
}

/// What `service_env` gives for `name`.
pub fn env_var(
    sandbox: &capture_service::sandbox::Sandbox,
    name: &str,
) -> Result<String, Box<dyn Error>> {
    sandbox
        .service_env()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("{name} not in service_env").into())
}
