use std::time::{Duration, Instant};

use chirp::domain::events::TweetLiked;
use chirp::domain::{Id, Timestamp};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

impl TestApp {
    pub async fn like(&self, token: &str, tweet: &str) -> StatusCode {
        self.client.post(self.url(&format!("/api/v1/tweet/{tweet}/like"))).bearer_auth(token).send().await.unwrap().status()
    }

    /// The owner's notifications once `done` holds for them (waits up to 15 s).
    pub async fn notifications_when(&self, token: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, page) = self.get_json("/api/v1/notifications?limit=100", Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let data = page["data"].as_array().unwrap().clone();
            if done(&data) || Instant::now() > deadline {
                return data;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn tweet_id(app: &TestApp, token: &str, text: &str) -> String {
    app.tweet(token, text).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_like_notifies_the_tweets_owner() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (bob_id, bob) = app.sign_up("bob").await;
    let tweet = tweet_id(&app, &alice, "hello").await;

    assert_eq!(app.like(&bob, &tweet).await, StatusCode::CREATED);
    let got = app.notifications_when(&alice, |n| !n.is_empty()).await;
    assert_eq!(got.len(), 1);
    let n = &got[0];
    assert_eq!(n["kind"], "like");
    assert_eq!(n["message"], "bob liked your tweet");
    assert_eq!(n["actor"]["id"], bob_id.as_str());
    assert_eq!(n["tweet_id"], tweet.as_str());
    assert_eq!(n["tweet"]["id"], tweet.as_str());
    assert_eq!(n["read"], false);
    assert!(n["id"].is_string() && n["created_at"].is_string());
    let (_, count) = app.get_json("/api/v1/notifications/unread-count", Some(&alice)).await;
    assert_eq!(count, json!({"unread": 1}));
    // Bob was notified of nothing.
    let (_, bobs) = app.get_json("/api/v1/notifications", Some(&bob)).await;
    assert_eq!(bobs["data"], json!([]));
}

#[tokio::test]
async fn liking_your_own_tweet_notifies_nobody() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let own = tweet_id(&app, &alice, "mine").await;
    let other = tweet_id(&app, &alice, "also mine").await;

    app.like(&alice, &own).await;
    app.like(&bob, &other).await; // a later event: once it is in, the first was handled too
    let got = app.notifications_when(&alice, |n| !n.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got_later = app.notifications_when(&alice, |_| true).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got_later.len(), 1);
    assert_eq!(got_later[0]["tweet_id"], other.as_str());
}

#[tokio::test]
async fn like_unlike_and_like_again_notify_once() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let tweet = tweet_id(&app, &alice, "fickle").await;
    let barrier = tweet_id(&app, &alice, "barrier").await;

    app.like(&bob, &tweet).await;
    app.client.delete(app.url(&format!("/api/v1/tweet/{tweet}/unlike"))).bearer_auth(&bob).send().await.unwrap();
    app.like(&bob, &tweet).await;
    app.like(&bob, &barrier).await;
    let got = app.notifications_when(&alice, |n| n.iter().any(|x| x["tweet_id"] == barrier.as_str())).await;
    let on_tweet = got.iter().filter(|n| n["tweet_id"] == tweet.as_str()).count();
    assert_eq!(on_tweet, 1, "{got:?}");
}

#[tokio::test]
async fn notifications_are_marked_read_some_or_all() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let mut fans = Vec::new();
    for i in 0..3 {
        fans.push(app.sign_up(&format!("fan_{i}")).await.1);
    }
    let tweet = tweet_id(&app, &alice, "read me").await;
    for fan in &fans {
        app.like(fan, &tweet).await;
    }
    let got = app.notifications_when(&alice, |n| n.len() == 3).await;
    assert_eq!(got.len(), 3);

