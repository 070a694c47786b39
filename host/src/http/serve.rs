//! Serving HTTP/1.1 connections with bounded read times, so a client that
//! sends part of a request and stops (slowloris) cannot hold a socket: the
//! request head must arrive within [`ReadTimeouts::header`] and the body
//! within [`ReadTimeouts::body`] of the head, or the request is answered
//! with 408. A connection that sends nothing within the header timeout
//! (new, or idle between kept-alive requests) is closed without an answer:
//! there is no request to answer. (HTTP/2 is left to the load balancer in
//! front, which speaks HTTP/1.1 to the hosts.)

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use http_body::Frame;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tower::ServiceExt;

/// How long a client may take to send a request.
#[derive(Clone, Copy, Debug)]
pub struct ReadTimeouts {
    /// From the first byte of a request (or the end of the previous one on
    /// a kept-alive connection) to the end of its head.
    pub header: Duration,
    /// From the end of the head to the end of the body.
    pub body: Duration,
}

/// How long to wait before accepting again after `accept` failed (e.g. out
/// of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` resolves, then waits for
/// the requests in flight to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: ReadTimeouts,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let router = router.layer(axum::middleware::map_request(move |request: Request| async move {
        request.map(|body| Body::new(DeadlineBody::new(body, timeouts.body)))
    }));
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(timeouts.header);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let stream = SharedStream::new(stream);
        let answer_on_timeout = stream.clone();
        let service = TowerToHyperService::new(
            router.clone().map_request(|request: Request<hyper::body::Incoming>| request.map(Body::new)),
        );
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if connection.await.is_err_and(|error| error.is_timeout()) {
                answer_on_timeout.answer_timeout().await;
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A TCP stream that hyper owns a handle to, and that this module can
/// still write to once hyper gave up on it: to answer 408 to a request
/// whose head never finished arriving.
#[derive(Clone)]
struct SharedStream {
    stream: Arc<TcpStream>,
    /// Bytes arrived since the last answer was written: a request is
    /// partly read.
    unanswered: Arc<AtomicBool>,
}

impl SharedStream {
    fn new(stream: TcpStream) -> Self {
        Self { stream: Arc::new(stream), unanswered: Arc::default() }
    }

    /// Answers 408 after a request head was too slow to arrive, unless no
    /// byte of it came (an idle kept-alive connection timed out).
    async fn answer_timeout(&self) {
        if !self.unanswered.load(Ordering::Relaxed) {
            return;
        }
        let body = serde_json::json!({"error": {"code": "REQUEST_TIMEOUT", "message": "the request head was not received in time"}}).to_string();
        let response = format!(
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut unsent = response.as_bytes();
        while !unsent.is_empty() {
            if self.stream.writable().await.is_err() {
                return;
            }
            match self.stream.try_write(unsent) {
                Ok(written) => unsent = &unsent[written..],
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self.stream.try_read(buf.initialize_unfilled()) {
                Ok(read) => {
                    buf.advance(read);
                    if read > 0 {
                        self.unanswered.store(true, Ordering::Relaxed);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Ok(written) => {
                    self.unanswered.store(false, Ordering::Relaxed);
                    return Poll::Ready(Ok(written));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The socket closes when the last handle is dropped.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A request body that must end by a deadline; past it, reading fails
/// with [`BodyTimedOut`], which the extractors answer with 408.
struct DeadlineBody {
    body: Body,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(body: Body, timeout: Duration) -> Self {
        Self { body, deadline: Box::pin(tokio::time::sleep(timeout)) }
    }
}

/// The body of a request did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
pub struct BodyTimedOut;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Whether a body error (anywhere in its chain of causes) is a timeout.
pub fn body_timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        cause = error.source();
    }
    false
}
