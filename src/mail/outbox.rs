//! [`Outbox`]: queues a message on the caller's connection, inside the transaction of the
//! change that causes it, so the message exists exactly when the change does. The rendered
//! message is sealed (it may carry a live link); the sender thread opens and delivers it.
use chrono::NaiveDateTime;

use super::links::{self, Purpose};
use super::message::{self, Mail, Notice, Rendered};
use crate::config::{JwtSecret, MailSettings, NoticeKind, Notices, PublicUrl};
use crate::crypto::sealed::SealingKey;
use crate::db::DbConnection;
use crate::db::outbox::{self, NewMessage, OutboxRow};

/// Sealed outbox bodies share one owner number (the key's purpose label separates them from
/// every other sealed value).
const OUTBOX_OWNER: i64 = 0;

/// Who a message goes to.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub address: &'a str,
    pub name: &'a str,
}

impl<'a> Recipient<'a> {
    /// A user, at their address on file.
    pub fn of(user: &'a crate::db::users::User) -> Self {
        Self { address: user.email.as_str(), name: user.display_name.as_str() }
    }
}

/// What the outbox keeps for delivery.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    pub to_name: String,
    pub message: Rendered,
}

pub struct Outbox {
    enabled: bool,
    public_url: PublicUrl,
    notices: Notices,
    sealing: SealingKey,
}

impl Outbox {
    pub fn new(mail: &MailSettings, public_url: &PublicUrl, secret: &JwtSecret, previous: Option<&JwtSecret>) -> Self {
        Self {
            enabled: mail.smtp.is_some(),
            public_url: public_url.clone(),
            notices: mail.notices.clone(),
            sealing: SealingKey::derive(secret, previous, "portcullis outbox v1"),
        }
    }

    /// An outbox that sends nothing (tools that never mail).
    pub fn off(secret: &JwtSecret) -> Self {
        let public_url = PublicUrl::parse("http://localhost").expect("a valid origin");
        Self::new(&MailSettings::default(), &public_url, secret, None)
    }

    /// Whether mail is configured; without it nothing is queued and mail flows are hidden.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The site's name in messages: the public host.
    pub fn site(&self) -> &str {
        self.public_url.host_name()
    }

    /// A link to `purpose`'s page carrying `token`, built from `PORTCULLIS_PUBLIC_URL` only.
    pub fn link(&self, purpose: Purpose, token: &str) -> String {
        format!("{}{}?token={token}", self.public_url.origin(), purpose.path())
    }

    /// Whether `to` has had as many messages like `mail` this hour as it may.
    pub fn over_cap(
        &self,
        conn: &mut DbConnection,
        mail: &Mail,
        to: &str,
        now: NaiveDateTime,
    ) -> diesel::QueryResult<bool> {
        Ok(outbox::count_recent(conn, mail.kind(), to, now - chrono::Duration::hours(1))? >= mail.hourly_cap())
    }

    /// Queues `mail` to `to` on `conn` (call it inside the change's transaction). Returns
    /// false, queueing nothing, when mail is off or `to` has had its hourly share of this kind.
    pub fn queue(&self, conn: &mut DbConnection, to: Recipient<'_>, mail: &Mail) -> anyhow::Result<bool> {
        let now = crate::db::users::now();
        if !self.enabled || self.over_cap(conn, mail, to.address, now)? {
            if self.enabled {
                tracing::info!(kind = mail.kind(), "message not queued: this address had its share this hour");
            }
            return Ok(false);
        }
        let rendered = message::render(mail, to.name, self.site())?;
        let sealed = Sealed { to_name: to.name.to_owned(), message: rendered };
        let body = self.sealing.seal(OUTBOX_OWNER, &serde_json::to_vec(&sealed)?);
        outbox::insert(
            conn,
            &NewMessage {
                kind: mail.kind(),
                recipient: to.address,
                subject: &sealed.message.subject,
                sealed_body: &body,
                created_at: now,
            },
        )?;
        Ok(true)
    }

    /// Queues a security notice, unless the administrator turned that kind off.
    pub fn notify(
        &self,
        conn: &mut DbConnection,
        to: Recipient<'_>,
        kind: NoticeKind,
        notice: Notice,
    ) -> anyhow::Result<()> {
        if self.notices.sends(kind) {
            self.queue(conn, to, &Mail::Notice(notice))?;
        }
        Ok(())
    }

    /// Stores a link for `purpose` and queues `compose(link)` to `to`, both on `conn`.
    pub fn send_link(
        &self,
        conn: &mut DbConnection,
        to: Recipient<'_>,
        (purpose, user_id, new_email): (Purpose, i64, Option<&str>),
        compose: impl Fn(String) -> Mail,
    ) -> anyhow::Result<bool> {
        if !self.enabled {
            return Ok(false);
        }
        // Two requests at once must not both count under the cap or both leave a live link.
        crate::db::users::lock_row(conn, user_id)?;
        let now = crate::db::users::now();
        // Over the cap, the older link stays the one that works (nothing new arrives).
        if self.over_cap(conn, &compose(String::new()), to.address, now)? {
            return Ok(false);
        }
        let token = links::issue(conn, purpose, user_id, new_email, now)?;
        self.queue(conn, to, &compose(self.link(purpose, &token)))
    }

    /// The message in `row`, if this instance's secrets open it.
    pub fn open(&self, row: &OutboxRow) -> Option<Sealed> {
        let opened = self.sealing.open(OUTBOX_OWNER, &row.sealed_body)?;
        serde_json::from_slice(&opened.plaintext).ok()
    }
}
