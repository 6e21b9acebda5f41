//! Search, the same on both databases.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem};

fn contents(page: &Value) -> Vec<String> {
    contents_of(page["data"].as_array().unwrap())
}

fn contents_of(tweets: &[Value]) -> Vec<String> {
    tweets.iter().map(|t| t["content"].as_str().unwrap().to_owned()).collect()
}

fn usernames(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect()
}

async fn search_tweets(app: &TestApp, q: &str) -> Vec<String> {
    let url = reqwest::Url::parse_with_params(&app.url("/api/v1/tweet"), &[("search", q), ("limit", "100")]).unwrap();
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "searching {q:?}");
    contents(&r.json().await.unwrap())
}

#[tokio::test]
async fn tweets_match_all_words_whole_words_ignoring_case_newest_first() {
    let app = TestApp::spawn().await;
    let (_, t) = app.sign_up("writer").await;
    for text in ["The cat sat", "A category of things", "cat and dog", "DOG and Cat together", "dogs only"] {
        app.tweet(&t, text).await;
    }
    assert_eq!(search_tweets(&app, "cat").await, ["DOG and Cat together", "cat and dog", "The cat sat"]);
    assert_eq!(search_tweets(&app, "dog CAT").await, ["DOG and Cat together", "cat and dog"]);
    assert_eq!(search_tweets(&app, "dog").await, ["DOG and Cat together", "cat and dog"], "whole words: not `dogs`");
    assert!(search_tweets(&app, "cat fish").await.is_empty());
}

#[tokio::test]
async fn quoted_phrases_match_adjacent_words_in_order() {
    let app = TestApp::spawn().await;
    let (_, t) = app.sign_up("writer").await;
    for text in ["big red dog", "red big dog", "big dog, red"] {
        app.tweet(&t, text).await;
    }
    assert_eq!(search_tweets(&app, "\"big red\"").await, ["big red dog"]);
    assert_eq!(search_tweets(&app, "dog \"red big\"").await, ["red big dog"]);
    assert_eq!(search_tweets(&app, "\"big red").await, ["big red dog"], "an unbalanced quote runs to the end");
}

#[tokio::test]
async fn search_is_unicode_aware() {
    let app = TestApp::spawn().await;
    let (_, t) = app.sign_up("writer").await;
    for text in ["Do'stlar bilan uchrashdik", "Привет, мир!", "Un café très noir", "do’stlarim keldi"] {
        app.tweet(&t, text).await;
    }
    assert_eq!(search_tweets(&app, "do'stlar").await, ["Do'stlar bilan uchrashdik"]);
    assert_eq!(search_tweets(&app, "DOʻSTLAR").await, ["Do'stlar bilan uchrashdik"], "any apostrophe, any case");
    assert_eq!(search_tweets(&app, "do'stlarim").await, ["do’stlarim keldi"]);
    assert_eq!(search_tweets(&app, "мир привет").await, ["Привет, мир!"]);
    assert_eq!(search_tweets(&app, "\"привет мир\"").await, ["Привет, мир!"]);
    assert_eq!(search_tweets(&app, "cafe").await, ["Un café très noir"]);
    assert_eq!(search_tweets(&app, "CAFÉ TRES").await, ["Un café très noir"]);
}

#[tokio::test]
async fn tweet_search_pages_combines_with_author_and_forgets_deleted_tweets() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.sign_up("alice").await;
    let (_, bob) = app.sign_up("bob").await;
    let mut alices = Vec::new();
    for i in 0..5 {
        alices.push(app.tweet(&alice, &format!("news {i}")).await["id"].as_str().unwrap().to_owned());
        app.tweet(&bob, &format!("news from bob {i}")).await;
    }
    let seen = app.every_page(&format!("/api/v1/tweet?search=news&author_id={alice_id}&limit=2"), None).await;
    assert_eq!(contents_of(&seen), ["news 4", "news 3", "news 2", "news 1", "news 0"]);

    app.client.delete(app.url(&format!("/api/v1/tweet/{}", alices[4]))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(search_tweets(&app, "news").await.len(), 9);
    assert!(!search_tweets(&app, "news 4").await.contains(&"news 4".to_owned()));
}

