//! SMTP adapter (lettre). The URL decides the transport security:
//! `smtps://` is TLS from the first byte; `smtp://` requires STARTTLS, except
//! towards a loopback host, where it is used only if offered (local test
//! servers); `?tls=required|opportunistic|none` overrides.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Email, MailError, Mailer};

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    Tls,
    StartTlsRequired,
    StartTlsOpportunistic,
    None,
}

fn security_of(url: &url::Url) -> anyhow::Result<Security> {
    let explicit = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
    // `smtp` is not a special scheme to the URL parser, so IP hosts arrive as text.
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    Ok(match (url.scheme(), explicit.as_deref()) {
        ("smtps", None | Some("wrapper" | "tls")) => Security::Tls,
        ("smtp", Some("required" | "starttls")) => Security::StartTlsRequired,
        ("smtp", Some("opportunistic")) => Security::StartTlsOpportunistic,
        ("smtp", Some("none")) => Security::None,
        ("smtp", None) if loopback => Security::StartTlsOpportunistic,
        ("smtp", None) => Security::StartTlsRequired,
        (scheme, tls) => anyhow::bail!("unsupported SMTP URL: scheme {scheme:?} with tls={tls:?}"),
    })
}

impl SmtpMailer {
    pub fn new(smtp_url: &str, from: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(smtp_url).context("CHIRP_SMTP_URL is not a URL")?;
        let host = url.host_str().context("CHIRP_SMTP_URL has no host")?.trim_matches(['[', ']']).to_owned();
        let security = security_of(&url)?;
        let tls_params = || TlsParameters::new(host.clone()).context("TLS setup");
        let (tls, default_port) = match security {
            Security::Tls => (Tls::Wrapper(tls_params()?), 465),
            Security::StartTlsRequired => (Tls::Required(tls_params()?), 587),
            Security::StartTlsOpportunistic => (Tls::Opportunistic(tls_params()?), 587),
            Security::None => (Tls::None, 25),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
            .port(url.port().unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(Duration::from_secs(15)));
        if !url.username().is_empty() {
            let decode = |s: &str| percent_decode(s);
            builder = builder.credentials(Credentials::new(decode(url.username()), decode(url.password().unwrap_or_default())));
        }
        let from = from.parse::<Mailbox>().context("CHIRP_MAIL_FROM is not a mailbox")?;
        Ok(Self { transport: builder.build(), from })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[async_trait]
impl Mailer for SmtpMailer {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, email: Email) -> Result<(), MailError> {
        let to: Mailbox = email.to.parse().map_err(|e| MailError(anyhow::Error::new(e).context("recipient")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(email.body)
            .map_err(|e| MailError(e.into()))?;
        self.transport.send(message).await.map_err(|e| MailError(e.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(url: &str) -> Security {
        security_of(&url::Url::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn the_url_scheme_decides_transport_security() {
        assert_eq!(security("smtps://u:p@mail.example.com"), Security::Tls);
        assert_eq!(security("smtp://u:p@mail.example.com:587"), Security::StartTlsRequired);
        assert_eq!(security("smtp://127.0.0.1:2525"), Security::StartTlsOpportunistic);
        assert_eq!(security("smtp://mail.example.com?tls=none"), Security::None);
        assert!(security_of(&url::Url::parse("http://x").unwrap()).is_err());
    }

    #[test]
    fn credentials_in_the_url_are_percent_decoded() {
        assert_eq!(percent_decode("p%40ss+word"), "p@ss+word");
    }
}
