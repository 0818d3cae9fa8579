//! Building and running the server. The route table is `routes` below.
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_files::Files;
use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, Logger, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::auth::csrf::CsrfKey;
use crate::auth::passkeys::Passkeys;
use crate::auth::password::PasswordHasher;
use crate::auth::revocation::{RevocationList, SyncerHandle};
use crate::auth::second_factor::SecondFactors;
use crate::auth::sessions::Sessions;
use crate::auth::signing_keys::SigningKeys;
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::JwtKeys;
use crate::background::{self, TaskHandle};
use crate::config::{DatabaseSettings, DatabaseUrl, JwtSecret, Settings, load_or_create_jwt_secret};
use crate::db::{self, DbPool};
use crate::domain::{AccessRules, SiteHosts};
use crate::mail::Outbox;
use crate::mail::sender::{self, SenderHandle, SenderStats};
use crate::mail::transport::Mailer;
use crate::metrics::{self, Metrics};
use crate::web::admin::users;
use crate::web::client::TrustedProxies;
use crate::web::cookies::CookiePolicy;
use crate::web::cross_site::refuse_cross_site_writes;
use crate::web::endpoint::{Area, RouteInfo, endpoint, get, head_as_get, post, require_admin};
use crate::web::guard::{identify_page_visitor, require_page_session};
use crate::web::{
    account, admin, api, dashboard, email_confirm, errors, forward_auth, groups, health, home, invitation, limits,
    login, logout, oauth, password_change, password_reset, well_known,
};

