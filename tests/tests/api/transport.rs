//! The connection itself: clients that send part of a request and stop
//! (slowloris) get 408 and lose the socket, instead of holding it forever.

use crate::helpers::{As, TestApp, shop, spawn_app};
use reqwest::Method;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longer than the test servers' read timeouts (see `helpers::start`).
const PATIENCE: Duration = Duration::from_secs(5);

/// Sends `bytes` on a fresh connection, then reads until the server closes
/// it; returns what came back and how long that took.
async fn send_and_wait(app: &TestApp, bytes: &[u8]) -> (String, Duration) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("the server accepts");
    stream.write_all(bytes).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server ends the connection instead of waiting forever")
        .expect("the read ends cleanly");
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[tokio::test]
async fn a_request_head_that_stops_arriving_is_answered_408_and_closed() {
    let app = spawn_app().await;
    let (answer, waited) =
        send_and_wait(&app, b"POST /client/inventory/purchase HTTP/1.1\r\nhost: shop\r\ncontent-type: app").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "answer: {answer:?}");
    assert!(waited < PATIENCE, "waited {waited:?}");
    app.call(Method::GET, "/healthz", As::Nobody, None).await.assert_ok();
}

#[tokio::test]
async fn a_body_shorter_than_announced_is_answered_408_and_nothing_is_written() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 100).await;
    let request = format!(
        "POST /server/users/{}/grants HTTP/1.1\r\nhost: shop\r\nx-api-key: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"currency_code\": \"gems\",",
        player.identity, tenant.server_key
    );
    let (answer, _) = send_and_wait(&app, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    assert!(answer.contains("\"code\":\"REQUEST_TIMEOUT\""), "answer: {answer:?}");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 100);
}

#[tokio::test]
async fn an_idle_connection_is_closed_without_an_answer() {
    let app = spawn_app().await;
    let (answer, waited) = send_and_wait(&app, b"").await;
    assert_eq!(answer, "", "nothing was asked, so nothing is answered");
    assert!(waited < PATIENCE);
}
