//! Two-step sign-in: a user sets up an authenticator app from the Security page, then signs in
//! with a code after the password (or a recovery code); the API asks for the same second step;
//! the policy makes administrators set one up; an administrator (or the command line) resets it
//! for someone who lost their phone. Codes are computed here with the RFC 6238 arithmetic of
//! `totp-rs`, independently of the server.
use portcullis::config::{MfaPolicy, Settings};
use portcullis::domain::Role;
use reqwest::Response;
use serde_json::{Value, json};

use crate::cli::{portcullis, portcullis_with_env};
use crate::helpers::*;

/// The real default: administrators must have a second factor.
fn admins_need_a_second_factor(settings: &mut Settings) {
    settings.mfa_required = MfaPolicy::Admins;
}

fn now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap()
}

/// An authenticator app, as a phone would hold it after scanning the QR code.
pub(crate) struct Authenticator {
    secret: Vec<u8>,
    /// The step whose code turned two-step sign-in on (used up).
    enrolled_step: u64,
}

impl Authenticator {
    fn code_for_step(&self, step: u64) -> String {
        totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, self.secret.clone()).generate(step * 30)
    }

    /// A code the server has not seen yet: the step after the one used to enrol (accepted
    /// while the clock is within one step of it).
    pub(crate) fn next_code(&self) -> String {
        self.code_for_step(self.enrolled_step + 1)
    }
}

pub(crate) struct Enrolled {
    pub(crate) app: Authenticator,
    recovery_codes: Vec<String>,
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    Some(&html[from..from + html[from..].find(end)?])
}

fn recovery_codes_in(html: &str) -> Vec<String> {
    let list = between(html, "id=\"recovery-codes\">", "</ol>").expect("the page lists the recovery codes");
    list.split("<code>").skip(1).map(|part| part.split("</code>").next().unwrap().to_owned()).collect()
}

/// Sets up an authenticator app for the signed-in user of this browser, as a person would:
/// the Security page, "Set up", the key read off the page, the app's current code.
pub(crate) async fn enrol(app: &TestApp) -> Enrolled {
    let page = app.get("/account/security").await.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf_token").expect("the Security page has forms");
    let started = app.post_form("/account/security/authenticator", &[("csrf_token", &csrf)]).await;
    assert_eq!(started.status(), 303);
    assert_eq!(location(&started), "/account/security/authenticator");
    let page = app.get("/account/security/authenticator").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg class=\"qr\""), "a QR code drawn inline");
    let key = between(&html, "id=\"totp-key\">", "</code>").expect("the key as text").replace(' ', "");
    let secret = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &key).expect("a base32 key");
    assert_eq!(secret.len(), 20, "160-bit keys");
    let step = now() / 30;
    let authenticator = Authenticator { secret, enrolled_step: step };
    let confirmed = app
        .post_form(
            "/account/security/authenticator/confirm",
            &[("csrf_token", &csrf), ("code", &authenticator.code_for_step(step))],
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    let html = confirmed.text().await.unwrap();
    assert!(html.contains("Two-step sign-in is on"), "{html}");
    let recovery_codes = recovery_codes_in(&html);
    assert_eq!(recovery_codes.len(), 10);
    assert!(html.contains("download=\"portcullis-recovery-codes.txt\""));
    Enrolled { app: authenticator, recovery_codes }
}

async fn sign_out(app: &TestApp) {
    let csrf = app.session_csrf_token().await;
    assert_eq!(app.post_form("/logout", &[("csrf_token", &csrf)]).await.status(), 303);
}

/// The second step's form, posted from this browser.
pub(crate) async fn second_step(app: &TestApp, method: &str, code: &str) -> Response {
    let csrf = match hidden_field(&app.get("/login/second-step").await.text().await.unwrap(), "csrf_token") {
        Some(token) => token,
        // An ended sign-in's page has no form; the login form's token is the same kind.
        None => app.login_form_token().await,
    };
    app.post_form("/login/second-step", &[("csrf_token", &csrf), ("method", method), ("code", code)]).await
}

async fn password_step(app: &TestApp, user: &TestUser) {
    let response = app.login(&user.username, &user.password).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login/second-step");
    let cookies = set_cookies(&response);
    assert!(
        !cookies.iter().any(|cookie| cookie.starts_with("portcullis=") || cookie.starts_with("portcullis-refresh=")),
        "no session before the second step: {cookies:?}"
    );
}

