//! What the CLI's subcommands do (argument parsing lives in `main.rs`).
use std::io::{BufRead, IsTerminal};

use anyhow::{Context, anyhow, bail};
use secrecy::{ExposeSecret, SecretString};

use crate::accounts::{self, AccountInput, ValidAccount};
use crate::auth::second_factor::SecondFactors;
use crate::auth::signing_keys::SigningKeys;
use crate::config::Settings;
use crate::db::DbConnection;
use crate::db::audit::{self, Action, Actor};
use crate::db::user_search::{self, Cursor, Filters, PageRequest, SortKey};
use crate::db::users::{self, ProfileChanges, User};
use crate::db::{self, ConnectionManager};
use crate::domain::NewPassword;
use crate::domain::Role;
use crate::mail::Outbox;
use crate::mail::transport::Mailer;
use crate::startup::Application;
use crate::user_import::{self, ImportError};
use diesel::r2d2::PooledConnection;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::sync::Arc;

/// Where a new password comes from.
#[derive(Clone, Copy)]
pub enum PasswordSource {
    /// One line on standard input (for scripts); only the line ending is removed.
    Stdin,
    /// Asked twice on the terminal, without echo.
    Prompt,
}

pub fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let application = Application::build(settings).await?;
        application.run_until_stopped().await.context("the server stopped with an error")
    })
}

/// Times `samples` argon2id hashes with the server's parameters and prints the median and the
/// sign-in rate it bounds (`PORTCULLIS_HASH_CONCURRENCY` hashes at a time).
pub fn hash_speed(settings: &Settings, samples: u32) -> anyhow::Result<()> {
    let alone = median(crate::auth::password::time_hashes(samples)?);
    println!("one argon2id hash: {:.1} ms (median of {samples})", alone.as_secs_f64() * 1000.0);
    // The same with every hashing thread busy at once, as under a burst of sign-ins: the
    // threads then share caches and memory bandwidth (and, on some machines, physical cores).
    let threads = settings.hash_concurrency;
    let together = std::thread::scope(|scope| {
        let timers: Vec<_> =
            (0..threads).map(|_| scope.spawn(move || crate::auth::password::time_hashes(samples))).collect();
        timers
            .into_iter()
            .map(|timer| timer.join().map_err(|_| anyhow::anyhow!("a timing thread panicked"))?)
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let together = median(together.into_iter().flatten().collect());
    println!("with {threads} hashing at once: {:.1} ms each (median)", together.as_secs_f64() * 1000.0);
    println!(
        "sign-ins per second at most: {:.1} by one hash's time, {:.1} with all {threads} at once (PORTCULLIS_HASH_CONCURRENCY)",
        threads as f64 / alone.as_secs_f64(),
        threads as f64 / together.as_secs_f64(),
    );
    Ok(())
}

fn median(mut timings: Vec<std::time::Duration>) -> std::time::Duration {
    timings.sort();
    timings.get(timings.len() / 2).copied().unwrap_or_default()
}

pub fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let applied = db::run_migrations(&mut conn)?;
    if applied.is_empty() {
        println!("The database is up to date.");
    } else {
        println!("Applied {} migration(s): {}", applied.len(), applied.join(", "));
    }
    Ok(())
}

pub struct CreateUser {
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub role: String,
    pub must_change_password: bool,
    pub password: PasswordSource,
}

pub fn create_user(settings: &Settings, request: CreateUser) -> anyhow::Result<()> {
    let password = read_password(request.password)?;
    let account = ValidAccount::parse(AccountInput {
        username: &request.username,
        email: &request.email,
        display_name: request.display_name.as_deref().unwrap_or_default(),
        role: &request.role,
        password,
    })
    .map_err(|errors| anyhow!("the user was not created: {errors}"))?;
    let mut conn = connect(settings)?;
    let user = accounts::create_from_command_line(&mut conn, &account, request.must_change_password)
        .map_err(|error| anyhow!("the user was not created: {error}"))?;
    println!("Created {} user {:?} (id {}).", user.role, user.username.as_str(), user.id);
    Ok(())
}

pub fn set_password(settings: &Settings, login: &str, source: PasswordSource) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let user = find(&mut conn, login)?;
    let password = NewPassword::parse(read_password(source)?, &[&user.username, &user.email, &user.display_name])
        .map_err(|error| anyhow!("the password was not changed: {error}"))?;
    let outbox = outbox(settings)?;
    accounts::set_password_from_command_line(&mut conn, &outbox, &user, &password)
        .map_err(|error| anyhow!("the password was not changed: {error}"))?;
    println!("Changed the password of {:?}.", user.username.as_str());
    Ok(())
}

