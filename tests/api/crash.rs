//! Crash safety: the chirp binary takes writes (tweets, likes, follows,
//! views) from many clients at once, is killed with SIGKILL in the middle,
//! and is started again on the same data. Every write it acknowledged with a
//! 2xx must be there (and every tweet found by search), and every counter
//! must lie between what was acknowledged and what was attempted (a write
//! in flight at the kill may or may not have committed; it must never be
//! counted twice or half).
//!
//! Runs on the backends of the suite: SQLite by default, PostgreSQL (and
//! Redis, Kafka) when the CHIRP_TEST_* variables are set.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::process::Chirp;

/// What the clients were told, and what they tried.
#[derive(Default)]
struct Ledger {
    tweets_acked: HashMap<String, usize>,         // tweet id -> author index
    likes_acked: HashSet<(usize, String)>,        // (user index, tweet id)
    likes_tried: HashMap<String, HashSet<usize>>, // tweet id -> users who tried
    follows_acked: HashSet<(usize, usize)>,
    follows_tried: HashSet<(usize, usize)>,
    views_acked: HashMap<String, i64>, // tweet id -> highest count answered
    views_tried: HashMap<String, i64>,
    acknowledged: usize,
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let mut chirp = Chirp::start("crash").await;
    let client = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    // Eight users, each with one tweet to start from.
    let mut users: Vec<(String, String)> = Vec::new(); // (id, token)
    for i in 0..8 {
        users.push(chirp.sign_up(&client, &format!("crash{i}")).await);
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for (i, (_, token)) in users.iter().enumerate() {
        let r =
            client.post(chirp.url("/api/v1/tweet")).bearer_auth(token).json(&json!({"content": "first"})).send().await.unwrap();
        let id = json_of(r).await["id"].as_str().unwrap().to_owned();
        ledger.lock().unwrap().tweets_acked.insert(id, i);
    }
    let users = Arc::new(users);

    // 32 clients write as fast as they can; the process is killed under them.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..32 {
        let (client, users, ledger, stop) = (client.clone(), users.clone(), ledger.clone(), stop.clone());
        let base = chirp.url("/api/v1");
        clients.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (me, other, pick) = {
                    let mut rng = rand::rng();
                    (rng.random_range(0..users.len()), rng.random_range(0..users.len()), rng.random_range(0..100))
                };
                let tweet = {
                    let ledger = ledger.lock().unwrap();
                    let n = rand::rng().random_range(0..ledger.tweets_acked.len());
                    ledger.tweets_acked.keys().nth(n).unwrap().clone()
                };
                let token = &users[me].1;
                match pick {
                    0..25 => {
                        let r = client
                            .post(format!("{base}/tweet"))
                            .bearer_auth(token)
                            .json(&json!({"content": "under load"}))
                            .send()
                            .await;
                        if let Some(r) = r.ok().filter(|r| r.status() == StatusCode::CREATED) {
                            if let Ok(body) = r.json::<Value>().await {
                                let mut ledger = ledger.lock().unwrap();
                                ledger.tweets_acked.insert(body["id"].as_str().unwrap().into(), me);
                                ledger.acknowledged += 1;
                            }
                        }
                    }
                    25..55 => {
                        ledger.lock().unwrap().likes_tried.entry(tweet.clone()).or_default().insert(me);
                        let r = client.post(format!("{base}/tweet/{tweet}/like")).bearer_auth(token).send().await;
                        if r.is_ok_and(|r| r.status().is_success()) {
                            let mut ledger = ledger.lock().unwrap();
                            ledger.likes_acked.insert((me, tweet));
                            ledger.acknowledged += 1;
                        }
                    }
                    55..70 if me != other => {
                        ledger.lock().unwrap().follows_tried.insert((me, other));
                        let r = client.post(format!("{base}/user/{}/follow", users[other].0)).bearer_auth(token).send().await;
                        if r.is_ok_and(|r| r.status().is_success()) {
                            let mut ledger = ledger.lock().unwrap();
                            ledger.follows_acked.insert((me, other));
                            ledger.acknowledged += 1;
                        }
                    }
                    _ => {
                        *ledger.lock().unwrap().views_tried.entry(tweet.clone()).or_default() += 1;
                        let r = client.patch(format!("{base}/tweet/{tweet}/views")).send().await;
                        if let Some(r) = r.ok().filter(|r| r.status() == StatusCode::OK) {
                            if let Ok(body) = r.json::<Value>().await {
                                let count = body["view_count"].as_i64().unwrap();
                                let mut ledger = ledger.lock().unwrap();
                                let seen = ledger.views_acked.entry(tweet).or_default();
                                *seen = (*seen).max(count);
                                ledger.acknowledged += 1;
                            }
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    chirp.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    chirp.spawn().await;

    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(ledger.acknowledged > 100, "the load made writes before the kill: {}", ledger.acknowledged);
    let get = |path: String, token: Option<String>| {
        let (client, url) = (client.clone(), chirp.url(&path));
        async move {
            let mut request = client.get(url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            json_of(r).await
        }
    };

    // Every acknowledged tweet is there; each author's count is the tweets listed.
    let mut listed = vec![HashSet::new(); users.len()];
    for (i, (id, _)) in users.iter().enumerate() {
        let mut cursor = String::new();
        loop {
            let page = get(format!("/api/v1/tweet?author_id={id}&limit=100{cursor}"), None).await;
            listed[i].extend(page["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let user = get(format!("/api/v1/user/{id}"), None).await;
        assert_eq!(user["tweets_count"].as_u64().unwrap() as usize, listed[i].len(), "tweets_count of user {i}");
    }
    for (tweet, author) in &ledger.tweets_acked {
        assert!(listed[*author].contains(tweet), "acknowledged tweet {tweet} is lost");
    }

    // Search finds every acknowledged tweet at once, those the killed
    // process had not yet put into its search index among them.
    let mut found = HashSet::new();
    for words in ["first", "under load"] {
        let mut cursor = String::new();
        loop {
            let page = get(format!("/api/v1/tweet?search={}&limit=100{cursor}", words.replace(' ', "+")), None).await;
            found.extend(page["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
    }
    for tweet in ledger.tweets_acked.keys() {
        assert!(found.contains(tweet), "acknowledged tweet {tweet} is not found by search after the restart");
    }

    // Every acknowledged like is there; like counts lie between acknowledged and tried.
    let mut liked: HashMap<&str, usize> = HashMap::new();
    for (_, tweet) in &ledger.likes_acked {
        *liked.entry(tweet).or_default() += 1;
    }
    for (user, tweet) in &ledger.likes_acked {
        let t = get(format!("/api/v1/tweet/{tweet}"), Some(users[*user].1.clone())).await;
        assert_eq!(t["liked_by_me"], true, "acknowledged like of {tweet} by user {user} is lost");
    }
    for (tweet, tried) in &ledger.likes_tried {
        let t = get(format!("/api/v1/tweet/{tweet}"), None).await;
        let count = t["like_count"].as_u64().unwrap() as usize;
        let acked = liked.get(tweet.as_str()).copied().unwrap_or(0);
        assert!(
            acked <= count && count <= tried.len(),
            "like_count of {tweet}: {count}, acknowledged {acked}, tried {}",
            tried.len()
        );
    }

    // Every acknowledged follow is there; counts match the lists.
    for (i, (id, _)) in users.iter().enumerate() {
        let followings = get(format!("/api/v1/user/{id}/followings?limit=100"), None).await;
        let followings: HashSet<&str> =
            followings["data"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
        for (_, other) in ledger.follows_acked.iter().filter(|(me, _)| *me == i) {
            assert!(followings.contains(users[*other].0.as_str()), "acknowledged follow {i} -> {other} is lost");
        }
        let tried = ledger.follows_tried.iter().filter(|(me, _)| *me == i).count();
        assert!(followings.len() <= tried);
        let user = get(format!("/api/v1/user/{id}"), None).await;
        assert_eq!(user["followings_count"].as_u64().unwrap() as usize, followings.len(), "followings_count of user {i}");
    }

    // Views: at least the highest count acknowledged, at most the views tried.
    for (tweet, tried) in &ledger.views_tried {
        let t = get(format!("/api/v1/tweet/{tweet}"), None).await;
        let count = t["view_count"].as_i64().unwrap();
        let acked = ledger.views_acked.get(tweet).copied().unwrap_or(0);
        assert!(acked <= count && count <= *tried, "view_count of {tweet}: {count}, acknowledged {acked}, tried {tried}");
    }
    eprintln!(
        "crash test: {} writes acknowledged before SIGKILL ({} tweets, {} likes, {} follows, {} tweets viewed); lost: 0",
        ledger.acknowledged,
        ledger.tweets_acked.len(),
        ledger.likes_acked.len(),
        ledger.follows_acked.len(),
        ledger.views_acked.len()
    );
}
