//! The media pipeline: an upload streams to a temporary file under a size
//! limit; its type is decided from its bytes; images are decoded under a
//! pixel limit and re-encoded (which drops EXIF, GPS and text chunks) with a
//! thumbnail; videos are checked with ffprobe; the results go to the
//! MediaStore under server-chosen keys. Nothing the client sends becomes a
//! path, and a failed upload leaves no file behind.

use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use tokio::io::AsyncWriteExt;

use crate::domain::{FieldErrors, IdGenerator, Media, MediaKind};
use crate::error::{Error, Result};
use crate::ports::media_store::{MediaStore, MediaStoreError};

pub const THUMBNAIL_EDGE: u32 = 400;

#[derive(Clone, Copy, Debug)]
pub struct MediaLimits {
    pub image_max_bytes: u64,
    pub video_max_bytes: u64,
    /// Width times height; checked from the header, before decoding.
    pub max_pixels: u64,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self { image_max_bytes: 16 << 20, video_max_bytes: 100 << 20, max_pixels: 50_000_000 }
    }
}

/// An upload on disk, not yet checked. Dropping it removes the file.
pub struct Staged {
    file: tempfile::NamedTempFile,
    size: u64,
}

impl Staged {
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Image(ImageFormat),
    Video(&'static str, &'static str),
}

/// The type of a file from its first bytes.
pub(crate) fn sniff(head: &[u8]) -> Option<Sniffed> {
    let at = |i: usize, magic: &[u8]| head.len() >= i + magic.len() && &head[i..i + magic.len()] == magic;
    Some(if at(0, &[0xFF, 0xD8, 0xFF]) {
        Sniffed::Image(ImageFormat::Jpeg)
    } else if at(0, b"\x89PNG\r\n\x1a\n") {
        Sniffed::Image(ImageFormat::Png)
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        Sniffed::Image(ImageFormat::Gif)
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Sniffed::Image(ImageFormat::WebP)
    } else if at(4, b"ftyp") {
        if at(8, b"qt  ") { Sniffed::Video("video/quicktime", "mov") } else { Sniffed::Video("video/mp4", "mp4") }
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        Sniffed::Video("video/webm", "webm")
    } else {
        return None;
    })
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

/// An image made fit to store: re-encoded, with its size and thumbnail.
struct CleanImage {
    bytes: Vec<u8>,
    content_type: &'static str,
    extension: &'static str,
    width: u32,
    height: u32,
    thumbnail: Vec<u8>,
}

/// Whether the file ends the way its format ends. Decoders are lenient with
/// truncated JPEGs (they fill in grey), so the end marker is checked here.
pub(crate) fn looks_complete(path: &Path, format: ImageFormat) -> Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(internal)?;
    let len = file.metadata().map_err(internal)?.len();
    let tail_len = len.min(4096);
    file.seek(SeekFrom::Start(len - tail_len)).map_err(internal)?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.read_to_end(&mut tail).map_err(internal)?;
    Ok(match format {
        ImageFormat::Jpeg => tail.windows(2).any(|w| w == [0xFF, 0xD9]),
        ImageFormat::Gif => tail.iter().rev().find(|b| **b != 0).is_some_and(|b| *b == 0x3B),
        _ => true,
    })
}

