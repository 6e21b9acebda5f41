//! The Store port: everything persistent. One implementation per database,
//! each with its own migrations (`migrations/sqlite`, `migrations/postgres`).

mod events;
mod postgres;
mod sqlite;
mod timeline;
pub mod writes;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::search::TweetQuery;
use crate::domain::{AltText, Id, Media, MediaKind, Timestamp, Tweet, User};

pub use events::{NewNotification, NotificationRecord, NotificationStore, OutboxMessage, OutboxStore};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use timeline::{TimelineStore, TweetCounters};
pub use writes::{Write, WriteStore, Written};

/// A unique constraint that a write ran into, named for the rule it guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constraint {
    UsernameTaken,
    EmailTaken,
}

impl Constraint {
    pub fn code(self) -> &'static str {
        match self {
            Self::UsernameTaken => "username_taken",
            Self::EmailTaken => "email_taken",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::UsernameTaken => "this username is already taken",
            Self::EmailTaken => "an account with this email already exists",
        }
    }

    /// Maps a database constraint (or index) name to the rule it guards.
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "users_username_key" => Some(Self::UsernameTaken),
            "users_email_key" => Some(Self::EmailTaken),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0:?}")]
    Conflict(Constraint),
    /// The database could not be reached or is overloaded; worth retrying.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("database error")]
    Other(#[source] anyhow::Error),
}

/// Interprets a sqlx error the same way for both databases.
/// Error codes that say "the database cannot serve you right now", not
/// "this request is wrong": PostgreSQL's connection exceptions (class 08),
/// a server shutting down or starting (57P01-57P03), too many connections
/// (53300); SQLite's busy and locked (5, 6 and their extended codes).
fn transient(code: &str) -> bool {
    code.starts_with("08")
        || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        || code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

fn classify(e: sqlx::Error, constraint_of: impl Fn(&dyn sqlx::error::DatabaseError) -> Option<Constraint>) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        // A row referred to is gone (deleted concurrently): the thing asked for is not there.
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::NotFound,
        sqlx::Error::Database(db) if db.code().is_some_and(|code| transient(&code)) => StoreError::Unavailable(e.into()),
        sqlx::Error::Database(db) => match constraint_of(db.as_ref()) {
            Some(c) => StoreError::Conflict(c),
            None => StoreError::Other(e.into()),
        },
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.into()),
        _ => StoreError::Other(e.into()),
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    email: String,
    name: String,
    created_at: i64,
    followers_count: i64,
    followings_count: i64,
    tweets_count: i64,
    bio: String,
    avatar_key: Option<String>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: Id::from_i64(r.id),
            username: r.username,
            email: r.email,
            name: r.name,
            created_at: Timestamp::from_millis(r.created_at),
            followers_count: r.followers_count,
            followings_count: r.followings_count,
            tweets_count: r.tweets_count,
            bio: r.bio,
            avatar_key: r.avatar_key,
        }
    }
}

pub(super) const USER_COLUMNS: &str =
    "id, username, email, name, created_at, followers_count, followings_count, tweets_count, bio, avatar_key";

/// What a new tweet is made of; ids and times are chosen by the service.
#[derive(Clone, Debug)]
pub struct NewTweet {
    pub id: Id,
    pub author: Id,
    pub content: String,
    pub media: Vec<Media>,
    pub created_at: Timestamp,
}

/// The columns of a tweet joined with its author: on SQLite the counts are
/// the tweet row's own.
pub(super) const TWEET_SELECT: &str = "SELECT t.id, t.content, t.like_count, t.view_count, t.created_at, \
     u.id AS author_id, u.username, u.email, u.name, u.created_at AS author_created_at, \
     u.followers_count, u.followings_count, u.tweets_count, u.bio, u.avatar_key \
     FROM tweets t JOIN users u ON u.id = t.author_id";

/// [`TWEET_SELECT`] on PostgreSQL, where the counts have a table of their
/// own (migration 0014), so that counting a like or view rewrites a narrow row.
pub(super) const PG_TWEET_SELECT: &str = "SELECT t.id, t.content, c.like_count, c.view_count, t.created_at, \
     u.id AS author_id, u.username, u.email, u.name, u.created_at AS author_created_at, \
     u.followers_count, u.followings_count, u.tweets_count, u.bio, u.avatar_key \
     FROM tweets t JOIN tweet_counts c ON c.tweet_id = t.id JOIN users u ON u.id = t.author_id";

