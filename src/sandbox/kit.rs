//! What every emulator shares: the lock its book lives behind, idempotent replay of stored
//! answers, the decision a capture comes to (and how long it is held back), replies, and the
//! random ids and times providers write.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::Scenario;

/// How long the `Timeout` scenario holds an answer back: longer than any client waits.
pub const TIMEOUT_DELAY: Duration = Duration::from_secs(60);

/// The answer a capture came to and how long to hold it back; `Err` is a refusal that captured
/// nothing (never held back).
pub(super) type Decision = Result<(Reply, Option<Duration>), Reply>;

/// How long a scenario holds back an answer that captured.
pub(super) fn delay_of(scenario: Scenario) -> Option<Duration> {
    (scenario == Scenario::Timeout).then_some(TIMEOUT_DELAY)
}

/// Waits out a held-back answer, with no lock held.
pub(super) async fn held(delay: Option<Duration>) {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
}

/// An emulator's state behind one `std::sync::Mutex`, never held across an `.await`.
#[derive(Default)]
pub(super) struct Locked<T>(Mutex<T>);

impl<T> Locked<T> {
    /// A poisoned lock only means another request panicked; the state itself stays usable.
    pub(super) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A provider's ledger and the answers it stored by idempotency key (for providers that take
/// one). Derefs to the ledger.
#[derive(Default)]
pub(super) struct Book<L> {
    ledger: L,
    replies: HashMap<String, Reply>,
}

impl<L> Book<L> {
    /// The answer stored under `key`, byte for byte; else the one `decide` comes to, stored
    /// under `key` when `kept` says the provider keeps it (it moved money or refused for good;
    /// not an outage, which a retry should meet afresh).
    pub(super) fn replay_or(
        &mut self,
        key: Option<String>,
        kept: impl Fn(StatusCode) -> bool,
        decide: impl FnOnce(&mut L) -> Decision,
    ) -> (Reply, Option<Duration>) {
        if let Some(stored) = key.as_ref().and_then(|key| self.replies.get(key)) {
            return (stored.clone(), None);
        }
        let (reply, delay) = decide(&mut self.ledger).unwrap_or_else(|refusal| (refusal, None));
        if let (Some(key), true) = (key, kept(reply.status)) {
            self.replies.insert(key, reply.clone());
        }
        (reply, delay)
    }
}

impl<L> Deref for Book<L> {
    type Target = L;

    fn deref(&self) -> &L {
        &self.ledger
    }
}

impl<L> DerefMut for Book<L> {
    fn deref_mut(&mut self) -> &mut L {
        &mut self.ledger
    }
}

/// An emulated answer, kept whole so a replay of the same idempotency key is byte for byte the
/// first answer.
#[derive(Clone)]
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
}

impl Reply {
    pub(super) fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            body: Bytes::new(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body.clone()).into_response();
        if !self.body.is_empty() {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        response
    }
}

pub(super) fn json_reply(status: StatusCode, body: &serde_json::Value) -> Reply {
    Reply {
        status,
        body: Bytes::from(body.to_string()),
    }
}

pub(super) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Fills `buf` with random bytes. Should the OS source fail, falls back to hashing the time and
/// a counter: sandbox ids need to be unique, not secret, and a request must not fail for it.
pub(super) fn random_bytes(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in buf.chunks_mut(32) {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let digest = Sha256::digest(format!("{nanos}:{count}").as_bytes());
        chunk.copy_from_slice(&digest[..chunk.len()]);
    }
}

/// `len` random lower-case hex characters.
/// Where the emulators' credentials come from: new random ones at each start, or derived from
/// a seed (`capture-service sandbox --credentials-seed`), so that a long-lived shared sandbox
/// keeps them across restarts and a team's CI can be configured once.
#[derive(Clone, Default)]
pub struct Secrets {
    seed: Option<Vec<u8>>,
}

