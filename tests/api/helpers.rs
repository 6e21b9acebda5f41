//! `TestApp::spawn()`: a chirp on a random port with a database (and cache
//! namespace) of its own, and a client for it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chirp::Config;
use chirp::app::{Adapters, Application};
use chirp::ports::broker::Broker;
use chirp::ports::cache::Cache;
use chirp::ports::mailer::{Email, MailError, Mailer};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

/// The real mailer of the configuration, plus a copy of every email it sent.
pub struct Outbox {
    inner: Arc<dyn Mailer>,
    sent: Mutex<Vec<Email>>,
}

#[async_trait]
impl Mailer for Outbox {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn send(&self, email: Email) -> Result<(), MailError> {
        self.inner.send(email.clone()).await?;
        self.sent.lock().unwrap().push(email);
        Ok(())
    }
}

impl Outbox {
    pub fn sent(&self) -> Vec<Email> {
        self.sent.lock().unwrap().clone()
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub outbox: Arc<Outbox>,
    pub config: Config,
    pub cache: Arc<dyn Cache>,
    pub broker: Arc<dyn Broker>,
    pub accounts: Arc<chirp::services::accounts::Accounts>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    postgres: Option<(String, String)>,
    data_dir: Arc<tempfile::TempDir>,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::random::<u64>())
}

