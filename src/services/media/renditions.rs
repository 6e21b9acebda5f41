//! A gifv's looping MP4, made after the tweet is answered. Piping every
//! frame through libx264 costs more than everything else an upload does, so
//! the answer lists the MP4's URL and a worker writes it moments later.
//!
//! The work is durable: inserting a gifv's media row records it (in the
//! tweet's transaction, see migration 0008), and a worker of any node claims
//! it with a lease. A process that dies mid-render leaves the claim to run
//! out; the next sweep (at start-up, on a wake, or every lease period) takes
//! it up again. Until the MP4 is written its URL answers 503 with
//! `Retry-After` (`rendition_pending`), and the item's `size_bytes` is its
//! original's. An MP4 that cannot be made turns the item into its original,
//! an animated image served as it is.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use image::ImageFormat;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{MediaPipeline, animation};
use crate::domain::{Id, Media, Timestamp};
use crate::error::Result;
use crate::ports::media_store::MediaStoreError;
use crate::ports::store::{RenditionOutcome, Store};
use crate::services::tweet_cache::TweetCache;

pub struct Renditions {
    store: Arc<dyn Store>,
    media: Arc<MediaPipeline>,
    cache: Arc<TweetCache>,
    /// How long a claim holds; also how often the worker looks for claims run out.
    lease: Duration,
    wake: Notify,
    /// Media known to have no MP4 to make (made, given up, or never a gifv).
    /// A rendition never becomes pending again, so this is never stale.
    settled: moka::sync::Cache<Id, ()>,
}

/// Why a rendition was not finished.
enum Failure {
    /// It cannot be made from this original: give up on the MP4.
    Unrenderable(anyhow::Error),
    /// The media store or database failed: the claim runs out and it is tried again.
    Transient(anyhow::Error),
}

impl Renditions {
    pub fn new(store: Arc<dyn Store>, media: Arc<MediaPipeline>, cache: Arc<TweetCache>, lease: Duration) -> Self {
        Self { store, media, cache, lease, wake: Notify::new(), settled: moka::sync::Cache::new(100_000) }
    }

    /// A tweet with a gifv was committed: look for work now rather than at the next sweep.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether `key` names a gifv's MP4 that is still to be made. The MP4
    /// is written before its row is settled, so this, not the object's
    /// presence, says whether it may be served: once it is, the tweet
    /// already gives its size.
    pub async fn pending(&self, key: &str) -> Result<bool> {
        let Some(id) = key.strip_suffix(".mp4").and_then(|stem| stem.parse::<Id>().ok()) else { return Ok(false) };
        if self.settled.contains_key(&id) {
            return Ok(false);
        }
        let pending = self.store.rendition_pending(id).await?;
        if !pending {
            self.settled.insert(id, ());
        }
        Ok(pending)
    }

    /// Makes renditions until `stop`: everything due at start-up, then what each wake or sweep finds.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            loop {
                let now = Timestamp::now().as_millis();
                let lease = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
                let claimed = match self.store.claim_rendition(now, now.saturating_add(lease)).await {
                    Ok(Some(claimed)) => claimed,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not look for gifv renditions to make");
                        break;
                    }
                };
                tokio::select! {
                    // Abandoned mid-render: the claim runs out and a worker (this node's, after a restart, or another's) redoes it.
                    () = stop.cancelled() => return,
                    () = self.make(claimed.1) => {}
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.lease) => {}
            }
        }
    }

    async fn make(&self, media: Media) {
        let outcome = match self.render(&media).await {
            Ok(size_bytes) => RenditionOutcome::Written { size_bytes },
            Err(Failure::Transient(e)) => {
                metrics::counter!("chirp_media_renditions_total", "outcome" => "retried").increment(1);
                tracing::warn!(media = %media.id, error = format!("{e:#}"), "a gifv rendition failed; it will be tried again");
                return;
            }
            Err(Failure::Unrenderable(e)) => {
                tracing::warn!(media = %media.id, error = format!("{e:#}"), "no MP4 can be made; the animation is served as it is");
                let Some(original) = media.original_key.as_deref() else { return };
                match self.media.store.size(original).await {
                    Ok(size) => RenditionOutcome::Abandoned {
                        content_type: if original.ends_with(".webp") { "image/webp" } else { "image/gif" },
                        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
                    },
                    Err(e) => {
                        tracing::warn!(media = %media.id, error = %e, "the original could not be measured; trying again later");
                        return;
                    }
                }
            }
        };
        let written = matches!(outcome, RenditionOutcome::Written { .. });
        metrics::counter!("chirp_media_renditions_total", "outcome" => if written { "written" } else { "abandoned" })
            .increment(1);
        match self.store.settle_rendition(media.id, outcome).await {
            Ok(Some((tweet, _))) => self.cache.forget_tweet(tweet).await,
            // The tweet was deleted meanwhile: nothing refers to the MP4 any more.
            Ok(None) if written => self.media.remove_key(&media.key).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(media = %media.id, error = %e, "a gifv rendition could not be recorded; it will be made again")
            }
        }
    }

    /// Renders the MP4 of `media` and stores it under its key; returns its size.
    async fn render(&self, media: &Media) -> std::result::Result<i64, Failure> {
        let transient = |e: anyhow::Error| Failure::Transient(e);
        let original =
            media.original_key.as_deref().ok_or_else(|| Failure::Unrenderable(anyhow::anyhow!("a gifv without its original")))?;
        let format = if original.ends_with(".webp") { ImageFormat::WebP } else { ImageFormat::Gif };
        let ffmpeg =
            self.media.video.ffmpeg.clone().ok_or_else(|| Failure::Unrenderable(anyhow::anyhow!("ffmpeg is not installed")))?;
        let bytes = match self.media.store.open(original, None).await {
            Ok(opened) => {
                let mut bytes = Vec::with_capacity(usize::try_from(opened.total).unwrap_or(0));
                let mut stream = opened.stream;
                while let Some(chunk) = stream.next().await {
                    bytes.extend_from_slice(&chunk.map_err(|e| transient(e.into()))?);
                }
                bytes
            }
            Err(MediaStoreError::NotFound) => {
                return Err(Failure::Unrenderable(anyhow::anyhow!("the original {original} is gone")));
            }
            Err(e) => return Err(transient(e.into())),
        };
        let bounds = self.media.limits.animation_bounds();
        let tmp = self.media.tmp.clone();
        let mp4 = {
            let _slot = self.media.background_slot().await.map_err(|e| transient(anyhow::anyhow!("{e}")))?;
            tokio::task::spawn_blocking(move || animation::render_mp4(&bytes, format, &bounds, &ffmpeg, &tmp))
                .await
                .map_err(|e| transient(e.into()))?
                .map_err(Failure::Unrenderable)?
        };
        let size = std::fs::metadata(mp4.path()).map_err(|e| transient(e.into()))?.len();
        self.media.store.put_file(&media.key, mp4.path(), "video/mp4").await.map_err(|e| transient(e.into()))?;
        Ok(i64::try_from(size).unwrap_or(i64::MAX))
    }
}