/// Forms and JSON bodies here are small; refuse more before reading it.
const BODY_LIMIT_BYTES: usize = 16 * 1024;
/// Slow clients (slowloris) are cut off if their request head is not in by then.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// The CSP; with a cookie domain a sign-in form may also lead (by its redirect, which
/// `form-action` covers) back to the sites under it.
fn content_security_policy(settings: &Settings) -> String {
    match &settings.cookie_domain {
        None => CONTENT_SECURITY_POLICY.to_owned(),
        Some(domain) => {
            let scheme = if settings.public_url.is_https() { "https" } else { "http" };
            format!("{CONTENT_SECURITY_POLICY} {scheme}://{domain}:* {scheme}://*.{domain}:*")
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    /// Keeps the revoked-session list fresh while the server runs.
    revocation_syncer: SyncerHandle,
    /// Delivers the outbox, when mail is configured.
    mail_sender: Option<SenderHandle>,
    backchannel: crate::oauth::backchannel::DelivererHandle,
    /// Keeps the signing keys in step with the database.
    key_reloader: TaskHandle,
    /// Deletes what has ended.
    housekeeping: TaskHandle,
    /// Statements run by the request handlers' pool.
    statements: db::StatementCount,
}

impl Application {
    /// Connects, migrates and binds; `settings.bind` may use port 0 (tests).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // A mistake in the rules file stops start-up at once, naming its line.
        let rules = match &settings.forward_auth.rules_file {
            Some(path) => AccessRules::load(path)?,
            None => AccessRules::default(),
        };
        let (pool, statements) = connect_with_retries(&settings.database).await?;
        let migration_pool = pool.clone();
        let applied = tokio::task::spawn_blocking(move || {
            let mut conn = migration_pool.get().context("no database connection available")?;
            db::run_migrations(&mut conn)
        })
        .await??;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied database migrations");
        }

        let secret = signing_secret(&settings)?;
        let policy = settings.sessions;
        let previous = settings.jwt_secret_previous.as_ref();
        let keys = JwtKeys::new(
            settings.signing.algorithm,
            &secret,
            previous,
            settings.public_url.origin(),
            policy.access_token_ttl,
        );
        // The signing keys every instance shares: made on first start (or after a change of
        // algorithm), then read.
        let signing_keys = Arc::new(SigningKeys::new(&secret, previous, policy.access_token_ttl));
        let (keys_pool, keys_maker, signing) = (pool.clone(), Arc::clone(&signing_keys), settings.signing);
        let single_instance = !settings.database.url.is_postgres();
        let loaded = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut conn = keys_pool.get().context("no database connection available")?;
            let now = db::users::now();
            // A single SQLite instance moves its keys under a new secret by itself.
            if single_instance {
                db::write_transaction(&mut conn, |conn| keys_maker.reseal_all(conn))?;
            }
            if let Some(kid) = keys_maker.ensure(&mut conn, &signing, now)? {
                tracing::info!(kid, alg = signing.algorithm.name(), "made a new token signing key");
            }
            keys_maker.load(&mut conn, now)
        })
        .await??;
        keys.replace_keys(loaded);
        let revocations = std::sync::Arc::new(RevocationList::new(policy.access_token_ttl, policy.idle_timeout));
        let first_sync_pool = pool.clone();
        let first_sync_list = std::sync::Arc::clone(&revocations);
        tokio::task::spawn_blocking(move || {
            let mut conn = first_sync_pool.get().context("no database connection available")?;
            first_sync_list.sync(&mut conn)
        })
        .await??;
        // The revoked list gets a connection of its own: a burst of sign-ins holding every
        // pooled connection must not make it stale (guarded requests would fail closed).
        let own = DatabaseSettings { pool_size: 1, ..settings.database.clone() };
        let sync_pool = tokio::task::spawn_blocking(move || db::build_pool(&own)).await??;
        let outbox = Arc::new(Outbox::new(&settings.mail, &settings.public_url, &secret, previous));
        let sender_stats = Arc::new(SenderStats::default());
        let mail_sender = start_mail_sender(&settings, &outbox, &sender_stats).await?;
        let throttle = web::Data::new(LoginThrottle::new(settings.throttle, &secret, previous, Arc::clone(&outbox)));
        let revocation_syncer = revocations.spawn_syncer(sync_pool)?;
        let housekeeping = background::start_housekeeping(
            pool.clone(),
            Arc::clone(&revocations),
            throttle.clone().into_inner(),
            settings.housekeeping_interval,
        )?;
        let sessions = web::Data::new(
            Sessions::new(keys, policy, settings.mfa_required, revocations, Arc::clone(&outbox))
                .with_key_maker(Arc::clone(&signing_keys)),
        );
        let backchannel = start_backchannel_deliverer(&settings, sessions.clone().into_inner()).await?;
        let reloaded = sessions.clone().into_inner();
        let key_reloader = background::start_key_reloader(signing_keys, pool.clone(), settings.signing, move |keys| {
            reloaded.replace_keys(keys)
        })?;
        let factors = web::Data::new(SecondFactors::new(
            &secret,
            previous,
            settings.mfa_required,
            settings.public_url.host_name(),
            Arc::clone(&outbox),
        ));
        let outbox = web::Data::from(outbox);
        let sender_stats = web::Data::from(sender_stats);
        check_authenticator_keys(&pool, &factors, &settings.database.url).await?;
        let passkeys = web::Data::new(Passkeys::new(&settings.public_url, &secret, previous)?);
        let csrf = web::Data::new(CsrfKey::derive(&secret, previous));
        let cookies = web::Data::new(CookiePolicy::new(&settings.public_url, settings.cookie_domain.as_deref()));
        let sites = web::Data::new(SiteHosts::new(
            settings.public_url.host_name(),
            settings.public_url.port(),
            settings.cookie_domain.as_deref(),
            settings.public_url.is_https(),
        ));
        let gate = web::Data::new(forward_auth::Gate {
            rules,
            pass_token: settings.forward_auth.pass_token,
            origin: settings.public_url.origin().to_owned(),
        });
        let hasher = web::Data::new(PasswordHasher::new(settings.hash_concurrency)?);
        let static_dir = settings.static_dir.clone();
        let hsts = settings.public_url.is_https();
        let csp = content_security_policy(&settings);
        let app_cache = web::Data::new(crate::oauth::cache::ClientCache::default());
        let registration = web::Data::new(settings.dynamic_registration);
        let csp_data = web::Data::new(crate::web::context::ContentSecurityPolicy(csp.clone()));
        let trusted_proxies = web::Data::new(TrustedProxies(settings.trusted_proxies.clone()));
        let metrics = settings.metrics.then(|| web::Data::new(Metrics::default()));
        let counts_cache = web::Data::new(admin::overview::CountsCache::default());

        warn_if_no_admin(&pool);
        let reset_requests = web::Data::new(crate::accounts::ResetRequests::spawn(
            pool.clone(),
            sessions.clone().into_inner(),
            throttle.clone().into_inner(),
            hasher.clone().into_inner(),
            factors.clone().into_inner(),
            outbox.clone().into_inner(),
        ));
        let pool = web::Data::new(pool);

        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("could not listen on {} (PORTCULLIS_BIND)", settings.bind))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            let app = App::new();
            let app = match &metrics {
                Some(metrics) => app.app_data(metrics.clone()),
                None => app,
            };
            app.wrap(from_fn(head_as_get))
                .wrap(from_fn(refuse_cross_site_writes))
                .wrap(from_fn(limits::refuse_encoded_bodies))
                .wrap(from_fn(limits::refuse_oversized_heads))
                .wrap(security_headers(hsts, &csp))
                // Paths without their query: a mailed link's token must not reach the logs.
                .wrap(
                    Logger::new("%a \"%{method}xi %U\" %s %b %Dms")
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                .wrap(from_fn(metrics::record_requests))
                .wrap(from_fn(crate::web::request_id::tag_requests))
                .app_data(pool.clone())
                .app_data(sessions.clone())
                .app_data(csrf.clone())
                .app_data(cookies.clone())
                .app_data(hasher.clone())
                .app_data(counts_cache.clone())
                .app_data(throttle.clone())
                .app_data(factors.clone())
                .app_data(passkeys.clone())
                .app_data(outbox.clone())
                .app_data(sender_stats.clone())
                .app_data(trusted_proxies.clone())
                .app_data(sites.clone())
                .app_data(gate.clone())
                .app_data(reset_requests.clone())
                .app_data(csp_data.clone())
                .app_data(app_cache.clone())
                .app_data(registration.clone())
                .app_data(web::JsonConfig::default().limit(BODY_LIMIT_BYTES).error_handler(errors::json_error))
                .app_data(web::QueryConfig::default().error_handler(errors::query_error))
                .app_data(web::PayloadConfig::new(BODY_LIMIT_BYTES))
                .configure(|cfg| routes(cfg, &static_dir, metrics.is_some()))
        })
        .shutdown_timeout(15)
        // A client gets this long to send its request head, and to finish closing.
        .client_request_timeout(REQUEST_HEAD_TIMEOUT)
        .client_disconnect_timeout(Duration::from_secs(1))
        .listen(listener)?
        .run();
        tracing::info!(address = %settings.bind.ip(), port, public_url = settings.public_url.origin(), "Portcullis is listening");
        Ok(Self { port, server, revocation_syncer, mail_sender, backchannel, key_reloader, housekeeping, statements })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many statements the request handlers' connections have run so far.
    pub fn statements(&self) -> db::StatementCount {
        self.statements.clone()
    }

    /// Stops the server from elsewhere (tests stop it before their process exits).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        drop(self.revocation_syncer);
        drop(self.mail_sender);
        drop(self.backchannel);
        drop(self.key_reloader);
        drop(self.housekeeping);
        result
    }
}

