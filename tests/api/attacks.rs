//! The attack suite, part two (token forgeries are in `token_attacks`, CSRF in `csrf`,
//! brute force in `throttling`): key-fetching headers, stored XSS through every field a user
//! controls, SQL injection probes, and oversized, compressed, malformed and slow requests.
//! Each case asserts the exact refusal, and no attack may make a server thread panic.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::domain::Role;
use serde_json::{Value, json};

use crate::helpers::*;

/// The header of a real token (its `alg` and `kid`), with `extra` added.
async fn real_header(app: &TestApp, user: &TestUser, extra: Value) -> Value {
    let token = app.api_token(user).await;
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    header.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    header
}

fn good_claims(app: &TestApp, user: &TestUser) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user.id.to_string(), "preferred_username": user.username, "name": user.username, "pwc": false,
           "role": "user", "sid": "s", "jti": "j", "iat": now, "nbf": now, "exp": now + 600,
           "iss": app.issuer, "aud": "portcullis"})
}

fn users_count(app: &TestApp) -> impl std::future::Future<Output = i64> + '_ {
    app.with_conn(|conn| {
        use diesel::prelude::*;
        portcullis::db::schema::users::table.count().get_result::<i64>(conn).unwrap()
    })
}

both_backends! {
    async fn key_urls_in_a_token_header_are_never_fetched(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let bait = format!("http://{}/keys.json", listener.local_addr().unwrap());
        let claims = good_claims(&app, &user);
        for field in ["jku", "x5u"] {
            // Signed with the server's own key: only the header's extra field is wrong.
            let header = real_header(&app, &user, json!({field: bait})).await;
            let token = app.sign_as_server(&header, &claims).await;

            assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 401, "{field}");
            app.set_cookie("portcullis", &token);
            assert_eq!(app.get("/dashboard").await.status(), 303, "{field}");
        }
        let embedded = real_header(&app, &user, json!({"jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(app.jwt_secret.as_bytes())}})).await;
        assert_eq!(app.get_with_bearer("/api/me", &app.sign_as_server(&embedded, &claims).await).await.status(), 401);
        let plain = real_header(&app, &user, json!({})).await;
        assert_eq!(app.get_with_bearer("/api/me", &app.sign_as_server(&plain, &claims).await).await.status(), 200,
            "the same token without the extra header is accepted: the refusals above are for the header");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(listener.accept().is_err(), "the server connected to a URL named in a token");
        assert_no_server_panics();
    }

    async fn markup_in_every_field_a_user_controls_is_shown_as_text(app: TestApp) {
        let payload = r#"<script>alert(1)</script>"#;
        let admin = app.create_user("admin", Role::Admin).await;
        let user = app.create_user("mallory", Role::User).await;
        // The user agent (shown as the session's device), then the display name.
        let agent = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .user_agent(format!("{payload}/1.0"))
            .build()
            .unwrap();
        let html = agent.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let response = agent
            .post(app.url("/login"))
            .form(&[("username", "mallory"), ("password", user.password.as_str()), ("csrf_token", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        let html = agent.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let response = agent
            .post(app.url("/account"))
            .form(&[("csrf_token", csrf.as_str()), ("display_name", payload), ("email", "mallory@example.com")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        // A failed sign-in with markup as the name: echoed on the form, recorded in the audit trail.
        let echoed = form_login(&app, payload, "wrong password here").await;
        assert!(!echoed.contains(payload), "the login form echoes the name escaped");
        assert_eq!(app.get_with_bearer("/api/me", "x").await.status(), 401);

        app.login_as(&admin).await;
        let pages = [
            format!("/admin/users/{}", user.id),
            "/admin/users".to_owned(),
            format!("/admin/users?q={}", "%3Cscript%3E"),
            "/admin/audit".to_owned(),
        ];
        for page in &pages {
            let html = app.get(page).await.text().await.unwrap();
            assert!(!html.contains("<script>alert"), "{page} shows raw markup");
        }
        let user_page = app.get(&format!("/admin/users/{}", user.id)).await.text().await.unwrap();
        assert!(user_page.contains("&#60;script&#62;"), "the session's device (user agent) is shown, escaped");
        for page in ["/dashboard", "/account", "/account/sessions"] {
            let html = agent.get(app.url(page)).send().await.unwrap().text().await.unwrap();
            assert!(!html.contains("<script>alert"), "{page} shows raw markup");
            assert!(html.contains("&#60;script&#62;"), "{page} shows the text");
        }
        assert_no_server_panics();
    }

    async fn sql_injection_probes_are_just_strange_text(app: TestApp) {
        let admin = app.create_user("admin", Role::Admin).await;
        app.create_user("alice", Role::User).await;
        let before = users_count(&app).await;
        let probes = [
            "' OR '1'='1",
            "admin'--",
            "admin' OR 1=1--",
            "\" OR \"\"=\"",
            "'; DROP TABLE users; --",
            "1; DELETE FROM sessions",
            "' UNION SELECT password_hash FROM users--",
            "%' OR username LIKE '%",
            "\\' OR 1=1 -- ",
        ];
        for probe in probes {
            let api = app.post_json("/api/token", &json!({"username": probe, "password": probe})).await;
            assert_eq!(api.status(), 401, "token: {probe}");
            let refresh = app.post_json("/api/token/refresh", &json!({"refresh_token": probe})).await;
            assert_eq!(refresh.status(), 401, "refresh: {probe}");
        }
        // In the password of a real account (four tries: the fifth would pause it).
        for probe in &probes[..4] {
            let api = app.post_json("/api/token", &json!({"username": "admin", "password": probe})).await;
            assert_eq!(api.status(), 401, "token password: {probe}");
        }
        for probe in &probes[..3] {
            let html = form_login(&app, probe, probe).await;
            assert!(html.contains("is not right"), "form: {probe}");
        }
        app.login_as(&admin).await;
        for probe in probes {
            let query = serde_urlencoded::to_string([("q", probe), ("role", probe), ("status", probe), ("sort", probe)]).unwrap();
            let status = app.get(&format!("/admin/users?{query}")).await.status();
            assert!(status == 200 || status == 400, "search {probe}: {status}");
            let query = serde_urlencoded::to_string([("q", probe)]).unwrap();
            let html = app.get(&format!("/admin/users?{query}")).await.text().await.unwrap();
            assert!(!html.contains(">alice<"), "search {probe} matched everything");
            let query = serde_urlencoded::to_string([("actor", probe), ("target", probe)]).unwrap();
            let status = app.get(&format!("/admin/audit?{query}")).await.status();
            assert!(status == 200 || status == 400, "audit {probe}: {status}");
        }
        assert_eq!(users_count(&app).await, before, "no row was added or removed");
        assert!(app.api_login(&admin).await.access.len() > 20, "the tables still work");
        assert_no_server_panics();
    }

    async fn oversized_addresses_and_headers_are_refused(app: TestApp) {
        let long_next = "a".repeat(5000);
        let page = app.get(&format!("/login?next={long_next}")).await;
        assert_eq!(page.status(), 414);
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let api = app.get(&format!("/api/me?x={long_next}")).await;
        assert_eq!(api.status(), 414);
        assert_eq!(api.json::<Value>().await.unwrap()["error"], "request_too_large");

        let big = app.client.get(app.url("/login")).header("x-padding", "a".repeat(40_000)).send().await.unwrap();
        assert_eq!(big.status(), 431);
        let token = "a.".repeat(8 * 1024);
        assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 401, "a 16 KiB token is a plain 401");
        app.set_cookie("portcullis", &token);
        assert_eq!(app.get("/dashboard").await.status(), 303);
        assert_no_server_panics();
    }

    async fn compressed_bodies_are_refused_before_parsing(app: TestApp) {
        // A tiny gzip body that would expand to 10 MB.
        let bomb = gzip_of_zeros(10 * 1024 * 1024);
        assert!(bomb.len() < 64 * 1024);
        let api = app
            .client
            .post(app.url("/api/token"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(bomb.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 415);
        assert_eq!(api.json::<Value>().await.unwrap()["error"], "unsupported_media_type");
        let form = app
            .client
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-encoding", "gzip")
            .body(bomb)
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 415);
        assert_no_server_panics();
    }

    async fn malformed_bodies_and_nul_characters_get_400(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        for body in [
            r#"{"username":"alice\u0000","password":"x"}"#.to_owned(),
            format!(r#"{{"username":"alice","password":"{}\u0000"}}"#, user.password),
            r#"{"username":"alice","password":"x""#.to_owned(),
            r#"{"username":["alice"],"password":"x"}"#.to_owned(),
            r#"{"username":"alice","username":"bob","password":"x"}"#.to_owned(),
            "null".to_owned(),
        ] {
            let response = app.post_raw("/api/token", "application/json", body.clone()).await;
            assert_eq!(response.status(), 400, "{body}");
            assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request", "{body}");
        }
        let response = app.post_raw("/api/token", "application/json", vec![0xff, 0xfe, 0x00, 0x7b]).await;
        assert_eq!(response.status(), 400, "binary garbage");
        let csrf = app.login_form_token().await;
        let body = format!("username=alice%00&password=x&csrf_token={csrf}");
        let response = app.post_raw("/login", "application/x-www-form-urlencoded", body).await;
        assert_eq!(response.status(), 400);
        for garbage in ["ey.ey.ey", "Bearer", "....", "%00%00", "eyJhbGciOiJub25lIn0"] {
            assert_eq!(app.get_with_bearer("/api/me", garbage).await.status(), 401, "{garbage:?}");
        }
        assert_no_server_panics();
    }

    async fn a_client_that_sends_its_request_head_too_slowly_is_cut_off(app: TestApp) {
        let address = app.address.trim_start_matches("http://").to_owned();
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(address).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            stream.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n").unwrap();
            // ...and never finishes the head (slowloris).
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        })
        .await
        .unwrap();
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(10), "the connection stayed open {waited:?}");
        assert!(outcome.is_empty() || outcome.starts_with("HTTP/1.1 408"), "{outcome}");
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
}

async fn form_login(app: &TestApp, login: &str, password: &str) -> String {
    let browser = app.browser();
    let html = browser.get("/login").await.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf_token").unwrap();
    browser
        .post_form("/login", &[("username", login), ("password", password), ("csrf_token", &csrf)])
        .await
        .text()
        .await
        .unwrap()
}

/// `size` zero bytes through the system's `gzip` (part of every Debian base system).
fn gzip_of_zeros(size: usize) -> Vec<u8> {
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip is installed");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&vec![0u8; size]).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_responses_carry_hsts_and_cookies_are_secure_host_only() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.public_url = portcullis::config::PublicUrl::parse("https://login.example.com").unwrap();
    })
    .await;

    let response = app.get("/login").await;

    assert_eq!(response.headers()["strict-transport-security"], "max-age=31536000");
    let cookie = set_cookies(&response).into_iter().next().expect("the login nonce cookie");
    assert!(cookie.starts_with("__Host-portcullis-login="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let plain = spawn_app(Backend::Sqlite).await;
    assert!(plain.get("/login").await.headers().get("strict-transport-security").is_none(), "not over plain http");
    app.server.stop(true).await;
    plain.server.stop(true).await;
}
