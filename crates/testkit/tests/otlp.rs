//! The OTLP receiver against real clients: protobuf over a plain HTTP client,
//! and the tonic client generated in `opentelemetry-proto` over gRPC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use guildscope_testkit::otlp::{
    AttrValue, ExportCounts, MetricKind, OtlpReceiver, ReceivedEvent, ReceivedSpan, SpanStatus,
    Transport, by_name, children, render_tree, roots,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

const TIMEOUT: Duration = Duration::from_secs(10);
const TRACE_ID: [u8; 16] = [
    0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c,
];
const ROOT_ID: [u8; 8] = [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31];
const CHILD_ID: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![string("service.name", "guildscope")],
        ..Resource::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_owned(),
        version: "0.1.0".to_owned(),
        ..InstrumentationScope::default()
    })
}

/// A root span with every scalar attribute kind, an array attribute and an
/// event, and a child span with an error status.
fn trace_request() -> ExportTraceServiceRequest {
    let root = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: ROOT_ID.to_vec(),
        name: "discord.event".to_owned(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_250_000_000,
        attributes: vec![
            string("discord.event", "MESSAGE_CREATE"),
            kv("discord.shard_id", any_value::Value::IntValue(3)),
            kv("sample.ratio", any_value::Value::DoubleValue(0.25)),
            kv("flags.dry_run", any_value::Value::BoolValue(true)),
            kv(
                "tags",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(any_value::Value::StringValue("a".to_owned())),
                        },
                        AnyValue {
                            value: Some(any_value::Value::IntValue(2)),
                        },
                    ],
                }),
            ),
        ],
        events: vec![Event {
            time_unix_nano: 1_700_000_000_100_000_000,
            name: "batch.flushed".to_owned(),
            attributes: vec![kv("rows", any_value::Value::IntValue(12))],
            ..Event::default()
        }],
        status: Some(Status {
            message: String::new(),
            code: 1,
        }),
        ..Span::default()
    };
    let child = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: CHILD_ID.to_vec(),
        parent_span_id: ROOT_ID.to_vec(),
        name: "store.write".to_owned(),
        kind: 1,
        start_time_unix_nano: 1_700_000_000_010_000_000,
        end_time_unix_nano: 1_700_000_000_020_000_000,
        attributes: vec![string("store.table", "messages")],
        status: Some(Status {
            message: "database is locked".to_owned(),
            code: 2,
        }),
        ..Span::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope("guildscope-bot"),
                spans: vec![root, child],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn expected_spans(transport: Transport) -> Vec<ReceivedSpan> {
    let resource = BTreeMap::from([(
        "service.name".to_owned(),
        AttrValue::Str("guildscope".to_owned()),
    )]);
    vec![
        ReceivedSpan {
            trace_id: "0af7651916cd43dd8448eb211c80319c".to_owned(),
            span_id: "b7ad6b7169203331".to_owned(),
            parent_span_id: None,
            name: "discord.event".to_owned(),
            kind: 2,
            start_unix_nanos: 1_700_000_000_000_000_000,
            end_unix_nanos: 1_700_000_000_250_000_000,
            attributes: BTreeMap::from([
                (
                    "discord.event".to_owned(),
                    AttrValue::Str("MESSAGE_CREATE".to_owned()),
                ),
                ("discord.shard_id".to_owned(), AttrValue::Int(3)),
                ("sample.ratio".to_owned(), AttrValue::Double(0.25)),
                ("flags.dry_run".to_owned(), AttrValue::Bool(true)),
                ("tags".to_owned(), AttrValue::Other("[a, 2]".to_owned())),
            ]),
            status: SpanStatus::Ok,
            events: vec![ReceivedEvent {
                name: "batch.flushed".to_owned(),
                attributes: BTreeMap::from([("rows".to_owned(), AttrValue::Int(12))]),
            }],
            resource: resource.clone(),
            scope: "guildscope-bot".to_owned(),
            transport,
        },
        ReceivedSpan {
            trace_id: "0af7651916cd43dd8448eb211c80319c".to_owned(),
            span_id: "00f067aa0ba902b7".to_owned(),
            parent_span_id: Some("b7ad6b7169203331".to_owned()),
            name: "store.write".to_owned(),
            kind: 1,
            start_unix_nanos: 1_700_000_000_010_000_000,
            end_unix_nanos: 1_700_000_000_020_000_000,
            attributes: BTreeMap::from([(
                "store.table".to_owned(),
                AttrValue::Str("messages".to_owned()),
            )]),
            status: SpanStatus::Error("database is locked".to_owned()),
            events: Vec::new(),
            resource,
            scope: "guildscope-bot".to_owned(),
            transport,
        },
    ]
}

