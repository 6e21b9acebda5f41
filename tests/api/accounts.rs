use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn register_then_verify_creates_the_account_and_signs_in() {
    let app = TestApp::spawn().await;

    let r = app.register("alice@example.com", "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"email": "alice@example.com", "expires_in": 600}));
    let mail = app.outbox.sent();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].subject.contains(&app.code_for("alice@example.com")));

    let r = app.verify("alice@example.com", &app.code_for("alice@example.com")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let user = &body["user"];
    assert!(user["id"].is_string(), "ids are strings: {user}");
    assert_eq!(user["username"], "alice");
    assert_eq!(user["name"], "Test User");
    assert_eq!(user["followers_count"], 0);
    assert_eq!(user["followings_count"], 0);
    assert_eq!(user["tweets_count"], 0);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));

    let me: Value = app.get_auth("/api/v1/me", body["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["email"], "alice@example.com");
}

#[tokio::test]
async fn no_account_exists_before_the_code_is_verified() {
    let app = TestApp::spawn().await;
    app.register("bob@example.com", "bob", PASSWORD).await;

    let r = app.post_json("/api/v1/login", &json!({"username": "bob", "password": PASSWORD})).await;
    assert_problem(r, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn the_pending_registration_holds_neither_the_password_nor_the_code() {
    let app = TestApp::spawn().await;
    app.register("carol@example.com", "carol", PASSWORD).await;
    let code = app.code_for("carol@example.com");

    let raw = app.cache.get("registration:carol@example.com").await.unwrap().expect("pending registration");
    let raw = String::from_utf8(raw).unwrap();
    assert!(!raw.contains(PASSWORD));
    assert!(!raw.contains(&code));
    assert!(raw.contains("$argon2id$"), "password kept as an Argon2id hash");
}

#[tokio::test]
async fn register_rejects_malformed_json() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .post(app.url("/api/v1/register"))
        .header("content-type", "application/json")
        .body(r#"{"email": "x@example.com", "username": "#)
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed_json").await;
    assert!(app.outbox.sent().is_empty());
}

#[tokio::test]
async fn register_rejects_missing_fields_naming_each() {
    let app = TestApp::spawn().await;
    let body = assert_problem(app.post_json("/api/v1/register", &json!({})).await, 422, "validation_failed").await;
    for field in ["email", "username", "name", "password"] {
        assert!(body["errors"][field].is_array(), "{field} named in {body}");
    }
}

#[tokio::test]
async fn register_rejects_wrong_types() {
    let app = TestApp::spawn().await;
    let r = app
        .post_json("/api/v1/register", &json!({"email": "x@example.com", "username": 12345, "name": "X", "password": PASSWORD}))
        .await;
    let body = assert_problem(r, 422, "validation_failed").await;
    assert!(body["errors"]["username"].is_array(), "{body}");

    let r = app.post_json("/api/v1/register", &json!(["not", "an", "object"])).await;
    assert_problem(r, 422, "validation_failed").await;
    assert!(app.outbox.sent().is_empty());
}

#[tokio::test]
async fn register_rejects_an_oversized_body() {
    let app = TestApp::spawn().await;
    let r = app
        .post_json(
            "/api/v1/register",
            &json!({"email": "x@example.com", "username": "xx_x", "name": "x".repeat(200_000), "password": PASSWORD}),
        )
        .await;
    assert_problem(r, 413, "payload_too_large").await;
}

#[tokio::test]
async fn register_rejects_a_body_that_is_not_json() {
    let app = TestApp::spawn().await;
    let r = app.client.post(app.url("/api/v1/register")).header("content-type", "text/plain").body("hello").send().await.unwrap();
    assert_problem(r, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn register_rejects_invalid_fields_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let good = json!({"email": "dave@example.com", "username": "dave", "name": "Dave", "password": PASSWORD});
    let cases = [
        ("email", json!("not-an-email")),
        ("email", json!("dave@")),
        ("username", json!("has space")),
        ("username", json!("ab")),
        ("username", json!("a".repeat(31))),
        ("username", json!("dävé")),
        ("name", json!("   ")),
        ("name", json!("n".repeat(51))),
        ("password", json!("short")),
        ("password", json!("p".repeat(129))),
    ];
    for (field, value) in cases {
        let mut body = good.clone();
        body[field] = value.clone();
        let r = app.post_json("/api/v1/register", &body).await;
        let problem = assert_problem(r, 422, "validation_failed").await;
        assert!(problem["errors"][field].is_array(), "{field}={value}: {problem}");
    }
    assert!(app.outbox.sent().is_empty());
    let r = app.verify("dave@example.com", "000000").await;
    assert_problem(r, 400, "invalid_code").await;
}

#[tokio::test]
async fn register_conflicts_with_an_existing_username_or_email_ignoring_case() {
    let app = TestApp::spawn().await;
    app.sign_up("erin").await;

    let r = app.register("other@example.com", "ERIN", PASSWORD).await;
    assert_problem(r, 409, "username_taken").await;
    let r = app.register("Erin@Example.com", "erin2", PASSWORD).await;
    assert_problem(r, 409, "email_taken").await;
}

#[tokio::test]
async fn of_two_pending_registrations_for_one_username_the_first_verified_wins() {
    let app = TestApp::spawn().await;
    app.register("f1@example.com", "frank", PASSWORD).await;
    app.register("f2@example.com", "Frank", PASSWORD).await;
    let (c1, c2) = (app.code_for("f1@example.com"), app.code_for("f2@example.com"));

    let (r1, r2) = tokio::join!(app.verify("f1@example.com", &c1), app.verify("f2@example.com", &c2));
    let mut statuses = [r1.status().as_u16(), r2.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    let loser = if r1.status() == StatusCode::CONFLICT { r1 } else { r2 };
    assert_problem(loser, 409, "username_taken").await;
}

#[tokio::test]
async fn verify_rejects_a_wrong_code_and_an_unknown_email() {
    let app = TestApp::spawn().await;
    app.register("gina@example.com", "gina", PASSWORD).await;
    let code = app.code_for("gina@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };

    assert_problem(app.verify("gina@example.com", wrong).await, 400, "invalid_code").await;
    assert_problem(app.verify("gina@example.com", "12ab").await, 400, "invalid_code").await;
    assert_problem(app.verify("nobody@example.com", &code).await, 400, "invalid_code").await;
    let r = app.post_json("/api/v1/verify-register", &json!({"email": "gina@example.com"})).await;
    let body = assert_problem(r, 422, "validation_failed").await;
    assert!(body["errors"]["code"].is_array());
    // Still pending: the right code works.
    assert_eq!(app.verify("gina@example.com", &code).await.status(), StatusCode::CREATED);
    // And only once.
    assert_problem(app.verify("gina@example.com", &code).await, 400, "invalid_code").await;
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = TestApp::spawn_with(|c| c.registration_ttl = Duration::from_secs(1)).await;
    let r: Value = app.register("hank@example.com", "hank", PASSWORD).await.json().await.unwrap();
    assert_eq!(r["expires_in"], 1);
    let code = app.code_for("hank@example.com");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_problem(app.verify("hank@example.com", &code).await, 400, "invalid_code").await;
}

#[tokio::test]
async fn five_wrong_codes_void_the_registration() {
    let app = TestApp::spawn().await;
    app.register("ivy@example.com", "ivy", PASSWORD).await;
    let code = app.code_for("ivy@example.com");
    let wrong = if code == "999999" { "888888" } else { "999999" };

    for _ in 0..5 {
        assert_problem(app.verify("ivy@example.com", wrong).await, 400, "invalid_code").await;
    }
    let r = app.verify("ivy@example.com", &code).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, 429, "too_many_attempts").await;

    // Registering again starts over with a new code and fresh attempts.
    assert_eq!(app.register("ivy@example.com", "ivy", PASSWORD).await.status(), StatusCode::ACCEPTED);
    let fresh = app.code_for("ivy@example.com");
    assert_eq!(app.verify("ivy@example.com", &fresh).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn concurrent_guesses_get_no_more_than_five_comparisons() {
    let app = TestApp::spawn().await;
    app.register("jack@example.com", "jack", PASSWORD).await;
    let code = app.code_for("jack@example.com");
    let guesses: Vec<String> = (0..20).map(|i| format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000)).collect();

    let results = futures::future::join_all(guesses.iter().map(|g| app.verify("jack@example.com", g))).await;
    let invalid = results.iter().filter(|r| r.status() == StatusCode::BAD_REQUEST).count();
    let too_many = results.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((invalid, too_many), (5, 15));
    assert_eq!(app.verify("jack@example.com", &code).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn registering_again_replaces_the_pending_registration() {
    let app = TestApp::spawn().await;
    app.register("kim@example.com", "kim", PASSWORD).await;
    let first = app.code_for("kim@example.com");
    app.register("kim@example.com", "kim_2", PASSWORD).await;
    let second = app.code_for("kim@example.com");
    assert_eq!(app.outbox.sent().len(), 2);

    if first != second {
        assert_problem(app.verify("kim@example.com", &first).await, 400, "invalid_code").await;
    }
    let r: Value = app.verify("kim@example.com", &second).await.json().await.unwrap();
    assert_eq!(r["user"]["username"], "kim_2");
}

#[tokio::test]
async fn an_email_gets_at_most_five_codes_an_hour() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        let r = app.register("lou@example.com", &format!("lou_{i}"), PASSWORD).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let r = app.register("LOU@example.com", "lou_5", PASSWORD).await;
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry), "retry after {retry}");
    assert_problem(r, 429, "rate_limited").await;
    assert_eq!(app.outbox.sent().len(), 5, "no sixth code was sent");
    // Other addresses are not affected, and the last code still works.
    assert_eq!(app.register("other_lou@example.com", "lou_6", PASSWORD).await.status(), StatusCode::ACCEPTED);
    let r: Value = app.verify("lou@example.com", &app.code_for("lou@example.com")).await.json().await.unwrap();
    assert_eq!(r["user"]["username"], "lou_4");
}

#[tokio::test]
async fn wrong_codes_are_bounded_per_email_across_re_registrations() {
    let app = TestApp::spawn().await;
    let mut wrong_guesses = 0;
    for _ in 0..5 {
        assert_eq!(app.register("max@example.com", "max", PASSWORD).await.status(), StatusCode::ACCEPTED);
        let code = app.code_for("max@example.com");
        let wrong = if code == "999999" { "888888" } else { "999999" };
        for _ in 0..5 {
            assert_problem(app.verify("max@example.com", wrong).await, 400, "invalid_code").await;
            wrong_guesses += 1;
        }
        assert_problem(app.verify("max@example.com", wrong).await, 429, "too_many_attempts").await;
    }
    // Registering again no longer buys fresh guesses.
    assert_problem(app.register("max@example.com", "max", PASSWORD).await, 429, "rate_limited").await;
    assert_eq!(wrong_guesses, 25);
}

#[tokio::test]
async fn concurrent_registers_for_one_email_get_at_most_five_codes() {
    let app = TestApp::spawn().await;
    let names: Vec<String> = (0..10).map(|i| format!("nell_{i}")).collect();
    let registers = names.iter().map(|name| app.register("nell@example.com", name, PASSWORD));
    let statuses: Vec<u16> = futures::future::join_all(registers).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");
}

#[tokio::test]
async fn registering_over_a_pending_registration_tells_the_address_owner_and_voids_the_old_code() {
    let app = TestApp::spawn().await;
    // The owner of the address registers; someone else then registers the same address.
    app.register("owen@example.com", "owen", PASSWORD).await;
    let owners_code = app.code_for("owen@example.com");
    app.register("owen@example.com", "mallory", "another password").await;
    let sent = app.outbox.sent();
    let second = sent.last().unwrap();
    assert_eq!(second.to, "owen@example.com", "the new code goes to the address, never to whoever registered");
    assert!(second.body.contains("@mallory") && second.subject.contains("@mallory"), "names the username: {}", second.body);
    assert!(second.body.contains("replaces") && second.body.contains("@owen"), "says what it replaces: {}", second.body);

    // The new details cannot be slipped in under the old code.
    let new_code = app.code_for("owen@example.com");
    if owners_code != new_code {
        assert_problem(app.verify("owen@example.com", &owners_code).await, 400, "invalid_code").await;
    }
    let r = app.post_json("/api/v1/login", &json!({"username": "owen", "password": PASSWORD})).await;
    assert_problem(r, 401, "invalid_credentials").await;
}
