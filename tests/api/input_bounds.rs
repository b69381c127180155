//! Input the service cannot hold or echo: oversized requests are refused whole, errors stay
//! small whatever the request held, NUL bytes never reach the database, and amounts are
//! bounded and in the documented syntax.

use tonic::Code;
use tonic_types::StatusExt;

use crate::common::{
    assert_code, bad_fields, error_of, money, paypal_capture, usd, Db, TestApp, TestResult,
    TENANT_A_KEY,
};
use crate::on_both_databases;
use capture_service::proto;

/// What a gRPC error puts in the trailers: its message and its encoded details.
fn trailer_bytes(status: &tonic::Status) -> usize {
    status.message().len() + status.details().len() * 4 / 3
}

/// Default gRPC clients refuse trailers past 16 KiB; the service stays far below.
const SMALL_TRAILER: usize = 8 * 1024;

/// Sends `request` (a variation of a valid capture) and returns its error, asserting that the
/// error's trailers stay under `limit` bytes.
async fn small_error(
    change: impl FnOnce(&mut proto::CaptureRequest),
    limit: usize,
) -> Result<tonic::Status, Box<dyn std::error::Error>> {
    let app = TestApp::spawn(Db::Sqlite).await?;
    let mut request = paypal_capture("0VF52814937998046", usd("1.00"));
    change(&mut request);
    let status = error_of(app.capture(request).await)?;
    assert!(
        trailer_bytes(&status) < limit,
        "{} bytes",
        trailer_bytes(&status)
    );
    Ok(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_whole() -> TestResult {
    // 4 MB: just under tonic's default decoding limit, so only the service's own limit stops it.
    let status = small_error(|r| r.amount = money(&"X".repeat(4_000_000), "1.00"), 1024).await?;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_quote_bad_values_by_a_short_prefix() -> TestResult {
    // Under the request limit, but far more than any error should carry.
    let status = small_error(
        |r| {
            r.amount = money(&"X".repeat(150_000), "1.00");
            r.note_to_payer = "n".repeat(50_000);
        },
        1024,
    )
    .await?;
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert_eq!(
        bad_fields(&status),
        ["amount.currency_code", "note_to_payer"]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bad_metadata_keys_make_one_small_error() -> TestResult {
    let status = small_error(
        |r| {
            r.metadata = (0..10_000)
                .map(|i| (format!("bad key {i}"), "v".to_owned()))
                .collect();
        },
        1024,
    )
    .await?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["metadata"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_twenty_violations_are_listed_and_the_rest_counted() -> TestResult {
    let fee = proto::PlatformFee {
        amount: money(&"Y".repeat(300), "1.00"),
        payee: Some(proto::FeePayee {
            payee: Some(proto::fee_payee::Payee::EmailAddress("@".repeat(300))),
        }),
    };
    let status = small_error(|r| r.platform_fees = vec![fee; 200], SMALL_TRAILER).await?;
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .ok_or("no BadRequest")?
        .field_violations;
    assert_eq!(violations.len(), 21, "20 listed and one 'and N more'");
    assert!(
        violations[20].description.contains("380 more"),
        "{:?}",
        violations[20]
    );
    assert!(
        status.message().ends_with("and 380 more"),
        "{}",
        status.message()
    );
    Ok(())
}

async fn nul_bytes_in_ids_and_filters_are_invalid_arguments(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let get = app
        .get(TENANT_A_KEY, "cap_01JDQ3W5X8K2M4N6P8R0S2T4\0\0")
        .await;
    assert_eq!(bad_fields(&error_of(get)?), ["id"]);
    let get = app.get(TENANT_A_KEY, "\0").await;
    assert_code(&get, Code::InvalidArgument);
    let list = app
        .list(
            TENANT_A_KEY,
            proto::ListCapturesRequest {
                authorization_id: "AUTH\0".into(),
                invoice_id: "INV\0".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        bad_fields(&error_of(list)?),
        ["authorization_id", "invoice_id"]
    );
    // A well-formed id of no capture is still NOT_FOUND.
    let missing = app
        .get(TENANT_A_KEY, "cap_01JDQ3W5X8K2M4N6P8R0S2T4V6")
        .await;
    assert_code(&missing, Code::NotFound);
    Ok(())
}

async fn amounts_the_ledger_cannot_sum_are_refused_and_the_largest_still_add_up(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    // 2^63 - 1 cents: once accepted, after which the ledger's sum overflowed.
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let status = error_of(
        app.capture(paypal_capture(&auth, usd("92233720368547758.07")))
            .await,
    )?;
    assert_eq!(bad_fields(&status), ["amount.value"]);
    assert!(status.message().len() < 200);

    // Large amounts up to the bound still work, and the ledger adds them up.
    let big = app.authorize("USD", "9999999999999.99", "APPROVE").await?;
    for _ in 0..2 {
        let capture = app
            .captured(paypal_capture(&big, usd("4999999999999.99")))
            .await?;
        assert_eq!(capture.status(), proto::CaptureStatus::Completed);
    }
    let over = app.capture(paypal_capture(&big, usd("0.02"))).await;
    assert_code(&over, Code::FailedPrecondition);
    Ok(())
}

async fn amounts_outside_the_documented_syntax_are_refused(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    for value in ["1.", ".5", "00001.00", "01", "+1", "1e2", " 1"] {
        let result = app.capture(paypal_capture(&auth, usd(value))).await;
        assert_eq!(
            bad_fields(&error_of(result)?),
            ["amount.value"],
            "{value:?}"
        );
    }
    let listed = app
        .list(TENANT_A_KEY, proto::ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty(), "a refused amount was recorded");
    let capture = app.captured(paypal_capture(&auth, usd("0.50"))).await?;
    assert_eq!(capture.amount.map(|m| m.value).as_deref(), Some("0.50"));
    Ok(())
}

on_both_databases!(
    nul_bytes_in_ids_and_filters_are_invalid_arguments,
    amounts_the_ledger_cannot_sum_are_refused_and_the_largest_still_add_up,
    amounts_outside_the_documented_syntax_are_refused,
);

/// Passes bytes through as they are: a client that sends what no generated stub would.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = bytes::Buf::chunk(buf).to_vec();
        bytes::Buf::advance(buf, bytes.len());
        Ok(Some(bytes))
    }
}

/// A message that does not decode is the caller's mistake on every RPC: `INVALID_ARGUMENT`
/// saying so, never `INTERNAL` (which README keeps for bugs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_are_not_valid_protobuf_are_invalid_arguments() -> TestResult {
    let app = TestApp::spawn(Db::Sqlite).await?;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))?
        .connect()
        .await?;
    let not_utf8_authorization_id = vec![0x1a, 0x02, 0xff, 0xfe];
    let broken_varint = vec![0x08, 0xff];
    for (method, body, streaming) in [
        ("Capture", &not_utf8_authorization_id, false),
        ("Capture", &broken_varint, false),
        ("GetCapture", &broken_varint, false),
        ("ListCaptures", &broken_varint, false),
        ("WatchCaptures", &broken_varint, true),
    ] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await?;
        let mut request = tonic::Request::new(body.clone());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {TENANT_A_KEY}").parse()?);
        let path: http::uri::PathAndQuery =
            format!("/capture.v1.CaptureService/{method}").parse()?;
        let status = if streaming {
            match grpc.server_streaming(request, path, RawCodec).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    match stream.message().await {
                        Err(status) => status,
                        Ok(message) => return Err(format!("{method}: {message:?}").into()),
                    }
                }
                Err(status) => status,
            }
        } else {
            match grpc.unary(request, path, RawCodec).await {
                Err(status) => status,
                Ok(answer) => return Err(format!("{method}: {answer:?}").into()),
            }
        };
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{method}: {status:?}"
        );
        assert!(
            status.message().contains("not a valid protobuf"),
            "{status:?}"
        );
    }
    let listed = app
        .list(TENANT_A_KEY, proto::ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());
    app.stop().await
}
