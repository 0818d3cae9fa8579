//! Apps that register themselves (RFC 7591 Dynamic Client Registration): off unless
//! `PORTCULLIS_DYNAMIC_REGISTRATION` says `token` (an initial access token an admin issued is
//! needed) or `approval` (with a token the app works at once; without one it waits, disabled,
//! for an admin). The metadata is read strictly — exactly the settings an admin could give, with
//! the same checks — and such apps always ask each user's consent. The number of registrations
//! is bounded, so nobody can grow the table.
use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::{Value, json};

use super::clients::{ClientForm, ValidClient};
use super::flow::{OAuthError, sha256_hex};
use crate::config::DynamicRegistration;
use crate::db::audit::{self, Action, Actor};
use crate::db::oauth::{self as store, RegistrationTokenRow};
use crate::db::{DbConnection, write_transaction};

/// Apps that registered themselves, at most (waiting ones included).
pub const MAX_REGISTERED: i64 = 500;
/// Apps waiting for approval, at most (registrations with a token go on working past it).
pub const MAX_WAITING: i64 = 50;
/// Redirect URIs one registration may name (as for apps an admin adds).
const MAX_URIS: usize = 20;
/// A token's longest life and most uses.
pub const MAX_TOKEN_LIFE: Duration = Duration::from_secs(365 * 24 * 3600);
pub const MAX_TOKEN_USES: i32 = 10_000;

fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_client_metadata", description)
}

/// A list of strings (`field`), at most `max`.
fn strings(metadata: &Value, field: &str, max: usize) -> Result<Option<Vec<String>>, OAuthError> {
    match metadata.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() <= max => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| metadata_error(format!("{field} holds only strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::Array(_)) => Err(metadata_error(format!("{field} may name at most {max}"))),
        Some(_) => Err(metadata_error(format!("{field} must be a list"))),
    }
}

fn string<'a>(metadata: &'a Value, field: &str) -> Result<Option<&'a str>, OAuthError> {
    match metadata.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(metadata_error(format!("{field} must be a string"))),
    }
}

/// The app's settings from its metadata (RFC 7591 §2), and whether it is public.
fn form_of(metadata: &Value) -> Result<(ClientForm, &'static str), OAuthError> {
    if !metadata.is_object() {
        return Err(metadata_error("Send the metadata as a JSON object"));
    }
    let redirect_uris = strings(metadata, "redirect_uris", MAX_URIS)
        .map_err(|error| OAuthError::new("invalid_redirect_uri", error.description))?
        .filter(|uris| !uris.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_redirect_uri", "redirect_uris must name at least one address"))?;
    for uri in &redirect_uris {
        if let Err(message) = crate::domain::RedirectUri::parse(uri) {
            return Err(OAuthError::new("invalid_redirect_uri", format!("{uri}: {message}")));
        }
    }
    let method = match string(metadata, "token_endpoint_auth_method")? {
        None | Some("client_secret_basic") => "client_secret_basic",
        Some("client_secret_post") => "client_secret_post",
        Some("none") => "none",
        Some(other) => return Err(metadata_error(format!("token_endpoint_auth_method {other} is not supported"))),
    };
    let allowed_grants = ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"];
    let grants = strings(metadata, "grant_types", 8)?.unwrap_or_default();
    if let Some(other) = grants.iter().find(|grant| !allowed_grants.contains(&grant.as_str())) {
        return Err(metadata_error(format!("grant_types: {other} is not offered to apps that register themselves")));
    }
    let types = strings(metadata, "response_types", 4)?.unwrap_or_default();
    if types.iter().any(|kind| kind != "code") {
        return Err(metadata_error("response_types may only be code"));
    }
    let post_logout = strings(metadata, "post_logout_redirect_uris", MAX_URIS)
        .map_err(|error| OAuthError::new("invalid_redirect_uri", error.description))?
        .unwrap_or_default();
    let backchannel = string(metadata, "backchannel_logout_uri")?.unwrap_or_default();
    if !backchannel.is_empty() && !backchannel.starts_with("https://") {
        // An app nobody vetted may not make Portcullis post to plain-http (internal) addresses.
        return Err(metadata_error("backchannel_logout_uri must be an https address"));
    }
    let name = string(metadata, "client_name")?.map(str::trim).filter(|name| !name.is_empty());
    let host = url::Url::parse(&redirect_uris[0]).ok().and_then(|url| url.host_str().map(str::to_owned));
    let form = ClientForm {
        name: name.map_or_else(|| host.unwrap_or_else(|| "An app".to_owned()), str::to_owned),
        redirect_uris: redirect_uris.join("\n"),
        post_logout_redirect_uris: post_logout.join("\n"),
        backchannel_logout_uri: backchannel.to_owned(),
        public: method == "none",
        scopes: string(metadata, "scope")?.unwrap_or_default().to_owned(),
        // An app nobody vetted asks each user first.
        ask_consent: true,
        id_token_alg: string(metadata, "id_token_signed_response_alg")?.unwrap_or_default().to_owned(),
        ..ClientForm::default()
    };
    Ok((form, method))
}

/// Who registers: with an initial access token (`Bearer` on the request), or without.
pub struct Registering<'a> {
    pub mode: DynamicRegistration,
    pub token: Option<&'a str>,
    pub client_ip: &'a str,
    pub max_access_seconds: i64,
}

