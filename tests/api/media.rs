//! Tweets with images and video: the media pipeline and serving, end to end.

use std::io::Cursor;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem};

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    chunk
}

fn encode(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 128])));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A PNG with a text chunk that must not survive.
fn png_with_text(w: u32, h: u32) -> Vec<u8> {
    let png = encode(image::ImageFormat::Png, w, h);
    let ihdr_end = 8 + 4 + 4 + 13 + 4;
    let mut out = png[..ihdr_end].to_vec();
    out.extend(png_chunk(b"tEXt", b"Comment\0SECRET-PNG-TEXT at 41.3111,69.2797"));
    out.extend_from_slice(&png[ihdr_end..]);
    out
}

/// A JPEG with an EXIF segment that must not survive.
fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
    let jpeg = encode(image::ImageFormat::Jpeg, w, h);
    let payload = b"Exif\0\0SECRET-EXIF-GPS 41.3111N 69.2797E";
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PNG whose header claims 60000 x 60000 pixels (a decompression bomb).
fn png_bomb() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = 60_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    out.extend(png_chunk(b"IEND", b""));
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl TestApp {
    async fn post_form(&self, token: &str, form: Form) -> reqwest::Response {
        self.client.post(self.url("/api/v1/tweet")).bearer_auth(token).multipart(form).send().await.unwrap()
    }

    fn temp_files(&self) -> usize {
        std::fs::read_dir(self.config.data_dir.join("tmp")).map(|d| d.count()).unwrap_or(0)
    }
}

fn file(bytes: Vec<u8>, name: &str, mime: &str) -> Part {
    Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime).unwrap()
}

#[tokio::test]
async fn images_are_stored_without_metadata_and_served_with_caching_headers() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("painter").await;
    let form = Form::new()
        .text("content", "two pictures")
        .part("media", file(png_with_text(64, 48), "a.png", "image/png"))
        .part("media", file(jpeg_with_exif(640, 480), "b.jpg", "image/jpeg"));
    let r = app.post_form(&token, form).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    let media = tweet["media"].as_array().unwrap();
    assert_eq!(media.len(), 2);
    assert_eq!((media[0]["kind"].as_str(), media[0]["content_type"].as_str()), (Some("image"), Some("image/png")));
    assert_eq!((media[0]["width"].as_i64(), media[0]["height"].as_i64()), (Some(64), Some(48)));
    assert_eq!(media[1]["content_type"], "image/jpeg");
    assert_eq!((media[1]["width"].as_i64(), media[1]["height"].as_i64()), (Some(640), Some(480)));

    for m in media {
        let url = app.url(m["url"].as_str().unwrap());
        let r = app.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], m["content_type"].as_str().unwrap());
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(r.headers()["cache-control"].to_str().unwrap().contains("max-age=31536000"));
        let etag = r.headers()["etag"].clone();
        let body = r.bytes().await.unwrap();
        assert_eq!(body.len() as i64, m["size_bytes"].as_i64().unwrap());
        assert!(!contains(&body, b"SECRET"), "metadata stripped from {url}");
        let again = app.client.get(&url).header("if-none-match", etag).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let thumb = app.client.get(app.url(m["thumbnail_url"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(thumb.headers()["content-type"], "image/jpeg");
        let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
        assert!(thumb.width() <= 400 && thumb.height() <= 400);
    }

    // Two images and their thumbnails are stored; deleting the tweet deletes them.
    let stored = app.stored_media().await;
    assert_eq!(stored.iter().filter(|f| !f.starts_with('.')).count(), 4, "{stored:?}");
    let id = tweet["id"].as_str().unwrap();
    app.client.delete(app.url(&format!("/api/v1/tweet/{id}"))).bearer_auth(&token).send().await.unwrap();
    let gone = app.client.get(app.url(media[0]["url"].as_str().unwrap())).send().await.unwrap();
    assert_problem(gone, 404, "not_found").await;
    let stored = app.stored_media().await;
    assert!(stored.iter().all(|f| f.starts_with('.')), "{stored:?}");
}

#[tokio::test]
async fn an_image_alone_is_a_tweet() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("quiet").await;
    let r = app
        .post_form(
            &token,
            Form::new().part("media", file(encode(image::ImageFormat::Gif, 10, 10), "x", "application/octet-stream")),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    assert_eq!(tweet["content"], "");
    assert_eq!(tweet["media"][0]["kind"], "image");
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing_behind() {
    let app = TestApp::spawn_with(|c| {
        c.media_max_image_bytes = 1 << 20;
        c.media_max_video_bytes = 2 << 20;
    })
    .await;
    let (_, token) = app.sign_up("mallory").await;
    let png = || file(encode(image::ImageFormat::Png, 8, 8), "ok.png", "image/png");

    let exe = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0binary".to_vec();
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(exe, "cat.png", "image/png"))).await,
        415,
        "unsupported_media_type",
    )
    .await;
    let mz = b"MZ\x90\0\x03\0\0\0".to_vec();
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(mz, "cat.jpg", "image/jpeg"))).await,
        415,
        "unsupported_media_type",
    )
    .await;

    let mut truncated = encode(image::ImageFormat::Jpeg, 300, 300);
    truncated.truncate(truncated.len() / 3);
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(truncated, "t.jpg", "image/jpeg"))).await,
        422,
        "invalid_media",
    )
    .await;
    let mut corrupt = encode(image::ImageFormat::Png, 50, 50);
    let n = corrupt.len();
    corrupt[40..n - 20].iter_mut().for_each(|b| *b ^= 0x5A);
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(corrupt, "c.png", "image/png"))).await,
        422,
        "invalid_media",
    )
    .await;

    let started = std::time::Instant::now();
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(png_bomb(), "bomb.png", "image/png"))).await,
        422,
        "invalid_media",
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused from its header");

    let mut big = vec![0xFF, 0xD8, 0xFF, 0xE0];
    big.resize(3 << 20, 7);
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(big, "big.jpg", "image/jpeg"))).await,
        413,
        "payload_too_large",
    )
    .await;
    let mut big_image = vec![0xFF, 0xD8, 0xFF, 0xE0];
    big_image.resize((1 << 20) + 10, 7);
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(big_image, "b.jpg", "image/jpeg"))).await,
        413,
        "payload_too_large",
    )
    .await;

    let five = (0..5).fold(Form::new(), |f, _| f.part("media", png()));
    let body = assert_problem(app.post_form(&token, five).await, 422, "validation_failed").await;
    assert!(body["errors"]["media"].is_array());
    let video_field_with_image = Form::new().part("video", png());
    assert_problem(app.post_form(&token, video_field_with_image).await, 415, "unsupported_media_type").await;
    let extra = Form::new().text("content", "hi").text("location", "secret base");
    let body = assert_problem(app.post_form(&token, extra).await, 422, "validation_failed").await;
    assert!(body["errors"]["location"].is_array());
    let long = Form::new().text("content", "я".repeat(281)).part("media", png());
    assert_problem(app.post_form(&token, long).await, 422, "validation_failed").await;
    let r = app
        .client
        .post(app.url("/api/v1/tweet"))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data")
        .body("--x\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nhi\r\n--x--\r\n")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed_multipart").await;
    let r = app
        .client
        .post(app.url("/api/v1/tweet"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "unsupported_media_type").await;

    let stored = app.stored_media().await;
    assert!(stored.iter().all(|f| f.starts_with('.')), "no orphan media: {stored:?}");
    assert_eq!(app.temp_files(), 0, "no temp files");
    let (_, me) = app.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!(me["tweets_count"], 0);
}

