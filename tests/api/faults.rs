//! Dependency faults: PostgreSQL connections dropped under writes, and a
//! Redis restart that loses the pending registrations it held.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{TestApp, assert_problem};
use crate::notifications::EventStream;

/// Every connection of chirp's database is terminated five times while
/// clients post tweets: each answer is 201 or a 503 problem (never a 500),
/// chirp recovers by itself, and every acknowledged tweet is there.
#[tokio::test]
async fn dropped_database_connections_answer_503_and_recover() {
    let app = TestApp::spawn().await;
    let Some((server, database)) = app.postgres() else { return }; // PostgreSQL only
    let (user_id, token) = app.sign_up("dropped").await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::<u16, usize>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (client, url, token) = (app.client.clone(), app.url("/api/v1/tweet"), token.clone());
        let (acked, statuses, stop) = (acked.clone(), statuses.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.post(&url).bearer_auth(&token).json(&json!({"content": "still here"})).send().await.unwrap();
                *statuses.lock().unwrap().entry(r.status().as_u16()).or_default() += 1;
                if r.status() == StatusCode::CREATED {
                    let body: Value = r.json().await.unwrap();
                    acked.lock().unwrap().push(body["id"].as_str().unwrap().to_owned());
                } else {
                    assert_problem(r, 503, "service_unavailable").await;
                }
            }
        }));
    }
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    let mut terminated = 0i64;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&database)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        terminated += n;
    }
    // Recovery: after the last drop, writes succeed again without a restart.
    let before = acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.lock().unwrap().len() < before + 20 {
        assert!(Instant::now() < deadline, "no recovery after the connections were dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("every answer was 201 or a 503 problem");
    }
    let statuses = statuses.lock().unwrap().clone();
    assert!(terminated >= 5, "connections were dropped: {terminated}");
    assert!(statuses.keys().all(|s| *s == 201 || *s == 503), "{statuses:?}");

    let acked = acked.lock().unwrap().clone();
    let (_, me) = app.get_json("/api/v1/me", Some(&token)).await;
    assert!(me["tweets_count"].as_u64().unwrap() as usize >= acked.len());
    for id in &acked {
        let r = app.client.get(app.url(&format!("/api/v1/tweet/{id}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "acknowledged tweet {id} is lost");
    }
    eprintln!(
        "{terminated} connections dropped under load; answers {statuses:?}; {} tweets acknowledged, lost 0 (user {user_id})",
        acked.len()
    );
}

struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Option<Self> {
        let found = Command::new("redis-server").arg("--version").output().is_ok_and(|o| o.status.success());
        if !found {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but redis-server is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, child: None };
        redis.restart();
        Some(redis)
    }

    /// A Redis that keeps nothing on disk: a restart loses everything.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis holds pending registrations. While it is down, registering and
/// verifying answer 503; once it is back (empty), the lost registration's
/// code is simply invalid, no account was half made, and registering again
/// works.
#[tokio::test]
async fn a_redis_restart_loses_pending_registrations_cleanly() {
    let Some(mut redis) = Redis::start() else { return };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = TestApp::spawn_with(|c| c.redis_url = Some(chirp::config::Secret::new(url))).await;
    let r = app.register("lost@example.com", "lost", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let code = app.code_for("lost@example.com");

    redis.kill();
    let r = app.register("other@example.com", "other", "correct horse battery").await;
    assert_problem(r, 503, "service_unavailable").await;
    assert_problem(app.verify("lost@example.com", &code).await, 503, "service_unavailable").await;
    let (status, _) = app.get_json("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let r = loop {
        let r = app.verify("lost@example.com", &code).await;
        if r.status() != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_problem(r, 400, "invalid_code").await;
    let (_, found) = app.get_json("/api/v1/user?search=lost", None).await;
    assert_eq!(found["data"].as_array().unwrap().len(), 0, "no account was made");

    let r = app.register("lost@example.com", "lost", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = app.verify("lost@example.com", &app.code_for("lost@example.com")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Live streams ride out a Redis restart: the node subscribes again to the
/// channel of every owner with an open stream, and the next like reaches
/// the stream that was open all along.
#[tokio::test]
async fn an_open_live_stream_is_resubscribed_after_a_redis_restart() {
    let Some(mut redis) = Redis::start() else { return };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = TestApp::spawn_with(|c| c.redis_url = Some(chirp::config::Secret::new(url.clone()))).await;
    let (alice_id, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let tweet = app.tweet(&alice, "through a restart").await["id"].as_str().unwrap().to_owned();
    let mut stream = EventStream::open(&app, &alice).await;
    let channel = format!("{}notifications:{alice_id}", app.config.redis_prefix);
    let subscribers = || {
        let mut conn = redis::Client::open(url.as_str()).ok()?.get_connection().ok()?;
        let (_, n): (String, i64) = redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query(&mut conn).ok()?;
        Some(n)
    };
    assert_eq!(subscribers(), Some(1));

    redis.kill();
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while subscribers() != Some(1) {
        assert!(Instant::now() < deadline, "the node did not subscribe again to alice's channel");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.like(&bob, &tweet).await, StatusCode::CREATED);
    let (event, data) = stream.next_event(Duration::from_secs(10)).await.expect("the like reaches the open stream");
    assert_eq!(event, "notification");
    assert_eq!(serde_json::from_str::<Value>(&data).unwrap()["tweet_id"], tweet.as_str());
}
