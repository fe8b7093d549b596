//! Sending OTLP requests ([`OtlpClient`]), and the span exporter built on it: a batch of
//! finished spans encoded once into an OTLP request ([`encode`](super::encode)) and
//! sent over gRPC (tonic, the bytes passed through as they are) or HTTP/protobuf (a
//! blocking reqwest client), on the batch processor's thread. The metrics exporter
//! sends its requests the same way.
//!
//! A gRPC client has a single-threaded runtime of its own, driven only by the thread
//! that sends: the HTTP/2 connection is written and read there, never on the bot's
//! runtime, so an export neither takes a worker from the bot's tasks nor wakes one.
//!
//! It behaves as `opentelemetry-otlp`'s exporter does: the same headers and user agent,
//! the endpoint's timeout as the budget for one export retries included, and the same
//! retry policy (three retries, exponential backoff from 100 ms up to 1.6 s with up to
//! 100 ms of jitter, the collector's throttling hints honoured) and classification of
//! what is worth retrying. A retry reuses the encoded bytes.

use std::fmt;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf as _, BufMut as _, Bytes};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic_types::StatusExt as _;

use super::batch::Finished;
use super::config::{OtlpEndpoint, OtlpProtocol, Signal, TelemetryError, invalid};
use super::encode::{self, EncodedResource};

/// The user agent `opentelemetry-otlp` sends, so collectors see the same client.
const USER_AGENT: &str = "OTel-OTLP-Exporter-Rust/0.33.1";

/// Largest request body sent over HTTP, as in `opentelemetry-otlp`.
const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;

/// Longest wait a collector's throttling hint can impose.
const MAX_THROTTLE: Duration = Duration::from_secs(30);

/// Longest delay read from a hint before it is capped.
const MAX_HINT: Duration = Duration::from_secs(600);

/// Retries after the first attempt, and the backoff between them.
const MAX_RETRIES: usize = 3;
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER: Duration = Duration::from_millis(100);

/// Exports spans to one OTLP endpoint.
pub(crate) struct OtlpSpanExporter {
    resource: EncodedResource,
    /// The instrumentation scope of the span layer's spans.
    scope: InstrumentationScope,
    client: OtlpClient,
    /// The size of the last request, to size the next one's buffer.
    last_size: std::sync::atomic::AtomicUsize,
    /// The location attributes of the callsites seen, encoded.
    locations: std::sync::Mutex<encode::Locations>,
    shut_down: AtomicBool,
}

/// Sends encoded requests of one signal to one OTLP endpoint, with the endpoint's time
/// budget and `opentelemetry-otlp`'s retry policy.
pub(crate) struct OtlpClient {
    signal: Signal,
    transport: Transport,
    timeout: Duration,
}

enum Transport {
    Grpc {
        channel: Channel,
        metadata: MetadataMap,
        /// Where the channel's connection lives; driven by [`OtlpClient::export_blocking`].
        runtime: OwnRuntime,
    },
    Http {
        client: reqwest::blocking::Client,
        url: String,
        headers: HeaderMap,
    },
}

impl fmt::Debug for OtlpSpanExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSpanExporter")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.transport {
            Transport::Grpc { .. } => OtlpProtocol::Grpc,
            Transport::Http { .. } => OtlpProtocol::HttpProtobuf,
        };
        f.debug_struct("OtlpClient")
            .field("signal", &self.signal)
            .field("protocol", &protocol)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OtlpSpanExporter {
    /// An exporter for `endpoint` (validated already), sending `resource` with every
    /// request and `scope` as the span layer's instrumentation scope.
    pub(crate) fn new(
        endpoint: &OtlpEndpoint,
        resource: &Resource,
        scope: InstrumentationScope,
    ) -> Result<Self, TelemetryError> {
        Ok(Self {
            resource: EncodedResource::new(resource),
            scope,
            client: OtlpClient::new(endpoint, Signal::Traces)?,
            last_size: std::sync::atomic::AtomicUsize::new(0),
            locations: std::sync::Mutex::default(),
            shut_down: AtomicBool::new(false),
        })
    }
}

impl OtlpClient {
    /// A client for `endpoint` (validated already) and `signal`.
    pub(crate) fn new(endpoint: &OtlpEndpoint, signal: Signal) -> Result<Self, TelemetryError> {
        let transport = match endpoint.protocol {
            OtlpProtocol::Grpc => grpc(endpoint, signal)?,
            OtlpProtocol::HttpProtobuf => http(endpoint, signal)?,
        };
        Ok(Self {
            signal,
            transport,
            timeout: endpoint.timeout,
        })
    }

