//! `chirp-load`: drives a running chirp with named scenarios and reports
//! requests/s and latency percentiles per endpoint, errors counted.
//!
//! ```text
//! chirp-load run --scenario mixed --duration 30s --rate 10000   # open loop
//! chirp-load run --scenario timeline --connections 64           # closed loop
//! chirp-load serve-baseline --listen 127.0.0.1:18081            # the HTTP ceiling
//! ```
//!
//! Closed loop: `--connections` workers, each sending its next request when
//! the last one is answered. Open loop (`--rate`): requests start on a fixed
//! schedule whether or not earlier ones were answered, and each latency is
//! measured from when its request was *due*, so a stalled server shows up
//! in the percentiles instead of slowing the load down (no coordinated
//! omission).
//!
//! Before the run, the tool logs in as existing users (found through
//! `GET /user`, all with the password `--password`, as `chirp-seed` makes
//! them) and collects tweet ids, words and username fragments to use.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "chirp-load", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one scenario against a running chirp.
    Run(RunArgs),
    /// Serves `GET /healthz` with a fixed JSON body from a minimal axum app:
    /// the `fixed` scenario against it measures this machine's HTTP ceiling.
    ServeBaseline {
        #[arg(long, default_value = "127.0.0.1:18081")]
        listen: std::net::SocketAddr,
    },
    /// Posts as the most-followed account (found through `GET /user`) and
    /// measures each post's acknowledgement and when it shows in sampled
    /// followers' home timelines.
    LargePost(LargePostArgs),
}

#[derive(Parser)]
struct LargePostArgs {
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    base: String,
    /// Posts to make, one after the other.
    #[arg(long, default_value_t = 20)]
    posts: usize,
    /// Followers whose timelines are watched.
    #[arg(long, default_value_t = 5)]
    sample: usize,
    #[arg(long, default_value = "bench-password")]
    password: String,
}