/// Every route, in one place. Private pages and the API each sit behind one guard, and the
/// admin area behind one admin gate. Each address is an `endpoint`: GET answers HEAD too,
/// OPTIONS and wrong methods name the others.
fn routes(cfg: &mut web::ServiceConfig, static_dir: &PathBuf, serve_metrics: bool) {
    if serve_metrics {
        cfg.service(endpoint("/metrics", [get(metrics::show)]));
    }
    let (account_area, _) = account_area().into_parts();
    let (admin_area, _) = admin_area().into_parts();
    let (managers_area, _) = managers_area().into_parts();
    let (api_area, _) = api_area().into_parts();
    cfg.service(endpoint("/", [get(home::redirect)]).wrap(from_fn(identify_page_visitor)))
        .service(endpoint("/healthz", [get(health::live)]))
        .service(endpoint("/readyz", [get(health::ready)]))
        .service(endpoint(well_known::JWKS_PATH, [get(well_known::jwks)]))
        .service(endpoint("/auth/verify", [get(forward_auth::verify)]))
        .service(endpoint("/.well-known/oauth-authorization-server", [get(well_known::metadata)]))
        .service(endpoint("/.well-known/openid-configuration", [get(well_known::metadata)]))
        .service(
            endpoint(
                oauth::shared::AUTHORIZE_PATH,
                [get(oauth::authorize::start_get), post(oauth::authorize::start_post)],
            )
            .wrap(from_fn(identify_page_visitor)),
        )
        .service(
            endpoint(oauth::shared::CONSENT_PATH, [post(oauth::authorize::consent)])
                .wrap(from_fn(require_page_session)),
        )
        .service(
            endpoint(oauth::shared::LOGOUT_PATH, [get(oauth::logout::start_get), post(oauth::logout::start_post)])
                .wrap(from_fn(identify_page_visitor)),
        )
        .service(
            endpoint(oauth::shared::LOGOUT_CONFIRM_PATH, [post(oauth::logout::confirm)])
                .wrap(from_fn(require_page_session)),
        )
        .service(endpoint(oauth::shared::TOKEN_PATH, [post(oauth::endpoints::token)]))
        .service(endpoint(oauth::shared::PAR_PATH, [post(oauth::authorize::push)]))
        .service(endpoint(oauth::shared::REGISTER_PATH, [post(oauth::endpoints::register)]))
        .service(endpoint(oauth::shared::DEVICE_AUTHORIZATION_PATH, [post(oauth::endpoints::device_authorization)]))
        .service(
            endpoint(crate::web::device::PATH, [get(crate::web::device::form), post(crate::web::device::submit)])
                .wrap(from_fn(require_page_session)),
        )
        .service(
            endpoint(crate::web::device::CONFIRM_PATH, [post(crate::web::device::decide)])
                .wrap(from_fn(require_page_session)),
        )
        .service(endpoint(oauth::shared::REVOKE_PATH, [post(oauth::endpoints::revoke)]))
        .service(endpoint(oauth::shared::INTROSPECT_PATH, [post(oauth::endpoints::introspect)]))
        .service(endpoint(
            oauth::shared::USERINFO_PATH,
            [get(oauth::endpoints::userinfo), post(oauth::endpoints::userinfo)],
        ))
        .service(endpoint("/login", [get(login::form), post(login::submit)]).wrap(from_fn(identify_page_visitor)))
        .service(endpoint("/login/forgot", [get(login::forgot::form), post(login::forgot::submit)]))
        // Mailed links carry their token in the address: no page they lead to names it to another site.
        .service(
            endpoint(password_reset::PATH, [get(password_reset::form), post(password_reset::submit)])
                .wrap(no_referrer()),
        )
        .service(endpoint(invitation::PATH, [get(invitation::form), post(invitation::submit)]).wrap(no_referrer()))
        .service(
            endpoint("/email/confirm", [get(email_confirm::form), post(email_confirm::submit)]).wrap(no_referrer()),
        )
        .service(endpoint(login::second_step::PATH, [get(login::second_step::form), post(login::second_step::submit)]))
        .service(endpoint("/login/passkey/options", [post(login::passkey::sign_in_options)]))
        .service(endpoint("/login/passkey", [post(login::passkey::sign_in)]))
        .service(endpoint("/login/second-step/passkey/options", [post(login::passkey::second_step_options)]))
        .service(endpoint("/login/second-step/passkey", [post(login::passkey::second_step)]))
        .service(endpoint("/dashboard", [get(dashboard::show)]).wrap(from_fn(require_page_session)))
        .service(endpoint("/logout", [post(logout::submit)]).wrap(from_fn(require_page_session)))
        .service(
            account_area
                .wrap(from_fn(errors::keep_navigation))
                .wrap(from_fn(require_page_session))
                .default_service(web::to(errors::not_found)),
        )
        .service(
            managers_area
                .wrap(from_fn(errors::keep_navigation))
                .wrap(from_fn(require_page_session))
                .default_service(web::to(errors::not_found)),
        )
        .service(
            endpoint("/password/change", [get(password_change::form), post(password_change::submit)])
                .wrap(from_fn(require_page_session)),
        )
        .service(
            // The last wrap runs first: the session guard, then (so that a refusal keeps the
            // navigation) error pages with it, then the admin gate.
            admin_area
                .wrap(from_fn(require_admin))
                .wrap(from_fn(errors::keep_navigation))
                .wrap(from_fn(require_page_session))
                .default_service(web::to(errors::not_found)),
        )
        .service(api_area.default_service(web::to(errors::not_found)))
        .service(
            web::scope("/static")
                .wrap(DefaultHeaders::new().add(("Cache-Control", "public, max-age=3600")))
                .wrap(from_fn(errors::static_file_errors))
                .service(Files::new("", static_dir)),
        )
        .default_service(web::to(errors::not_found));
}

