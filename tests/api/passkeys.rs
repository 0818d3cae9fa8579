//! Passkeys over HTTP with a software authenticator (`webauthn-authenticator-rs`'s soft
//! passkey, a real WebAuthn client and authenticator in memory): registration, password-free
//! sign-in, the second step, and every way a ceremony can be wrong.
//!
//! The soft passkey cannot keep discoverable (resident) credentials, so for password-free
//! sign-in the test does what a phone's passkey would: it names the credential it holds and
//! returns the account's user handle with the signed assertion.
use portcullis::config::{MfaPolicy, Settings};
use portcullis::domain::Role;
use reqwest::Response;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{
    Base64UrlSafeData, CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse, Url, Uuid,
};

use crate::helpers::*;

/// WebAuthn clients accept plain http only on localhost: these servers are reached as that.
const ORIGIN: &str = "http://localhost";
/// Another site, whose pages a phishing attempt would run on.
const ELSEWHERE: &str = "https://evil.localhost";

fn on_localhost(settings: &mut Settings) {
    settings.public_url = portcullis::config::PublicUrl::parse(ORIGIN).unwrap();
}

fn on_localhost_requiring_admins_second_factor(settings: &mut Settings) {
    on_localhost(settings);
    settings.mfa_required = MfaPolicy::Admins;
}

/// A passkey on a device: it verifies its user (PIN or biometrics) unless told it cannot.
fn device(verifies_user: bool) -> WebauthnAuthenticator<SoftPasskey> {
    WebauthnAuthenticator::new(SoftPasskey::new(verifies_user))
}

async fn security_csrf(app: &TestApp) -> String {
    let page = app.get("/account/security").await.text().await.unwrap();
    hidden_field(&page, "csrf_token").expect("the Security page has forms")
}

/// Registration options, as the page's script asks for them.
async fn registration_options(app: &TestApp, csrf: &str) -> (String, CreationChallengeResponse) {
    let response = app.post_json("/account/security/passkeys/options", &json!({"csrf_token": csrf})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let mut options: CreationChallengeResponse = serde_json::from_value(body["options"].clone()).unwrap();
    // The soft passkey cannot keep a discoverable credential; a real one would.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.require_resident_key = false;
        selection.resident_key = None;
    }
    (body["token"].as_str().unwrap().to_owned(), options)
}

async fn add_passkey_from(
    app: &TestApp,
    device: &mut WebauthnAuthenticator<SoftPasskey>,
    name: &str,
    origin: &str,
) -> Response {
    let csrf = security_csrf(app).await;
    let (token, options) = registration_options(app, &csrf).await;
    let credential = device.do_registration(Url::parse(origin).unwrap(), options).expect("the device registers");
    app.post_json(
        "/account/security/passkeys",
        &json!({"csrf_token": csrf, "token": token, "name": name, "credential": credential}),
    )
    .await
}

async fn add_passkey(app: &TestApp, device: &mut WebauthnAuthenticator<SoftPasskey>, name: &str) {
    let response = add_passkey_from(app, device, name, ORIGIN).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// The stored credential id and user handle of the user's newest passkey.
async fn stored_passkey(app: &TestApp, owner: i64) -> (String, String) {
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::passkeys::dsl::*;
        passkeys
            .filter(user_id.eq(owner))
            .order(id.desc())
            .select((credential_id, user_handle))
            .first::<(String, String)>(conn)
            .unwrap()
    })
    .await
}

/// The device answers a password-free sign-in's options with the passkey it holds for this
/// site (`credential_id`), returning the account's handle as a discoverable passkey does.
fn answer_discoverably(
    device: &mut WebauthnAuthenticator<SoftPasskey>,
    options: Value,
    credential_id: &str,
    handle: &str,
    origin: &str,
) -> PublicKeyCredential {
    let mut options = options;
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": credential_id}]);
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let mut credential = device.do_authentication(Url::parse(origin).unwrap(), options).expect("the device signs");
    credential.response.user_handle =
        Some(Base64UrlSafeData::from(Uuid::parse_str(handle).unwrap().as_bytes().to_vec()));
    credential
}

