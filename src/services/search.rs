//! Search: users by username, tweets by words and phrases. The user's text
//! is parsed into terms here (`domain::search`); the stores only ever see
//! quoted terms, never the raw text.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::search::{MAX_QUERY_CHARS, TweetQuery};
use crate::domain::{FieldErrors, Id, Tweet, User};
use crate::error::{Error, Result};
use crate::ports::store::{PageRequest, Store, UserSearchKey};
use crate::services::pages::{Page, page_request};

/// Longest username search accepted (usernames are at most 30 characters).
pub const MAX_USER_QUERY_CHARS: usize = 64;

pub struct Search {
    store: Arc<dyn Store>,
}

fn too_long(max: usize) -> Error {
    Error::Validation(FieldErrors::single("search", format!("must be at most {max} characters")))
}

fn encode_key((group, name): &UserSearchKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("{group}|{name}"))
}

fn decode_key(cursor: &str) -> Option<UserSearchKey> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (group, name) = raw.split_once('|')?;
    let group: i32 = group.parse().ok().filter(|g| (0..=1).contains(g))?;
    Some((group, name.to_owned()))
}

impl Search {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Tweets containing every word and phrase of `text`, newest first.
    pub async fn tweets(
        &self,
        text: &str,
        author: Option<Id>,
        page: (PageRequest, u32),
        viewer: Option<Id>,
    ) -> Result<Page<Tweet>> {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(too_long(MAX_QUERY_CHARS));
        }
        let query = TweetQuery::parse(text);
        if query.is_empty() {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let rows = self.store.search_tweets(&query, author, page.0, viewer).await?;
        Ok(Page::from_rows(rows, page.1, |t| t.id))
    }

    /// Users whose username contains `text` ignoring case, those starting
    /// with it first; without text, everyone, newest first. `limit` and
    /// `cursor` are the raw query values.
    pub async fn users(&self, text: Option<&str>, limit: Option<&str>, cursor: Option<&str>) -> Result<Page<User>> {
        let text = text.map(str::trim).unwrap_or_default();
        if text.is_empty() {
            let (request, limit) = page_request(limit, cursor)?;
            let rows = self.store.list_users(request).await?;
            return Ok(Page::from_rows(rows, limit, |u| u.id));
        }
        if text.chars().count() > MAX_USER_QUERY_CHARS {
            return Err(too_long(MAX_USER_QUERY_CHARS));
        }
        let (_, limit) = page_request(limit, None)?;
        let after = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => Some(
                decode_key(c)
                    .ok_or_else(|| Error::Validation(FieldErrors::single("cursor", "is not a cursor returned by this API")))?,
            ),
            None => None,
        };
        let text = text.to_ascii_lowercase();
        // Only these characters can be in a username: other text matches no one.
        if text.len() > 30 || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let mut rows = self.store.search_users(&text, after.as_ref(), limit + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(|(key, _)| encode_key(key)) } else { None };
        Ok(Page { items: rows.into_iter().map(|(_, u)| u).collect(), next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_cursors_round_trip_and_garbage_is_refused() {
        let key = (1, "alice_b".to_owned());
        assert_eq!(decode_key(&encode_key(&key)), Some(key));
        assert_eq!(decode_key("!!"), None);
        assert_eq!(decode_key(&URL_SAFE_NO_PAD.encode("7|x")), None);
    }
}
