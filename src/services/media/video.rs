//! Videos: the container is parsed in-process (Mozilla's mp4parse for MP4
//! and QuickTime, matroska-demuxer for WebM), so a file that only starts
//! like a video is refused and its size and duration are known without any
//! external tool. ffmpeg then copies the streams into a fresh container
//! without metadata (no GPS, device or creation tags; no re-encoding) and,
//! in the same run, takes a poster frame from early in the video.

use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

use super::sniff::VideoContainer;
use super::{internal, invalid};
use crate::error::Result;

/// What the container says of the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    pub duration_ms: Option<u64>,
}

fn unreadable(e: impl std::fmt::Display) -> crate::error::Error {
    invalid(format!("the video could not be read: {e}"))
}

/// Parses the container; refuses a file with no video track or no picture size.
pub fn probe(path: &Path, container: VideoContainer) -> Result<VideoInfo> {
    let mut file = BufReader::new(std::fs::File::open(path).map_err(internal)?);
    match container {
        VideoContainer::Mp4 | VideoContainer::QuickTime => {
            let context = mp4parse::read_mp4(&mut file).map_err(|e| unreadable(format!("{e:?}")))?;
            let track = context
                .tracks
                .iter()
                .find(|t| t.track_type == mp4parse::TrackType::Video)
                .ok_or_else(|| invalid("the file has no video track"))?;
            let entry = track.stsd.as_ref().and_then(|stsd| {
                stsd.descriptions.iter().find_map(|d| match d {
                    mp4parse::SampleEntry::Video(v) => Some((u32::from(v.width), u32::from(v.height))),
                    _ => None,
                })
            });
            // The track header holds the display size in 16.16 fixed point.
            let header = track.tkhd.as_ref().map(|t| (t.width >> 16, t.height >> 16));
            let (width, height) =
                entry.or(header).filter(|(w, h)| *w > 0 && *h > 0).ok_or_else(|| invalid("the video has no picture size"))?;
            let duration_ms = match (track.duration, track.timescale) {
                (Some(d), Some(scale)) if scale.0 > 0 => Some(d.0.saturating_mul(1000) / scale.0),
                _ => None,
            };
            Ok(VideoInfo { width, height, duration_ms })
        }
        VideoContainer::WebM => {
            let mut mkv = matroska_demuxer::MatroskaFile::open(file).map_err(unreadable)?;
            let (number, width, height) = mkv
                .tracks()
                .iter()
                .find_map(|t| {
                    let v = t.video()?;
                    Some((t.track_number().get(), v.pixel_width().get(), v.pixel_height().get()))
                })
                .ok_or_else(|| invalid("the file has no video track"))?;
            let info = mkv.info();
            let duration_ms =
                info.duration().map(|d| (d * info.timestamp_scale().get() as f64 / 1_000_000.0).round().max(0.0) as u64);
            // The first block of the picture must be there: a header alone is not a video.
            let mut frame = matroska_demuxer::Frame::default();
            let mut found = false;
            while mkv.next_frame(&mut frame).map_err(unreadable)? {
                if frame.track == number {
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(invalid("the video has no frames"));
            }
            let size = |n: u64| u32::try_from(n).map_err(|_| invalid("the video's picture size is out of range"));
            Ok(VideoInfo { width: size(width)?, height: size(height)?, duration_ms })
        }
    }
}

async fn run(command: &mut tokio::process::Command, what: &str) -> Result<()> {
    let run = command.kill_on_drop(true).stdin(std::process::Stdio::null()).output();
    match tokio::time::timeout(Duration::from_secs(60), run).await {
        Err(_) => Err(invalid(format!("the video could not be {what} in time"))),
        Ok(Err(e)) => Err(internal(anyhow::Error::new(e).context("running ffmpeg"))),
        Ok(Ok(output)) if output.status.success() => Ok(()),
        Ok(Ok(output)) => {
            tracing::info!(stderr = %String::from_utf8_lossy(&output.stderr).trim(), "ffmpeg refused a video");
            Err(invalid(format!("the video could not be {what}")))
        }
    }
}

/// Copies the first video stream and the audio into `out` with no metadata
/// at all: global, per stream, chapters, data and subtitle streams (where
/// GoPro-style GPS tracks live) are all left behind; the encoder's name is
/// not written either. The same run (one ffmpeg start, not two: starting
/// ffmpeg costs more than either job) writes the poster frame to `poster`,
/// as `poster` would; it may stay empty when the video is shorter than the
/// container said.
pub async fn strip_metadata(
    ffmpeg: &Path,
    input: &Path,
    out: &Path,
    container: VideoContainer,
    poster: &Path,
    duration_ms: Option<u64>,
) -> Result<()> {
    let mut command = tokio::process::Command::new(ffmpeg);
    command
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
        .arg(input)
        .args(["-map", "0:v:0", "-map", "0:a?", "-c", "copy", "-dn", "-sn"])
        .args(["-map_metadata", "-1", "-map_metadata:s:v", "-1", "-map_metadata:s:a", "-1", "-map_chapters", "-1"])
        .args(["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]);
    match container {
        VideoContainer::WebM => command.args(["-f", "webm"]),
        VideoContainer::Mp4 => command.args(["-movflags", "+faststart", "-f", "mp4"]),
        VideoContainer::QuickTime => command.args(["-movflags", "+faststart", "-f", "mov"]),
    };
    command.arg("-y").arg(out);
    command
        .args(["-map", "0:v:0", "-ss", &seconds(poster_at_ms(duration_ms))])
        .args(POSTER_OUTPUT)
        .args(["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-y"])
        .arg(poster);
    run(&mut command, "copied").await
}

/// A poster's time: a tenth of the way in, at most one second (the very
/// first frame is often black).
fn poster_at_ms(duration_ms: Option<u64>) -> u64 {
    duration_ms.map_or(0, |d| (d / 10).min(1000))
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// One JPEG frame, at most 1280 pixels wide.
const POSTER_OUTPUT: [&str; 8] = ["-frames:v", "1", "-vf", "scale='min(1280,iw)':-2", "-q:v", "3", "-f", "image2"];

/// The first frame as the poster: for a video shorter than its container
/// said, where `strip_metadata` found nothing at the poster's time.
pub async fn first_frame_poster(ffmpeg: &Path, input: &Path, out: &Path) -> Result<()> {
    let mut command = tokio::process::Command::new(ffmpeg);
    command.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"]).arg(input).args(POSTER_OUTPUT).arg("-y").arg(out);
    run(&mut command, "read for a poster").await
}

/// Whether `ffmpeg` runs: looked for once at start-up.
pub fn ffmpeg_works(ffmpeg: &Path) -> bool {
    std::process::Command::new(ffmpeg)
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
