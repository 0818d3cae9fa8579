use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;

both_backends! {
    async fn an_anonymous_visitor_to_the_admin_area_is_sent_to_login(app: TestApp) {
        let response = app.get("/admin").await;

        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/login?next=%2Fadmin");
    }

    async fn a_plain_user_gets_a_403_page_in_the_admin_area(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;

        let response = app.get("/admin").await;

        assert_eq!(response.status(), 403);
        let html = response.text().await.unwrap();
        assert!(html.contains("This area is for administrators."));
        assert!(html.contains("Sign in") || html.contains("Portcullis"), "rendered in the layout");
        let dashboard = app.get("/dashboard").await.text().await.unwrap();
        assert!(!dashboard.contains(r#"href="/admin""#), "no admin link for plain users");
    }

    async fn an_admin_sees_the_overview_and_the_admin_link(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.create_user("bob", Role::User).await;
        app.login_as(&admin).await;

        let response = app.get("/admin").await;

        assert_eq!(response.status(), 200);
        let html = response.text().await.unwrap();
        assert!(html.contains(r#"href="/admin""#));
        assert!(html.contains(r#"<span class="stat__value">2</span><span class="stat__label">users</span>"#), "{html}");
    }

    async fn a_plain_users_bearer_token_gets_a_json_403_on_admin_api_routes(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let user = app.create_user("bob", Role::User).await;
        let token = app.api_token(&user).await;

        let response = app.get_with_bearer(&format!("/api/users/{}", admin.id), &token).await;

        assert_eq!(response.status(), 403);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "forbidden");
        assert!(body.get("email").is_none());
    }

    async fn an_admin_reads_a_user_by_id_and_gets_clear_errors_for_bad_ids(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let user = app.create_user("bob", Role::User).await;
        let token = app.api_token(&admin).await;

        let found: Value = app.get_with_bearer(&format!("/api/users/{}", user.id), &token).await.json().await.unwrap();
        let missing = app.get_with_bearer("/api/users/424242", &token).await;
        let malformed = app.get_with_bearer("/api/users/abc", &token).await;
        let overflow = app.get_with_bearer("/api/users/99999999999999999999999", &token).await;

        assert_eq!(found["username"], "bob");
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.json::<Value>().await.unwrap()["error"], "not_found");
        assert_eq!(malformed.status(), 400);
        assert!(malformed.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("whole number"));
        assert_eq!(overflow.status(), 400);
    }
}
