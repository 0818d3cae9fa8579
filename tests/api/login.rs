use portcullis::domain::Role;

use crate::helpers::*;

both_backends! {
    async fn an_anonymous_visitor_is_redirected_to_login_with_the_page_to_return_to(app: TestApp) {
        let response = app.get("/dashboard?tab=profile").await;

        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/login?next=%2Fdashboard%3Ftab%3Dprofile");
    }

    async fn the_login_form_has_labelled_fields_and_hidden_csrf_and_next(app: TestApp) {
        let response = app.get("/login?next=/admin").await;

        assert_eq!(response.status(), 200);
        let html = response.text().await.unwrap();
        for needle in [r#"<label class="field__label" for="username">"#, r#"<label class="field__label" for="password">"#,
            r#"name="username""#, r#"name="password""#, r#"name="csrf_token""#, r#"name="next" value="/admin""#] {
            assert!(html.contains(needle), "missing {needle}");
        }
    }

    async fn a_user_with_the_right_password_gets_a_strict_cookie_and_lands_on_the_dashboard(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;

        let response = app.login(&user.username, &user.password).await;

        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/dashboard");
        let cookie = set_cookies(&response).into_iter().find(|c| c.starts_with("portcullis=")).expect("session cookie");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=900"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        assert!(!cookie.contains("Secure"), "plain-http deployments cannot use Secure");
        let dashboard = app.get("/dashboard").await;
        assert_eq!(dashboard.status(), 200);
        let html = dashboard.text().await.unwrap();
        assert!(html.contains("Welcome, alice"));
        assert!(html.contains("Signed in with</dt><dd>password</dd>"), "how, in words, not token jargon");
        assert!(html.contains(">user</span>"));
    }

    async fn a_user_can_sign_in_with_their_email_in_any_case(app: TestApp) {
        let user = app.create_user("bob", Role::User).await;

        let response = app.login("BOB@Example.com", &user.password).await;

        assert_eq!(response.status(), 303);
        assert_eq!(app.get("/dashboard").await.status(), 200);
    }

    async fn the_login_records_the_last_login_time(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;
        app.login_as(&user).await;

        let id = user.id;
        let stored = app.with_conn(move |conn| portcullis::db::users::find_by_id(conn, id).unwrap().unwrap()).await;
        assert!(stored.last_login_at.is_some());
    }

    async fn wrong_password_unknown_user_and_disabled_account_get_the_same_answer(app: TestApp) {
        let user = app.create_user("dave", Role::User).await;
        let disabled = app.create_user("erin", Role::User).await;
        let id = disabled.id;
        app.with_conn(move |conn| portcullis::db::users::set_active(conn, id, false).unwrap()).await;

        let mut answers = Vec::new();
        for (login, password) in [("dave", "not the password"), ("nobody", PASSWORD), ("erin", PASSWORD)] {
            let response = app.login(login, password).await;
            let status = response.status();
            let html = response.text().await.unwrap();
            assert!(html.contains(&format!(r#"value="{login}""#)), "the username is kept");
            assert!(html.contains("<title>Error: Sign in"));
            answers.push((status, html.replace(login, "LOGIN").replace(&hidden_field(&html, "csrf_token").unwrap(), "CSRF")));
        }
        assert_eq!(answers[0].0, 401);
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[1], answers[2]);
        assert_eq!(app.get("/dashboard").await.status(), 303, "no session was created");
        let _ = user;
    }

    async fn empty_fields_get_a_clear_message(app: TestApp) {
        let csrf = app.login_form_token().await;

        let response = app.post_form("/login", &[("username", "alice"), ("password", ""), ("csrf_token", &csrf)]).await;

        assert_eq!(response.status(), 400);
        assert!(response.text().await.unwrap().contains("Enter your username or email and your password."));
    }

    async fn after_login_the_user_returns_to_the_page_they_asked_for(app: TestApp) {
        let user = app.create_user("frank", Role::User).await;

        let response = app.login_with_next(&user.username, &user.password, "/dashboard?tab=profile").await;

        assert_eq!(location(&response), "/dashboard?tab=profile");
    }

    async fn next_values_that_leave_the_site_fall_back_to_the_dashboard(app: TestApp) {
        let user = app.create_user("grace", Role::User).await;
        for next in ["//evil.test", "/\\evil.test", "https://evil.test", "javascript:alert(1)", "/\t/evil.test",
            "\\\\evil.test", "http:/evil.test", " //evil.test", "evil.test"] {
            let (client, jar) = app.other_browser();
            let html = client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
            let csrf = hidden_field(&html, "csrf_token").unwrap();
            let body = serde_urlencoded::to_string([("username", user.username.as_str()), ("password", PASSWORD),
                ("csrf_token", csrf.as_str()), ("next", next)]).unwrap();
            let response = client.post(app.url("/login"))
                .header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
            assert_eq!(response.status(), 303);
            assert_eq!(location(&response), "/dashboard", "next={next:?}");
            let _ = jar;
        }
    }

    async fn a_signed_in_visitor_to_the_login_page_goes_straight_on(app: TestApp) {
        let user = app.create_user("heidi", Role::User).await;
        app.login_as(&user).await;

        assert_eq!(location(&app.get("/login").await), "/dashboard");
        assert_eq!(location(&app.get("/login?next=//evil.test").await), "/dashboard");
    }

    async fn the_start_page_sends_each_visitor_to_the_right_place(app: TestApp) {
        assert_eq!(location(&app.get("/").await), "/login");
        let user = app.create_user("ivan", Role::User).await;
        app.login_as(&user).await;
        assert_eq!(location(&app.get("/").await), "/dashboard");
    }

    async fn a_malformed_or_oversized_login_form_gets_an_error_page_not_a_crash(app: TestApp) {
        let csrf = app.login_form_token().await;
        let bad_encoding = app.post_raw("/login", "application/x-www-form-urlencoded", "username=%ZZ&password=%").await;
        assert!(bad_encoding.status() == 400 || bad_encoding.status() == 403, "{}", bad_encoding.status());
        let not_text = app.post_raw("/login", "application/x-www-form-urlencoded",
            format!("username=%FF&password=x&csrf_token={csrf}")).await;
        assert_eq!(not_text.status(), 400);

        let huge = format!("username=alice&csrf_token={csrf}&password={}", "x".repeat(64 * 1024));
        let oversized = app.post_raw("/login", "application/x-www-form-urlencoded", huge).await;
        assert_eq!(oversized.status(), 413);
        assert!(oversized.text().await.unwrap().contains("Too much data"));

        let json = app.post_raw("/login", "application/json", "{}").await;
        assert_eq!(json.status(), 400);
        assert!(json.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }

    async fn an_overlong_password_is_refused_without_hashing_it(app: TestApp) {
        let user = app.create_user("judy", Role::User).await;
        let csrf = app.login_form_token().await;
        let long = "p".repeat(2000);

        let response = app.post_form("/login", &[("username", &user.username), ("password", &long), ("csrf_token", &csrf)]).await;

        assert_eq!(response.status(), 400);
        assert!(response.text().await.unwrap().contains("at most 1024 bytes"));
        let response = app.post_json("/api/token", &serde_json::json!({"username": user.username, "password": long})).await;
        assert_eq!(response.status(), 400);
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
        assert!(!app.audit_actions().await.contains(&"login.failed".to_owned()), "not counted as a guess");
    }
}
