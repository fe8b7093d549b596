//! Test clients that follow the public Discord docs (not twilight): a raw gateway client
//! over tokio-websockets with zlib-stream / zstd-stream decoding, and a small HTTP client.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use guildscope_simulator::{SimConfig, Simulator};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_websockets::{ClientBuilder, CloseCode, MaybeTlsStream, Message, WebSocketStream};

/// Default wait for anything in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// Intents: GUILDS | GUILD_MEMBERS | GUILD_MESSAGES | MESSAGE_CONTENT.
pub const INTENTS: u64 = 1 | (1 << 1) | (1 << 9) | (1 << 15);

pub async fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("simulator starts")
}

/// Which transport compression to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    None,
    Zlib,
    Zstd,
}

enum Inflater {
    None,
    Zlib(Box<flate2::Decompress>, Vec<u8>),
    Zstd(zstd::zstd_safe::DCtx<'static>),
}

/// What a gateway read produced.
#[derive(Debug)]
pub enum Frame {
    Payload(Value),
    Closed(Option<u16>),
}

pub struct Gateway {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    inflater: Inflater,
    /// Last dispatch sequence number seen.
    pub seq: Option<u64>,
}

impl Gateway {
    pub async fn connect(base: &str, compress: Compress) -> Self {
        let query = match compress {
            Compress::None => "",
            Compress::Zlib => "&compress=zlib-stream",
            Compress::Zstd => "&compress=zstd-stream",
        };
        Self::connect_url(&format!("{base}/?v=10&encoding=json{query}"), compress).await
    }

    pub async fn connect_url(url: &str, compress: Compress) -> Self {
        let (ws, _) = ClientBuilder::new()
            .uri(url)
            .unwrap()
            .connect()
            .await
            .expect("gateway connects");
        let inflater = match compress {
            Compress::None => Inflater::None,
            Compress::Zlib => Inflater::Zlib(Box::new(flate2::Decompress::new(true)), Vec::new()),
            Compress::Zstd => Inflater::Zstd(zstd::zstd_safe::DCtx::create()),
        };
        Self {
            ws,
            inflater,
            seq: None,
        }
    }

    pub async fn send(&mut self, payload: Value) {
        self.ws
            .send(Message::text(payload.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// Sends a close frame and nothing else; the answer is read with `closed`.
    pub async fn send_close(&mut self, code: u16) {
        self.ws
            .send(Message::close(Some(CloseCode::try_from(code).unwrap()), ""))
            .await
            .expect("send close");
    }

    pub async fn close(&mut self, code: u16) {
        let _ = self
            .ws
            .send(Message::close(Some(CloseCode::try_from(code).unwrap()), ""))
            .await;
        let _ = tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    fn decode(&mut self, message: &Message) -> Option<Value> {
        let payload: &[u8] = message.as_payload();
        let text: Vec<u8> = match &mut self.inflater {
            Inflater::None => payload.to_vec(),
            Inflater::Zlib(z, _) => {
                assert!(
                    payload.ends_with(&[0, 0, 0xff, 0xff]),
                    "zlib frame ends with sync flush"
                );
                let mut out = Vec::with_capacity(payload.len() * 4 + 1024);
                let mut pos = 0;
                loop {
                    let before = z.total_in();
                    z.decompress_vec(&payload[pos..], &mut out, flate2::FlushDecompress::Sync)
                        .expect("zlib decodes");
                    pos += (z.total_in() - before) as usize;
                    if pos >= payload.len() && out.len() < out.capacity() {
                        break;
                    }
                    out.reserve(out.capacity());
                }
                out
            }
            Inflater::Zstd(ctx) => {
                let mut input = zstd::zstd_safe::InBuffer::around(payload);
                let mut out = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    let mut output = zstd::zstd_safe::OutBuffer::around(&mut chunk[..]);
                    ctx.decompress_stream(&mut output, &mut input)
                        .expect("zstd decodes");
                    let n = output.pos();
                    out.extend_from_slice(&chunk[..n]);
                    if input.pos() == payload.len() && n < chunk.len() {
                        break;
                    }
                }
                out
            }
        };
        if matches!(self.inflater, Inflater::None) {
            assert!(message.is_text(), "uncompressed payloads are text frames");
        } else if !message.is_text() {
            assert!(message.is_binary());
        }
        let value: Value = serde_json::from_slice(&text).expect("payload is JSON");
        if value["op"] == 0 {
            self.seq = value["s"].as_u64();
        }
        Some(value)
    }

    /// The next payload or the close, within `WAIT`.
    pub async fn next(&mut self) -> Frame {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("gateway answered in time");
            match message {
                None | Some(Err(_)) => return Frame::Closed(None),
                Some(Ok(message)) => {
                    if let Some((code, _)) = message.as_close() {
                        return Frame::Closed(Some(code.into()));
                    }
                    if message.is_ping() || message.is_pong() {
                        continue;
                    }
                    if let Some(value) = self.decode(&message) {
                        return Frame::Payload(value);
                    }
                }
            }
        }
    }

    /// The next payload; panics on close.
    pub async fn payload(&mut self) -> Value {
        match self.next().await {
            Frame::Payload(v) => v,
            Frame::Closed(code) => panic!("gateway closed unexpectedly: {code:?}"),
        }
    }

    /// Reads until a dispatch of type `t`.
    pub async fn dispatch(&mut self, t: &str) -> Value {
        loop {
            let v = self.payload().await;
            if v["op"] == 0 && v["t"] == t {
                return v;
            }
        }
    }

    /// Reads until the connection closes; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Frame::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    pub async fn hello(&mut self) -> Value {
        let hello = self.payload().await;
        assert_eq!(hello["op"], 10, "first payload is HELLO: {hello}");
        hello
    }

    pub async fn identify(&mut self, token: &str, shard: [u32; 2]) {
        self.send(json!({
            "op": 2,
            "d": {
                "token": token,
                "intents": INTENTS,
                "properties": {"os": "linux", "browser": "raw-test", "device": "raw-test"},
                "shard": shard,
            }
        }))
        .await;
    }

    /// HELLO, IDENTIFY, READY and one GUILD_CREATE per READY guild; returns READY's `d`
    /// and the GUILD_CREATE bodies.
    pub async fn login(&mut self, token: &str, shard: [u32; 2]) -> (Value, Vec<Value>) {
        self.hello().await;
        self.identify(token, shard).await;
        let ready = self.dispatch("READY").await;
        let count = ready["d"]["guilds"].as_array().map_or(0, Vec::len);
        let mut guilds = Vec::new();
        while guilds.len() < count {
            guilds.push(self.dispatch("GUILD_CREATE").await["d"].clone());
        }
        (ready["d"].clone(), guilds)
    }
}

/// A response from the HTTP helper.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one HTTP request; `token` adds `Authorization: Bot <token>`.
pub async fn http(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bot {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Full::new(Bytes::from(body.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let response = tokio::time::timeout(WAIT, client.request(request.body(body).unwrap()))
        .await
        .expect("http answered in time")
        .expect("http request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Polls `check` until it returns `Some`, within `WAIT` (waiting on the simulator's
/// observable state, not sleeping a fixed time).
pub async fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
