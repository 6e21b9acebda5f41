//! Group commit: many users' writes (likes, follows, tweets, views) in one
//! transaction, each answered with its own outcome.
//!
//! The batch first reads (and on PostgreSQL locks, in id order, so batches
//! from several nodes cannot deadlock) every tweet and user row its writes
//! touch. Existence checks and the counters a write answers with come from
//! those rows as the batch's own writes change them, in order; the only
//! statements run per write are the inserts and deletes of likes, follows
//! and tweets, whose outcome (new or already there) only the database knows.
//! Counters and outbox events of the whole batch are then written with one
//! statement each.
//!
//! The outbox relay's marks and the notification consumer's inserts join
//! the same batches: the writes of a like, the mark of its event and the
//! notification it caused share one commit a cycle instead of three.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use crate::domain::{Id, Timestamp, User};
use crate::ports::store::{NewNotification, NewTweet, OutboxMessage, StoreError, like_event, posted_event};

/// One write of a batch.
#[derive(Clone, Debug)]
pub enum Write {
    Like {
        user: Id,
        tweet: Id,
        at: Timestamp,
        event_id: Id,
    },
    Unlike {
        user: Id,
        tweet: Id,
    },
    Follow {
        follower: Id,
        followee: Id,
        follow_id: Id,
        at: Timestamp,
    },
    Unfollow {
        follower: Id,
        followee: Id,
    },
    Post(NewTweet),
    View {
        tweet: Id,
    },
    /// Outbox rows the broker acknowledged (the relay).
    Published {
        ids: Vec<i64>,
    },
    /// Notifications to store (the consumer): none twice, none whose tweet is gone.
    Notify(Vec<NewNotification>),
}

/// What one write did, with the counters as it left them.
#[derive(Clone, Debug)]
pub enum Written {
    /// Whether the like is new, and the tweet's counts after it.
    Like {
        added: bool,
        like_count: i64,
        view_count: i64,
    },
    /// Whether there was a like to take back, and the like count after it.
    Unlike {
        removed: bool,
        like_count: i64,
    },
    /// Whether the follow is new, and the followee after it.
    Follow {
        added: bool,
        followee: User,
    },
    /// Whether there was a follow to take back, and both users after it.
    Unfollow {
        removed: bool,
        follower: User,
        followee: User,
    },
    /// The new tweet's author, counting it.
    Post {
        author: User,
    },
    /// The tweet's view count, counting this view.
    View {
        view_count: i64,
    },
    Published,
    /// Per notification, in order: whether it was stored.
    Notified {
        stored: Vec<bool>,
    },
}

/// The counters of a tweet a batch touches.
#[derive(Clone, Copy, Debug, sqlx::FromRow)]
pub struct TweetRowCounts {
    pub id: i64,
    pub author_id: i64,
    pub like_count: i64,
    pub view_count: i64,
}

#[async_trait]
pub trait WriteStore: Send + Sync + 'static {
    /// Applies the writes in one transaction, in order. A write that cannot
    /// be done (its tweet or user is missing) gets its own `NotFound` and
    /// the others still commit; `Err` means nothing was written.
    async fn apply(&self, writes: &[Write]) -> Result<Vec<Result<Written, StoreError>>, StoreError>;
}

