//! `Settings` from the environment, one readable line naming the variable for any problem.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use secrecy::SecretString;

use super::env::{Bound, Env, parse_duration};
use super::mail::MailSettings;
use super::secret::JwtSecret;

const DEFAULT_DATABASE_URL: &str = "sqlite://portcullis.db";
const DEFAULT_BIND: &str = "127.0.0.1:8080";
const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// How recent a proof of identity a change that controls sign-in needs (ASVS 5.0 7.5.1).
const DEFAULT_FRESH_PROOF: Duration = Duration::from_secs(5 * 60);
const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 60 * 60);
const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const DEFAULT_KEY_ROTATION: Duration = Duration::from_secs(90 * 24 * 60 * 60);

#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub bind: SocketAddr,
    pub public_url: PublicUrl,
    /// `None` only on SQLite, where a secret is generated and kept beside the database.
    pub jwt_secret: Option<JwtSecret>,
    /// The secret before the last rotation: tokens it signed are still accepted until they
    /// expire; nothing new is signed with it.
    pub jwt_secret_previous: Option<JwtSecret>,
    pub sessions: SessionPolicy,
    pub throttle: ThrottlePolicy,
    /// Proxies whose `X-Forwarded-For` is believed; everyone else is known by the socket peer.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How many argon2 hashes may run at once (each takes 19 MiB and one core).
    pub hash_concurrency: usize,
    /// CSS and images served under `/static`.
    pub static_dir: PathBuf,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics: bool,
    /// How often ended sessions and spent sign-in counters are deleted.
    pub housekeeping_interval: Duration,
    /// Who must have a second factor.
    pub mfa_required: MfaPolicy,
    /// SMTP server, sender and notices; without a server no mail is sent.
    pub mail: MailSettings,
    /// How access tokens are signed, and how often the key changes.
    pub signing: TokenSigning,
    /// `PORTCULLIS_COOKIE_DOMAIN` (lower case, no leading dot): the access cookie is sent to
    /// every host under it, so one sign-in covers the sites behind the reverse proxy.
    pub cookie_domain: Option<String>,
    /// What `/auth/verify` allows, and whether it hands the upstream a token.
    pub forward_auth: ForwardAuthSettings,
    /// Whether apps may register themselves.
    pub dynamic_registration: DynamicRegistration,
}

/// Forward authentication for the sites behind the reverse proxy.
#[derive(Debug, Clone, Default)]
pub struct ForwardAuthSettings {
    /// `PORTCULLIS_ACCESS_RULES`: the rules file, read at start-up; without one every address
    /// needs someone signed in.
    pub rules_file: Option<PathBuf>,
    /// `PORTCULLIS_FORWARD_AUTH_TOKEN=on`: answers also carry `Authorization: Bearer` with the
    /// caller's access token, for upstreams that check it themselves (against the JWKS).
    pub pass_token: bool,
}

/// The algorithm access tokens are signed with (`PORTCULLIS_JWT_ALG`). With `EdDSA` (the
/// default) or `ES256` anyone can check a token against the published keys without being able
/// to make one; `HS256` signs with the shared secret, which only Portcullis may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JwtAlgorithm {
    #[default]
    EdDsa,
    Es256,
    Hs256,
    /// RSA with SHA-256: what every OpenID Connect client must support (ID tokens).
    Rs256,
}

impl JwtAlgorithm {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw {
            "EdDSA" => Ok(Self::EdDsa),
            "ES256" => Ok(Self::Es256),
            "HS256" => Ok(Self::Hs256),
            "RS256" => Ok(Self::Rs256),
            other => bail!("PORTCULLIS_JWT_ALG must be EdDSA, ES256, RS256 or HS256 (got {other:?})"),
        }
    }

    /// As JOSE writes it (`alg`).
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
        }
    }
}

/// Token signing: the algorithm, the automatic key rotation and how often each instance
/// re-reads the shared keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSigning {
    pub algorithm: JwtAlgorithm,
    /// A new key every this long (`PORTCULLIS_JWT_KEY_ROTATION`, `off` for never).
    pub rotation: Option<Duration>,
    /// How often the keys are re-read from the database (a new key is published minutes
    /// before it signs, so every instance knows it first).
    pub reload_interval: Duration,
}

