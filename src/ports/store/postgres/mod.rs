//! PostgreSQL adapter: the scale-out database, shared by every chirp node.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

mod events;
mod graph;
mod media;
mod pool;
mod search;
mod timeline;
mod tweets;
mod writes;

use super::{Constraint, Credentials, NewUser, ProfileChange, StoreError, USER_COLUMNS, UserRow, UserStore, classify};
use crate::domain::{Id, User};

pub struct PostgresStore {
    pool: pool::PgConnections,
    term_stats: search::TermStatsCache,
}

fn err(e: sqlx::Error) -> StoreError {
    classify(e, |db| db.constraint().and_then(Constraint::from_name))
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("chirp");
        // Migrations on a connection of their own, before any other opens.
        let mut conn = PgConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/postgres").run(&mut conn).await?;
        conn.close().await?;
        // No ping before each use, nor after (see `pool`): a connection that
        // died (a restart, a terminated backend) fails its next statement
        // instead, that request answers 503, and the connection is closed.
        let pool = pool::PgConnections::new(options, max_connections.max(2), Duration::from_secs(5));
        Ok(Self { pool, term_stats: search::TermStatsCache::default() })
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(err)?;
        Ok(())
    }

    async fn insert_user(&self, u: &NewUser) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users (id, username, email, email_key, name, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {USER_COLUMNS}"
        );
        let row: UserRow = sqlx::query_as(&sql)
            .bind(u.id.as_i64())
            .bind(&u.username)
            .bind(&u.email)
            .bind(u.email.to_lowercase())
            .bind(&u.name)
            .bind(&u.password_hash)
            .bind(u.created_at.as_millis())
            .fetch_one(&self.pool)
            .await
            .map_err(err)?;
        Ok(row.into())
    }

    async fn user_by_id(&self, id: Id) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = sqlx::query_as(&sql).bind(id.as_i64()).fetch_optional(&self.pool).await.map_err(err)?;
        Ok(row.map(User::from))
    }

    async fn credentials_by_username(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)");
        let row = sqlx::query(&sql).bind(username).fetch_optional(&self.pool).await.map_err(err)?;
        let Some(row) = row else { return Ok(None) };
        use sqlx::{FromRow, Row};
        let user = UserRow::from_row(&row).map_err(err)?;
        let password_hash: String = row.try_get("password_hash").map_err(err)?;
        Ok(Some(Credentials { user: user.into(), password_hash }))
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1)");
        let row: Option<UserRow> = sqlx::query_as(&sql).bind(username).fetch_optional(&self.pool).await.map_err(err)?;
        Ok(row.map(User::from))
    }

    async fn update_profile(&self, id: Id, change: &ProfileChange) -> Result<User, StoreError> {
        let sql =
            format!("UPDATE users SET name = COALESCE($1, name), bio = COALESCE($2, bio) WHERE id = $3 RETURNING {USER_COLUMNS}");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(change.name.as_deref())
            .bind(change.bio.as_deref())
            .bind(id.as_i64())
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        row.map(User::from).ok_or(StoreError::NotFound)
    }

    async fn set_avatar(&self, id: Id, key: Option<&str>) -> Result<(User, Option<String>), StoreError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let previous: Option<Option<String>> = sqlx::query_scalar("SELECT avatar_key FROM users WHERE id = $1 FOR UPDATE")
            .bind(id.as_i64())
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        let Some(previous) = previous else {
            tx.rollback().await.map_err(err)?;
            return Err(StoreError::NotFound);
        };
        let sql = format!("UPDATE users SET avatar_key = $1 WHERE id = $2 RETURNING {USER_COLUMNS}");
        let row: UserRow = sqlx::query_as(&sql).bind(key).bind(id.as_i64()).fetch_one(&mut *tx).await.map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok((row.into(), previous))
    }

    async fn taken(&self, username: &str, email: &str) -> Result<Option<Constraint>, StoreError> {
        let row: Option<(bool,)> = sqlx::query_as(
            "SELECT lower(username) = lower($1) AS username_matches FROM users \
             WHERE lower(username) = lower($1) OR email_key = $2 \
             ORDER BY username_matches DESC LIMIT 1",
        )
        .bind(username)
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(err)?;
        Ok(row.map(|(username_matches,)| if username_matches { Constraint::UsernameTaken } else { Constraint::EmailTaken }))
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
