//! Wiring: adapters from configuration, services from adapters, the router
//! from services; then serving until a shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::domain::IdGenerator;
use crate::http::rate_limit::RateLimit;
use crate::http::session::Sessions;
use crate::http::{self, AppState, AuthLimits, HttpSettings, Services};
use crate::ports::broker::{Broker, KafkaBroker, MemoryBroker, TopicLayout};
use crate::ports::cache::{Cache, HomeTimelines, MemoryCache, MemoryHomeTimelines, RedisCache, RedisHomeTimelines};
use crate::ports::mailer::{LogMailer, Mailer, SmtpMailer};
use crate::ports::media_store::{DirMediaStore, MediaStore, S3MediaStore};
use crate::ports::store::{self, Store};
use crate::services::avatar::Avatars;
use crate::services::fanout::FanoutWorker;
use crate::services::live::{LiveHub, LiveLimits};
use crate::services::media::{MediaLimits, MediaPipeline, Renditions, VideoTools};
use crate::services::notifications::{NotificationConsumer, Notifications};
use crate::services::outbox::{EventTopics, OutboxRelay};
use crate::services::passwords::Passwords;
use crate::services::timeline::{TimelineSettings, Timelines};
use crate::services::tweet_cache::{TweetCache, TweetCacheLimits};
use crate::services::writes::Writer;
use crate::services::{Accounts, Graph, Profiles, Search, Tokens, Tweets, tokens};

/// The adapters behind the ports, chosen from configuration.
pub struct Adapters {
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn Cache>,
    pub mailer: Arc<dyn Mailer>,
    pub broker: Arc<dyn Broker>,
    pub media_store: Arc<dyn MediaStore>,
    pub home_timelines: Arc<dyn HomeTimelines>,
}

impl Adapters {
    pub async fn from_config(config: &Config) -> anyhow::Result<Self> {
        let store =
            store::connect(&config.database_url(), config.database_max_connections).await.context("opening the database")?;
        let (cache, home_timelines): (Arc<dyn Cache>, Arc<dyn HomeTimelines>) = match &config.redis_url {
            Some(url) => {
                let redis = RedisCache::connect(url.expose(), &config.redis_prefix).await.context("connecting to Redis")?;
                (Arc::new(redis.clone()), Arc::new(RedisHomeTimelines::new(redis, config.timeline_kept)))
            }
            None => (
                Arc::new(MemoryCache::new(1_000_000)),
                Arc::new(MemoryHomeTimelines::new(config.timeline_memory_mib << 20, config.timeline_kept)),
            ),
        };
        let mailer: Arc<dyn Mailer> = match &config.smtp_url {
            Some(url) => Arc::new(SmtpMailer::new(url.expose(), &config.mail_from)?),
            None => Arc::new(LogMailer),
        };
        let broker: Arc<dyn Broker> = match &config.kafka_brokers {
            Some(brokers) => {
                let layout = TopicLayout { partitions: config.kafka_partitions, replication: config.kafka_replication };
                let broker = KafkaBroker::connect(brokers, layout).await.context("connecting to Kafka")?;
                Arc::new(broker.with_fetch_wait(Duration::from_millis(config.kafka_fetch_wait_ms)).with_packs(config.kafka_pack))
            }
            None => Arc::new(MemoryBroker::default()),
        };
        let media_store: Arc<dyn MediaStore> = match config.media_store.as_deref() {
            Some(url) if url.starts_with("s3://") => {
                Arc::new(S3MediaStore::new(url, config.s3_endpoint.as_deref()).context("configuring the S3 media store")?)
            }
            dir => {
                let dir = dir.map(PathBuf::from).unwrap_or_else(|| config.data_dir.join("media"));
                Arc::new(DirMediaStore::new(&dir).context("opening the media directory")?)
            }
        };
        Ok(Self { store, cache, mailer, broker, media_store, home_timelines })
    }
}