impl Default for TokenSigning {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::default(),
            rotation: Some(DEFAULT_KEY_ROTATION),
            reload_interval: Duration::from_secs(30),
        }
    }
}

/// Who must sign in with a second factor (`PORTCULLIS_MFA_REQUIRED`). A user it covers who
/// has none can sign in, but reaches nothing except enrolling one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MfaPolicy {
    #[default]
    Admins,
    All,
    Off,
}

impl MfaPolicy {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw {
            "admins" => Ok(Self::Admins),
            "all" => Ok(Self::All),
            "off" => Ok(Self::Off),
            other => bail!("PORTCULLIS_MFA_REQUIRED must be admins, all or off (got {other:?})"),
        }
    }

    /// Whether someone in this role must have a second factor.
    pub fn covers(self, is_admin: bool) -> bool {
        match self {
            Self::Admins => is_admin,
            Self::All => true,
            Self::Off => false,
        }
    }
}

/// Whether apps may register themselves (RFC 7591; `PORTCULLIS_DYNAMIC_REGISTRATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DynamicRegistration {
    /// Only admins add apps (the default).
    #[default]
    Off,
    /// With an initial access token an admin issued.
    Token,
    /// With a token at once; without one the app waits, disabled, for an admin's approval.
    Approval,
}

impl DynamicRegistration {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw {
            "off" => Ok(Self::Off),
            "token" => Ok(Self::Token),
            "approval" => Ok(Self::Approval),
            other => bail!("PORTCULLIS_DYNAMIC_REGISTRATION must be off, token or approval (got {other:?})"),
        }
    }
}

/// How long the tokens of a login session live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Access tokens (JWTs): short, because they are checked without the database.
    pub access_token_ttl: Duration,
    /// A session not renewed for this long ends. Renewal happens when the access token runs
    /// out, so activity is noticed to within one access-token lifetime.
    pub idle_timeout: Duration,
    /// A session ends this long after its login, however active.
    pub lifetime: Duration,
    /// `PORTCULLIS_FRESH_PROOF`: changes that control sign-in (e-mail, passkeys, authenticator
    /// apps, recovery codes) need the password or a second factor within this long.
    pub fresh_proof: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            lifetime: DEFAULT_SESSION_LIFETIME,
            fresh_proof: DEFAULT_FRESH_PROOF,
        }
    }
}

/// How failed sign-ins slow an attacker down: temporary pauses that double each time, never a
/// permanent lock-out an attacker could use against the account's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Attempts per sign-in name (existing or not) within `window` before a pause.
    pub account_attempts: u32,
    /// Attempts per client address within `window` before a pause.
    pub address_attempts: u32,
    pub window: Duration,
    /// The first pause; each further one within the window after it doubles, up to `max_pause`.
    pub pause: Duration,
    pub max_pause: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_attempts: 5,
            address_attempts: 50,
            window: Duration::from_secs(15 * 60),
            pause: Duration::from_secs(60),
            max_pause: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    pub pool_size: u32,
    /// How long `serve` keeps retrying an unreachable PostgreSQL at start-up (instances often
    /// start before their database). SQLite is opened once: a wrong path will not fix itself.
    pub startup_timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    /// Kept secret: the URL may hold a password.
    Postgres(SecretString),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(SecretString::from(raw)));
        }
        let path = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
            .ok_or_else(|| anyhow!("DATABASE_URL must start with sqlite:// or postgres:// (got something else)"))?;
        if path.is_empty() || path == ":memory:" || path.contains("mode=memory") {
            bail!("DATABASE_URL must name a SQLite file (an in-memory database is private to each connection)");
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// Where users reach us. An `https://` origin turns on `Secure` cookies with a `__Host-` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    origin: String,
}

