//! The caller's profile (name, bio, avatar) and users by username.

use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{StatusCode, header};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{AuthUser, Json, MaybeAuthUser};
use super::users::UserBody;
use super::{ApiResult, AppState, Problem};
use crate::domain::{FieldErrors, User};
use crate::error::Error;
use crate::services::profiles::ProfileEdit;

#[derive(Deserialize, ToSchema)]
pub struct ProfileRequest {
    /// 1–50 characters after trimming.
    #[schema(example = "Alice Liddell")]
    name: Option<String>,
    /// Up to 160 characters after trimming; may be empty. Line breaks are kept.
    #[schema(example = "Curiouser and curiouser.")]
    bio: Option<String>,
}

/// The multipart form of an avatar upload (`multipart/form-data`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AvatarForm {
    /// One JPEG, PNG, GIF or WebP image; stored as its center square, 400x400 pixels, without metadata.
    #[schema(value_type = String, format = Binary)]
    avatar: Vec<u8>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// The username, in any case.
    #[param(required = true, example = "alice")]
    username: Option<String>,
}

fn me_body(state: &AppState, user: User) -> axum::Json<UserBody> {
    axum::Json(UserBody::private(user, &state.media_base))
}

/// Change your display name and/or bio; fields left out stay as they are.
#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])), request_body = ProfileRequest,
    responses(
        (status = 200, description = "The caller, as changed", body = UserBody),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, naming each bad field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn edit_me(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Json(req): Json<ProfileRequest>,
) -> ApiResult<axum::Json<UserBody>> {
    let user = state.profiles.edit(me, ProfileEdit { name: req.name, bio: req.bio }).await?;
    Ok(me_body(&state, user))
}

fn bad_multipart(e: axum::extract::multipart::MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge("the upload is too large".into())
    } else {
        Error::BadRequest("malformed_multipart", format!("the multipart body could not be read: {}", e.body_text()))
    }
}

/// Reads the form: exactly one `avatar` file (other fields are ignored);
/// returns the key of the stored avatar, which the caller must use or discard.
async fn read_avatar_form(state: &AppState, mut multipart: Multipart) -> Result<String, Error> {
    let mut stored: Option<String> = None;
    let result = async {
        while let Some(mut field) = multipart.next_field().await.map_err(bad_multipart)? {
            if field.name() != Some("avatar") {
                while field.chunk().await.map_err(bad_multipart)?.is_some() {}
                continue;
            }
            if stored.is_some() {
                return Err(Error::Validation(FieldErrors::single("avatar", "send one file")));
            }
            stored = Some(state.profiles.store_avatar(&mut field).await?);
        }
        Ok(())
    }
    .await;
    match (result, stored) {
        (Ok(()), Some(key)) => Ok(key),
        (Ok(()), None) => Err(Error::Validation(FieldErrors::single("avatar", "is required: one image file"))),
        (Err(e), stored) => {
            if let Some(key) = stored {
                state.profiles.discard_avatar(&key).await;
            }
            Err(e)
        }
    }
}

/// Upload your avatar: one image in the `avatar` field of a `multipart/form-data` body.
#[utoipa::path(put, path = "/api/v1/me/avatar", tag = "accounts", security(("bearer" = [])),
    request_body(content = AvatarForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The caller, with the new `avatar_url`", body = UserBody),
        (status = 400, description = "`malformed_multipart`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: over the image size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: not multipart, or the file's bytes are not a supported image", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_media` (corrupt, or over the pixel limit) or `validation_failed` (no `avatar` file, or several)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_avatar(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    request: Request,
) -> ApiResult<axum::Json<UserBody>> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence != "multipart/form-data" {
        return Err(Error::UnsupportedMediaType(format!("send multipart/form-data with an `avatar` file, not {essence:?}")));
    }
    let multipart =
        Multipart::from_request(request, &state).await.map_err(|e| Error::BadRequest("malformed_multipart", e.body_text()))?;
    let key = read_avatar_form(&state, multipart).await?;
    let user = state.profiles.set_avatar(me, &key).await?;
    Ok(me_body(&state, user))
}

/// Remove your avatar.
#[utoipa::path(delete, path = "/api/v1/me/avatar", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller, with `avatar_url` null", body = UserBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_avatar(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<axum::Json<UserBody>> {
    let user = state.profiles.remove_avatar(me).await?;
    Ok(me_body(&state, user))
}

/// A user by username, in any case. With a token, says whether the caller follows them.
#[utoipa::path(get, path = "/api/v1/user/lookup", tag = "users", params(LookupQuery),
    responses(
        (status = 200, body = UserBody),
        (status = 401, description = "A token was sent but is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: no `username`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn lookup(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Query(query): Query<LookupQuery>,
) -> ApiResult<axum::Json<UserBody>> {
    let Some(username) = query.username else {
        return Err(Error::Validation(FieldErrors::single("username", "is required")));
    };
    let user = state.profiles.by_username(&username).await?;
    let view = state.graph.views(vec![user], viewer.0).await?.pop().ok_or(Error::NotFound)?;
    Ok(axum::Json(super::graph::body(&state, view)))
}
