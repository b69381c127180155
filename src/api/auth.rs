//! Caller authentication: `authorization: Bearer <api key>` → tenant. Only SHA-256 digests of
//! keys are configured; a presented key is hashed and compared in constant time against each.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use crate::config::ApiKey;

/// The tenant a request acts for; every read and write is scoped to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub String);

/// The configured keys.
#[derive(Clone)]
pub struct ApiKeys(Arc<Vec<ApiKey>>);

impl ApiKeys {
    pub fn new(keys: Vec<ApiKey>) -> Self {
        ApiKeys(Arc::new(keys))
    }

    /// The tenant of a presented key, if any key matches.
    pub fn tenant_of(&self, presented: &str) -> Option<Tenant> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every entry is compared, so timing does not tell which one matched.
        let mut found = None;
        for key in self.0.iter() {
            if bool::from(key.sha256.ct_eq(&digest)) && found.is_none() {
                found = Some(Tenant(key.tenant.clone()));
            }
        }
        found
    }

    /// A tonic interceptor: refuses requests without a valid key, tags the others with a tenant.
    pub fn interceptor(&self) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        let keys = self.clone();
        move |mut request: Request<()>| {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    Status::unauthenticated("missing authorization: Bearer <api key>")
                })?;
            let key = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or_else(|| Status::unauthenticated("authorization must be Bearer <api key>"))?;
            let tenant = keys
                .tenant_of(key.trim())
                .ok_or_else(|| Status::unauthenticated("unknown API key"))?;
            request.extensions_mut().insert(tenant);
            Ok(request)
        }
    }
}

/// The shortest API key `hash-key` takes: shorter keys can be guessed.
pub const MIN_API_KEY_CHARS: usize = 16;

/// A key too short to be an API key.
#[derive(Debug, thiserror::Error)]
#[error("an API key must be at least {MIN_API_KEY_CHARS} characters long, not {0}; use a long random key, e.g. `openssl rand -hex 32`")]
pub struct KeyTooShort(usize);

/// The SHA-256 digest of a key, hex-encoded, as configuration expects it.
pub fn key_digest_hex(key: &str) -> Result<String, KeyTooShort> {
    let chars = key.chars().count();
    if chars < MIN_API_KEY_CHARS {
        return Err(KeyTooShort(chars));
    }
    Ok(hex::encode(Sha256::digest(key.as_bytes())))
}

/// The tenant the interceptor attached.
pub fn tenant<T>(request: &Request<T>) -> Result<Tenant, Status> {
    request
        .extensions()
        .get::<Tenant>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no tenant"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_key_maps_to_its_tenant() {
        let digest: [u8; 32] = Sha256::digest(b"secret-key").into();
        let keys = ApiKeys::new(vec![ApiKey {
            tenant: "shop".into(),
            sha256: digest,
        }]);
        assert_eq!(keys.tenant_of("secret-key"), Some(Tenant("shop".into())));
        assert_eq!(keys.tenant_of("secret-kez"), None);
        assert_eq!(
            key_digest_hex("0123456789abcdef").map(|d| d.len()).ok(),
            Some(64)
        );
        assert!(key_digest_hex("x").is_err());
    }
}
