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

    // PostgreSQL keeps a tweet's counts in a table of their own, one row a tweet.
    let tweet_counts = if url.starts_with("postgres") {
        "SELECT count(*) FROM tweets t LEFT JOIN tweet_counts c ON c.tweet_id = t.id \
         WHERE c.like_count IS DISTINCT FROM (SELECT count(*) FROM likes WHERE tweet_id = t.id)"
    } else {
        "SELECT count(*) FROM tweets t WHERE like_count <> (SELECT count(*) FROM likes WHERE tweet_id = t.id)"
    };
    let queries = [
        "SELECT count(*) FROM users u WHERE followers_count <> (SELECT count(*) FROM follows WHERE followee_id = u.id)",
        "SELECT count(*) FROM users u WHERE followings_count <> (SELECT count(*) FROM follows WHERE follower_id = u.id)",
        "SELECT count(*) FROM users u WHERE tweets_count <> (SELECT count(*) FROM tweets WHERE author_id = u.id)",
        tweet_counts,
    ];
    for query in queries {
        assert_eq!(app.db_scalars(query).await, [0], "rows whose counter is wrong: {query}");
    }
    assert_eq!(app.db_scalars("SELECT count(*) FROM users").await, [300]);
    assert_eq!(app.db_scalars("SELECT count(*) FROM tweets").await, [3000]);

    // chirp serves the seeded data: a user who follows someone with tweets
    // logs in with the seed's password and reads exactly the timeline the
    // rows say: the newest tweets of the accounts they follow and their own.
    let follower = "SELECT u.id FROM users u WHERE EXISTS \
        (SELECT 1 FROM follows f JOIN tweets t ON t.author_id = f.followee_id WHERE f.follower_id = u.id) ORDER BY u.id LIMIT 1";
    let user = *app.db_scalars(follower).await.first().expect("the seed made someone follow an author");
    let expected = app
        .db_scalars(&format!(
            "SELECT id FROM tweets WHERE author_id = {user} \
             OR author_id IN (SELECT followee_id FROM follows WHERE follower_id = {user}) ORDER BY id DESC LIMIT 5"
        ))
        .await;
    let (_, profile) = app.get_json(&format!("/api/v1/user/{user}"), None).await;
    let username = profile["username"].as_str().expect("the seeded user is served").to_owned();
    let r = app.post_json("/api/v1/login", &json!({"username": username, "password": "bench-password"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let (status, page) = app.get_json("/api/v1/timeline?limit=5", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let served: Vec<i64> = page["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().parse().unwrap()).collect();
    assert!(!served.is_empty(), "the timeline of a user who follows an author is not empty");
    assert_eq!(served, expected, "the timeline is the newest tweets of the followed and self");
}