#[tokio::test]
async fn media_urls_cannot_leave_the_media_store() {
    let app = TestApp::spawn().await;
    std::fs::write(app.config.data_dir.join("secret.txt"), "do not serve").unwrap();
    for path in [
        "/media/..%2Fsecret.txt",
        "/media/../secret.txt",
        "/media/%2e%2e/jwt.secret",
        "/media/jwt.secret",
        "/media/a/b.jpg",
        "/media/x",
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert!(r.status() == StatusCode::NOT_FOUND, "{path}: {}", r.status());
    }
}

/// The configured MediaStore itself (directory, or S3 when the tests run
/// against one): a 20 MiB object goes up in parts, and comes back whole and
/// in ranges; deleting twice is fine; odd keys name nothing.
#[tokio::test]
async fn the_media_store_round_trips_large_objects() {
    use chirp::ports::media_store::MediaStoreError;
    use futures::TryStreamExt;

    let app = TestApp::spawn().await;
    let store = chirp::app::Adapters::from_config(&app.config).await.unwrap().media_store;
    store.ping().await.expect("the store answers");
    let bytes: Vec<u8> = (0..20u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let staged = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(staged.path(), &bytes).unwrap();
    store.put_file("383000000000000.mp4", staged.path(), "video/mp4").await.unwrap();

    assert_eq!(store.size("383000000000000.mp4").await.unwrap(), bytes.len() as u64);
    let read = |range| {
        let store = store.clone();
        async move {
            let opened = store.open("383000000000000.mp4", range).await.unwrap();
            let parts: Vec<bytes::Bytes> = opened.stream.try_collect().await.unwrap();
            (opened.total, parts.concat())
        }
    };
    let (total, whole) = read(None).await;
    assert_eq!(total, bytes.len() as u64);
    assert!(whole == bytes, "the object reads back unchanged");
    let (total, part) = read(Some((9_000_000, 9_000_099))).await;
    assert_eq!((total, &part[..]), (bytes.len() as u64, &bytes[9_000_000..9_000_100]));

    store.delete("383000000000000.mp4").await.unwrap();
    store.delete("383000000000000.mp4").await.expect("deleting a missing object is not an error");
    assert!(matches!(store.size("383000000000000.mp4").await, Err(MediaStoreError::NotFound)));
    assert!(matches!(store.open("../jwt.secret", None).await, Err(MediaStoreError::NotFound)));
}

fn ffmpeg_available() -> bool {
    let found = std::process::Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but ffmpeg is not installed");
    }
    found
}

