//! Tweets: posting (JSON or multipart with media), reading, deleting, the
//! home timeline, likes and views.

use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{AuthUser, MaybeAuthUser, parse_id};
use super::media::MediaBody;
use super::pages::{PageBody, PageQuery};
use super::users::UserBody;
use super::{ApiResult, AppState, Problem};
use crate::domain::{FieldErrors, Id, Timestamp, Tweet};
use crate::error::Error;
use crate::services::pages::page_request;
use crate::services::tweets::{Change, Tweets};

/// A tweet, with its author and media.
#[derive(Serialize, ToSchema)]
pub struct TweetBody {
    #[schema(value_type = String, example = "7294638123456512")]
    id: Id,
    author: UserBody,
    content: String,
    media: Vec<MediaBody>,
    like_count: i64,
    view_count: i64,
    /// Whether the caller likes it; false without a token.
    liked_by_me: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl TweetBody {
    pub fn new(t: Tweet, media_base: &str) -> Self {
        Self {
            id: t.id,
            author: UserBody::public(t.author),
            content: t.content,
            media: t.media.into_iter().map(|m| MediaBody::new(m, media_base)).collect(),
            like_count: t.like_count,
            view_count: t.view_count,
            liked_by_me: t.liked_by_me,
            created_at: t.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewTweetRequest {
    /// 1–280 characters after trimming.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "hello, world")]
    content: Option<String>,
}

/// The multipart form of a new tweet (`multipart/form-data`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewTweetForm {
    /// Up to 280 characters; may be empty when media is attached.
    content: Option<String>,
    /// Up to 4 images (JPEG, PNG, GIF, WebP) or 1 video (MP4, QuickTime, WebM). Repeat the field for several.
    #[schema(value_type = Vec<String>, format = Binary)]
    media: Vec<Vec<u8>>,
    /// Optional, after a `media` file: its alt text (up to 1,500 characters).
    description: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ViewCount {
    view_count: i64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TweetQuery {
    /// Words (all must match) or a "quoted phrase".
    search: Option<String>,
    /// Only this author's tweets.
    author_id: Option<String>,
    /// Items per page, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Opaque; the `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn tweet_body(state: &AppState, tweet: Tweet) -> TweetBody {
    TweetBody::new(tweet, &state.media_base)
}

/// Post a tweet: JSON `{"content"}`, or `multipart/form-data` with `content` and `media` files.
#[utoipa::path(post, path = "/api/v1/tweet", tag = "tweets", security(("bearer" = [])),
    request_body(content((NewTweetRequest = "application/json"), (NewTweetForm = "multipart/form-data"))),
    responses(
        (status = 201, description = "Posted", body = TweetBody),
        (status = 400, description = "Malformed JSON or multipart body", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the file's bytes are not a supported image or video", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` or `invalid_media`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post_tweet(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    request: Request,
) -> ApiResult<(StatusCode, axum::Json<TweetBody>)> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    let essence = content_type.as_deref().map(|ct| ct.split(';').next().unwrap_or_default().trim().to_owned());
    let is_multipart = essence.as_deref() == Some("multipart/form-data");
    if let Some(essence) = essence.as_deref()
        && !is_multipart
        && essence != "application/json"
        && !essence.ends_with("+json")
    {
        return Err(Error::UnsupportedMediaType(format!("send application/json or multipart/form-data, not {essence:?}")));
    }
    let tweet = if is_multipart {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| Error::BadRequest("malformed_multipart", e.body_text()))?;
        super::media::post_with_media(&state, me, multipart).await?
    } else {
        let limit = state.json_body_limit;
        let body = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| Error::PayloadTooLarge("the request body is too large".into()))?;
        let req: NewTweetRequest = super::extract::parse_json(&body)?;
        let text = Tweets::check_text(req.content.as_deref())?;
        state.tweets.post(me, text, Vec::new()).await?
    };
    Ok((StatusCode::CREATED, axum::Json(tweet_body(&state, tweet))))
}

/// A tweet, by id.
#[utoipa::path(get, path = "/api/v1/tweet/{id}", tag = "tweets",
    params(("id" = String, Path, description = "Tweet id")),
    responses(
        (status = 200, body = TweetBody),
        (status = 401, description = "A token was sent but is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_tweet(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TweetBody>> {
    let tweet = state.tweets.get(parse_id(&id)?, viewer.0).await?;
    Ok(axum::Json(tweet_body(&state, tweet)))
}

/// Delete your own tweet, with its likes and media.
#[utoipa::path(delete, path = "/api/v1/tweet/{id}", tag = "tweets", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tweet id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not the author", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_tweet(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let media = state.tweets.delete(parse_id(&id)?, me).await?;
    super::media::remove_files(&state, &media).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Tweets, newest first: everyone's, one author's (`author_id`), or those matching `search`.
#[utoipa::path(get, path = "/api/v1/tweet", tag = "tweets",
    params(TweetQuery),
    responses(
        (status = 200, body = PageBody<TweetBody>),
        (status = 401, description = "A token was sent but is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`bad_request`: a malformed query string (a parameter given twice, say)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit`, `cursor`, `author_id` or `search`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_tweets(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Query(query): Query<TweetQuery>,
) -> ApiResult<axum::Json<PageBody<TweetBody>>> {
    let page = page_request(query.limit.as_deref(), query.cursor.as_deref())?;
    let author = match query.author_id.as_deref() {
        None | Some("") => None,
        Some(raw) => {
            Some(raw.parse::<Id>().map_err(|_| Error::Validation(FieldErrors::single("author_id", "is not a user id")))?)
        }
    };
    let page = match query.search.as_deref() {
        Some(search) => state.search.tweets(search, author, page, viewer.0).await?,
        None => state.tweets.list(author, page, viewer.0).await?,
    };
    Ok(axum::Json(PageBody::from_page(page, |t| tweet_body(&state, t))))
}

/// The caller's home timeline: tweets of the accounts they follow and their own, newest first.
#[utoipa::path(get, path = "/api/v1/timeline", tag = "tweets", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = PageBody<TweetBody>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`bad_request`: a malformed query string (a parameter given twice, say)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn timeline(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Query(page): Query<PageQuery>,
) -> ApiResult<axum::Json<PageBody<TweetBody>>> {
    let page = state.tweets.timeline(me, page.request()?).await?;
    Ok(axum::Json(PageBody::from_page(page, |t| tweet_body(&state, t))))
}

/// Like a tweet: 201 the first time, 200 if already liked.
#[utoipa::path(post, path = "/api/v1/tweet/{id}/like", tag = "tweets", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tweet id")),
    responses(
        (status = 201, description = "Liked", body = TweetBody),
        (status = 200, description = "Was already liked", body = TweetBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn like(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<TweetBody>)> {
    let (change, tweet) = state.tweets.like(me, parse_id(&id)?).await?;
    let status = if change == Change::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(tweet_body(&state, tweet))))
}

/// Take back a like: 204, also when not liked.
#[utoipa::path(delete, path = "/api/v1/tweet/{id}/unlike", tag = "tweets", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tweet id")),
    responses(
        (status = 204, description = "Not liked (any more)"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unlike(State(state): State<AppState>, AuthUser(me): AuthUser, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.tweets.unlike(me, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Count one view; every call counts exactly once. No token needed.
#[utoipa::path(patch, path = "/api/v1/tweet/{id}/views", tag = "tweets",
    params(("id" = String, Path, description = "Tweet id")),
    responses(
        (status = 200, description = "The count including this view", body = ViewCount),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable; the view was not counted", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn view(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<ViewCount>> {
    let view_count = state.tweets.view(parse_id(&id)?).await?;
    Ok(axum::Json(ViewCount { view_count }))
}
