//! Home timelines kept per user (fan-out on write, large accounts merged at
//! read time) against what fan-out on read would give: random graphs and
//! histories, checked page by page against a model of the follows and tweets.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;

use serde_json::{Value, json};

use crate::helpers::{TestApp, metric_at};
use crate::process::Chirp;

/// The truth the kept timelines must match.
#[derive(Default)]
struct Model {
    follows: BTreeSet<(usize, usize)>,
    /// tweet id -> author
    tweets: HashMap<String, usize>,
    /// What happened, in order, to explain a mismatch: (step, actor, what, subject).
    history: Vec<(usize, usize, &'static str, String)>,
}

impl Model {
    /// Newest first: the reader's tweets and those of whom they follow.
    fn timeline(&self, reader: usize) -> Vec<String> {
        let mut ids: Vec<(i64, String)> = self
            .tweets
            .iter()
            .filter(|&(_, &author)| author == reader || self.follows.contains(&(reader, author)))
            .map(|(id, _)| (id.parse::<i64>().unwrap(), id.clone()))
            .collect();
        ids.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// The history behind a difference between `got` and the model's timeline of `reader`.
    fn explain(&self, reader: usize, got: &[String]) -> String {
        let want = self.timeline(reader);
        let odd: Vec<&String> =
            got.iter().filter(|id| !want.contains(id)).chain(want.iter().filter(|id| !got.contains(id))).collect();
        let authors: Vec<String> = self
            .history
            .iter()
            .filter(|(_, _, what, subject)| *what == "posts" && odd.contains(&subject))
            .map(|(_, actor, _, _)| actor.to_string())
            .collect();
        let lines: Vec<String> = self
            .history
            .iter()
            .filter(|(_, actor, what, subject)| {
                odd.contains(&subject)
                    || (*actor == reader && matches!(*what, "follows" | "unfollows") && authors.contains(subject))
            })
            .map(|(step, actor, what, subject)| format!("step {step}: {actor} {what} {subject}"))
            .collect();
        format!("differing {odd:?}; their history: {}", lines.join("; "))
    }
}

impl TestApp {
    /// Every page of `token`'s timeline, `limit` at a time.
    async fn whole_timeline(&self, token: &str, limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/timeline?limit={limit}&cursor={c}"),
                None => format!("/api/v1/timeline?limit={limit}"),
            };
            let (status, page) = self.get_json(&path, Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= limit);
            ids.extend(data.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
            assert!(ids.len() < 10_000, "pages never end");
        }
    }

    async fn delete_tweet(&self, token: &str, id: &str) -> StatusCode {
        self.client.delete(self.url(&format!("/api/v1/tweet/{id}"))).bearer_auth(token).send().await.unwrap().status()
    }