#[tokio::test]
async fn a_video_is_probed_and_served_in_ranges() {
    if !ffmpeg_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("director").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=320x240:rate=10", "-pix_fmt", "yuv420p"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&path).unwrap();

    let r = app
        .post_form(&token, Form::new().text("content", "a clip").part("media", file(bytes.clone(), "clip.png", "image/png")))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    let m = &tweet["media"][0];
    assert_eq!((m["kind"].as_str(), m["content_type"].as_str()), (Some("video"), Some("video/mp4")));
    assert_eq!((m["width"].as_i64(), m["height"].as_i64()), (Some(320), Some(240)));
    let duration = m["duration_ms"].as_i64().unwrap();
    assert!((900..=1100).contains(&duration), "{duration}");

    let url = app.url(m["url"].as_str().unwrap());
    // What is served is the video copied without its metadata, so ranges are of that copy.
    let (_, served) = fetch(&app, &m["url"]).await;
    let r = app.client.get(&url).header("range", "bytes=10-99").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], format!("bytes 10-99/{}", served.len()).as_str());
    assert_eq!(r.bytes().await.unwrap(), &served[10..100]);
    let r = app.client.get(&url).header("range", format!("bytes={}-", served.len() + 5)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let with_image = Form::new()
        .part("media", file(bytes, "v.mp4", "video/mp4"))
        .part("media", file(encode(image::ImageFormat::Png, 4, 4), "p.png", "image/png"));
    assert_problem(app.post_form(&token, with_image).await, 422, "validation_failed").await;
    assert_eq!(app.temp_files(), 0);
}

