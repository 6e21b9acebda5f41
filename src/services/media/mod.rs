//! The media pipeline: an upload streams to a temporary file; its type is
//! decided from its first bytes and the limit of that kind applies while it
//! streams. Still images are decoded under a pixel limit and stored without
//! metadata, with a thumbnail; GIF and WebP keep their frames and format
//! (and get a looping MP4 rendition, a gifv, where ffmpeg is present: made
//! after the tweet is answered, see `renditions.rs`);
//! videos are parsed in-process, copied without metadata by ffmpeg and get a
//! poster frame. Every item carries its size and a BlurHash. The decoding
//! work is bounded (a few at a time; the rest wait briefly, then 503). The
//! results go to the MediaStore under server-chosen keys: nothing the client
//! sends becomes a path, and a failed upload leaves no file behind.

mod animation;
mod descriptions;
mod renditions;
mod sniff;
mod still;
mod video;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use image::ImageFormat;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

pub use animation::{AnimationBounds, CleanAnimation, clean_animation};
pub use descriptions::describe;
pub use renditions::Renditions;
pub use sniff::{SNIFF_LEN, Sniffed, VideoContainer, sniff};
pub use still::{CleanImage, THUMBNAIL_EDGE, Thumbnail, blurhash_of, clean_image, decode_upright};
pub use video::VideoInfo;

use crate::domain::{FieldErrors, IdGenerator, Media, MediaKind};
use crate::error::{Error, Result};
use crate::ports::media_store::{MediaStore, MediaStoreError};

#[derive(Clone, Copy, Debug)]
pub struct MediaLimits {
    pub image_max_bytes: u64,
    pub video_max_bytes: u64,
    /// Width times height; checked from the header, before decoding.
    pub max_pixels: u64,
    /// Frames of an animated GIF or WebP.
    pub max_frames: u32,
    /// Canvas pixels times frames of an animation: what decoding it all costs.
    pub max_animation_pixels: u64,
    /// Uploads decoded (or run through ffmpeg) at once; each may hold
    /// hundreds of MiB, so this bounds the pipeline's memory.
    pub decode_slots: usize,
    /// How long an upload waits for a slot before it is answered 503.
    pub decode_wait: Duration,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self {
            image_max_bytes: 16 << 20,
            video_max_bytes: 100 << 20,
            max_pixels: 50_000_000,
            max_frames: 1_000,
            max_animation_pixels: 200_000_000,
            decode_slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
            decode_wait: Duration::from_secs(5),
        }
    }
}

impl MediaLimits {
    fn animation_bounds(&self) -> AnimationBounds {
        AnimationBounds { max_pixels: self.max_pixels, max_frames: self.max_frames, max_total_pixels: self.max_animation_pixels }
    }

    fn of(&self, kind: MediaKind) -> u64 {
        if kind == MediaKind::Video { self.video_max_bytes } else { self.image_max_bytes }
    }
}

/// An upload on disk, its type sniffed but its content not yet checked. Dropping it removes the file.
pub struct Staged {
    file: tempfile::NamedTempFile,
    size: u64,
    sniffed: Sniffed,
}

impl Staged {
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn sniffed(&self) -> Sniffed {
        self.sniffed
    }
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::Unprocessable("invalid_media", detail.into())
}

fn unavailable(e: MediaStoreError) -> Error {
    Error::Unavailable { what: "the media store", source: e.into() }
}

fn internal(e: impl Into<anyhow::Error>) -> Error {
    Error::Internal(e.into())
}

fn unsupported() -> Error {
    Error::UnsupportedMediaType("the file is not a JPEG, PNG, GIF or WebP image, nor an MP4, QuickTime or WebM video".into())
}

/// How videos are treated, decided at start-up from what the machine has.
#[derive(Clone, Debug)]
pub struct VideoTools {
    /// ffmpeg, if it runs here.
    pub ffmpeg: Option<PathBuf>,
    /// Without ffmpeg, store videos as they came (metadata included) rather than refuse them.
    pub store_unstripped: bool,
}

