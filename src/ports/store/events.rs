//! The outbox (events waiting to be published) and the notifications they become.

use std::time::Duration;

use async_trait::async_trait;

use super::{PageRequest, StoreError, UserRow};
use crate::domain::{Id, Timestamp, Tweet, User};

/// An outbox row: one event, waiting for the relay.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    /// What happened (`tweet_liked`); the relay maps it to a topic.
    pub kind: String,
    /// The message key: the user the event is for.
    pub key: String,
    /// JSON, with `event_id` and `schema_version`.
    pub payload: String,
}

#[derive(Clone, Debug)]
pub struct NewNotification {
    pub id: Id,
    pub owner: Id,
    pub actor: Id,
    pub tweet: Id,
    pub kind: &'static str,
    pub event_id: Id,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NotificationRecord {
    pub id: Id,
    pub kind: String,
    pub actor: User,
    pub tweet: Tweet,
    pub read: bool,
    pub created_at: Timestamp,
}

/// A notification row joined with its actor; the tweet is added afterwards.
#[derive(sqlx::FromRow)]
pub(super) struct NotificationRow {
    pub(super) notification_id: i64,
    pub(super) kind: String,
    pub(super) read: bool,
    pub(super) notified_at: i64,
    pub(super) tweet_id: i64,
    #[sqlx(flatten)]
    pub(super) actor: UserRow,
}

/// Notification columns, then the actor's, the same on both databases.
pub(super) fn notification_select() -> String {
    let actor = super::user_columns_of("u");
    format!(
        "SELECT n.id AS notification_id, n.kind, n.read, n.created_at AS notified_at, n.tweet_id, {actor} \
         FROM notifications n JOIN users u ON u.id = n.actor_id"
    )
}

/// Puts notification rows together with their (already loaded) tweets; rows whose tweet is gone are dropped.
pub(super) fn assemble_notifications(rows: Vec<NotificationRow>, tweets: Vec<Tweet>) -> Vec<NotificationRecord> {
    rows.into_iter()
        .filter_map(|r| {
            let tweet = tweets.iter().find(|t| t.id.as_i64() == r.tweet_id)?.clone();
            Some(NotificationRecord {
                id: Id::from_i64(r.notification_id),
                kind: r.kind,
                actor: r.actor.into(),
                tweet,
                read: r.read,
                created_at: Timestamp::from_millis(r.notified_at),
            })
        })
        .collect()
}

#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Takes or renews the lease `name` for `holder`; false while another holder's lease runs.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// The oldest events with an id above `after`, in order (`i64::MIN`:
    /// from the oldest). The outbox holds only events still to publish.
    async fn unpublished(&self, after: i64, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;

    /// How many events wait to be published.
    async fn outbox_backlog(&self) -> Result<i64, StoreError>;
}

#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// The owner's notifications, newest first.
    async fn notifications(&self, owner: Id, unread_only: bool, page: PageRequest)
    -> Result<Vec<NotificationRecord>, StoreError>;

    /// The owner's notifications among `ids`, oldest first.
    async fn notifications_by_ids(&self, owner: Id, ids: &[Id]) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Marks the owner's notifications read: those in `ids`, or all.
    async fn mark_read(&self, owner: Id, ids: Option<&[Id]>) -> Result<(), StoreError>;

    async fn unread_count(&self, owner: Id) -> Result<i64, StoreError>;
}