async fn fetch(app: &TestApp, url: &Value) -> (String, bytes::Bytes) {
    let r = app.client.get(app.url(url.as_str().expect("a url"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, r.bytes().await.unwrap())
}

/// A gifv's MP4, once its rendition is written: until then its URL answers
/// 503 `rendition_pending` with `Retry-After`, and is not to be cached.
async fn until_served(app: &TestApp, url: &Value) -> bytes::Bytes {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = app.client.get(app.url(url.as_str().expect("a url"))).send().await.unwrap();
        if r.status() == StatusCode::OK {
            assert_eq!(r.headers()["content-type"], "video/mp4");
            return r.bytes().await.unwrap();
        }
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_problem(r, 503, "rendition_pending").await;
        assert!(std::time::Instant::now() < deadline, "the MP4 at {url} was not made within a minute");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An `ffmpeg` that holds every MP4 rendition (raw frames on its input)
/// until the file `gate` exists, creating `held` when it starts to wait;
/// everything else runs at once. It gives up when its parent dies.
struct GatedFfmpeg {
    dir: tempfile::TempDir,
}

impl GatedFfmpeg {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (gate, held) = (dir.path().join("gate"), dir.path().join("held"));
        let script = format!(
            "#!/bin/sh\ncase \"$*\" in *rawvideo*)\n  touch '{}'\n  while [ ! -e '{}' ]; do kill -0 $PPID 2>/dev/null || exit 1; sleep 0.05; done;;\nesac\nexec ffmpeg \"$@\"\n",
            held.display(),
            gate.display()
        );
        let path = dir.path().join("ffmpeg");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("ffmpeg")
    }

    fn open(&self) {
        std::fs::write(self.dir.path().join("gate"), b"").unwrap();
    }

    async fn until_held(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self.dir.path().join("held").exists() {
            assert!(std::time::Instant::now() < deadline, "no rendition started within a minute");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_gifv_is_answered_before_its_mp4_is_made_and_its_url_serves_the_mp4_once_it_is() {
    if !ffmpeg_available() {
        return;
    }
    let ffmpeg = GatedFfmpeg::new();
    let app = TestApp::spawn_with(|c| c.ffmpeg = ffmpeg.path()).await;
    let (_, token) = app.sign_up("patient").await;
    let r = app.post_form(&token, Form::new().part("media", file(animated_gif(&[10, 20, 30]), "a.gif", "image/gif"))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    let m = &tweet["media"][0];
    assert_eq!((m["kind"].as_str(), m["content_type"].as_str()), (Some("gifv"), Some("video/mp4")));
    assert!(m["url"].as_str().unwrap().ends_with(".mp4"), "{m}");
    ffmpeg.until_held().await;

    // While it is being made: 503 with Retry-After, never cached; the original and the thumbnail are there.
    let r = app.client.get(app.url(m["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_problem(r, 503, "rendition_pending").await;
    assert_eq!(fetch(&app, &m["original_url"]).await.0, "image/gif");
    assert_eq!(fetch(&app, &m["thumbnail_url"]).await.0, "image/jpeg");
    assert_eq!(app.db_scalars("SELECT count(*) FROM media_renditions").await, vec![1]);
    // The MP4 is stored a moment before its row is settled: until the row
    // is, the URL still answers 503, so the tweet never gives the size of
    // an original after its MP4 has been served.
    let key = m["url"].as_str().unwrap().rsplit('/').next().unwrap();
    app.put_media(key, b"not yet settled").await;
    let r = app.client.get(app.url(m["url"].as_str().unwrap())).send().await.unwrap();
    assert_problem(r, 503, "rendition_pending").await;

    ffmpeg.open();
    let mp4 = until_served(&app, &m["url"]).await;
    assert_eq!(&mp4[4..8], b"ftyp");
    let path = format!("/api/v1/tweet/{}", tweet["id"].as_str().unwrap());
    let again: Value = app.client.get(app.url(&path)).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["media"][0]["size_bytes"].as_i64(), Some(mp4.len() as i64));
    assert_eq!(app.db_scalars("SELECT count(*) FROM media_renditions").await, vec![0], "no work left");

    // A key that never was a gifv's is simply missing.
    let r = app.client.get(app.url("/media/1234567.mp4")).send().await.unwrap();
    assert_problem(r, 404, "not_found").await;
}

#[tokio::test]
async fn a_gifv_whose_rendition_died_with_its_process_is_made_after_the_restart() {
    if !ffmpeg_available() {
        return;
    }
    let ffmpeg = GatedFfmpeg::new();
    let mut shared = crate::process::backends("rendition-crash").await;
    shared.push(("CHIRP_MEDIA_RENDITION_LEASE".into(), "1s".into()));
    shared.push(("CHIRP_FFMPEG".into(), ffmpeg.path().display().to_string()));
    let mut chirp = crate::process::Chirp::start_node(shared, 11).await;
    let client = reqwest::Client::new();
    let (_, token) = chirp.sign_up(&client, "crasher").await;
    let form = Form::new().part("media", file(animated_gif(&[10, 20, 30, 40]), "a.gif", "image/gif"));
    let r = client.post(chirp.url("/api/v1/tweet")).bearer_auth(&token).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    let url = tweet["media"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(tweet["media"][0]["kind"], "gifv");

    // Killed while ffmpeg holds the frames: the MP4 was never written.
    ffmpeg.until_held().await;
    chirp.kill();
    chirp.set_env("CHIRP_FFMPEG", "ffmpeg");
    chirp.spawn().await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = client.get(chirp.url(&url)).send().await.unwrap();
        if r.status() == StatusCode::OK {
            assert_eq!(r.headers()["content-type"], "video/mp4");
            assert_eq!(&r.bytes().await.unwrap()[4..8], b"ftyp");
            break;
        }
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{url}");
        assert!(std::time::Instant::now() < deadline, "the MP4 was not made within a minute of the restart:\n{}", chirp.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A GIF of `delays.len()` 64x48 frames (each a colour of its own, delays in
/// centiseconds) with a comment and an XMP extension that must not survive.
fn animated_gif(delays: &[u16]) -> Vec<u8> {
    let palette: Vec<u8> = (0..8u8).flat_map(|i| [i * 30, 255 - i * 30, 90]).collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, 64, 48, &palette).unwrap();
        encoder.set_repeat(gif::Repeat::Infinite).unwrap();
        for (i, &delay) in delays.iter().enumerate() {
            let mut frame = gif::Frame::from_indexed_pixels(64, 48, vec![i as u8 % 8; 64 * 48], None);
            frame.delay = delay;
            encoder.write_frame(&frame).unwrap();
        }
    }
    let text = b"SECRET-GIF-COMMENT 41.3111N";
    let comment = [&[0x21, 0xFE, text.len() as u8][..], text, &[0]].concat();
    let xmp = [&b"\x21\xFF\x0BXMP DataXMP"[..], b"\x10SECRET-XMP-GPS!!\x00"].concat();
    let at = out.len() - 1;
    out.splice(at..at, comment.iter().chain(&xmp).copied());
    out
}

/// Each frame's delay in centiseconds, as a GIF decoder reads them.
fn gif_delays(bytes: &[u8]) -> Vec<u16> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(Cursor::new(bytes)).unwrap();
    let mut delays = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        delays.push(frame.delay);
    }
    delays
}

fn ffmpeg(args: &[&str]) {
    let status = std::process::Command::new("ffmpeg").args(["-loglevel", "error", "-y"]).args(args).status().unwrap();
    assert!(status.success(), "ffmpeg {args:?}");
}

#[tokio::test]
async fn an_animated_gif_keeps_every_frame_and_delay_and_is_also_served_as_a_looping_mp4() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("animator").await;
    let gif = animated_gif(&[10, 20, 30, 40]);
    assert_eq!(gif_delays(&gif), vec![10, 20, 30, 40]);
    let form = Form::new()
        .part("media", file(gif.clone(), "dance.gif", "image/gif"))
        .text("description", "  Four colours, one after another  ");
    let r = app.post_form(&token, form).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    let m = &tweet["media"][0];
    assert_eq!((m["width"].as_i64(), m["height"].as_i64()), (Some(64), Some(48)));
    assert_eq!(m["description"], "Four colours, one after another");
    assert!(m["blurhash"].as_str().is_some_and(|h| h.len() >= 6), "{m}");

    // The GIF itself: every frame and delay, none of the metadata, still a GIF.
    let original = if ffmpeg_available() {
        assert_eq!((m["kind"].as_str(), m["content_type"].as_str()), (Some("gifv"), Some("video/mp4")));
        assert_eq!(m["duration_ms"], 1000);
        let (_, gif) = fetch(&app, &m["original_url"]).await;
        assert_eq!(gif.len() as i64, m["size_bytes"].as_i64().unwrap(), "the original's size until the MP4 is made");
        let mp4 = until_served(&app, &m["url"]).await;
        assert_eq!(&mp4[4..8], b"ftyp");
        let again: Value = app
            .client
            .get(app.url(&format!("/api/v1/tweet/{}", tweet["id"].as_str().unwrap())))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(again["media"][0]["url"], m["url"], "the URL the answer gave");
        assert_eq!(again["media"][0]["size_bytes"].as_i64(), Some(mp4.len() as i64), "the MP4's size once it is made");
        &m["original_url"]
    } else {
        assert_eq!(m["kind"], "image");
        &m["url"]
    };
    let (content_type, served) = fetch(&app, original).await;
    assert_eq!(content_type, "image/gif");
    assert_eq!(gif_delays(&served), vec![10, 20, 30, 40], "every frame with its delay");
    assert!(!contains(&served, b"SECRET"), "comments and XMP removed");
    let frames: Vec<_> =
        image::AnimationDecoder::into_frames(image::codecs::gif::GifDecoder::new(Cursor::new(&served[..])).unwrap())
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(frames.len(), 4);
    assert_ne!(frames[0].buffer().get_pixel(5, 5), frames[1].buffer().get_pixel(5, 5), "the frames differ");

    // The thumbnail is the first frame, at the size the object says.
    let (content_type, thumb) = fetch(&app, &m["thumbnail_url"]).await;
    assert_eq!(content_type, "image/jpeg");
    let thumb = image::load_from_memory(&thumb).unwrap();
    assert_eq!(
        (Some(i64::from(thumb.width())), Some(i64::from(thumb.height()))),
        (m["thumbnail_width"].as_i64(), m["thumbnail_height"].as_i64())
    );

    // A still GIF stays a GIF.
    let still = encode(image::ImageFormat::Gif, 10, 10);
    let r = app.post_form(&token, Form::new().part("media", file(still, "s.gif", "image/gif"))).await;
    let tweet: Value = r.json().await.unwrap();
    assert_eq!(
        (tweet["media"][0]["kind"].as_str(), tweet["media"][0]["content_type"].as_str()),
        (Some("image"), Some("image/gif"))
    );
    assert!(tweet["media"][0]["url"].as_str().unwrap().ends_with(".gif"));
}

#[tokio::test]
async fn without_ffmpeg_an_animated_gif_is_served_as_the_gif_and_videos_are_refused() {
    let app = TestApp::spawn_with(|c| c.ffmpeg = "/nonexistent/ffmpeg".into()).await;
    let (_, token) = app.sign_up("noffmpeg").await;
    let r = app.post_form(&token, Form::new().part("media", file(animated_gif(&[5, 50]), "a.gif", "image/gif"))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    let m = &tweet["media"][0];
    assert_eq!((m["kind"].as_str(), m["content_type"].as_str()), (Some("image"), Some("image/gif")));
    assert!(m.get("original_url").is_none());
    let (_, served) = fetch(&app, &m["url"]).await;
    assert_eq!(gif_delays(&served), vec![5, 50]);

    let video = [&b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41"[..], &[0u8; 64]].concat();
    let body = assert_problem(
        app.post_form(&token, Form::new().part("media", file(video, "v.mp4", "video/mp4"))).await,
        415,
        "unsupported_media_type",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("ffmpeg"), "{body}");
}

#[tokio::test]
async fn an_animated_webp_keeps_every_frame_and_delay_without_its_exif() {
    if !ffmpeg_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("webpster").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.webp");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=0.5:size=64x48:rate=10",
        "-c:v",
        "libwebp_anim",
        "-loop",
        "0",
        path.to_str().unwrap(),
    ]);
    let mut webp = std::fs::read(&path).unwrap();
    // Add an EXIF chunk (and its flag), as a camera app would.
    let exif = b"Exif\0\0SECRET-WEBP-GPS 41.3111N";
    webp.extend_from_slice(b"EXIF");
    webp.extend_from_slice(&(exif.len() as u32).to_le_bytes());
    webp.extend_from_slice(exif);
    if exif.len() % 2 == 1 {
        webp.push(0);
    }
    let riff = (webp.len() - 8) as u32;
    webp[4..8].copy_from_slice(&riff.to_le_bytes());
    assert_eq!(&webp[12..16], b"VP8X");
    webp[20] |= 0x08;
    let decoded = |bytes: &[u8]| -> Vec<u32> {
        let decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).unwrap();
        image::AnimationDecoder::into_frames(decoder)
            .map(|f| {
                let (n, d) = f.unwrap().delay().numer_denom_ms();
                n / d
            })
            .collect()
    };
    let delays = decoded(&webp);
    assert_eq!(delays.len(), 5);

    let r = app.post_form(&token, Form::new().part("media", file(webp, "a.webp", "image/webp"))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    let m = &tweet["media"][0];
    assert_eq!(m["kind"], "gifv");
    assert_eq!((m["width"].as_i64(), m["height"].as_i64()), (Some(64), Some(48)));
    let (content_type, served) = fetch(&app, &m["original_url"]).await;
    assert_eq!(content_type, "image/webp");
    assert_eq!(decoded(&served), delays, "every frame with its delay");
    assert!(!contains(&served, b"SECRET") && !contains(&served, b"EXIF"));
    let mp4 = until_served(&app, &m["url"]).await;
    assert_eq!(&mp4[4..8], b"ftyp");
}

/// A GIF whose frames each fill a 2000x2000 canvas: a few hundred KiB that
/// would decode to gigabytes of pixels.
fn frame_bomb(frames: usize) -> Vec<u8> {
    let mut frame = gif::Frame::from_indexed_pixels(2000, 2000, vec![0u8; 2000 * 2000], None);
    frame.make_lzw_pre_encoded();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, 2000, 2000, &[0, 0, 0, 255, 255, 255]).unwrap();
        for _ in 0..frames {
            encoder.write_lzw_pre_encoded_frame(&frame).unwrap();
        }
    }
    out
}

#[tokio::test]
async fn a_decompression_bomb_made_of_frames_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("bomber").await;
    let bomb = frame_bomb(400);
    assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
    let started = std::time::Instant::now();
    let body = assert_problem(
        app.post_form(&token, Form::new().part("media", file(bomb, "b.gif", "image/gif"))).await,
        422,
        "invalid_media",
    )
    .await;
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_millis(800), "took {took:?}");
    assert!(body["detail"].as_str().unwrap().contains("frames"), "{body}");

    // Too many frames, however small.
    let mut many = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut many, 1, 1, &[0, 0, 0, 255, 255, 255]).unwrap();
        for _ in 0..1_500 {
            encoder.write_frame(&gif::Frame::from_indexed_pixels(1, 1, vec![0], None)).unwrap();
        }
    }
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(many, "m.gif", "image/gif"))).await,
        422,
        "invalid_media",
    )
    .await;
    let stored = app.stored_media().await;
    assert!(stored.iter().all(|f| f.starts_with('.')), "{stored:?}");
}

