//! Real relying parties against the provider: npm's `openid-client` (the certified library's
//! own checks of discovery, `iss` in the answer, state, nonce, PKCE and the ID token's claims)
//! runs the code flow, userinfo, refresh and revocation, for a confidential and a public app,
//! with and without pushed requests, and the device flow; the official MCP SDK's client
//! registers itself and signs in to the SDK's own server with PKCE and a resource indicator.
//! Apache's `mod_auth_openidc` is in `apache_oidc.rs`.
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;

const RP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc-clients/rp.mjs");
const MCP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc-clients/mcp.mjs");
const MODULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc-clients/node_modules/openid-client");
const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// Whether `npm ci --prefix tests/oidc-clients` ran; in CI its absence fails.
pub(crate) fn node_clients_available() -> bool {
    let available = std::path::Path::new(MODULES).exists() && Command::new("node").arg("--version").output().is_ok();
    if !available {
        assert!(
            std::env::var("CI").is_err(),
            "openid-client must be installed in CI (npm ci --prefix tests/oidc-clients)"
        );
        announce_skip("the openid-client tests: run `npm ci --prefix tests/oidc-clients`");
    }
    available
}

/// A server reachable at its own issuer address (the library starts from it).
pub(crate) async fn app_at_its_issuer() -> TestApp {
    app_at_its_issuer_with(Backend::Sqlite, |_| {}).await
}

/// [`app_at_its_issuer`] on `backend`, with settings `adjust` changes.
pub(crate) async fn app_at_its_issuer_with(
    backend: Backend,
    adjust: impl FnOnce(&mut portcullis::config::Settings),
) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let public_url = issuer.clone();
    let mut app = spawn_app_with(backend, move |settings| {
        settings.bind = format!("127.0.0.1:{port}").parse().unwrap();
        settings.public_url = portcullis::config::PublicUrl::parse(&public_url).unwrap();
        adjust(settings);
    })
    .await;
    app.issuer = issuer;
    app
}

/// The relying party for `client` in `mode` (`code`, `par` or `device`), with its report lines.
fn start_relying_party(
    app: &TestApp,
    client: &crate::oidc::App,
    mode: &str,
) -> (std::process::Child, std::process::ChildStdin, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut child = Command::new("node")
        .arg(RP)
        .args([&app.issuer, &client.client_id, client.secret.as_deref().unwrap_or("-"), CALLBACK, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let stdin = child.stdin.take().unwrap();
    let (lines_out, lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_out.send(line).is_err() {
                break;
            }
        }
    });
    (child, stdin, lines)
}