    let first = got[0]["id"].as_str().unwrap();
    let r = app
        .client
        .post(app.url("/api/v1/notifications/read"))
        .bearer_auth(&alice)
        .json(&json!({"ids": [first, "nonsense"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, unread) = app.get_json("/api/v1/notifications?unread=true", Some(&alice)).await;
    assert_eq!(unread["data"].as_array().unwrap().len(), 2);
    assert!(unread["data"].as_array().unwrap().iter().all(|n| n["id"] != first));
    let (_, count) = app.get_json("/api/v1/notifications/unread-count", Some(&alice)).await;
    assert_eq!(count["unread"], 2);

    let r = app.client.post(app.url("/api/v1/notifications/read")).bearer_auth(&alice).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, count) = app.get_json("/api/v1/notifications/unread-count", Some(&alice)).await;
    assert_eq!(count["unread"], 0);
    let (_, all) = app.get_json("/api/v1/notifications", Some(&alice)).await;
    assert!(all["data"].as_array().unwrap().iter().all(|n| n["read"] == true));

    let r = app.client.get(app.url("/api/v1/notifications?unread=maybe")).bearer_auth(&alice).send().await.unwrap();
    assert_problem(r, 422, "validation_failed").await;
    assert_eq!(app.get_json("/api/v1/notifications", None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn deleting_a_tweet_deletes_its_notifications() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let tweet = tweet_id(&app, &alice, "short-lived").await;
    app.like(&bob, &tweet).await;
    assert_eq!(app.notifications_when(&alice, |n| !n.is_empty()).await.len(), 1);

    app.client.delete(app.url(&format!("/api/v1/tweet/{tweet}"))).bearer_auth(&alice).send().await.unwrap();
    let (_, page) = app.get_json("/api/v1/notifications", Some(&alice)).await;
    assert_eq!(page["data"], json!([]));
}

#[tokio::test]
async fn the_stream_delivers_a_new_notification() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let tweet = tweet_id(&app, &alice, "live").await;

    let r = app.client.get(app.url("/api/v1/notifications/stream")).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = r.bytes_stream();
    // Wait for the stream to be set up before the like.
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("connected"));

    app.like(&bob, &tweet).await;
    let mut text = String::new();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains("event: notification") && text.contains("\n\n") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "{text}");
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("a data line");
    let n: Value = serde_json::from_str(data).unwrap();
    assert_eq!(n["message"], "bob liked your tweet");

    let r = app.client.get(app.url("/api/v1/notifications/stream")).send().await.unwrap();
    assert_problem(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn malformed_and_unknown_events_are_skipped_and_the_consumer_goes_on() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.sign_up("alice").await;
    let (bob_id, bob) = app.sign_up("bob").await;
    let tweet = tweet_id(&app, &alice, "robust").await;
    let topic = app.config.kafka_topic.clone();

    // Keyed like the real events for alice, so they sit before her like in one partition.
    app.broker.publish(&topic, alice_id.as_bytes(), b"{not json").await.unwrap();
    let mut future = TweetLiked::new(
        Id::from_i64(1),
        tweet.parse().unwrap(),
        alice_id.parse().unwrap(),
        bob_id.parse().unwrap(),
        Timestamp::now(),
    );
    future.schema_version = 99;
    app.broker.publish(&topic, alice_id.as_bytes(), &serde_json::to_vec(&future).unwrap()).await.unwrap();

    app.like(&bob, &tweet).await;
    let got = app.notifications_when(&alice, |n| !n.is_empty()).await;
    assert_eq!(got.len(), 1);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let skipped =
        metrics.lines().find_map(|l| l.strip_prefix("chirp_consumer_skipped_total ")).and_then(|v| v.trim().parse::<f64>().ok());
    assert_eq!(skipped, Some(2.0), "{metrics}");
}

#[tokio::test]
async fn an_event_delivered_twice_notifies_once() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.sign_up("alice").await;
    let (bob_id, _) = app.sign_up("bob").await;
    let (_, carol) = app.sign_up("carol").await;
    let tweet = tweet_id(&app, &alice, "twice").await;
    let barrier = tweet_id(&app, &alice, "barrier").await;
    let topic = app.config.kafka_topic.clone();

    // As if the relay died between publishing and marking: the same event goes out again.
    let event = TweetLiked::new(
        Id::from_i64(42),
        tweet.parse().unwrap(),
        alice_id.parse().unwrap(),
        bob_id.parse().unwrap(),
        Timestamp::now(),
    );
    let bytes = serde_json::to_vec(&event).unwrap();
    app.broker.publish(&topic, alice_id.as_bytes(), &bytes).await.unwrap();
    app.broker.publish(&topic, alice_id.as_bytes(), &bytes).await.unwrap();
    app.like(&carol, &barrier).await;

    let got = app.notifications_when(&alice, |n| n.iter().any(|x| x["tweet_id"] == barrier.as_str())).await;
    assert_eq!(got.iter().filter(|n| n["tweet_id"] == tweet.as_str()).count(), 1, "{got:?}");
}

#[tokio::test]
async fn a_like_on_a_tweet_deleted_before_its_event_is_consumed_notifies_nobody() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.sign_up("alice").await;
    let (bob_id, _) = app.sign_up("bob").await;
    let (_, carol) = app.sign_up("carol").await;
    let tweet = tweet_id(&app, &alice, "gone").await;
    let barrier = tweet_id(&app, &alice, "barrier").await;
    app.client.delete(app.url(&format!("/api/v1/tweet/{tweet}"))).bearer_auth(&alice).send().await.unwrap();
    let topic = app.config.kafka_topic.clone();