#[tokio::test]
async fn a_video_loses_its_metadata_and_gets_a_poster_frame() {
    if !ffmpeg_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("traveller").await;
    let dir = tempfile::tempdir().unwrap();
    let tags = [
        "-metadata",
        "title=SECRET-TITLE",
        "-metadata",
        "comment=SECRET-COMMENT",
        "-metadata:s:v:0",
        "handler_name=SECRET-HANDLER",
    ];
    let cases: [(&str, &str, &[&str]); 2] = [
        // As a phone writes them: an ISO 6709 location among QuickTime metadata keys.
        (
            "trip.mp4",
            "video/mp4",
            &["-movflags", "use_metadata_tags", "-metadata", "com.apple.quicktime.location.ISO6709=+41.3111+069.2797/"],
        ),
        (
            "trip.webm",
            "video/webm",
            &["-c:v", "libvpx", "-b:v", "300k", "-c:a", "libopus", "-metadata", "location=+41.3111+069.2797/"],
        ),
    ];
    for (name, content_type, extra) in cases {
        let path = dir.path().join(name);
        let mut args =
            vec!["-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=10", "-f", "lavfi", "-i", "sine=duration=2"];
        args.extend_from_slice(&["-pix_fmt", "yuv420p", "-shortest"]);
        args.extend_from_slice(extra);
        args.extend_from_slice(&tags);
        args.push(path.to_str().unwrap());
        ffmpeg(&args);
        let bytes = std::fs::read(&path).unwrap();
        assert!(contains(&bytes, b"+41.3111") && contains(&bytes, b"SECRET-TITLE"), "{name}: the test file carries the tags");

        let form = Form::new().part("media", file(bytes, name, "application/octet-stream")).text("description", "a test pattern");
        let r = app.post_form(&token, form).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{name}");
        let tweet: Value = r.json().await.unwrap();
        let m = &tweet["media"][0];
        assert_eq!((m["kind"].as_str(), m["content_type"].as_str()), (Some("video"), Some(content_type)));
        assert_eq!((m["width"].as_i64(), m["height"].as_i64()), (Some(320), Some(240)), "{name}");
        let duration = m["duration_ms"].as_i64().unwrap();
        assert!((1900..=2100).contains(&duration), "{name}: {duration}");
        assert_eq!(m["description"], "a test pattern");

        let (served_type, served) = fetch(&app, &m["url"]).await;
        assert_eq!(served_type, content_type);
        assert_eq!(served.len() as i64, m["size_bytes"].as_i64().unwrap());
        // (Encoder names inside the coded streams, such as x264's settings or an AAC
        // encoder's ident, stay: removing them would mean re-encoding.)
        for secret in [&b"+41.3111"[..], b"SECRET"] {
            assert!(!contains(&served, secret), "{name}: {} survived", String::from_utf8_lossy(secret));
        }
        // WebM must name a muxing application: a bare "Lavf" is fine, the uploader's version is not.
        assert!(!served.windows(5).any(|w| w.starts_with(b"Lavf") && w[4].is_ascii_digit()), "{name}: a muxer version survived");
        // Still the same video: both streams, the same picture size.
        let copy = dir.path().join(format!("served-{name}"));
        std::fs::write(&copy, &served).unwrap();
        let probe = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_type,width,height", "-of", "csv=p=0"])
            .arg(&copy)
            .output()
            .unwrap();
        let out = String::from_utf8(probe.stdout).unwrap();
        assert!(out.contains("video,320,240") && out.contains("audio"), "{name}: {out}");

        let (poster_type, poster) = fetch(&app, &m["thumbnail_url"]).await;
        assert_eq!(poster_type, "image/jpeg");
        let poster = image::load_from_memory_with_format(&poster, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((poster.width(), poster.height()), (320, 240));
        assert_eq!((m["thumbnail_width"].as_i64(), m["thumbnail_height"].as_i64()), (Some(320), Some(240)));
        assert!(m["blurhash"].as_str().is_some_and(|h| h.len() >= 6));
    }
}

#[tokio::test]
async fn a_file_that_only_starts_like_a_video_is_refused() {
    let app = TestApp::spawn_with(|c| {
        c.ffmpeg = "/nonexistent/ffmpeg".into();
        c.media_store_unstripped_video = true;
    })
    .await;
    let (_, token) = app.sign_up("faker").await;
    let fake = [&b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2"[..], b"#!/bin/sh\nrm -rf /\n"].concat();
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(fake, "v.mp4", "video/mp4"))).await,
        422,
        "invalid_media",
    )
    .await;
    let fake_webm = [&[0x1A, 0x45, 0xDF, 0xA3][..], &[0x42; 60]].concat();
    assert_problem(
        app.post_form(&token, Form::new().part("media", file(fake_webm, "v.webm", "video/webm"))).await,
        422,
        "invalid_media",
    )
    .await;

    // A real one is measured in-process, without ffmpeg, when the operator opted in.
    if ffmpeg_available() {
        let dir = tempfile::tempdir().unwrap();
        for (name, extra) in [("c.mp4", &[][..]), ("c.webm", &["-c:v", "libvpx", "-b:v", "200k"][..])] {
            let path = dir.path().join(name);
            let mut args = vec!["-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10", "-pix_fmt", "yuv420p"];
            args.extend_from_slice(extra);
            args.push(path.to_str().unwrap());
            ffmpeg(&args);
            let r =
                app.post_form(&token, Form::new().part("media", file(std::fs::read(&path).unwrap(), name, "video/mp4"))).await;
            assert_eq!(r.status(), StatusCode::CREATED, "{name}");
            let tweet: Value = r.json().await.unwrap();
            let m = &tweet["media"][0];
            assert_eq!((m["width"].as_i64(), m["height"].as_i64()), (Some(160), Some(120)), "{name}");
            let duration = m["duration_ms"].as_i64().unwrap();
            assert!((900..=1100).contains(&duration), "{name}: {duration}");
            assert!(m["thumbnail_url"].is_null());
        }
    }
}

