//! Rotating the signing secret without signing anyone out: the new secret signs, the previous
//! one still verifies, each token names its key in `kid`.
use portcullis::domain::Role;

use crate::helpers::*;

both_backends! {
    async fn after_a_secret_rotation_existing_sessions_keep_working_and_new_tokens_use_the_new_key(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let tokens = app.api_login(&user).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        let cookies = format!("portcullis={}; portcullis-refresh={}", app.cookie("portcullis").unwrap(), app.cookie("portcullis-refresh").unwrap());

        let rotated = spawn_rotated_instance(&app).await;

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

fn header_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