/// `/login/passkey/options` from the login form of this browser: (csrf, token, options).
async fn sign_in_options(app: &TestApp) -> (String, String, Value) {
    let csrf = app.login_form_token().await;
    let response = app.post_json("/login/passkey/options", &json!({"csrf_token": csrf})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (csrf, body["token"].as_str().unwrap().to_owned(), body["options"].clone())
}

async fn sign_in_with(
    app: &TestApp,
    csrf: &str,
    token: &str,
    credential: &PublicKeyCredential,
    next: &str,
) -> Response {
    app.post_json(
        "/login/passkey",
        &json!({"csrf_token": csrf, "token": token, "credential": credential, "next": next}),
    )
    .await
}

async fn sign_out(app: &TestApp) {
    let csrf = app.session_csrf_token().await;
    assert_eq!(app.post_form("/logout", &[("csrf_token", &csrf)]).await.status(), 303);
}

async fn audit(app: &TestApp) -> Vec<String> {
    app.with_conn(|conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::audit_events::dsl::*;
        audit_events
            .order(id)
            .select((action, details))
            .load::<(String, String)>(conn)
            .unwrap()
            .into_iter()
            .map(|(a, d)| format!("{a}: {d}"))
            .collect()
    })
    .await
}

both_backends_with! {
    on_localhost;

    async fn a_user_adds_a_passkey_and_signs_in_with_it_without_a_password(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let mut laptop = device(true);
        let first = add_passkey_from(&app, &mut laptop, "Laptop", ORIGIN).await;
        assert_eq!(first.status(), 200);
        let answer: Value = first.json().await.unwrap();
        assert_eq!(answer["recovery_codes"].as_array().map(Vec::len), Some(10), "a first factor brings recovery codes");
        let (credential_id, handle) = stored_passkey(&app, user.id).await;
        let second = add_passkey_from(&app, &mut device(true), "Phone", ORIGIN).await;
        assert!(second.json::<Value>().await.unwrap().get("recovery_codes").is_none(), "only once");
        let page = app.get("/account/security").await.text().await.unwrap();
        assert!(page.contains("<strong>Laptop</strong>"), "{page}");
        assert!(page.contains("10 of 10 recovery codes left"));
        assert!(page.contains("src=\"/static/passkeys.js\""));
        sign_out(&app).await;

        let started = std::time::Instant::now();
        let (csrf, token, options) = sign_in_options(&app).await;
        assert!(options["publicKey"]["challenge"].is_string());
        assert_eq!(options["publicKey"]["rpId"], "localhost");
        let credential = answer_discoverably(&mut laptop, options, &credential_id, &handle, ORIGIN);
        let response = sign_in_with(&app, &csrf, &token, &credential, "/account/sessions").await;
        let took = started.elapsed();

        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["redirect"], "/account/sessions");
        let sessions = app.get("/account/sessions").await.text().await.unwrap();
        assert!(sessions.contains("<td data-label=\"Signed in with\">passkey</td>"), "{sessions}");
        eprintln!("one passkey sign-in, end to end over HTTP: {took:?}");
        // The same answer again: the ceremony was used.
        sign_out(&app).await;
        let replayed = sign_in_with(&app, &csrf, &token, &credential, "").await;
        assert!([401, 403].contains(&replayed.status().as_u16()), "{}", replayed.status());
        let audit = audit(&app).await;
        assert!(audit.iter().any(|row| row == "passkey.add: passkey \"Laptop\""), "{audit:?}");
        assert!(audit.iter().any(|row| row.starts_with("login.ok: via form (passkey)")), "{audit:?}");
    }

    async fn a_passkey_serves_as_the_second_step_after_the_password(app: TestApp) {
        let user = app.create_user("bob", Role::User).await;
        app.login_as(&user).await;
        let mut key = device(true);
        add_passkey(&app, &mut key, "YubiKey").await;
        sign_out(&app).await;
        // Over the API only codes complete a second step: the recovery codes the passkey came with.
        let api = app.post_json("/api/token", &json!({"username": "bob", "password": user.password})).await;
        assert_eq!(api.status(), 401);
        let body: Value = api.json().await.unwrap();
        assert_eq!(body["error"], "mfa_required");
        assert_eq!(body["methods"], json!(["recovery_code"]));

        let response = app.login_with_next(&user.username, &user.password, "/account").await;
        assert_eq!(location(&response), "/login/second-step");
        let page = app.get("/login/second-step").await.text().await.unwrap();
        assert!(page.contains("Use a passkey"));
        assert!(!page.contains("Enter the code from your authenticator app"), "no app is set up");
        let csrf = hidden_field(&page, "csrf_token").unwrap_or_else(|| {
            let start = page.find("data-csrf=\"").unwrap() + 11;
            page[start..start + page[start..].find('"').unwrap()].to_owned()
        });
        let options = app.post_json("/login/second-step/passkey/options", &json!({"csrf_token": csrf})).await;
        assert_eq!(options.status(), 200);
        let body: Value = options.json().await.unwrap();
        let request: RequestChallengeResponse = serde_json::from_value(body["options"].clone()).unwrap();
        let credential = key.do_authentication(Url::parse(ORIGIN).unwrap(), request).unwrap();

        let done = app
            .post_json("/login/second-step/passkey", &json!({"csrf_token": csrf, "token": body["token"], "credential": credential}))
            .await;

        assert_eq!(done.status(), 200);
        assert_eq!(done.json::<Value>().await.unwrap()["redirect"], "/account");
        assert_eq!(app.get("/account").await.status(), 200);
        let sessions = app.get("/account/sessions").await.text().await.unwrap();
        assert!(sessions.contains("password and passkey"), "{sessions}");
    }

    async fn wrong_or_stale_passkey_answers_are_refused_with_clear_errors(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;
        app.login_as(&user).await;

        // Made for another site address, or for another site altogether.
        let mut phishing = device(true);
        let refused = add_passkey_from(&app, &mut phishing, "Evil", ELSEWHERE).await;
        assert_eq!(refused.status(), 400);
        let message = refused.json::<Value>().await.unwrap()["message"].as_str().unwrap().to_owned();
        assert!(message.contains("another site"), "{message}");
        let csrf = security_csrf(&app).await;
        let (token, mut options) = registration_options(&app, &csrf).await;
        options.public_key.rp.id = "evil.localhost".to_owned();
        let credential = device(true).do_registration(Url::parse(ELSEWHERE).unwrap(), options).unwrap();
        let refused = app
            .post_json("/account/security/passkeys", &json!({"csrf_token": csrf, "token": token, "name": "x", "credential": credential}))
            .await;
        assert_eq!(refused.status(), 400);
        // Without user verification (a bare security key without PIN): refused.
        let (token, options) = registration_options(&app, &csrf).await;
        let mut options = serde_json::to_value(options).unwrap();
        options["publicKey"]["authenticatorSelection"]["userVerification"] = json!("discouraged");
        let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        let credential = device(false).do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
        let refused = app
            .post_json("/account/security/passkeys", &json!({"csrf_token": csrf, "token": token, "name": "Bare key", "credential": credential}))
            .await;
        assert_eq!(refused.status(), 400);
        assert!(refused.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("confirm it is you"));
        // A registration token used twice, forged, or without the page's CSRF token.
        let mut key = device(true);
        let (token, options) = registration_options(&app, &csrf).await;
        let credential = key.do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
        let body = json!({"csrf_token": csrf, "token": token, "name": "Key", "credential": credential});
        assert_eq!(app.post_json("/account/security/passkeys", &body).await.status(), 200);
        let again = app.post_json("/account/security/passkeys", &body).await;
        assert_eq!(again.status(), 400);
        assert!(again.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("expired or was already used"));
        let forged = json!({"csrf_token": csrf, "token": "x.AAAA", "name": "Key", "credential": credential});
        assert_eq!(app.post_json("/account/security/passkeys", &forged).await.status(), 400);
        let no_csrf = json!({"token": token, "name": "Key", "credential": credential});
        assert_eq!(app.post_json("/account/security/passkeys", &no_csrf).await.status(), 403);
        for bad in [json!({"csrf_token": csrf}), json!({"csrf_token": csrf, "credential": 5}), json!("x")] {
            let response = app.post_json("/account/security/passkeys", &bad).await;
            assert_eq!(response.status(), 400, "{bad}");
            assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request");
        }
        assert_eq!(app.post_raw("/account/security/passkeys", "text/plain", "hi").await.status(), 415);

        // An expired sign-in ceremony, a removed passkey, a signature counter that went back.
        let (credential_id, handle) = stored_passkey(&app, user.id).await;
        sign_out(&app).await;
        let (csrf, token, options) = sign_in_options(&app).await;
        let credential = answer_discoverably(&mut key, options.clone(), &credential_id, &handle, ELSEWHERE);
        let refused = sign_in_with(&app, &csrf, &token, &credential, "").await;
        assert_eq!(refused.status(), 401, "an assertion made for another origin");
        let (csrf, token, options) = sign_in_options(&app).await;
        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::passkeys::dsl::*;
            let stored: String = passkeys.select(passkey).first(conn).unwrap();
            let mut value: Value = serde_json::from_str(&stored).unwrap();
            value["cred"]["counter"] = json!(1_000_000);
            diesel::update(passkeys).set(passkey.eq(value.to_string())).execute(conn).unwrap();
        })
        .await;
        let credential = answer_discoverably(&mut key, options, &credential_id, &handle, ORIGIN);
        let cloned = sign_in_with(&app, &csrf, &token, &credential, "").await;
        assert_eq!(cloned.status(), 401);
        assert!(cloned.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("may have been copied"));
        assert!(audit(&app).await.iter().any(|row| row.starts_with("passkey.clone_warning: ")));

        // Another user's passkey cannot complete someone else's second step.
        let dave = app.create_user("dave", Role::User).await;
        let dave_browser = app.in_new_browser();
        dave_browser.login_as(&dave).await;
        let mut daves_key = device(true);
        add_passkey(&dave_browser, &mut daves_key, "Dave's").await;
        sign_out(&dave_browser).await;
        let (daves_id, daves_handle) = stored_passkey(&app, dave.id).await;
        // carol's password step, then dave's passkey
        let response = app.login(&user.username, &user.password).await;
        assert_eq!(location(&response), "/login/second-step");
        let page = app.get("/login/second-step").await.text().await.unwrap();
        let start = page.find("data-csrf=\"").unwrap() + 11;
        let csrf = page[start..start + page[start..].find('"').unwrap()].to_owned();
        let options = app.post_json("/login/second-step/passkey/options", &json!({"csrf_token": csrf})).await;
        let body: Value = options.json().await.unwrap();
        let credential = answer_discoverably(&mut daves_key, body["options"].clone(), &daves_id, &daves_handle, ORIGIN);
        let refused = app
            .post_json("/login/second-step/passkey", &json!({"csrf_token": csrf, "token": body["token"], "credential": credential}))
            .await;
        assert_eq!(refused.status(), 401);
        assert!(refused.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("not for this account"));
        assert_no_server_panics();
    }

    async fn passkeys_are_renamed_and_removed_and_a_removed_one_stops_working(app: TestApp) {
        let user = app.create_user("erin", Role::User).await;
        app.login_as(&user).await;
        let mut key = device(true);
        add_passkey(&app, &mut key, "Phone").await;
        let (credential_id, handle) = stored_passkey(&app, user.id).await;
        let passkey_id: i64 = app
            .with_conn(|conn| {
                use diesel::prelude::*;
                use portcullis::db::schema::passkeys::dsl::*;
                passkeys.select(id).first(conn).unwrap()
            })
            .await;
        let csrf = security_csrf(&app).await;
        let renamed = app
            .post_form(&format!("/account/security/passkeys/{passkey_id}/rename"), &[("csrf_token", &csrf), ("name", "Old phone")])
            .await;
        assert_eq!(renamed.status(), 303);
        assert!(app.get("/account/security").await.text().await.unwrap().contains("<strong>Old phone</strong>"));
        let wrong = app
            .post_form(
                &format!("/account/security/passkeys/{passkey_id}/remove"),
                &[("csrf_token", &csrf), ("remove_passkey_password", "not it")],
            )
            .await;
        assert_eq!(wrong.status(), 422);
        let removed = app
            .post_form(
                &format!("/account/security/passkeys/{passkey_id}/remove"),
                &[("csrf_token", &csrf), ("remove_passkey_password", &user.password)],
            )
            .await;
        assert_eq!(removed.status(), 303);
        sign_out(&app).await;
        let (csrf, token, options) = sign_in_options(&app).await;
        let credential = answer_discoverably(&mut key, options, &credential_id, &handle, ORIGIN);
        let refused = sign_in_with(&app, &csrf, &token, &credential, "").await;
        assert_eq!(refused.status(), 401);
        assert!(refused.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("not registered here"));
        // Without a second factor left, the password alone signs in again.
        assert_eq!(location(&app.login(&user.username, &user.password).await), "/dashboard");

        // An account holds at most 20 passkeys.
        for n in 0..20 {
            add_passkey(&app, &mut device(true), &format!("Key {n}")).await;
        }
        let csrf = security_csrf(&app).await;
        let refused = app.post_json("/account/security/passkeys/options", &json!({"csrf_token": csrf})).await;
        assert_eq!(refused.status(), 400);
        assert!(refused.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("at most 20 passkeys"));
    }
}

