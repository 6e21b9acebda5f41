//! Services: the use cases. They take domain types, talk to ports, and
//! return domain types or `crate::error::Error`; no SQL, no HTTP.

pub mod accounts;
pub mod avatar;
pub mod fanout;
pub mod graph;
pub mod live;
pub mod media;
pub mod notifications;
pub mod outbox;
pub mod pages;
pub mod passwords;
pub mod profiles;
pub mod search;
pub mod timeline;
pub mod tokens;
pub mod tweet_cache;
pub mod tweets;
pub mod writes;

pub use accounts::Accounts;
pub use graph::Graph;
pub use profiles::Profiles;
pub use search::Search;
pub use tokens::Tokens;
pub use tweets::Tweets;
