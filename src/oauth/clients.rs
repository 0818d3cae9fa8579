//! The apps that sign in through Portcullis: their settings checked once, their secrets made,
//! stored as SHA-256 and compared in constant time, and every change audited in its own
//! transaction.
use std::time::Duration;

use chrono::NaiveDateTime;

use super::scopes::{KNOWN_SCOPES, Scopes};
use crate::accounts::FieldErrors;
use crate::config::JwtAlgorithm;
use crate::db::audit::{self, Action, Actor};
use crate::db::oauth::{self as store, ClientChanges, ClientRow};
use crate::db::users::now;
use crate::db::{DbConnection, write_transaction};
use crate::domain::{GroupName, RedirectUri, Role};

/// 256 random bits.
const SECRET_BYTES: usize = 32;
const CLIENT_ID_BYTES: usize = 16;
const MAX_NAME_CHARS: usize = 80;
const MAX_REDIRECT_URIS: usize = 20;
/// An app's access tokens live at most as long as ours: the revoked list remembers a revoked
/// grant for that long, and no longer.
pub const MIN_TOKEN_SECONDS: i64 = 60;
pub const DEFAULT_REFRESH_SECONDS: i64 = 30 * 24 * 3600;
pub const MAX_REFRESH_SECONDS: i64 = 365 * 24 * 3600;

/// An app as the flows use it, read from its row (a row that does not read is no app).
#[derive(Debug, Clone)]
pub struct Client {
    pub id: i64,
    pub client_id: String,
    pub name: String,
    secret_hash: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    /// Where it may send users after a sign-out it asked for.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Where it hears that a session it signed in through ended (Back-Channel Logout).
    pub backchannel_logout_uri: Option<String>,
    /// Its authorization requests must be pushed first (RFC 9126).
    pub require_pushed_requests: bool,
    pub scopes: Scopes,
    pub ask_consent: bool,
    pub allowed_roles: Vec<Role>,
    pub allowed_groups: Vec<String>,
    pub id_token_alg: JwtAlgorithm,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub enabled: bool,
    pub created_at: NaiveDateTime,
    /// How it came to be: '' (an admin), `dynamic` (registered itself), `waiting` (for approval).
    pub registration: String,
}

impl Client {
    pub fn from_row(row: ClientRow) -> Option<Self> {
        let redirect_uris = row.redirect_uris.lines().map(RedirectUri::parse).collect::<Result<Vec<_>, _>>().ok()?;
        let post_logout_redirect_uris =
            row.post_logout_redirect_uris.lines().map(RedirectUri::parse).collect::<Result<Vec<_>, _>>().ok()?;
        let allowed_roles =
            row.allowed_roles.split_whitespace().map(Role::parse).collect::<Result<Vec<_>, _>>().ok()?;
        let id_token_alg = JwtAlgorithm::parse(&row.id_token_alg).ok()?;
        Some(Self {
            id: row.id,
            client_id: row.client_id,
            name: row.name,
            secret_hash: row.secret_hash,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri: Some(row.backchannel_logout_uri).filter(|uri| !uri.is_empty()),
            require_pushed_requests: row.require_pushed_requests,
            scopes: Scopes::parse(&row.scopes),
            ask_consent: row.ask_consent,
            allowed_roles,
            allowed_groups: row.allowed_groups.split_whitespace().map(str::to_owned).collect(),
            id_token_alg,
            access_token_ttl: Duration::from_secs(u64::try_from(row.access_token_seconds).ok()?),
            refresh_token_ttl: Duration::from_secs(u64::try_from(row.refresh_token_seconds).ok()?),
            enabled: row.is_enabled,
            created_at: row.created_at,
            registration: row.registration,
        })
    }

    /// Confidential apps have a secret; public ones (single-page and native apps) do not, and
    /// must use PKCE.
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    /// Whether `presented` is this app's secret (constant time over the hashes).
    pub fn secret_matches(&self, presented: &str) -> bool {
        let Some(stored) = &self.secret_hash else { return false };
        aws_lc_rs::constant_time::verify_slices_are_equal(hash_secret(presented).as_bytes(), stored.as_bytes()).is_ok()
    }

    /// The registered redirect URI a request names, if it is one.
    pub fn redirect_uri(&self, presented: &str) -> Option<&RedirectUri> {
        self.redirect_uris.iter().find(|uri| uri.accepts(presented))
    }

    /// The registered post-logout address a request names, if it is one (exactly).
    pub fn post_logout_redirect_uri(&self, presented: &str) -> Option<&RedirectUri> {
        self.post_logout_redirect_uris.iter().find(|uri| uri.to_string() == presented)
    }

