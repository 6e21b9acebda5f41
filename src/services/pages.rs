//! Keyset pages: `limit` rows older than the cursor's id. The cursor is
//! opaque to clients (base64url of the last row's key).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::{FieldErrors, Id};
use crate::error::Error;
use crate::ports::store::PageRequest;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// One page of `T` and where the next one starts (`None`: this was the last).
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched for it: the extra
    /// row only says that there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> Id) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(|last| encode_cursor(key(last))) } else { None };
        Self { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

pub fn encode_cursor(id: Id) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// Parses `limit` and `cursor` query values; the request asks for one row more than the page holds.
pub fn page_request(limit: Option<&str>, cursor: Option<&str>) -> Result<(PageRequest, u32), Error> {
    let mut errors = FieldErrors::default();
    let limit = match limit {
        None => Some(DEFAULT_LIMIT),
        Some(s) => match s.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
            _ => {
                errors.add("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"));
                None
            }
        },
    };
    let before = match cursor {
        None | Some("") => Some(None),
        Some(s) => {
            match URL_SAFE_NO_PAD.decode(s).ok().and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse::<Id>().ok()) {
                Some(id) => Some(Some(id)),
                None => {
                    errors.add("cursor", "is not a cursor returned by this API");
                    None
                }
            }
        }
    };
    match (limit, before) {
        (Some(limit), Some(before)) => Ok((PageRequest { before, limit: limit + 1 }, limit)),
        _ => Err(Error::Validation(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let (req, limit) = page_request(Some("5"), Some(&encode_cursor(Id::from_i64(77)))).unwrap();
        assert_eq!((req.before, req.limit, limit), (Some(Id::from_i64(77)), 6, 5));
        for (l, c) in [(Some("0"), None), (Some("101"), None), (Some("x"), None), (None, Some("!!")), (None, Some("YWJj"))] {
            assert!(page_request(l, c).is_err(), "{l:?} {c:?}");
        }
    }

    #[test]
    fn the_extra_row_makes_a_next_cursor() {
        let ids = |n: i64| (1..=n).rev().map(Id::from_i64).collect::<Vec<_>>();
        let page = Page::from_rows(ids(3), 2, |id| *id);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_cursor, Some(encode_cursor(Id::from_i64(2))));
        assert_eq!(Page::from_rows(ids(2), 2, |id| *id).next_cursor, None);
    }
}
