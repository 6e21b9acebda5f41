//! GIF and WebP, animated or not. They keep their own format and every frame
//! with its timing: the file is rewritten block by block with only the
//! blocks that make the picture (no comments, XMP, EXIF or unknown
//! extensions), so nothing is re-encoded. The walk counts frames before any
//! is decompressed, which refuses a bomb made of frames at once; the frames
//! are then decoded (under the same bounds) to check them and to make the
//! thumbnail. The looping MP4 rendition (where ffmpeg is present) decodes
//! them again, after the tweet is answered: see `renditions.rs`.

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, Limits};

use super::still::Thumbnail;
use super::{internal, invalid};
use crate::error::Result;

/// How much an animation may cost to decode.
#[derive(Clone, Copy, Debug)]
pub struct AnimationBounds {
    /// Pixels of the canvas.
    pub max_pixels: u64,
    pub max_frames: u32,
    /// Canvas pixels times frames: what decoding every frame costs.
    pub max_total_pixels: u64,
}

/// What the block walk found: the canvas, each frame's delay, and the file without its metadata.
#[derive(Debug)]
pub struct Structure {
    pub width: u32,
    pub height: u32,
    /// Each frame's delay as stored, in milliseconds.
    pub delays_ms: Vec<u32>,
    pub stripped: Vec<u8>,
}

impl Structure {
    pub fn frames(&self) -> usize {
        self.delays_ms.len()
    }

    fn check(&self, bounds: &AnimationBounds) -> Result<()> {
        let canvas = u64::from(self.width) * u64::from(self.height);
        if canvas == 0 || canvas > bounds.max_pixels {
            return Err(invalid(format!(
                "the image is {}x{} pixels; at most {} pixels are accepted",
                self.width, self.height, bounds.max_pixels
            )));
        }
        let frames = self.frames() as u64;
        if frames > u64::from(bounds.max_frames) {
            return Err(invalid(format!("the animation has more than {} frames", bounds.max_frames)));
        }
        if frames * canvas > bounds.max_total_pixels {
            return Err(invalid(format!(
                "the animation has {frames} frames of {}x{} pixels; at most {} pixels in all are accepted",
                self.width, self.height, bounds.max_total_pixels
            )));
        }
        Ok(())
    }

    /// Delays as a browser plays them: 0 and 10 ms are shown as 100 ms.
    pub fn played_delays_ms(&self) -> impl Iterator<Item = u32> + '_ {
        self.delays_ms.iter().map(|&d| if d <= 10 { 100 } else { d })
    }

    pub fn duration_ms(&self) -> u64 {
        self.played_delays_ms().map(u64::from).sum()
    }
}

fn truncated() -> crate::error::Error {
    invalid("the image is truncated or malformed")
}

/// Walks a GIF's blocks, keeping the header, colour tables, graphic control
/// extensions (delays, transparency), the looping extension and the frames.
pub fn gif_structure(gif: &[u8], bounds: &AnimationBounds) -> Result<Structure> {
    let byte = |i: usize| gif.get(i).copied().ok_or_else(truncated);
    if gif.len() < 13 || !(gif.starts_with(b"GIF87a") || gif.starts_with(b"GIF89a")) {
        return Err(truncated());
    }
    let width = u32::from(u16::from_le_bytes([gif[6], gif[7]]));
    let height = u32::from(u16::from_le_bytes([gif[8], gif[9]]));
    let packed = gif[10];
    let mut at = 13 + if packed & 0x80 != 0 { 3 << ((packed & 7) + 1) } else { 0 };
    let mut out = gif.get(..at).ok_or_else(truncated)?.to_vec();
    let mut structure = Structure { width, height, delays_ms: Vec::new(), stripped: Vec::new() };
    let mut pending_delay = 0u32;
    // The end of the data sub-blocks starting at `from`.
    let sub_blocks_end = |mut from: usize| -> Result<usize> {
        loop {
            let len = usize::from(*gif.get(from).ok_or_else(truncated)?);
            from += 1 + len;
            if len == 0 {
                return Ok(from);
            }
        }
    };
    loop {
        match byte(at)? {
            0x2C => {
                let packed = byte(at + 9)?;
                let table = if packed & 0x80 != 0 { 3 << ((packed & 7) + 1) } else { 0 };
                let data = at + 10 + table + 1; // after the LZW minimum code size
                let end = sub_blocks_end(data)?;
                out.extend_from_slice(gif.get(at..end).ok_or_else(truncated)?);
                structure.delays_ms.push(pending_delay);
                pending_delay = 0;
                // Checked as frames are counted, so a million-frame file stops here early.
                structure.check(bounds)?;
                at = end;
            }
            0x21 => {
                let label = byte(at + 1)?;
                let end = sub_blocks_end(at + 2)?;
                let block = gif.get(at..end).ok_or_else(truncated)?;
                let keep = match label {
                    0xF9 => {
                        pending_delay = u32::from(u16::from_le_bytes([byte(at + 4)?, byte(at + 5)?])) * 10;
                        true
                    }
                    // The looping extension; every other application extension (XMP, ICC, vendors') goes.
                    0xFF => block.get(2..14).is_some_and(|b| b == b"\x0BNETSCAPE2.0" || b == b"\x0BANIMEXTS1.0"),
                    _ => false, // comments, plain text, unknown
                };
                if keep {
                    out.extend_from_slice(block);
                }
                at = end;
            }
            0x3B => {
                out.push(0x3B);
                break;
            }
            _ => return Err(truncated()),
        }
    }
    if structure.frames() == 0 {
        return Err(invalid("the image has no frames"));
    }
    structure.stripped = out;
    Ok(structure)
}

