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

/// What the server did with a request head: the status it answered, or
/// `"closed"`. A server that does neither within 10 s fails the test: a
/// hang is what these limits exist to prevent.
async fn answer_to(addr: &str, head: &[u8], name: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(head).await; // the server may close before reading it all
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                // A reset is a close too.
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            // A complete status line and head is an answer, whether or not the connection stays open.
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                return;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{name}: the server neither answered nor closed the connection within 10 s");
    let answer = String::from_utf8_lossy(&answer);
    answer.split(' ').nth(1).unwrap_or("closed").to_owned()
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
        let status = answer_to(&addr, head.as_bytes(), name).await;
        assert!(status == "closed" || status.starts_with('4'), "{name}: answered {status}");
    }
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// The check above can fail: a well-formed request is answered 200 by the
/// same reading, and a connection that gets no complete head at all is
/// reported as a hang, not as "closed".
#[tokio::test]
async fn the_answer_reader_tells_answers_from_hangs() {
    let app = TestApp::spawn().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    assert_eq!(answer_to(&addr, b"GET /healthz HTTP/1.1\r\nHost: chirp\r\n\r\n", "a good request").await, "200");
    let hang = tokio::spawn(async move { answer_to(&addr, b"GET /healthz HTTP/1.1\r\nHost: ch", "half a head").await });
    let outcome = hang.await;
    assert!(outcome.is_err_and(|e| e.is_panic()), "half a request head is a hang, reported as a failure");
}