/// Adds a user who chooses their password through an e-mailed link (valid 7 days).
pub fn invite_user(settings: &Settings, request: InviteUser) -> anyhow::Result<()> {
    let outbox = outbox(settings)?;
    if !outbox.enabled() {
        bail!("e-mail is not set up (PORTCULLIS_SMTP_URL and PORTCULLIS_MAIL_FROM), so no invitation can be sent");
    }
    // A random password nobody knows until the invitation is accepted.
    let unknown = SecretString::from(crate::random::token_base64(32));
    let account = ValidAccount::parse(AccountInput {
        username: &request.username,
        email: &request.email,
        display_name: request.display_name.as_deref().unwrap_or_default(),
        role: &request.role,
        password: unknown,
    })
    .map_err(|errors| anyhow!("the user was not invited: {errors}"))?;
    let mut conn = connect(settings)?;
    let user = accounts::invite_from_command_line(&mut conn, &outbox, &account)
        .map_err(|error| anyhow!("the user was not invited: {error}"))?;
    println!(
        "Invited {} ({}, id {}): the invitation is in the outbox; a running Portcullis delivers it. The link works for 7 days.",
        user.username, user.email, user.id
    );
    Ok(())
}

pub struct InviteUser {
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub role: String,
}

/// Sends one test message straight to the SMTP server (not through the outbox) and prints
/// the server's answer.
pub fn mail_test(settings: &Settings, address: &str) -> anyhow::Result<()> {
    let Some(smtp) = &settings.mail.smtp else {
        bail!("e-mail is not set up: set PORTCULLIS_SMTP_URL and PORTCULLIS_MAIL_FROM");
    };
    let to = crate::domain::Email::parse(address).map_err(|error| anyhow!("{address:?} is not an address: {error}"))?;
    let mailer = Mailer::new(smtp, settings.mail.from.as_deref().unwrap_or_default())?;
    let rendered =
        crate::mail::message::render(&crate::mail::Mail::Test, to.as_str(), settings.public_url.host_name())?;
    let message_id = format!("test.{}", crate::random::token_base64(12));
    let message = mailer
        .message((to.as_str(), to.as_str()), &rendered, &message_id, std::time::SystemTime::now())
        .map_err(|error| anyhow!(error.message))?;
    println!("Sending a test message to {to} through {} …", smtp.describe());
    match mailer.send(&message) {
        Ok(answer) => {
            println!("The server accepted it: {answer}");
            Ok(())
        }
        Err(error) => bail!(
            "the server did not accept it ({}): {}",
            if error.permanent { "refused for good" } else { "try again later" },
            error.message
        ),
    }
}

/// The outbox the CLI's changes queue their mail in (a running server delivers it).
fn outbox(settings: &Settings) -> anyhow::Result<Outbox> {
    let secret = crate::startup::signing_secret(settings)?;
    Ok(Outbox::new(&settings.mail, &settings.public_url, &secret, settings.jwt_secret_previous.as_ref()))
}

fn find(conn: &mut DbConnection, login: &str) -> anyhow::Result<User> {
    users::find_by_login(conn, login)?.ok_or_else(|| anyhow!("there is no user {login:?}"))
}