/// Query-language syntax, SQL and wildcards in search text are plain text:
/// each query answers 200 with exactly the tweets (and users) holding its
/// words, and text without words matches nothing (never everything).
#[tokio::test]
async fn hostile_search_text_is_harmless() {
    let app = TestApp::spawn().await;
    let (_, t) = app.sign_up("writer").await;
    app.sign_up("under_score").await;
    const ORDINARY: &str = "an ordinary tweet about NEAR and OR";
    const PERCENT: &str = "50% off, only_today";
    const SQL: &str = "DROP TABLE tweets; -- classic";
    const FTS: &str = "NEAR(a b) col:tweet";
    const STARS: &str = "tweet* stars ^tweet";
    const BIRDS: &str = "🐦🐦 birds";
    const LOGIC: &str = "a & b | !c";
    for text in [ORDINARY, PERCENT, SQL, FTS, STARS, BIRDS, LOGIC] {
        app.tweet(&t, text).await;
    }
    let nothing: &[&str] = &[];
    // (query, tweets found newest first, users found)
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("\"", nothing, nothing),
        ("\"\"", nothing, nothing),
        ("'", nothing, nothing),
        ("*", nothing, nothing),
        ("-", nothing, nothing),
        ("-tweet", &[STARS, FTS, ORDINARY], nothing),
        ("OR", &[ORDINARY], &["under_score"]),
        ("AND", &[ORDINARY], nothing),
        ("NOT", nothing, nothing),
        ("NEAR", &[FTS, ORDINARY], nothing),
        ("NEAR/2", nothing, nothing),
        ("NEAR(a b)", &[FTS], nothing),
        ("%", nothing, nothing),
        ("_", nothing, &["under_score"]),
        ("%_%", nothing, nothing),
        ("50%", &[PERCENT], nothing),
        ("only_today", &[PERCENT], nothing),
        ("(", nothing, nothing),
        (")", nothing, nothing),
        ("())(", nothing, nothing),
        ("'; DROP TABLE tweets; --", &[SQL], nothing),
        ("tweet*", &[STARS, FTS, ORDINARY], nothing),
        ("^tweet", &[STARS, FTS, ORDINARY], nothing),
        ("col:tweet", &[FTS], nothing),
        ("🐦🐦", nothing, nothing),
        ("\\", nothing, nothing),
        ("a & b | !c", &[LOGIC], nothing),
        ("<->", nothing, nothing),
        (":*", nothing, nothing),
        ("'''", nothing, nothing),
        ("tweet \"", &[STARS, FTS, ORDINARY], nothing),
        ("{}", nothing, nothing),
        ("[]", nothing, nothing),
    ];
    for (q, tweets, users) in cases {
        assert_eq!(search_tweets(&app, q).await, *tweets, "tweets for {q:?}");
        let url = reqwest::Url::parse_with_params(&app.url("/api/v1/user"), &[("search", *q)]).unwrap();
        let r = app.client.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "users {q:?}");
        assert_eq!(usernames(&r.json().await.unwrap()), *users, "users for {q:?}");
    }
    assert_eq!(search_tweets(&app, "NEAR OR").await, [ORDINARY], "operators are words");
    // Nothing in the queries above changed the data.
    assert_eq!(search_tweets(&app, "tweets").await, [SQL]);
    assert_eq!(app.get_json("/api/v1/tweet?limit=100", None).await.1["data"].as_array().unwrap().len(), 7);
    let long = "x".repeat(2000);
    let url = reqwest::Url::parse_with_params(&app.url("/api/v1/tweet"), &[("search", long.as_str())]).unwrap();
    let body = assert_problem(app.client.get(url).send().await.unwrap(), 422, "validation_failed").await;
    assert!(body["errors"]["search"].is_array());
    let url = reqwest::Url::parse_with_params(&app.url("/api/v1/user"), &[("search", long.as_str())]).unwrap();
    assert_problem(app.client.get(url).send().await.unwrap(), 422, "validation_failed").await;
}

