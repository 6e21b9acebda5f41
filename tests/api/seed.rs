//! `chirp-seed` builds a data set as consistent as the service's own writes:
//! every counter equals the rows it counts, and chirp serves it.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_seeded_data_set_is_consistent_and_served() {
    // An app on a fresh database (SQLite, or PostgreSQL in the PG run), stopped, then seeded.
    let app = TestApp::spawn().await;
    let url = app.config.database_url();
    let status = Command::new(env!("CARGO_BIN_EXE_chirp-seed"))
        .args(["--users", "300", "--tweets", "3000", "--database-url", &url])
        .env_remove("CHIRP_DATA_DIR")
        .status()
        .expect("run chirp-seed");
    assert!(status.success());

    let queries = [
        "SELECT count(*) FROM users u WHERE followers_count <> (SELECT count(*) FROM follows WHERE followee_id = u.id)",
        "SELECT count(*) FROM users u WHERE followings_count <> (SELECT count(*) FROM follows WHERE follower_id = u.id)",
        "SELECT count(*) FROM users u WHERE tweets_count <> (SELECT count(*) FROM tweets WHERE author_id = u.id)",
        "SELECT count(*) FROM tweets t WHERE like_count <> (SELECT count(*) FROM likes WHERE tweet_id = t.id)",
        "SELECT count(*) FROM users",
        "SELECT count(*) FROM tweets",
    ];
    let mut mismatches = Vec::new();
    for query in queries {
        let n: i64 = if url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query_scalar(query).fetch_one(&pool).await.unwrap()
        } else {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query_scalar(query).fetch_one(&pool).await.unwrap()
        };
        mismatches.push((query, n));
    }
    for (query, n) in &mismatches[..4] {
        assert_eq!(*n, 0, "rows whose counter is wrong: {query}");
    }
    assert_eq!((mismatches[4].1, mismatches[5].1), (300, 3000));

    // chirp serves the seeded users: log in with the seed's password, read a timeline.
    let (_, users) = app.get_json("/api/v1/user?limit=1", None).await;
    let username = users["data"][0]["username"].as_str().unwrap().to_owned();
    let r = app.post_json("/api/v1/login", &json!({"username": username, "password": "bench-password"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let (status, page) = app.get_json("/api/v1/timeline?limit=5", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page["data"].as_array().is_some());
}
