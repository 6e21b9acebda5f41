//! Posting, reading and deleting tweets; likes, views and the home timeline.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::domain::{FieldErrors, Id, IdGenerator, Media, Tweet, TweetText};
use crate::error::{Error, Result};
use crate::ports::store::{NewTweet, PageRequest, Store};
use crate::services::pages::Page;
use crate::services::timeline::Timelines;
use crate::services::tweet_cache::TweetCache;
use crate::services::writes::Writer;

/// What happened to a like or follow request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    AlreadyThere,
}

pub struct Tweets {
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
    writer: Writer,
    /// Wakes the outbox relay when a delete added an event.
    outbox: Arc<Notify>,
    cache: Arc<TweetCache>,
    timelines: Arc<Timelines>,
}

impl Tweets {
    pub fn new(
        store: Arc<dyn Store>,
        ids: Arc<IdGenerator>,
        writer: Writer,
        outbox: Arc<Notify>,
        cache: Arc<TweetCache>,
        timelines: Arc<Timelines>,
    ) -> Self {
        Self { store, ids, writer, outbox, cache, timelines }
    }

    /// Checks tweet text before any media is processed, so a bad text costs no upload work.
    pub fn check_text(content: Option<&str>) -> Result<TweetText> {
        TweetText::parse(content.unwrap_or_default())
            .map_err(|e| Error::Validation(FieldErrors::single("content", e.to_string())))
    }

    /// Posts a tweet. `media` is already stored; the caller removes it if this fails.
    #[tracing::instrument(skip_all, fields(author = %author))]
    pub async fn post(&self, author: Id, text: TweetText, media: Vec<Media>) -> Result<Tweet> {
        if text.is_empty() && media.is_empty() {
            return Err(Error::Validation(FieldErrors::single("content", "must not be empty unless media is attached")));
        }
        let id = self.ids.next_id();
        let new = NewTweet { id, author, content: text.as_str().to_owned(), media, created_at: id.timestamp() };
        // The answer is made from what was written: the author as the write
        // left them. Their kept timeline has the tweet before the answer.
        let user = self.writer.post(new.clone()).await?;
        self.timelines.author_posted(author);
        let NewTweet { id, content, media, created_at, .. } = new;
        let tweet = Tweet { id, author: user, content, media, like_count: 0, view_count: 0, liked_by_me: false, created_at };
        self.cache.remember(&tweet);
        Ok(tweet)
    }

    pub async fn get(&self, id: Id, viewer: Option<Id>) -> Result<Tweet> {
        self.cache.tweet(id, viewer).await?.ok_or(Error::NotFound)
    }

    /// Deletes the caller's own tweet; returns its media so their files can be removed.
    pub async fn delete(&self, id: Id, caller: Id) -> Result<Vec<Media>> {
        let tweet = self.cache.tweet(id, None).await?.ok_or(Error::NotFound)?;
        if tweet.author.id != caller {
            return Err(Error::Forbidden("only the author can delete a tweet"));
        }
        let (_, media) = self.store.delete_tweet(id, self.ids.next_id()).await?.ok_or(Error::NotFound)?;
        self.outbox.notify_one();
        self.cache.tweet_deleted(id, caller).await;
        self.timelines.author_posted(caller);
        Ok(media)
    }

    /// Tweets newest first: everyone's, or one author's (an unknown author has none).
    pub async fn list(&self, author: Option<Id>, page: (PageRequest, u32), viewer: Option<Id>) -> Result<Page<Tweet>> {
        let (request, limit) = page;
        let rows = self.store.list_tweets(author, request, viewer).await?;
        Ok(Page::from_rows(rows, limit, |t| t.id))
    }

    pub async fn timeline(&self, user: Id, page: (PageRequest, u32)) -> Result<Page<Tweet>> {
        let (request, limit) = page;
        let rows = self.timelines.page(user, request).await?;
        Ok(Page::from_rows(rows, limit, |t| t.id))
    }

    /// Likes a tweet; answers with it as the like left it, from the cache
    /// (the like count is the one the write returned).
    pub async fn like(&self, user: Id, tweet: Id) -> Result<(Change, Tweet)> {
        // The tweet is read while the like is written: the answer takes the
        // counts from the write, so the read does not refresh them. Read as no
        // one in particular: whether `user` likes it is known, so their likes
        // need not be loaded.
        let ids = [tweet];
        let (written, read) =
            tokio::join!(self.writer.like(user, tweet, self.ids.next_id()), self.cache.tweets_counted_elsewhere(&ids));
        let (added, like_count, view_count) = written?;
        let mut tweet = read?.pop().ok_or(Error::NotFound)?;
        tweet.like_count = like_count;
        tweet.view_count = view_count;
        tweet.liked_by_me = true;
        Ok((if added { Change::Created } else { Change::AlreadyThere }, tweet))
    }

    pub async fn unlike(&self, user: Id, tweet: Id) -> Result<()> {
        self.writer.unlike(user, tweet).await?;
        Ok(())
    }

    /// Sets the alt text of one of the caller's media items.
    pub async fn describe_media(&self, caller: Id, media: Id, text: &str) -> Result<Media> {
        let (tweet, media) = crate::services::media::describe(self.store.as_ref(), caller, media, text).await?;
        self.cache.forget_tweet(tweet).await;
        Ok(media)
    }

    pub async fn view(&self, tweet: Id) -> Result<i64> {
        self.writer.view(tweet).await
    }
}