pub(super) const MEDIA_COLUMNS: &str = "id, tweet_id, kind, content_type, storage_key, thumbnail_key, size_bytes, width, height, \
     duration_ms, original_key, thumbnail_width, thumbnail_height, description, blurhash";

#[derive(sqlx::FromRow)]
pub(super) struct TweetRow {
    id: i64,
    content: String,
    like_count: i64,
    view_count: i64,
    created_at: i64,
    author_id: i64,
    username: String,
    email: String,
    name: String,
    author_created_at: i64,
    followers_count: i64,
    followings_count: i64,
    tweets_count: i64,
    bio: String,
    avatar_key: Option<String>,
}

impl TweetRow {
    pub(super) fn id(&self) -> i64 {
        self.id
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct MediaRow {
    id: i64,
    tweet_id: i64,
    kind: String,
    content_type: String,
    storage_key: String,
    thumbnail_key: Option<String>,
    size_bytes: i64,
    width: Option<i64>,
    height: Option<i64>,
    duration_ms: Option<i64>,
    original_key: Option<String>,
    thumbnail_width: Option<i64>,
    thumbnail_height: Option<i64>,
    description: Option<String>,
    blurhash: Option<String>,
}

impl MediaRow {
    pub(super) fn tweet_id(&self) -> Id {
        Id::from_i64(self.tweet_id)
    }

    pub(super) fn into_media(self) -> Media {
        Media {
            id: Id::from_i64(self.id),
            kind: MediaKind::parse(&self.kind).unwrap_or(MediaKind::Image),
            content_type: self.content_type,
            key: self.storage_key,
            thumbnail_key: self.thumbnail_key,
            size_bytes: self.size_bytes,
            width: self.width,
            height: self.height,
            duration_ms: self.duration_ms,
            original_key: self.original_key,
            thumbnail_width: self.thumbnail_width,
            thumbnail_height: self.thumbnail_height,
            description: self.description.map(AltText::from_stored),
            blurhash: self.blurhash,
        }
    }
}

/// Builds tweets from their rows, their media rows and the ids the viewer liked.
pub(super) fn assemble(rows: Vec<TweetRow>, media: Vec<MediaRow>, liked: &[i64]) -> Vec<Tweet> {
    let mut by_tweet: std::collections::HashMap<i64, Vec<Media>> = std::collections::HashMap::new();
    for m in media {
        by_tweet.entry(m.tweet_id).or_default().push(m.into_media());
    }
    rows.into_iter()
        .map(|r| Tweet {
            id: Id::from_i64(r.id),
            media: by_tweet.remove(&r.id).unwrap_or_default(),
            liked_by_me: liked.contains(&r.id),
            like_count: r.like_count,
            view_count: r.view_count,
            created_at: Timestamp::from_millis(r.created_at),
            content: r.content,
            author: User {
                id: Id::from_i64(r.author_id),
                username: r.username,
                email: r.email,
                name: r.name,
                created_at: Timestamp::from_millis(r.author_created_at),
                followers_count: r.followers_count,
                followings_count: r.followings_count,
                tweets_count: r.tweets_count,
                bio: r.bio,
                avatar_key: r.avatar_key,
            },
        })
        .collect()
}

/// `USER_COLUMNS` qualified with a table alias (`u.id, u.username, …`).
pub(super) fn user_columns_of(alias: &str) -> String {
    USER_COLUMNS.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

/// A username search result: its group (0: the username starts with the text) and the user.
#[derive(sqlx::FromRow)]
pub(super) struct FoundUser {
    pub(super) grp: i32,
    #[sqlx(flatten)]
    pub(super) user: UserRow,
}

impl FoundUser {
    pub(super) fn into_pair(self) -> (UserSearchKey, User) {
        let user: User = self.user.into();
        ((self.grp, user.username.to_lowercase()), user)
    }
}

/// A follow's id next to the user it points at.
#[derive(sqlx::FromRow)]
pub(super) struct FollowRow {
    follow_id: i64,
    #[sqlx(flatten)]
    user: UserRow,
}

impl FollowRow {
    pub(super) fn into_pair(self) -> (Id, User) {
        (Id::from_i64(self.follow_id), self.user.into())
    }
}

/// The outbox row of a new like: the event for the tweet's owner.
pub(crate) fn like_event(event_id: Id, tweet: Id, owner: Id, liker: Id, at: Timestamp) -> OutboxMessage {
    let event = crate::domain::events::TweetLiked::new(event_id, tweet, owner, liker, at);
    OutboxMessage {
        id: event_id.as_i64(),
        kind: crate::domain::events::TWEET_LIKED.to_owned(),
        key: owner.to_string(),
        payload: serde_json::to_string(&event).expect("events serialize"),
    }
}

/// A like's event payload around its owner's id, for a statement that
/// reads the owner itself: `before + owner + after` is the payload of
/// [`like_event`] (a test checks it).
pub(crate) fn like_payload_around_owner(event_id: Id, tweet: Id, liker: Id, at: Timestamp) -> (String, String) {
    const OWNER: &str = "\"owner_id\":\"0\"";
    let payload = like_event(event_id, tweet, Id::from_i64(0), liker, at).payload;
    let start = payload.find(OWNER).expect("a like event names its owner") + OWNER.len() - 2;
    (payload[..start].to_owned(), payload[start + 1..].to_owned())
}

/// The outbox row of a new tweet, for the timeline fan-out.
pub(crate) fn posted_event(tweet: &NewTweet) -> OutboxMessage {
    let event = crate::domain::events::TimelineEvent::posted(tweet.id, tweet.author, tweet.created_at);
    timeline_message(tweet.id, &event)
}

/// The outbox row of a deleted tweet.
pub(crate) fn deleted_event(event_id: Id, tweet: Id, author: Id, at: Timestamp) -> OutboxMessage {
    let event = crate::domain::events::TimelineEvent::deleted(tweet, author, at);
    timeline_message(event_id, &event)
}

fn timeline_message(id: Id, event: &crate::domain::events::TimelineEvent) -> OutboxMessage {
    OutboxMessage {
        id: id.as_i64(),
        kind: event.kind.clone(),
        key: event.author_id.to_string(),
        payload: serde_json::to_string(event).expect("events serialize"),
    }
}

/// What a new account is made of; the id and time are chosen by the service.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: Id,
    pub username: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: Timestamp,
}

/// A change to a user's profile; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub bio: Option<String>,
}

/// What login needs to check a password.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// Where a page starts: rows strictly older than `before` (ids are time-ordered).
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub before: Option<Id>,
    pub limit: u32,
}

