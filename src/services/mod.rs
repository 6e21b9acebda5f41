//! Services: the use cases. They take domain types, talk to ports, and
//! return domain types or `crate::error::Error`; no SQL, no HTTP.

pub mod accounts;
pub mod passwords;
pub mod tokens;

pub use accounts::Accounts;
pub use tokens::Tokens;