    /// Whether a user with `role` in `groups` may use the app (empty lists: anyone).
    pub fn admits(&self, role: Role, groups: &[String]) -> bool {
        crate::domain::app_admits(&self.allowed_roles, &self.allowed_groups, role, groups)
    }

    /// The key on the renewal list that outdates every access token of the app (disabled).
    pub fn tokens_key(&self) -> String {
        tokens_key(&self.client_id)
    }
}

pub fn tokens_key(client_id: &str) -> String {
    crate::auth::app_tokens::app_tokens_key(client_id)
}

fn hash_secret(secret: &str) -> String {
    super::flow::sha256_hex(secret)
}

/// What an admin (or the command line) asks for, as typed.
#[derive(Debug, Clone, Default)]
pub struct ClientForm {
    pub name: String,
    /// One per line.
    pub redirect_uris: String,
    /// One per line; may be empty.
    pub post_logout_redirect_uris: String,
    /// May be empty.
    pub backchannel_logout_uri: String,
    pub require_pushed_requests: bool,
    pub public: bool,
    /// Space-separated; empty means every scope we know.
    pub scopes: String,
    pub ask_consent: bool,
    pub allowed_roles: Vec<String>,
    /// Group names, separated by spaces or commas.
    pub allowed_groups: String,
    pub id_token_alg: String,
    /// Seconds; 0 means the default.
    pub access_token_seconds: i64,
    pub refresh_token_seconds: i64,
}

/// Settings that passed every check.
pub struct ValidClient {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: String,
    require_pushed_requests: bool,
    scopes: String,
    ask_consent: bool,
    allowed_roles: String,
    allowed_groups: String,
    id_token_alg: &'static str,
    access_token_seconds: i64,
    refresh_token_seconds: i64,
    public: bool,
}

impl ValidClient {
    /// Every field checked, each error under its field. `max_access_seconds`: our own access
    /// tokens' lifetime (an app's may not be longer).
    pub fn parse(form: &ClientForm, max_access_seconds: i64) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = form.name.trim();
        if name.is_empty() {
            errors.add("name", "Enter a name people will recognise");
        } else if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            errors.add("name", "A name is at most 80 characters, without control characters");
        }
        let mut uris = Vec::new();
        for line in form.redirect_uris.lines().map(str::trim).filter(|line| !line.is_empty()) {
            match RedirectUri::parse(line) {
                Ok(uri) if !uris.contains(&uri) => uris.push(uri),
                Ok(_) => {}
                Err(message) => {
                    errors.add("redirect_uris", format!("{line}: {message}"));
                    break;
                }
            }
        }
        if uris.is_empty() && errors.get("redirect_uris").is_empty() {
            errors.add("redirect_uris", "Enter at least one address the app receives its sign-ins at");
        } else if uris.len() > MAX_REDIRECT_URIS {
            errors.add("redirect_uris", "An app may have at most 20 addresses");
        }
        let mut after_logout: Vec<RedirectUri> = Vec::new();
        for line in form.post_logout_redirect_uris.lines().map(str::trim).filter(|line| !line.is_empty()) {
            match RedirectUri::parse(line) {
                Ok(uri) if !after_logout.contains(&uri) => after_logout.push(uri),
                Ok(_) => {}
                Err(message) => {
                    errors.add("post_logout_redirect_uris", format!("{line}: {message}"));
                    break;
                }
            }
        }
        if after_logout.len() > MAX_REDIRECT_URIS {
            errors.add("post_logout_redirect_uris", "An app may have at most 20 addresses");
        }
        let backchannel_logout_uri = form.backchannel_logout_uri.trim();
        if let Err(message) = check_backchannel_uri(backchannel_logout_uri, !form.public) {
            errors.add("backchannel_logout_uri", message);
        }
        let scopes = if form.scopes.trim().is_empty() {
            KNOWN_SCOPES.join(" ")
        } else {
            let asked: Vec<&str> = form.scopes.split_whitespace().collect();
            if let Some(unknown) = asked.iter().find(|scope| !KNOWN_SCOPES.contains(scope)) {
                errors
                    .add("scopes", format!("{unknown} is not a scope Portcullis knows ({})", KNOWN_SCOPES.join(", ")));
            }
            let mut kept: Vec<&str> = KNOWN_SCOPES.iter().copied().filter(|scope| asked.contains(scope)).collect();
            if !kept.contains(&"openid") {
                kept.insert(0, "openid");
            }
            kept.join(" ")
        };
        let mut roles = Vec::new();
        for raw in &form.allowed_roles {
            match Role::parse(raw) {
                Ok(role) if !roles.contains(&role) => roles.push(role),
                Ok(_) => {}
                Err(_) => errors.add("allowed_roles", format!("{raw} is not a role")),
            }
        }
        let mut groups = Vec::new();
        for raw in form.allowed_groups.split(|c: char| c == ',' || c.is_whitespace()).filter(|raw| !raw.is_empty()) {
            match GroupName::parse(raw) {
                Ok(group) if !groups.contains(&group.to_string()) => groups.push(group.to_string()),
                Ok(_) => {}
                Err(message) => errors.add("allowed_groups", format!("{raw}: {message}")),
            }
        }
        let id_token_alg = match form.id_token_alg.trim() {
            "" | "RS256" => "RS256",
            "EdDSA" => "EdDSA",
            "ES256" => "ES256",
            _ => {
                errors.add("id_token_alg", "Choose RS256, EdDSA or ES256");
                "RS256"
            }
        };
        let access_token_seconds = match form.access_token_seconds {
            0 => max_access_seconds,
            seconds if (MIN_TOKEN_SECONDS..=max_access_seconds).contains(&seconds) => seconds,
            _ => {
                errors.add(
                    "access_token_seconds",
                    format!("Between {MIN_TOKEN_SECONDS} and {max_access_seconds} seconds (the lifetime of Portcullis's own access tokens)"),
                );
                max_access_seconds
            }
        };
        let refresh_token_seconds = match form.refresh_token_seconds {
            0 => DEFAULT_REFRESH_SECONDS,
            seconds if (MIN_TOKEN_SECONDS..=MAX_REFRESH_SECONDS).contains(&seconds) => seconds,
            _ => {
                errors.add("refresh_token_seconds", "Between 60 seconds and 365 days");
                DEFAULT_REFRESH_SECONDS
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name: name.to_owned(),
            redirect_uris: uris.iter().map(|uri| uri.to_string()).collect::<Vec<_>>().join("\n"),
            post_logout_redirect_uris: after_logout.iter().map(|uri| uri.to_string()).collect::<Vec<_>>().join("\n"),
            backchannel_logout_uri: backchannel_logout_uri.to_owned(),
            require_pushed_requests: form.require_pushed_requests,
            scopes,
            ask_consent: form.ask_consent,
            allowed_roles: roles.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(" "),
            allowed_groups: groups.join(" "),
            id_token_alg,
            access_token_seconds,
            refresh_token_seconds,
            public: form.public,
        })
    }

    fn changes(&self, at: NaiveDateTime) -> ClientChanges<'_> {
        ClientChanges {
            name: &self.name,
            redirect_uris: &self.redirect_uris,
            scopes: &self.scopes,
            ask_consent: self.ask_consent,
            allowed_roles: &self.allowed_roles,
            allowed_groups: &self.allowed_groups,
            id_token_alg: self.id_token_alg,
            access_token_seconds: self.access_token_seconds,
            refresh_token_seconds: self.refresh_token_seconds,
            updated_at: at,
            post_logout_redirect_uris: &self.post_logout_redirect_uris,
            backchannel_logout_uri: &self.backchannel_logout_uri,
            require_pushed_requests: self.require_pushed_requests,
        }
    }
}

