//! Finding your way: the current section marked, a word after signing out, and buttons that
//! cannot be undone asking first.
use portcullis::domain::Role;

use crate::helpers::*;

both_backends! {
    async fn after_signing_out_the_login_page_says_so(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        let response = app.post_form("/logout", &[("csrf_token", &csrf)]).await;
        assert_eq!(location(&response), "/login");
        let page = app.get("/login").await.text().await.unwrap();
        assert!(page.contains("You have signed out."));
        assert!(!app.get("/login").await.text().await.unwrap().contains("You have signed out."), "said once");
    }

    async fn the_navigation_marks_the_section_the_page_is_in(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let account = app.get("/account/sessions").await.text().await.unwrap();
        assert!(account.contains(r#"<a href="/account" aria-current="page">Account</a>"#), "{account}");
        assert!(account.contains(r#"<a href="/dashboard">Dashboard</a>"#));
        let users = app.get(&format!("/admin/users/{}", admin.id)).await.text().await.unwrap();
        assert!(users.contains(r#"<a href="/admin/users" aria-current="page">Users</a>"#));
        assert!(users.contains(r#"<a href="/admin">Admin</a>"#), "the overview is marked only on itself");
        assert_eq!(users.matches("aria-current=\"page\"").count(), 1);
        let overview = app.get("/admin").await.text().await.unwrap();
        assert!(overview.contains(r#"<a class="stat" href="/admin/users?role=admin&amp;status=active">"#), "counts lead to their list");
    }

    async fn error_pages_keep_the_navigation_for_someone_signed_in(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let member = app.create_user("mia", Role::User).await;
        app.login_as(&admin).await;

        let missing = app.get("/admin/users/987654").await;
        assert_eq!(missing.status(), 404);
        let page = missing.text().await.unwrap();
        assert!(page.contains("Page not found"));
        assert!(page.contains(r#"<a href="/admin/users" aria-current="page">Users</a>"#), "the way back is there: {page}");
        assert!(page.contains(r#"action="/logout""#), "and signing out");
        let unknown = app.get("/account/nothing-here").await;
        assert_eq!(unknown.status(), 404);
        assert!(unknown.text().await.unwrap().contains(r#"<a href="/account" aria-current="page">Account</a>"#));
        let wrong_method = app.get("/admin/users/bulk").await;
        assert_eq!(wrong_method.status(), 405);
        assert_eq!(wrong_method.headers()["allow"], "POST, OPTIONS", "the headers of the answer are kept");
        assert!(wrong_method.text().await.unwrap().contains(r#"action="/logout""#));

        let other = app.in_new_browser();
        other.login_as(&member).await;
        let refused = other.get("/admin/users").await;
        assert_eq!(refused.status(), 403);
        let page = refused.text().await.unwrap();
        assert!(page.contains("This area is for administrators.") && page.contains(r#"<a href="/dashboard">Dashboard</a>"#));
        assert!(!page.contains(r#"href="/admin""#), "no admin link for someone who is not one");

        let anonymous = app.browser().get("/admin/users/987654").await;
        assert_eq!(anonymous.status(), 303, "anonymous visitors still go to the login page");
    }

    async fn resetting_a_password_and_signing_out_everywhere_ask_first(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let bob = app.create_user("bob", Role::User).await;
        app.login_as(&admin).await;
        let elsewhere = app.in_new_browser();
        elsewhere.login_as(&bob).await;

        let user_page = app.get(&format!("/admin/users/{}", bob.id)).await.text().await.unwrap();
        assert!(user_page.contains(&format!(r#"href="/admin/users/{}/reset-password">Reset password…</a>"#, bob.id)));
        let confirm = app.get(&format!("/admin/users/{}/reset-password", bob.id)).await;
        assert_eq!(confirm.status(), 200);
        let html = unescape(&confirm.text().await.unwrap());
        assert!(html.contains("Reset the password of bob?") && html.contains("signed out everywhere"));
        assert!(html.contains(&format!(r#"action="/admin/users/{}/reset-password""#, bob.id)));
        assert_eq!(elsewhere.get("/dashboard").await.status(), 200, "showing the question changed nothing");

        let confirm = app.get(&format!("/admin/users/{}/sessions/revoke-all", bob.id)).await;
        assert_eq!(confirm.status(), 200);
        assert!(unescape(&confirm.text().await.unwrap()).contains("Sign bob out everywhere?"));
        assert_eq!(elsewhere.get("/dashboard").await.status(), 200);
        let csrf = app.session_csrf_token().await;
        let done = app.post_form(&format!("/admin/users/{}/sessions/revoke-all", bob.id), &[("csrf_token", &csrf)]).await;
        assert_eq!(done.status(), 303);
        assert_eq!(elsewhere.get("/dashboard").await.status(), 303, "the button acts");
    }

    async fn a_typed_password_is_never_silently_dropped_when_add_a_user_generates_one(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let response = app
            .post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "carol"), ("email", "carol@example.com"), ("role", "user"), ("password_mode", "generate"), ("password", "a password I typed")])
            .await;
        assert_eq!(response.status(), 422);
        let html = unescape(&response.text().await.unwrap());
        assert!(html.contains("You typed a password but chose to generate one"), "{html}");
        assert!(html.contains(r#"value="carol""#), "what was typed is kept");
    }

    async fn add_a_user_names_every_clash_at_once(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.create_user("carol", Role::User).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let response = app
            .post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "carol"), ("email", "carol@example.com"), ("role", "user"), ("password_mode", "generate")])
            .await;
        assert_eq!(response.status(), 422);
        let html = unescape(&response.text().await.unwrap());
        assert!(html.contains("That username is already taken") && html.contains("That email address is already in use"), "{html}");
    }

    async fn the_login_page_offers_a_show_password_toggle_that_needs_no_script_to_work_without(app: TestApp) {
        let page = app.get("/login").await.text().await.unwrap();
        assert!(page.contains(r#"<script src="/static/show-password.js" defer></script>"#));
        assert!(page.contains(r#"type="password" autocomplete="current-password" required data-show-password"#));
        let script = app.get("/static/show-password.js").await;
        assert_eq!(script.status(), 200);
        assert!(script.text().await.unwrap().contains("aria-pressed"));
    }
}
