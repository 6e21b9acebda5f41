//! Hostile clients at the HTTP level: slow senders, oversized headers.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// 200 connections that send half a request head and then nothing do not
/// slow anyone else down, and do not keep the server from stopping.
#[tokio::test]
async fn slow_clients_starve_no_one_and_do_not_block_shutdown() {
    let app = TestApp::spawn().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(b"GET /api/v1/user HTTP/1.1\r\nHost: chirp\r\nX-Slow: ").await.unwrap();
        slow.push(stream);
    }
    let started = Instant::now();
    for _ in 0..20 {
        let r = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "normal requests were held up: {:?}", started.elapsed());

    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(40), app.stop()).await.expect("the server stops despite slow clients");
    eprintln!("stopped in {:?} with {} slow connections open", stopping.elapsed(), slow.len());
}

/// A request head far over the limit is refused with 431 (or the
/// connection closed), never a 5xx, and the server goes on serving.
#[tokio::test]
async fn oversized_headers_are_refused() {
    let app = TestApp::spawn().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    for (name, head) in [
        ("one huge header", format!("GET /healthz HTTP/1.1\r\nHost: chirp\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20))),
        (
            "thousands of headers",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: chirp\r\n{}\r\n",
                (0..5000).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
            ),
        ),
    ] {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let _ = stream.write_all(head.as_bytes()).await; // the server may close before reading it all
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        let status = answer.split(' ').nth(1).unwrap_or("closed");
        assert!(status == "closed" || status.starts_with('4'), "{name}: answered {status}");
    }
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
