//! Real relying parties against the provider: npm's `openid-client` (the certified library's
//! own checks of discovery, `iss` in the answer, state, nonce, PKCE and the ID token's claims)
//! runs the code flow, userinfo, refresh and revocation, for a confidential and a public app.
//! Apache's `mod_auth_openidc` is in `apache_oidc.rs`.
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;

const RP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc-clients/rp.mjs");
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
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let public_url = issuer.clone();
    let mut app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.bind = format!("127.0.0.1:{port}").parse().unwrap();
        settings.public_url = portcullis::config::PublicUrl::parse(&public_url).unwrap();
    })
    .await;
    app.issuer = issuer;
    app
}

/// Runs the relying party for `client`, signing in with the app's browser (already signed in).
async fn run_relying_party(app: &TestApp, client: &crate::oidc::App) -> Value {
    let mut child = Command::new("node")
        .arg(RP)
        .args([&app.issuer, &client.client_id, client.secret.as_deref().unwrap_or("-"), CALLBACK])
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
async fn openid_client_signs_in_reads_userinfo_refreshes_and_revokes_as_a_confidential_and_a_public_app() {
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
    for client in [&confidential, &public] {
        let result = run_relying_party(&app, client).await;
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