    /// Sends one encoded request with retries, blocking the calling thread (an
    /// exporter's own) until done or out of time.
    pub(crate) fn export_blocking(&self, body: Vec<u8>) -> OTelSdkResult {
        if matches!(self.transport, Transport::Http { .. }) && body.len() > MAX_REQUEST_BODY {
            return Err(OTelSdkError::InternalFailure(format!(
                "the request body is {} bytes, more than the {MAX_REQUEST_BODY} allowed",
                body.len()
            )));
        }
        let body = Bytes::from(body);
        let sent = match &self.transport {
            // The connection's tasks run on this thread while it waits for the answer.
            Transport::Grpc { runtime, .. } => runtime.block_on(self.with_retries(&body)),
            // reqwest's blocking client waits on its own runtime's thread.
            Transport::Http { .. } => futures_executor::block_on(self.with_retries(&body)),
        };
        sent.map_err(|failure| OTelSdkError::InternalFailure(failure.message))
    }

    /// One attempt: `Ok`, or why it failed and whether to try again.
    async fn send(&self, body: &Bytes) -> Result<(), Failure> {
        match &self.transport {
            Transport::Grpc {
                channel, metadata, ..
            } => {
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                grpc.ready().await.map_err(|error| {
                    Failure::grpc(&tonic::Status::unknown(format!(
                        "Service was not ready: {error}"
                    )))
                })?;
                let mut request = tonic::Request::new(body.clone());
                *request.metadata_mut() = metadata.clone();
                let (service, path) = self.signal.grpc_method();
                request
                    .extensions_mut()
                    .insert(tonic::GrpcMethod::new(service, "Export"));
                grpc.unary::<Bytes, (), _>(request, PathAndQuery::from_static(path), PreEncoded)
                    .await
                    .map(|_| ())
                    .map_err(|status| Failure::grpc(&status))
            }
            Transport::Http {
                client,
                url,
                headers,
            } => {
                let response = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
                    .headers(headers.clone())
                    .body(body.clone())
                    .send()
                    .map_err(|_| Failure {
                        retry: Retry::Backoff,
                        message: "HTTP export failed: network error".to_owned(),
                    })?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|seconds| Duration::from_secs(seconds).min(MAX_HINT));
                Err(Failure {
                    retry: http_retry(status.as_u16(), retry_after),
                    message: format!("HTTP export failed with status code: {}", status.as_u16()),
                })
            }
        }
    }
}

impl OtlpSpanExporter {
    /// Exports one batch: encodes it, then sends it with retries, blocking the
    /// calling thread (the batch processor's) until done or out of time.
    pub(crate) fn export(&self, batch: &[Finished]) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let mut body = Vec::with_capacity(self.last_size.load(Ordering::Relaxed) * 9 / 8 + 1024);
        let mut locations = self
            .locations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        encode::trace_request(
            &self.resource,
            &self.scope,
            &mut locations,
            batch,
            &mut body,
        );
        drop(locations);
        self.last_size.store(body.len(), Ordering::Relaxed);
        self.client.export_blocking(body)
    }

    /// Exports guildscope's own spans, `spans` being their encoded `Span` messages.
    pub(crate) fn export_own(&self, spans: &[u8]) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let mut body = Vec::with_capacity(spans.len() + 1024);
        encode::own_request(&self.resource, &self.scope, spans, &mut body);
        self.client.export_blocking(body)
    }

    /// Refuses further exports.
    pub(crate) fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Relaxed);
    }
}

impl OtlpClient {
    /// Sends `body`, retrying what is worth retrying within the export's time budget.
    async fn with_retries(&self, body: &Bytes) -> Result<(), Failure> {
        let started = Instant::now();
        let mut attempt = 0;
        let mut delay = INITIAL_DELAY;
        let mut delay_cap = MAX_DELAY;
        loop {
            let failure = match self.send(body).await {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            if started.elapsed() >= self.timeout || attempt >= MAX_RETRIES {
                return Err(failure);
            }
            match failure.retry {
                Retry::Never => return Err(failure),
                Retry::Backoff => {}
                Retry::After(hint) => {
                    let hint = hint.min(MAX_THROTTLE);
                    if hint > delay_cap {
                        delay_cap = MAX_THROTTLE;
                    }
                    if !hint.is_zero() {
                        delay = delay.max(hint);
                    }
                }
            }
            attempt += 1;
            let sleep = delay.saturating_add(jitter()).min(delay_cap);
            if sleep >= self.timeout.saturating_sub(started.elapsed()) {
                return Err(failure);
            }
            // The exporter's own thread: blocking it delays only exports.
            std::thread::sleep(sleep);
            delay = delay.saturating_mul(2).min(delay_cap);
        }
    }
}

/// Up to [`MAX_JITTER`], at millisecond resolution.
fn jitter() -> Duration {
    // Every `RandomState` is keyed afresh, so hashing nothing gives a new number.
    let hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let max = MAX_JITTER.as_millis() as u64;
    Duration::from_millis(hasher.finish() % (max + 1))
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    retry: Retry,
    /// What failed, never a header value or the collector's own message (which may
    /// echo credentials back).
    message: String,
}

enum Retry {
    Never,
    Backoff,
    /// The collector asked to wait this long first.
    After(Duration),
}

impl Failure {
    fn grpc(status: &tonic::Status) -> Self {
        let hint = status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay)
            .map(|delay| delay.min(MAX_HINT));
        let retry = match status.code() {
            tonic::Code::ResourceExhausted => hint.map_or(Retry::Never, Retry::After),
            tonic::Code::Unavailable => match hint.filter(|d| !d.is_zero()) {
                Some(hint) => Retry::After(hint),
                None => Retry::Backoff,
            },
            tonic::Code::Cancelled
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
            | tonic::Code::OutOfRange
            | tonic::Code::DataLoss => Retry::Backoff,
            _ => Retry::Never,
        };
        // A status made by tonic's own transport (connection refused, DNS) carries its
        // cause; one sent by the collector only its code.
        let mut message = format!("gRPC export failed with status {:?}", status.code());
        let mut source = std::error::Error::source(status);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Self { retry, message }
    }
}

