//! How the emulated Cybersource checks an HTTP Signature: it rebuilds the signing string from
//! the headers it *received*, in the order the `Signature` header lists them, and recomputes the
//! HMAC with its own copy of the shared secret. Written apart from the connector's signer, so a
//! signer that drifts from the documented scheme fails against the emulator.

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::super::kit::header_str;

/// How far `Date` may be from the emulator's clock.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The credentials the emulator accepts.
pub(super) struct Credentials {
    pub merchant_id: String,
    pub key_id: String,
    /// The shared secret, decoded.
    pub secret: Vec<u8>,
}

/// Why a request is not authenticated (kept for the emulator's debug log only).
pub(super) type Refused = &'static str;

/// Checks the signature of a request for `method` (`post`/`get`) on `target` (path and query as
/// received); `body` is the request body of a POST.
pub(super) fn verify(
    credentials: &Credentials,
    method: &str,
    target: &str,
    headers: &HeaderMap,
    body: Option<&Bytes>,
) -> Result<(), Refused> {
    let merchant = header_str(headers, "v-c-merchant-id").ok_or("no v-c-merchant-id")?;
    if merchant != credentials.merchant_id {
        return Err("unknown merchant");
    }
    let date = header_str(headers, "date").ok_or("no date")?;
    let sent = httpdate::parse_http_date(date).map_err(|_| "unreadable date")?;
    let now = SystemTime::now();
    let skew = now
        .duration_since(sent)
        .or_else(|_| sent.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_CLOCK_SKEW {
        return Err("date too far from now");
    }
    let params = parse_signature(header_str(headers, "signature").ok_or("no signature")?);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or("incomplete signature")
    };
    if param("keyid")? != credentials.key_id {
        return Err("unknown key id");
    }
    if param("algorithm")? != "HmacSHA256" {
        return Err("unsupported algorithm");
    }
    let expected_headers = match body {
        Some(_) => "host date request-target digest v-c-merchant-id",
        None => "host date request-target v-c-merchant-id",
    };
    let signed = param("headers")?;
    if signed != expected_headers {
        return Err("unexpected signed headers");
    }
    if let Some(body) = body {
        let digest = format!("SHA-256={}", BASE64.encode(Sha256::digest(body)));
        if header_str(headers, "digest") != Some(digest.as_str()) {
            return Err("digest does not match the body");
        }
    }
    let mut lines = Vec::new();
    for name in signed.split(' ') {
        let value = match name {
            "request-target" => format!("{method} {target}"),
            other => header_str(headers, other)
                .ok_or("a signed header is missing")?
                .to_owned(),
        };
        lines.push(format!("{name}: {value}"));
    }
    let claimed = BASE64
        .decode(param("signature")?)
        .map_err(|_| "signature is not base64")?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&credentials.secret).map_err(|_| "unusable secret")?;
    mac.update(lines.join("\n").as_bytes());
    mac.verify_slice(&claimed).map_err(|_| "signature mismatch")
}

/// `keyid="…", algorithm="…", headers="…", signature="…"` as name/value pairs.
fn parse_signature(header: &str) -> Vec<(&str, &str)> {
    header
        .split(',')
        .filter_map(|part| {
            let (name, value) = part.trim().split_once('=')?;
            let value = value.strip_prefix('"')?.strip_suffix('"')?;
            Some((name.trim(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_parameters_are_read_with_base64_padding_intact() {
        let params = parse_signature(
            r#"keyid="k-1", algorithm="HmacSHA256", headers="host date", signature="ab+/c=""#,
        );
        assert_eq!(
            params,
            [
                ("keyid", "k-1"),
                ("algorithm", "HmacSHA256"),
                ("headers", "host date"),
                ("signature", "ab+/c=")
            ]
        );
    }
}
