//! Building and running the server. The route table is `routes` below.
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use actix_files::Files;
use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, Logger, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::auth::client::TrustedProxies;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::{CsrfKey, refuse_cross_site_writes};
use crate::auth::guard::{identify_page_visitor, require_bearer, require_page_session};
use crate::auth::password::PasswordHasher;
use crate::auth::revocation::{RevocationList, SyncerHandle};
use crate::auth::sessions::Sessions;
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::JwtKeys;
use crate::config::{DatabaseSettings, DatabaseUrl, Settings, load_or_create_jwt_secret};
use crate::db::{self, DbPool};
use crate::metrics::{self, Metrics};
use crate::web::{
    account, admin, api, dashboard, errors, health, home, limits, login, logout, password_change, sessions,
};

/// Forms and JSON bodies here are small; refuse more before reading it.
const BODY_LIMIT_BYTES: usize = 16 * 1024;
/// Slow clients (slowloris) are cut off if their request head is not in by then.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

pub struct Application {
    port: u16,
    server: Server,
    /// Keeps the revoked-session list fresh while the server runs.
    revocation_syncer: SyncerHandle,
}

impl Application {
    /// Connects, migrates and binds; `settings.bind` may use port 0 (tests).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = connect_with_retries(&settings.database).await?;
        let migration_pool = pool.clone();
        let applied = tokio::task::spawn_blocking(move || {
            let mut conn = migration_pool.get().context("no database connection available")?;
            db::run_migrations(&mut conn)
        })
        .await??;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied database migrations");
        }

        let secret = match (&settings.jwt_secret, &settings.database.url) {
            (Some(secret), _) => secret.clone(),
            (None, DatabaseUrl::Sqlite(path)) => load_or_create_jwt_secret(path)?.0,
            (None, DatabaseUrl::Postgres(_)) => {
                anyhow::bail!("PORTCULLIS_JWT_SECRET is required with PostgreSQL")
            }
        };
        let policy = settings.sessions;
        let previous = settings.jwt_secret_previous.as_ref();
        let keys = JwtKeys::new(&secret, previous, settings.public_url.origin(), policy.access_token_ttl);
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
        let throttle = web::Data::new(LoginThrottle::new(settings.throttle, &secret, previous));
        let revocation_syncer = revocations.spawn_syncer(
            sync_pool,
            pool.clone(),
            throttle.clone().into_inner(),
            settings.housekeeping_interval,
        )?;
        let sessions = web::Data::new(Sessions::new(keys, policy, revocations));
        let csrf = web::Data::new(CsrfKey::derive(&secret, previous));
        let cookies = web::Data::new(CookiePolicy::new(&settings.public_url));
        let hasher = web::Data::new(PasswordHasher::new(settings.hash_concurrency)?);
        let static_dir = settings.static_dir.clone();
        let hsts = settings.public_url.is_https();
        let trusted_proxies = web::Data::new(TrustedProxies(settings.trusted_proxies.clone()));
        let metrics = settings.metrics.then(|| web::Data::new(Metrics::default()));
        let counts_cache = web::Data::new(admin::overview::CountsCache::default());

        warn_if_no_admin(&pool);
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
            app.wrap(from_fn(refuse_cross_site_writes))
                .wrap(from_fn(limits::refuse_encoded_bodies))
                .wrap(from_fn(limits::refuse_oversized_heads))
                .wrap(security_headers(hsts))
                .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
                .wrap(from_fn(metrics::record_requests))
                .app_data(pool.clone())
                .app_data(sessions.clone())
                .app_data(csrf.clone())
                .app_data(cookies.clone())
                .app_data(hasher.clone())
                .app_data(counts_cache.clone())
                .app_data(throttle.clone())
                .app_data(trusted_proxies.clone())
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
        Ok(Self { port, server, revocation_syncer })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (tests stop it before their process exits).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        drop(self.revocation_syncer);
        result
    }
}

