//! Avatars: an uploaded image made into a 400x400 square. The upload goes
//! through the media pipeline's pieces (staged to a temporary file, type
//! decided by its bytes, the image size limit, the pixel limit, the
//! MediaStore), then is decoded, center-cropped, scaled and re-encoded, so
//! nothing of the original file (EXIF, GPS, text chunks) is kept.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};

use crate::domain::IdGenerator;
use crate::error::{Error, Result};
use crate::services::media::{MediaPipeline, Sniffed, decode_upright};

/// The side of a stored avatar, in pixels.
pub const AVATAR_EDGE: u32 = 400;

/// An avatar as stored: its encoded bytes and type.
struct AvatarImage {
    bytes: Vec<u8>,
    content_type: &'static str,
    extension: &'static str,
}

fn internal(e: impl Into<anyhow::Error>) -> Error {
    Error::Internal(e.into())
}

/// Decodes the image under the pixel limit (checked from the header before
/// any pixel is allocated), upright, then crops its center square and
/// scales it to `AVATAR_EDGE`. Transparent images stay PNG; others become JPEG.
fn make_avatar(path: &Path, format: ImageFormat, max_pixels: u64) -> Result<AvatarImage> {
    let (picture, _) = decode_upright(path, format, max_pixels)?;
    let side = picture.width().min(picture.height());
    let square = picture.crop_imm((picture.width() - side) / 2, (picture.height() - side) / 2, side, side).resize_exact(
        AVATAR_EDGE,
        AVATAR_EDGE,
        FilterType::Lanczos3,
    );
    let mut out = Cursor::new(Vec::new());
    if square.color().has_alpha() {
        DynamicImage::ImageRgba8(square.to_rgba8()).write_to(&mut out, ImageFormat::Png).map_err(internal)?;
        Ok(AvatarImage { bytes: out.into_inner(), content_type: "image/png", extension: "png" })
    } else {
        let rgb = DynamicImage::ImageRgb8(square.to_rgb8());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&rgb).map_err(internal)?;
        Ok(AvatarImage { bytes: out.into_inner(), content_type: "image/jpeg", extension: "jpg" })
    }
}

pub struct Avatars {
    media: Arc<MediaPipeline>,
    ids: Arc<IdGenerator>,
}

impl Avatars {
    pub fn new(media: Arc<MediaPipeline>, ids: Arc<IdGenerator>) -> Self {
        Self { media, ids }
    }

    /// Streams an upload to a temporary file, checks and converts it, and
    /// stores the avatar under a new key, which it returns. Reading stops as
    /// soon as the upload is larger than an image may be (413).
    pub async fn store<E: std::fmt::Display>(
        &self,
        body: impl Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> Result<String> {
        let limits = *self.media.limits();
        let over = Arc::new(AtomicBool::new(false));
        let mut seen = 0u64;
        let flag = over.clone();
        let limited = Box::pin(body.take_while(move |chunk| {
            if let Ok(bytes) = chunk {
                seen += bytes.len() as u64;
            }
            let within = seen <= limits.image_max_bytes;
            if !within {
                flag.store(true, Ordering::Relaxed);
            }
            futures::future::ready(within)
        }));
        let staged = self.media.stage(limited).await?;
        if over.load(Ordering::Relaxed) || staged.size() > limits.image_max_bytes {
            return Err(Error::PayloadTooLarge(format!("an image may be at most {} MiB", limits.image_max_bytes >> 20)));
        }

        let format = match staged.sniffed() {
            Sniffed::Image(format) => format,
            Sniffed::Video(..) => {
                return Err(Error::UnsupportedMediaType("an avatar must be an image, not a video".into()));
            }
        };
        let path = staged.path().to_owned();
        // Through the pipeline's decode slots: avatars count against the same bound as tweet images.
        let max_pixels = limits.max_pixels;
        let avatar = self.media.decode(move || make_avatar(&path, format, max_pixels)).await?;
        drop(staged);
        let key = format!("{}-avatar.{}", self.ids.next_id(), avatar.extension);
        self.media.put_bytes(&key, &avatar.bytes, avatar.content_type).await?;
        Ok(key)
    }

    /// Removes a stored avatar; failures are logged (an orphaned file costs
    /// space, not correctness).
    pub async fn remove(&self, key: &str) {
        if let Err(e) = self.media.store().delete(key).await {
            tracing::warn!(key, error = %e, "could not remove an avatar");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        file
    }

    #[test]
    fn avatars_are_the_center_square_scaled_to_400() {
        // Left third red, middle third green, right third blue: the middle survives the crop.
        let wide = image::RgbImage::from_fn(900, 300, |x, _| match x / 300 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        let mut png = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(wide).write_to(&mut png, ImageFormat::Png).unwrap();
        let file = file_with(png.get_ref());

        let avatar = make_avatar(file.path(), ImageFormat::Png, 50_000_000).unwrap();
        assert_eq!(avatar.content_type, "image/jpeg");
        let decoded = image::load_from_memory(&avatar.bytes).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (AVATAR_EDGE, AVATAR_EDGE));
        for (x, y) in [(5, 5), (200, 200), (394, 394)] {
            let [r, g, b] = decoded.get_pixel(x, y).0;
            assert!(g > 200 && r < 60 && b < 60, "green at {x},{y}: {r},{g},{b}");
        }
    }

    #[test]
    fn images_over_the_pixel_limit_are_refused_before_decoding() {
        let mut png = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image::RgbImage::new(200, 100)).write_to(&mut png, ImageFormat::Png).unwrap();
        let file = file_with(png.get_ref());
        assert!(matches!(make_avatar(file.path(), ImageFormat::Png, 10_000), Err(Error::Unprocessable("invalid_media", _))));
    }
}
