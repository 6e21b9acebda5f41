//! Profiles: editing name and bio, avatars, looking users up by username,
//! and `bio` / `avatar_url` on every user object.

use std::io::Cursor;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

fn encode(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 128])));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn avatar_form(bytes: Vec<u8>) -> Form {
    Form::new().part("avatar", Part::bytes(bytes).file_name("me.jpg").mime_str("image/jpeg").unwrap())
}

impl TestApp {
    async fn patch_me(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client.patch(self.url("/api/v1/me")).bearer_auth(token).json(body).send().await.unwrap()
    }

    async fn put_avatar(&self, token: &str, form: Form) -> reqwest::Response {
        self.client.put(self.url("/api/v1/me/avatar")).bearer_auth(token).multipart(form).send().await.unwrap()
    }

    async fn delete_avatar(&self, token: &str) -> reqwest::Response {
        self.client.delete(self.url("/api/v1/me/avatar")).bearer_auth(token).send().await.unwrap()
    }

    /// Stored objects that are avatars.
    async fn stored_avatars(&self) -> Vec<String> {
        self.stored_media().await.into_iter().filter(|f| f.contains("-avatar.")).collect()
    }
}

#[tokio::test]
async fn new_users_have_an_empty_bio_and_no_avatar() {
    let app = TestApp::spawn().await;
    let (id, token) = app.sign_up("plain").await;
    let (_, me) = app.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!(me["bio"], "");
    assert_eq!(me["avatar_url"], Value::Null);
    let (_, user) = app.get_json(&format!("/api/v1/user/{id}"), None).await;
    assert_eq!((user["bio"].as_str(), user["avatar_url"].is_null()), (Some(""), true), "{user}");
}

#[tokio::test]
async fn patch_me_changes_name_and_bio_and_leaves_out_fields_alone() {
    let app = TestApp::spawn().await;
    let (id, token) = app.sign_up("editor").await;

    let r = app.patch_me(&token, &json!({"name": "  Ed Itor  ", "bio": " Writes\r\nthings. ", "unknown": 1})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["name"], "Ed Itor");
    assert_eq!(me["bio"], "Writes\nthings.");
    assert_eq!(me["email"], "editor@example.com", "the caller's own account carries the email");

    let me: Value = app.patch_me(&token, &json!({"bio": ""})).await.json().await.unwrap();
    assert_eq!((me["name"].as_str(), me["bio"].as_str()), (Some("Ed Itor"), Some("")));
    let me: Value = app.patch_me(&token, &json!({})).await.json().await.unwrap();
    assert_eq!(me["name"], "Ed Itor");

    app.patch_me(&token, &json!({"bio": "é".repeat(160)})).await;
    let (_, user) = app.get_json(&format!("/api/v1/user/{id}"), None).await;
    assert_eq!(user["bio"], "é".repeat(160));
    assert!(user.get("email").is_none(), "{user}");
}

