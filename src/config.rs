//! All configuration, read once (flags, environment, optional `.env`) and
//! passed down. Nothing else in the crate reads the environment.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;

/// A value that must never appear in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// An IP address or a CIDR block (`10.0.0.0/8`), for `CHIRP_TRUSTED_PROXIES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpBlock {
    addr: IpAddr,
    prefix: u8,
}

impl IpBlock {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpBlock {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: bad prefix length"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// chirp: a Twitter-style social network backend.
///
/// Runs with no services installed (SQLite file, in-process cache and
/// broker, mail printed to the log, media on disk); each setting below
/// switches one part to its scale-out adapter.
#[derive(Clone, Debug, Parser)]
#[command(name = "chirp", version, about, long_about = None)]
pub struct Config {
    /// Address to serve HTTP on.
    #[arg(long, env = "CHIRP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite file, media, and the generated JWT secret.
    #[arg(long, env = "CHIRP_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// `sqlite://path` or `postgres://…`. Default: `sqlite://$CHIRP_DATA_DIR/chirp.db`.
    #[arg(long, env = "CHIRP_DATABASE_URL")]
    pub database_url: Option<Secret>,

    /// Maximum connections in the database pool (PostgreSQL; SQLite readers).
    #[arg(long, env = "CHIRP_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// `redis://…`. Unset: an in-process cache.
    #[arg(long, env = "CHIRP_REDIS_URL")]
    pub redis_url: Option<Secret>,

    /// Prefix for every Redis key, so several deployments can share one Redis.
    #[arg(long, env = "CHIRP_REDIS_PREFIX", default_value = "chirp:")]
    pub redis_prefix: String,

    /// Kafka bootstrap servers, `host1:9092,host2:9092`. Unset: an in-process broker.
    #[arg(long, env = "CHIRP_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    /// Topic that carries like events (created if missing).
    #[arg(long, env = "CHIRP_KAFKA_TOPIC", default_value = "chirp.likes")]
    pub kafka_topic: String,

    /// Topic that carries tweet posted/deleted events to the timeline fan-out (created if missing).
    #[arg(long, env = "CHIRP_KAFKA_TIMELINE_TOPIC", default_value = "chirp.timeline")]
    pub kafka_timeline_topic: String,

    /// Consumer group of the timeline fan-out workers.
    #[arg(long, env = "CHIRP_KAFKA_FANOUT_GROUP", default_value = "chirp-fanout")]
    pub kafka_fanout_group: String,

    /// Accounts with more followers than this are not fanned out on write:
    /// their tweets are merged into their followers' timelines when read.
    #[arg(long, env = "CHIRP_TIMELINE_FANOUT_LIMIT", default_value_t = 10_000)]
    pub timeline_fanout_limit: i64,

    /// Tweet ids kept per home timeline.
    #[arg(long, env = "CHIRP_TIMELINE_KEPT", default_value_t = 800)]
    pub timeline_kept: usize,

    /// In-process memory for kept home timelines (without Redis), in MiB.
    #[arg(long, env = "CHIRP_TIMELINE_MEMORY_MIB", default_value_t = 48)]
    pub timeline_memory_mib: u64,

    /// In-process memory for tweet bodies, authors and likes (hydration), in MiB.
    #[arg(long, env = "CHIRP_TWEET_CACHE_MIB", default_value_t = 64)]
    pub tweet_cache_mib: u64,

    /// Consumer group of the notification writers.
    #[arg(long, env = "CHIRP_KAFKA_GROUP", default_value = "chirp-notifications")]
    pub kafka_group: String,

    /// Partitions of a topic chirp creates. Unset: the broker's default (`num.partitions`).
    #[arg(long, env = "CHIRP_KAFKA_PARTITIONS", value_parser = clap::value_parser!(i32).range(1..))]
    pub kafka_partitions: Option<i32>,

    /// The longest a consumer's fetch waits at the broker for new messages,
    /// in milliseconds. A broker that answers a waiting fetch only when the
    /// wait ends (tansu 0.6) delays an idle topic's next message by up to
    /// this much, and is asked this often by each idle consumer.
    #[arg(long, env = "CHIRP_KAFKA_FETCH_WAIT_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub kafka_fetch_wait_ms: u64,

