//! The promise that the per-request path does no database work, held by counting: the
//! statements the server's request pool runs across hundreds of `/api/me`, page and
//! `/auth/verify` requests (signed in by cookie and by Bearer token) stay at zero, while a page
//! that does read the database moves the count (so the count is real).
use portcullis::domain::Role;

fn quiet_background(settings: &mut portcullis::config::Settings) {
    // The key reloader shares the request pool: out of the way for the minute this takes.
    settings.signing.reload_interval = std::time::Duration::from_secs(3600);
}

both_backends_with! { quiet_background;
    async fn signed_in_requests_on_the_hot_path_run_no_statement_at_all(app: TestApp) {
        let user = app.create_user("hana", Role::User).await;
        let token = app.api_token(&user).await;
        app.login_as(&user).await;
        // Warm: the first sight of each token is verified in full (still no database).
        assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 200);
        assert_eq!(app.get("/dashboard").await.status(), 200);
        let verify = || {
            app.client
                .get(app.url("/auth/verify"))
                .header("X-Forwarded-Host", "wiki.example.com")
                .header("X-Forwarded-Uri", "/page")
                .bearer_auth(&token)
                .send()
        };
        assert_eq!(verify().await.unwrap().status(), 200);

        let before = app.statements.get();
        for _ in 0..100 {
            assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 200);
            assert_eq!(app.get("/dashboard").await.status(), 200);
            assert_eq!(verify().await.unwrap().status(), 200);
        }
        let during = app.statements.get() - before;

        assert_eq!(during, 0, "300 hot-path requests ran {during} statements");
        assert_eq!(app.get("/account/sessions").await.status(), 200);
        assert!(app.statements.get() > before, "a page that lists sessions does read the database: the count is real");
    }
}

both_backends_with! { quiet_background;
    async fn an_apps_userinfo_requests_run_no_statement_either(app: TestApp) {
        let user = app.create_user("hana", Role::User).await;
        app.login_as(&user).await;
        let client = crate::oidc::register(&app, |_| {}).await;
        let access = crate::oidc::access_token_for(&app, &client).await;
        let userinfo = || app.client.get(app.url("/oauth2/userinfo")).bearer_auth(&access).send();
        assert_eq!(userinfo().await.unwrap().status(), 200);
        let before = app.statements.get();
        for _ in 0..200 {
            assert_eq!(userinfo().await.unwrap().status(), 200);
        }
        let during = app.statements.get() - before;
        assert_eq!(during, 0, "200 userinfo requests ran {during} statements");
    }
}