pub fn list_users(settings: &Settings, search: Option<&str>, limit: i64) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let request = PageRequest {
        filters: Filters { search: search.map(str::to_lowercase), ..Default::default() },
        sort: SortKey::Username,
        descending: false,
        cursor: None,
        backwards: false,
        size: limit,
    };
    let plan = user_search::plan(&mut conn, &request.filters)?;
    let page = user_search::page(&mut conn, &request, &plan)?;
    println!("{:>8}  {:<32}  {:<40}  {:<5}  {:<8}  last sign-in", "id", "username", "email", "role", "status");
    for user in &page.users {
        println!(
            "{:>8}  {:<32}  {:<40}  {:<5}  {:<8}  {}",
            user.id,
            user.username,
            user.email,
            user.role.as_str(),
            if user.is_active { "active" } else { "disabled" },
            user.last_login_at.map_or_else(|| "never".to_owned(), |at| at.format("%Y-%m-%d %H:%M").to_string())
        );
    }
    if page.more {
        println!("(first {limit} shown; narrow with --search or raise --limit)");
    }
    Ok(())
}

pub fn set_active(settings: &Settings, login: &str, active: bool) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let user = find(&mut conn, login)?;
    let user = accounts::set_active(&mut conn, &Actor::command_line(), user.id, active)?;
    println!("{} is now {}.", user.username, if active { "enabled" } else { "disabled" });
    Ok(())
}

pub fn delete_user(settings: &Settings, login: &str) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let user = find(&mut conn, login)?;
    let user = accounts::delete(&mut conn, &Actor::command_line(), user.id)?;
    println!("Deleted {} ({}).", user.username, user.email);
    Ok(())
}

fn find_group(conn: &mut DbConnection, name: &str) -> anyhow::Result<db::groups::Group> {
    let parsed =
        crate::domain::GroupName::parse(name).map_err(|error| anyhow!("{name:?} is not a group's name: {error}"))?;
    db::groups::find_by_name(conn, &parsed)?.ok_or_else(|| anyhow!("there is no group {:?}", parsed.as_str()))
}

pub fn create_group(
    settings: &Settings,
    name: &str,
    display_name: Option<&str>,
    description: Option<&str>,
) -> anyhow::Result<()> {
    let input = accounts::GroupInput {
        name,
        display_name: display_name.unwrap_or_default(),
        description: description.unwrap_or_default(),
    };
    let group = accounts::ValidGroup::parse(&input).map_err(|errors| anyhow!("the group was not created: {errors}"))?;
    let mut conn = connect(settings)?;
    let group = accounts::create_group(&mut conn, &Actor::command_line(), &group)
        .map_err(|error| anyhow!("the group was not created: {error}"))?;
    println!("Created group {} ({}, id {}).", group.name, group.display_name, group.id);
    Ok(())
}

pub fn list_groups(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let mut after: Option<String> = None;
    let mut any = false;
    loop {
        let page = db::groups::list(&mut conn, None, after.as_deref(), 500)?;
        let Some(last) = page.last() else { break };
        after = Some(last.group.name.to_string());
        for summary in &page {
            any = true;
            println!("{:<32} {:>8} members  {}", summary.group.name, summary.members, summary.group.display_name);
        }
    }
    if !any {
        println!("No groups yet: `portcullis group create NAME` adds one.");
    }
    Ok(())
}

pub fn delete_group(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let group = find_group(&mut conn, name)?;
    let (group, members) = accounts::delete_group(&mut conn, &Actor::command_line(), group.id)?;
    println!("Deleted group {} ({members} members lost it).", group.name);
    Ok(())
}

pub fn change_group(settings: &Settings, name: &str, logins: &[String], add: bool) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let group = find_group(&mut conn, name)?;
    let mut ids = Vec::new();
    for login in logins {
        ids.push(find(&mut conn, &login.to_lowercase())?.id);
    }
    let actor = Actor::command_line();
    let by = accounts::MemberChanger::Admin;
    let changed = if add {
        accounts::add_members(&mut conn, &actor, group.id, &ids, by)?
    } else {
        accounts::remove_members(&mut conn, &actor, group.id, &ids, by)?
    };
    let (verb, unchanged) = if add { ("Added", "already members") } else { ("Removed", "not members") };
    println!(
        "{verb} {} user(s) {} {}; {} were {unchanged}.",
        changed.len(),
        if add { "to" } else { "from" },
        group.name,
        ids.len() - changed.len()
    );
    Ok(())
}