/// The per-write statements of a batch, on one open transaction: what the
/// two databases do differently. Everything else is [`run_batch`].
#[async_trait]
pub(super) trait BatchTx: Send {
    /// Reads (PostgreSQL: and locks, in id order) these tweets' counters.
    async fn tweets(&mut self, ids: &[i64]) -> Result<Vec<TweetRowCounts>, StoreError>;
    /// Reads (PostgreSQL: and locks, in id order) these users.
    async fn users(&mut self, ids: &[i64]) -> Result<Vec<User>, StoreError>;
    /// Inserts likes (user, tweet, at), skipping those already there;
    /// returns the (user, tweet) pairs inserted.
    async fn insert_likes(&mut self, likes: &[(Id, Id, Timestamp)]) -> Result<Vec<(i64, i64)>, StoreError>;
    /// Deletes a like; false if there was none.
    async fn delete_like(&mut self, user: Id, tweet: Id) -> Result<bool, StoreError>;
    /// Inserts follows (follower, followee, follow id, at), skipping those
    /// already there; returns the (follower, followee) pairs inserted.
    async fn insert_follows(&mut self, follows: &[(Id, Id, Id, Timestamp)]) -> Result<Vec<(i64, i64)>, StoreError>;
    /// Deletes a follow; false if there was none.
    async fn delete_follow(&mut self, follower: Id, followee: Id) -> Result<bool, StoreError>;
    /// Inserts tweets and their media.
    async fn insert_tweets(&mut self, tweets: &[&NewTweet]) -> Result<(), StoreError>;
    /// The batch's last writes, gathered over all of its writes (see [`BatchEnd`]).
    async fn finish(&mut self, end: &BatchEnd<'_>) -> Result<(), StoreError>;
    /// Inserts notifications, skipping those already there (the same owner,
    /// actor, tweet and kind) and those whose tweet is gone; returns the ids
    /// inserted.
    async fn insert_notifications(&mut self, batch: &[NewNotification]) -> Result<HashSet<i64>, StoreError>;
}

/// What a batch writes last, for all of its writes at once.
pub(super) struct BatchEnd<'a> {
    /// Added to tweets' like and view counts: (id, likes, views), in id order.
    pub tweets: &'a [(i64, i64, i64)],
    /// Added to users' counts: (id, followers, followings, tweets), in id order.
    pub users: &'a [(i64, i64, i64, i64)],
    /// Events appended to the outbox.
    pub outbox: &'a [(OutboxMessage, Timestamp)],
    /// Outbox rows the broker acknowledged, deleted: the outbox holds only
    /// what is still to be published.
    pub published: &'a [i64],
}

impl BatchEnd<'_> {
    pub fn is_empty(&self) -> bool {
        self.tweets.is_empty() && self.users.is_empty() && self.outbox.is_empty() && self.published.is_empty()
    }
}

/// Runs a batch on an open transaction (the caller commits).
pub(super) async fn run_batch(tx: &mut dyn BatchTx, writes: &[Write]) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
    let (tweet_ids, user_ids) = rows_touched(writes);
    let mut tally = Tally {
        tweets: tx.tweets(&tweet_ids).await?.into_iter().map(|t| (t.id, t)).collect(),
        users: tx.users(&user_ids).await?.into_iter().map(|u| (u.id.as_i64(), u)).collect(),
        tweet_deltas: HashMap::new(),
        user_deltas: HashMap::new(),
        outbox: Vec::new(),
        published: Vec::new(),
    };
    let ahead = insert_ahead(tx, &tally, writes).await?;
    let mut outcomes = Vec::with_capacity(writes.len());
    for write in writes {
        outcomes.push(apply_one(tx, &mut tally, &ahead, write).await?);
    }
    let mut tweet_deltas: Vec<_> =
        tally.tweet_deltas.into_iter().filter(|(_, d)| *d != (0, 0)).map(|(id, (l, v))| (id, l, v)).collect();
    tweet_deltas.sort_unstable();
    let mut user_deltas: Vec<_> =
        tally.user_deltas.into_iter().filter(|(_, d)| *d != (0, 0, 0)).map(|(id, (a, b, c))| (id, a, b, c)).collect();
    user_deltas.sort_unstable();
    let end = BatchEnd { tweets: &tweet_deltas, users: &user_deltas, outbox: &tally.outbox, published: &tally.published };
    if !end.is_empty() {
        tx.finish(&end).await?;
    }
    Ok(outcomes)
}

/// The tweets and users a batch reads first, each list sorted (the lock order).
fn rows_touched(writes: &[Write]) -> (Vec<i64>, Vec<i64>) {
    let mut tweets = Vec::new();
    let mut users = Vec::new();
    for w in writes {
        match w {
            Write::Like { tweet, .. } | Write::Unlike { tweet, .. } | Write::View { tweet } => tweets.push(tweet.as_i64()),
            Write::Follow { follower, followee, .. } | Write::Unfollow { follower, followee } => {
                users.push(follower.as_i64());
                users.push(followee.as_i64());
            }
            Write::Post(t) => users.push(t.author.as_i64()),
            Write::Published { .. } | Write::Notify(_) => {}
        }
    }
    for list in [&mut tweets, &mut users] {
        list.sort_unstable();
        list.dedup();
    }
    (tweets, users)
}