fn u24(b: &[u8]) -> u32 {
    u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16
}

/// Walks a WebP's RIFF chunks, keeping those that make the picture (frames,
/// alpha, animation parameters, the colour profile) and dropping EXIF, XMP
/// and unknown chunks.
pub fn webp_structure(webp: &[u8], bounds: &AnimationBounds) -> Result<Structure> {
    if webp.len() < 20 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return Err(truncated());
    }
    let riff_end = (8 + u32::from_le_bytes([webp[4], webp[5], webp[6], webp[7]]) as usize).min(webp.len());
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 8 <= riff_end {
        let fourcc: [u8; 4] = webp[at..at + 4].try_into().expect("four bytes");
        let len = u32::from_le_bytes(webp[at + 4..at + 8].try_into().expect("four bytes")) as usize;
        let end = at + 8 + len;
        let payload = webp.get(at + 8..end).ok_or_else(truncated)?;
        chunks.push((fourcc, payload));
        at = end + (len & 1);
    }
    let mut structure = Structure { width: 0, height: 0, delays_ms: Vec::new(), stripped: Vec::new() };
    let mut body = Vec::new();
    match chunks.first().map(|(fourcc, payload)| (fourcc, *payload)) {
        Some((b"VP8X", payload)) => {
            let header = payload.get(..10).ok_or_else(truncated)?;
            structure.width = u24(&header[4..7]) + 1;
            structure.height = u24(&header[7..10]) + 1;
            let animated = header[0] & 0x02 != 0;
            for (fourcc, payload) in &chunks {
                let payload: &[u8] = payload;
                let mut payload = payload.to_vec();
                match fourcc {
                    b"VP8X" => payload[0] &= !(0x08 | 0x04), // no EXIF, no XMP any more
                    b"ANMF" => {
                        let frame = payload.get(..16).ok_or_else(truncated)?;
                        structure.delays_ms.push(u24(&frame[12..15]));
                        structure.check(bounds)?;
                    }
                    b"VP8 " | b"VP8L" if !animated => {
                        structure.delays_ms.push(0);
                    }
                    b"ICCP" | b"ANIM" | b"ALPH" | b"VP8 " | b"VP8L" => {}
                    _ => continue,
                }
                push_chunk(&mut body, fourcc, &payload);
            }
        }
        Some((fourcc @ (b"VP8 " | b"VP8L"), payload)) => {
            // The simple format holds one picture and nothing else; its size comes from the decoder.
            let (w, h) = image::codecs::webp::WebPDecoder::new(Cursor::new(webp))
                .map_err(|e| invalid(format!("the image could not be read: {e}")))?
                .dimensions();
            (structure.width, structure.height) = (w, h);
            structure.delays_ms.push(0);
            push_chunk(&mut body, fourcc, payload);
        }
        _ => return Err(truncated()),
    }
    structure.check(bounds)?;
    if structure.frames() == 0 {
        return Err(invalid("the image has no frames"));
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + body.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    structure.stripped = out;
    Ok(structure)
}

