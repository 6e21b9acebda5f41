//! The web client as the server serves it: the app at its paths under a
//! strict policy, and cookie sessions (HttpOnly, CSRF-checked, revoked at
//! logout) beside unchanged bearer tokens.

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

/// Signs in through `POST /session`: the cookie (`name=value`), the CSRF token and the whole Set-Cookie line.
async fn cookie_login(app: &TestApp, username: &str) -> (String, String, String) {
    let r = app.post_json("/api/v1/session", &json!({"username": username, "password": "correct horse battery"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let set_cookie = r.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert!(body.get("access_token").is_none(), "the token is only in the cookie: {body}");
    assert_eq!(body["user"]["username"], username);
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    (cookie, body["csrf_token"].as_str().unwrap().to_owned(), set_cookie)
}

fn with_cookie(cookie: &str, csrf: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("cookie", HeaderValue::from_str(cookie).unwrap());
    if let Some(csrf) = csrf {
        headers.insert("x-csrf-token", HeaderValue::from_str(csrf).unwrap());
    }
    headers
}

async fn post_tweet(app: &TestApp, headers: HeaderMap, content: &str) -> Response {
    app.client.post(app.url("/api/v1/tweet")).headers(headers).json(&json!({"content": content})).send().await.unwrap()
}

#[tokio::test]
async fn the_app_is_served_at_the_root_and_at_profile_paths_under_a_strict_policy() {
    let app = TestApp::spawn().await;
    for path in ["/", "/@alice", "/@alice/followers", "/search", "/login"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
        for directive in
            ["default-src 'self'", "script-src 'self';", "style-src 'self';", "object-src 'none'", "frame-ancestors 'none'"]
        {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        let body = r.text().await.unwrap();
        assert!(body.contains(r#"<script type="module" src="/app/app.js"></script>"#), "{path}");
        assert!(!body.contains("<style") && !body.contains(" style="), "{path}: no inline styles");
        assert_eq!(body.matches("<script").count(), 1, "{path}: no inline scripts");
    }
    for path in ["/nope", "/@alice/likes", "/app/missing.js"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn assets_are_gzipped_and_revalidated_by_etag() {
    let app = TestApp::spawn().await;
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let r = raw.get(app.url("/app/app.js")).header("accept-encoding", "gzip, br").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let etag = r.headers()["etag"].clone();
    let r = raw.get(app.url("/app/app.js")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let plain = raw.get(app.url("/app/style.css")).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(plain.text().await.unwrap().contains("prefers-color-scheme: dark"));
}

#[tokio::test]
async fn a_cookie_login_sets_an_http_only_same_site_cookie_that_authenticates() {
    let app = TestApp::spawn().await;
    app.sign_up("wendy").await;
    let (cookie, csrf, set_cookie) = cookie_login(&app, "wendy").await;
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http here: {set_cookie}");

    let me = app.client.get(app.url("/api/v1/me")).headers(with_cookie(&cookie, None)).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["username"], "wendy");
    let session = app.client.get(app.url("/api/v1/session")).headers(with_cookie(&cookie, None)).send().await.unwrap();
    assert_eq!(session.status(), StatusCode::OK);
    assert_eq!(session.json::<Value>().await.unwrap()["csrf_token"], csrf.as_str());

    let posted = post_tweet(&app, with_cookie(&cookie, Some(&csrf)), "from the browser").await;
    assert_eq!(posted.status(), StatusCode::CREATED);
    assert_eq!(posted.json::<Value>().await.unwrap()["author"]["username"], "wendy");
}

#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app = TestApp::spawn_with(|c| c.public_url = Some("https://chirp.example".into())).await;
    app.sign_up("xena").await;
    let (_, _, set_cookie) = cookie_login(&app, "xena").await;
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
}

#[tokio::test]
async fn a_cookie_write_without_the_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    app.sign_up("yusuf").await;
    let (cookie, csrf, _) = cookie_login(&app, "yusuf").await;

    let missing = post_tweet(&app, with_cookie(&cookie, None), "forged").await;
    assert_problem(missing, 403, "csrf_failed").await;
    let wrong = post_tweet(&app, with_cookie(&cookie, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")), "forged").await;
    assert_problem(wrong, 403, "csrf_failed").await;
    let mut cross_site = with_cookie(&cookie, Some(&csrf));
    cross_site.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    assert_problem(post_tweet(&app, cross_site, "forged").await, 403, "csrf_failed").await;

    // Nothing was posted by the refused requests.
    let mine = app.client.get(app.url("/api/v1/me")).headers(with_cookie(&cookie, None)).send().await.unwrap();
    assert_eq!(mine.json::<Value>().await.unwrap()["tweets_count"], 0);
}

#[tokio::test]
async fn bearer_tokens_work_as_before_and_need_no_csrf_token() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("abel").await;
    let r = app
        .client
        .post(app.url("/api/v1/tweet"))
        .bearer_auth(&token)
        .json(&json!({"content": "api client"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // A bearer token wins over a cookie that would fail the CSRF check.
    let r = app
        .client
        .post(app.url("/api/v1/tweet"))
        .bearer_auth(&token)
        .header("cookie", "chirp_session=not-a-token")
        .json(&json!({"content": "still the api client"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn logout_clears_the_cookie_and_ends_the_session() {
    let app = TestApp::spawn().await;
    app.sign_up("bruno").await;
    let (cookie, csrf, _) = cookie_login(&app, "bruno").await;

    let refused = app.client.delete(app.url("/api/v1/session")).headers(with_cookie(&cookie, None)).send().await.unwrap();
    assert_problem(refused, 403, "csrf_failed").await;
    let r = app.client.delete(app.url("/api/v1/session")).headers(with_cookie(&cookie, Some(&csrf))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("chirp_session=;") && cleared.contains("Max-Age=0"), "{cleared}");

    // The old cookie, replayed, no longer works.
    let me = app.client.get(app.url("/api/v1/me")).headers(with_cookie(&cookie, None)).send().await.unwrap();
    assert_problem(me, 401, "unauthorized").await;
    let session = app.client.get(app.url("/api/v1/session")).headers(with_cookie(&cookie, None)).send().await.unwrap();
    assert_problem(session, 401, "unauthorized").await;
}

#[tokio::test]
async fn verify_register_can_start_a_cookie_session() {
    let app = TestApp::spawn().await;
    let r = app.register("carla@example.com", "carla", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let code = app.code_for("carla@example.com");
    let r = app.post_json("/api/v1/session/verify-register", &json!({"email": "carla@example.com", "code": code})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly"));
    let body: Value = r.json().await.unwrap();
    assert!(body.get("access_token").is_none());
    assert_eq!(body["user"]["email"], "carla@example.com");
    let cookie = set_cookie.split(';').next().unwrap();
    let me = app.client.get(app.url("/api/v1/me")).headers(with_cookie(cookie, None)).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    let wrong = app.post_json("/api/v1/session/verify-register", &json!({"email": "carla@example.com", "code": "000000"})).await;
    assert_problem(wrong, 400, "invalid_code").await;
}

#[tokio::test]
async fn the_notification_stream_takes_the_cookie() {
    let app = TestApp::spawn().await;
    app.sign_up("dora").await;
    let (cookie, _, _) = cookie_login(&app, "dora").await;
    let r = app.client.get(app.url("/api/v1/notifications/stream")).headers(with_cookie(&cookie, None)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
}

#[tokio::test]
async fn the_openapi_document_offers_the_cookie_wherever_a_bearer_token_is_taken() {
    let app = TestApp::spawn().await;
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["components"]["securitySchemes"]["cookie"]["in"], "cookie");
    assert_eq!(doc["components"]["securitySchemes"]["cookie"]["name"], "chirp_session");
    let security = doc["paths"]["/api/v1/timeline"]["get"]["security"].as_array().unwrap().clone();
    assert!(security.iter().any(|r| r.get("bearer").is_some()));
    assert!(security.iter().any(|r| r.get("cookie").is_some()));
    assert!(doc["paths"]["/api/v1/session"]["post"].is_object());
}