/// What the managers of groups use (each route checks that the user manages the group).
fn managers_area() -> Area {
    Area::new("/groups")
        .at("", [get(groups::list)])
        .at("/{group}", [get(groups::show)])
        .at("/{group}/members/add", [post(groups::add_members)])
        .at("/{group}/members/remove", [post(groups::remove_members)])
}

fn account_area() -> Area {
    Area::new("/account")
        .at("", [get(account::profile::show), post(account::profile::update)])
        .at("/password", [get(account::password::show), post(account::password::change)])
        .at("/sessions", [get(account::sessions::list)])
        .at("/sessions/revoke-others", [post(account::sessions::revoke_others)])
        .at("/sessions/{session}/revoke", [post(account::sessions::revoke)])
        .at("/apps", [get(account::apps::list)])
        .at("/apps/{app}/disconnect", [post(account::apps::disconnect)])
        .at("/security", [get(account::security::show)])
        .at("/security/confirm", [get(account::security::confirm::show), post(account::security::confirm::submit)])
        .at(
            "/security/authenticator",
            [get(account::security::authenticator::show), post(account::security::authenticator::start)],
        )
        .at("/security/authenticator/confirm", [post(account::security::authenticator::confirm)])
        .at("/security/authenticator/remove", [post(account::security::authenticator::remove)])
        .at("/security/recovery-codes", [post(account::security::recovery_codes::regenerate)])
        .at("/security/passkeys", [post(account::security::passkeys::register)])
        .at("/security/passkeys/options", [post(account::security::passkeys::options)])
        .at("/security/passkeys/{passkey}/rename", [post(account::security::passkeys::rename)])
        .at("/security/passkeys/{passkey}/remove", [post(account::security::passkeys::remove)])
}

