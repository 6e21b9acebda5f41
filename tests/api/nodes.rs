//! Two chirp nodes on one set of backends, each talked to directly.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chirp::ports::broker::Broker;
use futures::StreamExt;
use reqwest::StatusCode;
use sqlx::Connection;

use crate::helpers::TestApp;
use crate::process;

#[tokio::test]
async fn two_nodes_share_tweets_likes_and_notifications() {
    let a = TestApp::spawn().await;
    let b = a.spawn_peer().await;
    let (_, alice) = a.sign_up("alice").await;
    let (_, bob) = a.sign_up("bob").await;

    let tweet = a.tweet(&alice, "posted on a").await["id"].as_str().unwrap().to_owned();
    let (status, read) = b.get_json(&format!("/api/v1/tweet/{tweet}"), Some(&bob)).await;
    assert_eq!(status, StatusCode::OK, "a token from one node works on the other");
    assert_eq!(read["content"], "posted on a");

    assert_eq!(b.like(&bob, &tweet).await, StatusCode::CREATED);
    let got = a.notifications_when(&alice, |n| !n.is_empty()).await;
    assert_eq!(got.len(), 1, "a like on b is notified, read on a");
}

#[tokio::test]
async fn a_like_on_one_node_reaches_a_stream_held_on_another() {
    let a = TestApp::spawn().await;
    // Live streams cross nodes through Redis; without it each node is on its own.
    if a.config.redis_url.is_none() {
        assert!(a.config.database_url.is_none(), "PostgreSQL runs come with Redis in this suite");
        return;
    }
    let b = a.spawn_peer().await;
    let (_, alice) = a.sign_up("alice").await;
    let (_, bob) = a.sign_up("bob").await;
    let tweet = a.tweet(&alice, "watched from b").await["id"].as_str().unwrap().to_owned();

    let r = b.client.get(b.url("/api/v1/notifications/stream")).bearer_auth(&alice).send().await.unwrap();
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap(); // "connected"
    assert_eq!(a.like(&bob, &tweet).await, StatusCode::CREATED);

    let mut text = String::new();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains("event: notification") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "{text}");
}

