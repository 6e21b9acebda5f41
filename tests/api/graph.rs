use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem};

impl TestApp {
    pub async fn follow(&self, token: &str, user: &str) -> StatusCode {
        self.client.post(self.url(&format!("/api/v1/user/{user}/follow"))).bearer_auth(token).send().await.unwrap().status()
    }

    pub async fn unfollow(&self, token: &str, user: &str) -> StatusCode {
        self.client.delete(self.url(&format!("/api/v1/user/{user}/unfollow"))).bearer_auth(token).send().await.unwrap().status()
    }
}

fn usernames(page: &Value) -> Vec<&str> {
    page["data"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn following_is_counted_and_listed_newest_first() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.sign_up("alice").await;
    let (bob_id, bob) = app.sign_up("bob").await;
    let (carol_id, carol) = app.sign_up("carol").await;

    assert_eq!(app.follow(&bob, &alice_id).await, StatusCode::CREATED);
    assert_eq!(app.follow(&bob, &alice_id).await, StatusCode::OK);
    assert_eq!(app.follow(&carol, &alice_id).await, StatusCode::CREATED);
    assert_eq!(app.follow(&alice, &carol_id).await, StatusCode::CREATED);

    let (_, a) = app.get_json(&format!("/api/v1/user/{alice_id}"), None).await;
    assert_eq!((a["followers_count"].as_i64(), a["followings_count"].as_i64()), (Some(2), Some(1)));
    assert!(a.get("email").is_none(), "no email on public users");
    let (_, followers) = app.get_json(&format!("/api/v1/user/{alice_id}/followers"), None).await;
    assert_eq!(usernames(&followers), ["carol", "bob"]);
    assert_eq!(followers["next_cursor"], Value::Null);
    let (_, followings) = app.get_json(&format!("/api/v1/user/{bob_id}/followings"), None).await;
    assert_eq!(usernames(&followings), ["alice"]);

    let (_, seen_by_bob) = app.get_json(&format!("/api/v1/user/{alice_id}"), Some(&bob)).await;
    assert_eq!(seen_by_bob["followed_by_me"], true);
    let (_, seen_by_alice) = app.get_json(&format!("/api/v1/user/{bob_id}"), Some(&alice)).await;
    assert_eq!(seen_by_alice["followed_by_me"], false);

    assert_eq!(app.unfollow(&bob, &alice_id).await, StatusCode::NO_CONTENT);
    assert_eq!(app.unfollow(&bob, &alice_id).await, StatusCode::NO_CONTENT, "unfollowing someone not followed");
    let (_, a) = app.get_json(&format!("/api/v1/user/{alice_id}"), None).await;
    assert_eq!(a["followers_count"], 1);
    let (_, b) = app.get_json(&format!("/api/v1/user/{bob_id}"), None).await;
    assert_eq!(b["followings_count"], 0);
}

#[tokio::test]
async fn nobody_follows_themselves() {
    let app = TestApp::spawn().await;
    let (id, token) = app.sign_up("narcissus").await;
    let r = app.client.post(app.url(&format!("/api/v1/user/{id}/follow"))).bearer_auth(&token).send().await.unwrap();
    assert_problem(r, 422, "cannot_follow_self").await;
}

#[tokio::test]
async fn following_unknown_or_malformed_users_is_404() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("dora").await;
    for id in ["123", "abc", "-5"] {
        let r = app.client.post(app.url(&format!("/api/v1/user/{id}/follow"))).bearer_auth(&token).send().await.unwrap();
        assert_problem(r, 404, "not_found").await;
        let r = app.client.delete(app.url(&format!("/api/v1/user/{id}/unfollow"))).bearer_auth(&token).send().await.unwrap();
        assert_problem(r, 404, "not_found").await;
        assert_eq!(app.get_json(&format!("/api/v1/user/{id}"), None).await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.get_json(&format!("/api/v1/user/{id}/followers"), None).await.0, StatusCode::NOT_FOUND);
    }
    let (_, me) = app.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!(me["followings_count"], 0);
}

