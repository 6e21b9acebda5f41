//! Still images: decoded under a pixel limit to check them, then stored
//! without their metadata (a JPEG losslessly, segment by segment; anything
//! else re-encoded), with a JPEG thumbnail and a BlurHash.

use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use super::{internal, invalid};
use crate::error::Result;

pub const THUMBNAIL_EDGE: u32 = 400;

/// An image made fit to store: without metadata, with its size, thumbnail and placeholder.
pub struct CleanImage {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub extension: &'static str,
    pub width: u32,
    pub height: u32,
    pub thumbnail: Thumbnail,
}

/// A JPEG preview of a picture, at most `THUMBNAIL_EDGE` on its longer side, and its BlurHash.
pub struct Thumbnail {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub blurhash: Option<String>,
}

impl Thumbnail {
    pub fn of(picture: &DynamicImage) -> Result<Self> {
        let small = DynamicImage::ImageRgb8(picture.thumbnail(THUMBNAIL_EDGE, THUMBNAIL_EDGE).to_rgb8());
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&small).map_err(internal)?;
        Ok(Self { jpeg, width: small.width(), height: small.height(), blurhash: blurhash_of(&small) })
    }
}

/// A BlurHash (4x3 components, the usual choice) computed on a tiny copy:
/// the hash only keeps the broad colours, so 32 pixels are plenty.
pub fn blurhash_of(picture: &DynamicImage) -> Option<String> {
    let tiny = picture.thumbnail(32, 32).to_rgba8();
    blurhash::encode(4, 3, tiny.width(), tiny.height(), tiny.as_raw()).ok()
}

/// Whether the file ends the way its format ends. Decoders are lenient with
/// truncated JPEGs (they fill in grey), so the end marker is checked here.
fn looks_complete(path: &Path, format: ImageFormat) -> Result<bool> {
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

/// Decodes a whole, still image under the pixel limit, upright: bombs are
/// refused from the header, before any pixel is allocated. Returns the
/// picture and the orientation that was applied, if any.
pub fn decode_upright(
    path: &Path,
    format: ImageFormat,
    max_pixels: u64,
) -> Result<(DynamicImage, Option<image::metadata::Orientation>)> {
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
    Ok((picture, orientation))
}

/// Checks a still image and makes it fit to serve.
pub fn clean_image(path: &Path, format: ImageFormat, max_pixels: u64) -> Result<CleanImage> {
    let (picture, orientation) = decode_upright(path, format, max_pixels)?;
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
    let thumbnail = Thumbnail::of(&picture)?;
    Ok(CleanImage { bytes, content_type, extension, width: picture.width(), height: picture.height(), thumbnail })
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
}