both_backends_with! {
    on_localhost_requiring_admins_second_factor;

    async fn a_passkey_satisfies_the_policy_and_the_last_one_cannot_be_removed(app: TestApp) {
        let admin = app.create_user("ops", Role::Admin).await;
        app.login_as(&admin).await;
        assert_eq!(location(&app.get("/admin").await), "/account/security");
        let mut key = device(true);
        add_passkey(&app, &mut key, "Security key").await;
        assert_eq!(app.get("/admin").await.status(), 200, "the passkey is the admin's second factor");
        let passkey_id: i64 = app
            .with_conn(|conn| {
                use diesel::prelude::*;
                use portcullis::db::schema::passkeys::dsl::*;
                passkeys.select(id).first(conn).unwrap()
            })
            .await;
        let csrf = security_csrf(&app).await;
        let refused = app
            .post_form(
                &format!("/account/security/passkeys/{passkey_id}/remove"),
                &[("csrf_token", &csrf), ("remove_passkey_password", &admin.password)],
            )
            .await;
        assert_eq!(refused.status(), 303);
        let page = app.get("/account/security").await.text().await.unwrap();
        assert!(page.contains("This is your last second factor"), "{page}");
        assert!(page.contains("<strong>Security key</strong>"));
        // The admin reset removes passkeys too.
        let output = crate::cli::portcullis(&app, &["user", "reset-mfa", "ops"], "");
        assert!(output.status.success());
        assert!(String::from_utf8_lossy(&output.stdout).contains("was reset"));
        let left: i64 = app
            .with_conn(|conn| {
                use diesel::prelude::*;
                portcullis::db::schema::passkeys::table.count().get_result(conn).unwrap()
            })
            .await;
        assert_eq!(left, 0);
    }
}