pub fn group_members(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let group = find_group(&mut conn, name)?;
    let mut cursor: Option<Cursor> = None;
    loop {
        let request = PageRequest {
            filters: Filters { group: Some(group.id), ..Default::default() },
            sort: SortKey::Username,
            descending: false,
            cursor: cursor.take(),
            backwards: false,
            size: 1000,
        };
        let page = user_search::page(&mut conn, &request, &None)?;
        for user in &page.users {
            println!("{:<32} {}", user.username, user.email);
        }
        match page.users.last() {
            Some(last) if page.more => cursor = Some(Cursor::Username(last.username.to_string())),
            _ => break,
        }
    }
    Ok(())
}

fn max_access_seconds(settings: &Settings) -> i64 {
    i64::try_from(settings.sessions.access_token_ttl.as_secs()).unwrap_or(i64::MAX)
}

pub fn create_client(settings: &Settings, form: &crate::oauth::ClientForm, json: bool) -> anyhow::Result<()> {
    let valid = crate::oauth::ValidClient::parse(form, max_access_seconds(settings)).map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(|(field, message)| format!("{field}: {message}")).collect();
        anyhow::anyhow!("the app was not added:\n  {}", lines.join("\n  "))
    })?;
    let mut conn = connect(settings)?;
    let created = crate::oauth::clients::create(&mut conn, &Actor::command_line(), &valid)?;
    if json {
        println!("{}", serde_json::json!({"client_id": created.client.client_id, "client_secret": created.secret}));
        return Ok(());
    }
    println!("Added {}.", created.client.name);
    println!("client_id:     {}", created.client.client_id);
    match &created.secret {
        Some(secret) => {
            println!("client_secret: {secret}");
            println!("The secret is shown only now: store it in the app's settings.");
        }
        None => println!("A public app: no secret; it must use PKCE (S256)."),
    }
    println!("Discovery: {}/.well-known/openid-configuration", settings.public_url.origin());
    Ok(())
}

fn find_client(conn: &mut DbConnection, client_id: &str) -> anyhow::Result<db::oauth::ClientRow> {
    db::oauth::find_client_by_client_id(conn, client_id)?
        .ok_or_else(|| anyhow::anyhow!("no app has the client id {client_id:?} (`portcullis client list` shows them)"))
}

pub fn list_clients(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let rows = db::oauth::list_clients(&mut conn)?;
    if rows.is_empty() {
        println!("No apps yet: `portcullis client create --name NAME --redirect-uri URI` adds one.");
    }
    for row in rows {
        let kind = if row.secret_hash.is_some() { "confidential" } else { "public" };
        let state = if row.is_enabled { "enabled" } else { "disabled" };
        println!("{:<24} {:<12} {:<8} {}", row.client_id, kind, state, row.name);
    }
    Ok(())
}

pub fn delete_client(settings: &Settings, client_id: &str) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let row = find_client(&mut conn, client_id)?;
    let row = crate::oauth::clients::delete(&mut conn, &Actor::command_line(), row.id)?;
    println!("Deleted {} ({}); its tokens stop working within a second.", row.name, row.client_id);
    Ok(())
}

pub fn issue_registration_token(
    settings: &Settings,
    expires: std::time::Duration,
    uses: i32,
    json: bool,
) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let (token, until) = crate::oauth::registration::issue_token(&mut conn, &Actor::command_line(), expires, uses)?;
    if json {
        println!("{}", serde_json::json!({"token": token, "expires_at": until.and_utc().to_rfc3339(), "uses": uses}));
    } else {
        println!("Registration token: {token}");
        println!(
            "Good for {uses} registration{} until {} UTC, at {}/oauth2/register (as Authorization: Bearer). Shown only now.",
            if uses == 1 { "" } else { "s" },
            until.format("%Y-%m-%d %H:%M"),
            settings.public_url.origin()
        );
        if settings.dynamic_registration == crate::config::DynamicRegistration::Off {
            println!(
                "Note: PORTCULLIS_DYNAMIC_REGISTRATION is off here, so registrations are refused until it is token or approval."
            );
        }
    }
    Ok(())
}

