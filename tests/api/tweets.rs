use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

impl TestApp {
    pub async fn tweet(&self, token: &str, content: &str) -> Value {
        let r = self
            .client
            .post(self.url("/api/v1/tweet"))
            .bearer_auth(token)
            .json(&json!({"content": content}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "posting {content:?}");
        r.json().await.unwrap()
    }

    pub async fn get_json(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The items of every page of a listing, following `next_cursor` from
    /// `path` (which already has a query string), each page answered 200.
    pub async fn every_page(&self, path: &str, token: Option<&str>) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) = self.get_json(&format!("{path}{cursor}"), token).await;
            assert_eq!(status, StatusCode::OK, "{path}{cursor}: {page}");
            items.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return items,
            }
            assert!(items.len() < 100_000, "pages never end");
        }
    }
}

#[tokio::test]
async fn a_text_tweet_is_posted_and_read_back() {
    let app = TestApp::spawn().await;
    let (alice, token) = app.sign_up("alice").await;

    let t = app.tweet(&token, "  hello, world  ").await;
    assert!(t["id"].is_string());
    assert_eq!(t["content"], "hello, world");
    assert_eq!(t["author"]["id"], alice.as_str());
    assert_eq!(t["author"]["username"], "alice");
    assert_eq!(t["media"], json!([]));
    assert_eq!((t["like_count"].as_i64(), t["view_count"].as_i64()), (Some(0), Some(0)));
    assert_eq!(t["liked_by_me"], false);
    assert!(t["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, read) = app.get_json(&format!("/api/v1/tweet/{}", t["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["content"], "hello, world");
    let (_, me) = app.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!(me["tweets_count"], 1);
}

#[tokio::test]
async fn tweet_text_is_limited_to_280_characters_not_bytes() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("bob").await;

    app.tweet(&token, &"ж".repeat(280)).await;
    app.tweet(&token, &"🐦".repeat(280)).await;
    for bad in [json!({"content": "ж".repeat(281)}), json!({"content": "   "}), json!({}), json!({"content": 5})] {
        let r = app.client.post(app.url("/api/v1/tweet")).bearer_auth(&token).json(&bad).send().await.unwrap();
        let body = assert_problem(r, 422, "validation_failed").await;
        assert!(body["errors"]["content"].is_array(), "{bad}: {body}");
    }
    let (_, me) = app.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!(me["tweets_count"], 2, "nothing stored by the bad requests");
}