#[tokio::test]
async fn alt_text_is_given_at_upload_and_edited_by_the_author_only() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("describer").await;
    let (_, other) = app.sign_up("stranger").await;
    let png = || file(encode(image::ImageFormat::Png, 8, 8), "p.png", "image/png");
    let form = Form::new().part("media", png()).text("description", "first").part("media", png());
    let r = app.post_form(&token, form).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    assert_eq!(tweet["media"][0]["description"], "first");
    assert!(tweet["media"][1]["description"].is_null());
    let id = tweet["media"][1]["id"].as_str().unwrap();
    let patch = |token: &str, id: &str, body: Value| {
        app.client.patch(app.url(&format!("/api/v1/media/{id}"))).bearer_auth(token).json(&body).send()
    };

    assert_problem(patch(&other, id, serde_json::json!({"description": "mine now"})).await.unwrap(), 403, "forbidden").await;
    assert_problem(patch(&token, "123456789", serde_json::json!({"description": "x"})).await.unwrap(), 404, "not_found").await;
    let long = "я".repeat(1501);
    let body =
        assert_problem(patch(&token, id, serde_json::json!({"description": long})).await.unwrap(), 422, "validation_failed")
            .await;
    assert!(body["errors"]["description"].is_array());
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/media/{id}")))
        .json(&serde_json::json!({"description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = patch(&token, id, serde_json::json!({"description": "я".repeat(1500)})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let media: Value = r.json().await.unwrap();
    assert_eq!(media["id"], id);
    assert_eq!(media["description"].as_str().unwrap().chars().count(), 1500);
    let (_, again) = app.get_json(&format!("/api/v1/tweet/{}", tweet["id"].as_str().unwrap()), None).await;
    assert_eq!(again["media"][1]["description"], media["description"]);
    assert_eq!(again["media"][0]["description"], "first");

    let r = patch(&token, id, serde_json::json!({"description": null})).await.unwrap();
    assert!(r.json::<Value>().await.unwrap()["description"].is_null(), "null clears it");

    // A description needs a file before it, and a file has at most one.
    let orphan = Form::new().text("description", "nothing to describe").part("media", png());
    assert_problem(app.post_form(&token, orphan).await, 422, "validation_failed").await;
    let twice = Form::new().part("media", png()).text("description", "a").text("description", "b");
    assert_problem(app.post_form(&token, twice).await, 422, "validation_failed").await;
    let stored = app.stored_media().await;
    assert_eq!(stored.iter().filter(|f| !f.starts_with('.')).count(), 4, "no orphans: {stored:?}");
}

/// A PNG of `edge` x `edge` pixels of noise-free gradient: small to send, large to decode.
fn large_png(edge: u32) -> Vec<u8> {
    encode(image::ImageFormat::Png, edge, edge)
}

#[tokio::test]
async fn image_decodes_are_bounded_and_excess_uploads_get_503_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.media_decode_slots = Some(1);
        c.media_decode_wait = std::time::Duration::from_millis(50);
    })
    .await;
    let (_, token) = app.sign_up("crowd").await;
    let png = large_png(2500);
    let uploads = (0..6).map(|_| app.post_form(&token, Form::new().part("media", file(png.clone(), "l.png", "image/png"))));
    let responses = futures::future::join_all(uploads).await;
    let mut created = 0;
    let mut busy = 0;
    for r in responses {
        match r.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(r.headers().contains_key("retry-after"));
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created >= 1 && busy >= 1, "created {created}, busy {busy}");
    let stored = app.stored_media().await;
    assert_eq!(stored.iter().filter(|f| !f.starts_with('.')).count(), created * 2, "nothing left of the refused ones");
}