    /// Whether the outbox relay packs the events bound for one partition
    /// into one Kafka record (consumers read both forms). Turn it off while
    /// a rolling upgrade still has nodes of a chirp that reads no packs.
    #[arg(long, env = "CHIRP_KAFKA_PACK", action = clap::ArgAction::Set, default_value_t = true)]
    pub kafka_pack: bool,

    /// Replication factor of a topic chirp creates. Unset: the broker's
    /// default (`default.replication.factor`). The producer asks for
    /// `acks=all`, so a message is acknowledged once every in-sync replica has it.
    #[arg(long, env = "CHIRP_KAFKA_REPLICATION", value_parser = clap::value_parser!(i32).range(1..))]
    pub kafka_replication: Option<i32>,

    /// `smtp://user:pass@host:587` (STARTTLS), `smtps://…` (TLS), or
    /// `smtp://host:2525?tls=none` / `smtp+plain://…` (plain). Unset: mail is printed to the log.
    #[arg(long, env = "CHIRP_SMTP_URL")]
    pub smtp_url: Option<Secret>,

    /// Sender of the emails chirp sends.
    #[arg(long, env = "CHIRP_MAIL_FROM", default_value = "chirp <no-reply@localhost>")]
    pub mail_from: String,

    /// Where media is stored: a directory, or `s3://bucket/prefix` for S3-compatible
    /// object storage (credentials and region from the standard `AWS_*` variables).
    /// Default: `$CHIRP_DATA_DIR/media`.
    #[arg(long, env = "CHIRP_MEDIA_STORE")]
    pub media_store: Option<String>,

    /// Endpoint of an S3-compatible service (MinIO, Garage, moto, R2...) for an
    /// `s3://` media store; `http://` endpoints are allowed. Default: AWS itself.
    #[arg(long, env = "CHIRP_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Largest image accepted, in bytes.
    #[arg(long, env = "CHIRP_MEDIA_MAX_IMAGE_BYTES", default_value_t = 16 << 20)]
    pub media_max_image_bytes: u64,

    /// Largest video accepted, in bytes.
    #[arg(long, env = "CHIRP_MEDIA_MAX_VIDEO_BYTES", default_value_t = 100 << 20)]
    pub media_max_video_bytes: u64,

    /// Most pixels (width x height) of an image; bigger ones are refused from their header, undecoded.
    #[arg(long, env = "CHIRP_MEDIA_MAX_PIXELS", default_value_t = 50_000_000)]
    pub media_max_pixels: u64,

    /// Most frames of an animated GIF or WebP.
    #[arg(long, env = "CHIRP_MEDIA_MAX_FRAMES", default_value_t = 1_000)]
    pub media_max_frames: u32,

    /// Most pixels of an animation in all (canvas times frames): what decoding it costs.
    #[arg(long, env = "CHIRP_MEDIA_MAX_ANIMATION_PIXELS", default_value_t = 200_000_000)]
    pub media_max_animation_pixels: u64,

    /// Uploads decoded (or run through ffmpeg) at once. Default: the number of cores.
    #[arg(long, env = "CHIRP_MEDIA_DECODE_SLOTS")]
    pub media_decode_slots: Option<usize>,

    /// How long an upload waits for a decode slot before it is answered 503 with Retry-After.
    #[arg(long, env = "CHIRP_MEDIA_DECODE_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub media_decode_wait: Duration,

    /// How long a node holds a gifv MP4 rendition it took on; one whose node
    /// died is made by another (or by the same after a restart) once this runs out.
    #[arg(long, env = "CHIRP_MEDIA_RENDITION_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub media_rendition_lease: Duration,

