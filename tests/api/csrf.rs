use portcullis::domain::Role;

use crate::helpers::*;

both_backends! {
    async fn a_login_post_without_a_csrf_token_is_refused(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let _ = app.login_form_token().await;

        let response = app.post_form("/login", &[("username", &user.username), ("password", &user.password)]).await;

        assert_eq!(response.status(), 403);
        assert!(response.text().await.unwrap().contains("This form has expired"));
        assert_eq!(app.get("/dashboard").await.status(), 303, "not signed in");
    }

    async fn a_login_post_with_another_browsers_token_is_refused(app: TestApp) {
        let user = app.create_user("bob", Role::User).await;
        let _ = app.login_form_token().await;
        let (other, _) = app.other_browser();
        let html = other.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        let foreign = hidden_field(&html, "csrf_token").unwrap();

        let response = app
            .post_form("/login", &[("username", &user.username), ("password", &user.password), ("csrf_token", &foreign)])
            .await;

        assert_eq!(response.status(), 403);
    }

    async fn a_login_post_without_the_csrf_cookie_is_refused(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;
        let (other, _) = app.other_browser();
        let html = other.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        let token = hidden_field(&html, "csrf_token").unwrap();

        // This browser never loaded the form, so it has no login cookie.
        let response = app
            .post_form("/login", &[("username", &user.username), ("password", &user.password), ("csrf_token", &token)])
            .await;

        assert_eq!(response.status(), 403);
    }

    async fn a_sign_out_with_another_sessions_token_is_refused(app: TestApp) {
        let alice = app.create_user("dave", Role::User).await;
        let mallory = app.create_user("mallory", Role::User).await;
        app.login_as(&alice).await;
        let (other, _) = app.other_browser();
        let html = other.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        let login_csrf = hidden_field(&html, "csrf_token").unwrap();
        let body = serde_urlencoded::to_string([("username", "mallory"), ("password", PASSWORD), ("csrf_token", &login_csrf)]).unwrap();
        other.post(app.url("/login")).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
        let dashboard = other.get(app.url("/dashboard")).send().await.unwrap().text().await.unwrap();
        let mallorys_token = hidden_field(&dashboard, "csrf_token").unwrap();

        let forged = app.post_form("/logout", &[("csrf_token", &mallorys_token)]).await;
        let missing = app.post_form("/logout", &[]).await;

        assert_eq!(forged.status(), 403);
        assert_eq!(missing.status(), 403);
        assert_eq!(app.get("/dashboard").await.status(), 200, "still signed in");
        let _ = mallory;
    }

    async fn a_cross_site_login_post_is_refused_even_with_a_valid_token(app: TestApp) {
        let user = app.create_user("erin", Role::User).await;
        let csrf = app.login_form_token().await;
        let body = serde_urlencoded::to_string([("username", "erin"), ("password", PASSWORD), ("csrf_token", csrf.as_str())]).unwrap();
        let post = |headers: &[(&'static str, &'static str)]| {
            let mut request = app.client.post(app.url("/login")).header("content-type", "application/x-www-form-urlencoded").body(body.clone());
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.send()
        };

        let cross_site = post(&[("sec-fetch-site", "cross-site")]).await.unwrap();
        let same_site = post(&[("sec-fetch-site", "same-site")]).await.unwrap();
        let foreign_origin = post(&[("origin", "https://evil.test")]).await.unwrap();

        assert_eq!(cross_site.status(), 403);
        assert_eq!(same_site.status(), 403, "a sibling subdomain is another site to us");
        assert_eq!(foreign_origin.status(), 403);
        assert_eq!(app.get("/dashboard").await.status(), 303, "not signed in");
        let same_origin = post(&[("sec-fetch-site", "same-origin")]).await.unwrap();
        assert_eq!(same_origin.status(), 303);
        let _ = user;
    }

    async fn a_cross_origin_admin_post_changes_nothing(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let bob = app.create_user("bob", Role::User).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let before = app.snapshot().await;

        let response = app.client.post(app.url(&format!("/admin/users/{}/disable", bob.id)))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "https://evil.test")
            .body(format!("csrf_token={csrf}"))
            .send().await.unwrap();

        assert_eq!(response.status(), 403);
        assert_eq!(app.snapshot().await, before);
        let same_host = app.client.post(app.url(&format!("/admin/users/{}/disable", bob.id)))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", app.address.clone())
            .body(format!("csrf_token={csrf}"))
            .send().await.unwrap();
        assert_eq!(same_host.status(), 303, "an Origin matching the Host is fine");
    }

    async fn the_api_is_not_subject_to_the_cross_site_check(app: TestApp) {
        app.create_user("frank", Role::User).await;

        let response = app.client.post(app.url("/api/token"))
            .header("sec-fetch-site", "cross-site")
            .json(&serde_json::json!({"username": "frank", "password": PASSWORD}))
            .send().await.unwrap();

        assert_eq!(response.status(), 200);
    }
}