#[tokio::test]
async fn http_protobuf_export_is_answered_like_a_collector_and_kept_field_for_field() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let url = format!("{}/v1/traces", receiver.http_endpoint());

    let answer = common::post(
        &url,
        "application/x-protobuf",
        trace_request().encode_to_vec(),
    )
    .await;

    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/x-protobuf")
    );
    assert_eq!(
        ExportTraceServiceResponse::decode(answer.body.as_slice()).unwrap(),
        ExportTraceServiceResponse::default()
    );
    assert_eq!(receiver.spans(), expected_spans(Transport::Http));
    assert_eq!(
        receiver.export_requests(),
        ExportCounts {
            grpc: 0,
            http: 1,
            rejected: 0
        }
    );
}

#[tokio::test]
async fn grpc_export_through_the_generated_client_is_kept_field_for_field() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .unwrap();

    let response = client.export(trace_request()).await.unwrap();

    assert_eq!(response.into_inner(), ExportTraceServiceResponse::default());
    let spans = receiver
        .wait_for_spans(|spans| spans.len() == 2, TIMEOUT)
        .await;
    assert_eq!(spans, expected_spans(Transport::Grpc));
    assert_eq!(
        receiver.export_requests(),
        ExportCounts {
            grpc: 1,
            http: 0,
            rejected: 0
        }
    );
}

#[tokio::test]
async fn gzip_encoded_http_export_is_decoded() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let url = format!("{}/v1/traces", receiver.http_endpoint());
    let body = common::gzip(&trace_request().encode_to_vec());

    let answer = common::send(
        "POST",
        &url,
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        body,
    )
    .await;

    assert_eq!(answer.status, 200);
    assert_eq!(receiver.spans(), expected_spans(Transport::Http));
}

#[tokio::test]
async fn span_tree_helpers_follow_parent_ids() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let url = format!("{}/v1/traces", receiver.http_endpoint());
    common::post(
        &url,
        "application/x-protobuf",
        trace_request().encode_to_vec(),
    )
    .await;
    let spans = receiver.spans();

    let root = roots(&spans);
    assert_eq!(
        root.iter()
            .map(|span| span.name.as_str())
            .collect::<Vec<_>>(),
        ["discord.event"]
    );
    let kids = children(&spans, root[0]);
    assert_eq!(
        kids.iter()
            .map(|span| span.name.as_str())
            .collect::<Vec<_>>(),
        ["store.write"]
    );
    assert_eq!(by_name(&spans, "store.write").len(), 1);
    assert_eq!(root[0].str_attr("discord.event"), Some("MESSAGE_CREATE"));
    assert_eq!(
        root[0].attr("discord.shard_id").and_then(AttrValue::as_i64),
        Some(3)
    );
    assert_eq!(
        root[0].attr("flags.dry_run").and_then(AttrValue::as_bool),
        Some(true)
    );
    assert_eq!(
        root[0].attr("sample.ratio").and_then(AttrValue::as_f64),
        Some(0.25)
    );
    assert_eq!(root[0].duration(), Duration::from_millis(250));
    assert_eq!(
        render_tree(&spans),
        "discord.event {discord.event=MESSAGE_CREATE, discord.shard_id=3, flags.dry_run=true, \
         sample.ratio=0.25, tags=[a, 2]}\n  store.write {store.table=messages} \
         !error(database is locked)\n"
    );
}

