//! Account changes that go through the user's mailbox: a forgotten password, an invitation,
//! a new address to confirm. Each link and its message are written in the transaction of the
//! change that sends them; each use of a link is one transaction that spends it.
use std::sync::Arc;

use super::operations::{self, load, recipient, store_password};
use super::{AccountError, Accounts, ValidAccount};
use crate::db::audit::{self, Action, Actor};
use crate::db::users::{self, ProfileChanges, User, now};
use crate::db::{self as database, DbConnection, email_links, write_transaction};
use crate::domain::Email;
use crate::mail::links::{self, LinkState, Purpose};
use crate::mail::{Mail, Outbox};

/// Confirmation links one user may ask for in an hour, whatever the addresses.
const EMAIL_CHANGES_PER_HOUR: i64 = 5;

const NO_MAIL: &str = "E-mail is not set up on this server (PORTCULLIS_SMTP_URL), so nothing can be sent.";

/// A pending invitation, for the admin's user page.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub sent_at: chrono::NaiveDateTime,
    pub expires_at: chrono::NaiveDateTime,
    /// Still usable (not expired, not revoked).
    pub live: bool,
}

/// Adds a user who chooses their own password through an e-mailed link (valid 7 days).
/// `password_hash` is of a random password nobody knows, so the account cannot be signed in to
/// before the invitation is accepted.
pub(super) fn invite(
    conn: &mut DbConnection,
    outbox: &Outbox,
    actor: &Actor,
    account: &ValidAccount,
    password_hash: &str,
) -> Result<User, AccountError> {
    if !outbox.enabled() {
        return Err(AccountError::Refused(NO_MAIL.to_owned()));
    }
    write_transaction(conn, |conn| {
        let user = operations::insert_account(conn, account, password_hash, false)?;
        send_invitation(conn, outbox, actor, &user)?;
        let details = format!("role: {}; email: {}; invitation sent", user.role, user.email);
        audit::record(conn, actor, Action::UserInvite, Some((user.id, &user.username)), &details)?;
        Ok(user)
    })
}

fn send_invitation(conn: &mut DbConnection, outbox: &Outbox, actor: &Actor, user: &User) -> Result<(), AccountError> {
    let inviter = actor.user.as_ref().map_or_else(|| "An administrator".to_owned(), |(_, name)| name.clone());
    let username = user.username.to_string();
    let days = Purpose::Invitation.lifetime().num_days();
    let sent = outbox.send_link(conn, recipient(user), (Purpose::Invitation, user.id, None), |link| {
        Mail::Invitation { username: username.clone(), inviter: inviter.clone(), link, days }
    })?;
    if !sent {
        return Err(AccountError::Refused(
            "This address has had several invitations in the last hour; wait before sending another.".to_owned(),
        ));
    }
    Ok(())
}

/// Sends a new invitation link (the older one stops working).
pub(super) fn resend_invitation(
    conn: &mut DbConnection,
    outbox: &Outbox,
    actor: &Actor,
    id: i64,
) -> Result<User, AccountError> {
    if !outbox.enabled() {
        return Err(AccountError::Refused(NO_MAIL.to_owned()));
    }
    write_transaction(conn, |conn| {
        let user = load(conn, id)?;
        ensure_invited(conn, &user)?;
        send_invitation(conn, outbox, actor, &user)?;
        audit::record(conn, actor, Action::InvitationResent, Some((user.id, &user.username)), "")?;
        Ok(user)
    })
}

