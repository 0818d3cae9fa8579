use portcullis::domain::Role;

use crate::helpers::*;

both_backends! {
    async fn signing_out_removes_the_cookie_and_returns_to_login(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;

        let response = app.post_form("/logout", &[("csrf_token", &csrf)]).await;

        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/login");
        let removal = set_cookies(&response).into_iter().find(|c| c.starts_with("portcullis=")).unwrap();
        assert!(removal.contains("Max-Age=0") || removal.contains("expires=Thu, 01 Jan 1970"), "{removal}");
        assert_eq!(app.cookie("portcullis"), None);
        assert_eq!(app.get("/dashboard").await.status(), 303);
    }

    async fn signing_out_is_not_possible_with_a_get(app: TestApp) {
        let user = app.create_user("bob", Role::User).await;
        app.login_as(&user).await;

        let response = app.get("/logout").await;

        assert_eq!(response.status(), 405);
        assert!(response.text().await.unwrap().contains("does not accept that kind of request"));
        assert_eq!(app.get("/dashboard").await.status(), 200, "still signed in");
    }

    async fn an_anonymous_sign_out_goes_to_login(app: TestApp) {
        let response = app.post_form("/logout", &[("csrf_token", "x")]).await;

        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/login");
    }
}
