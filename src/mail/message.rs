//! What each message says, in plain English, rendered through one pair of Askama templates
//! (`templates/mail/message.txt` and `.html`) into the text and HTML parts. Subjects are
//! fixed phrases: no user-supplied text ever reaches a header except the recipient's name,
//! which the transport encodes.
use askama::Template;
use serde::{Deserialize, Serialize};

/// A message to one person.
#[derive(Debug, Clone)]
pub enum Mail {
    /// `portcullis mail test`.
    Test,
    PasswordReset {
        link: String,
        minutes: i64,
    },
    Invitation {
        username: String,
        inviter: String,
        link: String,
        days: i64,
    },
    ConfirmEmail {
        username: String,
        new_address: String,
        link: String,
        hours: i64,
    },
    Notice(Notice),
}

/// Security notices: something happened to the account; if it was not the owner, they act.
#[derive(Debug, Clone)]
pub enum Notice {
    /// `how`: "you changed it", "an administrator reset it", "with a reset link".
    PasswordChanged {
        how: &'static str,
    },
    SecondFactorAdded {
        what: String,
    },
    SecondFactorRemoved {
        what: String,
    },
    RecoveryCodeUsed {
        left: i64,
    },
    NewDevice {
        software: String,
        client_ip: String,
        at: String,
    },
    SignInsPaused {
        minutes: u64,
    },
    /// To the old address (and, for an administrator's change, the new one too).
    EmailChanged {
        old_address: String,
        new_address: String,
        by_admin: bool,
    },
}

impl Mail {
    /// A short name for the admin page and the flood limits (`password_reset`, `notice.…`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::PasswordReset { .. } => "password_reset",
            Self::Invitation { .. } => "invitation",
            Self::ConfirmEmail { .. } => "email_confirmation",
            Self::Notice(notice) => match notice {
                Notice::PasswordChanged { .. } => "notice.password",
                Notice::SecondFactorAdded { .. } => "notice.second_factor_added",
                Notice::SecondFactorRemoved { .. } => "notice.second_factor_removed",
                Notice::RecoveryCodeUsed { .. } => "notice.recovery_code",
                Notice::NewDevice { .. } => "notice.new_device",
                Notice::SignInsPaused { .. } => "notice.sign_in_paused",
                Notice::EmailChanged { .. } => "notice.email_changed",
            },
        }
    }

    /// At most this many messages of this kind to one address within an hour: nobody can use
    /// Portcullis to flood a mailbox (the reset form is anyone's to fill in).
    pub fn hourly_cap(&self) -> i64 {
        match self {
            Self::Test => i64::MAX,
            Self::PasswordReset { .. } => 3,
            Self::Notice(Notice::SignInsPaused { .. }) => 1,
            Self::Invitation { .. } | Self::ConfirmEmail { .. } => 5,
            Self::Notice(_) => 10,
        }
    }
}

/// The rendered message: what the outbox keeps (sealed) until it is delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Action {
    pub label: &'static str,
    pub url: String,
}

#[derive(Template)]
#[template(path = "mail/message.txt")]
struct TextPart<'a> {
    greeting: &'a str,
    paragraphs: &'a [String],
    action: &'a Option<Action>,
    after: &'a [String],
    footer: &'a str,
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlPart<'a> {
    subject: &'a str,
    greeting: &'a str,
    paragraphs: &'a [String],
    action: &'a Option<Action>,
    after: &'a [String],
    footer: &'a str,
}

const NOT_YOU: &str = "If this was not you, change your password now and tell your administrator.";

