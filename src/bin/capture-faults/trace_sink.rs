//! A stand-in OpenTelemetry collector: the services export their spans to it over OTLP/gRPC,
//! and it searches every export for the run's secrets as it arrives (protobuf keeps strings as
//! they are), keeping only the counts.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Request, Response, Status};

/// What the exports held.
#[derive(Default)]
pub struct Scanned {
    pub bytes: AtomicU64,
    /// Secrets found, one count per export that held one.
    pub secrets_found: AtomicU64,
}

/// The collector's trace service, answering every export with an empty (successful) answer.
#[derive(Clone)]
pub struct TraceSink {
    secrets: Arc<Vec<String>>,
    pub scanned: Arc<Scanned>,
}

impl TraceSink {
    /// Serves on `addr` from a task of its own, searching exports for `secrets`.
    pub fn serve(addr: SocketAddr, secrets: Vec<String>) -> TraceSink {
        let sink = TraceSink {
            secrets: Arc::new(secrets),
            scanned: Arc::default(),
        };
        let service = sink.clone();
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve(addr)
                .await;
            if let Err(e) = served {
                eprintln!("capture-faults: the trace sink stopped: {e}");
            }
        });
        sink
    }

    fn take(&self, export: &[u8]) {
        let text = String::from_utf8_lossy(export);
        let found = self
            .secrets
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .count();
        self.scanned
            .bytes
            .fetch_add(export.len() as u64, Ordering::Relaxed);
        self.scanned
            .secrets_found
            .fetch_add(found as u64, Ordering::Relaxed);
    }
}

impl tonic::server::NamedService for TraceSink {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl tower::Service<http::Request<tonic::body::Body>> for TraceSink {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// Every method is taken as `Export`: the service has no other.
    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let sink = self.clone();
        Box::pin(async move {
            Ok(tonic::server::Grpc::new(Raw)
                .unary(Export(sink), request)
                .await)
        })
    }
}

struct Export(TraceSink);

impl tonic::server::UnaryService<Vec<u8>> for Export {
    type Response = Vec<u8>;
    type Future = Ready<Result<Response<Vec<u8>>, Status>>;

    fn call(&mut self, request: Request<Vec<u8>>) -> Self::Future {
        self.0.take(&request.into_inner());
        // An empty ExportTraceServiceResponse: every field is optional.
        ready(Ok(Response::new(Vec::new())))
    }
}

/// Messages as their bytes, undecoded.
#[derive(Clone, Copy)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}