/// Rows inserted for the whole batch at once, before its writes are gone
/// through in order: the likes and follows whose pair no other write of the
/// batch touches (so inserting them first changes no other outcome), and
/// the new tweets. One statement a kind instead of one a write.
#[derive(Default)]
struct Ahead {
    /// (user, tweet) -> whether the like was new.
    likes: HashMap<(i64, i64), bool>,
    /// (follower, followee) -> whether the follow was new.
    follows: HashMap<(i64, i64), bool>,
    posted: HashSet<i64>,
}

async fn insert_ahead(tx: &mut dyn BatchTx, tally: &Tally, writes: &[Write]) -> Result<Ahead, StoreError> {
    // How many writes touch each like pair and each follow pair.
    let mut like_pairs: HashMap<(i64, i64), u32> = HashMap::new();
    let mut follow_pairs: HashMap<(i64, i64), u32> = HashMap::new();
    for w in writes {
        match w {
            Write::Like { user, tweet, .. } | Write::Unlike { user, tweet } => {
                *like_pairs.entry((user.as_i64(), tweet.as_i64())).or_default() += 1;
            }
            Write::Follow { follower, followee, .. } | Write::Unfollow { follower, followee } => {
                *follow_pairs.entry((follower.as_i64(), followee.as_i64())).or_default() += 1;
            }
            _ => {}
        }
    }
    let mut likes = Vec::new();
    let mut follows = Vec::new();
    let mut posts = Vec::new();
    for w in writes {
        match w {
            Write::Like { user, tweet, at, .. }
                if like_pairs[&(user.as_i64(), tweet.as_i64())] == 1 && tally.tweets.contains_key(&tweet.as_i64()) =>
            {
                likes.push((*user, *tweet, *at));
            }
            Write::Follow { follower, followee, follow_id, at }
                if follow_pairs[&(follower.as_i64(), followee.as_i64())] == 1
                    && tally.users.contains_key(&follower.as_i64())
                    && tally.users.contains_key(&followee.as_i64()) =>
            {
                follows.push((*follower, *followee, *follow_id, *at));
            }
            Write::Post(t) if tally.users.contains_key(&t.author.as_i64()) => posts.push(t),
            _ => {}
        }
    }
    let mut ahead = Ahead::default();
    if !likes.is_empty() {
        let inserted: HashSet<(i64, i64)> = tx.insert_likes(&likes).await?.into_iter().collect();
        for (user, tweet, _) in likes {
            let pair = (user.as_i64(), tweet.as_i64());
            ahead.likes.insert(pair, inserted.contains(&pair));
        }
    }
    if !follows.is_empty() {
        let inserted: HashSet<(i64, i64)> = tx.insert_follows(&follows).await?.into_iter().collect();
        for (follower, followee, ..) in follows {
            let pair = (follower.as_i64(), followee.as_i64());
            ahead.follows.insert(pair, inserted.contains(&pair));
        }
    }
    if !posts.is_empty() {
        tx.insert_tweets(&posts).await?;
        ahead.posted = posts.iter().map(|t| t.id.as_i64()).collect();
    }
    Ok(ahead)
}

/// The rows a batch read, as its writes so far changed them.
struct Tally {
    tweets: HashMap<i64, TweetRowCounts>,
    users: HashMap<i64, User>,
    /// Per tweet: likes and views to add.
    tweet_deltas: HashMap<i64, (i64, i64)>,
    /// Per user: followers, followings and tweets to add.
    user_deltas: HashMap<i64, (i64, i64, i64)>,
    outbox: Vec<(OutboxMessage, Timestamp)>,
    /// Outbox rows to delete.
    published: Vec<i64>,
}

impl Tally {
    fn tweet(&mut self, id: Id) -> Result<&mut TweetRowCounts, StoreError> {
        self.tweets.get_mut(&id.as_i64()).ok_or(StoreError::NotFound)
    }

    fn user(&self, id: Id) -> Result<&User, StoreError> {
        self.users.get(&id.as_i64()).ok_or(StoreError::NotFound)
    }

    fn add_likes(&mut self, tweet: Id, n: i64) -> i64 {
        let row = self.tweets.get_mut(&tweet.as_i64()).expect("checked by the caller");
        row.like_count += n;
        self.tweet_deltas.entry(tweet.as_i64()).or_default().0 += n;
        row.like_count
    }