#[tokio::test]
async fn posting_requires_a_token() {
    let app = TestApp::spawn().await;
    let r = app.post_json("/api/v1/tweet", &json!({"content": "hi"})).await;
    assert_problem(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn malformed_and_unknown_tweet_ids_are_404() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("carl").await;
    for id in ["abc", "-1", "1.5", "99999999999999999999999", "0", "123"] {
        let (status, body) = app.get_json(&format!("/api/v1/tweet/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
        let r = app.client.post(app.url(&format!("/api/v1/tweet/{id}/like"))).bearer_auth(&token).send().await.unwrap();
        assert_problem(r, 404, "not_found").await;
        let r = app.client.patch(app.url(&format!("/api/v1/tweet/{id}/views"))).send().await.unwrap();
        assert_problem(r, 404, "not_found").await;
    }
}

#[tokio::test]
async fn only_the_author_deletes_a_tweet_and_its_likes_go_with_it() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.sign_up("alice").await;
    let (bob_id, bob) = app.sign_up("bob").await;
    let t = app.tweet(&alice, "mine").await;
    let id = t["id"].as_str().unwrap();
    let kept = app.tweet(&alice, "kept").await;
    let kept = kept["id"].as_str().unwrap();
    for tweet in [id, kept] {
        let r = app.client.post(app.url(&format!("/api/v1/tweet/{tweet}/like"))).bearer_auth(&bob).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    assert_eq!(app.notifications_when(&alice, |n| n.len() == 2).await.len(), 2);
    let likes_of = |tweet: &str| format!("SELECT count(*) FROM likes WHERE tweet_id = {tweet}");
    assert_eq!(app.db_scalars(&likes_of(id)).await, [1]);

    let r = app.client.delete(app.url(&format!("/api/v1/tweet/{id}"))).bearer_auth(&bob).send().await.unwrap();
    assert_problem(r, 403, "forbidden").await;
    let r = app.client.delete(app.url(&format!("/api/v1/tweet/{id}"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_json(&format!("/api/v1/tweet/{id}"), None).await.0, StatusCode::NOT_FOUND);
    let r = app.client.delete(app.url(&format!("/api/v1/tweet/{id}"))).bearer_auth(&alice).send().await.unwrap();
    assert_problem(r, 404, "not_found").await;
    let (_, me) = app.get_json("/api/v1/me", Some(&alice)).await;
    assert_eq!(me["tweets_count"], 1);

    // The like rows and the like's notification went with the tweet; the other tweet keeps its own.
    assert_eq!(app.db_scalars(&likes_of(id)).await, [0]);
    assert_eq!(app.db_scalars(&format!("SELECT count(*) FROM likes WHERE user_id = {bob_id}")).await, [1]);
    assert_eq!(app.db_scalars(&format!("SELECT count(*) FROM notifications WHERE tweet_id = {id}")).await, [0]);
    let (_, notifications) = app.get_json("/api/v1/notifications", Some(&alice)).await;
    let about: Vec<_> = notifications["data"].as_array().unwrap().iter().map(|n| n["tweet_id"].clone()).collect();
    assert_eq!(about, [json!(kept)]);
    let (_, count) = app.get_json("/api/v1/notifications/unread-count", Some(&alice)).await;
    assert_eq!(count["unread"], 1);
    // The liker's view of the tweet that stays is unchanged.
    let (_, still) = app.get_json(&format!("/api/v1/tweet/{kept}"), Some(&bob)).await;
    assert_eq!((still["like_count"].as_i64(), still["liked_by_me"].as_bool()), (Some(1), Some(true)));
    let (_, alices) = app.get_json(&format!("/api/v1/tweet?author_id={alice_id}"), Some(&bob)).await;
    assert_eq!(alices["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_authors_tweets_come_in_keyset_pages_newest_first() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    for i in 0..5 {
        app.tweet(&alice, &format!("alice {i}")).await;
        app.tweet(&bob, &format!("bob {i}")).await;
    }

    let mut seen = Vec::new();
    let mut path = format!("/api/v1/tweet?author_id={alice_id}&limit=2");
    loop {
        let (status, page) = app.get_json(&path, None).await;
        assert_eq!(status, StatusCode::OK);
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|t| t["content"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => {
                // A tweet posted meanwhile does not shift the pages.
                app.tweet(&alice, "late").await;
                path = format!("/api/v1/tweet?author_id={alice_id}&limit=2&cursor={c}");
            }
            None => break,
        }
    }
    assert_eq!(seen, ["alice 4", "alice 3", "alice 2", "alice 1", "alice 0"]);

    let (_, all) = app.get_json("/api/v1/tweet?limit=100", None).await;
    assert!(all["data"].as_array().unwrap().len() >= 10);
}

#[tokio::test]
async fn bad_page_parameters_are_422() {
    let app = TestApp::spawn().await;
    for query in ["limit=0", "limit=101", "limit=ten", "cursor=%%%", "cursor=bm90LWFuLWlk", "author_id=xyz"] {
        let r = app.client.get(app.url(&format!("/api/v1/tweet?{query}"))).send().await.unwrap();
        assert_problem(r, 422, "validation_failed").await;
    }
}

#[tokio::test]
async fn likes_count_each_liker_once() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let id = app.tweet(&alice, "like me").await["id"].as_str().unwrap().to_owned();
    let like = |token: &str| app.client.post(app.url(&format!("/api/v1/tweet/{id}/like"))).bearer_auth(token.to_owned()).send();
    let unlike =
        |token: &str| app.client.delete(app.url(&format!("/api/v1/tweet/{id}/unlike"))).bearer_auth(token.to_owned()).send();

    let r = like(&bob).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["like_count"].as_i64(), body["liked_by_me"].as_bool()), (Some(1), Some(true)));
    assert_eq!(like(&bob).await.unwrap().status(), StatusCode::OK);
    assert_eq!(like(&alice).await.unwrap().status(), StatusCode::CREATED);
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{id}"), Some(&bob)).await;
    assert_eq!((t["like_count"].as_i64(), t["liked_by_me"].as_bool()), (Some(2), Some(true)));
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{id}"), None).await;
    assert_eq!(t["liked_by_me"], false);

    assert_eq!(unlike(&bob).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(unlike(&bob).await.unwrap().status(), StatusCode::NO_CONTENT);
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{id}"), Some(&bob)).await;
    assert_eq!((t["like_count"].as_i64(), t["liked_by_me"].as_bool()), (Some(1), Some(false)));
}

#[tokio::test]
async fn fifty_users_liking_at_once_count_exactly() {
    let app = TestApp::spawn().await;
    let (_, author) = app.sign_up("author").await;
    let id = app.tweet(&author, "popular").await["id"].as_str().unwrap().to_owned();
    let mut tokens = Vec::new();
    for i in 0..50 {
        tokens.push(app.sign_up(&format!("fan_{i}")).await.1);
    }

    let likes = tokens.iter().map(|t| app.client.post(app.url(&format!("/api/v1/tweet/{id}/like"))).bearer_auth(t).send());
    let results = futures::future::join_all(likes).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().status() == StatusCode::CREATED));
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{id}"), None).await;
    assert_eq!(t["like_count"], 50);

    let unlikes =
        tokens[..20].iter().map(|t| app.client.delete(app.url(&format!("/api/v1/tweet/{id}/unlike"))).bearer_auth(t).send());
    futures::future::join_all(unlikes).await;
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{id}"), None).await;
    assert_eq!(t["like_count"], 30);
}

#[tokio::test]
async fn one_user_liking_twenty_times_at_once_counts_once() {
    let app = TestApp::spawn().await;
    let (_, author) = app.sign_up("author").await;
    let (_, fan) = app.sign_up("fan").await;
    let id = app.tweet(&author, "once").await["id"].as_str().unwrap().to_owned();

    let likes = (0..20).map(|_| app.client.post(app.url(&format!("/api/v1/tweet/{id}/like"))).bearer_auth(&fan).send());
    let results = futures::future::join_all(likes).await;
    let created = results.iter().filter(|r| r.as_ref().unwrap().status() == StatusCode::CREATED).count();
    let existing = results.iter().filter(|r| r.as_ref().unwrap().status() == StatusCode::OK).count();
    assert_eq!((created, existing), (1, 19));
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{id}"), None).await;
    assert_eq!(t["like_count"], 1);
}

#[tokio::test]
async fn a_thousand_concurrent_views_count_exactly() {
    let app = TestApp::spawn().await;
    let (_, author) = app.sign_up("author").await;
    let id = app.tweet(&author, "viral").await["id"].as_str().unwrap().to_owned();
    let url = app.url(&format!("/api/v1/tweet/{id}/views"));

    let first: Value = app.client.patch(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(first, json!({"view_count": 1}));
    let views = (0..1000).map(|_| app.client.patch(&url).send());
    let mut counts: Vec<i64> = Vec::new();
    for r in futures::future::join_all(views).await {
        let r = r.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        counts.push(r.json::<Value>().await.unwrap()["view_count"].as_i64().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (2..=1001).collect::<Vec<i64>>(), "each view got its own count");
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{id}"), None).await;
    assert_eq!(t["view_count"], 1001);
}

#[tokio::test]
async fn liking_a_deleted_tweet_is_404() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let id = app.tweet(&alice, "gone soon").await["id"].as_str().unwrap().to_owned();
    app.client.delete(app.url(&format!("/api/v1/tweet/{id}"))).bearer_auth(&alice).send().await.unwrap();
    let r = app.client.post(app.url(&format!("/api/v1/tweet/{id}/like"))).bearer_auth(&alice).send().await.unwrap();
    assert_problem(r, 404, "not_found").await;
    let r = app.client.delete(app.url(&format!("/api/v1/tweet/{id}/unlike"))).bearer_auth(&alice).send().await.unwrap();
    assert_problem(r, 404, "not_found").await;
}

/// Group commit: likes arriving together share a transaction, yet each is
/// answered with its own outcome and the count its own like made; a like of
/// a missing tweet among them fails alone.
#[tokio::test]
async fn likes_arriving_together_each_get_their_own_count() {
    let app = TestApp::spawn().await;
    let (_, author) = app.sign_up("author").await;
    let id = app.tweet(&author, "liked by a crowd").await["id"].as_str().unwrap().to_owned();
    let mut fans = Vec::new();
    for i in 0..24 {
        fans.push(app.sign_up(&format!("fan{i}")).await.1);
    }
    let like = |token: &str, tweet: &str| {
        app.client.post(app.url(&format!("/api/v1/tweet/{tweet}/like"))).bearer_auth(token.to_owned()).send()
    };
    let crowd = fans.iter().map(|fan| like(fan, &id));
    let strays = fans.iter().take(4).map(|fan| like(fan, "1"));
    let (crowd, strays) = tokio::join!(futures::future::join_all(crowd), futures::future::join_all(strays));

    let mut counts = Vec::new();
    for r in crowd {
        let r = r.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["liked_by_me"], true);
        counts.push(body["like_count"].as_i64().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=24).collect::<Vec<i64>>(), "each like answered with the count it made");
    for r in strays {
        assert_problem(r.unwrap(), 404, "not_found").await;
    }
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{id}"), Some(&fans[0])).await;
    assert_eq!((t["like_count"].as_i64(), t["liked_by_me"].as_bool()), (Some(24), Some(true)));

    // Likes and unlikes together: every unlike lands, and the answers agree with the end state.
    let unlikes = fans
        .iter()
        .take(12)
        .map(|fan| app.client.delete(app.url(&format!("/api/v1/tweet/{id}/unlike"))).bearer_auth(fan.to_owned()).send());
    let again = fans.iter().skip(12).map(|fan| like(fan, &id));
    let (unlikes, again) = tokio::join!(futures::future::join_all(unlikes), futures::future::join_all(again));
    assert!(unlikes.iter().all(|r| r.as_ref().unwrap().status() == StatusCode::NO_CONTENT));
    assert!(again.iter().all(|r| r.as_ref().unwrap().status() == StatusCode::OK), "already liked: 200");
    let (_, t) = app.get_json(&format!("/api/v1/tweet/{id}"), Some(&fans[0])).await;
    assert_eq!((t["like_count"].as_i64(), t["liked_by_me"].as_bool()), (Some(12), Some(false)));
    assert_eq!(app.db_scalars(&format!("SELECT COUNT(*) FROM likes WHERE tweet_id = {id}")).await, vec![12]);
}

/// Tweets posted together: each answer counts its own tweet on the author.
#[tokio::test]
async fn tweets_posted_together_each_count_on_their_author() {
    let app = TestApp::spawn().await;
    let (author_id, author) = app.sign_up("prolific").await;
    let posts = (0..20).map(|i| {
        app.client.post(app.url("/api/v1/tweet")).bearer_auth(&author).json(&json!({"content": format!("number {i}")})).send()
    });
    let mut counts = Vec::new();
    for r in futures::future::join_all(posts).await {
        let r = r.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        counts.push(body["author"]["tweets_count"].as_i64().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<i64>>());
    let (_, user) = app.get_json(&format!("/api/v1/user/{author_id}"), None).await;
    assert_eq!(user["tweets_count"], 20);
}

/// Several authors' tweets posted together (on PostgreSQL, a batch of text
/// posts is one statement): each author counts exactly their own.
#[tokio::test]
async fn tweets_of_several_authors_posted_together_each_count_on_their_own_author() {
    let app = TestApp::spawn().await;
    let mut authors = Vec::new();
    for name in ["first", "second", "third"] {
        authors.push(app.sign_up(name).await);
    }
    let posts = (0..30).map(|i| {
        let (_, token) = &authors[i % 3];
        app.client.post(app.url("/api/v1/tweet")).bearer_auth(token).json(&json!({"content": format!("post {i}")})).send()
    });
    let mut counts: Vec<Vec<i64>> = vec![Vec::new(); 3];
    for r in futures::future::join_all(posts).await {
        let r = r.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        let author = authors.iter().position(|(id, _)| body["author"]["id"] == json!(id)).unwrap();
        counts[author].push(body["author"]["tweets_count"].as_i64().unwrap());
    }
    for (i, (id, _)) in authors.iter().enumerate() {
        counts[i].sort_unstable();
        assert_eq!(counts[i], (1..=10).collect::<Vec<i64>>(), "author {i}'s answers");
        let (_, user) = app.get_json(&format!("/api/v1/user/{id}"), None).await;
        assert_eq!(user["tweets_count"], 10);
    }
}