both_backends! {
    async fn a_script_without_a_session_gets_json_it_can_act_on(app: TestApp) {
        let response = app.post_json("/account/security/passkeys/options", &json!({"csrf_token": "x"})).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "signed_out");
        // A page's form post still goes to the login page.
        let form = app.post_form("/account/security/passkeys/1/rename", &[("name", "x")]).await;
        assert_eq!(form.status(), 303);
        assert_eq!(location(&form), "/login");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_reached_by_an_ip_address_explains_that_passkeys_need_a_domain_name() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.public_url = portcullis::config::PublicUrl::parse("http://127.0.0.1:8080").unwrap();
    })
    .await;
    let login = app.get("/login").await.text().await.unwrap();
    assert!(!login.contains("data-passkey-sign-in"), "no passkey button where passkeys cannot work");
    let csrf = hidden_field(&login, "csrf_token").unwrap();
    let refused = app.post_json("/login/passkey/options", &json!({"csrf_token": csrf})).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("domain name"));
    let user = app.create_user("ivan", Role::User).await;
    app.login_as(&user).await;
    let security = app.get("/account/security").await.text().await.unwrap();
    assert!(security.contains("Passkeys need Portcullis to be reached by a domain name"));
    assert!(!security.contains("data-passkey-register"));
    app.server.stop(true).await;
}

