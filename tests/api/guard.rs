use portcullis::accounts;
use portcullis::db::audit::Actor;
use portcullis::db::users::ProfileChanges;
use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;

both_backends! {
    async fn the_api_without_a_token_answers_401_json_with_a_bearer_challenge(app: TestApp) {
        let response = app.get("/api/me").await;

        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="portcullis""#);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "missing_token");
        assert!(body["message"].as_str().unwrap().contains("Bearer"));
    }

    async fn the_api_ignores_the_session_cookie(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        assert_eq!(app.get("/dashboard").await.status(), 200);

        assert_eq!(app.get("/api/me").await.status(), 401);
    }

    async fn pages_ignore_a_bearer_header(app: TestApp) {
        let user = app.create_user("bob", Role::User).await;
        let token = app.api_token(&user).await;

        assert_eq!(app.get_with_bearer("/dashboard", &token).await.status(), 303);
    }

    async fn with_both_a_cookie_and_a_bearer_token_each_world_checks_its_own(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;
        let token = app.api_token(&user).await;
        app.set_cookie("portcullis", "broken");

        assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 200, "API uses the Bearer token");
        assert_eq!(app.get_with_bearer("/dashboard", &token).await.status(), 303, "pages use the cookie");
        app.login_as(&user).await;
        assert_eq!(app.get_with_bearer("/api/me", "broken").await.status(), 401, "a good cookie does not rescue a bad Bearer");
        assert_eq!(app.get_with_bearer("/dashboard", "broken").await.status(), 200);
    }

    // These changes are made as the command line makes them: straight to the database, from
    // outside this server, which must notice within two seconds without a per-request query.
    async fn a_user_disabled_from_the_command_line_is_locked_out_within_two_seconds(app: TestApp) {
        let user = app.create_user("dave", Role::User).await;
        app.login_as(&user).await;
        let token = app.api_token(&user).await;
        assert_eq!(app.get("/dashboard").await.status(), 200);

        let id = user.id;
        app.with_conn(move |conn| accounts::set_active(conn, &Actor::command_line(), id, false).unwrap()).await;

        let refused = within(REVOCATION_LIMIT, || async { app.get_with_bearer("/api/me", &token).await.status() == 401 }).await;
        assert!(refused.is_some(), "the Bearer token still works after 2 s");
        assert_eq!(app.get("/dashboard").await.status(), 303, "and the cookie cannot be renewed");
    }

    async fn a_deleted_users_token_stops_working_within_two_seconds(app: TestApp) {
        let user = app.create_user("erin", Role::User).await;
        let token = app.api_token(&user).await;

        let id = user.id;
        app.with_conn(move |conn| accounts::delete(conn, &Actor::command_line(), id).unwrap()).await;

        let refused = within(REVOCATION_LIMIT, || async { app.get_with_bearer("/api/me", &token).await.status() == 401 }).await;
        assert!(refused.is_some(), "the Bearer token still works after 2 s");
    }

    async fn a_demoted_admins_old_token_no_longer_opens_admin_routes(app: TestApp) {
        let admin = app.create_user("frank", Role::Admin).await;
        app.create_user("other", Role::Admin).await;
        let token = app.api_token(&admin).await;
        let admin_route = format!("/api/users/{}", admin.id);
        assert_eq!(app.get_with_bearer(&admin_route, &token).await.status(), 200);

        let id = admin.id;
        app.with_conn(move |conn| {
            let changes = ProfileChanges { role: Some(Role::User), ..Default::default() };
            accounts::update_profile(conn, &crate::helpers::no_mail(), &Actor::command_line(), id, &changes).unwrap()
        })
        .await;

        let refused = within(REVOCATION_LIMIT, || async { app.get_with_bearer(&admin_route, &token).await.status() == 401 }).await;
        assert!(refused.is_some(), "the admin token still works after 2 s");
    }

    async fn the_api_shows_the_caller_without_secrets(app: TestApp) {
        let user = app.create_user("grace", Role::User).await;
        let token = app.api_token(&user).await;

        let response = app.get_with_bearer("/api/me", &token).await;

        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let me: Value = response.json().await.unwrap();
        assert_eq!(me["id"], user.id);
        assert_eq!(me["username"], "grace");
        assert_eq!(me["display_name"], "grace");
        assert_eq!(me["role"], "user");
        assert!(me["token_expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());
        let text = me.to_string();
        assert!(!text.contains("argon2") && !text.contains("password"), "{text}");
    }
}
