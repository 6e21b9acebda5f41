//! Ports: the traits the services depend on. Each has an embedded adapter
//! (the default) and a scale-out adapter, chosen from configuration.

pub mod broker;
pub mod cache;
pub mod mailer;
pub mod media_store;
pub mod store;
