//! The load generator: callers in a closed loop (each sends its next call when the last one
//! answers) for a fixed time, and what their latencies came to.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};

/// What the callers of one run saw.
#[derive(Debug, Default)]
pub struct Measured {
    /// Latency of every successful call, in microseconds.
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl Measured {
    pub fn ops(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    pub fn rps(&self) -> f64 {
        self.ops() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-quantile latency in milliseconds (nearest rank), if any call succeeded.
    pub fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        self.latencies_us.sort_unstable();
        let rank = ((self.latencies_us.len() as f64) * p).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        self.latencies_us
            .get(index)
            .map(|us| f64::from(*us) / 1000.0)
    }
}

/// Runs `concurrency` callers for `duration`; caller `w` makes its `n`th call with `call(w, n)`.
pub async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let deadline = started + duration;
    let callers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let call = Arc::clone(&call);
            tokio::spawn(async move {
                let mut seen = Measured::default();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    match call(worker, n).await {
                        Ok(()) => {
                            let us = began.elapsed().as_micros();
                            seen.latencies_us
                                .push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                        Err(e) => {
                            seen.errors += 1;
                            seen.first_error.get_or_insert(e);
                        }
                    }
                    n += 1;
                }
                seen
            })
        })
        .collect();
    let mut all = Measured::default();
    for caller in callers {
        match caller.await {
            Ok(seen) => {
                all.latencies_us.extend(seen.latencies_us);
                all.errors += seen.errors;
                if all.first_error.is_none() {
                    all.first_error = seen.first_error;
                }
            }
            Err(e) => {
                all.errors += 1;
                all.first_error.get_or_insert(e.to_string());
            }
        }
    }
    all.elapsed = started.elapsed();
    all
}

/// Connections the callers share: one HTTP/2 connection per 8 callers, at most 16, as a
/// client fleet would open them.
pub async fn channels(addr: SocketAddr, concurrency: usize) -> anyhow::Result<Vec<Channel>> {
    let count = concurrency.div_ceil(8).clamp(1, 16);
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        channels.push(channel);
    }
    Ok(channels)
}