    let event = TweetLiked::new(
        Id::from_i64(43),
        tweet.parse().unwrap(),
        alice_id.parse().unwrap(),
        bob_id.parse().unwrap(),
        Timestamp::now(),
    );
    app.broker.publish(&topic, alice_id.as_bytes(), &serde_json::to_vec(&event).unwrap()).await.unwrap();
    app.like(&carol, &barrier).await;
    let got = app.notifications_when(&alice, |n| !n.is_empty()).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tweet_id"], barrier.as_str());
}

/// An open event stream, read one event at a time.
pub struct EventStream {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl EventStream {
    /// Opens the caller's stream and waits until it is registered.
    pub async fn open(app: &TestApp, token: &str) -> Self {
        let r = app.client.get(app.url("/api/v1/notifications/stream")).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mut stream = Self { body: Box::pin(r.bytes_stream()), buffer: String::new() };
        let first = stream.next_block(Duration::from_secs(5)).await.expect("the stream says it is connected");
        assert!(first.contains("connected"), "{first}");
        stream
    }

    /// The next block (up to a blank line); `None` when the stream ended or nothing came in time.
    async fn next_block(&mut self, within: Duration) -> Option<String> {
        tokio::time::timeout(within, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block = self.buffer[..end].to_owned();
                    self.buffer.drain(..end + 2);
                    return Some(block);
                }
                let chunk = self.body.next().await?.ok()?;
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The next event (comments skipped): its name and data.
    pub async fn next_event(&mut self, within: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + within;
        loop {
            let block = self.next_block(deadline.saturating_duration_since(Instant::now())).await?;
            let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
            if let Some(event) = field("event: ") {
                return Some((event, field("data: ").unwrap_or_default()));
            }
        }
    }

    /// Whether the server ended the stream within `within`.
    async fn ends_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            while let Some(chunk) = self.body.next().await {
                if chunk.is_err() {
                    break;
                }
            }
        })
        .await
        .is_ok()
    }
}