#[tokio::test]
async fn follower_lists_page_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let (star_id, _) = app.sign_up("star").await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let name = format!("fan_{i}");
        let (_, token) = app.sign_up(&name).await;
        app.follow(&token, &star_id).await;
        expected.insert(0, name);
    }
    let seen = app.every_page(&format!("/api/v1/user/{star_id}/followers?limit=3"), None).await;
    let seen: Vec<String> = seen.iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn the_home_timeline_follows_follows() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (bob_id, bob) = app.sign_up("bob").await;
    let (_, carol) = app.sign_up("carol").await;
    app.tweet(&bob, "bob 1").await;
    app.tweet(&carol, "carol 1").await;
    app.tweet(&alice, "alice 1").await;

    let contents = |page: &Value| {
        page["data"].as_array().unwrap().iter().map(|t| t["content"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let (_, tl) = app.get_json("/api/v1/timeline", Some(&alice)).await;
    assert_eq!(contents(&tl), ["alice 1"]);

    app.follow(&alice, &bob_id).await;
    app.tweet(&bob, "bob 2").await;
    let (_, tl) = app.get_json("/api/v1/timeline", Some(&alice)).await;
    assert_eq!(contents(&tl), ["bob 2", "alice 1", "bob 1"], "a new follow shows at once");

    let (_, page) = app.get_json("/api/v1/timeline?limit=2", Some(&alice)).await;
    assert_eq!(contents(&page), ["bob 2", "alice 1"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page) = app.get_json(&format!("/api/v1/timeline?limit=2&cursor={cursor}"), Some(&alice)).await;
    assert_eq!(contents(&page), ["bob 1"]);
    assert_eq!(page["next_cursor"], Value::Null);

    app.unfollow(&alice, &bob_id).await;
    let (_, tl) = app.get_json("/api/v1/timeline", Some(&alice)).await;
    assert_eq!(contents(&tl), ["alice 1"], "an unfollow removes their tweets");

    assert_eq!(app.get_json("/api/v1/timeline", None).await.0, StatusCode::UNAUTHORIZED);
}

/// Group commit: follows arriving together share a transaction, yet each
/// answer carries the follower count its own follow made, and both sides'
/// counts end exact.
#[tokio::test]
async fn follows_arriving_together_each_get_their_own_count() {
    let app = TestApp::spawn().await;
    let (star_id, _) = app.sign_up("star").await;
    let mut fans = Vec::new();
    for i in 0..20 {
        fans.push(app.sign_up(&format!("fan{i}")).await);
    }
    let follows = fans
        .iter()
        .map(|(_, token)| app.client.post(app.url(&format!("/api/v1/user/{star_id}/follow"))).bearer_auth(token).send());
    let mut counts = Vec::new();
    for r in futures::future::join_all(follows).await {
        let r = r.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["followed_by_me"], true);
        counts.push(body["followers_count"].as_i64().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<i64>>());

    // Half unfollow while the other half follow again (already following: 200).
    let unfollows = fans.iter().take(10).map(|(_, t)| app.unfollow(t, &star_id));
    let again = fans.iter().skip(10).map(|(_, t)| app.follow(t, &star_id));
    let (unfollows, again) = tokio::join!(futures::future::join_all(unfollows), futures::future::join_all(again));
    assert!(unfollows.iter().all(|s| *s == StatusCode::NO_CONTENT));
    assert!(again.iter().all(|s| *s == StatusCode::OK));
    let (_, star) = app.get_json(&format!("/api/v1/user/{star_id}"), None).await;
    assert_eq!(star["followers_count"], 10);
    for (i, (fan_id, _)) in fans.iter().enumerate() {
        let (_, fan) = app.get_json(&format!("/api/v1/user/{fan_id}"), None).await;
        assert_eq!(fan["followings_count"], if i < 10 { 0 } else { 1 }, "fan{i}");
    }
}
