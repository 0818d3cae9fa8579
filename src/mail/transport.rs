//! SMTP through `lettre`: the connection `PORTCULLIS_SMTP_URL` describes, and the MIME message
//! (text and HTML alternatives, `Message-ID`, `Date`; names encoded by lettre, so CR/LF in a
//! name can never start a header).
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::Tls;
use lettre::{Message, SmtpTransport, Transport};
use secrecy::ExposeSecret;

use super::message::Rendered;
use crate::config::{SmtpSecurity, SmtpSettings};

/// How long one SMTP conversation may take (the sender's claim on a message lasts longer).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    /// For `Message-ID`s: the sender's domain.
    domain: String,
}

/// A delivery that did not happen; `permanent` when the server refused it for good.
#[derive(Debug)]
pub struct SendError {
    pub permanent: bool,
    pub message: String,
}

impl Mailer {
    pub fn new(smtp: &SmtpSettings, from: &str) -> anyhow::Result<Self> {
        let from: Mailbox =
            from.parse().map_err(|error| anyhow!("PORTCULLIS_MAIL_FROM is not an address lettre accepts ({error})"))?;
        let builder = match smtp.security {
            SmtpSecurity::StartTls => SmtpTransport::starttls_relay(&smtp.host),
            SmtpSecurity::Implicit => SmtpTransport::relay(&smtp.host),
            SmtpSecurity::None => Ok(SmtpTransport::builder_dangerous(&smtp.host).tls(Tls::None)),
        }
        .with_context(|| format!("PORTCULLIS_SMTP_URL: cannot set up TLS for {}", smtp.host))?;
        let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
        if let Some((user, password)) = &smtp.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
        }
        let domain = from.email.domain().to_owned();
        Ok(Self { transport: builder.build(), from, domain })
    }

    /// Builds the MIME message.
    pub fn message(
        &self,
        to: (&str, &str),
        rendered: &Rendered,
        message_id: &str,
        date: SystemTime,
    ) -> Result<Message, SendError> {
        let permanent = |message: String| SendError { permanent: true, message };
        let address =
            to.0.parse().map_err(|error| permanent(format!("the recipient's address is refused: {error}")))?;
        // Names are shown, not trusted: control characters go (lettre encodes the rest).
        let name: String = to.1.chars().filter(|c| !c.is_control()).collect();
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(name), address))
            .subject(rendered.subject.clone())
            .message_id(Some(format!("<{message_id}@{}>", self.domain)))
            .date(date)
            .multipart(MultiPart::alternative_plain_html(rendered.text.clone(), rendered.html.clone()))
            .map_err(|error| permanent(format!("the message could not be built: {error}")))
    }

    /// Sends it; the server's answer (code and text) on success.
    pub fn send(&self, message: &Message) -> Result<String, SendError> {
        match self.transport.send(message) {
            Ok(response) => Ok(format!("{} {}", response.code(), response.message().collect::<Vec<_>>().join(" "))),
            Err(error) => Err(SendError { permanent: error.is_permanent(), message: describe(&error) }),
        }
    }
}

/// The error and its causes on one line (lettre's top level alone says little).
fn describe(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