pub fn rotate_client_secret(settings: &Settings, client_id: &str, json: bool) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let row = find_client(&mut conn, client_id)?;
    if row.secret_hash.is_none() {
        anyhow::bail!("{} is a public app: it has no secret", row.name);
    }
    let (row, secret) = crate::oauth::clients::rotate_secret(&mut conn, &Actor::command_line(), row.id)?;
    if json {
        println!("{}", serde_json::json!({"client_id": row.client_id, "client_secret": secret}));
    } else {
        println!("New secret for {}: {secret}", row.name);
        println!("The old secret no longer works. The new one is shown only now.");
    }
    Ok(())
}

fn signing_keys(settings: &Settings) -> anyhow::Result<SigningKeys> {
    let secret = crate::startup::signing_secret(settings)?;
    Ok(SigningKeys::new(&secret, settings.jwt_secret_previous.as_ref(), settings.sessions.access_token_ttl))
}

pub fn list_keys(settings: &Settings) -> anyhow::Result<()> {
    let keys = signing_keys(settings)?;
    let mut conn = connect(settings)?;
    println!("Tokens are signed with {} (PORTCULLIS_JWT_ALG).", settings.signing.algorithm.name());
    for key in keys.describe(&mut conn, db::users::now())? {
        println!("{:<6} {:<44} {}", key.alg, key.kid, key.state);
    }
    Ok(())
}

pub fn rotate_keys(settings: &Settings, now: bool, revoke_old: bool) -> anyhow::Result<()> {
    let keys = signing_keys(settings)?;
    let mut conn = connect(settings)?;
    let lead = if now { std::time::Duration::ZERO } else { crate::auth::signing_keys::PUBLISH_LEAD };
    let kid = keys.rotate(&mut conn, settings.signing.algorithm, lead, revoke_old, db::users::now())?;
    let actor = Actor::command_line();
    let details = format!(
        "new {} key {kid}{}",
        settings.signing.algorithm.name(),
        if revoke_old { "; old keys revoked" } else { "" }
    );
    audit::record(&mut conn, &actor, Action::SigningKeyRotated, None, &details)?;
    if now {
        println!(
            "New {} key {kid} signs now{}.",
            settings.signing.algorithm.name(),
            if revoke_old { "; tokens of the old keys no longer verify" } else { "" }
        );
    } else {
        println!(
            "New {} key {kid} is published; it signs in {} minutes, when every cache of the JWKS knows it.",
            settings.signing.algorithm.name(),
            lead.as_secs() / 60
        );
    }
    Ok(())
}

pub fn reseal_keys(settings: &Settings) -> anyhow::Result<()> {
    let secret = crate::startup::signing_secret(settings)?;
    let previous = settings.jwt_secret_previous.as_ref();
    let factors = SecondFactors::new(&secret, previous, settings.mfa_required, "", Arc::new(Outbox::off(&secret)));
    let mut conn = connect(settings)?;
    let resealed = db::write_transaction(&mut conn, |conn| factors.reseal_all(conn))?;
    let signing = signing_keys(settings)?;
    let resealed_signing = db::write_transaction(&mut conn, |conn| signing.reseal_all(conn))?;
    println!("{resealed_signing} token signing key(s) resealed under the current signing secret.");
    let (stale, unreadable) = factors.key_standing(&mut conn)?;
    println!("{resealed} authenticator key(s) resealed under the current signing secret.");
    if stale + unreadable > 0 {
        bail!(
            "{unreadable} key(s) are sealed under a secret neither PORTCULLIS_JWT_SECRET nor PORTCULLIS_JWT_SECRET_PREVIOUS opens"
        );
    }
    if settings.jwt_secret_previous.is_some() {
        println!("No key needs PORTCULLIS_JWT_SECRET_PREVIOUS any more.");
    }
    Ok(())
}

