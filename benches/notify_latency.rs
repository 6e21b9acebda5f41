//! Like-to-notification latency and sustained likes/s with notifications.
//!
//! Starts chirp in-process on the backends named by the environment
//! (`CHIRP_DATABASE_URL`, `CHIRP_REDIS_URL`, `CHIRP_KAFKA_BROKERS`; embedded
//! defaults otherwise), signs up one author and `FANS` fans, opens the
//! author's notification stream, then has the fans like the author's tweets
//! from `CONCURRENCY` tasks for `SECONDS`. Reports likes/s and, for every
//! like, the time from the like's 201 to its `notification` event on the
//! stream (p50/p90/p99/max). With `RATE`, likes are offered in open loop at
//! that many per second instead (at most `CONCURRENCY` in flight; likes
//! that find none free are counted as not sent). It also checks that every
//! like was notified exactly once: once on the stream, and once in the
//! author's stored notifications. Run: `cargo bench --bench notify_latency`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chirp::Config;
use chirp::app::Application;
use futures::StreamExt;
use serde_json::{Value, json};

/// Every (actor, tweet) seen on the stream, and how many events repeated one.
type Streamed = (std::collections::HashSet<(String, String)>, u64);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let fans = env_or("FANS", 200);
    let tweets = env_or("TWEETS", 50);
    let seconds = env_or("SECONDS", 10);
    let concurrency = env_or("CONCURRENCY", 32);
    let rate = env_or("RATE", 0);

    let data_dir = tempfile::tempdir()?;
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse()?;
    config.data_dir = data_dir.path().to_owned();
    config.auth_rate_limit = 0;
    config.log = "error".into();
    config.kafka_topic = format!("chirp.likes.bench.{}", rand::random::<u32>());
    config.kafka_group = format!("chirp-bench-{}", rand::random::<u32>());
    let backends = format!(
        "database={} cache={} broker={}",
        if config.database_url.is_some() { "postgres" } else { "sqlite" },
        if config.redis_url.is_some() { "redis" } else { "memory" },
        config.kafka_brokers.as_deref().map_or("memory".to_owned(), |b| format!("kafka({b})")),
    );
    let app = Application::build(config).await?;
    let base = format!("http://{}/api/v1", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;

    // Accounts are made through the API; codes come from the store of pending
    // registrations, which the bench cannot read, so it uses the database directly.
    let store = chirp::ports::store::connect(
        &std::env::var("CHIRP_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}/chirp.db", data_dir.path().display())),
        4,
    )
    .await?;
    let hash = chirp::services::passwords::Passwords::default().hash(&chirp::domain::Password::parse("bench password")?).await?;
    let ids = chirp::domain::IdGenerator::new(999);
    let mut users = Vec::new();
    for i in 0..=fans {
        let id = ids.next_id();
        store
            .insert_user(&chirp::ports::store::NewUser {
                id,
                username: format!("bench_{i}_{}", id.as_i64() % 100_000),
                email: format!("bench{i}.{}@example.com", id.as_i64()),
                name: format!("Bench {i}"),
                password_hash: hash.clone(),
                created_at: chirp::domain::Timestamp::now(),
            })
            .await?;
        users.push(id);
    }
    let login = |id: chirp::domain::Id| {
        let client = client.clone();
        let base = base.clone();
        let store = store.clone();
        async move {
            let user = store.user_by_id(id).await?.expect("seeded");
            let r: Value = client
                .post(format!("{base}/login"))
                .json(&json!({"username": user.username, "password": "bench password"}))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(r["access_token"].as_str().unwrap_or_default().to_owned())
        }
    };
    let author = login(users[0]).await?;
    let mut fan_tokens = Vec::new();
    for id in &users[1..] {
        fan_tokens.push(login(*id).await?);
    }
    let mut tweet_ids = Vec::new();
    for i in 0..tweets {
        let t: Value = client
            .post(format!("{base}/tweet"))
            .bearer_auth(&author)
            .json(&json!({"content": format!("bench {i}")}))
            .send()
            .await?
            .json()
            .await?;
        tweet_ids.push(t["id"].as_str().unwrap_or_default().to_owned());
    }

    // When each (actor, tweet) like got its 201, and when its notification arrived.
    let liked_at: Arc<Mutex<HashMap<(String, String), Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    // Every (actor, tweet) seen on the stream, and how many events repeated one.
    let streamed: Arc<Mutex<Streamed>> = Arc::default();
    let stream = client.get(format!("{base}/notifications/stream")).bearer_auth(&author).send().await?;
    let mut body = stream.bytes_stream();
    body.next().await; // connected
    let listener = {
        let liked_at = liked_at.clone();
        let latencies = latencies.clone();
        let streamed = streamed.clone();
        tokio::spawn(async move {
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                let now = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
                    let Ok(n) = serde_json::from_str::<Value>(data) else { continue };
                    let key = (
                        n["actor"]["id"].as_str().unwrap_or_default().to_owned(),
                        n["tweet_id"].as_str().unwrap_or_default().to_owned(),
                    );
                    {
                        let mut streamed = streamed.lock().unwrap();
                        if !streamed.0.insert(key.clone()) {
                            streamed.1 += 1;
                            continue;
                        }
                    }
                    // The like's answer and its notification race; whichever is second records.
                    let mut liked = liked_at.lock().unwrap();
                    match liked.remove(&key) {
                        Some(at) => latencies.lock().unwrap().push(now.saturating_duration_since(at)),
                        None => {
                            liked.insert(key, now);
                        }
                    }
                }
            }
        })
    };

    let fan_ids: Vec<String> = users[1..].iter().map(|u| u.to_string()).collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    let pairs: Arc<Mutex<Vec<(usize, usize)>>> =
        Arc::new(Mutex::new((0..fan_tokens.len()).flat_map(|f| (0..tweet_ids.len()).map(move |t| (f, t))).collect()));
    {
        use rand::seq::SliceRandom;
        pairs.lock().unwrap().shuffle(&mut rand::rng());
    }
    let fan_tokens = Arc::new(fan_tokens);
    let tweet_ids = Arc::new(tweet_ids);
    let fan_ids = Arc::new(fan_ids);
    // One like: true when it was answered 201 (and its time recorded).
    let like = {
        let (client, base, liked_at, latencies) = (client.clone(), base.clone(), liked_at.clone(), latencies.clone());
        let (fan_tokens, tweet_ids, fan_ids) = (fan_tokens.clone(), tweet_ids.clone(), fan_ids.clone());
        move |(f, t): (usize, usize)| {
            let (client, base, liked_at, latencies) = (client.clone(), base.clone(), liked_at.clone(), latencies.clone());
            let (fan_tokens, tweet_ids, fan_ids) = (fan_tokens.clone(), tweet_ids.clone(), fan_ids.clone());
            async move {
                let r = client.post(format!("{base}/tweet/{}/like", tweet_ids[t])).bearer_auth(&fan_tokens[f]).send().await;
                let now = Instant::now();
                if !r.is_ok_and(|r| r.status().as_u16() == 201) {
                    return false;
                }
                let key = (fan_ids[f].clone(), tweet_ids[t].clone());
                let mut liked = liked_at.lock().unwrap();
                match liked.remove(&key) {
                    // The notification came before the like's answer did.
                    Some(_) => latencies.lock().unwrap().push(Duration::ZERO),
                    None => {
                        liked.insert(key, now);
                    }
                }
                true
            }
        }
    };
    let mut not_sent = 0u64;
    if rate == 0 {
        for _ in 0..concurrency {
            let (pairs, like) = (pairs.clone(), like.clone());
            workers.push(tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let Some(pair) = pairs.lock().unwrap().pop() else { break };
                    if like(pair).await {
                        done += 1;
                    }
                }
                done
            }));
        }
    } else {
        // Open loop: each like starts when it is due, whether or not earlier ones were answered.
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency as usize));
        let mut due = started;
        let step = Duration::from_secs_f64(1.0 / rate as f64);
        while due < deadline {
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
            due += step;
            let Some(pair) = pairs.lock().unwrap().pop() else { break };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                not_sent += 1;
                continue;
            };
            let like = like.clone();
            workers.push(tokio::spawn(async move {
                let done = like(pair).await;
                drop(slot);
                u64::from(done)
            }));
        }
    }
    let mut likes = 0;
    for w in workers {
        likes += w.await?;
    }
    let elapsed = started.elapsed();
    // Let the last notifications arrive.
    let settle = Instant::now();
    while latencies.lock().unwrap().len() < likes as usize && settle.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A moment more for a duplicate to show, then the stored notifications.
    tokio::time::sleep(Duration::from_secs(1)).await;
    listener.abort();
    let duplicates = streamed.lock().unwrap().1;
    let unread: Value =
        client.get(format!("{base}/notifications/unread-count")).bearer_auth(&author).send().await?.json().await?;
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    println!("backends: {backends}");
    println!(
        "likes: {likes} in {:.1} s = {:.0}/s ({})",
        elapsed.as_secs_f64(),
        likes as f64 / elapsed.as_secs_f64(),
        if rate == 0 {
            format!("{concurrency} concurrent")
        } else {
            format!("offered at {rate}/s, at most {concurrency} in flight, {not_sent} not sent")
        }
    );
    println!(
        "exactly once: {} stored for the author, {duplicates} repeated on the stream",
        unread["unread"].as_i64().unwrap_or(-1)
    );
    println!(
        "notified: {} of {likes}; like-to-notification p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        l.len(),
        percentile(&l, 0.50).as_secs_f64() * 1e3,
        percentile(&l, 0.90).as_secs_f64() * 1e3,
        percentile(&l, 0.99).as_secs_f64() * 1e3,
        l.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
