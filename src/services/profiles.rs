//! Profiles: the caller's name, bio and avatar; users by username.

use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

use crate::domain::{Bio, DisplayName, FieldErrors, Id, User, Username};
use crate::error::{Error, Result};
use crate::ports::store::{ProfileChange, Store};
use crate::services::avatar::Avatars;
use crate::services::tweet_cache::TweetCache;

/// A profile edit as submitted; absent fields stay as they are.
#[derive(Debug, Default)]
pub struct ProfileEdit {
    pub name: Option<String>,
    pub bio: Option<String>,
}

pub struct Profiles {
    store: Arc<dyn Store>,
    avatars: Avatars,
    /// Tweets carry their author: a profile change is shown on them too.
    cache: Arc<TweetCache>,
}

impl Profiles {
    pub fn new(store: Arc<dyn Store>, avatars: Avatars, cache: Arc<TweetCache>) -> Self {
        Self { store, avatars, cache }
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn edit(&self, user: Id, edit: ProfileEdit) -> Result<User> {
        let mut errors = FieldErrors::default();
        let name = edit.name.as_deref().and_then(|s| errors.check("name", DisplayName::parse(s)));
        let bio = edit.bio.as_deref().and_then(|s| errors.check("bio", Bio::parse(s)));
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let change = ProfileChange { name: name.map(|n| n.as_str().to_owned()), bio: bio.map(|b| b.as_str().to_owned()) };
        let updated = self.store.update_profile(user, &change).await?;
        self.cache.forget_user(user).await;
        Ok(updated)
    }

    /// Checks, converts and stores an uploaded avatar; returns its key. Until
    /// `set_avatar` takes it, the file is the caller's to `discard_avatar`.
    pub async fn store_avatar<E: std::fmt::Display>(
        &self,
        upload: impl Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> Result<String> {
        self.avatars.store(upload).await
    }

    pub async fn discard_avatar(&self, key: &str) {
        self.avatars.remove(key).await;
    }

    /// Makes a stored avatar the user's; the previous one's file is removed.
    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn set_avatar(&self, user: Id, key: &str) -> Result<User> {
        let result = self.store.set_avatar(user, Some(key)).await;
        self.cache.forget_user(user).await;
        match result {
            Ok((user, previous)) => {
                if let Some(previous) = previous {
                    self.avatars.remove(&previous).await;
                }
                Ok(user)
            }
            Err(e) => {
                // Nothing refers to the new file: leave nothing behind.
                self.avatars.remove(key).await;
                Err(e.into())
            }
        }
    }

    /// Removes the user's avatar (and its file), if any.
    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn remove_avatar(&self, user: Id) -> Result<User> {
        let (user, previous) = self.store.set_avatar(user, None).await?;
        self.cache.forget_user(user.id).await;
        if let Some(previous) = previous {
            self.avatars.remove(&previous).await;
        }
        Ok(user)
    }

    /// A user by username, ignoring case; text that cannot be a username names no one.
    pub async fn by_username(&self, username: &str) -> Result<User> {
        let username = Username::parse(username).map_err(|_| Error::NotFound)?;
        self.store.user_by_username(username.as_str()).await?.ok_or(Error::NotFound)
    }
}
