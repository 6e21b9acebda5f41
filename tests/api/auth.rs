use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn sign(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[tokio::test]
async fn login_accepts_the_username_in_any_case() {
    let app = TestApp::spawn().await;
    let (id, _) = app.sign_up("lena").await;

    let r = app.post_json("/api/v1/login", &json!({"username": "LENA", "password": "correct horse battery"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], id.as_str());
    assert_eq!(body["token_type"], "Bearer");
    let me = app.get_auth("/api/v1/me", body["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_answers_the_same_for_an_unknown_user_and_a_wrong_password() {
    let app = TestApp::spawn().await;
    app.sign_up("mia").await;

    let wrong = app.post_json("/api/v1/login", &json!({"username": "mia", "password": "wrong password"})).await;
    let unknown = app.post_json("/api/v1/login", &json!({"username": "nobody", "password": "wrong password"})).await;
    let invalid = app.post_json("/api/v1/login", &json!({"username": "not valid!", "password": "x"})).await;
    let wrong = assert_problem(wrong, 401, "invalid_credentials").await;
    let unknown = assert_problem(unknown, 401, "invalid_credentials").await;
    let invalid = assert_problem(invalid, 401, "invalid_credentials").await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, invalid);
}

/// Timing: a login for a user that does not exist runs the same Argon2
/// verification (against a decoy hash) as a wrong password does, so the
/// answer takes as long. Counted, not timed: the times are only printed.
#[tokio::test]
async fn login_checks_a_password_whether_or_not_the_user_exists() {
    let app = TestApp::spawn().await;
    app.sign_up("olga").await;
    for (label, username) in [("wrong password", "olga"), ("unknown user", "nobody"), ("invalid username", "not valid!")] {
        for _ in 0..3 {
            let before = app.accounts.password_checks();
            let started = std::time::Instant::now();
            let r = app.post_json("/api/v1/login", &json!({"username": username, "password": "wrong password"})).await;
            let took = started.elapsed();
            assert_problem(r, 401, "invalid_credentials").await;
            assert_eq!(app.accounts.password_checks() - before, 1, "{label}: one password verification");
            eprintln!("login, {label}: {took:?}");
        }
    }
}

#[tokio::test]
async fn login_requires_both_fields() {
    let app = TestApp::spawn().await;
    let r = app.post_json("/api/v1/login", &json!({"username": "mia"})).await;
    let body = assert_problem(r, 422, "validation_failed").await;
    assert!(body["errors"]["password"].is_array());
}

#[tokio::test]
async fn me_requires_a_valid_token() {
    let app = TestApp::spawn().await;
    let (id, token) = app.sign_up("nina").await;
    let secret = app.jwt_secret();
    let t = now();
    let claims = |sub: &str, iat: i64, exp: i64| json!({"sub": sub, "iss": "chirp", "iat": iat, "nbf": iat, "exp": exp});

    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    let (header, rest) = token.split_once('.').unwrap();
    let payload = rest.split('.').next().unwrap();
    assert!(header.len() > 4);
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    // HS/RS confusion: the same payload and a valid HS256 signature, under a header that says RS256 or HS512.
    let signature = token.rsplit('.').next().unwrap();
    let rs_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let hs512_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS512","typ":"JWT"}"#);
    let cases = [
        ("no header", None),
        ("empty bearer", Some("Bearer ".to_owned())),
        ("wrong scheme", Some(format!("Basic {token}"))),
        ("garbage", Some("Bearer not.a.jwt".to_owned())),
        ("tampered signature", Some(format!("Bearer {tampered}"))),
        ("alg none", Some(format!("Bearer {none_header}.{payload}."))),
        ("alg RS256", Some(format!("Bearer {rs_header}.{payload}.{signature}"))),
        ("alg HS512", Some(format!("Bearer {hs512_header}.{payload}.{signature}"))),
        ("wrong key", Some(format!("Bearer {}", sign(b"some other secret that is long enough", &claims(&id, t, t + 600))))),
        ("expired", Some(format!("Bearer {}", sign(&secret, &claims(&id, t - 7200, t - 3600))))),
        ("not yet valid", Some(format!("Bearer {}", sign(&secret, &claims(&id, t + 3600, t + 7200))))),
        ("unknown user", Some(format!("Bearer {}", sign(&secret, &claims("123456789", t, t + 600))))),
        (
            "wrong issuer",
            Some(format!("Bearer {}", sign(&secret, &json!({"sub": id, "iss": "evil", "iat": t, "nbf": t, "exp": t + 600})))),
        ),
    ];
    for (case, header) in cases {
        let mut req = app.client.get(app.url("/api/v1/me"));
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert_problem(r, 401, "unauthorized").await;
    }
    assert_eq!(app.get_auth("/api/v1/me", &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn auth_endpoints_are_rate_limited_per_client() {
    let app = TestApp::spawn_with(|c| c.auth_rate_limit = 3).await;
    for remaining in (0..3).rev() {
        let r = app.post_json("/api/v1/login", &json!({"username": "x_y_z", "password": "whatever1"})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining.to_string().as_str());
    }
    let r = app.post_json("/api/v1/login", &json!({"username": "x_y_z", "password": "whatever1"})).await;
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry after {retry}");
    assert_problem(r, 429, "rate_limited").await;
    // Each endpoint has its own allowance.
    let r = app.register("olga@example.com", "olga", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_token_from_a_node_whose_clock_is_a_few_seconds_ahead_is_accepted() {
    let app = TestApp::spawn().await;
    let (id, _) = app.sign_up("quick_clock").await;
    let secret = app.jwt_secret();
    let claims = |at: i64| json!({"sub": id, "iss": "chirp", "iat": at, "nbf": at, "exp": at + 600});

    // What a node 3 s ahead issues now is valid here at once.
    let ahead = sign(&secret, &claims(now() + 3));
    assert_eq!(app.get_auth("/api/v1/me", &ahead).await.status(), StatusCode::OK);
    // Beyond the leeway it is not valid yet.
    let far = sign(&secret, &claims(now() + 30));
    assert_problem(app.get_auth("/api/v1/me", &far).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn logins_beyond_the_password_queue_are_answered_503_with_retry_after() {
    // The smallest queue: one login may wait for a hashing thread.
    let app = TestApp::spawn_with(|c| c.password_queue = 1).await;
    let login = json!({"username": "nobody", "password": "whatever1"});
    let logins = (0..24).map(|_| app.post_json("/api/v1/login", &login));
    let responses = futures::future::join_all(logins).await;
    let busy: Vec<_> = responses.into_iter().filter(|r| r.status() != StatusCode::UNAUTHORIZED).collect();
    assert!(!busy.is_empty(), "24 concurrent logins on a few threads and a queue of one: some must be refused");
    for r in busy {
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1);
        assert_problem(r, 503, "service_unavailable").await;
    }
    // Once the burst is over, logins are checked again.
    let r = app.post_json("/api/v1/login", &json!({"username": "nobody", "password": "whatever1"})).await;
    assert_problem(r, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn auth_rate_limits_are_shared_by_nodes_on_one_redis() {
    let a = TestApp::spawn_with(|c| c.auth_rate_limit = 3).await;
    let b = a.spawn_peer().await;
    let login = json!({"username": "x_y_z", "password": "whatever1"});
    for node in [&a, &b, &a] {
        assert_eq!(node.post_json("/api/v1/login", &login).await.status(), StatusCode::UNAUTHORIZED);
    }
    let r = b.post_json("/api/v1/login", &login).await;
    if a.config.redis_url.is_some() {
        // Three requests spent the client's allowance, whichever node served them.
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "retry after {retry}");
        assert_problem(r, 429, "rate_limited").await;
        assert_problem(a.post_json("/api/v1/login", &login).await, 429, "rate_limited").await;
    } else {
        // Without Redis each node keeps its own count: b has seen one request.
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["x-ratelimit-remaining"], "1");
    }
}