    /// Adds (followers, followings, tweets) to a user.
    fn add_to_user(&mut self, user: Id, by: (i64, i64, i64)) {
        let u = self.users.get_mut(&user.as_i64()).expect("checked by the caller");
        u.followers_count += by.0;
        u.followings_count += by.1;
        u.tweets_count += by.2;
        let d = self.user_deltas.entry(user.as_i64()).or_default();
        *d = (d.0 + by.0, d.1 + by.1, d.2 + by.2);
    }
}

async fn apply_one(
    tx: &mut dyn BatchTx,
    tally: &mut Tally,
    ahead: &Ahead,
    write: &Write,
) -> Result<Result<Written, StoreError>, StoreError> {
    // `missing!` answers this write alone with NotFound.
    macro_rules! missing {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            }
        };
    }
    Ok(Ok(match write {
        Write::Like { user, tweet, at, event_id } => {
            let owner = missing!(tally.tweet(*tweet)).author_id;
            let added = match ahead.likes.get(&(user.as_i64(), tweet.as_i64())) {
                Some(added) => *added,
                None => !tx.insert_likes(&[(*user, *tweet, *at)]).await?.is_empty(),
            };
            let like_count = tally.add_likes(*tweet, i64::from(added));
            if added && owner != user.as_i64() {
                tally.outbox.push((like_event(*event_id, *tweet, Id::from_i64(owner), *user, *at), *at));
            }
            let view_count = missing!(tally.tweet(*tweet)).view_count;
            Written::Like { added, like_count, view_count }
        }
        Write::Unlike { user, tweet } => {
            missing!(tally.tweet(*tweet));
            let removed = tx.delete_like(*user, *tweet).await?;
            let like_count = tally.add_likes(*tweet, -i64::from(removed));
            Written::Unlike { removed, like_count }
        }
        Write::Follow { follower, followee, follow_id, at } => {
            missing!(tally.user(*follower));
            missing!(tally.user(*followee));
            let added = match ahead.follows.get(&(follower.as_i64(), followee.as_i64())) {
                Some(added) => *added,
                None => !tx.insert_follows(&[(*follower, *followee, *follow_id, *at)]).await?.is_empty(),
            };
            if added {
                tally.add_to_user(*follower, (0, 1, 0));
                tally.add_to_user(*followee, (1, 0, 0));
            }
            Written::Follow { added, followee: tally.user(*followee)?.clone() }
        }
        Write::Unfollow { follower, followee } => {
            missing!(tally.user(*follower));
            missing!(tally.user(*followee));
            let removed = tx.delete_follow(*follower, *followee).await?;
            if removed {
                tally.add_to_user(*follower, (0, -1, 0));
                tally.add_to_user(*followee, (-1, 0, 0));
            }
            Written::Unfollow { removed, follower: tally.user(*follower)?.clone(), followee: tally.user(*followee)?.clone() }
        }
        Write::Post(tweet) => {
            missing!(tally.user(tweet.author));
            if !ahead.posted.contains(&tweet.id.as_i64()) {
                tx.insert_tweets(&[tweet]).await?;
            }
            tally.add_to_user(tweet.author, (0, 0, 1));
            tally.outbox.push((posted_event(tweet), tweet.created_at));
            // Likes and views later in the batch may refer to it.
            let counts = TweetRowCounts { id: tweet.id.as_i64(), author_id: tweet.author.as_i64(), like_count: 0, view_count: 0 };
            tally.tweets.insert(tweet.id.as_i64(), counts);
            Written::Post { author: tally.user(tweet.author)?.clone() }
        }
        Write::View { tweet } => {
            let row = missing!(tally.tweet(*tweet));
            row.view_count += 1;
            let view_count = row.view_count;
            tally.tweet_deltas.entry(tweet.as_i64()).or_default().1 += 1;
            Written::View { view_count }
        }
        Write::Published { ids } => {
            tally.published.extend_from_slice(ids);
            Written::Published
        }
        Write::Notify(batch) => {
            let inserted = tx.insert_notifications(batch).await?;
            Written::Notified { stored: batch.iter().map(|n| inserted.contains(&n.id.as_i64())).collect() }
        }
    }))
}
