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
    let r = app.client.get(&url).header("range", "bytes=10-99").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], format!("bytes 10-99/{}", bytes.len()).as_str());
    assert_eq!(r.bytes().await.unwrap(), &bytes[10..100]);
    let r = app.client.get(&url).header("range", format!("bytes={}-", bytes.len() + 5)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let with_image = Form::new()
        .part("media", file(bytes, "v.mp4", "video/mp4"))
        .part("media", file(encode(image::ImageFormat::Png, 4, 4), "p.png", "image/png"));
    assert_problem(app.post_form(&token, with_image).await, 422, "validation_failed").await;
    assert_eq!(app.temp_files(), 0);
}
