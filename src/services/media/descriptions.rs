//! Alt text edits: the author of a media item's tweet may change its description.

use crate::domain::{AltText, FieldErrors, Id, Media};
use crate::error::{Error, Result};
use crate::ports::store::Store;

/// Sets (or, with a blank text, clears) the description of media item `id` for `caller`.
pub async fn describe(store: &dyn Store, caller: Id, id: Id, raw: &str) -> Result<Media> {
    let description = AltText::parse(raw).map_err(|e| Error::Validation(FieldErrors::single("description", e.to_string())))?;
    let (tweet, _) = store.media_item(id).await?.ok_or(Error::NotFound)?;
    let author = store.tweet(tweet, None).await?.ok_or(Error::NotFound)?.author.id;
    if author != caller {
        return Err(Error::Forbidden("only the author can describe a tweet's media"));
    }
    store.set_media_description(id, description.as_ref()).await?.ok_or(Error::NotFound)
}
