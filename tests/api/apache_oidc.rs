//! Apache with `mod_auth_openidc` (Debian's packages; an OpenID Certified relying party)
//! protects a page on loopback with the configuration of `docs/openid-connect.md`: Chromium
//! opens the page, signs in on Portcullis with a password and an authenticator code (an
//! administrator under the default policy), and the page sees who signed in. With the module's
//! back-channel address registered, ending the Portcullis session (signing out, an admin
//! disabling the user, the session timing out) ends the Apache session too: the page asks to
//! sign in again.
use std::process::{Command, Stdio};

use portcullis::domain::Role;

use crate::helpers::*;
use crate::proxies::{Running, free_port, wait_for_port};
use crate::webdriver::Driver;

const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

fn apache_available() -> bool {
    let here = std::path::Path::new(&format!("{MODULES}/mod_auth_openidc.so")).exists()
        && Command::new(APACHE).arg("-v").stdout(Stdio::null()).status().is_ok_and(|status| status.success());
    if !here {
        assert!(
            std::env::var("CI").is_err(),
            "Apache with mod_auth_openidc must be installed in CI (.ci/run installs it)"
        );
        announce_skip("the mod_auth_openidc test: apt-get install apache2 libapache2-mod-auth-openidc");
    }
    here
}

/// The documented site configuration (`docs/openid-connect.md`), on loopback ports, with a
/// page that prints the claims the module passes on.
fn apache_config(dir: &std::path::Path, port: u16, issuer: &str, client_id: &str, secret: &str) -> String {
    let dir = dir.display();
    format!(
        r#"ServerRoot "{dir}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile "{dir}/httpd.pid"
ErrorLog "{dir}/error.log"
LogLevel warn auth_openidc:info
User www-data
Group www-data
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authn_core_module {MODULES}/mod_authn_core.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule authz_user_module {MODULES}/mod_authz_user.so
LoadModule mime_module {MODULES}/mod_mime.so
TypesConfig /etc/mime.types
LoadModule include_module {MODULES}/mod_include.so
LoadModule auth_openidc_module {MODULES}/mod_auth_openidc.so
DocumentRoot "{dir}/site"
AddOutputFilter INCLUDES .shtml
AddType text/html .shtml

# --- the part the documentation gives ---
OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client_id}
OIDCClientSecret {secret}
OIDCRedirectURI http://localhost:{port}/private/redirect_uri
OIDCCryptoPassphrase {passphrase}
OIDCScope "openid profile email groups"
OIDCPKCEMethod S256
OIDCRemoteUserClaim preferred_username
<Location /private>
    AuthType openid-connect
    Require valid-user
</Location>
# --- end ---

<Directory "{dir}/site">
    Options +Includes
    Require all granted
</Directory>
"#,
        passphrase = portcullis::random::token_base64(32),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apache_site_with_mod_auth_openidc_signs_an_administrator_in_with_a_second_factor() {
    if !apache_available() {
        return;
    }
    let Some(driver) = Driver::start().await else { return };
    // Portcullis at its own issuer address, with the real second-factor policy.
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let public_url = issuer.clone();
    let mut app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.housekeeping_interval = std::time::Duration::from_secs(1);
        settings.bind = format!("127.0.0.1:{port}").parse().unwrap();
        settings.public_url = portcullis::config::PublicUrl::parse(&public_url).unwrap();
        settings.mfa_required = portcullis::config::MfaPolicy::default();
    })
    .await;
    app.issuer = issuer.clone();
    let admin = app.create_user("root", Role::Admin).await;
    app.login_as(&admin).await;
    let enrolled = crate::second_factor::enrol(&app).await;

    let apache_port = free_port();
    let redirect = format!("http://localhost:{apache_port}/private/redirect_uri");
    let client = crate::oidc::register(&app, move |form| {
        // mod_auth_openidc hears of sign-outs at its redirect URI (Back-Channel Logout 1.0).
        form.backchannel_logout_uri = format!("{redirect}?logout=backchannel");
        form.redirect_uris = redirect;
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site/private")).unwrap();
    std::fs::write(
        dir.path().join("site/private/index.shtml"),
        r#"<!doctype html><title>Private</title><p id="who">Signed in as <!--#echo var="REMOTE_USER" --> (<!--#echo var="OIDC_CLAIM_email" -->)</p>"#,
    )
    .unwrap();
    // Apache's workers run as www-data: they must read the folder.
    Command::new("chmod").args(["-R", "a+rX", &dir.path().display().to_string()]).status().unwrap();
    let config = dir.path().join("httpd.conf");
    std::fs::write(
        &config,
        apache_config(dir.path(), apache_port, &issuer, &client.client_id, client.secret.as_deref().unwrap()),
    )
    .unwrap();
    let _apache = Running(
        Command::new(APACHE)
            .args(["-f", &config.display().to_string(), "-DFOREGROUND"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("apache2 starts"),
    );
    wait_for_port(apache_port, "Apache").await;

    let browser = driver.browser().await;
    browser.go(&format!("http://localhost:{apache_port}/private/index.shtml")).await;
    assert_eq!(browser.path().await.split('?').next().unwrap(), "/login", "Apache sent the visitor to Portcullis");
    assert!(browser.url().await.starts_with(&issuer));
    crate::browser::sign_in(&browser, "root", &admin.password).await;
    assert_eq!(browser.path().await, "/login/second-step");
    browser.type_into("#code", &enrolled.app.next_code()).await;
    browser.click_and_wait(r#"form[action="/login/second-step"] button[type="submit"]"#).await;
    browser.wait_for_path("/private/index.shtml").await;
    let who = browser.text_of("#who").await;
    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    assert_eq!(who, "Signed in as root (root@example.com)", "Apache's log:\n{log}");
    let page = format!("http://localhost:{apache_port}/private/index.shtml");

    // Signing out at Portcullis signs out of the Apache site too.
    browser.go(&format!("{issuer}/dashboard")).await;
    browser.click_and_wait(r#"form[action="/logout"] button[type="submit"]"#).await;
    asks_to_sign_in_again(&app, &browser, &page, 1, dir.path()).await;

    // An admin disabling a signed-in user.
    let alice = app.create_user("alice", Role::User).await;
    crate::browser::sign_in(&browser, "alice", &alice.password).await;
    browser.wait_for_path("/private/index.shtml").await;
    assert_eq!(browser.text_of("#who").await, "Signed in as alice (alice@example.com)");
    let csrf = app.session_csrf_token().await;
    let disabled = app.post_form(&format!("/admin/users/{}/disable", alice.id), &[("csrf_token", &csrf)]).await;
    assert_eq!(disabled.status(), 303);
    asks_to_sign_in_again(&app, &browser, &page, 2, dir.path()).await;

    // A session left idle past the timeout (its last use moved back; housekeeping ends it).
    let bob = app.create_user("bob", Role::User).await;
    crate::browser::sign_in(&browser, "bob", &bob.password).await;
    browser.wait_for_path("/private/index.shtml").await;
    assert_eq!(browser.text_of("#who").await, "Signed in as bob (bob@example.com)");
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::sessions::dsl::*;
        diesel::update(sessions.filter(user_id.eq(bob.id)))
            .set(last_used_at.eq(portcullis::db::users::now() - chrono::Duration::days(1)))
            .execute(conn)
            .unwrap();
    })
    .await;
    asks_to_sign_in_again(&app, &browser, &page, 3, dir.path()).await;
    browser.quit().await;
    assert_no_server_panics();
    app.server.stop(true).await;
}

/// Once Apache acknowledged the `delivered`th logout token, the page sends the visitor back to
/// Portcullis's sign-in.
async fn asks_to_sign_in_again(
    app: &TestApp,
    browser: &crate::webdriver::Browser,
    page: &str,
    delivered: i64,
    dir: &std::path::Path,
) {
    let acknowledged = within(std::time::Duration::from_secs(10), || async {
        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::oauth_logout_deliveries::dsl::*;
            oauth_logout_deliveries.filter(delivered_at.is_not_null()).count().get_result::<i64>(conn).unwrap()
        })
        .await
            >= delivered
    })
    .await;
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    assert!(acknowledged.is_some(), "Apache acknowledged logout token {delivered}; its log:\n{log}");
    browser.go(page).await;
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    assert_eq!(
        browser.path().await.split('?').next().unwrap(),
        "/login",
        "the Apache page asks to sign in again: {} {}\n{log}",
        browser.url().await,
        browser.source().await
    );
    assert!(browser.url().await.starts_with(&app.issuer));
}
