//! Multipart tweets (text, files through the media pipeline, alt text),
//! alt text edits, and serving stored media.

use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{AuthUser, Json, parse_id};
use super::{ApiResult, AppState, Problem};
use crate::domain::{AltText, FieldErrors, Id, Media, MediaKind, Tweet};
use crate::error::Error;
use crate::ports::media_store::{MediaStoreError, valid_key};
use crate::services::media::check_counts;
use crate::services::tweets::Tweets;

/// An image, video or gifv (an animated image served as a looping MP4) attached to a tweet.
#[derive(Serialize, ToSchema)]
pub struct MediaBody {
    #[schema(value_type = String)]
    id: Id,
    #[schema(value_type = String, example = "image")]
    kind: MediaKind,
    /// The type of what `url` serves (`video/mp4` for a gifv).
    #[schema(example = "image/jpeg")]
    content_type: String,
    /// Fetch with a plain GET; relative to this server unless `CHIRP_PUBLIC_URL` is set.
    /// A gifv's MP4 is made just after the tweet is posted: until it is
    /// written, its `url` answers 503 `rendition_pending` with `Retry-After`.
    #[schema(example = "/media/7294638123456512.jpg")]
    url: String,
    /// A gifv's is its original's until its MP4 is written.
    size_bytes: i64,
    width: Option<i64>,
    height: Option<i64>,
    /// Videos and gifvs.
    duration_ms: Option<i64>,
    /// A JPEG: an image's thumbnail (400 px), a video's poster frame, a gifv's first frame.
    thumbnail_url: Option<String>,
    thumbnail_width: Option<i64>,
    thumbnail_height: Option<i64>,
    /// Alt text, up to 1,500 characters.
    description: Option<String>,
    /// A BlurHash (4x3 components) to paint before the bytes arrive.
    #[schema(example = "LEHV6nWB2yk8pyo0adR*.7kCMdnj")]
    blurhash: Option<String>,
    /// A gifv's original animated GIF or WebP.
    #[serde(skip_serializing_if = "Option::is_none")]
    original_url: Option<String>,
}

