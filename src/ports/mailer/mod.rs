//! The Mailer port: sends the emails chirp writes. By default they are
//! printed to the log (so `cargo run` shows the code); with `CHIRP_SMTP_URL`
//! they go out over SMTP.

mod log;
mod smtp;

use async_trait::async_trait;

pub use self::log::LogMailer;
pub use self::smtp::SmtpMailer;

/// One plain-text email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
#[error("mail could not be sent")]
pub struct MailError(#[source] pub anyhow::Error);

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    async fn send(&self, email: Email) -> Result<(), MailError>;
}