/// The JPEG without its metadata, bit for bit otherwise: every APPn segment
/// but JFIF (APP0), ICC colour profiles (APP2) and Adobe's colour transform
/// (APP14) is dropped, so are comments and anything after the end marker.
/// The pixels are untouched (no re-encoding loss, and 5x faster than
/// encoding). `None` when the file's structure is not as expected.
fn strip_jpeg_metadata(jpeg: &[u8]) -> Option<Vec<u8>> {
    const SOS: u8 = 0xDA;
    const EOI: u8 = 0xD9;
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut out = Vec::with_capacity(jpeg.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut at = 2;
    loop {
        // A marker: 0xFF (possibly repeated as fill), then its code.
        if *jpeg.get(at)? != 0xFF {
            return None;
        }
        while *jpeg.get(at + 1)? == 0xFF {
            at += 1;
        }
        let marker = jpeg[at + 1];
        if marker == EOI {
            out.extend_from_slice(&[0xFF, EOI]);
            return Some(out);
        }
        let length = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        let end = at + 2 + length;
        let segment = jpeg.get(at..end)?;
        let payload = &segment[4.min(segment.len())..];
        let keep = match marker {
            0xE0 => payload.starts_with(b"JFIF\0"),
            0xE2 => payload.starts_with(b"ICC_PROFILE\0"),
            0xEE => payload.starts_with(b"Adobe"),
            0xE1..=0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(segment);
        }
        at = end;
        if marker == SOS {
            // Entropy-coded data runs to the next marker that is neither a
            // stuffed 0xFF00 nor a restart marker.
            let start = at;
            while jpeg.get(at)? != &0xFF || matches!(jpeg.get(at + 1)?, 0x00 | 0xD0..=0xD7 | 0xFF) {
                at += 1;
            }
            out.extend_from_slice(&jpeg[start..at]);
        }
    }
}

fn clean_image(path: &Path, format: ImageFormat, max_pixels: u64) -> Result<CleanImage> {
    if !looks_complete(path, format)? {
        return Err(invalid("the image is truncated"));
    }
    let open = || -> Result<ImageReader<BufReader<std::fs::File>>> {
        let file = std::fs::File::open(path).map_err(internal)?;
        Ok(ImageReader::with_format(BufReader::new(file), format))
    };
    // The header alone says how big the picture is: refuse bombs before any pixel is allocated.
    let (width, height) = open()?.into_dimensions().map_err(|e| invalid(format!("the image could not be read: {e}")))?;
    if u64::from(width) * u64::from(height) > max_pixels || width == 0 || height == 0 {
        return Err(invalid(format!("the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted")));
    }
    let mut reader = open()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(max_pixels * 8 + (64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| invalid(format!("the image could not be decoded: {e}")))?;
    let orientation = decoder.orientation().ok().filter(|o| *o != image::metadata::Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(|e| invalid(format!("the image could not be decoded: {e}")))?;
    if let Some(orientation) = orientation {
        picture.apply_orientation(orientation);
    }
    // An upright JPEG that decoded cleanly keeps its compressed pixels.
    let stripped = match (format, orientation) {
        (ImageFormat::Jpeg, None) => strip_jpeg_metadata(&std::fs::read(path).map_err(internal)?),
        _ => None,
    };
    // Re-encoding keeps the pixels and nothing else: no EXIF, GPS, comments or text chunks.
    let (bytes, content_type, extension) = match format {
        ImageFormat::Jpeg if stripped.is_some() => (stripped.unwrap_or_default(), "image/jpeg", "jpg"),
        ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP => {
            let mut out = Cursor::new(Vec::new());
            picture.write_to(&mut out, ImageFormat::Png).map_err(internal)?;
            (out.into_inner(), "image/png", "png")
        }
        _ => {
            let mut out = Vec::new();
            let rgb = DynamicImage::ImageRgb8(picture.to_rgb8());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&rgb).map_err(internal)?;
            (out, "image/jpeg", "jpg")
        }
    };
    let mut thumbnail = Vec::new();
    let small = DynamicImage::ImageRgb8(picture.thumbnail(THUMBNAIL_EDGE, THUMBNAIL_EDGE).to_rgb8());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumbnail, 80).encode_image(&small).map_err(internal)?;
    Ok(CleanImage { bytes, content_type, extension, width: picture.width(), height: picture.height(), thumbnail })
}

/// What ffprobe says of a video: width, height, duration in ms.
async fn probe_video(path: &Path) -> Result<Option<(i64, i64, Option<i64>)>> {
    let run = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"])
        .arg(path)
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(Duration::from_secs(30), run).await {
        Err(_) => return Err(invalid("the video could not be checked in time")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                "ffprobe is not installed: videos are accepted by their container signature, without size or duration"
            );
            return Ok(None);
        }
        Ok(Err(e)) => return Err(internal(e)),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        return Err(invalid("the video could not be read"));
    }
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|_| invalid("the video could not be read"))?;
    let stream = info["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .ok_or_else(|| invalid("the file has no video stream"))?;
    let (width, height) = (stream["width"].as_i64(), stream["height"].as_i64());
    let (Some(width), Some(height)) = (width, height) else { return Err(invalid("the video has no picture size")) };
    let duration = info["format"]["duration"].as_str().and_then(|d| d.parse::<f64>().ok()).map(|s| (s * 1000.0).round() as i64);
    Ok(Some((width, height, duration)))
}