async fn signed_in(app: &TestApp) -> bool {
    app.get("/dashboard").await.status() == 200
}

async fn audit_details(app: &TestApp) -> Vec<String> {
    app.with_conn(|conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::audit_events;
        audit_events::table
            .order(audit_events::id)
            .select((audit_events::action, audit_events::details))
            .load::<(String, String)>(conn)
            .unwrap()
            .into_iter()
            .map(|(action, details)| format!("{action}: {details}"))
            .collect()
    })
    .await
}

both_backends! {
    async fn a_pending_sign_in_copied_to_another_browser_completes_nothing(app: TestApp) {
        let user = app.create_user("vera", Role::User).await;
        app.login_as(&user).await;
        let enrolled = enrol(&app).await;
        sign_out(&app).await;
        password_step(&app, &user).await;
        let pending = app.cookie("portcullis-second-step").expect("a pending sign-in");

        // Another browser, with the stolen cookie but its own login form.
        let thief = app.in_new_browser();
        thief.login_form_token().await;
        thief.set_cookie("portcullis-second-step", &pending);
        let stolen = second_step(&thief, "totp", &enrolled.app.next_code()).await;
        assert_ne!(stolen.status(), 303, "no session from a copied pending sign-in");
        assert!(!signed_in(&thief).await);

        // The browser that typed the password completes it.
        let done = second_step(&app, "totp", &enrolled.app.next_code()).await;
        assert_eq!(location(&done), "/dashboard");
    }

    async fn turning_on_two_step_sign_in_ends_the_sessions_opened_with_the_password_alone(app: TestApp) {
        let user = app.create_user("paula", Role::User).await;
        let laptop = app.in_new_browser();
        laptop.login_as(&user).await;
        app.login_as(&user).await;
        assert!(signed_in(&laptop).await);

        enrol(&app).await;

        assert!(signed_in(&app).await, "the browser that turned it on stays signed in");
        laptop.expire_access_cookie().await;
        assert!(!signed_in(&laptop).await, "a password-only session elsewhere is over, renewal included");
        let details = audit_details(&app).await;
        assert!(details.iter().any(|line| line.starts_with("mfa.enable:") && line.contains("other sessions (password only): 1 session ended")), "{details:?}");
    }

    async fn a_user_turns_on_an_authenticator_app_and_signs_in_with_its_code(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let security = app.get("/account/security").await.text().await.unwrap();
        assert!(security.contains("Set up an authenticator app"));
        let enrolled = enrol(&app).await;
        let security = app.get("/account/security").await.text().await.unwrap();
        assert!(security.contains("10 of 10 recovery codes left"), "{security}");
        assert!(!security.contains("totp-key"), "the key is never shown again");
        sign_out(&app).await;

        let response = app.login_with_next(&user.username, &user.password, "/account/sessions").await;
        assert_eq!(location(&response), "/login/second-step");
        assert!(!signed_in(&app).await, "the password alone opens nothing");
        let page = app.get("/login/second-step").await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("Enter the code from your authenticator app"));

        let done = second_step(&app, "totp", &enrolled.app.next_code()).await;

        assert_eq!(done.status(), 303);
        assert_eq!(location(&done), "/account/sessions", "`next` survives both steps");
        let sessions = app.get("/account/sessions").await.text().await.unwrap();
        assert!(sessions.contains("password and one-time code"), "{sessions}");
        // The secret is in no audit row.
        let key = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &enrolled.app.secret);
        let audit = audit_details(&app).await;
        assert!(audit.iter().all(|row| !row.contains(&key)));
        assert!(audit.iter().any(|row| row.starts_with("mfa.enable: ")), "{audit:?}");
        assert!(audit.iter().any(|row| row.starts_with("login.ok: via form (password and one-time code)")), "{audit:?}");
    }

    async fn a_code_works_once_and_older_codes_never(app: TestApp) {
        let user = app.create_user("bob", Role::User).await;
        app.login_as(&user).await;
        let enrolled = enrol(&app).await;
        sign_out(&app).await;
        password_step(&app, &user).await;

        let reused = second_step(&app, "totp", &enrolled.app.code_for_step(enrolled.app.enrolled_step)).await;
        assert_eq!(reused.status(), 401);
        assert!(reused.text().await.unwrap().contains("That code was already used"));
        let stale = second_step(&app, "totp", &enrolled.app.code_for_step(enrolled.app.enrolled_step - 2)).await;
        assert_eq!(stale.status(), 401);
        assert!(stale.text().await.unwrap().contains("That code is not right"));
        assert_eq!(second_step(&app, "totp", &enrolled.app.next_code()).await.status(), 303);

        sign_out(&app).await;
        password_step(&app, &user).await;
        let again = second_step(&app, "totp", &enrolled.app.next_code()).await;
        assert_eq!(again.status(), 401, "the same code a second time");
        assert!(again.text().await.unwrap().contains("That code was already used"));
        let audit = audit_details(&app).await;
        assert!(audit.iter().any(|row| row.starts_with("login.second_step_failed: via form; a code already used")));
    }

    async fn each_recovery_code_works_once_and_a_new_set_voids_the_old(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;
        app.login_as(&user).await;
        let enrolled = enrol(&app).await;
        sign_out(&app).await;

        password_step(&app, &user).await;
        let page = app.get("/login/second-step?method=recovery_code").await.text().await.unwrap();
        assert!(page.contains("Enter one of your recovery codes"));
        let typed = enrolled.recovery_codes[0].to_uppercase().replace('-', " ");
        let done = second_step(&app, "recovery_code", &typed).await;
        assert_eq!(done.status(), 303);
        let dashboard = app.get("/dashboard").await.text().await.unwrap();
        assert!(dashboard.contains("9 recovery codes are left"), "{dashboard}");
        assert!(app.get("/account/security").await.text().await.unwrap().contains("9 of 10 recovery codes left"));
        sign_out(&app).await;

        password_step(&app, &user).await;
        let reused = second_step(&app, "recovery_code", &enrolled.recovery_codes[0]).await;
        assert_eq!(reused.status(), 401);
        assert!(reused.text().await.unwrap().contains("That recovery code is not right, or it was used before"));
        assert_eq!(second_step(&app, "recovery_code", &enrolled.recovery_codes[1]).await.status(), 303);

        // A new set, with the password: the old codes stop working.
        let csrf = app.session_csrf_token().await;
        let wrong = app
            .post_form("/account/security/recovery-codes", &[("csrf_token", &csrf), ("codes_password", "wrong password")])
            .await;
        assert_eq!(wrong.status(), 422);
        let renewed = app
            .post_form("/account/security/recovery-codes", &[("csrf_token", &csrf), ("codes_password", &user.password)])
            .await;
        assert_eq!(renewed.status(), 200);
        let new_codes = recovery_codes_in(&renewed.text().await.unwrap());
        assert_eq!(new_codes.len(), 10);
        sign_out(&app).await;
        password_step(&app, &user).await;
        assert_eq!(second_step(&app, "recovery_code", &enrolled.recovery_codes[2]).await.status(), 401);
        assert_eq!(second_step(&app, "recovery_code", &new_codes[0]).await.status(), 303);
        let audit = audit_details(&app).await;
        assert!(audit.iter().any(|row| row == "mfa.recovery_code_used: via form; 9 recovery code(s) left"), "{audit:?}");
        assert!(audit.iter().any(|row| row.starts_with("mfa.recovery_codes_regenerated: ")));
    }

    async fn the_pending_step_opens_nothing_expires_and_cannot_be_replayed(app: TestApp) {
        let user = app.create_user("dave", Role::User).await;
        app.login_as(&user).await;
        let enrolled = enrol(&app).await;
        sign_out(&app).await;
        password_step(&app, &user).await;
        let pending = app.cookie("portcullis-second-step").expect("the pending sign-in's cookie");
        for path in ["/dashboard", "/account", "/account/security"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), 303, "{path}");
            assert!(location(&response).starts_with("/login"), "{path}");
        }
        // Another browser holding nothing cannot continue it.
        let stranger = app.browser();
        let page = stranger.get("/login/second-step").await;
        assert_eq!(page.status(), 401);
        assert!(page.text().await.unwrap().contains("This sign-in has expired"));

        assert_eq!(second_step(&app, "totp", &enrolled.app.next_code()).await.status(), 303);
        // The cookie of a completed sign-in, presented again (copied before): nothing.
        let (replayer, _) = app.other_browser();
        let replay = replayer
            .get(app.url("/login/second-step"))
            .header("cookie", format!("portcullis-second-step={pending}"))
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 401);

        // A new password attempt starts over: the earlier pending sign-in is void.
        sign_out(&app).await;
        password_step(&app, &user).await;
        let first = app.cookie("portcullis-second-step").unwrap();
        password_step(&app, &user).await;
        let count = app
            .with_conn(|conn| {
                use diesel::prelude::*;
                portcullis::db::schema::sign_in_challenges::table.count().get_result::<i64>(conn).unwrap()
            })
            .await;
        assert_eq!(count, 1, "the first pending sign-in was dropped");
        assert_ne!(first, app.cookie("portcullis-second-step").unwrap());

        // Five minutes pass.
        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::sign_in_challenges::dsl::*;
            diesel::update(sign_in_challenges)
                .set(expires_at.eq(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1)))
                .execute(conn)
                .unwrap();
        })
        .await;
        let late = app.get("/login/second-step").await;
        assert_eq!(late.status(), 401);
        assert!(late.text().await.unwrap().contains("within 5 minutes"));
        assert!(!signed_in(&app).await);
    }

    async fn wrong_codes_are_throttled_like_wrong_passwords(app: TestApp) {
        let user = app.create_user("erin", Role::User).await;
        app.login_as(&user).await;
        let enrolled = enrol(&app).await;
        sign_out(&app).await;
        // A stranger's browser (no device credential) who knows the password.
        let thief = app.in_new_browser();
        password_step(&thief, &user).await;
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(second_step(&thief, "totp", "000000").await.status().as_u16());
        }
        assert!(statuses.contains(&429), "the account's five tries ran out: {statuses:?}");
        let paused = second_step(&thief, "totp", &enrolled.app.next_code()).await;
        assert!([401, 429].contains(&paused.status().as_u16()), "not signed in: {}", paused.status());
        assert!(!signed_in(&thief).await);
        // Passwords are paused too: the same counters.
        let csrf = thief.login_form_token().await;
        let again = thief
            .post_form("/login", &[("username", &user.username), ("password", &user.password), ("csrf_token", &csrf)])
            .await;
        assert_eq!(again.status(), 429);
        assert!(again.headers().contains_key("retry-after"));
        let audit = audit_details(&app).await;
        assert!(audit.iter().filter(|row| row.starts_with("login.second_step_failed: ")).count() >= 3, "{audit:?}");
    }

    async fn the_api_asks_for_a_second_step_and_completes_it(app: TestApp) {
        let user = app.create_user("fay", Role::User).await;
        app.login_as(&user).await;
        let enrolled = enrol(&app).await;

        let first = app.post_json("/api/token", &json!({"username": "fay", "password": user.password})).await;
        assert_eq!(first.status(), 401);
        let body: Value = first.json().await.unwrap();
        assert_eq!(body["error"], "mfa_required");
        assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
        assert!(body.get("token").is_none());
        let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();

        for (bad, status, error) in [
            (json!({"mfa_token": mfa_token}), 400, "invalid_request"),
            (json!({"code": "123456"}), 400, "invalid_request"),
            (json!({"mfa_token": mfa_token, "code": "abcdef"}), 400, "invalid_request"),
            (json!({"mfa_token": mfa_token, "code": "1234567"}), 400, "invalid_request"),
            (json!({"mfa_token": mfa_token, "code": "9".repeat(10_000)}), 400, "invalid_request"),
            (json!({"mfa_token": mfa_token, "code": 123456}), 400, "invalid_request"),
            (json!({"mfa_token": "forged", "code": "123456"}), 401, "invalid_mfa_token"),
            (json!({"mfa_token": mfa_token, "code": "123456", "extra": 1}), 400, "invalid_request"),
        ] {
            let response = app.post_json("/api/token/mfa", &bad).await;
            assert_eq!(response.status(), status, "{bad}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], error, "{bad}");
        }
        let reused = app
            .post_json("/api/token/mfa", &json!({"mfa_token": mfa_token, "code": enrolled.app.code_for_step(enrolled.app.enrolled_step)}))
            .await;
        assert_eq!(reused.status(), 401);
        assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_code");

        let done = app.post_json("/api/token/mfa", &json!({"mfa_token": mfa_token, "code": enrolled.app.next_code()})).await;
        assert_eq!(done.status(), 200);
        let tokens: Value = done.json().await.unwrap();
        let me: Value = app.get_with_bearer("/api/me", tokens["token"].as_str().unwrap()).await.json().await.unwrap();
        assert_eq!(me["username"], "fay");
        assert_eq!(me["amr"], json!(["pwd", "otp", "mfa"]));
        let replayed = app.post_json("/api/token/mfa", &json!({"mfa_token": mfa_token, "code": enrolled.recovery_codes[0]})).await;
        assert_eq!(replayed.status(), 401, "an mfa_token works once");
        assert_eq!(replayed.json::<Value>().await.unwrap()["error"], "invalid_mfa_token");

        // A password-only user's token says so.
        let plain = app.create_user("gus", Role::User).await;
        let token = app.api_token(&plain).await;
        let me: Value = app.get_with_bearer("/api/me", &token).await.json().await.unwrap();
        assert_eq!(me["amr"], json!(["pwd"]));
    }

    async fn bad_codes_on_the_form_get_a_clear_error_never_a_500(app: TestApp) {
        let user = app.create_user("hal", Role::User).await;
        app.login_as(&user).await;
        enrol(&app).await;
        sign_out(&app).await;
        password_step(&app, &user).await;
        let long = "7".repeat(10_000);
        for (method, code, message) in [
            ("totp", "abcdef", "Enter the 6-digit code"),
            ("totp", "1234567", "Enter the 6-digit code"),
            ("totp", "", "Enter the 6-digit code"),
            ("totp", long.as_str(), "Enter the 6-digit code"),
            ("recovery_code", "not-a-code", "Enter one of your recovery codes"),
        ] {
            let response = second_step(&app, method, code).await;
            assert_eq!(response.status(), 400, "{method} {}", &code[..code.len().min(10)]);
            assert!(response.text().await.unwrap().contains(message));
        }
        assert_no_server_panics();
    }
}

