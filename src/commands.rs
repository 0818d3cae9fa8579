//! What the CLI's subcommands do (argument parsing lives in `main.rs`).
use std::io::{BufRead, IsTerminal};

use anyhow::{Context, anyhow, bail};
use secrecy::{ExposeSecret, SecretString};

use crate::accounts::{AccountInput, ValidAccount};
use crate::auth::password::hash_blocking;
use crate::config::Settings;
use crate::db::users::{self, NewUser};
use crate::db::{self, ConnectionManager};
use crate::domain::NewPassword;
use crate::startup::Application;
use diesel::r2d2::PooledConnection;

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
    let hash = hash_blocking(account.password.expose())?;
    let mut conn = connect(settings)?;
    let user = users::insert(
        &mut conn,
        &NewUser {
            username: &account.username,
            email: &account.email,
            display_name: &account.display_name,
            password_hash: &hash,
            role: account.role,
            must_change_password: request.must_change_password,
        },
    )
    .map_err(|error| anyhow!("the user was not created: {error}"))?;
    println!("Created {} user {:?} (id {}).", user.role(), user.username, user.id);
    Ok(())
}

pub fn set_password(settings: &Settings, username: &str, source: PasswordSource) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let user = users::find_by_login(&mut conn, username)?.ok_or_else(|| anyhow!("there is no user {username:?}"))?;
    let password = NewPassword::parse(read_password(source)?, &[&user.username, &user.email, &user.display_name])
        .map_err(|error| anyhow!("the password was not changed: {error}"))?;
    let hash = hash_blocking(password.expose())?;
    users::set_password_hash(&mut conn, user.id, &hash, false)?;
    println!("Changed the password of {:?}.", user.username);
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