/// A PostgreSQL database of its own for one test: (server URL, database name).
pub async fn fresh_postgres(server_url: &str) -> (String, String) {
    let name = unique("chirp_test");
    let mut conn = sqlx::PgConnection::connect(server_url)
        .await
        .unwrap_or_else(|e| panic!("CHIRP_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
    conn.close().await.ok();
    (server_url.to_owned(), name)
}

pub fn with_database(server_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(server_url).expect("CHIRP_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

const TEST_BUCKET: &str = "chirp-test";

/// Creates the bucket the S3 tests share (each test has a prefix of its own).
/// An S3-compatible test server (moto) takes the unsigned request.
pub async fn create_test_bucket(endpoint: &str) -> &'static str {
    assert!(
        std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
        "CHIRP_TEST_S3_ENDPOINT is set: set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION too (any values for moto)"
    );
    let r = reqwest::Client::new()
        .put(format!("{}/{TEST_BUCKET}", endpoint.trim_end_matches('/')))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CHIRP_TEST_S3_ENDPOINT is set but the S3 server is unreachable: {e}"));
    assert!(r.status().is_success() || r.status() == StatusCode::CONFLICT, "creating the test bucket: {}", r.status());
    TEST_BUCKET
}

pub fn test_config() -> Config {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.auth_rate_limit = 0;
    config.shutdown_grace = std::time::Duration::from_secs(3);
    config.log = "warn".into();
    config
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with the test configuration changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config();
        config.data_dir = data_dir.path().to_owned();
        let mut postgres = None;
        if let Ok(server) = std::env::var("CHIRP_TEST_DATABASE_URL") {
            let (server, name) = fresh_postgres(&server).await;
            config.database_url = Some(chirp::config::Secret::new(with_database(&server, &name)));
            postgres = Some((server, name));
        }
        if let Ok(redis) = std::env::var("CHIRP_TEST_REDIS_URL") {
            config.redis_url = Some(chirp::config::Secret::new(redis));
            config.redis_prefix = format!("{}:", unique("test"));
        }
        if let Ok(brokers) = std::env::var("CHIRP_TEST_KAFKA_BROKERS") {
            config.kafka_brokers = Some(brokers);
            config.kafka_topic = unique("chirp.likes.test");
            config.kafka_group = unique("chirp-test");
            config.kafka_timeline_topic = unique("chirp.timeline.test");
            config.kafka_fanout_group = unique("chirp-fanout-test");
        }
        if let Ok(endpoint) = std::env::var("CHIRP_TEST_S3_ENDPOINT") {
            config.media_store = Some(format!("s3://{}/{}", create_test_bucket(&endpoint).await, unique("test")));
            config.s3_endpoint = Some(endpoint);
        }
        configure(&mut config);
        if config.node_id.is_none() {
            config.node_id = Some(0);
        }
        Self::start(config, postgres, Arc::new(data_dir)).await
    }

    /// A second node on the same database, cache, broker and data directory
    /// (so the same token secret), serving on a port of its own.
    pub async fn spawn_peer(&self) -> Self {
        let mut config = self.config.clone();
        config.node_id = Some(self.config.node_id.map_or(1, |n| (n + 1) % 1024));
        Self::start(config, None, self.data_dir.clone()).await
    }

    async fn start(config: Config, postgres: Option<(String, String)>, data_dir: Arc<tempfile::TempDir>) -> Self {
        let _ = tracing_subscriber_init(&config);
        let mut adapters = Adapters::from_config(&config).await.expect("adapters (is every configured service up?)");
        let outbox = Arc::new(Outbox { inner: adapters.mailer.clone(), sent: Mutex::default() });
        adapters.mailer = outbox.clone();
        let cache = adapters.cache.clone();
        let broker = adapters.broker.clone();
        let app = Application::with_adapters(config.clone(), adapters).await.expect("application");
        let accounts = app.state().accounts.clone();
        let base = format!("http://{}", app.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("server");
        });
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { base, client, outbox, config, cache, broker, accounts, stop: Some(stop), task: Some(task), postgres, data_dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request")
    }

    pub async fn register(&self, email: &str, username: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/register",
            &json!({"email": email, "username": username, "name": "Test User", "password": password}),
        )
        .await
    }

    /// The code in the last email sent to `email`.
    pub fn code_for(&self, email: &str) -> String {
        let sent = self.outbox.sent();
        let mail = sent.iter().rev().find(|m| m.to == email).unwrap_or_else(|| panic!("no email to {email}"));
        extract_code(&mail.body)
    }

    pub async fn verify(&self, email: &str, code: &str) -> Response {
        self.post_json("/api/v1/verify-register", &json!({"email": email, "code": code})).await
    }

    /// Registers and verifies `username`; returns (user id, access token).
    pub async fn sign_up(&self, username: &str) -> (String, String) {
        let email = format!("{username}@example.com");
        let r = self.register(&email, username, "correct horse battery").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap());
        let r = self.verify(&email, &self.code_for(&email)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        (body["user"]["id"].as_str().unwrap().to_owned(), body["access_token"].as_str().unwrap().to_owned())
    }

    /// The PostgreSQL server URL and database name of this app, when on PostgreSQL.
    pub fn postgres(&self) -> Option<(String, String)> {
        self.postgres.clone()
    }

    /// The names of the objects in the media store (directory or S3 prefix).
    pub async fn stored_media(&self) -> Vec<String> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        match self.s3_media() {
            Some((store, prefix)) => {
                let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("listing the test prefix");
                objects.into_iter().map(|o| o.location.filename().unwrap_or_default().to_owned()).collect()
            }
            None => std::fs::read_dir(self.media_dir())
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default(),
        }
    }

    /// Writes an object into the media store behind chirp's back.
    pub async fn put_media(&self, name: &str, bytes: &[u8]) {
        use object_store::ObjectStoreExt;
        match self.s3_media() {
            Some((store, prefix)) => {
                store.put(&prefix.clone().join(name), bytes.to_vec().into()).await.expect("writing to the test prefix");
            }
            None => std::fs::write(self.media_dir().join(name), bytes).unwrap(),
        }
    }

    /// The S3 bucket and prefix of the media store, when it is S3.
    fn s3_media(&self) -> Option<(object_store::aws::AmazonS3, object_store::path::Path)> {
        let url = url::Url::parse(self.config.media_store.as_deref().filter(|u| u.starts_with("s3://"))?).unwrap();
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(url.host_str().unwrap())
            .with_endpoint(self.config.s3_endpoint.clone().unwrap())
            .with_allow_http(true)
            .build()
            .unwrap();
        Some((store, object_store::path::Path::from(url.path().trim_matches('/'))))
    }

    /// The media directory, when the media store is one.
    fn media_dir(&self) -> std::path::PathBuf {
        self.config.media_store.as_deref().map(std::path::PathBuf::from).unwrap_or_else(|| self.config.data_dir.join("media"))
    }

    /// The first column of a query's rows, read from this app's database
    /// directly (to check what the API cannot show, such as rows gone).
    pub async fn db_scalars(&self, query: &str) -> Vec<i64> {
        let url = self.config.database_url();
        if url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query_scalar(query).fetch_all(&pool).await.unwrap()
        } else {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query_scalar(query).fetch_all(&pool).await.unwrap()
        }
    }

    /// A sample's value in `/metrics` (`series`: its name and labels as
    /// printed), if the series has been recorded.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        metric_at(&self.client, &self.url("/metrics"), series).await
    }

    pub fn jwt_secret(&self) -> Vec<u8> {
        match &self.config.jwt_secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => std::fs::read_to_string(self.config.data_dir.join("jwt.secret")).unwrap().trim().as_bytes().to_vec(),
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some((server, name)) = self.postgres.take() {
            // Best effort: a fresh runtime on a plain thread, since Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&server).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.ok()
                })
            })
            .join();
        }
    }
}

fn tracing_subscriber_init(config: &Config) -> Option<()> {
    std::env::var("CHIRP_TEST_LOG").ok().map(|_| chirp::telemetry::init(config))
}

/// A sample's value in the `/metrics` at `url` (`series`: its name and
/// labels as printed), if the series has been recorded.
pub async fn metric_at(client: &reqwest::Client, url: &str, series: &str) -> Option<f64> {
    let text = client.get(url).send().await.unwrap().text().await.unwrap();
    let prefix = format!("{series} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.trim().parse().unwrap())
}

/// The 6-digit code in an email body.
pub fn extract_code(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap_or_else(|| panic!("no code in {body:?}")).to_owned()
}

/// Asserts a problem response with `status` and `code`; returns the body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let ct = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(ct.starts_with("application/problem+json"), "content type {ct:?}");
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(), "{body}");
    body
}