fn admin_area() -> Area {
    Area::for_admins("/admin")
        .at("", [get(admin::overview::overview)])
        .at("/users", [get(users::list::list)])
        .at("/users.csv", [get(users::list::export)])
        .at("/users/new", [get(users::new::form), post(users::new::create)])
        .at("/users/bulk", [post(users::bulk::confirm)])
        .at("/users/bulk/apply", [post(users::bulk::apply)])
        .at("/users/{id}", [get(users::detail::show), post(users::detail::update)])
        .at("/users/{id}/disable", [post(users::actions::disable)])
        .at("/users/{id}/enable", [post(users::actions::enable)])
        .at(
            "/users/{id}/reset-password",
            [get(users::actions::confirm_reset_password), post(users::actions::reset_password)],
        )
        .at("/users/{id}/reset-mfa", [get(users::actions::confirm_reset_mfa), post(users::actions::reset_mfa)])
        .at("/users/{id}/delete", [get(users::actions::confirm_delete), post(users::actions::delete)])
        .at("/users/{id}/throttle/clear", [post(users::actions::clear_throttle)])
        .at("/users/{id}/groups", [post(users::actions::change_groups)])
        .at(
            "/users/{id}/sessions/revoke-all",
            [get(users::actions::confirm_revoke_all_sessions), post(users::actions::revoke_all_sessions)],
        )
        .at("/users/{id}/sessions/{session}/revoke", [post(users::actions::revoke_session)])
        .at("/users/{id}/invitation/resend", [post(users::actions::resend_invitation)])
        .at("/users/{id}/invitation/revoke", [post(users::actions::revoke_invitation)])
        .at("/groups", [get(admin::groups::list)])
        .at("/groups/new", [get(admin::groups::new_form), post(admin::groups::create)])
        .at("/groups/{group}", [get(admin::groups::show)])
        .at("/groups/{group}/edit", [get(admin::groups::edit_form), post(admin::groups::update)])
        .at("/groups/{group}/delete", [get(admin::groups::confirm_delete), post(admin::groups::delete)])
        .at("/groups/{group}/members/add", [post(admin::groups::add_members)])
        .at("/groups/{group}/members/remove", [post(admin::groups::remove_members)])
        .at("/groups/{group}/managers", [post(admin::groups::managers)])
        .at("/apps", [get(admin::apps::list)])
        .at("/apps/new", [get(admin::apps::new_form), post(admin::apps::create)])
        .at("/apps/registration-tokens", [post(admin::apps::issue_registration_token)])
        .at("/apps/{app}", [get(admin::apps::show)])
        .at("/apps/{app}/edit", [get(admin::apps::edit_form), post(admin::apps::update)])
        .at("/apps/{app}/disable", [post(admin::apps::disable)])
        .at("/apps/{app}/enable", [post(admin::apps::enable)])
        .at("/apps/{app}/approve", [post(admin::apps::approve)])
        .at("/apps/{app}/rotate-secret", [get(admin::apps::confirm_rotate), post(admin::apps::rotate)])
        .at("/apps/{app}/delete", [get(admin::apps::confirm_delete), post(admin::apps::delete)])
        .at("/audit", [get(admin::audit::list)])
        .at("/audit.csv", [get(admin::audit::export)])
        .at("/outbox", [get(admin::outbox::list)])
}