impl PublicUrl {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let origin = raw.trim_end_matches('/');
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(|| anyhow!("PORTCULLIS_PUBLIC_URL must start with http:// or https://"))?;
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
            bail!("PORTCULLIS_PUBLIC_URL must be an origin such as https://login.example.com (no path)");
        }
        Ok(Self { origin: origin.to_owned() })
    }

    pub fn is_https(&self) -> bool {
        self.origin.starts_with("https://")
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The port written in the origin, if any (`None`: the scheme's own, 80 or 443).
    pub fn port(&self) -> Option<u16> {
        let rest = self.origin.split_once("://").map_or(self.origin.as_str(), |(_, rest)| rest);
        let after_host = rest.rsplit_once(']').map_or(rest, |(_, after)| after);
        after_host.rsplit_once(':').and_then(|(_, port)| port.parse().ok())
    }

    /// The host without scheme or port (`login.example.com`), e.g. for authenticator apps.
    pub fn host_name(&self) -> &str {
        let rest = self.origin.split_once("://").map_or(self.origin.as_str(), |(_, rest)| rest);
        if let Some(bracketed) = rest.strip_prefix('[') {
            return bracketed.split(']').next().unwrap_or(rest);
        }
        rest.split(':').next().unwrap_or(rest)
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests can supply their own environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        Self::read(&Env::new(lookup))
    }

    /// Every variable the settings read (what `.env.example` documents).
    pub fn names() -> Vec<&'static str> {
        let env = Env::new(|_: &str| None);
        // With nothing set the defaults apply; what matters here is which names were asked.
        let _defaults = Self::read(&env);
        let mut names = env.asked();
        names.push(super::env::LOG_FILTER);
        names
    }

    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<Self> {
        let get = |name: &'static str| env.text(name);

        let database = DatabaseSettings::read(env)?;

        let bind_raw = get("PORTCULLIS_BIND").unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind: SocketAddr = bind_raw.parse().map_err(|_| {
            anyhow!("PORTCULLIS_BIND must be an address and port such as 127.0.0.1:8080 (got {bind_raw:?})")
        })?;

        let public_url = match get("PORTCULLIS_PUBLIC_URL") {
            Some(raw) => PublicUrl::parse(&raw)?,
            None => PublicUrl::parse(&format!("http://{bind}"))?,
        };

        let jwt_secret =
            get("PORTCULLIS_JWT_SECRET").map(|raw| JwtSecret::parse(&raw, "PORTCULLIS_JWT_SECRET")).transpose()?;
        let jwt_secret_previous = get("PORTCULLIS_JWT_SECRET_PREVIOUS")
            .map(|raw| JwtSecret::parse(&raw, "PORTCULLIS_JWT_SECRET_PREVIOUS"))
            .transpose()?;
        if jwt_secret_previous.is_some() && jwt_secret.is_none() {
            bail!("PORTCULLIS_JWT_SECRET_PREVIOUS only makes sense with PORTCULLIS_JWT_SECRET set (the new secret)");
        }
        if jwt_secret.is_none() && database.url.is_postgres() {
            bail!(
                "PORTCULLIS_JWT_SECRET is required with PostgreSQL, because every instance must share it \
                 (generate one with `openssl rand -base64 48`)"
            );
        }

        let sessions = SessionPolicy::read(env)?;

        let throttle = ThrottlePolicy::read(env)?;
        let trusted_proxies = trusted_proxies(env)?;

        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let hash_concurrency = env.number("PORTCULLIS_HASH_CONCURRENCY", cores, 1..=256)?;

        let metrics = env.switch("PORTCULLIS_METRICS", false)?;

        let housekeeping_interval = env.duration(
            "PORTCULLIS_HOUSEKEEPING_INTERVAL",
            Duration::from_secs(60),
            Bound(Duration::from_secs(1), "1s"),
            Bound(Duration::from_secs(60 * 60), "1h"),
        )?;

        let mfa_required =
            get("PORTCULLIS_MFA_REQUIRED").map_or(Ok(MfaPolicy::default()), |raw| MfaPolicy::parse(&raw))?;

        let signing = TokenSigning::read(env)?;

        let cookie_domain = cookie_domain(env, &public_url)?;
        let forward_auth = ForwardAuthSettings::read(env)?;

        let mail = MailSettings::read(env)?;
        let dynamic_registration = get("PORTCULLIS_DYNAMIC_REGISTRATION")
            .map_or(Ok(DynamicRegistration::default()), |raw| DynamicRegistration::parse(&raw))?;

        let static_dir = get("PORTCULLIS_STATIC_DIR").map_or_else(default_static_dir, PathBuf::from);

        Ok(Self {
            database,
            bind,
            public_url,
            jwt_secret,
            jwt_secret_previous,
            sessions,
            throttle,
            trusted_proxies,
            hash_concurrency,
            static_dir,
            metrics,
            housekeeping_interval,
            mfa_required,
            mail,
            signing,
            cookie_domain,
            forward_auth,
            dynamic_registration,
        })
    }
}