/// How `opentelemetry-otlp` treats an HTTP status.
fn http_retry(status: u16, retry_after: Option<Duration>) -> Retry {
    match status {
        429 | 503 => retry_after.map_or(Retry::Backoff, Retry::After),
        502 | 504 => Retry::Backoff,
        _ => Retry::Never,
    }
}

/// A single-threaded runtime owned by one client. Dropping it never blocks, so a client
/// may be dropped anywhere, a runtime's task included.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    /// A runtime, and what `make` builds inside it (spawning its tasks there). `make`
    /// cannot fail: a runtime dropped unwrapped inside another runtime's task panics.
    fn new_with<T>(signal: Signal, make: impl FnOnce() -> T) -> Result<(Self, T), TelemetryError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| TelemetryError::Client {
                signal: signal.as_str(),
                source: Box::new(source),
            })?;
        let made = {
            let _entered = runtime.enter();
            make()
        };
        Ok((Self(Some(runtime)), made))
    }

    /// Runs `send` to completion on this thread, with the runtime's tasks.
    fn block_on(&self, send: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
        match &self.0 {
            Some(runtime) => runtime.block_on(send),
            None => Err(Failure {
                retry: Retry::Never,
                message: "the exporter's runtime has shut down".to_owned(),
            }),
        }
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn grpc(endpoint: &OtlpEndpoint, signal: Signal) -> Result<Transport, TelemetryError> {
    // Everything that can fail comes before the runtime.
    let url = endpoint.url.trim().to_owned();
    let mut channel = Channel::from_shared(url.clone())
        .map_err(|_| invalid(signal.fields().0, "is not a valid gRPC endpoint"))?;
    if url.starts_with("https://") {
        channel = channel
            .tls_config(ClientTlsConfig::new().with_enabled_roots())
            .map_err(|source| TelemetryError::Client {
                signal: signal.as_str(),
                source: Box::new(source),
            })?;
    }
    let metadata = MetadataMap::from_headers(headers(endpoint, signal)?);
    let (runtime, channel) =
        OwnRuntime::new_with(signal, || channel.timeout(endpoint.timeout).connect_lazy())?;
    Ok(Transport::Grpc {
        channel,
        metadata,
        runtime,
    })
}

fn http(endpoint: &OtlpEndpoint, signal: Signal) -> Result<Transport, TelemetryError> {
    let headers = headers(endpoint, signal)?;
    // A blocking client cannot be built on a runtime's thread; build it on its own.
    let timeout = endpoint.timeout;
    let client = std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
    })
    .join()
    .map_err(|_| TelemetryError::Client {
        signal: signal.as_str(),
        source: "the thread building the HTTP client panicked".into(),
    })?
    .map_err(|source| TelemetryError::Client {
        signal: signal.as_str(),
        source: Box::new(source),
    })?;
    Ok(Transport::Http {
        client,
        url: endpoint.url.trim().to_owned(),
        headers,
    })
}

/// The headers (gRPC metadata) of every request: the user agent, then the endpoint's.
fn headers(endpoint: &OtlpEndpoint, signal: Signal) -> Result<HeaderMap, TelemetryError> {
    let (_, field, _) = signal.fields();
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    );
    for (name, value) in &endpoint.headers {
        // Validated already; checked again rather than trusted.
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(field, format!("{name:?} is not a valid header name")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            invalid(
                field,
                format!("the value of header {name:?} has characters a header cannot carry"),
            )
        })?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// A gRPC codec for a request encoded already and a response that is not read: the
/// collector's answer only reports partial success, which is not acted on.
#[derive(Debug, Clone, Copy, Default)]
struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        PreEncoded
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Self::Error> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}
