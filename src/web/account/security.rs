//! `GET /account/security`: two-step sign-in — whether it is on, how many recovery codes are
//! left, and the forms to set it up, make new codes or turn it off. Setting up lives in
//! `security/authenticator.rs`, new codes in `security/recovery_codes.rs`.
pub(crate) mod authenticator;
pub(crate) mod confirm;
pub(crate) mod passkeys;
pub(crate) mod recovery_codes;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::shared::load_account;
use crate::accounts::FieldErrors;
use crate::auth::credentials::PasswordCheck;
use crate::config::MfaPolicy;
use crate::db::users::User;
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::cookies;
use crate::web::flash::Flash;
use crate::web::layout::{Layout, render, with_retry_after};
use crate::web::time_words::{When, wait_phrase};

pub(crate) const PATH: &str = "/account/security";

#[derive(Template)]
#[template(path = "account/security.html")]
pub(crate) struct SecurityPage<'a> {
    pub layout: Layout,
    pub user: &'a User,
    /// Covered by the policy without a second factor: nothing else opens until one is set up.
    pub must_enrol: bool,
    /// The policy requires a second factor of this user (so it cannot be turned off).
    pub required: bool,
    /// Who the policy covers, in words ("administrators", "everyone").
    pub required_of: &'static str,
    pub enabled_since: Option<When>,
    pub codes_left: i64,
    pub passkeys: Vec<PasskeyView>,
    /// Empty when passkeys work here; otherwise why not.
    pub passkeys_off: &'static str,
    pub errors: FieldErrors,
}

/// One of the user's passkeys, as the page lists it.
pub(crate) struct PasskeyView {
    pub id: i64,
    pub name: String,
    pub created: When,
    pub last_used: When,
}

/// A form that only asks for the current password (new recovery codes, turning off). The
/// page holds both forms, so each names its field after itself.
#[derive(Deserialize)]
pub(crate) struct PasswordOnly {
    #[serde(default, alias = "codes_password", alias = "remove_password", alias = "remove_passkey_password")]
    pub current_password: String,
}

pub(crate) async fn security_page<'a>(page: &Page, account: &'a User) -> Result<SecurityPage<'a>, PageError> {
    let factor_since = if account.mfa_enabled { page.accounts().totp_enabled_since(account.id).await? } else { None };
    let codes_left = if account.mfa_enabled { page.accounts().recovery_codes_left(account.id).await? } else { 0 };
    let clock = page.clock();
    let passkeys = page
        .accounts()
        .passkeys_of(account.id)
        .await?
        .into_iter()
        .map(|row| PasskeyView {
            id: row.id,
            name: row.name,
            created: clock.ago(row.created_at),
            last_used: clock.ago_or_never(row.last_used_at),
        })
        .collect();
    Ok(SecurityPage {
        layout: page.layout(),
        user: account,
        must_enrol: page.factors.must_enrol(account),
        required: page.factors.required_for(account.role),
        required_of: match page.factors.policy() {
            MfaPolicy::All => "every account",
            _ => "administrators",
        },
        enabled_since: factor_since.map(|at| clock.ago(at)),
        codes_left,
        passkeys,
        passkeys_off: if page.passkeys.available() { "" } else { crate::auth::passkeys::NEEDS_A_DOMAIN },
        errors: FieldErrors::default(),
    })
}

pub(crate) async fn show(page: Page, flash: Flash) -> Result<HttpResponse, PageError> {
    let account = load_account(&page).await?;
    let mut view = security_page(&page, &account).await?;
    view.layout = view.layout.with_flash(&flash);
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

/// Checks `password` as the account's current one, on the sign-in counters of this browser's
/// device credential (a wrong one audited): what the security forms and "Confirm it is you"
/// share.
pub(crate) async fn check_password(
    req: &HttpRequest,
    page: &Page,
    account: &User,
    password: String,
) -> Result<PasswordCheck, PageError> {
    let device = cookies::read(req, page.cookies.device_name());
    Ok(page.accounts().check_password(page.actor(), account, &password, device).await?)
}

/// Checks the current password given in `field` (on the sign-in counters); on failure,
/// the security page again with the error.
pub(crate) async fn confirm_password(
    req: &HttpRequest,
    page: &Page,
    account: &User,
    password: &str,
    field: &'static str,
) -> Result<Option<HttpResponse>, PageError> {
    let mut errors = FieldErrors::default();
    let mut throttled = None;
    if password.is_empty() {
        errors.add(field, "Enter your current password");
    } else {
        match check_password(req, page, account, password.to_owned()).await? {
            PasswordCheck::Right => return Ok(None),
            PasswordCheck::Wrong => errors.add(field, "Your current password is not right"),
            PasswordCheck::Throttled { retry_after } => {
                errors
                    .add(field, format!("Too many wrong passwords. Wait {} and try again.", wait_phrase(retry_after)));
                throttled = Some(retry_after);
            }
        }
    }
    let mut view = security_page(page, account).await?;
    view.errors = errors;
    Ok(Some(match throttled {
        Some(retry_after) => with_retry_after(render(StatusCode::TOO_MANY_REQUESTS, &view)?, retry_after),
        None => render(StatusCode::UNPROCESSABLE_ENTITY, &view)?,
    }))
}

/// The recovery codes, shown once (after new codes, or right after setting up the app).
#[derive(Template)]
#[template(path = "account/recovery_codes.html")]
pub(crate) struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
    /// The codes as a `data:` link for the download button.
    download_href: String,
    /// Shown right after setting up the app (rather than after making new codes).
    just_enabled: bool,
}

impl RecoveryCodesPage {
    pub(crate) fn new(page: &Page, codes: Vec<String>, just_enabled: bool) -> Self {
        let text = format!(
            "Recovery codes for {} at {}\nEach code signs you in once when you cannot use your authenticator app.\n\n{}\n",
            page.user.username,
            page.factors.issuer(),
            codes.join("\n")
        );
        let encoded: String = text
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (byte as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect();
        Self {
            layout: page.layout(),
            codes,
            download_href: format!("data:text/plain;charset=utf-8,{encoded}"),
            just_enabled,
        }
    }
}