/// The Bearer guard wraps only the routes that need it: a wrong method is a 405 before any
/// token check.
fn api_area() -> Area {
    Area::new("/api")
        .at("/token", [post(api::token::issue)])
        .at("/token/mfa", [post(api::token::second_step)])
        .at("/token/refresh", [post(api::token::refresh)])
        .at("/openapi.json", [get(api::openapi::document)])
        .at("/logout", [post(api::token::logout).with_bearer_token()])
        .at("/me", [get(api::me::show).with_bearer_token()])
        .at("/users/{id}", [get(api::users::show).with_admin_bearer_token()])
}

/// The addresses of the signed-in areas (`/account/**`, `/admin/**`), with their methods: the
/// accessibility test opens every page among them.
pub fn page_routes() -> Vec<RouteInfo> {
    [account_area(), admin_area(), managers_area()].into_iter().flat_map(|area| area.into_parts().1).collect()
}

/// The addresses of the route table that only administrators may use (pages and API), with
/// their methods: what the admin gate must refuse to everyone else.
pub fn admin_routes() -> Vec<RouteInfo> {
    [account_area(), admin_area(), api_area()]
        .into_iter()
        .flat_map(|area| area.into_parts().1)
        .filter(|route| route.admins_only)
        .collect()
}

/// For the pages mailed links open: `Referrer-Policy: no-referrer` (the app-wide
/// `same-origin` would still send the token to our own other pages).
fn no_referrer() -> DefaultHeaders {
    DefaultHeaders::new().add(("Referrer-Policy", "no-referrer"))
}

fn security_headers(hsts: bool, csp: &str) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", csp.to_owned()))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        // No window we open (or that opens us) shares a browsing context group with another site.
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cache-Control", "no-store"));
    // Only when users reach us over https: browsers then refuse plain http for a year.
    if hsts { headers.add(("Strict-Transport-Security", "max-age=31536000")) } else { headers }
}

/// With SMTP configured: checks the sender address and starts the sender thread, on a
/// connection of its own (a burst of requests must not hold up the mail).
async fn start_mail_sender(
    settings: &Settings,
    outbox: &Arc<Outbox>,
    stats: &Arc<SenderStats>,
) -> anyhow::Result<Option<SenderHandle>> {
    let Some(smtp) = &settings.mail.smtp else { return Ok(None) };
    let mailer = Mailer::new(smtp, settings.mail.from.as_deref().unwrap_or_default())?;
    let own = DatabaseSettings { pool_size: sender::THREADS as u32, ..settings.database.clone() };
    let pool = tokio::task::spawn_blocking(move || db::build_pool(&own)).await??;
    let single_instance = !settings.database.url.is_postgres();
    let (outbox, stats) = (Arc::clone(outbox), Arc::clone(stats));
    let handle =
        tokio::task::spawn_blocking(move || sender::spawn(pool, outbox, mailer, stats, single_instance)).await??;
    tracing::info!(server = %smtp.describe(), "mail is on: the outbox is delivered by this instance too");
    Ok(Some(handle))
}