#[tokio::test]
async fn a_burst_of_likes_reaches_the_stream_whole_once_each_in_order() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let mut tweets = Vec::new();
    for i in 0..200 {
        tweets.push(tweet_id(&app, &alice, &format!("tweet {i}")).await);
    }
    let mut stream = EventStream::open(&app, &alice).await;

    // All at once: the stream loads what is waiting together.
    let liked = futures::future::join_all(tweets.iter().map(|t| app.like(&bob, t))).await;
    assert!(liked.iter().all(|s| *s == StatusCode::CREATED), "{liked:?}");

    let mut seen = Vec::new();
    while seen.len() < tweets.len() {
        let Some((event, data)) = stream.next_event(Duration::from_secs(10)).await else { break };
        assert_eq!(event, "notification");
        let n: Value = serde_json::from_str(&data).unwrap();
        seen.push((n["id"].as_str().unwrap().parse::<i64>().unwrap(), n["tweet_id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(seen.len(), tweets.len(), "every like arrived on the stream");
    let mut on_tweets: Vec<&String> = seen.iter().map(|(_, t)| t).collect();
    on_tweets.sort();
    on_tweets.dedup();
    assert_eq!(on_tweets.len(), tweets.len(), "once each");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in the order they were stored");
    assert_eq!(stream.next_event(Duration::from_millis(500)).await, None, "nothing more");
}

#[tokio::test]
async fn opening_more_streams_than_allowed_closes_the_users_oldest() {
    let app = TestApp::spawn_with(|c| c.live_streams_per_user = 2).await;
    let (_, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let tweet = tweet_id(&app, &alice, "popular").await;
    let mut oldest = EventStream::open(&app, &alice).await;
    let mut second = EventStream::open(&app, &alice).await;
    let mut bobs = EventStream::open(&app, &bob).await;

    let mut newest = EventStream::open(&app, &alice).await;

    let (event, data) = oldest.next_event(Duration::from_secs(5)).await.expect("the oldest is told why it closes");
    assert_eq!((event.as_str(), data.as_str()), ("closed", r#"{"reason":"replaced"}"#));
    assert!(oldest.ends_within(Duration::from_secs(5)).await, "the oldest stream ended");
    app.like(&bob, &tweet).await;
    for stream in [&mut second, &mut newest] {
        let (event, data) = stream.next_event(Duration::from_secs(10)).await.expect("alice's open streams get the like");
        assert_eq!(event, "notification");
        assert_eq!(serde_json::from_str::<Value>(&data).unwrap()["tweet_id"], tweet.as_str());
    }
    assert_eq!(bobs.next_event(Duration::from_millis(500)).await, None, "bob's stream is untouched");
}

#[tokio::test]
async fn a_node_at_its_stream_limit_answers_503_with_retry_after_until_one_closes() {
    let app = TestApp::spawn_with(|c| c.live_streams_per_node = 2).await;
    let (_, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let (_, carol) = app.sign_up("carol").await;
    let alices = EventStream::open(&app, &alice).await;
    let _bobs = EventStream::open(&app, &bob).await;

    let r = app.client.get(app.url("/api/v1/notifications/stream")).bearer_auth(&carol).send().await.unwrap();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    assert_problem(r, 503, "service_unavailable").await;
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() > 0));

    drop(alices);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.client.get(app.url("/api/v1/notifications/stream")).bearer_auth(&carol).send().await.unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "a closed stream freed no room");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bob (signed in, with notifications of his own) can neither list, count,
/// mark read nor stream alice's notifications, nor delete her tweet.
#[tokio::test]
async fn one_user_cannot_reach_another_users_notifications_or_tweets() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let (_, carol) = app.sign_up("carol").await;
    let alices_tweet = tweet_id(&app, &alice, "alice's").await;
    let bobs_tweet = tweet_id(&app, &bob, "bob's").await;
    let mut alices_stream = EventStream::open(&app, &alice).await;
    let mut bobs_stream = EventStream::open(&app, &bob).await;

    app.like(&carol, &alices_tweet).await;
    let (event, data) = alices_stream.next_event(Duration::from_secs(10)).await.expect("alice's stream gets her like");
    assert_eq!(event, "notification");
    let alices_notification: Value = serde_json::from_str(&data).unwrap();
    let alices_id = alices_notification["id"].as_str().unwrap().to_owned();
    assert_eq!(bobs_stream.next_event(Duration::from_millis(500)).await, None, "bob's stream does not carry alice's");
    app.like(&carol, &bobs_tweet).await;
    let (_, data) = bobs_stream.next_event(Duration::from_secs(10)).await.expect("bob's stream gets his own");
    assert_eq!(serde_json::from_str::<Value>(&data).unwrap()["tweet_id"], bobs_tweet.as_str());

    // List and count: bob sees his own notification only.
    let bobs = app.notifications_when(&bob, |n| !n.is_empty()).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["tweet_id"], bobs_tweet.as_str());
    let (_, count) = app.get_json("/api/v1/notifications/unread-count", Some(&bob)).await;
    assert_eq!(count["unread"], 1);

    // Mark: naming alice's notification, or "all", marks none of hers.
    for body in [json!({"ids": [alices_id]}), json!({})] {
        let r = app.client.post(app.url("/api/v1/notifications/read")).bearer_auth(&bob).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let (_, unread) = app.get_json("/api/v1/notifications?unread=true", Some(&alice)).await;
    assert_eq!(unread["data"][0]["id"], alices_id.as_str(), "alice's notification is still unread: {unread}");
    let (_, count) = app.get_json("/api/v1/notifications/unread-count", Some(&alice)).await;
    assert_eq!(count["unread"], 1);

    // Delete: bob may not delete alice's tweet, which stays, with its like.
    let r = app.client.delete(app.url(&format!("/api/v1/tweet/{alices_tweet}"))).bearer_auth(&bob).send().await.unwrap();
    assert_problem(r, 403, "forbidden").await;
    let (status, tweet) = app.get_json(&format!("/api/v1/tweet/{alices_tweet}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tweet["like_count"], 1);
}

/// Likes of several owners' tweets arriving together (on PostgreSQL, a
/// batch of likes is one statement that reads each tweet's owner itself):
/// each is counted on its own tweet and notifies that tweet's owner once,
/// with the event naming the right owner; an owner's like of their own
/// tweet notifies nobody.
#[tokio::test]
async fn likes_of_several_owners_tweets_together_each_count_and_notify_their_own_owner() {
    let app = TestApp::spawn().await;
    let mut owners = Vec::new();
    for name in ["ann", "ben", "cat"] {
        let (id, token) = app.sign_up(name).await;
        let tweet = tweet_id(&app, &token, &format!("{name}'s tweet")).await;
        owners.push((id, token, tweet));
    }
    let mut fans = Vec::new();
    for i in 0..8 {
        fans.push(app.sign_up(&format!("fan{i}")).await.1);
    }
    // Every fan likes every tweet; each owner likes their own and the next one's.
    let mut likes = Vec::new();
    for fan in &fans {
        for (_, _, tweet) in &owners {
            likes.push((fan.clone(), tweet.clone()));
        }
    }
    for (i, (_, token, tweet)) in owners.iter().enumerate() {
        likes.push((token.clone(), tweet.clone()));
        likes.push((token.clone(), owners[(i + 1) % 3].2.clone()));
    }
    let app = &app;
    let sent = likes.iter().map(|(token, tweet)| async move {
        let r = app.client.post(app.url(&format!("/api/v1/tweet/{tweet}/like"))).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        (tweet.clone(), body["like_count"].as_i64().unwrap())
    });
    let answers = futures::future::join_all(sent).await;
    for (_, token, tweet) in &owners {
        let mut counts: Vec<i64> = answers.iter().filter(|(t, _)| t == tweet).map(|(_, c)| *c).collect();
        counts.sort_unstable();
        assert_eq!(counts, (1..=10).collect::<Vec<i64>>(), "each like of {tweet} answered with the count it made");
        let (_, t) = app.get_json(&format!("/api/v1/tweet/{tweet}"), None).await;
        assert_eq!(t["like_count"], 10);
        // 8 fans and the previous owner: 9 notifications, all of this tweet.
        let got = app.notifications_when(token, |n| n.len() >= 9).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let got_later = app.notifications_when(token, |_| true).await;
        assert_eq!((got.len(), got_later.len()), (9, 9));
        assert!(got_later.iter().all(|n| n["tweet_id"] == tweet.as_str()), "{got_later:?}");
    }
}