#[tokio::test]
async fn logs_over_grpc_and_metrics_over_http_are_kept() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope("guildscope"),
                log_records: vec![LogRecord {
                    severity_number: 17,
                    severity_text: "ERROR".to_owned(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(
                            "batch commit failed".to_owned(),
                        )),
                    }),
                    attributes: vec![string("store.table", "messages")],
                    trace_id: TRACE_ID.to_vec(),
                    span_id: CHILD_ID.to_vec(),
                    ..LogRecord::default()
                }],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let mut client = LogsServiceClient::connect(receiver.grpc_endpoint())
        .await
        .unwrap();
    client.export(logs).await.unwrap();

    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("guildscope"),
                metrics: vec![
                    Metric {
                        name: "guildscope_commands_total".to_owned(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                attributes: vec![
                                    string("command", "stats"),
                                    string("outcome", "ok"),
                                ],
                                value: Some(number_data_point::Value::AsInt(4)),
                                ..NumberDataPoint::default()
                            }],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Metric::default()
                    },
                    Metric {
                        name: "guildscope_command_duration_seconds".to_owned(),
                        unit: "s".to_owned(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                count: 4,
                                sum: Some(0.5),
                                ..HistogramDataPoint::default()
                            }],
                            aggregation_temporality: 2,
                        })),
                        ..Metric::default()
                    },
                ],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    let answer = common::post(
        &format!("{}/v1/metrics", receiver.http_endpoint()),
        "application/x-protobuf",
        metrics.encode_to_vec(),
    )
    .await;
    assert_eq!(answer.status, 200);

    let logs = receiver
        .wait_for_logs(|logs| !logs.is_empty(), TIMEOUT)
        .await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].severity_text, "ERROR");
    assert_eq!(logs[0].severity_number, 17);
    assert_eq!(logs[0].body, "batch commit failed");
    assert_eq!(
        logs[0].trace_id.as_deref(),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
    assert_eq!(logs[0].span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(
        logs[0].attr("store.table").and_then(AttrValue::as_str),
        Some("messages")
    );
    assert_eq!(logs[0].resource["service.name"].to_string(), "guildscope");
    assert_eq!(logs[0].transport, Transport::Grpc);

    assert_eq!(
        receiver.metric_names(),
        [
            "guildscope_command_duration_seconds",
            "guildscope_commands_total"
        ]
    );
    let received = receiver.metrics();
    assert_eq!(received[0].kind, MetricKind::Sum { monotonic: true });
    assert_eq!(received[0].points[0].value, Some(4.0));
    assert_eq!(
        received[0].points[0].attributes["command"].as_str(),
        Some("stats")
    );
    assert_eq!(received[1].kind, MetricKind::Histogram);
    assert_eq!(received[1].points[0].count, Some(4));
    assert_eq!(received[1].points[0].sum, Some(0.5));
    assert_eq!(
        receiver.export_requests(),
        ExportCounts {
            grpc: 1,
            http: 1,
            rejected: 0
        }
    );
}

#[tokio::test]
async fn unavailable_receiver_answers_503_and_unavailable_and_records_nothing() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let url = format!("{}/v1/traces", receiver.http_endpoint());
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .unwrap();
    receiver.set_unavailable(true);

    let answer = common::post(
        &url,
        "application/x-protobuf",
        trace_request().encode_to_vec(),
    )
    .await;
    let status = client.export(trace_request()).await.unwrap_err();

    assert_eq!(answer.status, 503);
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(receiver.spans().is_empty());
    assert_eq!(receiver.export_requests(), ExportCounts::default());
    assert_eq!(receiver.refused_while_unavailable(), 2);

    // The outage ends and the same exports go through.
    receiver.set_unavailable(false);
    client.export(trace_request()).await.unwrap();
    let answer = common::post(
        &url,
        "application/x-protobuf",
        trace_request().encode_to_vec(),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(receiver.spans().len(), 4);
}

#[tokio::test]
async fn malformed_http_body_is_answered_400_and_counted() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let url = format!("{}/v1/traces", receiver.http_endpoint());

    let answer = common::post(&url, "application/x-protobuf", vec![0xff; 7]).await;

    assert_eq!(answer.status, 400);
    assert!(receiver.spans().is_empty());
    assert_eq!(
        receiver.export_requests(),
        ExportCounts {
            grpc: 0,
            http: 0,
            rejected: 1
        }
    );
}

#[tokio::test]
async fn json_and_unknown_content_types_are_answered_415() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let url = format!("{}/v1/logs", receiver.http_endpoint());

    let json = common::post(&url, "application/json", b"{\"resourceLogs\":[]}".to_vec()).await;
    let text = common::post(&url, "text/plain", b"hello".to_vec()).await;

    assert_eq!(json.status, 415);
    assert_eq!(text.status, 415);
    assert!(receiver.logs().is_empty());
    assert_eq!(receiver.export_requests().rejected, 2);
}

/// Sends bytes as the request message, which the generated client cannot.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
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

impl tonic::codec::Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[tokio::test]
async fn malformed_grpc_message_is_answered_invalid_argument_and_counted() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(receiver.grpc_endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();

    let status = grpc
        .unary::<Bytes, Bytes, _>(
            tonic::Request::new(Bytes::from_static(&[0xff; 7])),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            ),
            RawCodec,
        )
        .await
        .unwrap_err();

    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(receiver.spans().is_empty());
    assert_eq!(
        receiver.export_requests(),
        ExportCounts {
            grpc: 0,
            http: 0,
            rejected: 1
        }
    );
}

#[tokio::test]
async fn unknown_grpc_method_is_unimplemented() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(receiver.grpc_endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();

    let status = grpc
        .unary::<Bytes, Bytes, _>(
            tonic::Request::new(Bytes::new()),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
            ),
            RawCodec,
        )
        .await
        .unwrap_err();

    assert_eq!(status.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn shut_down_receiver_stops_listening() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let http = receiver.http_endpoint().replace("http://", "");
    let grpc = receiver.grpc_endpoint().replace("http://", "");
    receiver.shutdown().await;

    assert!(tokio::net::TcpStream::connect(&http).await.is_err());
    assert!(tokio::net::TcpStream::connect(&grpc).await.is_err());
}

#[tokio::test]
async fn dropped_receiver_stops_listening() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let http = receiver.http_endpoint().replace("http://", "");
    drop(receiver);

    // The servers stop on their own tasks; poll until the port is closed.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while tokio::net::TcpStream::connect(&http).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{http} still accepts connections after the receiver was dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