impl DatabaseSettings {
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<Self> {
        let database_url = env.text("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        Ok(DatabaseSettings {
            url: DatabaseUrl::parse(&database_url)?,
            pool_size: env.number("PORTCULLIS_DB_POOL_SIZE", 10, 1..=512)?,
            startup_timeout: env.duration(
                "PORTCULLIS_DB_STARTUP_TIMEOUT",
                Duration::from_secs(60),
                Bound(Duration::ZERO, "0s"),
                Bound(Duration::from_secs(60 * 60), "1h"),
            )?,
        })
    }
}

impl SessionPolicy {
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<Self> {
        let sessions = SessionPolicy {
            access_token_ttl: env.duration(
                "PORTCULLIS_ACCESS_TOKEN_TTL",
                DEFAULT_ACCESS_TOKEN_TTL,
                Bound(Duration::from_secs(60), "1m"),
                Bound(Duration::from_secs(24 * 60 * 60), "24h"),
            )?,
            idle_timeout: env.duration(
                "PORTCULLIS_SESSION_IDLE_TIMEOUT",
                DEFAULT_SESSION_IDLE_TIMEOUT,
                Bound(Duration::from_secs(5 * 60), "5m"),
                Bound(Duration::from_secs(90 * 24 * 60 * 60), "90d"),
            )?,
            lifetime: env.duration(
                "PORTCULLIS_SESSION_LIFETIME",
                DEFAULT_SESSION_LIFETIME,
                Bound(Duration::from_secs(5 * 60), "5m"),
                Bound(Duration::from_secs(365 * 24 * 60 * 60), "365d"),
            )?,
            fresh_proof: env.duration(
                "PORTCULLIS_FRESH_PROOF",
                DEFAULT_FRESH_PROOF,
                Bound(Duration::from_secs(30), "30s"),
                Bound(Duration::from_secs(60 * 60), "1h"),
            )?,
        };
        if sessions.idle_timeout <= sessions.access_token_ttl {
            bail!(
                "PORTCULLIS_SESSION_IDLE_TIMEOUT must be longer than PORTCULLIS_ACCESS_TOKEN_TTL: sessions are \
                 renewed when the access token runs out, so a shorter idle timeout would end every session"
            );
        }
        if sessions.lifetime < sessions.idle_timeout {
            bail!("PORTCULLIS_SESSION_LIFETIME must not be shorter than PORTCULLIS_SESSION_IDLE_TIMEOUT");
        }
        Ok(sessions)
    }
}

