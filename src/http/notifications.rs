//! The caller's notifications: a list, marking read, an unread count, and a
//! live stream (Server-Sent Events).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{AuthUser, Json};
use super::pages::PageBody;
use super::tweets::TweetBody;
use super::users::UserBody;
use super::{ApiResult, AppState, Problem};
use crate::domain::{FieldErrors, Id, Timestamp};
use crate::error::Error;
use crate::ports::store::NotificationRecord;
use crate::services::live::Signal;
use crate::services::pages::page_request;

/// How long a browser waits before reconnecting a stream that a newer one replaced.
const REPLACED_RETRY: Duration = Duration::from_secs(60);
/// Notifications a live stream loads in one query, at most.
const STREAM_BATCH: usize = 256;

/// "alice liked your tweet".
#[derive(Serialize, ToSchema)]
pub struct NotificationBody {
    #[schema(value_type = String)]
    id: Id,
    #[schema(example = "like")]
    kind: String,
    actor: UserBody,
    #[schema(value_type = String)]
    tweet_id: Id,
    tweet: TweetBody,
    #[schema(example = "alice liked your tweet")]
    message: String,
    read: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl NotificationBody {
    fn new(n: NotificationRecord, media_base: &str) -> Self {
        let message = format!("{} liked your tweet", n.actor.username);
        Self {
            id: n.id,
            kind: n.kind,
            tweet_id: n.tweet.id,
            tweet: TweetBody::new(n.tweet, media_base),
            actor: UserBody::public(n.actor, media_base),
            message,
            read: n.read,
            created_at: n.created_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// `true`: only unread notifications.
    #[param(value_type = Option<bool>)]
    unread: Option<String>,
    /// Items per page, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Opaque; the `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct MarkReadRequest {
    /// Notifications to mark read; leave out to mark all read.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    ids: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct UnreadCount {
    unread: i64,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(NotificationQuery),
    responses(
        (status = 200, body = PageBody<NotificationBody>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`bad_request`: a malformed query string (a parameter given twice, say)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `unread`, `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Query(query): Query<NotificationQuery>,
) -> ApiResult<axum::Json<PageBody<NotificationBody>>> {
    let unread = match query.unread.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(Error::Validation(FieldErrors::single("unread", "must be true or false"))),
    };
    let page = page_request(query.limit.as_deref(), query.cursor.as_deref())?;
    let page = state.notifications.list(me, unread, page).await?;
    Ok(axum::Json(PageBody::from_page(page, |n| NotificationBody::new(n, &state.media_base))))
}

/// Mark notifications read: `{"ids": [...]}` for some, `{}` for all.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications", security(("bearer" = [])),
    request_body = MarkReadRequest,
    responses(
        (status = 204, description = "Marked"),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Json(req): Json<MarkReadRequest>,
) -> ApiResult<StatusCode> {
    let ids = match req.ids {
        Some(ids) if ids.len() > 1000 => return Err(Error::Validation(FieldErrors::single("ids", "at most 1000 at a time"))),
        // Ids that are not ids name no notification of the caller's: nothing to mark.
        Some(ids) => Some(ids.iter().filter_map(|s| s.parse::<Id>().ok()).collect::<Vec<_>>()),
        None => None,
    };
    state.notifications.mark_read(me, ids.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many notifications the caller has not read.
#[utoipa::path(get, path = "/api/v1/notifications/unread-count", tag = "notifications", security(("bearer" = [])),
    responses(
        (status = 200, body = UnreadCount),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unread_count(State(state): State<AppState>, AuthUser(me): AuthUser) -> ApiResult<axum::Json<UnreadCount>> {
    Ok(axum::Json(UnreadCount { unread: state.notifications.unread_count(me).await? }))
}

/// New notifications as they happen: `text/event-stream`, each an event
/// `notification` with the notification's JSON; a comment every 15 s keeps
/// the connection alive. A user holds at most `CHIRP_LIVE_STREAMS_PER_USER`
/// streams on a node (default 5): opening one more closes their oldest,
/// which receives a last event `closed` (`{"reason": "replaced"}`, with an
/// SSE `retry` of 60 s so that a browser does not reconnect at once and
/// close the next one). A node holds at most `CHIRP_LIVE_STREAMS_PER_NODE`
/// streams; past that it answers 503 with `Retry-After`.
#[utoipa::path(get, path = "/api/v1/notifications/stream", tag = "notifications", security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`service_unavailable`: this node holds its maximum of streams; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Registered before the response starts, so nothing announced after the client sees "connected" is missed.
    let mut live = state.notifications.open_stream(me).await?;
    let draining = state.draining.clone();
    let events = async_stream(move |yielder| async move {
        yielder.send(Event::default().comment("connected")).await;
        loop {
            let next = tokio::select! {
                // The server is stopping: end the stream; the client reconnects (to another node).
                _ = draining.cancelled() => return,
                next = live.next() => next,
            };
            // This one and every one already waiting, loaded in one query:
            // one query each fell behind a busy account (its stream then missed some).
            let mut ids = Vec::new();
            let mut replaced = false;
            match next {
                Some(Signal::Notification(id)) => ids.push(id),
                Some(Signal::Replaced) => replaced = true,
                None => return,
            }
            while !replaced && ids.len() < STREAM_BATCH {
                match live.try_next() {
                    Some(Signal::Notification(id)) => ids.push(id),
                    Some(Signal::Replaced) => replaced = true,
                    None => break,
                }
            }
            match state.notifications.by_ids(me, &ids).await {
                Ok(found) => {
                    for n in found {
                        let body = NotificationBody::new(n, &state.media_base);
                        let event = Event::default().event("notification").id(body.id.to_string()).json_data(&body);
                        if let Ok(event) = event
                            && !yielder.send(event).await
                        {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, count = ids.len(), "live notifications: could not load notifications"),
            }
            if replaced {
                let closed = Event::default().event("closed").retry(REPLACED_RETRY).data(r#"{"reason":"replaced"}"#);
                yielder.send(closed).await;
                return;
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat")))
}

/// A stream fed by a task: the task sends events until the client goes away.
struct Yielder(tokio::sync::mpsc::Sender<Event>);

impl Yielder {
    async fn send(&self, event: Event) -> bool {
        self.0.send(event).await.is_ok()
    }
}

fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(Yielder) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::spawn(f(Yielder(tx)));
    // Ends the task when the client disconnects and the stream is dropped.
    let guard = AbortOnDrop(task);
    futures::stream::unfold((rx, guard), |(mut rx, guard)| async move { rx.recv().await.map(|e| (Ok(e), (rx, guard))) })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
