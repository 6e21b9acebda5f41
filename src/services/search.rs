//! Search: users by username, tweets by words and phrases.

use std::sync::Arc;

use crate::domain::{Id, Tweet, User};
use crate::error::{Error, Result};
use crate::ports::store::{PageRequest, Store};
use crate::services::pages::Page;

pub struct Search {
    #[allow(dead_code)]
    store: Arc<dyn Store>,
}

impl Search {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Tweets containing every word and phrase of `text`, newest first.
    pub async fn tweets(&self, _text: &str, _author: Option<Id>, _page: (PageRequest, u32), _viewer: Option<Id>) -> Result<Page<Tweet>> {
        Err(Error::Unprocessable("search_unavailable", "tweet search is being built".into()))
    }

    /// Users whose username contains `text` ignoring case, those starting with it first.
    /// `limit` and `cursor` are the raw query values.
    pub async fn users(&self, _text: Option<&str>, _limit: Option<&str>, _cursor: Option<&str>) -> Result<Page<User>> {
        Err(Error::Unprocessable("search_unavailable", "user search is being built".into()))
    }
}
