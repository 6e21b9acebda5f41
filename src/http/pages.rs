//! Page bodies and the query parameters of list endpoints.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::Error;
use crate::ports::store::PageRequest;
use crate::services::pages::{Page, page_request};

/// One page of a list. Pass `next_cursor` as `cursor` for the next page; `null` means this was the last.
#[derive(Serialize, ToSchema)]
pub struct PageBody<T: ToSchema> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> PageBody<T> {
    pub fn from_page<U>(page: Page<U>, f: impl FnMut(U) -> T) -> Self {
        let page = page.map(f);
        Self { data: page.items, next_cursor: page.next_cursor }
    }
}

/// `limit` (1–100, default 20) and `cursor` (from the previous page's `next_cursor`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// Opaque; the `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn request(&self) -> Result<(PageRequest, u32), Error> {
        page_request(self.limit.as_deref(), self.cursor.as_deref())
    }
}
