//! Two chirp nodes on one set of backends, each talked to directly.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;

use crate::helpers::TestApp;

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
