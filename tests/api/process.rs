//! `Chirp`: the real `chirp` binary as a child process, configured through
//! its environment on the backends of the suite, for the tests that kill it
//! (SIGKILL) or run several of it at once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{create_test_bucket, extract_code, fresh_postgres, unique, with_database};

pub struct Chirp {
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// The backends of the suite as `CHIRP_*` variables: a fresh PostgreSQL
/// database, a Redis prefix, a Kafka topic and group, and an S3 prefix, for
/// those the `CHIRP_TEST_*` variables name. Nodes given the same variables
/// share everything.
pub async fn backends(label: &str) -> Vec<(String, String)> {
    let mut env = vec![("CHIRP_JWT_SECRET".into(), unique("secret-of-the-cluster"))];
    if let Ok(server) = std::env::var("CHIRP_TEST_DATABASE_URL") {
        let (server, name) = fresh_postgres(&server).await;
        env.push(("CHIRP_DATABASE_URL".into(), with_database(&server, &name)));
    }
    if let Ok(redis) = std::env::var("CHIRP_TEST_REDIS_URL") {
        env.push(("CHIRP_REDIS_URL".into(), redis));
        env.push(("CHIRP_REDIS_PREFIX".into(), format!("{}:", unique(label))));
    }
    if let Ok(brokers) = std::env::var("CHIRP_TEST_KAFKA_BROKERS") {
        env.push(("CHIRP_KAFKA_BROKERS".into(), brokers));
        env.push(("CHIRP_KAFKA_TOPIC".into(), unique(&format!("chirp.{label}"))));
        env.push(("CHIRP_KAFKA_GROUP".into(), unique(label)));
        env.push(("CHIRP_KAFKA_TIMELINE_TOPIC".into(), unique(&format!("chirp.timeline.{label}"))));
        env.push(("CHIRP_KAFKA_FANOUT_GROUP".into(), unique(&format!("{label}-fanout"))));
    }
    if let Ok(endpoint) = std::env::var("CHIRP_TEST_S3_ENDPOINT") {
        let bucket = create_test_bucket(&endpoint).await;
        env.push(("CHIRP_MEDIA_STORE".into(), format!("s3://{bucket}/{}", unique(label))));
        env.push(("CHIRP_S3_ENDPOINT".into(), endpoint));
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            env.push((name.into(), std::env::var(name).unwrap_or_default()));
        }
    }
    env
}

impl Chirp {
    /// One node on fresh backends.
    pub async fn start(label: &str) -> Self {
        Self::start_node(backends(label).await, 7).await
    }

    /// A node on the backends `shared` names, with a data directory and a
    /// port of its own.
    pub async fn start_node(shared: Vec<(String, String)>, node_id: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut env = vec![
            ("CHIRP_DATA_DIR".into(), dir.path().display().to_string()),
            ("CHIRP_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("CHIRP_AUTH_RATE_LIMIT".into(), "0".into()),
            ("CHIRP_LOG".into(), "info".into()),
            ("CHIRP_NODE_ID".into(), node_id.to_string()),
        ];
        env.extend(shared);
        let mut chirp = Self { env, dir, port, child: None };
        chirp.spawn().await;
        chirp
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("chirp.log")
    }

    /// Starts the process (again) and waits until it is ready.
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_chirp"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start chirp");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = Client::new();
        loop {
            if client.get(self.url("/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "chirp did not become ready; log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown hook runs, nothing is flushed or handed over.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix
            child.wait().unwrap();
        }
    }

    /// SIGTERM: a graceful stop (the node leaves the consumer group and
    /// finishes its requests); waits for the process to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill -TERM");
            assert!(status.success(), "kill -TERM");
            child.wait().unwrap();
        }
    }

    /// A line of the running process's `/proc/<pid>/status`, in KiB (`VmHWM:`: its peak RSS).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let pid = self.child.as_ref().expect("a running chirp").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sets variable `name` for the next `spawn`.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.into(), value.into()));
    }

    /// The variable `name` this node was started with.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The code of the last email to `email`, read from the log (the log mailer).
    pub async fn code_for(&self, email: &str) -> String {
        for _ in 0..100 {
            let log = self.log();
            if let Some(at) = log.rfind(&format!("to={email}")) {
                return extract_code(&log[at + email.len() + 3..]);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no email to {email} in the log")
    }

    /// Registers and verifies `username` on this node: (user id, token).
    pub async fn sign_up(&self, client: &Client, username: &str) -> (String, String) {
        let email = format!("{username}@example.com");
        let body = json!({"email": email, "username": username, "name": "Node Test", "password": "correct horse battery"});
        let r = client.post(self.url("/api/v1/register")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let code = self.code_for(&email).await;
        let r =
            client.post(self.url("/api/v1/verify-register")).json(&json!({"email": email, "code": code})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        (body["user"]["id"].as_str().unwrap().into(), body["access_token"].as_str().unwrap().into())
    }
}

impl Drop for Chirp {
    fn drop(&mut self) {
        self.kill();
    }
}