    /// The ffmpeg program (video metadata removal, posters, MP4 renditions of animations).
    #[arg(long, env = "CHIRP_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// Without ffmpeg, store videos as uploaded, metadata (GPS, device) included,
    /// instead of refusing them with 415.
    #[arg(long, env = "CHIRP_MEDIA_STORE_UNSTRIPPED_VIDEO", action = clap::ArgAction::Set, default_value_t = false)]
    pub media_store_unstripped_video: bool,

    /// HS256 secret for access tokens (at least 32 bytes). Unset: generated
    /// once and kept in `$CHIRP_DATA_DIR/jwt.secret` (mode 0600).
    #[arg(long, env = "CHIRP_JWT_SECRET")]
    pub jwt_secret: Option<Secret>,

    /// After a shutdown signal, how long open connections may take to finish
    /// before they are dropped (a client that never finishes its request
    /// cannot hold the process up).
    #[arg(long, env = "CHIRP_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Lifetime of an access token.
    #[arg(long, env = "CHIRP_JWT_TTL", default_value = "24h", value_parser = parse_duration)]
    pub jwt_ttl: Duration,

    /// Public origin used in media URLs. Default: `http://$CHIRP_LISTEN`.
    #[arg(long, env = "CHIRP_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Requests a minute per client IP on register, verify-register and login; 0 turns it off.
    #[arg(long, env = "CHIRP_AUTH_RATE_LIMIT", default_value_t = 30)]
    pub auth_rate_limit: u32,

    /// Password hashes (logins, registrations) that may wait for a hashing
    /// thread (at least 1); past that, requests are answered 503 with Retry-After.
    #[arg(long, env = "CHIRP_PASSWORD_QUEUE", default_value_t = crate::services::passwords::DEFAULT_QUEUE)]
    pub password_queue: usize,

    /// Proxies (IPs or CIDR blocks, comma-separated) whose `X-Forwarded-For` is believed.
    #[arg(long, env = "CHIRP_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpBlock>,

    /// How long a pending registration (and its emailed code) stays valid.
    #[arg(long, env = "CHIRP_REGISTRATION_TTL", default_value = "10m", value_parser = parse_duration)]
    pub registration_ttl: Duration,

    /// Node number (0-1023) inside generated ids; give each node of a cluster its own.
    /// Default: random.
    #[arg(long, env = "CHIRP_NODE_ID", value_parser = clap::value_parser!(u16).range(0..1024))]
    pub node_id: Option<u16>,

    /// Log format.
    #[arg(long, env = "CHIRP_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter, in `RUST_LOG` syntax.
    #[arg(long, env = "CHIRP_LOG", default_value = "info,sqlx=warn,tower_http=info")]
    pub log: String,

    /// Largest JSON request body, in bytes.
    #[arg(long, env = "CHIRP_JSON_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub json_body_limit: usize,

    /// Live notification streams one user may hold open on one node; opening
    /// one more closes that user's oldest stream.
    #[arg(long, env = "CHIRP_LIVE_STREAMS_PER_USER", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub live_streams_per_user: u32,

    /// Live notification streams one node holds at most; past that a new
    /// stream is answered 503 with `Retry-After` (clients reconnect, maybe to another node).
    #[arg(long, env = "CHIRP_LIVE_STREAMS_PER_NODE", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub live_streams_per_node: u32,

    /// Time allowed for one request before it is answered 503.
    #[arg(long, env = "CHIRP_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

impl Config {
    /// Reads `.env` (if present), then flags and environment.
    pub fn load() -> Self {
        let _ = dotenvy::dotenv();
        Self::parse()
    }

    /// The configuration of `chirp` run with no flags: the defaults, with any
    /// `CHIRP_*` environment variables applied (no `.env` file is read).
    pub fn defaults() -> Self {
        Self::parse_from(["chirp"])
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("chirp.db").display()),
        }
    }

    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_blocks_match_their_members_only() {
        let block: IpBlock = "10.1.0.0/16".parse().unwrap();
        assert!(block.contains("10.1.200.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        let single: IpBlock = "::1".parse().unwrap();
        assert!(single.contains("::1".parse().unwrap()));
        assert!(!single.contains("127.0.0.1".parse().unwrap()));
        let all: IpBlock = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpBlock>().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