    async fn first_page(&self, token: &str) -> Vec<String> {
        let (_, page) = self.get_json("/api/v1/timeline?limit=5", Some(token)).await;
        page["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
    }
}

/// Waits until every user's whole timeline equals the model's (the fan-out
/// is asynchronous, normally well under a second), then checks it once more
/// with other page sizes.
async fn settle(app: &TestApp, users: &[(String, String)], model: &Model, seed: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut mismatch = None;
        for (i, (_, token)) in users.iter().enumerate() {
            let got = app.whole_timeline(token, 3).await;
            let want = model.timeline(i);
            if got != want {
                mismatch = Some((i, got, want));
                break;
            }
        }
        match mismatch {
            None => break,
            Some((i, got, want)) if Instant::now() > deadline => {
                panic!("seed {seed}: user {i}'s timeline\n got  {got:?}\n want {want:?}\n{}", model.explain(i, &got))
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    for (i, (_, token)) in users.iter().enumerate() {
        for limit in [1, 7, 100] {
            let got = app.whole_timeline(token, limit).await;
            assert_eq!(got, model.timeline(i), "seed {seed}: user {i}, pages of {limit}: {}", model.explain(i, &got));
        }
    }
}

async fn random_history(seed: u64) {
    // A tiny fan-out limit and few kept ids, so that large accounts, merges,
    // trimmed timelines and database fall-backs all happen with a few users.
    let app = TestApp::spawn_with(|c| {
        c.timeline_fanout_limit = 3;
        c.timeline_kept = 6;
    })
    .await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut users = Vec::new();
    for i in 0..7 {
        users.push(app.sign_up(&format!("u{seed}x{i}")).await);
    }
    let mut model = Model::default();
    for step in 0..150 {
        let a = rng.random_range(0..users.len());
        let b = rng.random_range(0..users.len());
        let (token, b_id) = (&users[a].1, &users[b].0);
        match rng.random_range(0..100) {
            0..25 if a != b => {
                assert!(app.follow(token, b_id).await.is_success());
                model.follows.insert((a, b));
                model.history.push((step, a, "follows", b.to_string()));
            }
            25..35 if a != b => {
                assert_eq!(app.unfollow(token, b_id).await, StatusCode::NO_CONTENT);
                model.follows.remove(&(a, b));
                model.history.push((step, a, "unfollows", b.to_string()));
            }
            35..65 => {
                let tweet = app.tweet(token, &format!("step {step} by {a}")).await;
                let id = tweet["id"].as_str().unwrap().to_owned();
                model.tweets.insert(id.clone(), a);
                model.history.push((step, a, "posts", id.clone()));
                // Read-your-own-writes: the author sees it on the very next request.
                assert_eq!(app.first_page(token).await.first(), Some(&id), "seed {seed}, step {step}");
            }
            65..72 => {
                let own: Vec<String> = model.tweets.iter().filter(|&(_, &w)| w == a).map(|(id, _)| id.clone()).collect();
                if let Some(id) = own.get(rng.random_range(0..own.len().max(1))) {
                    assert_eq!(app.delete_tweet(token, id).await, StatusCode::NO_CONTENT);
                    model.tweets.remove(id);
                    model.history.push((step, a, "deletes", id.clone()));
                }
            }
            // Reads make timelines kept, so later tweets reach them by push.
            _ => {
                app.first_page(token).await;
            }
        }
    }
    settle(&app, &users, &model, seed).await;
    app.stop().await;
}

#[tokio::test]
async fn kept_timelines_equal_fan_out_on_read_for_random_histories() {
    for seed in [7, 11, 2026] {
        random_history(seed).await;
    }
}

#[tokio::test]
async fn a_followed_accounts_new_tweet_reaches_a_kept_timeline_within_a_second() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (bob_id, bob) = app.sign_up("bob").await;
    app.follow(&alice, &bob_id).await;
    assert!(app.first_page(&alice).await.is_empty(), "kept now, and empty");

    let id = app.tweet(&bob, "fresh").await["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    while app.first_page(&alice).await.first() != Some(&id) {
        assert!(started.elapsed() < Duration::from_secs(5), "bob's tweet never reached alice's timeline");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(app.delete_tweet(&bob, &id).await, StatusCode::NO_CONTENT);
    assert!(app.first_page(&alice).await.is_empty(), "a deleted tweet is gone at once");
}

/// Many pages asked for at once of a timeline no one keeps yet (a cold
/// cache, after a restart) build it once on a node, not once a request:
/// they wait for the first one's build and all answer the same page.
#[tokio::test]
async fn a_cold_timeline_asked_for_many_times_at_once_is_built_once() {
    let app = Counted::start("built-once").await;
    let (alice, bob) = app.alice_and_bob().await;
    let mut newest: Vec<String> = Vec::new();
    for i in 0..5 {
        newest.insert(0, app.tweet(&alice, &format!("tweet {i}")).await);
    }
    let before = app.metric("chirp_timeline_builds_total").await;
    let pages = futures::future::join_all((0..16).map(|_| app.first_page(&bob))).await;
    assert!(pages.iter().all(|page| *page == newest), "{pages:?}");
    // Timelines are kept unless several nodes share a database without Redis.
    let kept = std::env::var("CHIRP_TEST_REDIS_URL").is_ok() || std::env::var("CHIRP_TEST_DATABASE_URL").is_err();
    assert_eq!(app.metric("chirp_timeline_builds_total").await - before, if kept { 1.0 } else { 0.0 });
}

/// `/metrics` is one per process, and `cargo test` runs the tests of this
/// file in one: the tests that count what chirp did (timeline builds, reads
/// of a viewer's likes) run chirp as a process of its own, so that no other
/// test's work is counted.
struct Counted {
    node: Chirp,
    client: reqwest::Client,
}

impl Counted {
    async fn start(label: &str) -> Self {
        Self { node: Chirp::start(label).await, client: reqwest::Client::new() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.node.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn tweet(&self, token: &str, content: &str) -> String {
        let (status, tweet) = self.send(reqwest::Method::POST, "/api/v1/tweet", token, Some(json!({"content": content}))).await;
        assert_eq!(status, StatusCode::CREATED);
        tweet["id"].as_str().unwrap().to_owned()
    }

    async fn like(&self, token: &str, tweet: &str) -> StatusCode {
        self.send(reqwest::Method::POST, &format!("/api/v1/tweet/{tweet}/like"), token, None).await.0
    }

    /// The tweets on the first page of the timeline (`path`: with its query).
    async fn page(&self, token: &str, path: &str) -> Vec<Value> {
        let (status, page) = self.send(reqwest::Method::GET, path, token, None).await;
        assert_eq!(status, StatusCode::OK);
        page["data"].as_array().unwrap().clone()
    }

    /// The ids on the first page of the timeline.
    async fn first_page(&self, token: &str) -> Vec<String> {
        let page = self.page(token, "/api/v1/timeline?limit=5").await;
        page.iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
    }

    /// `liked_by_me` of each tweet on the first page of the timeline.
    async fn liked(&self, token: &str) -> Vec<bool> {
        let page = self.page(token, "/api/v1/timeline").await;
        page.iter().map(|t| t["liked_by_me"].as_bool().unwrap()).collect()
    }

    async fn metric(&self, series: &str) -> f64 {
        metric_at(&self.client, &self.node.url("/metrics"), series).await.unwrap_or(0.0)
    }

    async fn likes_reads(&self) -> f64 {
        self.metric("chirp_viewer_likes_reads_total").await
    }

    /// Alice, and Bob who follows her: (alice's token, bob's token).
    async fn alice_and_bob(&self) -> (String, String) {
        let (alice_id, alice) = self.node.sign_up(&self.client, "alice").await;
        let (_, bob) = self.node.sign_up(&self.client, "bob").await;
        let (status, _) = self.send(reqwest::Method::POST, &format!("/api/v1/user/{alice_id}/follow"), &bob, None).await;
        assert!(status.is_success());
        (alice, bob)
    }
}

/// A viewer's likes are kept beside their pages. With Redis they are
/// checked against the viewer's like stamp past their second; a like moves
/// that stamp, but the node that wrote it holds the like in its copy and
/// saw which stamp its write replaced, so it keeps the copy instead of
/// reading every like again. (The embedded defaults never read them again.)
#[tokio::test]
async fn a_like_keeps_the_likers_kept_likes_on_the_node_that_wrote_it() {
    let app = Counted::start("likes-kept").await;
    let (alice, bob) = app.alice_and_bob().await;
    let older = app.tweet(&alice, "liked before").await;
    let newer = app.tweet(&alice, "liked after the page").await;
    assert_eq!(app.like(&bob, &older).await, StatusCode::CREATED);
    assert_eq!(app.liked(&bob).await, [false, true]);
    let before = app.likes_reads().await;

    assert_eq!(app.like(&bob, &newer).await, StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(1200)).await; // past the second a page trusts them
    assert_eq!(app.liked(&bob).await, [true, true]);
    assert_eq!(app.likes_reads().await - before, 0.0, "the likes were read again");
}

/// Many pages asked for at once by a viewer whose likes are not kept read
/// them from the database once: the others wait for that read and use it.
#[tokio::test]
async fn a_viewers_likes_asked_for_many_times_at_once_are_read_once() {
    let app = Counted::start("likes-once").await;
    let (alice, bob) = app.alice_and_bob().await;
    app.tweet(&alice, "one").await;
    app.tweet(&alice, "two").await;
    // Nothing has been shown to bob yet, so nothing of his likes is kept.
    let before = app.likes_reads().await;
    let pages = futures::future::join_all((0..16).map(|_| app.liked(&bob))).await;
    assert!(pages.iter().all(|liked| liked == &[false, false]), "{pages:?}");
    assert_eq!(app.likes_reads().await - before, 1.0, "one read of bob's likes");
}

#[tokio::test]
async fn a_large_accounts_tweets_are_merged_into_their_followers_timelines() {
    let app = TestApp::spawn_with(|c| c.timeline_fanout_limit = 2).await;
    let (star_id, star) = app.sign_up("star").await;
    let mut fans = Vec::new();
    for i in 0..4 {
        let (_, fan) = app.sign_up(&format!("fan{i}")).await;
        app.follow(&fan, &star_id).await;
        assert!(app.first_page(&fan).await.is_empty());
        fans.push(fan);
    }
    let id = app.tweet(&star, "to all my fans").await["id"].as_str().unwrap().to_owned();
    for fan in &fans {
        let started = Instant::now();
        while app.first_page(fan).await.first() != Some(&id) {
            assert!(started.elapsed() < Duration::from_secs(10), "the star's tweet never reached a fan");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn pages_neither_repeat_nor_skip_while_new_tweets_arrive() {
    let app = TestApp::spawn().await;
    let (_, reader) = app.sign_up("reader").await;
    let (writer_id, writer) = app.sign_up("writer").await;
    app.follow(&reader, &writer_id).await;
    let mut older = Vec::new();
    for i in 0..9 {
        older.push(app.tweet(&writer, &format!("old {i}")).await["id"].as_str().unwrap().to_owned());
    }
    older.reverse();
    let (_, page) = app.get_json("/api/v1/timeline?limit=4", Some(&reader)).await;
    let mut seen: Vec<String> = page["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        app.tweet(&writer, "meanwhile").await;
        let (_, page) = app.get_json(&format!("/api/v1/timeline?limit=4&cursor={c}"), Some(&reader)).await;
        seen.extend(page["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, older);
}

#[tokio::test]
async fn a_tweet_posted_on_one_node_reaches_a_timeline_read_on_another() {
    let a = TestApp::spawn().await;
    // Kept timelines are shared between nodes through Redis; without it each
    // node would keep its own (the embedded defaults are one node).
    if a.config.redis_url.is_none() {
        return;
    }
    let b = a.spawn_peer().await;
    let (_, alice) = a.sign_up("alice").await;
    let (bob_id, bob) = a.sign_up("bob").await;
    b.follow(&alice, &bob_id).await;
    assert!(b.first_page(&alice).await.is_empty(), "kept, read on b");
    let id = a.tweet(&bob, "from a").await["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    while b.first_page(&alice).await.first() != Some(&id) {
        assert!(started.elapsed() < Duration::from_secs(10), "a tweet posted on a never reached a timeline read on b");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, liked) = b.get_json(&format!("/api/v1/tweet/{id}"), Some(&alice)).await;
    assert_eq!(liked["content"], "from a");
}

#[tokio::test]
async fn a_like_shows_at_once_in_the_likers_timeline_and_tweet() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.sign_up("alice").await;
    let (bob_id, bob) = app.sign_up("bob").await;
    app.follow(&alice, &bob_id).await;
    let id = app.tweet(&bob, "like me").await["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    while app.first_page(&alice).await.first() != Some(&id) {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.like(&alice, &id).await, StatusCode::CREATED);
    let (_, tweet) = app.get_json(&format!("/api/v1/tweet/{id}"), Some(&alice)).await;
    assert_eq!((tweet["like_count"].as_i64(), tweet["liked_by_me"].as_bool()), (Some(1), Some(true)));
    let (_, page) = app.get_json("/api/v1/timeline?limit=1", Some(&alice)).await;
    let seen = &page["data"][0];
    assert_eq!((seen["like_count"].as_i64(), seen["liked_by_me"].as_bool()), (Some(1), Some(true)), "{page}");
    let (_, by_bob) = app.get_json(&format!("/api/v1/tweet/{id}"), Some(&bob)).await;
    assert_eq!(by_bob["liked_by_me"], false, "another viewer's like is not mine");
}
