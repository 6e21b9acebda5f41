//! The SMTP adapter against a real SMTP server (mailin-embedded) on a random port.

use std::sync::{Arc, Mutex};

use mailin_embedded::{Handler, Server, SslConfig, response::Response};
use reqwest::StatusCode;

use crate::helpers::{TestApp, assert_problem, extract_code};

/// Each delivered message: its recipients and its text.
type Delivered = Arc<Mutex<Vec<(Vec<String>, String)>>>;

#[derive(Clone, Default)]
struct Inbox {
    current: Vec<u8>,
    recipients: Vec<String>,
    delivered: Delivered,
}

impl Handler for Inbox {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current.clear();
        self.recipients = to.to_vec();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = String::from_utf8_lossy(&self.current).into_owned();
        self.delivered.lock().unwrap().push((self.recipients.clone(), message));
        mailin_embedded::response::OK
    }
}

fn start_smtp_server() -> (u16, Delivered) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Inbox::default();
    let delivered = inbox.delivered.clone();
    let mut server = Server::new(inbox);
    server.with_name("smtp.test").with_ssl(SslConfig::None).unwrap().with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, delivered)
}

#[tokio::test]
async fn the_code_arrives_by_smtp_and_verifies() {
    let (port, delivered) = start_smtp_server();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(chirp::config::Secret::new(format!("smtp://127.0.0.1:{port}")));
        c.mail_from = "chirp <no-reply@chirp.test>".into();
    })
    .await;

    let r = app.register("paula@example.com", "paula", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let (to, message) = delivered.lock().unwrap().last().cloned().expect("a message was delivered");
    assert_eq!(to, ["paula@example.com"]);
    assert!(message.contains("From: chirp <no-reply@chirp.test>"), "{message}");
    assert!(message.contains("Subject: Your chirp code for @paula:"), "{message}");
    let (_, body) = message.split_once("\r\n\r\n").expect("headers, then a body");
    let code = extract_code(body);

    let r = app.verify("paula@example.com", &code).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_unreachable_mail_server_is_503_and_leaves_nothing_pending() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = TestApp::spawn_with(|c| c.smtp_url = Some(chirp::config::Secret::new(format!("smtp://127.0.0.1:{port}")))).await;

    let r = app.register("quinn@example.com", "quinn", "correct horse battery").await;
    assert!(r.headers().contains_key("retry-after"));
    let body = assert_problem(r, 503, "service_unavailable").await;
    assert!(!body.to_string().contains("127.0.0.1"), "no internals in {body}");
    assert!(app.cache.get("registration:quinn@example.com").await.unwrap().is_none());
}