impl ThrottlePolicy {
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<Self> {
        let defaults = ThrottlePolicy::default();
        let day = || Bound(Duration::from_secs(24 * 60 * 60), "24h");
        let throttle = ThrottlePolicy {
            account_attempts: env.number("PORTCULLIS_LOGIN_ACCOUNT_ATTEMPTS", defaults.account_attempts, 1..=1000)?,
            address_attempts: env.number(
                "PORTCULLIS_LOGIN_ADDRESS_ATTEMPTS",
                defaults.address_attempts,
                1..=100_000,
            )?,
            window: env.duration(
                "PORTCULLIS_LOGIN_WINDOW",
                defaults.window,
                Bound(Duration::from_secs(1), "1s"),
                day(),
            )?,
            pause: env.duration(
                "PORTCULLIS_LOGIN_PAUSE",
                defaults.pause,
                Bound(Duration::from_secs(1), "1s"),
                day(),
            )?,
            max_pause: env.duration(
                "PORTCULLIS_LOGIN_MAX_PAUSE",
                defaults.max_pause,
                Bound(Duration::from_secs(1), "1s"),
                day(),
            )?,
        };
        if throttle.max_pause < throttle.pause {
            bail!("PORTCULLIS_LOGIN_MAX_PAUSE must not be shorter than PORTCULLIS_LOGIN_PAUSE");
        }
        Ok(throttle)
    }
}

impl TokenSigning {
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<Self> {
        let signing = TokenSigning {
            algorithm: env
                .text("PORTCULLIS_JWT_ALG")
                .map_or(Ok(JwtAlgorithm::default()), |raw| JwtAlgorithm::parse(&raw))?,
            rotation: match env.text("PORTCULLIS_JWT_KEY_ROTATION").as_deref() {
                Some("off") => None,
                None => Some(DEFAULT_KEY_ROTATION),
                Some(raw) => Some(parse_duration(
                    "PORTCULLIS_JWT_KEY_ROTATION",
                    raw,
                    Bound(Duration::from_secs(24 * 60 * 60), "1d"),
                    Bound(Duration::from_secs(10 * 365 * 24 * 60 * 60), "3650d"),
                )?),
            },
            ..TokenSigning::default()
        };
        Ok(signing)
    }
}

impl ForwardAuthSettings {
    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<Self> {
        let forward_auth = ForwardAuthSettings {
            rules_file: env.text("PORTCULLIS_ACCESS_RULES").map(PathBuf::from),
            pass_token: env.switch("PORTCULLIS_FORWARD_AUTH_TOKEN", false)?,
        };
        Ok(forward_auth)
    }
}