/// Runs the relying party for `client`, signing in with the app's browser (already signed in).
async fn run_relying_party(app: &TestApp, client: &crate::oidc::App, mode: &str) -> Value {
    let (mut child, mut stdin, mut lines) = start_relying_party(app, client, mode);
    let first: Value = serde_json::from_str(&lines.recv().await.expect("the authorization URL")).unwrap();
    let authorize = first["authorize_url"].as_str().unwrap_or_else(|| panic!("{first}"));
    assert!(authorize.starts_with(&format!("{}/oauth2/authorize?", app.issuer)), "{authorize}");
    let response = app.client.get(authorize).send().await.unwrap();
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let landed = location(&response);
    assert!(landed.starts_with(CALLBACK), "{landed}");
    writeln!(stdin, "{landed}").unwrap();
    let result: Value = serde_json::from_str(&lines.recv().await.expect("the relying party's report")).unwrap();
    assert!(child.wait().unwrap().success());
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_signs_in_reads_userinfo_refreshes_and_revokes_as_a_confidential_and_a_public_app_with_and_without_par()
 {
    if !node_clients_available() {
        return;
    }
    let app = app_at_its_issuer().await;
    let alice = app.create_user("alice", Role::User).await;
    app.login_as(&alice).await;
    let confidential = crate::oidc::register(&app, |form| form.redirect_uris = CALLBACK.into()).await;
    let public = crate::oidc::register(&app, |form| {
        form.redirect_uris = CALLBACK.into();
        form.public = true;
        form.id_token_alg = "EdDSA".into();
    })
    .await;
    for (client, mode) in [(&confidential, "code"), (&public, "code"), (&confidential, "par"), (&public, "par")] {
        let result = run_relying_party(&app, client, mode).await;
        assert!(result.get("failed").is_none(), "openid-client refused something: {result}");
        assert_eq!(result["claims"]["sub"], alice.id.to_string());
        assert_eq!(result["claims"]["iss"], app.issuer.as_str());
        assert_eq!(result["claims"]["aud"], client.client_id.as_str());
        assert_eq!(result["userinfo"]["email"], "alice@example.com");
        assert_eq!(result["userinfo"]["preferred_username"], "alice");
        assert_eq!(result["refreshed"]["has_id_token"], true);
        assert_eq!(result["refreshed"]["sub"], alice.id.to_string());
        assert_eq!(result["after_revocation"]["error"], "invalid_grant", "{result}");
        assert_eq!(result["reused"]["error"], "invalid_grant", "{result}");
    }
    assert_no_server_panics();
    app.server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_signs_a_device_in_with_a_code_a_person_enters_at_the_device_page() {
    if !node_clients_available() {
        return;
    }
    let app = app_at_its_issuer().await;
    let alice = app.create_user("alice", Role::User).await;
    app.login_as(&alice).await;
    let device = crate::oidc::register(&app, |form| {
        form.name = "Terminal".into();
        form.public = true;
    })
    .await;
    for decision in ["allow", "deny"] {
        let (mut child, _stdin, mut lines) = start_relying_party(&app, &device, "device");
        let started: Value = serde_json::from_str(&lines.recv().await.expect("the device answer")).unwrap();
        let complete = started["device"]["verification_uri_complete"].as_str().unwrap_or_else(|| panic!("{started}"));
        assert!(complete.starts_with(&format!("{}/device?user_code=", app.issuer)), "{complete}");
        // The person follows the link on their phone (signed in), checks the app and decides.
        let page = app.client.get(complete).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Sign in Terminal on your device?"), "{page}");
        let user_code = started["device"]["user_code"].as_str().unwrap();
        let csrf = hidden_field(&page, "csrf_token").unwrap();
        let decided = app
            .post_form("/device/confirm", &[("csrf_token", &csrf), ("user_code", user_code), ("decision", decision)])
            .await;
        assert_eq!(decided.status(), 200);
        let report: Value = serde_json::from_str(&lines.recv().await.expect("the device's report")).unwrap();
        assert!(child.wait().unwrap().success());
        if decision == "allow" {
            assert!(report.get("failed").is_none(), "openid-client refused something: {report}");
            assert_eq!(report["claims"]["sub"], alice.id.to_string());
            assert_eq!(report["claims"]["aud"], device.client_id.as_str());
            assert_eq!(report["userinfo"]["preferred_username"], "alice");
        } else {
            assert_eq!(report["failed"]["error"], "access_denied", "{report}");
        }
    }
    assert_no_server_panics();
    app.server.stop(true).await;
}

async fn the_mcp_sdk_registers_and_signs_in_to_its_server(backend: Backend) {
    if !node_clients_available() {
        return;
    }
    let app = app_at_its_issuer_with(backend, |settings| {
        settings.dynamic_registration = portcullis::config::DynamicRegistration::Token;
    })
    .await;
    let alice = app.create_user("alice", Role::User).await;
    app.login_as(&alice).await;
    let out = crate::cli::portcullis(&app, &["client", "registration-token", "--json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"].as_str().unwrap().to_owned();
    let mut child = Command::new("node")
        .args([MCP, &app.issuer, &token, CALLBACK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let (lines_out, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_out.send(line).is_err() {
                break;
            }
        }
    });
    let started: Value = serde_json::from_str(&lines.recv().await.expect("the authorization URL")).unwrap();
    let authorize = started["authorize_url"].as_str().unwrap_or_else(|| panic!("{started}"));
    let url = reqwest::Url::parse(authorize).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert!(authorize.starts_with(&format!("{}/oauth2/authorize?", app.issuer)), "{authorize}");
    assert_eq!(query["code_challenge_method"], "S256", "PKCE");
    assert!(query["resource"].ends_with("/mcp"), "RFC 8707: {query:?}");
    // The user allows the app (it registered itself, so it asks), and the browser lands back.
    let consent = app.client.get(authorize).send().await.unwrap();
    assert_eq!(consent.status(), 200);
    let html = consent.text().await.unwrap();
    assert!(html.contains("Sign in to MCP test assistant?"), "{html}");
    let mut fields: Vec<(String, String)> = html
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), unescape(value)))
        })
        .collect();
    // The navigation's sign-out form carries the CSRF token too: each field once.
    let mut seen = std::collections::HashSet::new();
    fields.retain(|(name, _)| seen.insert(name.clone()));
    fields.push(("decision".to_owned(), "allow".to_owned()));
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    let allowed = app.post_form("/oauth2/authorize/consent", &pairs).await;
    assert_eq!(allowed.status(), 303, "{}", allowed.text().await.unwrap());
    let landed = location(&allowed);
    assert!(landed.starts_with(CALLBACK), "{landed}");
    writeln!(stdin, "{landed}").unwrap();
    let report: Value = serde_json::from_str(&lines.recv().await.expect("the MCP client's report")).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(report.get("failed").is_none(), "the MCP SDK refused something: {report}");
    assert_eq!(report["whoami"]["sub"], alice.id.to_string());
    assert!(report["whoami"]["aud"].as_str().unwrap().ends_with("/mcp"), "the token is for the MCP server: {report}");
    assert_eq!(report["whoami"]["client_id"], started["client_id"]);
    assert_eq!(report["has_refresh_token"], true);
    assert!(app.audit_actions().await.contains(&"app.registered".to_owned()));
    assert_no_server_panics();
    app.server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_sdk_registers_and_signs_in_to_its_server_sqlite() {
    the_mcp_sdk_registers_and_signs_in_to_its_server(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn the_mcp_sdk_registers_and_signs_in_to_its_server_postgres() {
    if postgres_available() {
        the_mcp_sdk_registers_and_signs_in_to_its_server(Backend::Postgres).await;
    }
}