/// `GET /tweet/{id}` is exact on every node right after a write on another,
/// though each node keeps the tweet in memory (with Redis: version stamps).
#[tokio::test]
async fn a_tweet_read_on_one_node_shows_writes_made_on_another_at_once() {
    let a = TestApp::spawn().await;
    // One SQLite file without Redis is one node: the embedded defaults are not clustered.
    if a.config.redis_url.is_none() && a.config.database_url.is_none() {
        return;
    }
    let b = a.spawn_peer().await;
    let (_, alice) = a.sign_up("alice").await;
    let (_, bob) = a.sign_up("bob").await;
    let tweet = a.tweet(&alice, "kept on both nodes").await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/tweet/{tweet}");
    for node in [&a, &b, &a, &b] {
        let (status, body) = node.get_json(&path, Some(&bob)).await;
        assert_eq!(
            (status, &body["like_count"], &body["liked_by_me"]),
            (StatusCode::OK, &serde_json::json!(0), &serde_json::json!(false))
        );
    }

    assert_eq!(b.like(&bob, &tweet).await, StatusCode::CREATED);
    let (_, body) = a.get_json(&path, Some(&bob)).await;
    assert_eq!(
        (&body["like_count"], &body["liked_by_me"]),
        (&serde_json::json!(1), &serde_json::json!(true)),
        "a like on b, read on a"
    );

    let r = a.client.delete(a.url(&format!("/api/v1/tweet/{tweet}/unlike"))).bearer_auth(&bob).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (_, body) = b.get_json(&path, Some(&bob)).await;
    assert_eq!(
        (&body["like_count"], &body["liked_by_me"]),
        (&serde_json::json!(0), &serde_json::json!(false)),
        "an unlike on a, read on b"
    );

    let r = b.client.patch(b.url(&format!("/api/v1/tweet/{tweet}/views"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, body) = a.get_json(&path, Some(&bob)).await;
    assert_eq!(body["view_count"], 1, "a view on b, read on a");

    let r = a.client.delete(a.url(&path)).bearer_auth(&alice).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (status, _) = b.get_json(&path, Some(&bob)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a delete on a, read on b");
}

/// A timeline page on one node shows the writes made on another within the
/// second a page's counts may lag: likes, the reader's own like, an author's
/// new name and follower count. A node keeps all of them; with Redis, it
/// trusts them after that second only while their stamps have not moved, so
/// it checks them again, and a page read again with nothing written keeps
/// showing the same.
#[tokio::test]
async fn a_timeline_on_one_node_shows_writes_made_on_another_within_a_second() {
    let a = TestApp::spawn().await;
    if a.config.redis_url.is_none() && a.config.database_url.is_none() {
        return; // the embedded defaults are one node
    }
    let b = a.spawn_peer().await;
    let (alice_id, alice) = a.sign_up("alice").await;
    let (_, bob) = a.sign_up("bob").await;
    let (_, carol) = a.sign_up("carol").await;
    assert!(a.follow(&bob, &alice_id).await.is_success());
    let tweet = a.tweet(&alice, "read on both nodes").await["id"].as_str().unwrap().to_owned();
    let first = |page: &serde_json::Value| page["data"][0].clone();
    // What a reader sees of a tweet that others' writes change.
    let seen = |tweet: serde_json::Value| {
        serde_json::json!([
            tweet["like_count"],
            tweet["liked_by_me"],
            tweet["author"]["name"],
            tweet["author"]["followers_count"]
        ])
    };
    let before = serde_json::json!([0, false, "Test User", 1]);
    let after = serde_json::json!([1, true, "Alice Liddell", 2]);

    // The fan-out brings the tweet in within a second.
    let mut page = serde_json::Value::Null;
    for _ in 0..50 {
        let status;
        (status, page) = b.get_json("/api/v1/timeline", Some(&bob)).await;
        assert_eq!(status, StatusCode::OK);
        if first(&page)["id"] == tweet.as_str() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(first(&page)["id"], tweet.as_str(), "{page}");
    assert_eq!(seen(first(&page)), before);
    // Past the second, with nothing written: the same.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (_, page) = b.get_json("/api/v1/timeline", Some(&bob)).await;
    assert_eq!(seen(first(&page)), before, "read again with nothing written");

    assert_eq!(a.like(&bob, &tweet).await, StatusCode::CREATED);
    let r = a
        .client
        .patch(a.url("/api/v1/me"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({"name": "Alice Liddell"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(a.follow(&carol, &alice_id).await.is_success());
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (_, page) = b.get_json("/api/v1/timeline", Some(&bob)).await;
    assert_eq!(seen(first(&page)), after, "written on a, read on b");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (_, page) = b.get_json("/api/v1/timeline", Some(&bob)).await;
    assert_eq!(seen(first(&page)), after, "read again with nothing written");
}

/// An alt text edited on one node shows on another's `GET /tweet/{id}` at
/// once, after likes and views had that node read only the tweet's counts.
#[tokio::test]
async fn an_alt_text_edited_on_one_node_shows_on_another_at_once() {
    let a = TestApp::spawn().await;
    if a.config.redis_url.is_none() && a.config.database_url.is_none() {
        return; // the embedded defaults are one node
    }
    let b = a.spawn_peer().await;
    let (_, alice) = a.sign_up("alice").await;
    let form = reqwest::multipart::Form::new()
        .text("content", "a picture")
        .part("media", reqwest::multipart::Part::bytes(tiny_png()).file_name("p.png").mime_str("image/png").unwrap())
        .text("description", "first");
    let r = a.client.post(a.url("/api/v1/tweet")).bearer_auth(&alice).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: serde_json::Value = r.json().await.unwrap();
    let (id, media) = (tweet["id"].as_str().unwrap(), tweet["media"][0]["id"].as_str().unwrap());
    let path = format!("/api/v1/tweet/{id}");
    let (_, body) = b.get_json(&path, None).await;
    assert_eq!(body["media"][0]["description"], "first");
    // Counts move on a; b reads them again, keeping the body it has.
    let r = a.client.patch(a.url(&format!("{path}/views"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, body) = b.get_json(&path, None).await;
    assert_eq!((&body["view_count"], &body["media"][0]["description"]), (&serde_json::json!(1), &serde_json::json!("first")));

    let r = a
        .client
        .patch(a.url(&format!("/api/v1/media/{media}")))
        .bearer_auth(&alice)
        .json(&serde_json::json!({"description": "second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, body) = b.get_json(&path, None).await;
    assert_eq!((&body["view_count"], &body["media"][0]["description"]), (&serde_json::json!(1), &serde_json::json!("second")));
}

/// The partitions a node's log says it was last assigned (empty if its last
/// rebalance event was a revocation).
/// The notification group's partitions on a node after its last rebalance
/// (the fan-out group, whose name says so, rebalances on its own).
fn last_assignment(log: &str) -> BTreeSet<i32> {
    let Some(line) = log
        .lines()
        .rev()
        .filter(|l| !l.contains("fanout"))
        .find(|l| l.contains("kafka: partitions assigned") || l.contains("kafka: partitions revoked"))
    else {
        return BTreeSet::new();
    };
    if line.contains("revoked") {
        return BTreeSet::new();
    }
    let list = line.rsplit_once("partitions=[").map(|(_, rest)| rest.split(']').next().unwrap_or("")).unwrap_or("");
    list.split(',').filter_map(|p| p.trim().parse().ok()).collect()
}

fn tiny_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The index of the node (`CHIRP_NODE_ID` - 1) holding the outbox lease.
async fn lease_holder(db: &mut sqlx::PgConnection) -> usize {
    let holder: String = sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'outbox-relay'")
        .fetch_one(db)
        .await
        .expect("a node holds the outbox lease");
    holder.split('-').nth(1).and_then(|n| n.parse::<usize>().ok()).expect("holder is node-<id>-...") - 1
}

/// The newest 100 notifications of the owner of `token`, read on the node at `base`.
async fn notifications(client: &reqwest::Client, base: &str, token: &str) -> Vec<serde_json::Value> {
    let url = format!("{base}/api/v1/notifications?limit=100");
    let page: serde_json::Value = client.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    page["data"].as_array().unwrap().clone()
}

/// The actors of `notifications`.
fn actors(notifications: &[serde_json::Value]) -> BTreeSet<&str> {
    notifications.iter().map(|n| n["actor"]["id"].as_str().unwrap()).collect()
}

/// Kafka's murmur2 (`Utils.murmur2`), the hash of its default partitioner,
/// which chirp's producer uses.
fn murmur2(data: &[u8]) -> u32 {
    let (m, r) = (0x5bd1_e995u32, 24);
    let mut h = 0x9747_b28cu32 ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().unwrap()).wrapping_mul(m);
        k ^= k >> r;
        h = h.wrapping_mul(m) ^ k.wrapping_mul(m);
    }
    for (i, &b) in tail.iter().enumerate().rev() {
        h ^= u32::from(b) << (8 * i);
        if i == 0 {
            h = h.wrapping_mul(m);
        }
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^ (h >> 15)
}

/// The partition of the like events for `owner` (they are keyed by owner).
fn partition_of(owner: &str, partitions: u32) -> u32 {
    (murmur2(owner.as_bytes()) & 0x7fff_ffff) % partitions
}

#[test]
fn murmur2_matches_kafka() {
    // The cases of Kafka's UtilsTest.testMurmur2.
    for (key, hash) in [("21", -973932308), ("foobar", -790332482), ("a-little-bit-long-string", -985981536), ("abc", 479470107)]
    {
        assert_eq!(murmur2(key.as_bytes()) as i32, hash, "{key}");
    }
}

/// Three chirp processes on one PostgreSQL, Redis, Kafka and media store,
/// three tweet owners whose like events land on the three partitions, and
/// likers on every node. The node holding the outbox lease is stopped
/// (SIGTERM) between rounds of likes: the two left take its partition and
/// the lease over, and every like is notified exactly once, in the database
/// and on live streams held on both. Then the next lease holder is killed
/// (SIGKILL): the last node takes the lease and the killed node's partitions
/// over, and every like reaches the topic and its owner, each once.
#[tokio::test]
async fn three_nodes_notify_every_like_once_when_nodes_stop() {
    if std::env::var_os("CHIRP_TEST_KAFKA_BROKERS").is_none() {
        // Each process's in-process broker is its own: several processes need Kafka.
        eprintln!("three_nodes_...: runs with CHIRP_TEST_KAFKA_BROKERS (the second pass of .ci/run)");
        return;
    }
    assert!(std::env::var_os("CHIRP_TEST_DATABASE_URL").is_some(), "the Kafka runs of this suite are on PostgreSQL");
    assert!(std::env::var_os("CHIRP_TEST_REDIS_URL").is_some(), "the Kafka runs of this suite have Redis");
    let mut shared = process::backends("nodes").await;
    shared.push(("CHIRP_KAFKA_PARTITIONS".into(), "3".into()));
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(process::Chirp::start_node(shared.clone(), id).await);
    }
    let bases: Vec<String> = nodes.iter().map(|n| n.url("")).collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let mut db = sqlx::PgConnection::connect(nodes[0].env("CHIRP_DATABASE_URL").unwrap()).await.unwrap();

    // The group settles with a partition for each node.
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes.iter().any(|n| last_assignment(&n.log()).is_empty()) {
        assert!(Instant::now() < deadline, "the consumer group did not give each node a partition within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // One owner per partition, each with a tweet; the first one's with an
    // image, posted on one node and served by the others.
    let mut owners: Vec<Option<(String, String)>> = vec![None, None, None];
    for i in 0.. {
        let (id, token) = nodes[i % 3].sign_up(&client, &format!("owner{i}")).await;
        let slot = &mut owners[partition_of(&id, 3) as usize];
        if slot.is_none() {
            *slot = Some((id, token));
        }
        if owners.iter().all(Option::is_some) {
            break;
        }
        assert!(i < 60, "sign-ups landed on every partition");
    }
    let owners: Vec<(String, String)> = owners.into_iter().map(Option::unwrap).collect();
    let mut tweets = Vec::new();
    for (i, (_, token)) in owners.iter().enumerate() {
        let mut form = reqwest::multipart::Form::new().text("content", format!("owner {i}'s tweet"));
        if i == 0 {
            form =
                form.part("media", reqwest::multipart::Part::bytes(tiny_png()).file_name("p.png").mime_str("image/png").unwrap());
        }
        let r = client.post(nodes[i].url("/api/v1/tweet")).bearer_auth(token).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        tweets.push(r.json::<serde_json::Value>().await.unwrap());
    }
    let media_url = tweets[0]["media"][0]["url"].as_str().unwrap().to_owned();
    let path = media_url.find("/media/").map(|at| &media_url[at..]).expect("a media URL");
    let mut served = Vec::new();
    for node in &nodes[1..] {
        let r = client.get(node.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "media posted on node 1 served by {}", node.url(""));
        assert_eq!(r.headers()["content-type"], "image/png");
        served.push(r.bytes().await.unwrap());
    }
    assert_eq!(served[0], served[1], "the same object from every node");
    let tweets: Vec<String> = tweets.iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();

    let mut likers = Vec::new();
    for i in 0..24 {
        likers.push(nodes[i % 3].sign_up(&client, &format!("liker{i}")).await);
    }

    // The first owner watches a live stream on every node.
    let mut streams = Vec::new();
    let endless = reqwest::Client::new(); // no overall timeout: the streams outlive 20 s
    for base in &bases {
        let r = endless.get(format!("{base}/api/v1/notifications/stream")).bearer_auth(&owners[0].1).send().await.unwrap();
        let mut body = r.bytes_stream();
        body.next().await.unwrap().unwrap(); // "connected"
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let reader = tokio::spawn({
            let text = text.clone();
            async move {
                while let Some(Ok(chunk)) = body.next().await {
                    text.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk));
                }
            }
        });
        streams.push((text, reader));
    }

    // Each liker of a round likes the three tweets, on the nodes still up.
    let round = |likers: &[(String, String)], up: Vec<usize>| {
        let mut likes = Vec::new();
        for (i, (_, token)) in likers.iter().enumerate() {
            for (t, tweet) in tweets.iter().enumerate() {
                likes.push((up[(i + t) % up.len()], token.clone(), tweet.clone()));
            }
        }
        let likes: Vec<_> = likes
            .into_iter()
            .map(|(node, token, tweet)| {
                let (client, url) = (client.clone(), format!("{}/api/v1/tweet/{tweet}/like", bases[node]));
                async move {
                    let r = client.post(url).bearer_auth(token).send().await.unwrap();
                    assert_eq!(r.status(), StatusCode::CREATED);
                }
            })
            .collect();
        futures::future::join_all(likes)
    };
    let notified = |node: usize, want: usize| {
        let (client, base, owners) = (client.clone(), bases[node].clone(), owners.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                let mut counts = Vec::new();
                for (_, token) in &owners {
                    counts.push(notifications(&client, &base, token).await.len());
                }
                if counts.iter().all(|&c| c >= want) || Instant::now() > deadline {
                    return counts;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let diagnose = |nodes: &[process::Chirp]| {
        nodes
            .iter()
            .map(|n| {
                let log = n.log();
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("kafka") || l.contains("outbox") || l.contains("live") || l.contains("WARN"))
                    .collect();
                format!("--- {}:\n{}", n.url(""), lines.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Round one on all three; then the lease holder stops gracefully.
    round(&likers[0..8], vec![0, 1, 2]).await;
    assert_eq!(notified(0, 8).await, [8, 8, 8], "round one notified");
    let first = lease_holder(&mut db).await;
    nodes[first].stop();
    assert!(
        !nodes[first].log().contains("connections still open"),
        "the event stream open on the stopped node ended at the signal instead of holding the drain"
    );
    let up: Vec<usize> = (0..3).filter(|&i| i != first).collect();

    // Round two on the other two; then the next lease holder is killed.
    round(&likers[8..16], up.clone()).await;
    let counts = notified(up[0], 16).await;
    assert_eq!(counts, [16, 16, 16], "round two notified after node {} stopped\n{}", first + 1, diagnose(&nodes));
    let taken: BTreeSet<i32> = up.iter().flat_map(|&i| last_assignment(&nodes[i].log())).collect();
    assert_eq!(taken, BTreeSet::from([0, 1, 2]), "the group rebalanced onto the two left");
    for (owner, token) in &owners {
        let got = notifications(&client, &bases[up[1]], token).await;
        assert_eq!(
            actors(&got),
            likers[..16].iter().map(|(id, _)| id.as_str()).collect(),
            "one notification per liker for {owner}"
        );
    }
    // The live streams on both running nodes saw each of the first owner's notifications once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.iter().any(|&i| streams[i].0.lock().unwrap().matches("event: notification").count() < 16)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // any duplicate would arrive now
    for &i in &up {
        let text = streams[i].0.lock().unwrap().clone();
        let ids: BTreeSet<&str> = text.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
        assert_eq!(text.matches("event: notification").count(), 16, "stream on node {}: {text}", i + 1);
        assert_eq!(ids.len(), 16, "no notification streamed twice");
    }
    for (_, reader) in &streams {
        reader.abort();
    }

    // The next lease holder is killed (SIGKILL) and round three goes to the
    // last node: it takes the lease over and publishes every like.
    let second = lease_holder(&mut db).await;
    assert!(up.contains(&second), "a running node took the lease over");
    let last = up.iter().copied().find(|&i| i != second).unwrap();
    nodes[second].kill();
    round(&likers[16..24], vec![last]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&mut db).await.unwrap();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} likes unpublished 60 s after the lease holder was killed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(lease_holder(&mut db).await, last, "the last node holds the lease");
    // Every owner is notified of round three, those on the killed node's
    // partitions included: Kafka hands a dead member's partitions over after
    // its session times out; on tansu 0.6, which leaves them with the dead
    // member, the last node's group watch rejoins the group to get them
    // (src/ports/broker/kafka.rs), which takes up to a minute more.
    let deadline = Instant::now() + Duration::from_secs(120);
    for (owner, token) in &owners {
        loop {
            let got = notifications(&client, &bases[last], token).await;
            if actors(&got).len() == 24 {
                assert_eq!(got.len(), 24);
                assert_eq!(
                    actors(&got),
                    likers.iter().map(|(id, _)| id.as_str()).collect(),
                    "one notification per liker for {owner}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "round three not notified to {owner} on the last node\n{}", diagnose(&nodes));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(last_assignment(&nodes[last].log()), BTreeSet::from([0, 1, 2]), "the last node holds every partition");
    eprintln!(
        "three nodes: the last node's group watch rejoined {} times",
        nodes[last].log().matches("rejoining the group").count()
    );

    // The topic holds each like once, on its owner's partition.
    let broker = chirp::ports::broker::KafkaBroker::connect(
        &std::env::var("CHIRP_TEST_KAFKA_BROKERS").unwrap(),
        chirp::ports::broker::TopicLayout::partitions(3),
    )
    .await
    .unwrap();
    let topic = nodes[last].env("CHIRP_KAFKA_TOPIC").unwrap().to_owned();
    let mut audit = broker.subscribe(&topic, &crate::helpers::unique("audit")).await.unwrap();
    let mut events = Vec::new();
    let mut partitions = BTreeSet::new();
    while let Ok(Ok(d)) = tokio::time::timeout(Duration::from_secs(if events.len() < 72 { 30 } else { 3 }), audit.next()).await {
        let event: serde_json::Value = serde_json::from_slice(&d.payload).unwrap();
        events.push(event["event_id"].to_string());
        partitions.insert(d.partition);
    }
    assert_eq!(partitions, BTreeSet::from([0, 1, 2]), "likes on every partition");
    assert_eq!(events.iter().collect::<BTreeSet<_>>().len(), 72, "every like published");
    // A relay killed between the broker's acknowledgement and marking its
    // rows may leave a batch to be published again (at least once); the
    // consumers' idempotence is what keeps notifications exactly once.
    eprintln!("three nodes: {} messages for 72 likes", events.len());
}