pub struct MediaPipeline {
    store: Arc<dyn MediaStore>,
    limits: MediaLimits,
    tmp: PathBuf,
    ids: Arc<IdGenerator>,
}

impl MediaPipeline {
    pub fn new(store: Arc<dyn MediaStore>, limits: MediaLimits, tmp: PathBuf, ids: Arc<IdGenerator>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&tmp)?;
        Ok(Self { store, limits, tmp, ids })
    }

    pub fn store(&self) -> &Arc<dyn MediaStore> {
        &self.store
    }

    pub fn limits(&self) -> MediaLimits {
        self.limits
    }

    /// Streams an upload to a temporary file; stops reading as soon as it is
    /// larger than any media may be (413).
    pub async fn stage<E: std::fmt::Display>(
        &self,
        mut body: impl Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> Result<Staged> {
        let file = tempfile::NamedTempFile::new_in(&self.tmp).map_err(internal)?;
        let mut out = tokio::fs::File::from_std(file.reopen().map_err(internal)?);
        let max = self.limits.image_max_bytes.max(self.limits.video_max_bytes);
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| Error::BadRequest("malformed_multipart", format!("the upload could not be read: {e}")))?;
            size += chunk.len() as u64;
            if size > max {
                return Err(Error::PayloadTooLarge(format!("a file may be at most {} MiB", max >> 20)));
            }
            out.write_all(&chunk).await.map_err(internal)?;
        }
        out.flush().await.map_err(internal)?;
        Ok(Staged { file, size })
    }

    /// Checks a staged upload and stores it; `expected` is the kind the form field asked for, if any.
    pub async fn process(&self, staged: Staged, expected: Option<MediaKind>) -> Result<Media> {
        let mut head = [0u8; 16];
        let n = std::fs::File::open(staged.file.path()).and_then(|mut f| f.read(&mut head)).map_err(internal)?;
        let sniffed = sniff(&head[..n]).ok_or_else(|| {
            Error::UnsupportedMediaType(
                "the file is not a JPEG, PNG, GIF or WebP image, nor an MP4, QuickTime or WebM video".into(),
            )
        })?;
        let kind = match sniffed {
            Sniffed::Image(_) => MediaKind::Image,
            Sniffed::Video(..) => MediaKind::Video,
        };
        if expected.is_some_and(|e| e != kind) {
            return Err(Error::UnsupportedMediaType(format!("the file is an {}, not what the field asked for", kind.as_str())));
        }
        let limit = if kind == MediaKind::Image { self.limits.image_max_bytes } else { self.limits.video_max_bytes };
        if staged.size > limit {
            return Err(Error::PayloadTooLarge(format!("an {} may be at most {} MiB", kind.as_str(), limit >> 20)));
        }
        let id = self.ids.next_id();
        match sniffed {
            Sniffed::Image(format) => {
                let path = staged.file.path().to_owned();
                let max_pixels = self.limits.max_pixels;
                let clean =
                    tokio::task::spawn_blocking(move || clean_image(&path, format, max_pixels)).await.map_err(internal)??;
                let key = format!("{id}.{}", clean.extension);
                let thumbnail_key = format!("{id}-thumb.jpg");
                self.put_bytes(&key, &clean.bytes, clean.content_type).await?;
                if let Err(e) = self.put_bytes(&thumbnail_key, &clean.thumbnail, "image/jpeg").await {
                    let _ = self.store.delete(&key).await;
                    return Err(e);
                }
                Ok(Media {
                    id,
                    kind,
                    content_type: clean.content_type.to_owned(),
                    key,
                    thumbnail_key: Some(thumbnail_key),
                    size_bytes: clean.bytes.len() as i64,
                    width: Some(i64::from(clean.width)),
                    height: Some(i64::from(clean.height)),
                    duration_ms: None,
                })
            }
            Sniffed::Video(content_type, extension) => {
                let probed = probe_video(staged.file.path()).await?;
                let key = format!("{id}.{extension}");
                self.store.put_file(&key, staged.file.path(), content_type).await.map_err(unavailable)?;
                Ok(Media {
                    id,
                    kind,
                    content_type: content_type.to_owned(),
                    key,
                    thumbnail_key: None,
                    size_bytes: staged.size as i64,
                    width: probed.map(|p| p.0),
                    height: probed.map(|p| p.1),
                    duration_ms: probed.and_then(|p| p.2),
                })
            }
        }
    }

    pub(crate) async fn put_bytes(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<()> {
        let file = tempfile::NamedTempFile::new_in(&self.tmp).map_err(internal)?;
        tokio::fs::write(file.path(), bytes).await.map_err(internal)?;
        self.store.put_file(key, file.path(), content_type).await.map_err(unavailable)
    }

    /// Removes stored media (after a failed post or a delete); failures are logged.
    pub async fn remove(&self, media: &[Media]) {
        for m in media {
            for key in std::iter::once(&m.key).chain(m.thumbnail_key.as_ref()) {
                if let Err(e) = self.store.delete(key).await {
                    tracing::warn!(key, error = %e, "could not remove a media object");
                }
            }
        }
    }
}

