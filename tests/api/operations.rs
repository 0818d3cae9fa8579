use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;

both_backends! {
    async fn health_and_readiness_answer(app: TestApp) {
        let health = app.get("/healthz").await;
        assert_eq!(health.status(), 200);
        assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");

        let ready = app.get("/readyz").await;
        assert_eq!(ready.status(), 200);
        assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    }

    async fn an_unknown_page_gets_a_404_page_in_the_layout_without_internals(app: TestApp) {
        let response = app.get("/no/such/page").await;

        assert_eq!(response.status(), 404);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = response.text().await.unwrap();
        assert!(html.contains("Page not found"));
        assert!(html.contains(r#"<link rel="stylesheet" href="/static/portcullis.css">"#));
    }

    async fn every_response_carries_the_security_headers(app: TestApp) {
        for path in ["/login", "/healthz", "/nowhere", "/dashboard"] {
            let response = app.get(path).await;
            let headers = response.headers();
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(headers["x-frame-options"], "DENY", "{path}");
            assert!(headers.get("server").is_none(), "{path}: no version banner");
        }
        assert_eq!(app.get("/login").await.headers()["cache-control"], "no-store");
    }

    async fn the_stylesheet_is_served_from_static(app: TestApp) {
        assert!(raw_get(&app, "/static/portcullis.css").await.starts_with("HTTP/1.1 200"), "the raw request works");
        let response = app.get("/static/portcullis.css").await;

        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
        // Written byte for byte: an HTTP client would resolve the dot segment before sending.
        for target in ["/static/../Cargo.toml", "/static/%2e%2e/Cargo.toml", "/static/..%2fCargo.toml"] {
            let answer = raw_get(&app, target).await;
            let status: u16 = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
            assert!((400..500).contains(&status), "{target}: {}", answer.lines().next().unwrap_or_default());
            assert!(!answer.contains("[package]"), "{target}: the manifest never leaves");
        }
    }

    async fn a_bad_file_address_gets_an_error_page_not_plain_text(app: TestApp) {
        for (path, status) in [
            ("/static/", 404),
            ("/static/missing.css", 404),
            ("/static/.env", 400),
            ("/static/..%2f..%2fCargo.toml", 400),
        ] {
            let response = app.get(path).await;

            assert_eq!(response.status(), status, "{path}");
            assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
            assert!(response.headers().get("cache-control").is_none_or(|value| value != "public, max-age=3600"), "{path}");
            let page = response.text().await.unwrap();
            assert!(page.contains("<main") && page.contains("href=\"/\""), "{path}: not our error page:\n{page}");
        }
        let response = app.post_form("/static/portcullis.css", &[("a", "b")]).await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_off_unless_turned_on() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    app.server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_sign_ins_by_outcome_and_open_sessions_sqlite() {
    metrics_scenario(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn metrics_count_requests_by_route_sign_ins_by_outcome_and_open_sessions_postgres() {
    if crate::helpers::postgres_available() {
        metrics_scenario(crate::helpers::Backend::Postgres).await;
    }
}

async fn metrics_scenario(backend: crate::helpers::Backend) {
    use crate::helpers::*;
    let app = spawn_app_with(backend, |settings| settings.metrics = true).await;
    let user = app.create_user("alice", portcullis::domain::Role::User).await;
    app.api_login(&user).await;
    let wrong = serde_json::json!({"username": "alice", "password": "not the password at all"});
    assert_eq!(app.post_json("/api/token", &wrong).await.status(), 401);
    app.login_as(&user).await;
    app.get("/admin/users/12345").await;
    app.get("/healthz").await;

    assert_eq!(app.client.post(app.url("/metrics")).send().await.unwrap().status(), 405);
    let response = app.get("/metrics").await;

    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"), "{content_type}");
    let text = response.text().await.unwrap();
    for expected in [
        r#"portcullis_http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
        r#"portcullis_http_requests_total{method="GET",route="/admin/users/{id}",status="403"} 1"#,
        r#"portcullis_logins_total{via="api",outcome="success"} 1"#,
        r#"portcullis_logins_total{via="api",outcome="failure"} 1"#,
        r#"portcullis_logins_total{via="form",outcome="success"} 1"#,
        r#"portcullis_http_request_duration_seconds_count{method="POST",route="/api/token"} 2"#,
        "portcullis_sessions_open 2",
        "portcullis_mail_sent_total 0",
        "portcullis_mail_outbox_waiting 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    app.server.stop(true).await;
}

/// Another process holding the database's write lock (a backup, a long admin script):
/// SQLite's write lock, or on PostgreSQL a lock on the sign-in counters.
fn hold_the_write_lock(app: &TestApp) -> Box<dyn std::any::Any> {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection, SqliteConnection};
    match app.database_url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut holder = SqliteConnection::establish(path).unwrap();
            holder.batch_execute("BEGIN IMMEDIATE").unwrap();
            Box::new(holder)
        }
        None => {
            let mut holder = PgConnection::establish(&app.database_url).unwrap();
            holder.batch_execute("BEGIN; LOCK TABLE login_throttles IN EXCLUSIVE MODE").unwrap();
            Box::new(holder)
        }
    }
}

both_backends! {
    async fn a_sign_in_while_the_database_is_locked_is_a_503_to_retry_and_changes_nothing(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let csrf = app.login_form_token().await;
        let before = app.snapshot().await;
        let lock = hold_the_write_lock(&app);

        let fields = [("username", "alice"), ("password", user.password.as_str()), ("csrf_token", csrf.as_str())];
        let body = serde_json::json!({"username": "alice", "password": user.password});
        let (form, api) = tokio::join!(app.post_form("/login", &fields), app.post_json("/api/token", &body));

        assert_eq!(form.status(), 503);
        assert_eq!(form.headers()["retry-after"], "5");
        assert!(form.text().await.unwrap().contains("Try again in a few seconds"));
        assert_eq!(api.status(), 503);
        assert_eq!(api.headers()["retry-after"], "5");
        assert_eq!(api.json::<serde_json::Value>().await.unwrap()["error"], "unavailable");
        drop(lock);
        assert_eq!(app.snapshot().await, before, "nothing was half-written");
        assert_eq!(app.login(&user.username, &user.password).await.status(), 303, "the same sign-in works once it is free");
        assert_no_server_panics();
    }

    async fn a_server_error_names_the_request_so_the_log_line_can_be_found(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let csrf = app.login_form_token().await;
        let lock = hold_the_write_lock(&app);

        let fields = [("username", "alice"), ("password", user.password.as_str()), ("csrf_token", csrf.as_str())];
        let body = serde_json::json!({"username": "alice", "password": user.password});
        let (form, api) = tokio::join!(app.post_form("/login", &fields), app.post_json("/api/token", &body));
        drop(lock);

        let form_id = form.headers()["x-request-id"].to_str().unwrap().to_owned();
        let api_id = api.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(form_id.len(), 16, "{form_id}");
        assert_ne!(form_id, api_id, "each request has its own id");
        assert!(form.text().await.unwrap().contains(&format!("quote the reference <code>{form_id}</code>")));
        let json: serde_json::Value = api.json().await.unwrap();
        assert_eq!(json["request_id"], api_id.as_str());
        let fine = app.get("/healthz").await;
        assert_eq!(fine.headers()["x-request-id"].len(), 16, "every answer carries its id");
        let refused = app.post_json("/api/token", &serde_json::json!({"username": "alice", "password": "wrong one"})).await;
        assert_eq!(refused.status(), 401);
        assert!(refused.json::<serde_json::Value>().await.unwrap().get("request_id").is_none(), "only server errors quote it");
    }
}

/// `GET {target}` written to the socket as is; the whole answer.
async fn raw_get(app: &TestApp, target: &str) -> String {
    let address = app.address.trim_start_matches("http://").to_owned();
    raw_http(&address, &format!("GET {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")).await
}
