//! Follows and the users they connect.

use std::sync::Arc;

use crate::domain::{Id, IdGenerator, User};
use crate::error::{Error, Result};
use crate::ports::store::{PageRequest, Store};
use crate::services::pages::Page;
use crate::services::timeline::Timelines;
use crate::services::tweets::Change;
use crate::services::writes::Writer;

pub struct Graph {
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
    writer: Writer,
    timelines: Arc<Timelines>,
}

/// A user as seen by a caller: whether the caller follows them, when known.
pub struct UserView {
    pub user: User,
    pub followed_by_me: Option<bool>,
}

impl Graph {
    pub fn new(store: Arc<dyn Store>, ids: Arc<IdGenerator>, writer: Writer, timelines: Arc<Timelines>) -> Self {
        Self { store, ids, writer, timelines }
    }

    /// Follows; answers with the followee as the write left them.
    pub async fn follow(&self, follower: Id, followee: Id) -> Result<(Change, User)> {
        if follower == followee {
            return Err(Error::Unprocessable("cannot_follow_self", "you cannot follow yourself".into()));
        }
        let (added, user) = self.writer.follow(follower, followee, self.ids.next_id()).await?;
        if added {
            self.timelines.follows_changed(follower, followee, true).await?;
        }
        Ok((if added { Change::Created } else { Change::AlreadyThere }, user))
    }

    pub async fn unfollow(&self, follower: Id, followee: Id) -> Result<()> {
        if self.writer.unfollow(follower, followee).await? {
            self.timelines.follows_changed(follower, followee, false).await?;
        }
        Ok(())
    }

    pub async fn user(&self, id: Id, viewer: Option<Id>) -> Result<UserView> {
        let user = self.store.user_by_id(id).await?.ok_or(Error::NotFound)?;
        Ok(self.views(vec![user], viewer).await?.pop().expect("one in, one out"))
    }

    pub async fn followers(&self, user: Id, page: (PageRequest, u32), viewer: Option<Id>) -> Result<Page<UserView>> {
        self.store.user_by_id(user).await?.ok_or(Error::NotFound)?;
        let rows = self.store.followers(user, page.0).await?;
        self.page_of_users(rows, page.1, viewer).await
    }

    pub async fn followings(&self, user: Id, page: (PageRequest, u32), viewer: Option<Id>) -> Result<Page<UserView>> {
        self.store.user_by_id(user).await?.ok_or(Error::NotFound)?;
        let rows = self.store.followings(user, page.0).await?;
        self.page_of_users(rows, page.1, viewer).await
    }

    async fn page_of_users(&self, rows: Vec<(Id, User)>, limit: u32, viewer: Option<Id>) -> Result<Page<UserView>> {
        let page = Page::from_rows(rows, limit, |(follow_id, _)| *follow_id);
        let users: Vec<User> = page.items.into_iter().map(|(_, u)| u).collect();
        Ok(Page { items: self.views(users, viewer).await?, next_cursor: page.next_cursor })
    }

    /// Adds `followed_by_me` for a signed-in caller.
    pub async fn views(&self, users: Vec<User>, viewer: Option<Id>) -> Result<Vec<UserView>> {
        let followed = match viewer {
            Some(viewer) => {
                let ids: Vec<Id> = users.iter().map(|u| u.id).collect();
                Some(self.store.follows_among(viewer, &ids).await?)
            }
            None => None,
        };
        Ok(users
            .into_iter()
            .map(|user| {
                let followed_by_me = followed.as_ref().map(|f| f.contains(&user.id));
                UserView { user, followed_by_me }
            })
            .collect())
    }
}
