//! A stolen session is not a stolen account: changes that control sign-in (the e-mail address,
//! passkeys, an authenticator app) need the password within the last few minutes
//! (`PORTCULLIS_FRESH_PROOF`, 5 by default), and an administrator cannot strip their own second
//! factors from the admin pages.
use portcullis::domain::Role;
use serde_json::json;

use crate::helpers::*;

/// This browser's session last proved who it is an hour ago (a session cookie stolen from a
/// machine left signed in): the proof is moved back, and the next page renews the token.
async fn an_hour_since_the_password(app: &TestApp) {
    let sid_token = app.cookie("portcullis").expect("signed in");
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::sessions;
        let claims = sid_token.split('.').nth(1).unwrap().to_owned();
        use base64::Engine;
        let claims: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        let an_hour_ago = chrono::Utc::now().naive_utc() - chrono::Duration::hours(1);
        diesel::update(sessions::table.filter(sessions::sid.eq(claims["sid"].as_str().unwrap())))
            .set(sessions::proved_at.eq(an_hour_ago))
            .execute(conn)
    })
    .await
    .unwrap();
    app.expire_access_cookie().await;
    assert_eq!(app.get("/dashboard").await.status(), 200, "the session itself goes on");
}

fn confirm_page(response: &reqwest::Response) -> bool {
    response.status() == 303 && location(response).starts_with("/account/security/confirm?next=")
}

both_backends! {
    async fn a_stolen_session_alone_cannot_change_how_the_account_signs_in(app: TestApp) {
        let user = app.create_user("sofia", Role::User).await;
        app.login_as(&user).await;
        an_hour_since_the_password(&app).await;
        let csrf = app.session_csrf_token().await;

        let email = app
            .post_form("/account", &[("csrf_token", &csrf), ("display_name", "Sofia"), ("email", "thief@example.com")])
            .await;
        assert!(confirm_page(&email), "a new e-mail address needs the password: {}", email.status());
        assert_eq!(location(&email), "/account/security/confirm?next=%2Faccount");
        let start = app.post_form("/account/security/authenticator", &[("csrf_token", &csrf)]).await;
        assert!(confirm_page(&start), "an authenticator app needs the password");
        assert!(confirm_page(&app.get("/account/security/authenticator").await), "so does seeing a pending key");
        let options = app.post_json("/account/security/passkeys/options", &json!({"csrf_token": csrf})).await;
        assert_eq!(options.status(), 403, "so does a passkey");
        assert_eq!(options.json::<serde_json::Value>().await.unwrap()["error"], "confirm_identity");
        let codes = app.post_form("/account/security/recovery-codes", &[("csrf_token", &csrf)]).await;
        assert!(!codes.status().is_success() || !codes.text().await.unwrap().contains("recovery-codes\""),
            "new recovery codes need the password too");
        // Nothing changed, and the name alone still saves without a password.
        let stored = app.with_conn(move |conn| portcullis::db::users::find_by_id(conn, user.id)).await.unwrap().unwrap();
        assert_eq!(stored.email.as_str(), "sofia@example.com");
        let name_only = app
            .post_form("/account", &[("csrf_token", &csrf), ("display_name", "Sofia P."), ("email", "sofia@example.com")])
            .await;
        assert_eq!(location(&name_only), "/account", "a display name is not a sign-in setting");

        // The owner confirms with the password (a wrong one first) and goes on.
        let page = app.get("/account/security/confirm?next=%2Faccount").await.text().await.unwrap();
        assert!(page.contains("Confirm it is you"), "{page}");
        let wrong = app
            .post_form("/account/security/confirm", &[("csrf_token", &csrf), ("current_password", "not the password"), ("next", "/account")])
            .await;
        assert_eq!(wrong.status(), 422);
        assert!(wrong.text().await.unwrap().contains("That password is not right"));
        assert!(app.audit_actions().await.contains(&"password.check_failed".to_owned()), "the wrong guess is audited");
        let right = app
            .post_form("/account/security/confirm", &[("csrf_token", &csrf), ("current_password", &user.password), ("next", "https://evil.example/")])
            .await;
        assert_eq!(right.status(), 303);
        assert_eq!(location(&right), "/account/security", "a foreign return address is not followed");
        let changed = app
            .post_form("/account", &[("csrf_token", &csrf), ("display_name", "Sofia"), ("email", "sofia.new@example.com")])
            .await;
        assert_eq!(location(&changed), "/account", "after the proof the address can change");
        let start = app.post_form("/account/security/authenticator", &[("csrf_token", &csrf)]).await;
        assert_eq!(location(&start), "/account/security/authenticator");
    }

    async fn the_proof_is_the_sign_in_itself_for_the_first_minutes(app: TestApp) {
        let user = app.create_user("tomas", Role::User).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        let start = app.post_form("/account/security/authenticator", &[("csrf_token", &csrf)]).await;
        assert_eq!(location(&start), "/account/security/authenticator", "just signed in: no second ask");
        let options = app.post_json("/account/security/passkeys/options", &json!({"csrf_token": csrf})).await;
        assert_ne!(options.status(), 403, "nor for a passkey");
    }

    async fn an_administrator_cannot_reset_their_own_two_step_sign_in(app: TestApp) {
        let admin = app.create_user("ada", Role::Admin).await;
        let other = app.create_user("bob", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let own = app.post_form(&format!("/admin/users/{}/reset-mfa", admin.id), &[("csrf_token", &csrf)]).await;
        assert_eq!(own.status(), 303);
        let after = app.get(&location(&own)).await.text().await.unwrap();
        assert!(after.contains("You cannot reset two-step sign-in of your own account"), "{after}");
        assert!(!app.audit_actions().await.contains(&"user.mfa_reset".to_owned()), "nothing was reset");
        let theirs = app.post_form(&format!("/admin/users/{}/reset-mfa", other.id), &[("csrf_token", &csrf)]).await;
        assert_eq!(theirs.status(), 303, "another administrator's is reset as before");
    }
}