both_backends_with! {
    admins_need_a_second_factor;

    async fn a_new_admin_is_led_to_set_up_a_second_factor_and_reaches_nothing_else(app: TestApp) {
        let admin = app.create_user("ops", Role::Admin).await;
        app.login_as(&admin).await;
        for path in ["/dashboard", "/admin", "/admin/users", "/account", "/account/sessions"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), 303, "{path}");
            assert_eq!(location(&response), "/account/security", "{path}");
        }
        let security = app.get("/account/security").await.text().await.unwrap();
        assert!(security.contains("Set up two-step sign-in to continue"));
        let api = app.post_json("/api/token", &json!({"username": "ops", "password": admin.password})).await;
        assert_eq!(api.status(), 403);
        assert_eq!(api.json::<Value>().await.unwrap()["error"], "mfa_enrolment_required");

        let enrolled = enrol(&app).await;

        assert_eq!(app.get("/admin").await.status(), 200, "set up: the admin pages open at once");
        // The policy covers admins: the last factor cannot be removed.
        let csrf = app.session_csrf_token().await;
        let removal = app
            .post_form("/account/security/authenticator/remove", &[("csrf_token", &csrf), ("remove_password", &admin.password)])
            .await;
        assert_eq!(removal.status(), 303);
        let after = app.get("/account/security").await.text().await.unwrap();
        assert!(after.contains("cannot be turned off"), "{after}");
        assert!(after.contains("tag--on"));

        // Promoting a user: their sessions end, and at their next sign-in they must set one up.
        let alice = app.create_user("alice", Role::User).await;
        let alice_browser = app.browser();
        assert_eq!(alice_browser.login("alice", &alice.password).await.status(), 303);
        assert_eq!(alice_browser.get("/dashboard").await.status(), 200, "users are not covered");
        let form = app.get(&format!("/admin/users/{}", alice.id)).await.text().await.unwrap();
        let csrf = hidden_field(&form, "csrf_token").unwrap();
        let promoted = app
            .post_form(
                &format!("/admin/users/{}", alice.id),
                &[("csrf_token", &csrf), ("username", "alice"), ("email", &alice.email), ("display_name", "alice"), ("role", "admin")],
            )
            .await;
        assert_eq!(promoted.status(), 303);
        let next_view = alice_browser.get("/dashboard").await;
        assert_eq!(next_view.status(), 303);
        assert!(location(&next_view).starts_with("/login"));
        assert_eq!(alice_browser.login("alice", &alice.password).await.status(), 303);
        let led = alice_browser.get("/admin").await;
        assert_eq!(location(&led), "/account/security");

        // The users list shows who has a second factor, and filters by it.
        let list = app.get("/admin/users?mfa=on").await.text().await.unwrap();
        assert!(list.contains(">ops</a>") && !list.contains(">alice</a>"), "{list}");
        let list = app.get("/admin/users?mfa=off").await.text().await.unwrap();
        assert!(!list.contains(">ops</a>") && list.contains(">alice</a>"));
        drop(enrolled);
    }

    async fn an_admin_or_the_command_line_resets_a_lost_second_factor(app: TestApp) {
        let admin = app.create_user("ops", Role::Admin).await;
        app.login_as(&admin).await;
        let admin_factor = enrol(&app).await;
        let bob = app.create_user("bob", Role::User).await;
        let bob_browser = app.browser();
        assert_eq!(bob_browser.login("bob", &bob.password).await.status(), 303);
        {
            // Bob sets up an app in his own browser.
            let bob_app = app.in_new_browser();
            bob_app.login_as(&bob).await;
            enrol(&bob_app).await;
        }
        let page = app.get(&format!("/admin/users/{}", bob.id)).await.text().await.unwrap();
        assert!(page.contains("Reset two-step sign-in…"));
        let confirm = app.get(&format!("/admin/users/{}/reset-mfa", bob.id)).await;
        assert_eq!(confirm.status(), 200);
        let html = confirm.text().await.unwrap();
        assert!(html.contains("Reset two-step sign-in of bob?"));
        let csrf = hidden_field(&html, "csrf_token").unwrap();

        let reset = app.post_form(&format!("/admin/users/{}/reset-mfa", bob.id), &[("csrf_token", &csrf)]).await;

        assert_eq!(reset.status(), 303);
        let ended = within(REVOCATION_LIMIT, || async { bob_browser.get("/dashboard").await.status() == 303 }).await;
        assert!(ended.is_some(), "bob's sessions end with the reset");
        let response = bob_browser.login("bob", &bob.password).await;
        assert_eq!(location(&response), "/dashboard", "the password alone again (users are not covered)");
        assert!(audit_details(&app).await.iter().any(|row| row.starts_with("user.mfa_reset: authenticator app removed")));

        // The last admin lost their phone: the command line resets them, and they must enrol again.
        let output = portcullis(&app, &["user", "reset-mfa", "ops"], "");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(said.contains("Two-step sign-in of ops was reset"), "{said}");
        let ended = within(REVOCATION_LIMIT, || async { app.get("/admin").await.status() == 303 }).await;
        assert!(ended.is_some(), "the admin's own session ended with the reset");
        assert_eq!(app.login("ops", &admin.password).await.status(), 303);
        assert_eq!(location(&app.get("/admin").await), "/account/security");
        let cli_row = app
            .with_conn(|conn| {
                use diesel::prelude::*;
                use portcullis::db::schema::audit_events::dsl::*;
                audit_events
                    .filter(action.eq("user.mfa_reset"))
                    .order(id.desc())
                    .select(client_ip)
                    .first::<Option<String>>(conn)
                    .unwrap()
            })
            .await;
        assert_eq!(cli_row.as_deref(), Some("cli"));
        drop(admin_factor);
    }
}