/// Why a form's files are refused before any is processed.
pub fn check_counts(images: usize, videos: usize) -> Result<()> {
    if videos > 1 || (videos == 1 && images > 0) || images > 4 {
        return Err(Error::Validation(FieldErrors::single("media", "attach up to 4 images, or 1 video")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_metadata_is_stripped_and_the_pixels_kept() {
        let picture =
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90])));
        let mut plain = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut plain).encode_image(&picture).unwrap();
        // SOI, an EXIF segment, a comment, the rest, and bytes after the end marker.
        let exif = [&[0xFF, 0xE1, 0x00, 0x14][..], b"Exif\0\0GPS SECRET!!"].concat();
        let comment = [&[0xFF, 0xFE, 0x00, 0x0A][..], b"SECRET!!"].concat();
        let tagged = [&plain[..2], &exif, &comment, &plain[2..], b"TRAILING SECRET"].concat();

        let stripped = strip_jpeg_metadata(&tagged).expect("a well-formed JPEG");
        assert_eq!(stripped, plain, "exactly the original without the metadata");
        assert!(!stripped.windows(6).any(|w| w == b"SECRET"));
        assert_eq!(strip_jpeg_metadata(&plain[..plain.len() / 2]), None, "truncated");
        assert_eq!(strip_jpeg_metadata(b"\xFF\xD8\xFF\xE1\xFF\xFF"), None, "a segment longer than the file");
    }

    #[test]
    fn types_are_decided_by_their_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(Sniffed::Image(ImageFormat::Jpeg)));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Sniffed::Image(ImageFormat::WebP)));
        assert_eq!(sniff(b"\0\0\0\x20ftypisom"), Some(Sniffed::Video("video/mp4", "mp4")));
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  "), Some(Sniffed::Video("video/quicktime", "mov")));
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01"), None);
        assert_eq!(sniff(b"MZ\x90\0"), None);
        assert_eq!(sniff(b""), None);
    }
}