/// OpenID Connect Back-Channel Logout 1.0 §2.2: an absolute URL without a fragment, https (or
/// http for a confidential app: Portcullis may reach it on an internal network); empty is none.
fn check_backchannel_uri(uri: &str, confidential: bool) -> Result<(), &'static str> {
    if uri.is_empty() {
        return Ok(());
    }
    if uri.len() > 2000 {
        return Err("An address is at most 2,000 characters");
    }
    let parsed = url::Url::parse(uri).map_err(|_| "Enter a whole address, such as https://app.example.com/logout")?;
    if parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("An address has no #fragment and no user name or password");
    }
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" if parsed.host_str().is_some() && confidential => Ok(()),
        "http" => Err("A public app's address must use https"),
        _ => Err("The address must start with https:// (or http:// for an app with a secret)"),
    }
}

/// A new app, and its secret (shown once; `None` for a public app).
pub struct Created {
    pub client: ClientRow,
    pub secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("there is no such app")]
    NotFound,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

fn audit_app(
    conn: &mut DbConnection,
    actor: &Actor,
    action: Action,
    row: &ClientRow,
    details: &str,
) -> diesel::QueryResult<()> {
    let details = if details.is_empty() {
        format!("{} ({})", row.name, row.client_id)
    } else {
        format!("{} ({}): {details}", row.name, row.client_id)
    };
    audit::record(conn, actor, action, None, &details)
}

pub fn create(conn: &mut DbConnection, actor: &Actor, valid: &ValidClient) -> Result<Created, ClientError> {
    let client_id = crate::random::token_base64(CLIENT_ID_BYTES);
    let secret = (!valid.public).then(|| crate::random::token_base64(SECRET_BYTES));
    let at = now();
    write_transaction(conn, |conn| -> Result<Created, ClientError> {
        let row = store::insert_client(
            conn,
            &client_id,
            secret.as_deref().map(hash_secret).as_deref(),
            &valid.changes(at),
            ("", at),
        )?;
        let kind = if valid.public { "public" } else { "confidential" };
        audit_app(conn, actor, Action::AppCreate, &row, kind)?;
        Ok(Created { client: row, secret: secret.clone() })
    })
}

