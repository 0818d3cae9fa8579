//! HTTP as RFC 9110 describes it: every GET address answers HEAD, OPTIONS and wrong methods
//! name the allowed ones, and every answer (errors from the guards included) carries the
//! security headers.
use portcullis::domain::Role;
use reqwest::{Method, Response};

use crate::helpers::*;

async fn send(app: &TestApp, method: &str, path: &str) -> Response {
    app.client.request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path)).send().await.unwrap()
}

fn comparable(response: &Response) -> (u16, Option<String>, Option<String>) {
    let header = |name: &str| response.headers().get(name).map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), header("content-type"), header("location"))
}

both_backends! {
    async fn every_get_address_answers_head_alike_without_a_body(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let anonymous = ["/", "/healthz", "/readyz", "/login", "/login?next=/account", "/dashboard", "/api/me",
            "/api/openapi.json", "/static/portcullis.css", "/static/nothing.css", "/no-such-page"];
        let signed_in = ["/dashboard", "/account", "/account/sessions", "/admin", "/admin/users", "/admin/audit",
            &format!("/admin/users/{}", admin.id), &format!("/admin/users/{}/delete", admin.id)];

        for (when, paths) in [("anonymous", &anonymous[..]), ("signed in", &signed_in[..])] {
            if when == "signed in" {
                app.login_as(&admin).await;
            }
            for path in paths {
                let get = send(&app, "GET", path).await;
                let head = send(&app, "HEAD", path).await;

                assert_eq!(comparable(&head), comparable(&get), "{when}: HEAD {path}");
                assert_ne!(head.status(), 405, "{when}: HEAD {path}");
                assert!(head.bytes().await.unwrap().is_empty(), "{when}: HEAD {path} has no body");
            }
        }
    }

    async fn a_wrong_method_gets_405_naming_the_allowed_ones_and_options_lists_them(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let cases = [
            ("PUT", "/login", "GET, HEAD, POST, OPTIONS"),
            ("DELETE", "/healthz", "GET, HEAD, OPTIONS"),
            ("PATCH", "/api/token", "POST, OPTIONS"),
            ("POST", "/api/me", "GET, HEAD, OPTIONS"),
        ];
        for (method, path, allow) in cases {
            let wrong = send(&app, method, path).await;
            assert_eq!(wrong.status(), 405, "{method} {path}");
            assert_eq!(wrong.headers()["allow"], allow, "{method} {path}");
            let options = send(&app, "OPTIONS", path).await;
            assert_eq!(options.status(), 204, "OPTIONS {path}");
            assert_eq!(options.headers()["allow"], allow, "OPTIONS {path}");
        }
        app.login_as(&user).await;
        for (method, path, allow) in [
            ("PUT", "/account", "GET, HEAD, POST, OPTIONS"),
            ("GET", "/logout", "POST, OPTIONS"),
            ("DELETE", "/account/sessions", "GET, HEAD, OPTIONS"),
            ("GET", "/account/sessions/revoke-others", "POST, OPTIONS"),
        ] {
            let wrong = send(&app, method, path).await;
            assert_eq!(wrong.status(), 405, "{method} {path}");
            assert_eq!(wrong.headers()["allow"], allow, "{method} {path}");
            assert!(wrong.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "a page for a browser");
        }
        assert_eq!(app.get("/dashboard").await.status(), 200, "still signed in");
    }

    async fn every_answer_carries_the_security_headers_errors_from_the_guards_too(app: TestApp) {
        let answers = [
            send(&app, "GET", "/login").await,
            send(&app, "GET", "/api/me").await,
            app.get_with_bearer("/api/me", "not.a.token").await,
            send(&app, "GET", "/dashboard").await,
            send(&app, "GET", "/no-such-page").await,
            send(&app, "PUT", "/api/me").await,
            app.post_raw("/api/token", "application/json", "{").await,
            app.post_json("/api/token", &serde_json::json!({"username": "nobody", "password": "wrong wrong"})).await,
        ];
        for answer in answers {
            let what = format!("{} {}", answer.url().path(), answer.status());
            let headers = answer.headers();
            assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
            assert_eq!(headers["x-frame-options"], "DENY", "{what}");
            assert_eq!(headers["referrer-policy"], "same-origin", "{what}");
            assert_eq!(headers["cross-origin-opener-policy"], "same-origin", "{what}");
            assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"), "{what}");
            assert_eq!(headers["cache-control"], "no-store", "{what}");
        }
    }
}

both_backends! {
    async fn pages_that_mailed_links_open_never_send_their_token_on_as_a_referrer(app: TestApp) {
        for path in ["/password/reset?token=abc", "/invitation?token=abc", "/email/confirm?token=abc"] {
            let page = app.get(path).await;
            assert_eq!(page.headers()["referrer-policy"], "no-referrer", "{path}");
            assert_eq!(page.headers().get_all("referrer-policy").iter().count(), 1, "{path}: one policy");
        }
        assert_eq!(app.get("/login").await.headers()["referrer-policy"], "same-origin", "other pages as before");
    }
}
