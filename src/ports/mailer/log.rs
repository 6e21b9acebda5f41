use async_trait::async_trait;

use super::{Email, MailError, Mailer};

/// Writes each email to the log instead of sending it.
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    fn kind(&self) -> &'static str {
        "log"
    }

    async fn send(&self, email: Email) -> Result<(), MailError> {
        tracing::info!(
            target: "chirp::mail",
            to = %email.to,
            subject = %email.subject,
            "email not sent (CHIRP_SMTP_URL is unset); it reads:\n{}",
            email.body
        );
        Ok(())
    }
}