impl VideoTools {
    /// Looks for `ffmpeg` and says at start-up what its absence means.
    pub fn detect(ffmpeg: &Path, store_unstripped: bool) -> Self {
        let ffmpeg = video::ffmpeg_works(ffmpeg).then(|| ffmpeg.to_owned());
        if ffmpeg.is_none() {
            if store_unstripped {
                tracing::warn!(
                    "ffmpeg is not installed: videos are stored as uploaded, WITH their metadata (GPS, device), \
                     without posters; animated images get no MP4 rendition"
                );
            } else {
                tracing::warn!(
                    "ffmpeg is not installed: video uploads are refused (415), since their metadata cannot be removed; \
                     set CHIRP_MEDIA_STORE_UNSTRIPPED_VIDEO=true to store them as uploaded"
                );
            }
        }
        Self { ffmpeg, store_unstripped }
    }
}

pub struct MediaPipeline {
    store: Arc<dyn MediaStore>,
    limits: MediaLimits,
    tmp: PathBuf,
    ids: Arc<IdGenerator>,
    video: VideoTools,
    slots: Arc<Semaphore>,
    busy: Arc<AtomicUsize>,
    busy_peak: Arc<AtomicUsize>,
}

impl MediaPipeline {
    /// A pipeline that runs `ffmpeg` from the `PATH` (see `with_video_tools` to check that it is there).
    pub fn new(store: Arc<dyn MediaStore>, limits: MediaLimits, tmp: PathBuf, ids: Arc<IdGenerator>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&tmp)?;
        let slots = Arc::new(Semaphore::new(limits.decode_slots.max(1)));
        let video = VideoTools { ffmpeg: Some("ffmpeg".into()), store_unstripped: false };
        Ok(Self { store, limits, tmp, ids, video, slots, busy: Arc::default(), busy_peak: Arc::default() })
    }

    pub fn with_video_tools(mut self, video: VideoTools) -> Self {
        self.video = video;
        self
    }

    pub fn store(&self) -> &Arc<dyn MediaStore> {
        &self.store
    }

    pub fn limits(&self) -> &MediaLimits {
        &self.limits
    }

    /// The most uploads that were being decoded at once since start-up.
    pub fn peak_concurrent_decodes(&self) -> usize {
        self.busy_peak.load(Ordering::Relaxed)
    }

    /// Runs CPU- and memory-heavy work (decoding, ffmpeg) on the blocking
    /// pool, at most `decode_slots` at a time; waits up to `decode_wait` for
    /// a slot, then gives up with 503 and Retry-After.
    pub async fn decode<T: Send + 'static>(&self, work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        let _permit = self.slot().await?;
        tokio::task::spawn_blocking(work).await.map_err(internal)?
    }

    /// A decode slot, held for as long as the guard lives.
    pub async fn slot(&self) -> Result<DecodeSlot> {
        let permit = tokio::time::timeout(self.limits.decode_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Error::Unavailable {
                what: "media processing",
                source: anyhow::anyhow!(
                    "all {} decode slots stayed busy for {:?}",
                    self.limits.decode_slots,
                    self.limits.decode_wait
                ),
            })?
            .map_err(internal)?;
        Ok(self.occupy(permit))
    }

    /// A decode slot for work nobody waits on (renditions): it waits as long as it takes.
    async fn background_slot(&self) -> Result<DecodeSlot> {
        let permit = self.slots.clone().acquire_owned().await.map_err(internal)?;
        Ok(self.occupy(permit))
    }

    fn occupy(&self, permit: tokio::sync::OwnedSemaphorePermit) -> DecodeSlot {
        let now = self.busy.fetch_add(1, Ordering::Relaxed) + 1;
        self.busy_peak.fetch_max(now, Ordering::Relaxed);
        metrics::gauge!("chirp_media_decodes_in_flight").set(now as f64);
        DecodeSlot { _permit: permit, busy: self.busy.clone() }
    }

    /// Streams an upload to a temporary file. Its type is decided from its
    /// first bytes (415 at once if it is none we take), then the limit of
    /// that kind applies as it streams: an image stops being read past the
    /// image limit, not the video one (413).
    pub async fn stage<E: std::fmt::Display>(
        &self,
        mut body: impl Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> Result<Staged> {
        let file = tempfile::NamedTempFile::new_in(&self.tmp).map_err(internal)?;
        let mut out = tokio::fs::File::from_std(file.reopen().map_err(internal)?);
        let mut head = Vec::with_capacity(SNIFF_LEN);
        let mut sniffed = None;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| Error::BadRequest("malformed_multipart", format!("the upload could not be read: {e}")))?;
            size += chunk.len() as u64;
            if sniffed.is_none() {
                let take = (SNIFF_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                if head.len() == SNIFF_LEN {
                    sniffed = Some(sniff(&head).ok_or_else(unsupported)?);
                }
            }
            let limit =
                sniffed.map_or(self.limits.image_max_bytes.max(self.limits.video_max_bytes), |s| self.limits.of(s.kind()));
            if size > limit {
                let what = sniffed.map_or("a file", |s| if s.kind() == MediaKind::Video { "a video" } else { "an image" });
                return Err(Error::PayloadTooLarge(format!("{what} may be at most {} MiB", limit >> 20)));
            }
            out.write_all(&chunk).await.map_err(internal)?;
        }
        out.flush().await.map_err(internal)?;
        let sniffed = match sniffed {
            Some(s) => s,
            None => sniff(&head).ok_or_else(unsupported)?,
        };
        Ok(Staged { file, size, sniffed })
    }

    /// Checks a staged upload and stores it; `expected` is the kind the form field asked for, if any.
    pub async fn process(&self, staged: Staged, expected: Option<MediaKind>) -> Result<Media> {
        let kind = staged.sniffed.kind();
        if expected.is_some_and(|e| e != kind) {
            return Err(Error::UnsupportedMediaType(format!(
                "the file is of kind {}, not what the field asked for",
                kind.as_str()
            )));
        }
        match staged.sniffed {
            Sniffed::Image(format @ (ImageFormat::Gif | ImageFormat::WebP)) => self.process_animation(staged, format).await,
            Sniffed::Image(format) => self.process_still(staged, format).await,
            Sniffed::Video(container) => self.process_video(staged, container).await,
        }
    }

    async fn process_still(&self, staged: Staged, format: ImageFormat) -> Result<Media> {
        let path = staged.file.path().to_owned();
        let max_pixels = self.limits.max_pixels;
        let clean = self.decode(move || clean_image(&path, format, max_pixels)).await?;
        let id = self.ids.next_id();
        let key = format!("{id}.{}", clean.extension);
        let thumbnail_key = format!("{id}-thumb.jpg");
        let mut written = Written::new(self);
        written.bytes(&key, &clean.bytes, clean.content_type).await?;
        written.bytes(&thumbnail_key, &clean.thumbnail.jpeg, "image/jpeg").await?;
        written.keep();
        Ok(Media {
            id,
            kind: MediaKind::Image,
            content_type: clean.content_type.to_owned(),
            key,
            original_key: None,
            thumbnail_key: Some(thumbnail_key),
            size_bytes: clean.bytes.len() as i64,
            width: Some(i64::from(clean.width)),
            height: Some(i64::from(clean.height)),
            thumbnail_width: Some(i64::from(clean.thumbnail.width)),
            thumbnail_height: Some(i64::from(clean.thumbnail.height)),
            duration_ms: None,
            description: None,
            blurhash: clean.thumbnail.blurhash,
        })
    }

    /// A GIF or WebP, checked and stored without its metadata. A moving one
    /// becomes a gifv when ffmpeg is here: the answer lists its MP4, which
    /// `Renditions` writes after the tweet is committed (until then the item's
    /// size is its original's).
    async fn process_animation(&self, staged: Staged, format: ImageFormat) -> Result<Media> {
        let path = staged.file.path().to_owned();
        let bounds = self.limits.animation_bounds();
        let clean = self
            .decode(move || {
                let bytes = std::fs::read(&path).map_err(internal)?;
                clean_animation(&bytes, format, &bounds)
            })
            .await?;
        let moves = clean.moves();
        let id = self.ids.next_id();
        let original_key = format!("{id}.{}", clean.extension);
        let thumbnail_key = format!("{id}-thumb.jpg");
        let mut written = Written::new(self);
        written.bytes(&original_key, &clean.structure.stripped, clean.content_type).await?;
        written.bytes(&thumbnail_key, &clean.thumbnail.jpeg, "image/jpeg").await?;
        written.keep();
        let mut media = Media {
            id,
            kind: MediaKind::Image,
            content_type: clean.content_type.to_owned(),
            key: original_key.clone(),
            original_key: None,
            thumbnail_key: Some(thumbnail_key),
            size_bytes: clean.structure.stripped.len() as i64,
            width: Some(i64::from(clean.structure.width)),
            height: Some(i64::from(clean.structure.height)),
            thumbnail_width: Some(i64::from(clean.thumbnail.width)),
            thumbnail_height: Some(i64::from(clean.thumbnail.height)),
            duration_ms: None,
            description: None,
            blurhash: clean.thumbnail.blurhash,
        };
        if self.video.ffmpeg.is_some() && moves {
            media.kind = MediaKind::Gifv;
            media.content_type = "video/mp4".into();
            media.key = format!("{id}.mp4");
            media.original_key = Some(original_key);
            media.duration_ms = Some(clean.structure.duration_ms() as i64);
        }
        Ok(media)
    }

    async fn process_video(&self, staged: Staged, container: VideoContainer) -> Result<Media> {
        if self.video.ffmpeg.is_none() && !self.video.store_unstripped {
            return Err(Error::UnsupportedMediaType(
                "this server does not accept videos: it cannot remove their metadata (ffmpeg is not installed)".into(),
            ));
        }
        let path = staged.file.path().to_owned();
        let info = self.decode(move || video::probe(&path, container)).await?;
        let id = self.ids.next_id();
        let key = format!("{id}.{}", container.extension());
        let mut media = Media {
            id,
            kind: MediaKind::Video,
            content_type: container.content_type().to_owned(),
            key: key.clone(),
            original_key: None,
            thumbnail_key: None,
            size_bytes: staged.size as i64,
            width: Some(i64::from(info.width)),
            height: Some(i64::from(info.height)),
            thumbnail_width: None,
            thumbnail_height: None,
            duration_ms: info.duration_ms.map(|d| d as i64),
            description: None,
            blurhash: None,
        };
        let mut written = Written::new(self);
        let Some(ffmpeg) = self.video.ffmpeg.clone() else {
            // The operator chose to store videos as they are.
            written.file(&key, staged.file.path(), container.content_type()).await?;
            written.keep();
            return Ok(media);
        };
        let _slot = self.slot().await?;
        let stripped =
            tempfile::Builder::new().suffix(&format!(".{}", container.extension())).tempfile_in(&self.tmp).map_err(internal)?;
        let poster = tempfile::Builder::new().suffix(".jpg").tempfile_in(&self.tmp).map_err(internal)?;
        video::strip_metadata(&ffmpeg, staged.file.path(), stripped.path(), container, poster.path(), info.duration_ms).await?;
        if std::fs::metadata(poster.path()).map_err(internal)?.len() == 0 {
            // Nothing that late after all: the first frame, from the copy.
            video::first_frame_poster(&ffmpeg, stripped.path(), poster.path()).await?;
        }
        let poster_path = poster.path().to_owned();
        let (jpeg, width, height, blurhash) = tokio::task::spawn_blocking(move || -> Result<_> {
            let jpeg = std::fs::read(&poster_path).map_err(internal)?;
            let picture = image::load_from_memory_with_format(&jpeg, ImageFormat::Jpeg)
                .map_err(|e| invalid(format!("the video's frames could not be decoded: {e}")))?;
            Ok((jpeg, picture.width(), picture.height(), blurhash_of(&picture)))
        })
        .await
        .map_err(internal)??;
        let thumbnail_key = format!("{id}-poster.jpg");
        media.size_bytes = std::fs::metadata(stripped.path()).map_err(internal)?.len() as i64;
        written.file(&key, stripped.path(), container.content_type()).await?;
        written.bytes(&thumbnail_key, &jpeg, "image/jpeg").await?;
        written.keep();
        media.thumbnail_key = Some(thumbnail_key);
        media.thumbnail_width = Some(i64::from(width));
        media.thumbnail_height = Some(i64::from(height));
        media.blurhash = blurhash;
        Ok(media)
    }

    /// Writes bytes to the MediaStore under `key`.
    pub async fn put_bytes(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<()> {
        let file = tempfile::NamedTempFile::new_in(&self.tmp).map_err(internal)?;
        tokio::fs::write(file.path(), bytes).await.map_err(internal)?;
        self.store.put_file(key, file.path(), content_type).await.map_err(unavailable)
    }

    /// Removes stored media (after a failed post or a delete); failures are logged.
    pub async fn remove(&self, media: &[Media]) {
        for m in media {
            for key in std::iter::once(&m.key).chain(m.thumbnail_key.as_ref()).chain(m.original_key.as_ref()) {
                self.remove_key(key).await;
            }
        }
    }

    async fn remove_key(&self, key: &str) {
        if let Err(e) = self.store.delete(key).await {
            tracing::warn!(key, error = %e, "could not remove a media object");
        }
    }
}