#[tokio::test]
async fn users_are_found_by_part_of_the_username_prefix_matches_first() {
    let app = TestApp::spawn().await;
    for name in ["malice", "Alice", "bob", "alicia", "x_ali_x", "ALIBABA", "al_i"] {
        app.sign_up(name).await;
    }
    let (_, page) = app.get_json("/api/v1/user?search=ALI", None).await;
    assert_eq!(usernames(&page), ["ALIBABA", "Alice", "alicia", "malice", "x_ali_x"]);
    let (_, page) = app.get_json("/api/v1/user?search=_i", None).await;
    assert_eq!(usernames(&page), ["al_i"], "`_` is a literal underscore, not a wildcard");
    let (_, page) = app.get_json("/api/v1/user?search=%25", None).await;
    assert_eq!(usernames(&page), Vec::<String>::new(), "% is literal");

    let seen = app.every_page("/api/v1/user?search=li&limit=2", None).await;
    let seen: Vec<&str> = seen.iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(seen, ["ALIBABA", "Alice", "alicia", "malice", "x_ali_x"]);
    let r = app.client.get(app.url("/api/v1/user?search=li&cursor=nonsense")).send().await.unwrap();
    assert_problem(r, 422, "validation_failed").await;

    let (_, everyone) = app.get_json("/api/v1/user?limit=100", None).await;
    assert_eq!(usernames(&everyone)[0], "al_i", "without search: newest first");
    assert_eq!(usernames(&everyone).len(), 7);
}

/// Every page of a tweet search, 7 tweets a page.
async fn pages(app: &TestApp, q: &str) -> Vec<String> {
    let path = format!("/api/v1/tweet?limit=7&search={}", q.replace(' ', "+").replace('"', "%22"));
    contents_of(&app.every_page(&path, None).await)
}

/// How often /metrics says tweet search took `plan` (PostgreSQL only).
async fn search_plans(app: &TestApp, plan: &str) -> f64 {
    app.metric(&format!("chirp_search_plans_total{{plan=\"{plan}\"}}")).await.unwrap_or(0.0)
}

/// On PostgreSQL, once the table has statistics, a query of common words
/// walks the newest tweets and one with a rarer word looks that word up in
/// the index and checks the common ones on the rows found: both answer the
/// same pages as without statistics.
#[tokio::test]
async fn tweet_search_pages_are_the_same_whichever_plan_the_statistics_pick() {
    let app = TestApp::spawn().await;
    let (_, t) = app.sign_up("writer").await;
    let text = |i: i32| format!("the note {i}{}", if i % 10 == 3 { " kokomapo" } else { "" });
    for i in 0..40 {
        app.tweet(&t, &text(i)).await;
    }
    let every: Vec<String> = (0..40).rev().map(text).collect();
    let rare: Vec<String> = [33, 23, 13, 3].into_iter().map(text).collect();
    let before = (pages(&app, "the").await, pages(&app, "kokomapo the").await, pages(&app, "\"note 13\" the").await);
    assert_eq!(before, (every.clone(), rare.clone(), vec!["the note 13 kokomapo".to_owned()]));

    if app.postgres().is_none() {
        return;
    }
    app.db_scalars("ANALYZE tweets").await;
    // The statistics are read at most once a minute: a new node reads them at its first search.
    let app = app.spawn_peer().await;
    // The metrics are the process's: what changes while the peer searches.
    let plans =
        || async { [search_plans(&app, "walk").await, search_plans(&app, "index").await, search_plans(&app, "planner").await] };
    let counted = plans().await;
    let after = (pages(&app, "the").await, pages(&app, "kokomapo the").await, pages(&app, "\"note 13\" the").await);
    assert_eq!(after, (every, rare, vec!["the note 13 kokomapo".to_owned()]));
    let now = plans().await;
    assert_eq!(now[0] - counted[0], 6.0, "`the`: six pages walked");
    assert_eq!(now[1] - counted[1], 2.0, "`kokomapo` and `13` looked up in the index");
    assert_eq!(now[2] - counted[2], 0.0, "nothing left to PostgreSQL's planner");
}
