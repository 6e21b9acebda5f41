//! The Store port: everything persistent. One implementation per database,
//! each with its own migrations (`migrations/sqlite`, `migrations/postgres`).

mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Id, Timestamp, User};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

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
fn classify(e: sqlx::Error, constraint_of: impl Fn(&dyn sqlx::error::DatabaseError) -> Option<Constraint>) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match constraint_of(db.as_ref()) {
            Some(c) => StoreError::Conflict(c),
            None => StoreError::Other(e.into()),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            StoreError::Unavailable(e.into())
        }
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
        }
    }
}

pub(super) const USER_COLUMNS: &str = "id, username, email, name, created_at, followers_count, followings_count, tweets_count";

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

/// What login needs to check a password.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is, for logs and `/readyz`.
    fn kind(&self) -> &'static str;

    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates the account; a taken username or email is a `Conflict`.
    async fn insert_user(&self, user: &NewUser) -> Result<User, StoreError>;

    async fn user_by_id(&self, id: Id) -> Result<Option<User>, StoreError>;

    /// Looks up by username, ignoring case.
    async fn credentials_by_username(&self, username: &str) -> Result<Option<Credentials>, StoreError>;

    /// Which of the username and email an existing account already has, ignoring case.
    async fn taken(&self, username: &str, email: &str) -> Result<Option<Constraint>, StoreError>;

    async fn close(&self);
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
