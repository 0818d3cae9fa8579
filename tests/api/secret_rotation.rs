//! Rotating the signing secret without signing anyone out. With HS256 the new secret signs and
//! the previous one still verifies, each token naming its key in `kid`; with EdDSA the key pair
//! stays (the previous secret opens it) and `reseal-keys` moves it under the new secret.
use portcullis::domain::Role;

use crate::helpers::*;

both_backends_with! { hs256;
    async fn after_a_secret_rotation_existing_sessions_keep_working_and_new_tokens_use_the_new_key(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let tokens = app.api_login(&user).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        let cookies = format!("portcullis={}; portcullis-refresh={}", app.cookie("portcullis").unwrap(), app.cookie("portcullis-refresh").unwrap());

        let rotated = spawn_rotated_instance_with(&app, hs256).await;

        assert_eq!(rotated.get_with_bearer("/api/me", &tokens.access).await.status(), 200, "old access token still valid");
        let renewed = rotated.api_refresh(&tokens.refresh).await.expect("old session renews");
        let header = header_of(&renewed.access);
        assert_eq!(header["kid"], rotated.kid(), "new tokens are signed with the new secret");
        assert_ne!(rotated.kid(), app.kid());
        // A form rendered before the restart still posts.
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response = client
            .post(rotated.url("/account"))
            .header("cookie", &cookies)
            .form(&[("csrf_token", csrf.as_str()), ("display_name", "Alice"), ("email", "alice@example.com")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        // The old instance, which does not know the new secret, refuses the new token.
        assert_eq!(app.get_with_bearer("/api/me", &renewed.access).await.status(), 401);
        rotated.server.stop(true).await;
    }
}

both_backends! {
    async fn with_eddsa_a_secret_rotation_keeps_the_key_pair_and_reseal_moves_it(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let tokens = app.api_login(&user).await;
        let kid = header_of(&tokens.access)["kid"].clone();

        let rotated = spawn_rotated_instance(&app).await;
        assert_eq!(rotated.get_with_bearer("/api/me", &tokens.access).await.status(), 200);
        let renewed = rotated.api_refresh(&tokens.refresh).await.expect("the session renews");
        assert_eq!(header_of(&renewed.access)["kid"], kid, "the same key pair signs: verifiers notice nothing");
        assert_eq!(app.get_with_bearer("/api/me", &renewed.access).await.status(), 200, "the old instance accepts it too");

        let previous = app.jwt_secret.clone();
        let output = crate::cli::portcullis_with_env(
            &[("DATABASE_URL", &app.database_url), ("PORTCULLIS_JWT_SECRET", &rotated.jwt_secret),
              ("PORTCULLIS_JWT_SECRET_PREVIOUS", &previous)],
            &["reseal-keys"],
            "",
        );
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
        // (A single SQLite instance has already resealed it by itself when it started.)
        assert!(said.contains("token signing key(s) resealed"), "{said}");
        // Now the new secret alone opens it: an instance without the previous secret still signs with it.
        let alone = spawn_instance_with_secret(&app, &rotated.jwt_secret).await;
        let again = alone.api_token(&user).await;
        assert_eq!(header_of(&again)["kid"], kid);
        rotated.server.stop(true).await;
        alone.server.stop(true).await;
    }
}

fn header_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