#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Which database this is, for logs and `/readyz`.
    fn kind(&self) -> &'static str;

    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates the account; a taken username or email is a `Conflict`.
    async fn insert_user(&self, user: &NewUser) -> Result<User, StoreError>;

    async fn user_by_id(&self, id: Id) -> Result<Option<User>, StoreError>;

    /// Looks up by username, ignoring case.
    async fn credentials_by_username(&self, username: &str) -> Result<Option<Credentials>, StoreError>;

    /// Looks up by username, ignoring case.
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// Changes the name and/or bio; `NotFound` if there is no such user.
    async fn update_profile(&self, id: Id, change: &ProfileChange) -> Result<User, StoreError>;

    /// Sets (or, with `None`, clears) the avatar's storage key; returns the
    /// user as changed and the key it replaced (its file is the caller's to
    /// remove). `NotFound` if there is no such user.
    async fn set_avatar(&self, id: Id, key: Option<&str>) -> Result<(User, Option<String>), StoreError>;

    /// Which of the username and email an existing account already has, ignoring case.
    async fn taken(&self, username: &str, email: &str) -> Result<Option<Constraint>, StoreError>;

    async fn close(&self);
}

#[async_trait]
pub trait TweetStore: Send + Sync + 'static {
    async fn tweet(&self, id: Id, viewer: Option<Id>) -> Result<Option<Tweet>, StoreError>;

    /// Deletes the tweet, its media rows and likes, and appends a
    /// `TweetDeleted` event with id `event_id` to the outbox; returns its
    /// author and media (for the files), or `None` if there was no such tweet.
    async fn delete_tweet(&self, id: Id, event_id: Id) -> Result<Option<(Id, Vec<Media>)>, StoreError>;

    /// Tweets, newest first: all of them, or one author's.
    async fn list_tweets(&self, author: Option<Id>, page: PageRequest, viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError>;

    /// Tweets by id (those that exist), as seen by `viewer`.
    async fn tweets_by_ids(&self, ids: &[Id], viewer: Option<Id>) -> Result<Vec<Tweet>, StoreError>;
}