both_backends! {
    async fn a_code_is_accepted_once_across_two_instances(app: TestApp) {
        let user = app.create_user("ivy", Role::User).await;
        app.login_as(&user).await;
        let enrolled = enrol(&app).await;
        let second = spawn_second_instance(&app).await;
        // One thief on each instance, both past the password, race the same code.
        let one = app.in_new_browser();
        let two = second.in_new_browser();
        password_step(&one, &user).await;
        password_step(&two, &user).await;
        let code = enrolled.app.next_code();

        let (first, other) = tokio::join!(second_step(&one, "totp", &code), second_step(&two, "totp", &code));

        let mut statuses = [first.status().as_u16(), other.status().as_u16()];
        statuses.sort();
        let bodies = [first.text().await.unwrap(), other.text().await.unwrap()];
        let said: Vec<&str> = bodies.iter().filter_map(|body| between(body, "class=\"error-summary__list\"><li><a href=\"#code\">", "<")).collect();
        assert_eq!(statuses, [303, 401], "exactly one sign-in: {said:?}");
        second.server.stop(true).await;
    }

    async fn authenticator_keys_survive_a_rotation_of_the_signing_secret(app: TestApp) {
        let user = app.create_user("joan", Role::User).await;
        app.login_as(&user).await;
        let enrolled = enrol(&app).await;
        let stored = app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::totp_factors::dsl::*;
            totp_factors.select(sealed_secret).first::<String>(conn).unwrap()
        }).await;
        let key = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &enrolled.app.secret);
        assert!(!stored.contains(&key), "kept sealed, not as the key");
        // Restart with a new secret and the old one as the previous; once every instance has
        // the new secret, the keys are resealed under it.
        let rotated = spawn_rotated_instance(&app).await;
        app.server.stop(true).await;
        let new_secret = rotated.jwt_secret.clone();
        let both = [
            ("DATABASE_URL", app.database_url.as_str()),
            ("PORTCULLIS_JWT_SECRET", new_secret.as_str()),
            ("PORTCULLIS_JWT_SECRET_PREVIOUS", app.jwt_secret.as_str()),
        ];
        let output = portcullis_with_env(&both, &["reseal-keys"], "");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).contains("No key needs PORTCULLIS_JWT_SECRET_PREVIOUS any more"));
        rotated.server.stop(true).await;
        // A start with a secret that never sealed them stops, saying how to recover.
        let stranger = portcullis::random::token_base64(48);
        let wrong = [
            ("DATABASE_URL", app.database_url.as_str()),
            ("PORTCULLIS_JWT_SECRET", stranger.as_str()),
            ("PORTCULLIS_BIND", "127.0.0.1:0"),
        ];
        let refused = portcullis_with_env(&wrong, &["serve"], "");
        assert!(!refused.status.success());
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("1 authenticator key(s) are sealed under a signing secret this instance does not have"), "{said}");
        // Then the previous secret is retired: a start with the new secret alone.
        let retired = spawn_instance_with_secret(&app, &new_secret).await;
        let browser = retired.in_new_browser();
        password_step(&browser, &user).await;
        assert_eq!(second_step(&browser, "totp", &enrolled.app.next_code()).await.status(), 303);
        retired.server.stop(true).await;
    }
}