#[tokio::test]
async fn patch_me_rejects_invalid_fields_naming_each_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("strict").await;

    let r = app.patch_me(&token, &json!({"name": "   ", "bio": "b".repeat(161)})).await;
    let body = assert_problem(r, 422, "validation_failed").await;
    assert!(body["errors"]["name"].is_array() && body["errors"]["bio"].is_array(), "{body}");
    for bad in [json!({"name": "n".repeat(51)}), json!({"bio": "bell\u{7}"}), json!({"name": 5}), json!({"bio": ["x"]})] {
        assert_problem(app.patch_me(&token, &bad).await, 422, "validation_failed").await;
    }
    let (_, me) = app.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!((me["name"].as_str(), me["bio"].as_str()), (Some("Test User"), Some("")));

    let r = app
        .client
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"bio\": ")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed_json").await;
    let r = app.client.patch(app.url("/api/v1/me")).json(&json!({"bio": "x"})).send().await.unwrap();
    assert_problem(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_avatar_is_a_400px_square_without_metadata_and_shows_everywhere() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.sign_up("alice_av").await;
    let (_, bob) = app.sign_up("bob_av").await;

    let r = app.put_avatar(&alice, avatar_form(jpeg_with_exif(900, 600))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], "alice_av@example.com");
    let url = me["avatar_url"].as_str().expect("an avatar url").to_owned();
    assert!(url.starts_with("/media/"), "{url}");

    let r = app.client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let bytes = r.bytes().await.unwrap();
    assert!(!contains(&bytes, b"SECRET"), "metadata stripped");
    let picture = image::load_from_memory(&bytes).unwrap();
    assert_eq!((picture.width(), picture.height()), (400, 400));

    // Everywhere a user appears: /me, by id, by username, search, followers, tweets, notifications.
    assert_eq!(app.get_json("/api/v1/me", Some(&alice)).await.1["avatar_url"], url.as_str());
    assert_eq!(app.get_json(&format!("/api/v1/user/{alice_id}"), None).await.1["avatar_url"], url.as_str());
    assert_eq!(app.get_json("/api/v1/user/lookup?username=ALICE_AV", None).await.1["avatar_url"], url.as_str());
    assert_eq!(app.get_json("/api/v1/user?search=alice_av", None).await.1["data"][0]["avatar_url"], url.as_str());
    let r = app.client.post(app.url(&format!("/api/v1/user/{alice_id}/follow"))).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, bobs_id) = app.get_json("/api/v1/me", Some(&bob)).await;
    let bob_id = bobs_id["id"].as_str().unwrap();
    let (_, followings) = app.get_json(&format!("/api/v1/user/{bob_id}/followings"), None).await;
    assert_eq!(followings["data"][0]["avatar_url"], url.as_str());
    let tweet = app.tweet(&alice, "with a face").await;
    assert_eq!(tweet["author"]["avatar_url"], url.as_str());
    assert_eq!(tweet["author"]["bio"], "");
    let tweet_id = tweet["id"].as_str().unwrap();
    assert_eq!(app.get_json(&format!("/api/v1/tweet/{tweet_id}"), None).await.1["author"]["avatar_url"], url.as_str());
    app.put_avatar(&bob, avatar_form(encode(image::ImageFormat::Png, 50, 80))).await;
    assert_eq!(app.like(&bob, tweet_id).await, StatusCode::CREATED);
    let notes = app.notifications_when(&alice, |n| !n.is_empty()).await;
    assert!(notes[0]["actor"]["avatar_url"].as_str().is_some_and(|u| u.starts_with("/media/")), "{}", notes[0]);
}

