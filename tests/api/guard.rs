use portcullis::domain::Role;
use serde_json::Value;

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

    async fn a_disabled_users_live_cookie_and_bearer_token_stop_working_at_once(app: TestApp) {
        let user = app.create_user("dave", Role::User).await;
        app.login_as(&user).await;
        let token = app.api_token(&user).await;
        assert_eq!(app.get("/dashboard").await.status(), 200);

        let id = user.id;
        app.with_conn(move |conn| portcullis::db::users::set_active(conn, id, false).unwrap()).await;

        assert_eq!(app.get("/dashboard").await.status(), 303);
        assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 401);
    }

    async fn a_deleted_users_token_stops_working(app: TestApp) {
        let user = app.create_user("erin", Role::User).await;
        let token = app.api_token(&user).await;

        let id = user.id;
        app.with_conn(move |conn| portcullis::db::users::delete(conn, id).unwrap()).await;

        assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 401);
    }

    async fn a_demoted_admins_old_token_no_longer_opens_admin_routes(app: TestApp) {
        let admin = app.create_user("frank", Role::Admin).await;
        let token = app.api_token(&admin).await;
        assert_eq!(app.get_with_bearer(&format!("/api/users/{}", admin.id), &token).await.status(), 200);

        let id = admin.id;
        app.with_conn(move |conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::users;
            diesel::update(users::table.find(id)).set(users::role.eq("user")).execute(conn).unwrap();
        })
        .await;

        assert_eq!(app.get_with_bearer(&format!("/api/users/{}", admin.id), &token).await.status(), 401);
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
        assert_eq!(me["email"], "grace@example.com");
        assert_eq!(me["role"], "user");
        assert!(me["token_expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());
        let text = me.to_string();
        assert!(!text.contains("argon2") && !text.contains("password"), "{text}");
    }
}