/// Voids the invitation link; the account stays, without a password anyone knows.
pub(super) fn revoke_invitation(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<User, AccountError> {
    write_transaction(conn, |conn| {
        let user = load(conn, id)?;
        ensure_invited(conn, &user)?;
        let voided = email_links::void_all(conn, id, Purpose::Invitation.as_str(), now())?;
        if voided == 0 {
            return Err(AccountError::Refused("That invitation has already expired or been revoked.".to_owned()));
        }
        audit::record(conn, actor, Action::InvitationRevoked, Some((user.id, &user.username)), "")?;
        Ok(user)
    })
}

/// Refuses unless the user was invited and has not accepted yet.
fn ensure_invited(conn: &mut DbConnection, user: &User) -> Result<(), AccountError> {
    match email_links::newest(conn, user.id, Purpose::Invitation.as_str())? {
        Some(link) if link.used_at.is_none() => Ok(()),
        _ => Err(AccountError::Refused(format!("{} has no invitation waiting.", user.username))),
    }
}

/// Spends a live link of `purpose`, or says why it does not work.
fn spend_link(conn: &mut DbConnection, token: &str, purpose: Purpose) -> Result<email_links::EmailLink, AccountError> {
    let at = now();
    match links::check(conn, token, purpose, at)? {
        LinkState::Live(link) if email_links::use_up(conn, &link.token_hash, purpose.as_str(), at)? => Ok(link),
        // Spent by a concurrent request between the check and the update.
        LinkState::Live(_) => Err(AccountError::Link(Box::new(LinkState::Used))),
        dead => Err(AccountError::Link(Box::new(dead))),
    }
}

impl Accounts<'_> {
    /// Whether mail is configured here.
    pub fn mail_enabled(&self) -> bool {
        self.outbox.enabled()
    }

    /// "Forgot your password?": mails a reset link if `address` belongs to an active account
    /// (and it has not had its share of links this hour). Says nothing about which happened.
    pub async fn request_password_reset(&self, address: Email, client_ip: String) -> Result<(), AccountError> {
        let outbox = Arc::clone(self.outbox);
        database::run(self.pool, move |conn| {
            write_transaction(conn, |conn| {
                let Some(user) = users::find_by_login(conn, address.as_str())? else { return Ok(()) };
                if !user.is_active {
                    return Ok(());
                }
                let minutes = Purpose::PasswordReset.lifetime().num_minutes();
                let target = (Purpose::PasswordReset, user.id, None);
                if outbox.send_link(conn, recipient(&user), target, |link| Mail::PasswordReset { link, minutes })? {
                    let actor = Actor::anonymous(Some(client_ip));
                    audit::record(conn, &actor, Action::PasswordResetRequested, Some((user.id, &user.username)), "")?;
                }
                Ok(())
            })
        })
        .await
    }

    /// What a presented link is worth (a read: showing the page spends nothing).
    pub async fn link_state(&self, token: String, purpose: Purpose) -> Result<LinkState, AccountError> {
        database::run(self.pool, move |conn| Ok(links::check(conn, &token, purpose, now())?)).await
    }

    /// The account a live link belongs to.
    pub async fn link_owner(&self, token: String, purpose: Purpose) -> Result<User, AccountError> {
        match self.link_state(token, purpose).await? {
            LinkState::Live(link) => database::run(self.pool, move |conn| load(conn, link.user_id)).await,
            dead => Err(AccountError::Link(Box::new(dead))),
        }
    }

    /// Sets the password chosen through a reset link: the link is spent, every session ends,
    /// a notice goes out. A second factor is still asked for at the next sign-in.
    pub(super) async fn reset_password_with_link(
        &self,
        token: String,
        password_hash: String,
        client_ip: String,
    ) -> Result<User, AccountError> {
        let outbox = Arc::clone(self.outbox);
        self.change(move |conn| {
            write_transaction(conn, |conn| {
                let link = spend_link(conn, &token, Purpose::PasswordReset)?;
                let user = load(conn, link.user_id)?;
                if !user.is_active {
                    return Err(AccountError::Refused("This account is disabled.".to_owned()));
                }
                let actor = Actor::user(&user, Some(client_ip));
                let change = super::operations::NewHash { hash: &password_hash, must_change: false };
                store_password(conn, &outbox, &actor, &user, change, Action::PasswordResetByLink, None)?;
                load(conn, user.id)
            })
        })
        .await
    }

    pub(super) async fn invite_with_hash(
        &self,
        actor: Actor,
        account: ValidAccount,
        password_hash: String,
    ) -> Result<User, AccountError> {
        let outbox = Arc::clone(self.outbox);
        database::run(self.pool, move |conn| invite(conn, &outbox, &actor, &account, &password_hash)).await
    }

    pub async fn resend_invitation(&self, actor: Actor, id: i64) -> Result<User, AccountError> {
        let outbox = Arc::clone(self.outbox);
        database::run(self.pool, move |conn| resend_invitation(conn, &outbox, &actor, id)).await
    }

    pub async fn revoke_invitation(&self, actor: Actor, id: i64) -> Result<User, AccountError> {
        database::run(self.pool, move |conn| revoke_invitation(conn, &actor, id)).await
    }

    /// The user's invitation, while they have not accepted it.
    pub async fn invitation_of(&self, id: i64) -> Result<Option<Invitation>, AccountError> {
        database::run(self.pool, move |conn| {
            let link = email_links::newest(conn, id, Purpose::Invitation.as_str())?;
            Ok(link.filter(|link| link.used_at.is_none()).map(|link| Invitation {
                sent_at: link.created_at,
                live: link.voided_at.is_none() && link.expires_at > now(),
                expires_at: link.expires_at,
            }))
        })
        .await
    }

    /// The invited user's chosen password: the link is spent; the caller signs them in.
    pub(super) async fn accept_invitation(
        &self,
        token: String,
        password_hash: String,
        client_ip: String,
    ) -> Result<User, AccountError> {
        self.change(move |conn| {
            write_transaction(conn, |conn| {
                let link = spend_link(conn, &token, Purpose::Invitation)?;
                let user = load(conn, link.user_id)?;
                if !user.is_active {
                    return Err(AccountError::Refused("This account is disabled. Ask an administrator.".to_owned()));
                }
                let actor = Actor::user(&user, Some(client_ip));
                users::set_password_hash(conn, user.id, &password_hash, false)?;
                audit::record(conn, &actor, Action::InvitationAccepted, Some((user.id, &user.username)), "")?;
                load(conn, user.id)
            })
        })
        .await
    }

    /// A user's own new address: a confirmation link goes to it (valid 24 hours); the account
    /// keeps its address until the link is followed. Refused, as today, when the address is
    /// taken (the caller counts such probes).
    pub async fn request_email_change(
        &self,
        actor: Actor,
        user: &User,
        new_address: Email,
    ) -> Result<(), AccountError> {
        let (outbox, user_id, username) = (Arc::clone(self.outbox), user.id, user.username.to_string());
        database::run(self.pool, move |conn| {
            write_transaction(conn, |conn| {
                let user = load(conn, user_id)?;
                users::ensure_unique(conn, Some(user_id), user.username.as_str(), Some(&new_address))?;
                // Each address has its own hourly cap; this one keeps a user from mailing many.
                let hour_ago = now() - chrono::Duration::hours(1);
                if email_links::count_since(conn, user_id, Purpose::EmailChange.as_str(), hour_ago)?
                    >= EMAIL_CHANGES_PER_HOUR
                {
                    return Err(AccountError::Refused(
                        "You have asked to change your address several times in the last hour; wait a while and \
                         try again."
                            .to_owned(),
                    ));
                }
                let to = crate::mail::Recipient { address: new_address.as_str(), name: user.display_name.as_str() };
                let hours = Purpose::EmailChange.lifetime().num_hours();
                let target = (Purpose::EmailChange, user_id, Some(new_address.as_str()));
                let sent = outbox.send_link(conn, to, target, |link| Mail::ConfirmEmail {
                    username: username.clone(),
                    new_address: new_address.to_string(),
                    link,
                    hours,
                })?;
                if !sent {
                    return Err(AccountError::Refused(
                        "Several confirmation links went to that address in the last hour; wait a while.".to_owned(),
                    ));
                }
                let details = format!("confirmation link sent to {new_address}");
                audit::record(conn, &actor, Action::EmailChangeRequested, Some((user.id, &user.username)), &details)?;
                Ok(())
            })
        })
        .await
    }

    /// The address a live confirmation link would set, and whose account it is.
    pub async fn pending_email_change(&self, token: String) -> Result<(User, String), AccountError> {
        match self.link_state(token, Purpose::EmailChange).await? {
            LinkState::Live(link) => {
                let address = link.new_email.clone().unwrap_or_default();
                let user = database::run(self.pool, move |conn| load(conn, link.user_id)).await?;
                Ok((user, address))
            }
            dead => Err(AccountError::Link(Box::new(dead))),
        }
    }

    /// Follows a confirmation link: the new address takes effect (audited; the old address
    /// gets a notice).
    pub async fn confirm_email_change(&self, token: String, client_ip: String) -> Result<User, AccountError> {
        let outbox = Arc::clone(self.outbox);
        self.change(move |conn| {
            write_transaction(conn, |conn| {
                let link = spend_link(conn, &token, Purpose::EmailChange)?;
                let user = load(conn, link.user_id)?;
                let address =
                    link.new_email.as_deref().and_then(|raw| Email::parse(raw).ok()).ok_or_else(|| {
                        AccountError::Refused("This link does not carry a usable address.".to_owned())
                    })?;
                let actor = Actor::user(&user, Some(client_ip));
                let changes = ProfileChanges { email: Some(&address), ..Default::default() };
                operations::update_profile(conn, &outbox, &actor, user.id, &changes)
            })
        })
        .await
    }
}