fn everyone_needs_a_second_factor(settings: &mut Settings) {
    settings.mfa_required = portcullis::config::MfaPolicy::All;
}

both_backends_with! { everyone_needs_a_second_factor;
    async fn under_mfa_required_all_a_plain_user_sets_one_up_then_always_takes_the_second_step(app: TestApp) {
        let user = app.create_user("ulf", Role::User).await;
        let api = app.post_json("/api/token", &serde_json::json!({"username": "ulf", "password": user.password})).await;
        assert_eq!(api.status(), 403, "the API gives no token before a second factor is set up");
        assert_eq!(api.json::<serde_json::Value>().await.unwrap()["error"], "mfa_enrolment_required");
        app.login_as(&user).await;
        for path in ["/dashboard", "/account", "/account/sessions"] {
            let response = app.get(path).await;
            assert_eq!(location(&response), "/account/security", "{path}: a user too is led to set one up");
        }
        let security = app.get("/account/security").await.text().await.unwrap();
        assert!(security.contains("every account"), "the page says who the policy covers");

        let enrolled = enrol(&app).await;
        assert!(signed_in(&app).await, "set up: in");
        let refused = app.post_form("/account/security/authenticator/remove", &[
            ("csrf_token", &app.session_csrf_token().await),
            ("remove_password", &user.password),
        ]).await;
        assert_eq!(refused.status(), 303);
        let page = app.get(&location(&refused)).await.text().await.unwrap();
        assert!(page.contains("required for your account"), "it cannot be turned off: {page}");

        sign_out(&app).await;
        password_step(&app, &user).await;
        let done = second_step(&app, "totp", &enrolled.app.next_code()).await;
        assert_eq!(location(&done), "/dashboard");
        assert!(signed_in(&app).await);
    }
}