pub fn reset_mfa(settings: &Settings, login: &str) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let user = find(&mut conn, login)?;
    let user = accounts::reset_second_factor(&mut conn, &outbox(settings)?, &Actor::command_line(), user.id)?;
    let then = if settings.mfa_required.covers(user.role == Role::Admin) {
        "they must set it up again when they next sign in"
    } else {
        "they can set it up again from their Security page"
    };
    println!("Two-step sign-in of {} was reset and their sessions ended; {then}.", user.username);
    Ok(())
}

pub fn set_role(settings: &Settings, login: &str, role: &str) -> anyhow::Result<()> {
    let role = Role::parse(role)?;
    let mut conn = connect(settings)?;
    let user = find(&mut conn, login)?;
    let changes = ProfileChanges { role: Some(role), ..Default::default() };
    let user = accounts::update_profile(&mut conn, &outbox(settings)?, &Actor::command_line(), user.id, &changes)?;
    println!("{} is now {}.", user.username, user.role);
    Ok(())
}

pub fn import_users(settings: &Settings, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    // The bar counts rows written; the file size is a good enough guess of the total.
    let bar = ProgressBar::new(size / 48 + 1).with_style(
        ProgressStyle::with_template("{spinner} importing {pos} users [{elapsed_precise}] {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut conn = connect(settings)?;
    let result = user_import::import(&mut conn, std::io::BufReader::new(file), &path.display().to_string(), |n| {
        bar.set_position(n)
    });
    bar.finish_and_clear();
    match result {
        Ok(imported) => {
            println!("Imported {} users from {}.", imported.users, path.display());
            if imported.memberships > 0 {
                println!("Added {} group memberships.", imported.memberships);
            }
            if !imported.created_groups.is_empty() {
                println!(
                    "Created {} group(s) the file named: {}.",
                    imported.created_groups.len(),
                    imported.created_groups.join(", ")
                );
            }
            Ok(())
        }
        Err(ImportError::BadRows(bad)) => {
            eprintln!("{}", user_import::describe(&bad));
            bail!("{} row(s) are not valid; nothing was imported", bad.len())
        }
        Err(error) => Err(error.into()),
    }
}

/// Writes the users (optionally only those `search` finds) to standard output as CSV.
pub fn export_users(settings: &Settings, search: Option<&str>, with_hashes: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut conn = connect(settings)?;
    let filters = Filters { search: search.map(str::to_lowercase), ..Default::default() };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    out.write_all(&crate::export::user_header(with_hashes)?)?;
    let (mut cursor, mut count) = (None, 0);
    loop {
        let (users, next) = crate::export::user_chunk(&mut conn, &filters, cursor)?;
        out.write_all(&crate::export::user_rows(&users, with_hashes)?)?;
        count += users.users.len();
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out.flush()?;
    eprintln!("Exported {count} user(s).");
    Ok(())
}

/// One migrated connection: the CLI does one thing and exits.
fn connect(settings: &Settings) -> anyhow::Result<PooledConnection<ConnectionManager>> {
    let pool = db::build_pool(&crate::config::DatabaseSettings { pool_size: 1, ..settings.database.clone() })?;
    let mut conn = pool.get().context("could not open a database connection")?;
    db::run_migrations(&mut conn)?;
    Ok(conn)
}

fn read_password(source: PasswordSource) -> anyhow::Result<SecretString> {
    match source {
        PasswordSource::Stdin => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("could not read the password from standard input")?;
            let password = line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line);
            if password.is_empty() {
                bail!("no password on standard input");
            }
            Ok(SecretString::from(password))
        }
        PasswordSource::Prompt => {
            if !std::io::stdin().is_terminal() {
                bail!("there is no terminal to ask for the password on; pipe it in with --password-stdin");
            }
            let first = SecretString::from(rpassword::prompt_password("New password: ")?);
            let second = SecretString::from(rpassword::prompt_password("Repeat it: ")?);
            if first.expose_secret() != second.expose_secret() {
                bail!("the two passwords differ; nothing was changed");
            }
            Ok(first)
        }
    }
}