/// Composes `mail` for `name` at the site `site` (the public host).
pub fn render(mail: &Mail, name: &str, site: &str) -> askama::Result<Rendered> {
    let mut after = Vec::new();
    let mut action = None;
    let (subject, paragraphs): (String, Vec<String>) = match mail {
        Mail::Test => (
            "Portcullis test message".into(),
            vec![format!("This is a test message from Portcullis at {site}. Mail from this server works.")],
        ),
        Mail::PasswordReset { link, minutes } => {
            action = Some(Action { label: "Choose a new password", url: link.clone() });
            after.push(format!(
                "The link works once, for {minutes} minutes. If you did not ask for it, ignore this message: your \
                 password stays as it is."
            ));
            (
                "Reset your password".into(),
                vec![format!(
                    "Someone asked to reset the password of your account at {site}. If it was you, choose a new password here."
                )],
            )
        }
        Mail::Invitation { username, inviter, link, days } => {
            action = Some(Action { label: "Choose your password", url: link.clone() });
            after.push(format!(
                "The link works once, for {days} days. If you were not expecting this, you can ignore it."
            ));
            (
                format!("You are invited to {site}"),
                vec![format!(
                    "{inviter} has made you an account at {site} with the username {username}. Choose your password \
                     to start using it."
                )],
            )
        }
        Mail::ConfirmEmail { username, new_address, link, hours } => {
            action = Some(Action { label: "Confirm this address", url: link.clone() });
            after.push(format!(
                "The link works for {hours} hours. Until you confirm, your account keeps its old address. If you did \
                 not ask for this, ignore this message."
            ));
            (
                "Confirm your new e-mail address".into(),
                vec![format!("You asked to use {new_address} for your account {username} at {site}.")],
            )
        }
        Mail::Notice(notice) => {
            let (subject, said) = notice_words(notice);
            after.push(match notice {
                Notice::SignInsPaused { .. } => "If this was you, wait and try again. If it was not, someone may be \
                                                 guessing your password: make sure it is long and used nowhere else."
                    .to_owned(),
                Notice::EmailChanged { by_admin: true, .. } => {
                    "If you did not expect this, tell your administrator.".to_owned()
                }
                _ => NOT_YOU.to_owned(),
            });
            (subject.into(), vec![said])
        }
    };
    let greeting = format!("Hello {name},");
    let footer = format!("Sent by Portcullis at {site}. You get this message because of your account there.");
    let text =
        TextPart { greeting: &greeting, paragraphs: &paragraphs, action: &action, after: &after, footer: &footer }
            .render()?;
    let html = HtmlPart {
        subject: &subject,
        greeting: &greeting,
        paragraphs: &paragraphs,
        action: &action,
        after: &after,
        footer: &footer,
    }
    .render()?;
    Ok(Rendered { subject, text, html })
}

fn notice_words(notice: &Notice) -> (&'static str, String) {
    match notice {
        Notice::PasswordChanged { how } => {
            ("Your password was changed", format!("The password of your account was changed ({how})."))
        }
        Notice::SecondFactorAdded { what } => (
            "A sign-in method was added to your account",
            format!("{what} was added to your account's two-step sign-in."),
        ),
        Notice::SecondFactorRemoved { what } => (
            "A sign-in method was removed from your account",
            format!("{what} was removed from your account's two-step sign-in."),
        ),
        Notice::RecoveryCodeUsed { left } => (
            "A recovery code was used to sign in",
            format!(
                "Someone signed in to your account with one of your recovery codes. {left} unused code(s) are left; \
                 you can make new ones on your Security page."
            ),
        ),
        Notice::NewDevice { software, client_ip, at } => (
            "New sign-in to your account",
            format!(
                "Your account was signed in to at {at} from a browser not seen before: {software}, address {client_ip}."
            ),
        ),
        Notice::SignInsPaused { minutes } => (
            "Sign-ins to your account are paused",
            format!(
                "There were several wrong passwords for your account, so sign-ins are paused for about {minutes} \
                 minute(s)."
            ),
        ),
        Notice::EmailChanged { old_address, new_address, by_admin } => (
            "Your e-mail address was changed",
            format!(
                "The e-mail address of your account was changed from {old_address} to {new_address}{}.",
                if *by_admin { " by an administrator" } else { "" }
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_carry_the_link_and_html_is_escaped() {
        let mail = Mail::Invitation {
            username: "ann".into(),
            inviter: "<b>Boss</b>".into(),
            link: "https://login.example.com/invitation?token=abc".into(),
            days: 7,
        };
        let rendered = render(&mail, "Ann & co", "login.example.com").unwrap();
        assert_eq!(rendered.subject, "You are invited to login.example.com");
        assert!(rendered.text.contains("https://login.example.com/invitation?token=abc"));
        assert!(rendered.text.contains("Hello Ann & co,"), "the text part is not HTML-escaped");
        assert!(!rendered.html.contains("Ann & co") && !rendered.html.contains("<b>Boss"), "{}", rendered.html);
        assert!(rendered.html.contains("href=\"https://login.example.com/invitation?token=abc\""));
    }

    #[test]
    fn every_kind_has_a_cap_and_a_fixed_subject() {
        let notice = Mail::Notice(Notice::SignInsPaused { minutes: 1 });
        assert_eq!(notice.kind(), "notice.sign_in_paused");
        assert_eq!(notice.hourly_cap(), 1);
        let rendered = render(&notice, "x", "site").unwrap();
        assert!(!rendered.subject.contains('\n'));
    }
}