/// Every route, in one place. Private pages and the API each sit behind one guard.
fn routes(cfg: &mut web::ServiceConfig, static_dir: &PathBuf, serve_metrics: bool) {
    if serve_metrics {
        cfg.service(
            web::resource("/metrics")
                .route(web::get().to(metrics::show))
                .default_service(web::to(errors::method_not_allowed)),
        );
    }
    cfg.service(web::resource("/").wrap(from_fn(identify_page_visitor)).route(web::get().to(home::redirect)))
        .route("/healthz", web::get().to(health::live))
        .route("/readyz", web::get().to(health::ready))
        .service(
            web::resource("/login")
                .wrap(from_fn(identify_page_visitor))
                .route(web::get().to(login::form))
                .route(web::post().to(login::submit))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(web::resource("/dashboard").wrap(from_fn(require_page_session)).route(web::get().to(dashboard::show)))
        .service(
            web::resource("/logout")
                .wrap(from_fn(require_page_session))
                .route(web::post().to(logout::submit))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            web::scope("/account")
                .wrap(from_fn(require_page_session))
                .route("", web::get().to(account::show))
                .route("", web::post().to(account::update_profile))
                .route("/password", web::post().to(account::change_password))
                .route("/sessions", web::get().to(sessions::list))
                .route("/sessions/revoke-others", web::post().to(sessions::revoke_others))
                .route("/sessions/{id}/revoke", web::post().to(sessions::revoke)),
        )
        .service(
            web::resource("/password/change")
                .wrap(from_fn(require_page_session))
                .route(web::get().to(password_change::form))
                .route(web::post().to(password_change::submit)),
        )
        .service(
            web::scope("/admin")
                .wrap(from_fn(require_page_session))
                .route("", web::get().to(admin::overview::overview))
                .route("/users", web::get().to(admin::users::list))
                .route("/users/new", web::get().to(admin::user_new::form))
                .route("/users/new", web::post().to(admin::user_new::create))
                .route("/users/{id}", web::get().to(admin::user_detail::show))
                .route("/users/{id}", web::post().to(admin::user_detail::update))
                .route("/users/{id}/disable", web::post().to(admin::user_actions::disable))
                .route("/users/{id}/enable", web::post().to(admin::user_actions::enable))
                .route("/users/{id}/reset-password", web::post().to(admin::user_actions::reset_password))
                .route("/users/{id}/delete", web::get().to(admin::user_actions::confirm_delete))
                .route("/users/{id}/delete", web::post().to(admin::user_actions::delete))
                .route("/users/{id}/throttle/clear", web::post().to(admin::user_actions::clear_throttle))
                .route("/users/{id}/sessions/revoke-all", web::post().to(admin::user_actions::revoke_all_sessions))
                .route("/users/{id}/sessions/{session}/revoke", web::post().to(admin::user_actions::revoke_session))
                .route("/audit", web::get().to(admin::audit::list))
                .default_service(web::to(errors::not_found)),
        )
        .service(
            // Each API address is its own resource, so a wrong method is a 405 before any
            // token check; the Bearer guard wraps only the routes that need it.
            web::scope("/api")
                .service(api_resource("/token", "POST").route(web::post().to(api::token::issue)))
                .service(api_resource("/token/refresh", "POST").route(web::post().to(api::token::refresh)))
                .service(api_resource("/openapi.json", "GET").route(web::get().to(api::openapi::document)))
                .service(
                    api_resource("/logout", "POST")
                        .route(web::post().to(api::token::logout).wrap(from_fn(require_bearer))),
                )
                .service(api_resource("/me", "GET").route(web::get().to(api::me::show).wrap(from_fn(require_bearer))))
                .service(
                    api_resource("/users/{id}", "GET")
                        .route(web::get().to(api::users::show).wrap(from_fn(require_bearer))),
                )
                .default_service(web::to(errors::not_found)),
        )
        .service(
            web::scope("/static")
                .wrap(DefaultHeaders::new().add(("Cache-Control", "public, max-age=3600")))
                .wrap(from_fn(errors::static_file_errors))
                .service(Files::new("", static_dir)),
        )
        .default_service(web::to(errors::not_found));
}

/// An API address: other methods get a JSON 405 naming the allowed one (RFC 9110 `Allow`).
fn api_resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: actix_web::HttpRequest| async move {
        let mut response = errors::method_not_allowed(req).await;
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, actix_web::http::header::HeaderValue::from_static(allow));
        response
    }))
}

fn security_headers(hsts: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cache-Control", "no-store"));
    // Only when users reach us over https: browsers then refuse plain http for a year.
    if hsts { headers.add(("Strict-Transport-Security", "max-age=31536000")) } else { headers }
}

/// Opens the pool; an unreachable PostgreSQL is retried (1 s, 2 s, 4 s … at most 5 s apart)
/// until `startup_timeout`, logging each failure, so instances may start before their database.
async fn connect_with_retries(settings: &DatabaseSettings) -> anyhow::Result<DbPool> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        let attempt = settings.clone();
        let error = match tokio::task::spawn_blocking(move || db::build_pool(&attempt)).await? {
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

/// The default folder of CSS and images: `./static`, else the one beside the sources.
pub fn default_static_dir() -> PathBuf {
    let local = PathBuf::from("static");
    if local.is_dir() { local } else { PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static")) }
}