#[tokio::test]
async fn replacing_or_deleting_an_avatar_removes_the_old_file() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("changer").await;

    let first: Value = app.put_avatar(&token, avatar_form(encode(image::ImageFormat::Png, 300, 300))).await.json().await.unwrap();
    let first_url = first["avatar_url"].as_str().unwrap().to_owned();
    assert_eq!(app.stored_avatars().await.len(), 1);

    let r = app.put_avatar(&token, avatar_form(encode(image::ImageFormat::Gif, 120, 90))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second: Value = r.json().await.unwrap();
    let second_url = second["avatar_url"].as_str().unwrap().to_owned();
    assert_ne!(first_url, second_url);
    assert_problem(app.client.get(app.url(&first_url)).send().await.unwrap(), 404, "not_found").await;
    assert_eq!(app.client.get(app.url(&second_url)).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.stored_avatars().await.len(), 1);

    let r = app.delete_avatar(&token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["avatar_url"], Value::Null);
    assert_eq!(me["email"], "changer@example.com");
    assert_problem(app.client.get(app.url(&second_url)).send().await.unwrap(), 404, "not_found").await;
    assert!(app.stored_avatars().await.is_empty());
    // Deleting again is fine.
    assert_eq!(app.delete_avatar(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_avatars_are_refused_and_leave_the_old_one_in_place() {
    let app = TestApp::spawn_with(|c| {
        c.media_max_image_bytes = 1 << 20;
        c.media_max_pixels = 1_000_000;
    })
    .await;
    let (_, token) = app.sign_up("careful").await;
    let me: Value = app.put_avatar(&token, avatar_form(encode(image::ImageFormat::Png, 64, 64))).await.json().await.unwrap();
    let kept = me["avatar_url"].as_str().unwrap().to_owned();

    // Not an image, whatever it claims to be (decided by the bytes).
    assert_problem(
        app.put_avatar(&token, avatar_form(b"\x7fELF\x02\x01\x01 not an image".to_vec())).await,
        415,
        "unsupported_media_type",
    )
    .await;
    // A video is not an avatar.
    assert_problem(
        app.put_avatar(&token, avatar_form(b"\0\0\0\x20ftypisom\0\0\0\0".to_vec())).await,
        415,
        "unsupported_media_type",
    )
    .await;
    // Corrupt: a truncated JPEG.
    let jpeg = encode(image::ImageFormat::Jpeg, 200, 200);
    assert_problem(app.put_avatar(&token, avatar_form(jpeg[..jpeg.len() / 2].to_vec())).await, 422, "invalid_media").await;
    // Over the pixel limit (1001 x 1000).
    assert_problem(app.put_avatar(&token, avatar_form(encode(image::ImageFormat::Png, 1001, 1000))).await, 422, "invalid_media")
        .await;
    // Over the image size limit.
    let mut big = encode(image::ImageFormat::Png, 10, 10);
    big.resize((1 << 20) + 10, 0);
    assert_problem(app.put_avatar(&token, avatar_form(big)).await, 413, "payload_too_large").await;
    // No file, or two.
    let r = app.put_avatar(&token, Form::new().text("other", "x")).await;
    let body = assert_problem(r, 422, "validation_failed").await;
    assert!(body["errors"]["avatar"].is_array(), "{body}");
    let two = avatar_form(encode(image::ImageFormat::Png, 8, 8))
        .part("avatar", Part::bytes(encode(image::ImageFormat::Png, 8, 8)).file_name("b.png"));
    assert_problem(app.put_avatar(&token, two).await, 422, "validation_failed").await;
    // Not multipart at all.
    let r = app.client.put(app.url("/api/v1/me/avatar")).bearer_auth(&token).json(&json!({"avatar": "x"})).send().await.unwrap();
    assert_problem(r, 415, "unsupported_media_type").await;
    // No token.
    let r = app
        .client
        .put(app.url("/api/v1/me/avatar"))
        .multipart(avatar_form(encode(image::ImageFormat::Png, 8, 8)))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;
    assert_problem(app.client.delete(app.url("/api/v1/me/avatar")).send().await.unwrap(), 401, "unauthorized").await;

    // The first avatar is still the one, and the only file.
    assert_eq!(app.get_json("/api/v1/me", Some(&token)).await.1["avatar_url"], kept.as_str());
    assert_eq!(app.stored_avatars().await.len(), 1, "{:?}", app.stored_media().await);
    let tmp = std::fs::read_dir(app.config.data_dir.join("tmp")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(tmp, 0, "no temporary file left");
}

#[tokio::test]
async fn lookup_finds_a_user_by_username_in_any_case() {
    let app = TestApp::spawn().await;
    let (id, token) = app.sign_up("Lookie").await;
    let (_, viewer) = app.sign_up("viewer").await;

    for name in ["Lookie", "lookie", "LOOKIE"] {
        let (status, user) = app.get_json(&format!("/api/v1/user/lookup?username={name}"), None).await;
        assert_eq!(status, StatusCode::OK, "{user}");
        assert_eq!((user["id"].as_str(), user["username"].as_str()), (Some(id.as_str()), Some("Lookie")));
        assert!(user.get("email").is_none());
    }
    let (_, seen) = app.get_json("/api/v1/user/lookup?username=lookie", Some(&viewer)).await;
    assert_eq!(seen["followed_by_me"], false);
    let (_, self_seen) = app.get_json("/api/v1/user/lookup?username=lookie", Some(&token)).await;
    assert_eq!(self_seen["id"], id.as_str());

    for missing in ["nobody_here", "not a username!", "", "x"] {
        let url = reqwest::Url::parse_with_params(&app.url("/api/v1/user/lookup"), &[("username", missing)]).unwrap();
        assert_problem(app.client.get(url).send().await.unwrap(), 404, "not_found").await;
    }
    let body =
        assert_problem(app.client.get(app.url("/api/v1/user/lookup")).send().await.unwrap(), 422, "validation_failed").await;
    assert!(body["errors"]["username"].is_array(), "{body}");
}

#[tokio::test]
async fn the_openapi_document_describes_the_profile_endpoints() {
    let app = TestApp::spawn().await;
    let (_, doc) = app.get_json("/api/v1/openapi.json", None).await;
    let paths = &doc["paths"];
    assert!(paths["/api/v1/me"]["patch"].is_object());
    assert!(paths["/api/v1/me/avatar"]["put"]["requestBody"]["content"]["multipart/form-data"].is_object());
    assert!(paths["/api/v1/me/avatar"]["delete"].is_object());
    assert!(paths["/api/v1/user/lookup"]["get"].is_object());
    let user = &doc["components"]["schemas"]["UserBody"]["properties"];
    assert!(user["bio"].is_object() && user["avatar_url"].is_object(), "{user}");
}
