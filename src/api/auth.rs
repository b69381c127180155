//! Caller authentication: `authorization: Bearer <api key>` → tenant, or a client certificate
//! (mTLS) whose subjectAltName holds a configured DNS name → tenant.
//!
//! Only SHA-256 digests of keys are configured; a presented key is hashed and compared in
//! constant time against each. A client certificate's chain was verified by the TLS layer
//! against the configured CAs before any request arrives; here only its name is matched.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use crate::config::{ApiKey, ClientCertificate};

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

    /// The tenant of an `authorization` header's value.
    fn tenant_of_header(&self, header: &str) -> Result<Tenant, Status> {
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be Bearer <api key>"))?;
        self.tenant_of(key.trim())
            .ok_or_else(|| Status::unauthenticated("unknown API key"))
    }
}

/// The client certificate identities, each a DNS name and its tenant, in configured order.
#[derive(Clone, Default)]
pub struct CertificateTenants(Arc<Vec<(rustls_pki_types::ServerName<'static>, Tenant)>>);

impl CertificateTenants {
    /// Names that are not DNS names are refused by configuration's validation first.
    pub fn new(identities: &[ClientCertificate]) -> Self {
        let names = identities
            .iter()
            .filter_map(|identity| {
                let name =
                    rustls_pki_types::ServerName::try_from(identity.dns_name.clone()).ok()?;
                Some((name, Tenant(identity.tenant.clone())))
            })
            .collect();
        CertificateTenants(Arc::new(names))
    }

    /// The tenant of the first identity whose name the certificate holds in its
    /// subjectAltName (DNS names; the common name is not read, as in web PKI).
    pub fn tenant_of(&self, certificate: &rustls_pki_types::CertificateDer<'_>) -> Option<Tenant> {
        if self.0.is_empty() {
            return None;
        }
        let certificate = webpki::EndEntityCert::try_from(certificate).ok()?;
        self.0
            .iter()
            .find(|(name, _)| certificate.verify_is_valid_for_subject_name(name).is_ok())
            .map(|(_, tenant)| tenant.clone())
    }
}

/// Who may call, and as which tenant: API keys and client certificates.
#[derive(Clone)]
pub struct Callers {
    pub keys: ApiKeys,
    pub certificates: CertificateTenants,
}

impl Callers {
    /// A tonic interceptor: refuses requests that authenticate as no tenant (or as two), tags
    /// the others with theirs.
    pub fn interceptor(&self) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        let callers = self.clone();
        move |mut request: Request<()>| {
            let tenant = callers.tenant_of(&request)?;
            request.extensions_mut().insert(tenant);
            Ok(request)
        }
    }

    fn tenant_of(&self, request: &Request<()>) -> Result<Tenant, Status> {
        let by_certificate = request.peer_certs().and_then(|chain| {
            chain
                .first()
                .and_then(|leaf| self.certificates.tenant_of(leaf))
        });
        let header = request.metadata().get("authorization");
        match (by_certificate, header) {
            (Some(tenant), None) => Ok(tenant),
            (by_certificate, Some(header)) => {
                let header = header.to_str().map_err(|_| {
                    Status::unauthenticated("authorization must be Bearer <api key>")
                })?;
                let tenant = self.keys.tenant_of_header(header)?;
                if by_certificate.is_some_and(|other| other != tenant) {
                    return Err(Status::unauthenticated(
                        "the client certificate and the API key name different tenants",
                    ));
                }
                Ok(tenant)
            }
            (None, None) => Err(Status::unauthenticated(
                "missing authorization: Bearer <api key>, or a client certificate of a configured identity",
            )),
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
