//! Mail settings: the SMTP server (`PORTCULLIS_SMTP_URL`), the sender (`PORTCULLIS_MAIL_FROM`)
//! and which security notices go out (`PORTCULLIS_MAIL_NOTICES`).
use anyhow::{anyhow, bail};
use secrecy::SecretString;

use super::env::Env;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://…`: plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// `smtps://…`: TLS from the first byte.
    Implicit,
    /// `smtp://…?tls=none`: plain text, allowed only to a loopback address.
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// User name and password, when the URL carries them.
    pub credentials: Option<(String, SecretString)>,
}

impl SmtpSettings {
    /// `smtp://user:pass@host:587`, `smtps://host:465`, `smtp://127.0.0.1:2525?tls=none`.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(raw)
            .map_err(|_| anyhow!("PORTCULLIS_SMTP_URL must look like smtp://user:password@host:587 (not a URL)"))?;
        let (mut security, default_port) = match url.scheme() {
            "smtp" => (SmtpSecurity::StartTls, 587),
            "smtps" => (SmtpSecurity::Implicit, 465),
            other => bail!("PORTCULLIS_SMTP_URL must start with smtp:// or smtps:// (got {other}://)"),
        };
        let host = match url.host() {
            Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => bail!("PORTCULLIS_SMTP_URL must name the server's host"),
        };
        if url.path() != "" && url.path() != "/" {
            bail!("PORTCULLIS_SMTP_URL takes no path (got {:?})", url.path());
        }
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "none") if security == SmtpSecurity::StartTls => security = SmtpSecurity::None,
                ("tls", "required" | "starttls") if security == SmtpSecurity::StartTls => {}
                ("tls", other) => bail!(
                    "PORTCULLIS_SMTP_URL: tls={other} is not understood (smtp:// requires STARTTLS; \
                     tls=none is for a server on this machine; use smtps:// for implicit TLS)"
                ),
                (other, _) => bail!("PORTCULLIS_SMTP_URL: unknown parameter {other:?} (only tls=none is known)"),
            }
        }
        if security == SmtpSecurity::None && !is_loopback(&host) {
            bail!(
                "PORTCULLIS_SMTP_URL: tls=none would send passwords and sign-in links in plain text; it is allowed \
                 only to a server on this machine (127.0.0.1, ::1 or localhost)"
            );
        }
        let credentials = if url.username().is_empty() {
            None
        } else {
            let decode = |part: &str| percent_encoding::percent_decode_str(part).decode_utf8_lossy().into_owned();
            let password = url.password().map(decode).unwrap_or_default();
            Some((decode(url.username()), SecretString::from(password)))
        };
        Ok(Self { host, port: url.port().unwrap_or(default_port), security, credentials })
    }

    /// Where we connect, for logs and pages (never the credentials).
    pub fn describe(&self) -> String {
        let scheme = match self.security {
            SmtpSecurity::StartTls => "smtp (STARTTLS)",
            SmtpSecurity::Implicit => "smtps",
            SmtpSecurity::None => "smtp (no TLS)",
        };
        format!("{scheme} {}:{}", self.host, self.port)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The security notices users can be sent; each can be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The password was changed, reset by an administrator or through a link.
    Password,
    /// A second factor was added or removed.
    SecondFactor,
    /// A recovery code was used to sign in.
    RecoveryCode,
    /// Someone signed in from a browser not seen before.
    NewDevice,
    /// Sign-ins to the account were paused after failed attempts.
    SignInPaused,
}

impl NoticeKind {
    pub const ALL: [Self; 5] =
        [Self::Password, Self::SecondFactor, Self::RecoveryCode, Self::NewDevice, Self::SignInPaused];

    pub fn name(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SecondFactor => "second-factor",
            Self::RecoveryCode => "recovery-code",
            Self::NewDevice => "new-device",
            Self::SignInPaused => "sign-in-paused",
        }
    }
}

/// Which notices are sent (`PORTCULLIS_MAIL_NOTICES`: `all`, `none` or a list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notices(Vec<NoticeKind>);

