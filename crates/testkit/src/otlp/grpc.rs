//! OTLP/gRPC: the `Export` methods of `TraceService`, `LogsService` and
//! `MetricsService`, served by tonic.
//!
//! The request message is taken as raw bytes and decoded here rather than by
//! the generated servers, whose codec answers a body that does not decode with
//! `INTERNAL` before any handler sees it; a collector answers
//! `INVALID_ARGUMENT`, and the receiver counts it.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::{Refusal, Shared, Signal, Transport};
use crate::server::ServerTask;

const TRACES_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const METRICS_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// Binds a loopback port and serves the three export methods on it.
pub(super) async fn start(shared: Arc<Shared>) -> std::io::Result<ServerTask> {
    let (listener, addr) = ServerTask::bind().await?;
    let service = Collector { shared };
    Ok(ServerTask::spawn(addr, move |stop| async move {
        let served = tonic::transport::Server::builder()
            .serve_with_incoming_shutdown(service, TcpIncoming::from(listener), async move {
                // A dropped sender means the same as a sent signal.
                let _ = stop.await;
            })
            .await;
        if let Err(error) = served {
            eprintln!("testkit otlp grpc server on {addr} stopped: {error}");
        }
    }))
}

/// Routes a gRPC call to the export method its path names.
#[derive(Debug, Clone)]
struct Collector {
    shared: Arc<Shared>,
}

impl Service<http::Request<tonic::body::Body>> for Collector {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let signal = match request.uri().path() {
            TRACES_EXPORT => Signal::Traces,
            LOGS_EXPORT => Signal::Logs,
            METRICS_EXPORT => Signal::Metrics,
            other => {
                let status = Status::unimplemented(format!("no method {other}"));
                return Box::pin(ready(Ok(status.into_http())));
            }
        };
        let export = Export {
            shared: self.shared.clone(),
            signal,
        };
        Box::pin(async move { Ok(Grpc::new(RawCodec).unary(export, request).await) })
    }
}

/// One export method.
struct Export {
    shared: Arc<Shared>,
    signal: Signal,
}

impl UnaryService<Bytes> for Export {
    type Response = Bytes;
    type Future = Ready<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let outcome = match self
            .shared
            .accept(self.signal, request.get_ref(), Transport::Grpc)
        {
            Ok(response) => Ok(Response::new(Bytes::from(response))),
            Err(Refusal::Unavailable) => Err(Status::unavailable("collector unavailable")),
            Err(Refusal::Malformed(error)) => Err(Status::invalid_argument(format!(
                "export request does not decode: {error}"
            ))),
        };
        ready(outcome)
    }
}

/// Passes messages through as bytes.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