/// `POST /oauth2/register` (RFC 7591 §3): the app, or why not. The answer is the registered
/// metadata (§3.2.1) with the client id and, for a confidential app, its secret.
pub fn register(conn: &mut DbConnection, who: &Registering<'_>, metadata: &Value) -> Result<Value, OAuthError> {
    if who.mode == DynamicRegistration::Off {
        return Err(OAuthError::new("access_denied", "Apps cannot register themselves here; ask an administrator"));
    }
    let (form, method) = form_of(metadata)?;
    let valid = ValidClient::parse(&form, who.max_access_seconds).map_err(|errors| {
        let message = errors.0.iter().map(|(field, message)| format!("{field}: {message}")).collect::<Vec<_>>();
        let uri_problem = errors.0.iter().any(|(field, _)| field.ends_with("redirect_uris"));
        OAuthError::new(
            if uri_problem { "invalid_redirect_uri" } else { "invalid_client_metadata" },
            message.join("; "),
        )
    })?;
    let client_id = crate::random::token_base64(16);
    let secret = (method != "none").then(|| crate::random::token_base64(32));
    let at = crate::db::users::now();
    let outcome = write_transaction(conn, |conn| -> anyhow::Result<Result<_, OAuthError>> {
        let with_token = match who.token {
            Some(token) if store::use_registration_token(conn, &sha256_hex(token), at)? => true,
            Some(_) => {
                return Ok(Err(OAuthError::new(
                    "invalid_token",
                    "The initial access token is unknown, expired or used up",
                )));
            }
            None if who.mode == DynamicRegistration::Approval => false,
            None => return Ok(Err(OAuthError::new("invalid_token", "Registering needs an initial access token"))),
        };
        let (registered, waiting) = store::count_registered(conn)?;
        if registered >= MAX_REGISTERED || (!with_token && waiting >= MAX_WAITING) {
            return Ok(Err(metadata_error("This server takes no more registrations now; ask its administrator")));
        }
        let registration = if with_token { "dynamic" } else { "waiting" };
        let created =
            super::clients::insert_registered(conn, &client_id, secret.as_deref(), &valid, (registration, at))?;
        let how = if with_token { "with an initial access token" } else { "waiting for approval" };
        audit::record(
            conn,
            &Actor { client_ip: Some(who.client_ip.to_owned()), ..Actor::default() },
            Action::AppRegistered,
            None,
            &format!("{} ({}): {how}", created.name, created.client_id),
        )?;
        Ok(Ok(created))
    });
    let created = outcome.map_err(OAuthError::from)??;
    let client =
        super::Client::from_row(created).ok_or_else(|| OAuthError::server_error(&anyhow::anyhow!("unreadable")))?;
    let mut answer = json!({
        "client_id": client.client_id,
        "client_id_issued_at": at.and_utc().timestamp(),
        "client_name": client.name,
        "redirect_uris": client.redirect_uris.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "post_logout_redirect_uris": client.post_logout_redirect_uris.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "token_endpoint_auth_method": method,
        "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "response_types": ["code"],
        "scope": client.scopes.to_string(),
        "id_token_signed_response_alg": client.id_token_alg.name(),
    });
    if let Some(uri) = &client.backchannel_logout_uri {
        answer["backchannel_logout_uri"] = json!(uri);
        answer["backchannel_logout_session_required"] = json!(true);
    }
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
        answer["client_secret_expires_at"] = json!(0);
    }
    if client.registration == "waiting" {
        // Not in RFC 7591: says why the app cannot sign anyone in yet.
        answer["portcullis_status"] = json!("waiting_for_approval");
    }
    Ok(answer)
}

/// A new initial access token (shown once): good for `uses` registrations until `life` passes.
pub fn issue_token(
    conn: &mut DbConnection,
    actor: &Actor,
    life: Duration,
    uses: i32,
) -> anyhow::Result<(String, NaiveDateTime)> {
    anyhow::ensure!(
        life >= Duration::from_secs(60) && life <= MAX_TOKEN_LIFE,
        "a token lives between a minute and a year"
    );
    anyhow::ensure!((1..=MAX_TOKEN_USES).contains(&uses), "a token is good for 1 to {MAX_TOKEN_USES} registrations");
    let token = format!("pcr_{}", crate::random::token_base64(32));
    let at = crate::db::users::now();
    let expires_at = at + chrono::Duration::from_std(life)?;
    let made_by = actor.user.as_ref().map_or_else(|| "the command line".to_owned(), |(_, name)| name.clone());
    write_transaction(conn, |conn| -> anyhow::Result<()> {
        store::insert_registration_token(
            conn,
            &RegistrationTokenRow {
                token_hash: sha256_hex(&token),
                created_at: at,
                expires_at,
                uses_left: uses,
                made_by,
            },
        )?;
        let details = format!(
            "{uses} registration{} until {}",
            if uses == 1 { "" } else { "s" },
            expires_at.format("%Y-%m-%d %H:%M UTC")
        );
        audit::record(conn, actor, Action::RegistrationTokenIssued, None, &details)?;
        Ok(())
    })?;
    Ok((token, expires_at))
}

/// Approves an app that waits (it can sign people in from now on); false when it was not waiting.
pub fn approve(conn: &mut DbConnection, actor: &Actor, id: i64) -> anyhow::Result<bool> {
    write_transaction(conn, |conn| -> anyhow::Result<bool> {
        let at = crate::db::users::now();
        if !store::approve_client(conn, id, at)? {
            return Ok(false);
        }
        if let Some(row) = store::find_client(conn, id)? {
            audit::record(conn, actor, Action::AppApproved, None, &format!("{} ({})", row.name, row.client_id))?;
        }
        Ok(true)
    })
}