/// Issue 15 #1: each 4000x4000 decode holds about 48 MiB of pixels (and
/// more while it works). Eight at once unbounded add hundreds of MiB to the
/// peak (329 MiB measured with eight slots); with one slot the peak stays at
/// one decode's worth (6 MiB above it measured).
#[tokio::test]
async fn many_concurrent_large_uploads_keep_peak_memory_bounded() {
    // A chirp process of its own: the peak RSS measured is that process's,
    // not the test runner's, where other tests decode images at the same time.
    let mut shared = crate::process::backends("heavy").await;
    shared.push(("CHIRP_MEDIA_DECODE_SLOTS".into(), "1".into()));
    // Nine uploads one after another take a while on a loaded machine (and S3).
    shared.push(("CHIRP_MEDIA_DECODE_WAIT".into(), "300s".into()));
    shared.push(("CHIRP_REQUEST_TIMEOUT".into(), "300s".into()));
    let chirp = crate::process::Chirp::start_node(shared, 9).await;
    let client = reqwest::Client::new();
    let (_, token) = chirp.sign_up(&client, "heavy").await;
    let post = |png: Vec<u8>| {
        let form = Form::new().part("media", file(png, "l.png", "image/png"));
        client.post(chirp.url("/api/v1/tweet")).bearer_auth(&token).multipart(form).send()
    };
    let png = large_png(4000);
    // Warm up: the first decode's allocations, and what the allocator keeps, count as baseline.
    assert_eq!(post(png.clone()).await.unwrap().status(), StatusCode::CREATED);
    let before = chirp.memory_kib("VmHWM:");
    let uploads = (0..8).map(|_| post(png.clone()));
    for r in futures::future::join_all(uploads).await {
        assert_eq!(r.unwrap().status(), StatusCode::CREATED);
    }
    let grew_mib = chirp.memory_kib("VmHWM:").saturating_sub(before) / 1024;
    assert!(grew_mib < 120, "peak memory grew by {grew_mib} MiB over a single decode's peak");
}

#[tokio::test]
async fn an_image_over_its_limit_is_refused_without_reading_up_to_the_video_limit() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let app = TestApp::spawn_with(|c| {
        c.media_max_image_bytes = 1 << 20;
        c.media_max_video_bytes = 100 << 20;
    })
    .await;
    let (_, token) = app.sign_up("streamer").await;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let chunks = futures::stream::iter((0..1600u32).map(move |i| {
        let mut chunk = vec![7u8; 64 << 10];
        if i == 0 {
            chunk[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
        }
        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk)
    }));
    let part = Part::stream(reqwest::Body::wrap_stream(chunks)).file_name("big.jpg").mime_str("image/jpeg").unwrap();
    let r = app.client.post(app.url("/api/v1/tweet")).bearer_auth(&token).multipart(Form::new().part("media", part)).send().await;
    let read = sent.load(Ordering::Relaxed);
    // The server answers 413 and closes; the client may see the answer or the closed connection.
    if let Ok(r) = r {
        assert_problem(r, 413, "payload_too_large").await;
    }
    assert!(read < 20 << 20, "the client had to send {} MiB of a 100 MiB body", read >> 20);
    assert_eq!(app.temp_files(), 0);
}