impl Default for Notices {
    fn default() -> Self {
        Self(NoticeKind::ALL.to_vec())
    }
}

impl Notices {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw.trim() {
            "all" => return Ok(Self::default()),
            "none" => return Ok(Self(Vec::new())),
            _ => {}
        }
        let mut kinds = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let kind = NoticeKind::ALL.into_iter().find(|kind| kind.name() == part).ok_or_else(|| {
                let known: Vec<_> = NoticeKind::ALL.iter().map(|kind| kind.name()).collect();
                anyhow!(
                    "PORTCULLIS_MAIL_NOTICES: unknown notice {part:?} (all, none, or a list of: {})",
                    known.join(", ")
                )
            })?;
            kinds.push(kind);
        }
        Ok(Self(kinds))
    }

    pub fn sends(&self, kind: NoticeKind) -> bool {
        self.0.contains(&kind)
    }
}

#[derive(Debug, Clone, Default)]
pub struct MailSettings {
    /// `None`: no mail. Every flow that needs it is hidden or explained.
    pub smtp: Option<SmtpSettings>,
    /// The `From:` of every message, e.g. `Portcullis <login@example.com>`.
    pub from: Option<String>,
    pub notices: Notices,
}

impl MailSettings {
    pub(super) fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<Self> {
        let smtp = env.parsed("PORTCULLIS_SMTP_URL", SmtpSettings::parse)?;
        let from = env.text("PORTCULLIS_MAIL_FROM");
        if let Some(from) = &from
            && (from.contains(['\r', '\n']) || !from.contains('@'))
        {
            bail!("PORTCULLIS_MAIL_FROM must be an address such as Portcullis <login@example.com>");
        }
        if smtp.is_some() && from.is_none() {
            bail!("PORTCULLIS_MAIL_FROM is required with PORTCULLIS_SMTP_URL (e.g. Portcullis <login@example.com>)");
        }
        let notices = env.parsed("PORTCULLIS_MAIL_NOTICES", Notices::parse)?.unwrap_or_default();
        Ok(Self { smtp, from, notices })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_say_how_the_connection_is_protected() {
        let starttls = SmtpSettings::parse("smtp://me%40x.org:p%3Ass@mail.example.com:587").unwrap();
        assert_eq!(
            (starttls.host.as_str(), starttls.port, starttls.security),
            ("mail.example.com", 587, SmtpSecurity::StartTls)
        );
        let (user, password) = starttls.credentials.unwrap();
        assert_eq!(user, "me@x.org");
        assert_eq!(secrecy::ExposeSecret::expose_secret(&password), "p:ss");
        assert_eq!(SmtpSettings::parse("smtps://mail.example.com").unwrap().port, 465);
        let plain = SmtpSettings::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(plain.security, SmtpSecurity::None);
        assert!(!plain.describe().contains("p:ss"));
    }

    #[test]
    fn plain_text_smtp_is_refused_beyond_this_machine() {
        for (raw, expected) in [
            ("smtp://mail.example.com?tls=none", "only to a server on this machine"),
            ("http://mail.example.com", "smtp:// or smtps://"),
            ("smtps://mail.example.com?tls=none", "not understood"),
            ("smtp://mail.example.com?mode=x", "unknown parameter"),
            ("mail.example.com", "not a URL"),
        ] {
            let error = SmtpSettings::parse(raw).unwrap_err().to_string();
            assert!(error.contains(expected), "{raw}: {error}");
        }
    }

    #[test]
    fn notices_can_be_turned_off_one_by_one() {
        assert!(Notices::default().sends(NoticeKind::NewDevice));
        assert!(!Notices::parse("none").unwrap().sends(NoticeKind::Password));
        let some = Notices::parse("password, recovery-code").unwrap();
        assert!(some.sends(NoticeKind::RecoveryCode) && !some.sends(NoticeKind::SignInPaused));
        assert!(Notices::parse("password,typo").unwrap_err().to_string().contains("typo"));
    }
}