fn on_localhost_with_a_small_address_budget(settings: &mut Settings) {
    on_localhost(settings);
    settings.throttle.address_attempts = 3;
}

both_backends_with! { on_localhost_with_a_small_address_budget;
    async fn failed_passkey_sign_ins_are_audited_and_spend_the_clients_budget(app: TestApp) {
        let user = app.create_user("nora", Role::User).await;
        app.login_as(&user).await;
        let mut key = device(true);
        add_passkey(&app, &mut key, "Laptop").await;
        let (credential_id, handle) = stored_passkey(&app, user.id).await;
        sign_out(&app).await;

        // Assertions made on another site (a phishing page relaying them): each refused.
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let (csrf, token, options) = sign_in_options(&app).await;
            let credential = answer_discoverably(&mut key, options, &credential_id, &handle, ELSEWHERE);
            statuses.push(sign_in_with(&app, &csrf, &token, &credential, "").await.status().as_u16());
        }

        assert_eq!(statuses, [401, 401, 401, 429, 429], "three failures spend the budget of three");
        let failures = audit(&app).await.into_iter().filter(|row| row.starts_with("login.passkey_failed")).count();
        assert_eq!(failures, 3, "each failure that was tried is audited");
        // The budget stops the right passkey too, until the pause is over: it is the client's.
        let (csrf, token, options) = sign_in_options(&app).await;
        let credential = answer_discoverably(&mut key, options, &credential_id, &handle, ORIGIN);
        assert_eq!(sign_in_with(&app, &csrf, &token, &credential, "").await.status(), 429);
    }
}
