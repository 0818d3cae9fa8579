//! Devices without a browser (RFC 8628): a device asks for a code, a signed-in person enters
//! it at `/device` and allows the app by name, the device polls and gets tokens that end with
//! that person's session. Wrong codes are throttled, fast polling slows down, codes expire,
//! a denial is told, and a code works once.
use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;
use crate::oidc::{App, register};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn start(app: &TestApp, client: &App) -> Value {
    let response = app
        .client
        .post(app.url("/oauth2/device_authorization"))
        .form(&[("client_id", client.client_id.as_str()), ("scope", "openid profile")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// The device's poll: (status, body).
async fn poll(app: &TestApp, client: &App, device_code: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[("grant_type", GRANT), ("device_code", device_code), ("client_id", &client.client_id)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The device waited as long as it was told to (its last poll moved back).
async fn time_passes(app: &TestApp, seconds: i64) {
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::oauth_device_codes::dsl::*;
        diesel::update(oauth_device_codes.filter(last_polled_at.is_not_null()))
            .set(last_polled_at.eq(portcullis::db::users::now() - chrono::Duration::seconds(seconds)))
            .execute(conn)
            .unwrap();
    })
    .await;
}

async fn decide(person: &TestApp, user_code: &str, decision: &str) -> String {
    let page = person.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf_token").unwrap();
    let done = person
        .post_form("/device/confirm", &[("csrf_token", &csrf), ("user_code", user_code), ("decision", decision)])
        .await;
    assert_eq!(done.status(), 200);
    done.text().await.unwrap()
}

fn device_app(form: &mut portcullis::oauth::ClientForm) {
    form.name = "Terminal".to_owned();
    form.public = true;
}

both_backends! {
    async fn a_device_signs_in_with_a_code_the_person_enters_and_its_tokens_end_with_their_session(app: TestApp) {
        let client = register(&app, device_app).await;
        let discovery: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(discovery["device_authorization_endpoint"], format!("{}/oauth2/device_authorization", app.issuer));
        assert!(discovery["grant_types_supported"].as_array().unwrap().contains(&Value::from(GRANT)));
        let started = start(&app, &client).await;
        let user_code = started["user_code"].as_str().unwrap().to_owned();
        assert_eq!(user_code.len(), 9, "four letters, a dash, four letters: {user_code}");
        assert_eq!(started["verification_uri"], format!("{}/device", app.issuer));
        assert_eq!(started["verification_uri_complete"], format!("{}/device?user_code={user_code}", app.issuer));
        assert_eq!(started["expires_in"], 600);
        assert_eq!(started["interval"], 5);
        let device_code = started["device_code"].as_str().unwrap().to_owned();

        let (status, body) = poll(&app, &client, &device_code).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")));
        let (status, body) = poll(&app, &client, &device_code).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("slow_down")), "polled again at once");

        // Not signed in: the link leads through our sign-in and back to the code.
        let person = app.in_new_browser();
        let to_login = person.get(&format!("/device?user_code={user_code}")).await;
        assert_eq!(to_login.status(), 303);
        assert!(location(&to_login).starts_with("/login?next="), "{}", location(&to_login));
        let alice = app.create_user("alice", Role::User).await;
        person.login_as(&alice).await;
        let confirm = person.get(&format!("/device?user_code={}", user_code.to_lowercase().replace('-', ""))).await;
        let html = unescape(&confirm.text().await.unwrap());
        assert!(html.contains("Sign in Terminal on your device?") && html.contains(&user_code) && html.contains("alice"), "{html}");
        let done = decide(&person, &user_code, "allow").await;
        assert!(done.contains("Terminal is signed in on your device"), "{done}");

        time_passes(&app, 10).await;
        let (status, tokens) = poll(&app, &client, &device_code).await;
        assert_eq!(status, 200, "{tokens}");
        let claims = crate::oidc::claims(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["sub"], alice.id.to_string());
        assert!(tokens["refresh_token"].is_string());
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.get_with_bearer("/oauth2/userinfo", &access).await.status(), 200);
        time_passes(&app, 10).await;
        let (status, again) = poll(&app, &client, &device_code).await;
        assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "a code becomes tokens once");
        // The person's sign-out ends the device's tokens too.
        let csrf = person.session_csrf_token().await;
        assert_eq!(person.post_form("/logout", &[("csrf_token", &csrf)]).await.status(), 303);
        let ended = within(std::time::Duration::from_secs(3), || async {
            app.get_with_bearer("/oauth2/userinfo", &access).await.status() == 401
        })
        .await;
        assert!(ended.is_some(), "the device's access token is refused after the sign-out");
    }

    async fn wrong_codes_are_throttled_and_a_denied_or_expired_code_is_told_to_the_device(app: TestApp) {
        let client = register(&app, device_app).await;
        let other = register(&app, |form| { form.name = "Other".to_owned(); form.public = true; }).await;
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let denied = start(&app, &client).await;
        let expired = start(&app, &client).await;
        let guessed = start(&app, &client).await;

        let text = decide(&app, denied["user_code"].as_str().unwrap(), "deny").await;
        assert!(text.contains("was not allowed"), "{text}");
        let (status, body) = poll(&app, &client, denied["device_code"].as_str().unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")));
        // Decided once: the code cannot be allowed afterwards.
        let again = app.get(&format!("/device?user_code={}", denied["user_code"].as_str().unwrap())).await;
        assert_eq!(again.status(), 422);

        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::oauth_device_codes::dsl::*;
            diesel::update(oauth_device_codes.filter(state.eq("pending"))).set(expires_at.eq(portcullis::db::users::now())).execute(conn).unwrap();
        }).await;
        let (status, body) = poll(&app, &client, expired["device_code"].as_str().unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("expired_token")));
        let (_, body) = poll(&app, &other, guessed["device_code"].as_str().unwrap()).await;
        assert_eq!(body["error"], "invalid_grant", "another app's device code");
        let (_, body) = poll(&app, &client, "not-a-device-code").await;
        assert_eq!(body["error"], "invalid_grant");

        // Guessing user codes: a few wrong ones, then even a right one must wait.
        let fresh = start(&app, &client).await;
        let csrf = app.session_csrf_token().await;
        let mut statuses = Vec::new();
        for guess in ["BCDF-GHJK", "BCDF-GHJL", "BCDF-GHJM", "BCDF-GHJN", "BCDF-GHJP", "BCDF-GHJQ"] {
            let answer = app.post_form("/device", &[("csrf_token", &csrf), ("user_code", guess)]).await;
            statuses.push(answer.status().as_u16());
        }
        assert!(statuses.iter().all(|status| *status == 422), "{statuses:?}");
        let right = app.post_form("/device", &[("csrf_token", &csrf), ("user_code", fresh["user_code"].as_str().unwrap())]).await;
        assert_eq!(right.status(), 422);
        assert!(right.text().await.unwrap().contains("Too many codes"), "the right code waits too once paused");
        // Junk is a clear error, never a 500.
        for junk in ["", "x", &"B".repeat(5000), "BCDF\0GHJK", "ＢCDF-GHJK"] {
            let answer = app.post_form("/device", &[("csrf_token", &csrf), ("user_code", junk)]).await;
            assert!(matches!(answer.status().as_u16(), 400 | 422), "{junk:?}: {}", answer.status());
        }
    }

    async fn a_device_of_an_app_the_person_may_not_use_is_refused(app: TestApp) {
        let client = register(&app, |form| { device_app(form); form.allowed_roles = vec!["admin".to_owned()]; }).await;
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let started = start(&app, &client).await;

        let text = decide(&app, started["user_code"].as_str().unwrap(), "allow").await;

        assert!(text.contains("You may not use Terminal"), "{text}");
        time_passes(&app, 10).await;
        let (_, body) = poll(&app, &client, started["device_code"].as_str().unwrap()).await;
        assert_eq!(body["error"], "access_denied");
    }
}

