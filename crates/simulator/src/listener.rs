//! The single listener: each accepted connection's request head is read, and the connection
//! goes to the gateway when it asks for a WebSocket upgrade, to axum (REST and control)
//! otherwise. One port serves `ws://`, `http://…/api/v10` and `http://…/control`.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf, Bytes};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinSet,
};

use crate::state::Shared;

/// Largest request head read while sniffing.
const MAX_HEAD: usize = 16 * 1024;

/// A stream that first replays the bytes read while sniffing.
#[derive(Debug)]
pub(crate) struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// HTTP connections handed to axum.
pub(crate) type HttpConn = (Prefixed<TcpStream>, SocketAddr);

/// axum's side of the hand-over.
pub(crate) struct HttpListener {
    pub(crate) rx: mpsc::Receiver<HttpConn>,
    pub(crate) local: SocketAddr,
}

impl axum::serve::Listener for HttpListener {
    type Io = Prefixed<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop ended; axum is being shut down too.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Accepts connections until shutdown, then gives gateway connections a moment to close.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    http: mpsc::Sender<HttpConn>,
) {
    let mut tasks = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(route(Arc::clone(&shared), stream, addr, http.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

/// Reads the request head and hands the connection to the gateway or to axum.
async fn route(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    addr: SocketAddr,
    http: mpsc::Sender<HttpConn>,
) {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read_buf(&mut head).await {
                Ok(0) | Err(_) => return false,
                Ok(_) if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= MAX_HEAD => {
                    return true;
                }
                Ok(_) => {}
            }
        }
    })
    .await;
    if !matches!(read, Ok(true)) {
        return;
    }
    let websocket = String::from_utf8_lossy(&head)
        .lines()
        .take_while(|l| !l.is_empty())
        .any(|line| {
            let lower = line.to_ascii_lowercase();
            lower.starts_with("upgrade:") && lower.contains("websocket")
        });
    let stream = Prefixed {
        prefix: Bytes::from(head),
        inner: stream,
    };
    if websocket {
        crate::gateway::connection::serve(shared, stream).await;
    } else if http.send((stream, addr)).await.is_err() {
        tracing::debug!("http server gone, dropping connection");
    }
}
