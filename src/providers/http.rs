//! Shared HTTP transport for connectors.
//!
//! Every connector builds its own `reqwest::Request` (URL, headers, auth, body) and hands it to
//! [`ProviderHttp::send`], which owns the two concerns that must be identical across providers:
//! the per-attempt deadline and *which failures may be retried*. A capture moves money, so a
//! retry is only ever the exact same request (same bytes, same idempotency header) and only for
//! failures that cannot have produced a second, different effect.
//!
//! The answer is returned raw ([`HttpAnswer`]: status, headers, body bytes) for the connector to
//! classify in its own terms; "no answer at all" is a separate error ([`NoAnswer`]) because it is
//! the one case where the caller cannot know whether the provider acted.
//!
//! Nothing here logs bodies or headers: they carry tokens, credentials and card data.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use reqwest::{Client, Request};

/// Which failures a request may be retried after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// The request carries an idempotency key the provider honours (or has no effect, like an
    /// OAuth token request): connection errors, timeouts, 5xx and 429 are retried.
    Idempotent,
    /// The provider does not deduplicate this request: only failures where it provably did not
    /// act are retried — the connection could not be opened, or it answered 429.
    NotIdempotent,
}

/// A provider's answer to the last attempt, for the connector to classify.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// How many attempts were made, this one included.
    pub attempts: u32,
}

impl HttpAnswer {
    /// The `Retry-After` the provider asked for, if it gave one in seconds.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }

    /// A response header as text (a provider's correlation or request id, say).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The provider gave no answer: the connection failed or an attempt ran out of time. Whether the
/// provider acted on the request is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no answer after {attempts} attempt(s): {detail}")]
pub struct NoAnswer {
    pub attempts: u32,
    /// The last attempt timed out (as opposed to a connection failure).
    pub timed_out: bool,
    /// What went wrong, without URL query, headers or body.
    pub detail: String,
    /// The wait the last attempt's 429 asked for, if it was throttled.
    pub retry_after: Option<Duration>,
}

/// One pooled HTTP client plus the retry rules every connector shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProviderHttp {
    client: Client,
    request_timeout: Duration,
    max_retries: u32,
    /// First backoff; doubled after each attempt.
    base_backoff: Duration,
    /// Ceiling of the exponential backoff.
    max_backoff: Duration,
    /// A 429 whose `Retry-After` is longer than this is handed back instead of waited out, so a
    /// throttled caller hears about it rather than hanging.
    max_retry_after: Duration,
}

impl ProviderHttp {
    /// `request_timeout` bounds each attempt (connect, send and read the whole body);
    /// `max_retries` is the number of further attempts after a retryable failure.
    pub fn new(request_timeout: Duration, max_retries: u32) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .connect_timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // Providers' redirects are never part of a capture; following one could resend a
            // payment to an unexpected host.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(ProviderHttp {
            client,
            request_timeout,
            max_retries,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        })
    }

    /// Replaces the backoff bounds (tests use zero to run fast).
    pub fn with_backoff(
        mut self,
        base: Duration,
        max: Duration,
        max_retry_after: Duration,
    ) -> Self {
        self.base_backoff = base;
        self.max_backoff = max;
        self.max_retry_after = max_retry_after;
        self
    }

    /// The shared client, to build requests with (`client().post(url)...build()`).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends `request`, retrying what `policy` allows with the exact same request, and returns
    /// the last answer (whatever its status) or [`NoAnswer`] if the last attempt got none.
    pub async fn send(
        &self,
        request: Request,
        policy: RetryPolicy,
    ) -> Result<HttpAnswer, NoAnswer> {
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        let mut attempt: u32 = 0;
        let mut current = request;
        // Whether an earlier attempt may have been acted on without our hearing of it.
        let mut unanswered_before = false;
        loop {
            attempt += 1;
            // A streaming body cannot be replayed: such a request gets exactly one attempt.
            let next = current.try_clone();
            let result = self.attempt(current).await;
            let wait = match &result {
                Ok(answer) => {
                    let status = answer.status.as_u16();
                    tracing::debug!(%method, %path, status, attempt, "provider answered");
                    self.retry_wait(answer, policy, attempt)
                }
                Err(failure) => {
                    tracing::warn!(
                        %method, %path, attempt, timed_out = failure.timed_out,
                        detail = %failure.detail, "provider gave no answer"
                    );
                    let retryable = match policy {
                        RetryPolicy::Idempotent => true,
                        RetryPolicy::NotIdempotent => failure.connect,
                    };
                    retryable.then(|| self.backoff(attempt))
                }
            };
            match (wait, next) {
                (Some(wait), Some(next)) if attempt <= self.max_retries => {
                    unanswered_before |= match &result {
                        Ok(answer) => answer.status.is_server_error(),
                        Err(failure) => !failure.connect,
                    };
                    tokio::time::sleep(wait).await;
                    current = next;
                }
                _ => {
                    return match result {
                        // A throttle speaks only for its own attempt: after one that went
                        // unanswered, whether the provider acted is unknown.
                        Ok(answer)
                            if unanswered_before
                                && answer.status == StatusCode::TOO_MANY_REQUESTS =>
                        {
                            Err(NoAnswer {
                                attempts: attempt,
                                timed_out: false,
                                detail: "throttled (429) after an earlier attempt went \
                                         unanswered"
                                    .to_owned(),
                                retry_after: answer.retry_after(),
                            })
                        }
                        Ok(answer) => Ok(HttpAnswer {
                            attempts: attempt,
                            ..answer
                        }),
                        Err(failure) => Err(NoAnswer {
                            attempts: attempt,
                            timed_out: failure.timed_out,
                            detail: failure.detail,
                            retry_after: None,
                        }),
                    };
                }
            }
        }
    }

    /// How long to wait before retrying after `answer`, or `None` if it is final.
    fn retry_wait(
        &self,
        answer: &HttpAnswer,
        policy: RetryPolicy,
        attempt: u32,
    ) -> Option<Duration> {
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            return match answer.retry_after() {
                Some(asked) if asked > self.max_retry_after => None,
                Some(asked) => Some(asked),
                None => Some(self.backoff(attempt)),
            };
        }
        (policy == RetryPolicy::Idempotent && answer.status.is_server_error())
            .then(|| self.backoff(attempt))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// One attempt, bounded as a whole (headers and body) by `request_timeout`.
    async fn attempt(&self, mut request: Request) -> Result<HttpAnswer, AttemptFailure> {
        *request.timeout_mut() = Some(self.request_timeout);
        let exchange = async {
            let response = self.client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(HttpAnswer {
                status,
                headers,
                body,
                attempts: 0,
            })
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(AttemptFailure {
                timed_out: err.is_timeout(),
                connect: err.is_connect(),
                // Without the URL: it may carry query parameters a provider considers secret.
                detail: err.without_url().to_string(),
            }),
            Err(_) => Err(AttemptFailure {
                timed_out: true,
                connect: false,
                detail: format!("no answer within {:?}", self.request_timeout),
            }),
        }
    }
}