#[derive(Parser)]
struct RunArgs {
    /// The server's origin.
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    base: String,
    #[arg(long, value_enum, default_value_t = Scenario::Mixed)]
    scenario: Scenario,
    /// How long to measure, e.g. 10s or 1m.
    #[arg(long, default_value = "10s", value_parser = humantime_duration)]
    duration: Duration,
    /// Load before measuring (not counted).
    #[arg(long, default_value = "2s", value_parser = humantime_duration)]
    warmup: Duration,
    /// Closed loop: concurrent connections. Open loop: the most requests in flight.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Open loop: requests per second, started on schedule whatever the answers.
    #[arg(long)]
    rate: Option<f64>,
    /// Users to log in as (found through GET /user).
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Their password.
    #[arg(long, default_value = "bench-password")]
    password: String,
    /// Print the results as one JSON object too.
    #[arg(long)]
    json: bool,
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number.parse().map_err(|_| format!("{s}: expected e.g. 10s, 500ms, 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s}: expected e.g. 10s, 500ms, 2m")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Scenario {
    /// GET /healthz: the HTTP floor of chirp (or of the baseline server).
    Fixed,
    ReadTweet,
    Timeline,
    Views,
    Likes,
    TweetText,
    TweetImage,
    Follows,
    SearchTweets,
    SearchUsers,
    /// 40% tweet reads, 40% timelines, 8% views, 6% likes, 3% tweets, 2% follows, 1% search.
    Mixed,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Op {
    Fixed,
    ReadTweet,
    Timeline,
    View,
    Like,
    TweetText,
    TweetImage,
    Follow,
    SearchTweets,
    SearchUsers,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Fixed => "GET /healthz",
            Op::ReadTweet => "GET /tweet/{id}",
            Op::Timeline => "GET /timeline",
            Op::View => "PATCH /tweet/{id}/views",
            Op::Like => "POST /tweet/{id}/like",
            Op::TweetText => "POST /tweet (text)",
            Op::TweetImage => "POST /tweet (image)",
            Op::Follow => "POST /user/{id}/follow",
            Op::SearchTweets => "GET /tweet?search",
            Op::SearchUsers => "GET /user?search",
        }
    }
}

impl Scenario {
    /// The operations and their weights.
    fn mix(self) -> Vec<(Op, u32)> {
        match self {
            Scenario::Fixed => vec![(Op::Fixed, 1)],
            Scenario::ReadTweet => vec![(Op::ReadTweet, 1)],
            Scenario::Timeline => vec![(Op::Timeline, 1)],
            Scenario::Views => vec![(Op::View, 1)],
            Scenario::Likes => vec![(Op::Like, 1)],
            Scenario::TweetText => vec![(Op::TweetText, 1)],
            Scenario::TweetImage => vec![(Op::TweetImage, 1)],
            Scenario::Follows => vec![(Op::Follow, 1)],
            Scenario::SearchTweets => vec![(Op::SearchTweets, 1)],
            Scenario::SearchUsers => vec![(Op::SearchUsers, 1)],
            Scenario::Mixed => vec![
                (Op::ReadTweet, 40),
                (Op::Timeline, 40),
                (Op::View, 8),
                (Op::Like, 6),
                (Op::TweetText, 3),
                (Op::Follow, 2),
                (Op::SearchTweets, 1),
            ],
        }
    }
}

/// What requests are made of: sessions, tweet ids, search words.
struct Fixture {
    api: String,
    base: String,
    client: Client,
    sessions: Vec<(String, String)>, // (user id, token)
    tweets: Vec<String>,
    queries: Vec<String>,
    fragments: Vec<String>,
    image: Vec<u8>,
}

async fn json_of(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

impl Fixture {
    async fn load(args: &RunArgs, client: Client, ops: &[Op]) -> anyhow::Result<Self> {
        let base = args.base.trim_end_matches('/').to_owned();
        let api = format!("{base}/api/v1");
        let mut fixture = Fixture {
            api,
            base,
            client,
            sessions: Vec::new(),
            tweets: Vec::new(),
            queries: Vec::new(),
            fragments: Vec::new(),
            image: Vec::new(),
        };
        if ops == [Op::Fixed] {
            return Ok(fixture);
        }
        // Users: pages of GET /user, then a login each (Argon2: a few at a time).
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        while names.len() < args.users {
            let mut url = format!("{}/user?limit=100", fixture.api);
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = json_of(fixture.client.get(&url).send().await?).await.context("listing users")?;
            for user in page["data"].as_array().into_iter().flatten() {
                names.push(user["username"].as_str().unwrap_or_default().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        names.truncate(args.users);
        if names.is_empty() {
            bail!("no users: seed the server first (chirp-seed)");
        }
        let logins = Arc::new(tokio::sync::Semaphore::new(8));
        let mut pending = tokio::task::JoinSet::new();
        for name in names.clone() {
            let (client, api, password) = (fixture.client.clone(), fixture.api.clone(), args.password.clone());
            let logins = logins.clone();
            pending.spawn(async move {
                let _permit = logins.acquire_owned().await?;
                let r = client.post(format!("{api}/login")).json(&json!({"username": name, "password": password})).send().await?;
                let body = json_of(r).await.with_context(|| format!("logging in as {name}"))?;
                anyhow::Ok((
                    body["user"]["id"].as_str().unwrap_or_default().to_owned(),
                    body["access_token"].as_str().unwrap_or_default().to_owned(),
                ))
            });
        }
        let mut sessions = Vec::new();
        while let Some(login) = pending.join_next().await {
            sessions.push(login??);
        }
        fixture.sessions = sessions;
        // Tweets, and words from them for searches.
        for (_, token) in fixture.sessions.iter().take(50) {
            let page =
                json_of(fixture.client.get(format!("{}/timeline?limit=100", fixture.api)).bearer_auth(token).send().await?)
                    .await
                    .context("reading a timeline")?;
            for tweet in page["data"].as_array().into_iter().flatten() {
                fixture.tweets.push(tweet["id"].as_str().unwrap_or_default().to_owned());
                let words: Vec<&str> = tweet["content"].as_str().unwrap_or_default().split_whitespace().collect();
                if words.len() >= 2 && fixture.queries.len() < 5_000 {
                    let i = rand::rng().random_range(0..words.len() - 1);
                    fixture.queries.push(format!("{} {}", words[i], words[i + 1]));
                }
            }
        }
        fixture.tweets.sort();
        fixture.tweets.dedup();
        if fixture.tweets.is_empty() && ops.iter().any(|o| matches!(o, Op::ReadTweet | Op::View | Op::Like)) {
            bail!("the users' timelines are empty: seed tweets and follows first (chirp-seed)");
        }
        fixture.fragments = names.iter().filter(|n| n.len() >= 4).map(|n| n[1..4].to_owned()).collect();
        if ops.contains(&Op::TweetImage) {
            fixture.image = test_image();
        }
        Ok(fixture)
    }

    fn session(&self) -> &(String, String) {
        self.sessions.choose(&mut rand::rng()).expect("sessions")
    }

    fn tweet(&self) -> &str {
        self.tweets.choose(&mut rand::rng()).map(String::as_str).unwrap_or("0")
    }

    fn request(&self, op: Op, n: u64) -> reqwest::RequestBuilder {
        let c = &self.client;
        let api = &self.api;
        match op {
            Op::Fixed => c.get(format!("{}/healthz", self.base)),
            Op::ReadTweet => c.get(format!("{api}/tweet/{}", self.tweet())).bearer_auth(&self.session().1),
            Op::Timeline => c.get(format!("{api}/timeline?limit=20")).bearer_auth(&self.session().1),
            Op::View => c.request(Method::PATCH, format!("{api}/tweet/{}/views", self.tweet())),
            Op::Like => c.post(format!("{api}/tweet/{}/like", self.tweet())).bearer_auth(&self.session().1),
            Op::TweetText => c
                .post(format!("{api}/tweet"))
                .bearer_auth(&self.session().1)
                .json(&json!({"content": format!("load test tweet number {n} about rust and coffee")})),
            Op::TweetImage => {
                let part = reqwest::multipart::Part::bytes(self.image.clone()).file_name("photo.jpg");
                let form = reqwest::multipart::Form::new().text("content", format!("photo {n}")).part("media", part);
                c.post(format!("{api}/tweet")).bearer_auth(&self.session().1).multipart(form)
            }
            Op::Follow => {
                // Two different users (following oneself is a 422 by contract).
                let pair: Vec<_> = self.sessions.choose_multiple(&mut rand::rng(), 2).collect();
                let (token, followee) = (&pair[0].1, &pair[pair.len() - 1].0);
                c.post(format!("{api}/user/{followee}/follow")).bearer_auth(token)
            }
            Op::SearchTweets => {
                let q = self.queries.choose(&mut rand::rng()).map(String::as_str).unwrap_or("rust");
                c.get(format!("{api}/tweet")).query(&[("search", q), ("limit", "20")])
            }
            Op::SearchUsers => {
                let q = self.fragments.choose(&mut rand::rng()).map(String::as_str).unwrap_or("ka");
                c.get(format!("{api}/user")).query(&[("search", q), ("limit", "20")])
            }
        }
    }
}

/// A 1024x768 photo-like JPEG (about 100 KB), made once.
fn test_image() -> Vec<u8> {
    let img = image::RgbImage::from_fn(1024, 768, |x, y| {
        let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 27;
        image::Rgb([(x / 4) as u8, (y / 3) as u8, ((x + y) / 7) as u8 ^ noise as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).expect("encoding the test image");
    out.into_inner()
}

#[derive(Default)]
struct OpStats {
    latency: Option<Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Stats {
    ops: BTreeMap<Op, OpStats>,
    dropped: u64,
}

impl Stats {
    fn record(&mut self, op: Op, micros: u64, outcome: Result<StatusCode, String>) {
        let entry = self.ops.entry(op).or_default();
        let histogram =
            entry.latency.get_or_insert_with(|| Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"));
        histogram.saturating_record(micros.max(1));
        match outcome {
            Ok(status) if status.is_success() => {}
            Ok(status) => *entry.errors.entry(status.as_u16().to_string()).or_default() += 1,
            Err(e) => *entry.errors.entry(e).or_default() += 1,
        }
    }
}

async fn send(fixture: &Fixture, op: Op, n: u64) -> Result<StatusCode, String> {
    match fixture.request(op, n).send().await {
        Ok(response) => {
            let status = response.status();
            // Read the whole body: the server's work includes sending it.
            response.bytes().await.map_err(|_| "body".to_owned())?;
            Ok(status)
        }
        Err(e) if e.is_timeout() => Err("timeout".into()),
        Err(e) if e.is_connect() => Err("connect".into()),
        Err(_) => Err("transport".into()),
    }
}

fn pick(mix: &[(Op, u32)], total: u32) -> Op {
    let mut r = rand::rng().random_range(0..total);
    for &(op, weight) in mix {
        if r < weight {
            return op;
        }
        r -= weight;
    }
    mix[0].0
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mix = args.scenario.mix();
    let total_weight: u32 = mix.iter().map(|(_, w)| w).sum();
    let ops: Vec<Op> = mix.iter().map(|(op, _)| *op).collect();
    let client =
        Client::builder().pool_max_idle_per_host(args.connections).timeout(Duration::from_secs(30)).tcp_nodelay(true).build()?;
    let setup = Instant::now();
    let fixture = Arc::new(Fixture::load(&args, client, &ops).await?);
    eprintln!(
        "setup: {} sessions, {} tweets, {} search phrases in {:.1}s",
        fixture.sessions.len(),
        fixture.tweets.len(),
        fixture.queries.len(),
        setup.elapsed().as_secs_f64()
    );

    let stats = Arc::new(Mutex::new(Stats::default()));
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mode = match args.rate {
        Some(rate) => format!("open loop at {rate}/s, at most {} in flight", args.connections),
        None => format!("closed loop, {} connections", args.connections),
    };
    eprintln!("running {:?} ({mode}) for {:?} after {:?} of warm-up", args.scenario, args.duration, args.warmup);

    match args.rate {
        None => {
            let workers: Vec<_> = (0..args.connections)
                .map(|_| {
                    let (fixture, stats, mix, counter) = (fixture.clone(), stats.clone(), mix.clone(), counter.clone());
                    tokio::spawn(async move {
                        while Instant::now() < end {
                            let op = pick(&mix, total_weight);
                            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let sent = Instant::now();
                            let outcome = send(&fixture, op, n).await;
                            if sent >= measure_from && Instant::now() <= end {
                                stats.lock().unwrap().record(op, sent.elapsed().as_micros() as u64, outcome);
                            }
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await?;
            }
        }
        Some(rate) => {
            let in_flight = Arc::new(tokio::sync::Semaphore::new(args.connections));
            let period = Duration::from_secs_f64(1.0 / rate);
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0u64.. {
                let due = start + period.mul_f64(i as f64);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    if due >= measure_from {
                        stats.lock().unwrap().dropped += 1;
                    }
                    continue;
                };
                let (fixture, stats) = (fixture.clone(), stats.clone());
                let op = pick(&mix, total_weight);
                tasks.spawn(async move {
                    let outcome = send(&fixture, op, i).await;
                    drop(permit);
                    if due >= measure_from {
                        // From when the request was due, not when it went out.
                        stats.lock().unwrap().record(op, due.elapsed().as_micros() as u64, outcome);
                    }
                });
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
    }
    report(&args, &stats.lock().unwrap());
    Ok(())
}

fn report(args: &RunArgs, stats: &Stats) {
    let secs = args.duration.as_secs_f64();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{:<26} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "endpoint", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut all: Option<Histogram<u64>> = None;
    let mut rows = Vec::new();
    let (mut total_requests, mut total_errors) = (0u64, 0u64);
    for (op, s) in &stats.ops {
        let Some(h) = &s.latency else { continue };
        let errors: u64 = s.errors.values().sum();
        total_requests += h.len();
        total_errors += errors;
        println!(
            "{:<26} {:>9} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1}",
            op.name(),
            h.len(),
            errors,
            h.len() as f64 / secs,
            ms(h, 0.5),
            ms(h, 0.9),
            ms(h, 0.99),
            h.max() as f64 / 1000.0
        );
        rows.push(json!({
            "endpoint": op.name(), "requests": h.len(), "errors": s.errors, "rps": h.len() as f64 / secs,
            "p50_ms": ms(h, 0.5), "p90_ms": ms(h, 0.9), "p99_ms": ms(h, 0.99), "max_ms": h.max() as f64 / 1000.0,
        }));
        match &mut all {
            Some(a) => a.add(h).expect("same bounds"),
            None => all = Some(h.clone()),
        }
    }
    if let Some(h) = &all {
        println!(
            "{:<26} {:>9} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1}",
            "all",
            total_requests,
            total_errors,
            total_requests as f64 / secs,
            ms(h, 0.5),
            ms(h, 0.9),
            ms(h, 0.99),
            h.max() as f64 / 1000.0
        );
    }
    for (op, s) in &stats.ops {
        if !s.errors.is_empty() {
            println!("errors of {}: {:?}", op.name(), s.errors);
        }
    }
    if stats.dropped > 0 {
        println!("not sent (more than --connections in flight): {}", stats.dropped);
    }
    if args.json {
        let summary = all.as_ref().map(|h| {
            json!({"requests": total_requests, "errors": total_errors, "rps": total_requests as f64 / secs,
                   "p50_ms": ms(h, 0.5), "p90_ms": ms(h, 0.9), "p99_ms": ms(h, 0.99), "max_ms": h.max() as f64 / 1000.0})
        });
        let out = json!({"scenario": format!("{:?}", args.scenario), "rate": args.rate, "connections": args.connections,
                         "duration_s": secs, "endpoints": rows, "all": summary, "dropped": stats.dropped});
        println!("JSON {out}");
    }
}

async fn serve_baseline(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { axum::Json(json!({"status": "ok"})) }));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("baseline: GET http://{listen}/healthz");
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args).await,
        Command::ServeBaseline { listen } => serve_baseline(listen).await,
        Command::LargePost(args) => large_post(args).await,
    }
}

async fn login(client: &Client, api: &str, username: &str, password: &str) -> anyhow::Result<String> {
    let r = client.post(format!("{api}/login")).json(&json!({"username": username, "password": password})).send().await?;
    let body = json_of(r).await.with_context(|| format!("logging in as {username}"))?;
    Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
}

async fn large_post(args: LargePostArgs) -> anyhow::Result<()> {
    let client = Client::builder().timeout(Duration::from_secs(30)).build()?;
    let api = format!("{}/api/v1", args.base.trim_end_matches('/'));
    // The most-followed account.
    let (mut best, mut cursor): ((i64, String, String), Option<String>) = ((-1, String::new(), String::new()), None);
    loop {
        let mut url = format!("{api}/user?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = json_of(client.get(&url).send().await?).await.context("listing users")?;
        for u in page["data"].as_array().into_iter().flatten() {
            let followers = u["followers_count"].as_i64().unwrap_or(0);
            if followers > best.0 {
                best = (
                    followers,
                    u["username"].as_str().unwrap_or_default().to_owned(),
                    u["id"].as_str().unwrap_or_default().to_owned(),
                );
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let (followers, username, id) = best;
    println!("most-followed account: {username} ({followers} followers)");
    let token = login(&client, &api, &username, &args.password).await?;
    let page = json_of(client.get(format!("{api}/user/{id}/followers?limit={}", args.sample)).send().await?).await?;
    let mut watchers = Vec::new();
    for u in page["data"].as_array().into_iter().flatten() {
        let name = u["username"].as_str().unwrap_or_default();
        let token = login(&client, &api, name, &args.password).await?;
        // Read once, so that the follower's timeline is kept (the usual case for an active user).
        json_of(client.get(format!("{api}/timeline?limit=20")).bearer_auth(&token).send().await?).await?;
        watchers.push(token);
    }
    let mut acks = Histogram::<u64>::new(3)?;
    let mut visible = Histogram::<u64>::new(3)?;
    for n in 0..args.posts {
        let sent = Instant::now();
        let r = client
            .post(format!("{api}/tweet"))
            .bearer_auth(&token)
            .json(&json!({"content": format!("large account post {n}")}))
            .send()
            .await?;
        let tweet = json_of(r).await.context("posting")?;
        acks.record(sent.elapsed().as_micros() as u64)?;
        let tweet_id = tweet["id"].as_str().unwrap_or_default().to_owned();
        for watcher in &watchers {
            loop {
                let page = json_of(client.get(format!("{api}/timeline?limit=5")).bearer_auth(watcher).send().await?).await?;
                if page["data"].as_array().into_iter().flatten().any(|t| t["id"] == tweet_id.as_str()) {
                    visible.record(sent.elapsed().as_micros() as u64)?;
                    break;
                }
                if sent.elapsed() > Duration::from_secs(30) {
                    bail!("post {tweet_id} not in a follower's timeline after 30 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{} posts, {} followers watched: acknowledged p50 {:.1} ms, max {:.1} ms; visible to followers p50 {:.1} ms, max {:.1} ms",
        args.posts,
        watchers.len(),
        ms(&acks, 0.5),
        ms(&acks, 1.0),
        ms(&visible, 0.5),
        ms(&visible, 1.0)
    );
    Ok(())
}