/// A decode slot; freed when dropped.
pub struct DecodeSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    busy: Arc<AtomicUsize>,
}

impl Drop for DecodeSlot {
    fn drop(&mut self) {
        let now = self.busy.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("chirp_media_decodes_in_flight").set(now as f64);
    }
}

/// The objects one upload has written so far: removed again unless `keep` is called.
struct Written<'a> {
    pipeline: &'a MediaPipeline,
    keys: Vec<String>,
}

impl<'a> Written<'a> {
    fn new(pipeline: &'a MediaPipeline) -> Self {
        Self { pipeline, keys: Vec::new() }
    }

    async fn bytes(&mut self, key: &str, bytes: &[u8], content_type: &str) -> Result<()> {
        let result = self.pipeline.put_bytes(key, bytes, content_type).await;
        self.settle(key, result).await
    }

    async fn file(&mut self, key: &str, path: &Path, content_type: &str) -> Result<()> {
        let result = self.pipeline.store.put_file(key, path, content_type).await.map_err(unavailable);
        self.settle(key, result).await
    }

    async fn settle(&mut self, key: &str, result: Result<()>) -> Result<()> {
        match result {
            Ok(()) => {
                self.keys.push(key.to_owned());
                Ok(())
            }
            Err(e) => {
                for key in self.keys.drain(..) {
                    self.pipeline.remove_key(&key).await;
                }
                Err(e)
            }
        }
    }

    fn keep(mut self) {
        self.keys.clear();
    }
}

/// Why a form's files are refused before any is processed.
pub fn check_counts(images: usize, videos: usize) -> Result<()> {
    if videos > 1 || (videos == 1 && images > 0) || images > 4 {
        return Err(Error::Validation(FieldErrors::single("media", "attach up to 4 images, or 1 video")));
    }
    Ok(())
}
