//! TLS on the gRPC port, and client certificates (mTLS) as a way to authenticate beside API
//! keys, with a CA made in the test: a certificate whose subjectAltName holds a configured DNS
//! name acts as that name's tenant; one of an unconfigured name, of another CA, or none at all
//! authenticates as nobody; a certificate and an API key of different tenants are refused.

use capture_service::config::{ClientCertificate, GrpcTls};
use capture_service::proto::capture_service_client::CaptureServiceClient;
use capture_service::proto::{CaptureRequest, GetCaptureRequest};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request};

use crate::common::*;
use crate::on_both_databases;

on_both_databases!(client_certificates_authenticate_as_their_tenant,);

const TENANT_A_NAME: &str = "orders.tenant-a.internal";
const TENANT_B_NAME: &str = "billing.tenant-b.internal";

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A CA of the test's own, and certificates it signs for `names`.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> Result<TestCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        Ok(TestCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn sign(&self, names: &[&str]) -> Result<Pem, rcgen::Error> {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// A client of `app` over TLS (trusting `ca`), presenting `identity` if any.
async fn client(
    app: &TestApp,
    ca: &str,
    identity: Option<&Pem>,
) -> Result<CaptureServiceClient<Channel>, Box<dyn std::error::Error>> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(Identity::from_pem(&identity.cert, &identity.key));
    }
    let channel = Channel::from_shared(format!("https://{}", app.grpc_addr))?
        .tls_config(tls)?
        .connect_lazy();
    Ok(CaptureServiceClient::new(channel))
}

fn with_key<T>(message: T, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(key) = key {
        if let Ok(value) = MetadataValue::try_from(format!("Bearer {key}")) {
            request.metadata_mut().insert("authorization", value);
        }
    }
    request
}

async fn client_certificates_authenticate_as_their_tenant(db: Db) -> TestResult {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new("capture-service test CA")?;
    let server = ca.sign(&["localhost"])?;
    let tenant_a = ca.sign(&[TENANT_A_NAME])?;
    let tenant_b = ca.sign(&[TENANT_B_NAME])?;
    let unconfigured = ca.sign(&["someone.else.internal"])?;
    // The right name, signed by a CA the service does not trust.
    let rogue = TestCa::new("rogue CA")?.sign(&[TENANT_A_NAME])?;
    let file = |name: &str, text: &str| -> std::io::Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    };
    let tls = GrpcTls {
        cert_file: file("server.pem", &server.cert)?,
        key_file: file("server.key", &server.key)?,
        client_ca_file: Some(file("clients-ca.pem", &ca.pem())?),
    };
    let app = TestApp::spawn_with(db, move |config| {
        config.grpc_tls = Some(tls);
        config.client_certificates = vec![
            ClientCertificate {
                dns_name: TENANT_A_NAME.into(),
                tenant: "tenant-a".into(),
            },
            ClientCertificate {
                dns_name: TENANT_B_NAME.into(),
                tenant: "tenant-b".into(),
            },
        ];
    })
    .await?;
    let ca_pem = ca.pem();
    let auth = app.authorize("USD", "10.00", "APPROVE").await?;
    let capture = |request_id: &str| CaptureRequest {
        request_id: request_id.to_owned(),
        ..paypal_capture(&auth, usd("4.00"))
    };

    // Tenant A's certificate, no API key: captures as tenant A.
    let mut as_a = client(&app, &ca_pem, Some(&tenant_a)).await?;
    let taken = as_a
        .capture(with_key(capture("mtls-a-1"), None))
        .await?
        .into_inner()
        .capture
        .ok_or("no capture")?;
    // Tenant A's API key (over TLS, no certificate) sees it: it is tenant A's.
    let mut anonymous = client(&app, &ca_pem, None).await?;
    let get = |id: &str| GetCaptureRequest { id: id.to_owned() };
    let seen = anonymous
        .get_capture(with_key(get(&taken.id), Some(TENANT_A_KEY)))
        .await?
        .into_inner();
    assert_eq!(seen.capture.map(|c| c.id), Some(taken.id.clone()));
    // Tenant B's certificate does not.
    let mut as_b = client(&app, &ca_pem, Some(&tenant_b)).await?;
    let status = as_b
        .get_capture(with_key(get(&taken.id), None))
        .await
        .err()
        .ok_or("tenant B read tenant A's capture")?;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // A certificate of an unconfigured name, or none, authenticates as nobody.
    let mut nobody = client(&app, &ca_pem, Some(&unconfigured)).await?;
    for (who, client) in [
        ("unconfigured name", &mut nobody),
        ("no certificate", &mut anonymous),
    ] {
        let status = client
            .get_capture(with_key(get(&taken.id), None))
            .await
            .err()
            .ok_or(format!("{who}: answered"))?;
        assert_eq!(status.code(), Code::Unauthenticated, "{who}: {status:?}");
    }
    // A certificate and an API key naming different tenants: refused.
    let status = as_a
        .get_capture(with_key(get(&taken.id), Some(TENANT_B_KEY)))
        .await
        .err()
        .ok_or("certificate A with key B answered")?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // A certificate of another CA: the handshake fails, nothing is answered.
    let mut rogue_client = client(&app, &ca_pem, Some(&rogue)).await?;
    let refused = rogue_client
        .capture(with_key(capture("mtls-rogue-1"), None))
        .await
        .err()
        .ok_or("a certificate of an untrusted CA was served")?;
    assert_ne!(refused.code(), Code::Ok);
    // Plaintext to the TLS port: no answer.
    let plain = Channel::from_shared(format!("http://{}", app.grpc_addr))?.connect_lazy();
    let refused = CaptureServiceClient::new(plain)
        .get_capture(with_key(get(&taken.id), Some(TENANT_A_KEY)))
        .await;
    assert!(refused.is_err(), "plaintext was served: {refused:?}");

    // Only tenant A's capture was made.
    let mut as_a_listing = client(&app, &ca_pem, Some(&tenant_a)).await?;
    let page = as_a_listing
        .list_captures(with_key(Default::default(), None))
        .await?
        .into_inner();
    let ids: Vec<&str> = page.captures.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [taken.id.as_str()]);
    app.stop().await
}