fn trusted_proxies(env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<Vec<std::net::IpAddr>> {
    let trusted_proxies = match env.text("PORTCULLIS_TRUSTED_PROXIES") {
        None => Vec::new(),
        Some(raw) => raw
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse().map_err(|_| {
                    anyhow!("PORTCULLIS_TRUSTED_PROXIES must be a comma-separated list of IP addresses (got {part:?})")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    Ok(trusted_proxies)
}

fn cookie_domain(env: &Env<impl Fn(&str) -> Option<String>>, public_url: &PublicUrl) -> anyhow::Result<Option<String>> {
    let cookie_domain = match env.text("PORTCULLIS_COOKIE_DOMAIN") {
        None => None,
        Some(raw) => {
            let domain = raw.trim().trim_start_matches('.').to_ascii_lowercase();
            let host = public_url.host_name().to_ascii_lowercase();
            let valid = domain.contains('.')
                && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && !domain.chars().all(|c| c.is_ascii_digit() || c == '.');
            if !valid {
                bail!("PORTCULLIS_COOKIE_DOMAIN must be a domain name such as .example.com (got {raw:?})");
            }
            if host != domain && !host.ends_with(&format!(".{domain}")) {
                bail!(
                    "PORTCULLIS_COOKIE_DOMAIN ({raw}) must contain the host of PORTCULLIS_PUBLIC_URL ({host}), or browsers \
                         would refuse the cookie"
                );
            }
            Some(domain)
        }
    };
    Ok(cookie_domain)
}

/// The default folder of CSS and images: `./static`, else the one beside the sources.
pub fn default_static_dir() -> PathBuf {
    let local = PathBuf::from("static");
    if local.is_dir() { local } else { PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let env: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|key| env.get(key).cloned())
    }

    #[test]
    fn the_example_environment_file_lists_every_setting_the_code_reads() {
        let example = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"));
        let listed: Vec<&str> = example
            .lines()
            .filter_map(|line| line.trim_start_matches('#').trim().split_once('=').map(|(name, _)| name))
            .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        let read = Settings::names();
        assert!(read.len() > 30, "the settings read {} names", read.len());
        let missing: Vec<_> = read.iter().filter(|name| !listed.contains(name)).collect();
        let unknown: Vec<_> = listed.iter().filter(|name| !read.contains(name)).collect();
        assert!(missing.is_empty(), ".env.example does not list {missing:?}");
        assert!(unknown.is_empty(), ".env.example lists {unknown:?}, which nothing reads");
    }

    #[test]
    fn with_nothing_set_it_serves_sqlite_on_localhost() {
        let s = settings(&[]).unwrap();
        assert!(matches!(s.database.url, DatabaseUrl::Sqlite(ref p) if p == std::path::Path::new("portcullis.db")));
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert!(!s.public_url.is_https());
        assert!(s.jwt_secret.is_none());
        assert_eq!(s.sessions, SessionPolicy::default());
        assert_eq!(s.sessions.access_token_ttl, Duration::from_secs(15 * 60));
    }

    #[test]
    fn bad_settings_are_reported_by_name() {
        let cases = [
            (("PORTCULLIS_JWT_SECRET", "short"), "PORTCULLIS_JWT_SECRET is too short"),
            (("PORTCULLIS_JWT_SECRET", &"a".repeat(40) as &str), "too repetitive"),
            (("DATABASE_URL", "mysql://x"), "DATABASE_URL must start with"),
            (("DATABASE_URL", "sqlite://:memory:"), "in-memory"),
            (("PORTCULLIS_BIND", "localhost"), "PORTCULLIS_BIND"),
            (("PORTCULLIS_PUBLIC_URL", "login.example.com"), "PORTCULLIS_PUBLIC_URL"),
            (("PORTCULLIS_ACCESS_TOKEN_TTL", "forever"), "PORTCULLIS_ACCESS_TOKEN_TTL"),
            (("PORTCULLIS_ACCESS_TOKEN_TTL", "5s"), "between 1m and 24h"),
            (("PORTCULLIS_HASH_CONCURRENCY", "0"), "PORTCULLIS_HASH_CONCURRENCY"),
            (("PORTCULLIS_SESSION_IDLE_TIMEOUT", "soon"), "PORTCULLIS_SESSION_IDLE_TIMEOUT must be a duration"),
            (("PORTCULLIS_SESSION_IDLE_TIMEOUT", "10m"), "must be longer than PORTCULLIS_ACCESS_TOKEN_TTL"),
            (("PORTCULLIS_SESSION_LIFETIME", "1h"), "must not be shorter than PORTCULLIS_SESSION_IDLE_TIMEOUT"),
            (("PORTCULLIS_SESSION_LIFETIME", "2y"), "between 5m and 365d"),
            (("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.1, proxy.internal"), "PORTCULLIS_TRUSTED_PROXIES"),
            (("PORTCULLIS_LOGIN_ACCOUNT_ATTEMPTS", "0"), "PORTCULLIS_LOGIN_ACCOUNT_ATTEMPTS"),
            (("PORTCULLIS_LOGIN_PAUSE", "2d"), "PORTCULLIS_LOGIN_PAUSE must be between"),
            (("PORTCULLIS_METRICS", "yes please"), "PORTCULLIS_METRICS must be on or off"),
        ];
        for ((key, value), expected) in cases {
            let error = settings(&[(key, value)]).unwrap_err().to_string();
            assert!(error.contains(expected), "{key}={value}: {error}");
        }
    }

    #[test]
    fn postgres_requires_a_shared_secret() {
        let error = settings(&[("DATABASE_URL", "postgres://u:p@db/portcullis")]).unwrap_err();
        assert!(error.to_string().contains("required with PostgreSQL"));
    }

    #[test]
    fn an_https_public_url_is_recognised() {
        let s = settings(&[("PORTCULLIS_PUBLIC_URL", "https://login.example.com/")]).unwrap();
        assert!(s.public_url.is_https());
        assert_eq!(s.public_url.origin(), "https://login.example.com");
    }
}