/// Prometheus metrics are process-wide by nature; the recorder is installed once.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0],
                )
                .expect("non-empty buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first (an embedding program's).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    background: TaskTracker,
    stop: CancellationToken,
    shutdown_grace: Duration,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
        let adapters = Adapters::from_config(&config).await?;
        Self::with_adapters(config, adapters).await
    }

    pub async fn with_adapters(config: Config, adapters: Adapters) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
        let secret = tokens::load_or_create_secret(config.jwt_secret.as_ref(), &config.data_dir)?;
        let tokens = Arc::new(Tokens::new(&secret, config.jwt_ttl));
        let node = config.node_id.unwrap_or_else(|| rand::random::<u16>() % 1024);
        let ids = Arc::new(IdGenerator::new(node));
        let Adapters { store, cache, mailer, broker, media_store, home_timelines } = adapters;
        let accounts = Arc::new(
            Accounts::new(
                store.clone(),
                cache.clone(),
                mailer.clone(),
                tokens.clone(),
                ids.clone(),
                tokens::derive_key(&secret, "chirp registration codes"),
                config.registration_ttl,
            )
            .with_passwords(Passwords::new(std::thread::available_parallelism().map_or(2, |n| n.get()), config.password_queue)),
        );
        // Before the first login, so that the first unknown user's login is
        // not the one that pays for making the decoy hash.
        accounts.prepare().await.context("preparing the login decoy hash")?;
        let background = TaskTracker::new();
        let stop = CancellationToken::new();
        let outbox_wake = Arc::new(Notify::new());
        let live_limits =
            LiveLimits { per_user: config.live_streams_per_user as usize, per_node: config.live_streams_per_node as usize };
        let live = match &config.redis_url {
            Some(url) => LiveHub::redis(url.expose(), &config.redis_prefix, live_limits, &background, stop.clone()).await?,
            None => LiveHub::local(live_limits),
        };
        broker.ensure_topic(&config.kafka_topic).await.context("creating the likes topic")?;
        broker.ensure_topic(&config.kafka_timeline_topic).await.context("creating the timeline topic")?;
        // In-process caches are exact only when every write passes through
        // this process: an SQLite file without a shared cache (one node).
        // Otherwise (possibly several nodes) they are trusted for a second,
        // and home timelines are kept only where every node sees them (Redis).
        let exclusive = config.redis_url.is_none() && store.kind() == "sqlite";
        let keep_timelines = exclusive || config.redis_url.is_some();
        let tweet_cache = Arc::new(TweetCache::new(
            store.clone(),
            !exclusive,
            config.redis_url.is_some().then(|| cache.clone()),
            TweetCacheLimits {
                bodies_bytes: config.tweet_cache_mib << 19,
                authors_bytes: config.tweet_cache_mib << 18,
                likes_bytes: config.tweet_cache_mib << 18,
            },
        ));
        let writer = Writer::start(
            store.clone(),
            tweet_cache.clone(),
            home_timelines.clone(),
            outbox_wake.clone(),
            &background,
            stop.clone(),
        );
        let timelines = Arc::new(Timelines::new(
            store.clone(),
            home_timelines,
            tweet_cache.clone(),
            TimelineSettings {
                fanout_limit: config.timeline_fanout_limit,
                kept: config.timeline_kept,
                build: u32::try_from(config.timeline_kept.min(200)).unwrap_or(200),
                keep: keep_timelines,
            },
        ));
        background.spawn(timelines.clone().watch_large_accounts(stop.clone()));
        background.spawn(
            FanoutWorker {
                store: store.clone(),
                broker: broker.clone(),
                timelines: timelines.clone(),
                cache: tweet_cache.clone(),
                topic: config.kafka_timeline_topic.clone(),
                group: config.kafka_fanout_group.clone(),
            }
            .run(stop.clone()),
        );
        background.spawn(
            NotificationConsumer {
                writer: writer.clone(),
                broker: broker.clone(),
                live: live.clone(),
                ids: ids.clone(),
                topic: config.kafka_topic.clone(),
                group: config.kafka_group.clone(),
            }
            .run(stop.clone()),
        );
        background.spawn(
            OutboxRelay {
                store: store.clone(),
                writer: writer.clone(),
                broker: broker.clone(),
                topics: EventTopics { likes: config.kafka_topic.clone(), timeline: config.kafka_timeline_topic.clone() },
                holder: format!("node-{node}-{:08x}", rand::random::<u32>()),
                wake: outbox_wake.clone(),
            }
            .run(stop.clone()),
        );
        let metrics = metrics_handle();
        let media = Arc::new(
            MediaPipeline::new(
                media_store,
                MediaLimits {
                    image_max_bytes: config.media_max_image_bytes,
                    video_max_bytes: config.media_max_video_bytes,
                    max_pixels: config.media_max_pixels,
                    max_frames: config.media_max_frames,
                    max_animation_pixels: config.media_max_animation_pixels,
                    decode_slots: config.media_decode_slots.unwrap_or(MediaLimits::default().decode_slots),
                    decode_wait: config.media_decode_wait,
                },
                config.data_dir.join("tmp"),
                ids.clone(),
            )?
            .with_video_tools(VideoTools::detect(&config.ffmpeg, config.media_store_unstripped_video)),
        );
        let renditions =
            Arc::new(Renditions::new(store.clone(), media.clone(), tweet_cache.clone(), config.media_rendition_lease));
        background.spawn(renditions.clone().run(stop.clone()));
        let state = AppState::new(Services {
            accounts,
            tweets: Arc::new(Tweets::new(
                store.clone(),
                ids.clone(),
                writer.clone(),
                outbox_wake,
                tweet_cache.clone(),
                timelines.clone(),
            )),
            notifications: Arc::new(Notifications::new(store.clone(), live)),
            media: media.clone(),
            renditions,
            profiles: Arc::new(Profiles::new(store.clone(), Avatars::new(media, ids.clone()), tweet_cache.clone())),
            broker: broker.clone(),
            graph: Arc::new(Graph::new(store.clone(), ids.clone(), writer, timelines.clone())),
            search: Arc::new(Search::new(store.clone())),
            media_base: config.public_url.as_deref().map(|u| u.trim_end_matches('/')).unwrap_or("").into(),
            json_body_limit: config.json_body_limit,
            tokens,
            sessions: Arc::new(Sessions::new(
                tokens::derive_key(&secret, "chirp csrf tokens"),
                config.public_url.as_deref(),
                config.jwt_ttl,
            )),
            store: store.clone(),
            cache: cache.clone(),
            metrics: metrics.clone(),
            draining: CancellationToken::new(),
        });

        let trusted = Arc::new(config.trusted_proxies.clone());
        // Kept in Redis when there is one, so that N nodes do not allow N times the limit.
        let shared = config.redis_url.as_ref().map(|_| cache.clone());
        let limit = |name| RateLimit::per_minute(name, config.auth_rate_limit, trusted.clone(), shared.clone());
        let limits = AuthLimits { register: limit("register"), verify: limit("verify"), login: limit("login") };
        let router = http::router(
            state.clone(),
            HttpSettings {
                json_body_limit: config.json_body_limit,
                request_timeout: config.request_timeout,
                limits: limits.clone(),
            },
        );

        background.spawn(housekeeping(metrics, stop.clone()));

        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        tracing::info!(
            address = %listener.local_addr()?,
            node,
            database = store.kind(),
            cache = cache.kind(),
            mailer = mailer.kind(),
            broker = broker.kind(),
            "chirp is listening"
        );
        Ok(Self { listener, router, state, background, stop, shutdown_grace: config.shutdown_grace })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish
    /// (for at most the shutdown grace) and stops the background work.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let signalled = Arc::new(tokio::sync::Notify::new());
        let notify = signalled.clone();
        let draining = self.state.draining.clone();
        let serve = axum::serve(self.listener, service).with_graceful_shutdown(async move {
            shutdown.await;
            draining.cancel();
            notify.notify_one();
        });
        let grace = self.shutdown_grace;
        tokio::select! {
            served = serve.into_future() => served?,
            () = async { signalled.notified().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("connections still open {grace:?} after the shutdown signal; dropping them");
            }
        }
        tracing::info!("no longer accepting requests; stopping background work");
        self.stop.cancel();
        self.background.close();
        self.background.wait().await;
        // The Kafka consumers just dropped leave their groups on threads of their own.
        crate::ports::broker::wait_for_closes(Duration::from_secs(5)).await;
        self.state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn housekeeping(metrics: PrometheusHandle, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                metrics.run_upkeep();
            }
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
