//! chirp: a Twitter-style social network backend.
//!
//! `http` (routes) -> `services` (use cases) -> `ports` (traits with one
//! embedded and one scale-out adapter each). `app` wires them from `config`.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod ports;
pub mod services;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