impl MediaBody {
    pub fn new(m: Media, media_base: &str) -> Self {
        let url = |key: &str| format!("{media_base}/media/{key}");
        Self {
            id: m.id,
            kind: m.kind,
            content_type: m.content_type,
            url: url(&m.key),
            size_bytes: m.size_bytes,
            width: m.width,
            height: m.height,
            duration_ms: m.duration_ms,
            thumbnail_url: m.thumbnail_key.as_deref().map(url),
            thumbnail_width: m.thumbnail_width,
            thumbnail_height: m.thumbnail_height,
            description: m.description.map(|d| d.as_str().to_owned()),
            blurhash: m.blurhash,
            original_url: m.original_key.as_deref().map(url),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct DescribeMediaRequest {
    /// Alt text, up to 1,500 characters; empty or null removes it.
    #[schema(value_type = Option<String>, example = "A heron standing in shallow water")]
    description: Option<String>,
}

/// Set or change the alt text of a media item of your own tweet.
#[utoipa::path(patch, path = "/api/v1/media/{id}", tag = "tweets", security(("bearer" = [])),
    params(("id" = String, Path, description = "Media id")),
    request_body = DescribeMediaRequest,
    responses(
        (status = 200, description = "The media item as changed", body = MediaBody),
        (status = 400, description = "`malformed_json`: a body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not the author of the tweet", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: over 1,500 characters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn describe(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    Json(req): Json<DescribeMediaRequest>,
) -> ApiResult<axum::Json<MediaBody>> {
    let id = parse_id(&id)?;
    let media = state.tweets.describe_media(me, id, req.description.as_deref().unwrap_or("")).await?;
    Ok(axum::Json(MediaBody::new(media, &state.media_base)))
}

/// Longest `content` field accepted in a form, in bytes (the text itself is limited to 280 characters).
const MAX_CONTENT_BYTES: usize = 64 * 1024;
/// Longest `description` field, in bytes (the text itself is limited to 1,500 characters).
const MAX_DESCRIPTION_BYTES: usize = 4 * 1500 + 1024;

fn bad_multipart(e: axum::extract::multipart::MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge("the upload is too large".into())
    } else {
        Error::BadRequest("malformed_multipart", format!("the multipart body could not be read: {}", e.body_text()))
    }
}

/// Reads the form: `content` once, `media` files (also accepted as `media[]`,
/// or `image` / `video` to insist on a kind), each optionally followed by a
/// `description` (its alt text). Text is checked as soon as it
/// arrives; files go through the pipeline one by one, and everything stored
/// is removed again if the post fails.
pub async fn post_with_media(state: &AppState, me: Id, mut multipart: Multipart) -> Result<Tweet, Error> {
    let mut stored: Vec<Media> = Vec::new();
    let result = async {
        let mut text = None;
        while let Some(mut field) = multipart.next_field().await.map_err(bad_multipart)? {
            let name = field.name().unwrap_or_default().to_owned();
            let expected = match name.as_str() {
                "content" => {
                    if text.is_some() {
                        return Err(Error::Validation(FieldErrors::single("content", "must be sent once")));
                    }
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
                        if bytes.len() + chunk.len() > MAX_CONTENT_BYTES {
                            return Err(Error::Validation(FieldErrors::single("content", "must be at most 280 characters")));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    let s = String::from_utf8(bytes)
                        .map_err(|_| Error::Validation(FieldErrors::single("content", "must be UTF-8 text")))?;
                    text = Some(Tweets::check_text(Some(&s))?);
                    continue;
                }
                "description" | "description[]" => {
                    let Some(last) = stored.last_mut() else {
                        return Err(Error::Validation(FieldErrors::single(
                            "description",
                            "must follow the media file it describes",
                        )));
                    };
                    if last.description.is_some() {
                        return Err(Error::Validation(FieldErrors::single("description", "one per media file")));
                    }
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
                        if bytes.len() + chunk.len() > MAX_DESCRIPTION_BYTES {
                            return Err(Error::Validation(FieldErrors::single("description", "must be at most 1500 characters")));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    let s = String::from_utf8(bytes)
                        .map_err(|_| Error::Validation(FieldErrors::single("description", "must be UTF-8 text")))?;
                    last.description =
                        AltText::parse(&s).map_err(|e| Error::Validation(FieldErrors::single("description", e.to_string())))?;
                    continue;
                }
                "media" | "media[]" => None,
                "image" => Some(MediaKind::Image),
                "video" => Some(MediaKind::Video),
                other => {
                    let field = if other.is_empty() { "form" } else { other };
                    return Err(Error::Validation(FieldErrors::single(field, "unknown field: send `content` and `media`")));
                }
            };
            // Refuse a fifth image, or anything beside a video, before reading the file.
            let images = stored.iter().filter(|m| m.kind.is_image_like()).count();
            let videos = stored.len() - images;
            match expected {
                Some(MediaKind::Video) => check_counts(images, videos + 1)?,
                _ => check_counts(images + 1, videos)?,
            }
            let staged = state.media.stage(&mut field).await?;
            let media = state.media.process(staged, expected).await?;
            stored.push(media);
            let images = stored.iter().filter(|m| m.kind.is_image_like()).count();
            check_counts(images, stored.len() - images)?;
        }
        let text = match text {
            Some(t) => t,
            None => Tweets::check_text(None)?,
        };
        state.tweets.post(me, text, stored.clone()).await
    }
    .await;
    match &result {
        Err(_) => state.media.remove(&stored).await,
        Ok(_) if stored.iter().any(|m| m.kind == MediaKind::Gifv) => state.renditions.wake(),
        Ok(_) => {}
    }
    result
}

/// Removes the files of deleted media; failures are logged, never surfaced.
pub async fn remove_files(state: &AppState, media: &[Media]) {
    state.media.remove(media).await;
}

fn content_type_of(key: &str) -> &'static str {
    match key.rsplit_once('.').map(|(_, ext)| ext) {
        Some("jpg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("mp4") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("webm") => "video/webm",
        _ => "application/octet-stream",
    }
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` against an object of `total` bytes.
/// `Err(())` is unsatisfiable; several ranges are answered with the whole object.
fn parse_range(value: &str, total: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (total.saturating_sub(n), total.checked_sub(1).ok_or(())?)
        }
        (a, "") => (a.parse().map_err(|_| ())?, total.checked_sub(1).ok_or(())?),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().map_err(|_| ())?, b.parse().map_err(|_| ())?);
            (a, b.min(total.saturating_sub(1)))
        }
    };
    if start > end || start >= total {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// A gifv's MP4 still being made: 503 with Retry-After, not cached. It is
/// asked before the object is looked for, since the MP4 is stored a moment
/// before the tweet is told its size.
async fn still_being_made(state: &AppState, key: &str) -> Option<Response> {
    match state.renditions.pending(key).await {
        Ok(true) => {
            let mut r = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "rendition_pending",
                "this video is still being made from the animated image (its `original_url` is ready); try again shortly",
            )
            .into_response();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Some(r)
        }
        Ok(false) => None,
        Err(e) => Some(e.into_response()),
    }
}

/// A stored image or video. Keys never change content, so the key is the
/// ETag and responses may be cached for a year. Supports single byte ranges.
pub async fn serve(State(state): State<AppState>, Path(key): Path<String>, headers: HeaderMap) -> Response {
    if !valid_key(&key) {
        return Error::NotFound.into_response();
    }
    if let Some(pending) = still_being_made(&state, &key).await {
        return pending;
    }
    let store = state.media.store();
    let etag = format!("\"{key}\"");
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type_of(&key)));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("keys are ASCII"));
    let total = match store.size(&key).await {
        Ok(total) => total,
        Err(MediaStoreError::NotFound) => return Error::NotFound.into_response(),
        Err(e) => return Error::Unavailable { what: "the media store", source: e.into() }.into_response(),
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => match parse_range(value, total) {
            Ok(range) => range,
            Err(()) => {
                // A problem body: none of the file's headers (its type, its caching) apply to it.
                let mut r =
                    Problem::new(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable", "the range is outside the file")
                        .into_response();
                r.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{total}")).expect("ASCII"));
                r.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                return r;
            }
        },
    };
    let opened = match store.open(&key, range).await {
        Ok(o) => o,
        Err(MediaStoreError::NotFound) => return Error::NotFound.into_response(),
        Err(e) => return Error::Unavailable { what: "the media store", source: e.into() }.into_response(),
    };
    let (status, length) = match range {
        Some((start, end)) => {
            response_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{end}/{}", opened.total)).expect("ASCII"),
            );
            (StatusCode::PARTIAL_CONTENT, end - start + 1)
        }
        None => (StatusCode::OK, opened.total),
    };
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    (status, response_headers, Body::from_stream(opened.stream)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_against_the_size() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-1", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
    }
}