impl Secrets {
    /// Credentials derived from `seed`: the same seed gives the same credentials.
    pub fn seeded(seed: &str) -> Self {
        Secrets {
            seed: Some(seed.as_bytes().to_vec()),
        }
    }

    /// Fills `out` for the credential named `label`: HMAC-SHA256(seed, label ‖ block number)
    /// blocks with a seed, random bytes without.
    fn fill(&self, label: &str, out: &mut [u8]) {
        use hmac::{Hmac, Mac};
        let Some(seed) = &self.seed else {
            return random_bytes(out);
        };
        for (block, chunk) in (0u32..).zip(out.chunks_mut(32)) {
            let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(seed) else {
                return random_bytes(out);
            };
            mac.update(label.as_bytes());
            mac.update(&block.to_be_bytes());
            let derived = mac.finalize().into_bytes();
            chunk.copy_from_slice(&derived[..chunk.len()]);
        }
    }

    /// `len` hex characters for `label`.
    pub(super) fn hex(&self, label: &str, len: usize) -> String {
        let mut bytes = vec![0_u8; len.div_ceil(2)];
        self.fill(label, &mut bytes);
        let mut text = hex::encode(bytes);
        text.truncate(len);
        text
    }

    /// `len` characters of `alphabet` for `label`.
    pub(super) fn chars(&self, label: &str, alphabet: &[u8], len: usize) -> String {
        let mut bytes = vec![0_u8; len];
        self.fill(label, &mut bytes);
        bytes
            .iter()
            .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
            .collect()
    }

    /// `len` bytes for `label`.
    pub(super) fn bytes(&self, label: &str, len: usize) -> Vec<u8> {
        let mut bytes = vec![0_u8; len];
        self.fill(label, &mut bytes);
        bytes
    }
}

pub(super) fn random_hex(len: usize) -> String {
    let mut bytes = vec![0_u8; len.div_ceil(2)];
    random_bytes(&mut bytes);
    let mut text = hex::encode(bytes);
    text.truncate(len);
    text
}

/// `len` random characters from `alphabet` (ASCII).
pub(super) fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut bytes = vec![0_u8; len];
    random_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect()
}

/// `len` random upper-case letters and digits, the shape of PayPal's ids.
pub(super) fn random_alnum(len: usize) -> String {
    random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", len)
}

/// A random UUID v4 (the shape of Stax's and PaymentOptions' ids).
pub(super) fn random_uuid() -> String {
    let hex = random_hex(32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

pub(super) fn random_digits(len: usize) -> String {
    random_from(b"0123456789", len)
}

/// RFC 3339 UTC with seconds (`2024-05-01T12:00:00Z`), as providers write times; written out by
/// hand to avoid a date crate for one format.
pub(super) fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn seeded_credentials_repeat_and_unseeded_do_not() {
        let seeded = Secrets::seeded("seed-1");
        assert_eq!(
            seeded.hex("stax.api_key", 64),
            Secrets::seeded("seed-1").hex("stax.api_key", 64)
        );
        assert_ne!(
            seeded.hex("stax.api_key", 64),
            seeded.hex("paypal.client_id", 64)
        );
        assert_ne!(
            seeded.hex("stax.api_key", 64),
            Secrets::seeded("seed-2").hex("stax.api_key", 64)
        );
        assert_eq!(seeded.bytes("cybersource.secret", 70).len(), 70);
        let random = Secrets::default();
        assert_ne!(
            random.hex("stax.api_key", 64),
            random.hex("stax.api_key", 64)
        );
    }
    use super::*;

    #[test]
    fn times_are_written_as_rfc3339_utc() {
        let at = |secs| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_735_689_599), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn ids_have_the_requested_shape() {
        let id = random_alnum(17);
        assert_eq!(id.len(), 17);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_eq!(random_hex(13).len(), 13);
        assert!(random_digits(15).chars().all(|c| c.is_ascii_digit()));
    }
}
