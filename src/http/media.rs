//! Multipart tweets (text and files through the media pipeline) and
//! serving stored media.

use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, Problem};
use crate::domain::{FieldErrors, Id, Media, MediaKind, Tweet};
use crate::error::Error;
use crate::ports::media_store::{MediaStoreError, valid_key};
use crate::services::media::check_counts;
use crate::services::tweets::Tweets;

/// Longest `content` field accepted in a form, in bytes (the text itself is limited to 280 characters).
const MAX_CONTENT_BYTES: usize = 64 * 1024;

fn bad_multipart(e: axum::extract::multipart::MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge("the upload is too large".into())
    } else {
        Error::BadRequest("malformed_multipart", format!("the multipart body could not be read: {}", e.body_text()))
    }
}

/// Reads the form: `content` once, `media` files (also accepted as `media[]`,
/// or `image` / `video` to insist on a kind). Text is checked as soon as it
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
                "media" | "media[]" => None,
                "image" => Some(MediaKind::Image),
                "video" => Some(MediaKind::Video),
                other => {
                    let field = if other.is_empty() { "form" } else { other };
                    return Err(Error::Validation(FieldErrors::single(field, "unknown field: send `content` and `media`")));
                }
            };
            // Refuse a fifth image, or anything beside a video, before reading the file.
            let images = stored.iter().filter(|m| m.kind == MediaKind::Image).count();
            let videos = stored.len() - images;
            match expected {
                Some(MediaKind::Video) => check_counts(images, videos + 1)?,
                _ => check_counts(images + 1, videos)?,
            }
            let staged = state.media.stage(&mut field).await?;
            let media = state.media.process(staged, expected).await?;
            stored.push(media);
            let images = stored.iter().filter(|m| m.kind == MediaKind::Image).count();
            check_counts(images, stored.len() - images)?;
        }
        let text = match text {
            Some(t) => t,
            None => Tweets::check_text(None)?,
        };
        state.tweets.post(me, text, stored.clone()).await
    }
    .await;
    if result.is_err() {
        state.media.remove(&stored).await;
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

/// A stored image or video. Keys never change content, so the key is the
/// ETag and responses may be cached for a year. Supports single byte ranges.
pub async fn serve(State(state): State<AppState>, Path(key): Path<String>, headers: HeaderMap) -> Response {
    if !valid_key(&key) {
        return Error::NotFound.into_response();
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