fn push_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() & 1 == 1 {
        out.push(0);
    }
}

/// A GIF or WebP made fit to serve.
pub struct CleanAnimation {
    pub structure: Structure,
    pub content_type: &'static str,
    pub extension: &'static str,
    pub thumbnail: Thumbnail,
}

impl CleanAnimation {
    /// Whether it has more than one frame (and so deserves a looping MP4).
    pub fn moves(&self) -> bool {
        self.structure.frames() > 1
    }
}

fn structure_of(bytes: &[u8], format: ImageFormat, bounds: &AnimationBounds) -> Result<(Structure, &'static str, &'static str)> {
    match format {
        ImageFormat::Gif => Ok((gif_structure(bytes, bounds)?, "image/gif", "gif")),
        ImageFormat::WebP => Ok((webp_structure(bytes, bounds)?, "image/webp", "webp")),
        _ => Err(internal(anyhow::anyhow!("{format:?} is not an animation format"))),
    }
}

/// Decodes every frame of the stripped file (under `bounds`, as the walk
/// measured it), handing each to `on_frame` with its index.
fn decode_frames(
    structure: &Structure,
    format: ImageFormat,
    bounds: &AnimationBounds,
    on_frame: &mut dyn FnMut(image::RgbaImage, usize),
) -> Result<()> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(structure.width);
    limits.max_image_height = Some(structure.height);
    limits.max_alloc = Some(bounds.max_pixels * 8 + (64 << 20));
    let undecodable = |e: image::ImageError| invalid(format!("the image could not be decoded: {e}"));
    let reader = Cursor::new(&structure.stripped[..]);
    let mut decoded = 0usize;
    let mut counted = |frame: image::RgbaImage, index: usize| {
        decoded += 1;
        on_frame(frame, index);
    };
    match format {
        ImageFormat::Gif => {
            let mut decoder = image::codecs::gif::GifDecoder::new(reader).map_err(undecodable)?;
            decoder.set_limits(limits).map_err(undecodable)?;
            each_frame(decoder.into_frames(), &mut counted)?;
        }
        _ => {
            let mut decoder = image::codecs::webp::WebPDecoder::new(reader).map_err(undecodable)?;
            decoder.set_limits(limits).map_err(undecodable)?;
            if decoder.has_animation() {
                each_frame(decoder.into_frames(), &mut counted)?;
            } else {
                let picture = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
                counted(picture.to_rgba8(), 0);
            }
        }
    }
    if decoded != structure.frames() {
        return Err(invalid(format!("the image has {} frames but {decoded} could be decoded", structure.frames())));
    }
    Ok(())
}

/// Checks a GIF or WebP from its bytes: walks and strips it, decodes every
/// frame (so a broken one is refused now) and makes the thumbnail. The MP4
/// of a moving one is `render_mp4`'s, later.
pub fn clean_animation(bytes: &[u8], format: ImageFormat, bounds: &AnimationBounds) -> Result<CleanAnimation> {
    let (structure, content_type, extension) = structure_of(bytes, format, bounds)?;
    let mut first: Option<DynamicImage> = None;
    decode_frames(&structure, format, bounds, &mut |frame, _| {
        if first.is_none() {
            first = Some(DynamicImage::ImageRgba8(frame));
        }
    })?;
    let first = first.ok_or_else(|| invalid("the image has no frames"))?;
    let thumbnail = Thumbnail::of(&first)?;
    Ok(CleanAnimation { structure, content_type, extension, thumbnail })
}