#[async_trait]
pub trait GraphStore: Send + Sync + 'static {
    /// Who follows `user`, newest follow first, each with the follow's id (the page key).
    async fn followers(&self, user: Id, page: PageRequest) -> Result<Vec<(Id, User)>, StoreError>;

    /// Whom `user` follows, newest follow first, each with the follow's id (the page key).
    async fn followings(&self, user: Id, page: PageRequest) -> Result<Vec<(Id, User)>, StoreError>;

    /// Which of `users` the `follower` follows.
    async fn follows_among(&self, follower: Id, users: &[Id]) -> Result<Vec<Id>, StoreError>;
}

/// Where a username search page starts: after (group, lower-cased username),
/// group 0 being usernames that start with the text.
pub type UserSearchKey = (i32, String);

#[async_trait]
pub trait SearchStore: Send + Sync + 'static {
    /// Tweets matching every word and phrase, newest first, optionally of one author.
    async fn search_tweets(
        &self,
        query: &TweetQuery,
        author: Option<Id>,
        page: PageRequest,
        viewer: Option<Id>,
    ) -> Result<Vec<Tweet>, StoreError>;

    /// Users whose lower-cased username contains `text` (lower case, only
    /// `[a-z0-9_]`): those starting with it first, then by username.
    async fn search_users(
        &self,
        text: &str,
        after: Option<&UserSearchKey>,
        limit: u32,
    ) -> Result<Vec<(UserSearchKey, User)>, StoreError>;

    /// Everyone, newest first.
    async fn list_users(&self, page: PageRequest) -> Result<Vec<User>, StoreError>;
}

/// How a gifv's rendition, made after the tweet was answered, ended.
#[derive(Clone, Copy, Debug)]
pub enum RenditionOutcome<'a> {
    /// The MP4 is stored; the item takes its size.
    Written { size_bytes: i64 },
    /// It cannot be made: the item becomes its original (an animated image), served as it is.
    Abandoned { content_type: &'a str, size_bytes: i64 },
}

/// Media items on their own (alt text edits, gifv renditions).
#[async_trait]
pub trait MediaRecordStore: Send + Sync + 'static {
    /// A media item and the tweet it belongs to.
    async fn media_item(&self, id: Id) -> Result<Option<(Id, Media)>, StoreError>;

    /// Sets (or, with `None`, clears) a media item's description; returns the
    /// item as changed, or `None` if there is no such item.
    async fn set_media_description(&self, id: Id, description: Option<&AltText>) -> Result<Option<Media>, StoreError>;

    /// Takes the oldest gifv rendition still to be made that no worker holds
    /// (or whose worker's lease ran out by `now_ms`), leased until
    /// `until_ms`; returns the item and its tweet.
    async fn claim_rendition(&self, now_ms: i64, until_ms: i64) -> Result<Option<(Id, Media)>, StoreError>;

    /// Ends a rendition: the item as it now is and its tweet, or `None` if the item is gone.
    async fn settle_rendition(&self, id: Id, outcome: RenditionOutcome<'_>) -> Result<Option<(Id, Media)>, StoreError>;

    /// Whether a gifv's MP4 is still to be made.
    async fn rendition_pending(&self, id: Id) -> Result<bool, StoreError>;
}

/// Everything persistent; one implementation per database.
pub trait Store:
    UserStore
    + TweetStore
    + WriteStore
    + GraphStore
    + SearchStore
    + TimelineStore
    + OutboxStore
    + NotificationStore
    + MediaRecordStore
{
}

impl<T> Store for T where
    T: UserStore
        + TweetStore
        + WriteStore
        + GraphStore
        + SearchStore
        + TimelineStore
        + OutboxStore
        + NotificationStore
        + MediaRecordStore
{
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and applies its migrations.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url, max_connections).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else {
        anyhow::bail!("CHIRP_DATABASE_URL must start with sqlite:// or postgres://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_like_payload_around_its_owner_is_the_like_event_with_the_owner_put_in() {
        let (event, tweet, liker, at) =
            (Id::from_i64(91), Id::from_i64(7_000_000_001), Id::from_i64(3), Timestamp::from_millis(1_234));
        for owner in [0, 1, 42, i64::MAX] {
            let (before, after) = like_payload_around_owner(event, tweet, liker, at);
            let whole = like_event(event, tweet, Id::from_i64(owner), liker, at).payload;
            assert_eq!(format!("{before}{owner}{after}"), whole);
        }
    }
}
