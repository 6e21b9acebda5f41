//! Users and follows.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::extract::{AuthUser, MaybeAuthUser, parse_id};
use super::pages::{PageBody, PageQuery};
use super::users::UserBody;
use super::{ApiResult, AppState, Problem};
use crate::services::graph::UserView;
use crate::services::tweets::Change;

pub(super) fn body(state: &AppState, view: UserView) -> UserBody {
    UserBody::public(view.user, &state.media_base).followed_by_me(view.followed_by_me)
}

/// A user, by id. With a token, says whether the caller follows them.
#[utoipa::path(get, path = "/api/v1/user/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserBody),
        (status = 401, description = "A token was sent but is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<UserBody>> {
    let view = state.graph.user(parse_id(&id)?, viewer.0).await?;
    Ok(axum::Json(body(&state, view)))
}

/// Follow a user: 201 the first time, 200 if already following.
#[utoipa::path(post, path = "/api/v1/user/{id}/follow", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "Whom to follow")),
    responses(
        (status = 201, description = "Now following", body = UserBody),
        (status = 200, description = "Was already following", body = UserBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`cannot_follow_self`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn follow(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<UserBody>)> {
    let (change, user) = state.graph.follow(me, parse_id(&id)?).await?;
    let status = if change == Change::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(UserBody::public(user, &state.media_base).followed_by_me(Some(true)))))
}

/// Stop following a user: 204, also when not following.
#[utoipa::path(delete, path = "/api/v1/user/{id}/unfollow", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "Whom to unfollow")),
    responses(
        (status = 204, description = "Not following (any more)"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unfollow(State(state): State<AppState>, AuthUser(me): AuthUser, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.graph.unfollow(me, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who follows a user, newest follow first.
#[utoipa::path(get, path = "/api/v1/user/{id}/followers", tag = "users",
    params(("id" = String, Path, description = "User id"), PageQuery),
    responses(
        (status = 200, body = PageBody<UserBody>),
        (status = 401, description = "A token was sent but is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`bad_request`: a malformed query string (a parameter given twice, say)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn followers(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<axum::Json<PageBody<UserBody>>> {
    let page = state.graph.followers(parse_id(&id)?, page.request()?, viewer.0).await?;
    Ok(axum::Json(PageBody::from_page(page, |view| body(&state, view))))
}

/// Whom a user follows, newest follow first.
#[utoipa::path(get, path = "/api/v1/user/{id}/followings", tag = "users",
    params(("id" = String, Path, description = "User id"), PageQuery),
    responses(
        (status = 200, body = PageBody<UserBody>),
        (status = 401, description = "A token was sent but is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`bad_request`: a malformed query string (a parameter given twice, say)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn followings(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<axum::Json<PageBody<UserBody>>> {
    let page = state.graph.followings(parse_id(&id)?, page.request()?, viewer.0).await?;
    Ok(axum::Json(PageBody::from_page(page, |view| body(&state, view))))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Text the username contains (ignoring case); usernames starting with it come first.
    search: Option<String>,
    /// Items per page, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Opaque; the `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Users: those whose username contains `search`, prefix matches first; without `search`, everyone, newest first.
#[utoipa::path(get, path = "/api/v1/user", tag = "users",
    params(UserQuery),
    responses(
        (status = 200, body = PageBody<UserBody>),
        (status = 401, description = "A token was sent but is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`bad_request`: a malformed query string (a parameter given twice, say)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit`, `cursor` or `search`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Query(query): Query<UserQuery>,
) -> ApiResult<axum::Json<PageBody<UserBody>>> {
    let page = state.search.users(query.search.as_deref(), query.limit.as_deref(), query.cursor.as_deref()).await?;
    let views = state.graph.views(page.items, viewer.0).await?;
    Ok(axum::Json(PageBody { data: views.into_iter().map(|view| body(&state, view)).collect(), next_cursor: page.next_cursor }))
}