fn default_policy(settings: &mut portcullis::config::Settings) {
    settings.mfa_required = portcullis::config::MfaPolicy::default();
}

both_backends_with! { default_policy;
    async fn under_the_default_policy_an_administrator_takes_the_second_step_before_allowing_a_device(app: TestApp) {
        let client = register(&app, device_app).await;
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let enrolled = crate::second_factor::enrol(&app).await;
        let person = app.in_new_browser();
        let started = start(&app, &client).await;
        let user_code = started["user_code"].as_str().unwrap();

        let to_login = person.get(&format!("/device?user_code={user_code}")).await;
        let next = location(&to_login);
        person.login_as(&admin).await;
        let step = crate::second_factor::second_step(&person, "totp", &enrolled.app.next_code()).await;
        assert_eq!(step.status(), 303);
        assert!(next.starts_with("/login?next="), "{next}");

        let text = decide(&person, user_code, "allow").await;
        assert!(text.contains("Terminal is signed in on your device"), "{text}");
        time_passes(&app, 10).await;
        let (status, tokens) = poll(&app, &client, started["device_code"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{tokens}");
        let claims = crate::oidc::claims(tokens["id_token"].as_str().unwrap());
        assert!(claims["amr"].as_array().unwrap().iter().any(|method| method == "otp"), "{claims}");
    }
}