/// Why one attempt got no answer.
struct AttemptFailure {
    timed_out: bool,
    /// The connection could not be opened, so the provider never saw the request.
    connect: bool,
    detail: String,
}

/// `Retry-After` in delta-seconds (the form providers use for 429); HTTP dates are ignored.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() -> Result<(), reqwest::Error> {
        let http = ProviderHttp::new(Duration::from_secs(1), 3)?;
        assert_eq!(http.backoff(1), Duration::from_millis(100));
        assert_eq!(http.backoff(2), Duration::from_millis(200));
        assert_eq!(http.backoff(30), Duration::from_secs(2));
        Ok(())
    }

    /// A local server answering each request with the next status of `statuses` (then 200),
    /// and counting requests.
    async fn server(
        statuses: Vec<u16>,
    ) -> Result<(String, std::sync::Arc<std::sync::atomic::AtomicUsize>), std::io::Error> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let app = axum::Router::new().fallback(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let status = statuses.get(n).copied().unwrap_or(200);
            async move {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                (status, [(http::header::RETRY_AFTER, "0")], "body")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/x", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((url, hits))
    }

    #[tokio::test]
    async fn only_what_the_policy_allows_is_retried() -> Result<(), Box<dyn std::error::Error>> {
        use std::sync::atomic::Ordering;
        let http = ProviderHttp::new(Duration::from_secs(5), 2)?.with_backoff(
            Duration::ZERO,
            Duration::ZERO,
            Duration::from_secs(1),
        );

        let (url, hits) = server(vec![500, 503]).await?;
        let answer = http
            .send(
                http.client().post(&url).body("x").build()?,
                RetryPolicy::Idempotent,
            )
            .await?;
        assert_eq!((answer.status.as_u16(), answer.attempts), (200, 3));
        assert_eq!(answer.body, b"body");
        assert_eq!(hits.load(Ordering::SeqCst), 3);

        let (url, hits) = server(vec![500]).await?;
        let request = http.client().post(&url).body("x").build()?;
        let answer = http.send(request, RetryPolicy::NotIdempotent).await?;
        assert_eq!((answer.status.as_u16(), answer.attempts), (500, 1));
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // A 429 means the provider did nothing: retried even when not idempotent.
        let (url, hits) = server(vec![429, 429, 429]).await?;
        let request = http.client().post(&url).body("x").build()?;
        let answer = http.send(request, RetryPolicy::NotIdempotent).await?;
        assert_eq!((answer.status.as_u16(), answer.attempts), (429, 3));
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        Ok(())
    }

    /// A 5xx may have been acted on; the 429 after it says nothing of that attempt, so the
    /// call ends without a definite answer instead of a refusal.
    #[tokio::test]
    async fn a_throttle_after_an_unanswered_attempt_is_no_answer(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let http = ProviderHttp::new(Duration::from_secs(5), 1)?.with_backoff(
            Duration::ZERO,
            Duration::ZERO,
            Duration::from_secs(1),
        );
        let (url, _) = server(vec![502, 429]).await?;
        let request = http.client().post(&url).body("x").build()?;
        let no_answer = http
            .send(request, RetryPolicy::Idempotent)
            .await
            .err()
            .ok_or("a 429 after a 502 must not read as a refusal")?;
        assert_eq!(no_answer.attempts, 2);
        assert!(no_answer.detail.contains("429"), "{}", no_answer.detail);

        // Throttled from the first attempt on: a definite refusal, nothing done.
        let (url, _) = server(vec![429, 429]).await?;
        let request = http.client().post(&url).body("x").build()?;
        let answer = http.send(request, RetryPolicy::Idempotent).await?;
        assert_eq!((answer.status.as_u16(), answer.attempts), (429, 2));
        Ok(())
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("7"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
