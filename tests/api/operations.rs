use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["cache"], "ok");
    assert_eq!(body["checks"]["broker"], "ok");
    assert_eq!(body["checks"]["media"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"}"#), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = TestApp::spawn().await;
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/api/v1/register", "/api/v1/verify-register", "/api/v1/login", "/api/v1/me"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    let r = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    assert_problem(app.client.get(app.url("/api/v1/nope")).send().await.unwrap(), 404, "not_found").await;
    assert_problem(app.client.delete(app.url("/api/v1/me")).send().await.unwrap(), 405, "method_not_allowed").await;
}

#[tokio::test]
async fn cors_allows_any_origin_but_never_credentials() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/me"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(!r.headers().contains_key("access-control-allow-credentials"));
}

#[tokio::test]
async fn a_stopped_server_finishes_cleanly_and_refuses_new_connections() {
    let app = TestApp::spawn().await;
    let url = app.url("/healthz");
    let client = app.client.clone();
    assert_eq!(client.get(&url).send().await.unwrap().status(), StatusCode::OK);
    tokio::time::timeout(std::time::Duration::from_secs(10), app.stop()).await.expect("graceful shutdown within 10 s");
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}

/// `/media` answers go through the same layers as the API: a request id,
/// the request metrics, and problem bodies that say what happened (416 for
/// a range past the end, with the file's size).
#[tokio::test]
async fn media_answers_are_counted_carry_a_request_id_and_say_416_for_a_bad_range() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("painter").await;
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(8, 8).write_to(&mut png, image::ImageFormat::Png).unwrap();
    let part = reqwest::multipart::Part::bytes(png.into_inner()).file_name("p.png").mime_str("image/png").unwrap();
    let form = reqwest::multipart::Form::new().part("media", part);
    let r = app.client.post(app.url("/api/v1/tweet")).bearer_auth(&token).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tweet: Value = r.json().await.unwrap();
    let (url, size) = (tweet["media"][0]["url"].as_str().unwrap(), tweet["media"][0]["size_bytes"].as_i64().unwrap());

    let r = app.client.get(app.url(url)).header("range", format!("bytes={}-", size + 10)).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.headers()["content-range"], format!("bytes */{size}").as_str());
    assert!(r.headers().get("cache-control").is_none(), "an error is not cached for a year");
    assert_problem(r, 416, "range_not_satisfiable").await;
    let r = app.client.get(app.url("/media/no-such-file.png")).header("x-request-id", "media-404").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "media-404");
    assert_problem(r, 404, "not_found").await;
    assert_eq!(app.client.get(app.url(url)).send().await.unwrap().status(), StatusCode::OK);

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for status in [200, 404, 416] {
        let line = format!(r#"http_requests_total{{method="GET",route="/media/{{*key}}",status="{status}"}}"#);
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}