/// Starts the back-channel logout deliverer, on connections of its own (a burst of requests
/// must not hold up the sign-outs apps wait for).
async fn start_backchannel_deliverer(
    settings: &Settings,
    sessions: Arc<Sessions>,
) -> anyhow::Result<crate::oauth::backchannel::DelivererHandle> {
    let own = DatabaseSettings { pool_size: 2, ..settings.database.clone() };
    let pool = tokio::task::spawn_blocking(move || db::build_pool(&own)).await??;
    let single_instance = !settings.database.url.is_postgres();
    tokio::task::spawn_blocking(move || crate::oauth::backchannel::spawn(pool, sessions, single_instance)).await?
}

/// The signing secret: configured, or (SQLite only) the one kept beside the database.
pub fn signing_secret(settings: &Settings) -> anyhow::Result<JwtSecret> {
    match (&settings.jwt_secret, &settings.database.url) {
        (Some(secret), _) => Ok(secret.clone()),
        (None, DatabaseUrl::Sqlite(path)) => Ok(load_or_create_jwt_secret(path)?.0),
        (None, DatabaseUrl::Postgres(_)) => anyhow::bail!("PORTCULLIS_JWT_SECRET is required with PostgreSQL"),
    }
}

/// Authenticator keys are sealed under the signing secret (see `auth::sealed`). After a
/// rotation, a single SQLite instance reseals them under the new secret at once; with several
/// instances that waits for `portcullis reseal-keys`, run once every instance has the new
/// secret (an instance still on the old one could not read them). Keys that neither secret
/// opens would lock their users out: start-up stops and says how to recover.
async fn check_authenticator_keys(
    pool: &DbPool,
    factors: &web::Data<SecondFactors>,
    url: &DatabaseUrl,
) -> anyhow::Result<()> {
    let (pool, factors, single_instance) = (pool.clone(), factors.clone(), !url.is_postgres());
    let (resealed, stale, unreadable) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut conn = pool.get().context("no database connection available")?;
        let resealed =
            if single_instance { db::write_transaction(&mut conn, |conn| factors.reseal_all(conn))? } else { 0 };
        let (stale, unreadable) = factors.key_standing(&mut conn)?;
        Ok((resealed, stale, unreadable))
    })
    .await??;
    if resealed > 0 {
        tracing::info!(resealed, "authenticator keys resealed under the new signing secret");
    }
    if stale > 0 {
        tracing::info!(
            stale,
            "authenticator keys are sealed under PORTCULLIS_JWT_SECRET_PREVIOUS: once every instance runs with the \
             new secret, run `portcullis reseal-keys`, then PORTCULLIS_JWT_SECRET_PREVIOUS can go"
        );
    }
    if unreadable > 0 {
        anyhow::bail!(
            "{unreadable} authenticator key(s) are sealed under a signing secret this instance does not have, so \
             their users could not sign in: start with the secret they were sealed under as \
             PORTCULLIS_JWT_SECRET_PREVIOUS (and run `portcullis reseal-keys`), or reset those users' two-step \
             sign-in with `portcullis user reset-mfa`"
        );
    }
    Ok(())
}

/// Opens the pool; an unreachable PostgreSQL is retried (1 s, 2 s, 4 s … at most 5 s apart)
/// until `startup_timeout`, logging each failure, so instances may start before their database.
async fn connect_with_retries(settings: &DatabaseSettings) -> anyhow::Result<(DbPool, db::StatementCount)> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        let attempt = settings.clone();
        let error = match tokio::task::spawn_blocking(move || db::build_counted_pool(&attempt)).await? {
            Ok(pool) => return Ok(pool),
            Err(error) => error,
        };
        let waited = started.elapsed();
        if !settings.url.is_postgres() || waited + pause > settings.startup_timeout {
            return Err(error);
        }
        tracing::warn!(error = %format!("{error:#}"), retry_in = ?pause, "database not reachable yet; retrying (PORTCULLIS_DB_STARTUP_TIMEOUT)");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

fn warn_if_no_admin(pool: &DbPool) {
    let admins = pool.get().ok().and_then(|mut conn| db::users::count_active_admins(&mut conn).ok());
    if admins == Some(0) {
        tracing::warn!(
            "there is no active administrator yet; create one with: \
             portcullis user create --username admin --email admin@example.com --role admin"
        );
    }
}
