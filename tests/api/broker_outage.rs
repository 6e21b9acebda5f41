//! The Kafka path under a broker outage, against a real Kafka-protocol
//! broker (tansu) that this test starts, kills and restarts on a port of its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::TestApp;

fn tansu_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("tansu")).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/tansu")));
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() && std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but no tansu binary: install it with `cargo install tansu --locked --features dynostore,libsql`");
    }
    found
}

struct Tansu {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Tansu {
    fn start(binary: PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut tansu = Self { binary, dir: tempfile::tempdir().unwrap(), port, child: None };
        tansu.restart();
        tansu
    }

    fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.dir.path().join("tansu.log")).unwrap();
        let child = Command::new(&self.binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start listening");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn likes_made_while_the_broker_is_down_are_notified_once_when_it_returns() {
    let Some(binary) = tansu_binary() else { return };
    let mut tansu = Tansu::start(binary);
    let brokers = format!("127.0.0.1:{}", tansu.port);
    let app = TestApp::spawn_with(|c| {
        c.kafka_brokers = Some(brokers);
        c.kafka_partitions = Some(1);
    })
    .await;
    let (_, alice) = app.sign_up("alice").await;
    let tweet = app.tweet(&alice, "through kafka").await["id"].as_str().unwrap().to_owned();
    let mut fans = Vec::new();
    for i in 0..4 {
        fans.push(app.sign_up(&format!("fan_{i}")).await.1);
    }

    assert_eq!(app.like(&fans[0], &tweet).await, StatusCode::CREATED);
    assert_eq!(app.notifications_when(&alice, |n| n.len() == 1).await.len(), 1, "notified through the broker");

    tansu.kill();
    for fan in &fans[1..] {
        assert_eq!(app.like(fan, &tweet).await, StatusCode::CREATED, "likes succeed while the broker is down");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    tansu.restart();

    let got = app.notifications_when(&alice, |n| n.len() >= 4).await;
    assert_eq!(got.len(), 4, "every like notified after the broker returned: {got:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = app.notifications_when(&alice, |_| true).await;
    assert_eq!(again.len(), 4, "and only once");
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{tweet}"), None).await;
    assert_eq!(t["like_count"], 4);
}