pub fn update(conn: &mut DbConnection, actor: &Actor, id: i64, valid: &ValidClient) -> Result<ClientRow, ClientError> {
    write_transaction(conn, |conn| {
        let at = now();
        if !store::update_client(conn, id, &valid.changes(at))? {
            return Err(ClientError::NotFound);
        }
        let row = store::find_client(conn, id)?.ok_or(ClientError::NotFound)?;
        // Tokens issued under the old settings (scopes, who may use it) stop here.
        store::outdate_client_tokens(conn, &tokens_key(&row.client_id), at)?;
        audit_app(conn, actor, Action::AppUpdate, &row, "")?;
        Ok(row)
    })
}

/// Inserts an app that registered itself (`registration`: `dynamic` or `waiting`), with its
/// secret (`None`: public); the caller audits it.
pub(super) fn insert_registered(
    conn: &mut DbConnection,
    client_id: &str,
    secret: Option<&str>,
    valid: &ValidClient,
    (registration, at): (&str, NaiveDateTime),
) -> diesel::QueryResult<ClientRow> {
    store::insert_client(conn, client_id, secret.map(hash_secret).as_deref(), &valid.changes(at), (registration, at))
}

/// Disabling an app refuses its tokens everywhere within a second (and its refresh tokens and
/// codes at once); enabling lets it sign people in again.
pub fn set_enabled(conn: &mut DbConnection, actor: &Actor, id: i64, enabled: bool) -> Result<ClientRow, ClientError> {
    write_transaction(conn, |conn| {
        let at = now();
        if !store::set_client_enabled(conn, id, enabled, at)? {
            return Err(ClientError::NotFound);
        }
        let row = store::find_client(conn, id)?.ok_or(ClientError::NotFound)?;
        if !enabled {
            store::outdate_client_tokens(conn, &tokens_key(&row.client_id), at)?;
        }
        audit_app(conn, actor, if enabled { Action::AppEnable } else { Action::AppDisable }, &row, "")?;
        Ok(row)
    })
}

pub fn delete(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<ClientRow, ClientError> {
    write_transaction(conn, |conn| {
        let row = store::find_client(conn, id)?.ok_or(ClientError::NotFound)?;
        store::outdate_client_tokens(conn, &tokens_key(&row.client_id), now())?;
        store::delete_client(conn, id)?;
        audit_app(conn, actor, Action::AppDelete, &row, "")?;
        Ok(row)
    })
}

/// A new secret (shown once); the old one stops working at once.
pub fn rotate_secret(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<(ClientRow, String), ClientError> {
    let secret = crate::random::token_base64(SECRET_BYTES);
    write_transaction(conn, |conn| {
        let row = store::find_client(conn, id)?.ok_or(ClientError::NotFound)?;
        store::set_client_secret(conn, id, &hash_secret(&secret), now())?;
        audit_app(conn, actor, Action::AppSecretRotated, &row, "")?;
        Ok((row, secret.clone()))
    })
}

/// A failed client authentication, for the audit trail.
pub fn record_auth_failure(conn: &mut DbConnection, actor: &Actor, row: &ClientRow) -> diesel::QueryResult<()> {
    audit_app(conn, actor, Action::AppAuthFailed, row, "wrong client secret")
}

/// The settings of a stored app as a form (to edit them).
pub fn form_of(client: &Client) -> ClientForm {
    ClientForm {
        name: client.name.clone(),
        redirect_uris: client.redirect_uris.iter().map(|uri| uri.to_string()).collect::<Vec<_>>().join("\n"),
        post_logout_redirect_uris: client
            .post_logout_redirect_uris
            .iter()
            .map(|uri| uri.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        backchannel_logout_uri: client.backchannel_logout_uri.clone().unwrap_or_default(),
        require_pushed_requests: client.require_pushed_requests,
        public: !client.is_confidential(),
        scopes: client.scopes.to_string(),
        ask_consent: client.ask_consent,
        allowed_roles: client.allowed_roles.iter().map(|role| role.as_str().to_owned()).collect(),
        allowed_groups: client.allowed_groups.join(" "),
        id_token_alg: client.id_token_alg.name().to_owned(),
        access_token_seconds: i64::try_from(client.access_token_ttl.as_secs()).unwrap_or(0),
        refresh_token_seconds: i64::try_from(client.refresh_token_ttl.as_secs()).unwrap_or(0),
    }
}
