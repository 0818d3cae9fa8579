//! The `portcullis` command: serve (the default), migrate, and user administration.
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::commands::{self, CreateUser, PasswordSource};
use portcullis::config::Settings;

#[derive(Parser)]
#[command(name = "portcullis", version, about = "Self-hosted login and user management", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (the default when no command is given)
    Serve,
    /// Apply pending database migrations and exit
    Migrate,
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage groups (who may open which app)
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage the apps that sign in through Portcullis (OpenID Connect clients)
    #[command(subcommand)]
    Client(ClientCommand),
    /// After a rotation of the signing secret, once every instance runs with the new one:
    /// reseal the authenticator keys and token signing keys under it (run with PORTCULLIS_JWT_SECRET and
    /// PORTCULLIS_JWT_SECRET_PREVIOUS set), so the previous secret can be retired
    ResealKeys,
    /// E-mail: check the SMTP settings
    #[command(subcommand)]
    Mail(MailCommand),
    /// The keys access tokens are signed with (PORTCULLIS_JWT_ALG EdDSA or ES256)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Time one password hash on this machine, and the sign-in rate that allows
    HashSpeed {
        /// How many hashes to time (the median is reported)
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        samples: u32,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Add a group
    Create {
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the groups with their member counts
    List,
    /// Delete a group (its members lose it; their sessions go on)
    Delete { name: String },
    /// Add users (usernames or e-mail addresses) to a group
    Add {
        name: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Remove users from a group
    Remove {
        name: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// List a group's members
    Members { name: String },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Add an app; prints its client id and (unless --public) its secret, once
    Create {
        /// What users see on the consent page and in their connected apps
        #[arg(long)]
        name: String,
        /// An address the app receives sign-ins at (repeat for more)
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Where the app may send people after it signs them out (repeat for more)
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Where the app hears that a session it signed in through ended (Back-Channel Logout)
        #[arg(long = "backchannel-logout-uri")]
        backchannel_logout_uri: Option<String>,
        /// A public app (single-page or native): no secret, PKCE required
        #[arg(long)]
        public: bool,
        /// Ask users before the app first signs them in (for apps of other parties)
        #[arg(long)]
        consent: bool,
        /// Scopes the app may ask for (default: all of openid profile email groups offline_access)
        #[arg(long)]
        scopes: Option<String>,
        /// Only members of these groups may use it (comma-separated)
        #[arg(long)]
        groups: Option<String>,
        /// The ID token's algorithm
        #[arg(long, default_value = "RS256", value_parser = ["RS256", "EdDSA", "ES256"])]
        id_token_alg: String,
        /// Print one JSON object {"client_id": …, "client_secret": …}
        #[arg(long)]
        json: bool,
    },
    /// List the apps
    List,
    /// Issue an initial access token with which apps may register themselves (RFC 7591;
    /// needs PORTCULLIS_DYNAMIC_REGISTRATION=token or approval). Shown once.
    RegistrationToken {
        /// How long it works (e.g. 1h, 7d; at most 365d)
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        expires: std::time::Duration,
        /// How many registrations it allows
        #[arg(long, default_value_t = 1)]
        uses: i32,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete an app (by client id): its tokens stop working within a second
    Delete { client_id: String },
    /// Make a new secret (printed once); the old one stops working at once
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Every key: its algorithm, and whether it signs, waits to sign, or is kept only to verify
    List,
    /// Make a new signing key. It is published at once and signs once every cache of the JWKS
    /// knows it (6 minutes); the keys it replaces verify until their tokens expire
    Rotate {
        /// Sign with the new key at once (verifiers that cached the JWKS in the last 5 minutes
        /// refuse its tokens until they fetch it again)
        #[arg(long)]
        now: bool,
        /// With --now, after a key leaked: tokens of the old keys stop verifying at once
        /// (browsers and apps renew theirs with their refresh tokens; nobody is signed out)
        #[arg(long, requires = "now")]
        revoke_old: bool,
    },
}

#[derive(Subcommand)]
enum MailCommand {
    /// Send a test message to ADDRESS straight through PORTCULLIS_SMTP_URL and print the
    /// server's answer
    Test { address: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; asks for the password twice unless --password-stdin is given
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Defaults to the username
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, default_value = "user", value_parser = ["admin", "user"])]
        role: String,
        /// Read the password from one line of standard input
        #[arg(long)]
        password_stdin: bool,
        /// Make the user choose a new password at first login
        #[arg(long)]
        must_change_password: bool,
    },
    /// Invite a user by e-mail: they choose their password through a link valid for 7 days
    /// (needs PORTCULLIS_SMTP_URL; a running server delivers the message)
    Invite {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Defaults to the username
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, default_value = "user", value_parser = ["admin", "user"])]
        role: String,
    },
    /// Set a user's password
    SetPassword {
        /// Username or email
        username: String,
        /// Read the password from one line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users, by username
    List {
        /// Only users with this in their username, email or display name (three characters or
        /// more: anywhere, whatever the accents and case; fewer: at the start)
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Stop a user from signing in (their sessions stop working at once)
    Disable {
        /// Username or email
        username: String,
    },
    /// Let a disabled user sign in again
    Enable {
        /// Username or email
        username: String,
    },
    /// Delete a user for good (the audit trail keeps their history)
    Delete {
        /// Username or email
        username: String,
    },
    /// Reset a user's two-step sign-in (lost phone and recovery codes): removes their
    /// authenticator app and recovery codes and ends their sessions. If the policy requires
    /// it, they set it up again at their next sign-in.
    ResetMfa {
        /// Username or email
        username: String,
    },
    /// Write users as CSV to standard output, in the format `user import` reads (a thousand
    /// rows at a time: memory stays flat at any size)
    Export {
        /// Only users with this in their username, email or display name (three characters or
        /// more: anywhere, whatever the accents and case; fewer: at the start)
        #[arg(long)]
        search: Option<String>,
        /// Add the password_hash column (argon2 PHC strings): for moving users to another
        /// installation. Keep such a file as secret as the database
        #[arg(long)]
        with_password_hashes: bool,
    },
    /// Make a user an administrator, or a plain user
    SetRole {
        /// Username or email
        username: String,
        #[arg(value_parser = ["admin", "user"])]
        role: String,
    },
    /// Import users from a CSV file with the columns username, email, display_name, role and
    /// optionally password_hash (an argon2 PHC string). All rows are checked first: either
    /// every user is imported or none. Users without a hash have no password until an admin
    /// resets it.
    Import { file: std::path::PathBuf },
}

fn password_source(stdin: bool) -> PasswordSource {
    if stdin { PasswordSource::Stdin } else { PasswordSource::Prompt }
}

fn main() -> ExitCode {
    portcullis::memory::return_big_allocations_to_the_system();
    let cli = Cli::parse();
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("portcullis: could not read .env: {error}");
        return ExitCode::from(2);
    }
    portcullis::telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("portcullis: configuration error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => commands::serve(settings),
        Command::Migrate => commands::migrate(&settings),
        Command::HashSpeed { samples } => commands::hash_speed(&settings, samples),
        Command::ResealKeys => commands::reseal_keys(&settings),
        Command::Keys(KeysCommand::List) => commands::list_keys(&settings),
        Command::Keys(KeysCommand::Rotate { now, revoke_old }) => commands::rotate_keys(&settings, now, revoke_old),
        Command::Mail(MailCommand::Test { address }) => commands::mail_test(&settings, &address),
        Command::User(UserCommand::Invite { username, email, display_name, role }) => {
            commands::invite_user(&settings, commands::InviteUser { username, email, display_name, role })
        }
        Command::User(UserCommand::Create {
            username,
            email,
            display_name,
            role,
            password_stdin,
            must_change_password,
        }) => commands::create_user(
            &settings,
            CreateUser {
                username,
                email,
                display_name,
                role,
                must_change_password,
                password: password_source(password_stdin),
            },
        ),
        Command::User(UserCommand::SetPassword { username, password_stdin }) => {
            commands::set_password(&settings, &username, password_source(password_stdin))
        }
        Command::User(UserCommand::List { search, limit }) => commands::list_users(&settings, search.as_deref(), limit),
        Command::User(UserCommand::Disable { username }) => commands::set_active(&settings, &username, false),
        Command::User(UserCommand::Enable { username }) => commands::set_active(&settings, &username, true),
        Command::User(UserCommand::Delete { username }) => commands::delete_user(&settings, &username),
        Command::User(UserCommand::ResetMfa { username }) => commands::reset_mfa(&settings, &username),
        Command::User(UserCommand::SetRole { username, role }) => commands::set_role(&settings, &username, &role),
        Command::User(UserCommand::Import { file }) => commands::import_users(&settings, &file),
        Command::User(UserCommand::Export { search, with_password_hashes }) => {
            commands::export_users(&settings, search.as_deref(), with_password_hashes)
        }
        Command::Group(GroupCommand::Create { name, display_name, description }) => {
            commands::create_group(&settings, &name, display_name.as_deref(), description.as_deref())
        }
        Command::Group(GroupCommand::List) => commands::list_groups(&settings),
        Command::Client(ClientCommand::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            public,
            consent,
            scopes,
            groups,
            id_token_alg,
            json,
        }) => {
            let form = portcullis::oauth::ClientForm {
                name,
                redirect_uris: redirect_uris.join("\n"),
                post_logout_redirect_uris: post_logout_redirect_uris.join("\n"),
                backchannel_logout_uri: backchannel_logout_uri.unwrap_or_default(),
                public,
                scopes: scopes.unwrap_or_default(),
                ask_consent: consent,
                allowed_groups: groups.unwrap_or_default(),
                id_token_alg,
                ..Default::default()
            };
            commands::create_client(&settings, &form, json)
        }
        Command::Client(ClientCommand::List) => commands::list_clients(&settings),
        Command::Client(ClientCommand::Delete { client_id }) => commands::delete_client(&settings, &client_id),
        Command::Client(ClientCommand::RegistrationToken { expires, uses, json }) => {
            commands::issue_registration_token(&settings, expires, uses, json)
        }
        Command::Client(ClientCommand::RotateSecret { client_id, json }) => {
            commands::rotate_client_secret(&settings, &client_id, json)
        }
        Command::Group(GroupCommand::Delete { name }) => commands::delete_group(&settings, &name),
        Command::Group(GroupCommand::Add { name, users }) => commands::change_group(&settings, &name, &users, true),
        Command::Group(GroupCommand::Remove { name, users }) => commands::change_group(&settings, &name, &users, false),
        Command::Group(GroupCommand::Members { name }) => commands::group_members(&settings, &name),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("portcullis: {error:#}");
            ExitCode::FAILURE
        }
    }
}
