//! Cybersource HTTP Signature authentication with a shared secret key (providers.md):
//!
//! ```text
//! Digest:    SHA-256=<base64(sha256(body))>                       (requests with a body only)
//! Signature: keyid="<key id>", algorithm="HmacSHA256",
//!            headers="host date request-target digest v-c-merchant-id",
//!            signature="<base64(hmac_sha256(base64decode(secret), signing string))>"
//! ```
//!
//! The signing string is one `name: value` line per entry of `headers`, in that order, joined by
//! `\n` without a trailing newline; `request-target` is `<lower-case method> <path>` (written
//! `request-target`, not `(request-target)`). A GET has no body, hence no `digest`.
//!
//! Nothing here logs: every value is either a credential or derived from one.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// The shared secret decoded from the base64 Cybersource issues it in.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// `None` if `secret` is not base64 (a configuration error; nothing can be signed).
    pub fn decode(secret: &Secret) -> Option<Self> {
        BASE64
            .decode(secret.expose().trim())
            .ok()
            .filter(|key| !key.is_empty())
            .map(SigningKey)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// What one request is signed over. `body` is `None` for a GET.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// `host[:port]` exactly as sent in `Host`.
    pub host: &'a str,
    /// Path (and `?query`, if any) exactly as sent.
    pub path: &'a str,
    /// RFC 7231 date exactly as sent in `Date`.
    pub date: &'a str,
    pub merchant_id: &'a str,
    pub body: Option<&'a [u8]>,
}

/// The authentication headers of one request.
pub struct SignatureHeaders {
    /// `Digest`, for requests with a body.
    pub digest: Option<String>,
    /// `Signature`.
    pub signature: String,
}

/// `SHA-256=<base64(sha256(body))>`.
pub fn digest(body: &[u8]) -> String {
    format!("SHA-256={}", BASE64.encode(Sha256::digest(body)))
}

/// The header names signed, in order: with `digest` when there is a body.
pub fn signed_header_names(has_body: bool) -> &'static str {
    if has_body {
        "host date request-target digest v-c-merchant-id"
    } else {
        "host date request-target v-c-merchant-id"
    }
}

/// The signing string of `request` (its `Digest` is `digest`, when it has a body).
pub fn signing_string(request: &SignedRequest<'_>, digest: Option<&str>) -> String {
    let mut lines = vec![
        format!("host: {}", request.host),
        format!("date: {}", request.date),
        format!(
            "request-target: {} {}",
            request.method.to_ascii_lowercase(),
            request.path
        ),
    ];
    if let Some(digest) = digest {
        lines.push(format!("digest: {digest}"));
    }
    lines.push(format!("v-c-merchant-id: {}", request.merchant_id));
    lines.join("\n")
}

/// Signs `request` with `key` under `key_id`.
pub fn sign(key: &SigningKey, key_id: &str, request: &SignedRequest<'_>) -> SignatureHeaders {
    let digest = request.body.map(digest);
    let text = signing_string(request, digest.as_deref());
    let signature = hmac_base64(&key.0, text.as_bytes());
    SignatureHeaders {
        signature: format!(
            r#"keyid="{key_id}", algorithm="HmacSHA256", headers="{}", signature="{signature}""#,
            signed_header_names(digest.is_some())
        ),
        digest,
    }
}

fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            BASE64.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "yBJxy6LjM2TmcPGu+GaJrHtkke25fPpUX+UY6/L/1tE=";
    const DATE: &str = "Thu, 18 Jul 2019 22:18:03 GMT";
    const BODY: &[u8] = br#"{"clientReferenceInformation":{"code":"cap_1"}}"#;

    fn request(body: Option<&[u8]>) -> SignedRequest<'_> {
        SignedRequest {
            method: if body.is_some() { "POST" } else { "GET" },
            host: "apitest.cybersource.com",
            path: "/pts/v2/payments/6481692924466004003001/captures",
            date: DATE,
            merchant_id: "testrest",
            body,
        }
    }

    /// The expected values, computed here from the specification with the crates directly.
    fn expected_signature(signing_string: &str) -> Result<String, Box<dyn std::error::Error>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&BASE64.decode(SECRET)?)?;
        mac.update(signing_string.as_bytes());
        Ok(BASE64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn a_post_is_signed_over_host_date_target_digest_and_merchant(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let key = SigningKey::decode(&Secret::new(SECRET)).ok_or("key")?;
        let headers = sign(
            &key,
            "08c94330-f618-42a3-b09d-e1e43be5efda",
            &request(Some(BODY)),
        );
        let digest = format!("SHA-256={}", BASE64.encode(Sha256::digest(BODY)));
        assert_eq!(headers.digest.as_deref(), Some(digest.as_str()));
        let text = format!(
            "host: apitest.cybersource.com\ndate: {DATE}\nrequest-target: post \
             /pts/v2/payments/6481692924466004003001/captures\ndigest: {digest}\n\
             v-c-merchant-id: testrest"
        );
        assert_eq!(
            headers.signature,
            format!(
                "keyid=\"08c94330-f618-42a3-b09d-e1e43be5efda\", algorithm=\"HmacSHA256\", \
                 headers=\"host date request-target digest v-c-merchant-id\", \
                 signature=\"{}\"",
                expected_signature(&text)?
            )
        );
        // The same vector, computed outside Rust (Python's hmac/hashlib) and written down.
        assert_eq!(
            headers.digest.as_deref(),
            Some("SHA-256=EsP8/di89+w35igpqE0ksUmmC6WixhyBE+9c1V7RYFI=")
        );
        assert!(headers
            .signature
            .ends_with("signature=\"suPBUTHOzb+t1/T162C3R4QJSOWSbEL20VqxX3TPzjM=\""));
        Ok(())
    }

    #[test]
    fn a_get_has_no_digest_and_signs_four_headers() -> Result<(), Box<dyn std::error::Error>> {
        let key = SigningKey::decode(&Secret::new(SECRET)).ok_or("key")?;
        let headers = sign(&key, "k", &request(None));
        assert_eq!(headers.digest, None);
        let text = format!(
            "host: apitest.cybersource.com\ndate: {DATE}\nrequest-target: get \
             /pts/v2/payments/6481692924466004003001/captures\nv-c-merchant-id: testrest"
        );
        assert!(headers
            .signature
            .contains("headers=\"host date request-target v-c-merchant-id\""));
        assert!(headers
            .signature
            .ends_with(&format!("signature=\"{}\"", expected_signature(&text)?)));
        Ok(())
    }

    #[test]
    fn a_secret_that_is_not_base64_is_refused() {
        assert!(SigningKey::decode(&Secret::new("not base64!")).is_none());
        assert!(SigningKey::decode(&Secret::new("")).is_none());
    }

    #[test]
    fn the_digest_of_an_empty_body_is_the_known_sha256() {
        assert_eq!(
            digest(b""),
            "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