/// Renders an animation (as `clean_animation` stored it) into a looping
/// H.264 MP4 in `tmp`: every frame decoded again and piped raw into ffmpeg.
pub fn render_mp4(
    stripped: &[u8],
    format: ImageFormat,
    bounds: &AnimationBounds,
    ffmpeg: &Path,
    tmp: &Path,
) -> anyhow::Result<tempfile::NamedTempFile> {
    let (structure, _, _) = structure_of(stripped, format, bounds).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut render = Rendition::start(ffmpeg, &structure, tmp)?;
    let mut piped = Ok(());
    decode_frames(&structure, format, bounds, &mut |frame, index| {
        if piped.is_ok() {
            piped = render.push(&frame, index);
        }
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    piped.map_err(|e| anyhow::Error::new(e).context("ffmpeg stopped reading frames"))?;
    render.finish()
}

fn each_frame(frames: image::Frames<'_>, on_frame: &mut dyn FnMut(image::RgbaImage, usize)) -> Result<()> {
    for (index, frame) in frames.enumerate() {
        let frame = frame.map_err(|e| invalid(format!("the image could not be decoded: {e}")))?;
        on_frame(frame.into_buffer(), index);
    }
    Ok(())
}

/// An ffmpeg process turning raw frames into a looping H.264 MP4. Frames
/// arrive at a constant rate (the greatest common step of the delays, at
/// most 50 per second), each repeated for as long as it shows.
struct Rendition {
    child: std::process::Child,
    out: Option<tempfile::NamedTempFile>,
    repeats: Vec<u32>,
}

impl Rendition {
    fn start(ffmpeg: &Path, structure: &Structure, tmp: &Path) -> anyhow::Result<Self> {
        let delays: Vec<u32> = structure.played_delays_ms().collect();
        let gcd = |mut a: u32, mut b: u32| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let step = delays.iter().copied().fold(0, gcd).max(20);
        let repeats: Vec<u32> = delays.iter().map(|d| ((d + step / 2) / step).max(1)).collect();
        let out = tempfile::Builder::new().suffix(".mp4").tempfile_in(tmp)?;
        let child = Command::new(ffmpeg)
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s"])
            .arg(format!("{}x{}", structure.width, structure.height))
            .args(["-framerate", &format!("1000/{step}"), "-i", "pipe:0"])
            // H.264 in 4:2:0 needs even sides; transparent pixels become black.
            .args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2,format=yuv420p", "-c:v", "libx264", "-preset", "veryfast"])
            .args(["-crf", "23", "-movflags", "+faststart", "-map_metadata", "-1", "-an", "-f", "mp4", "-y"])
            .arg(out.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::Error::new(e).context("starting ffmpeg for an MP4 rendition"))?;
        Ok(Self { child, out: Some(out), repeats })
    }

    fn push(&mut self, frame: &image::RgbaImage, index: usize) -> std::io::Result<()> {
        let stdin = self.child.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        for _ in 0..self.repeats.get(index).copied().unwrap_or(1) {
            stdin.write_all(frame.as_raw())?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<tempfile::NamedTempFile> {
        drop(self.child.stdin.take());
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "ffmpeg could not render the MP4 ({status})");
        self.out.take().ok_or_else(|| anyhow::anyhow!("the rendition was taken already"))
    }
}

impl Drop for Rendition {
    fn drop(&mut self) {
        // A rendition abandoned half-way (the image was refused) must not leave ffmpeg running.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: AnimationBounds = AnimationBounds { max_pixels: 1 << 20, max_frames: 100, max_total_pixels: 1 << 22 };

    fn gif_of(frames: u16, comment: bool) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = gif::Encoder::new(&mut out, 4, 4, &[0, 0, 0, 255, 255, 255]).unwrap();
            encoder.set_repeat(gif::Repeat::Infinite).unwrap();
            for i in 0..frames {
                let mut frame = gif::Frame::from_indexed_pixels(4, 4, vec![(i % 2) as u8; 16], None);
                frame.delay = 7 + i;
                encoder.write_frame(&frame).unwrap();
            }
        }
        if comment {
            let at = out.len() - 1;
            out.splice(at..at, b"\x21\xFE\x0BSECRET-GPS!\x00".iter().copied());
        }
        out
    }

    #[test]
    fn a_gif_keeps_its_frames_and_delays_and_loses_its_comments() {
        let s = gif_structure(&gif_of(3, true), &BOUNDS).unwrap();
        assert_eq!(s.delays_ms, vec![70, 80, 90]);
        assert_eq!((s.width, s.height), (4, 4));
        assert!(!s.stripped.windows(6).any(|w| w == b"SECRET"));
        assert_eq!(s.stripped, gif_of(3, false), "exactly the original without the comment");
    }

    #[test]
    fn too_many_frames_are_refused_before_decoding() {
        assert!(gif_structure(&gif_of(101, false), &BOUNDS).is_err());
        let tight = AnimationBounds { max_total_pixels: 16 * 5, ..BOUNDS };
        assert!(gif_structure(&gif_of(6, false), &tight).is_err());
        let mut cut = gif_of(3, false);
        cut.truncate(cut.len() - 5);
        assert!(gif_structure(&cut, &BOUNDS).is_err(), "truncated");
    }
}
