//! Apps that register themselves (RFC 7591): off by default; with `token`, only with an
//! initial access token an admin issued (command line or the apps page); with `approval`, an
//! app without a token waits, disabled, for an admin. Metadata is read strictly and the number
//! of registrations is bounded.
use portcullis::config::{DynamicRegistration, Settings};
use portcullis::domain::Role;
use serde_json::{Value, json};

use crate::helpers::*;

async fn register(app: &TestApp, token: Option<&str>, metadata: &Value) -> reqwest::Response {
    let mut request = app.client.post(app.url("/oauth2/register")).json(metadata);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn token_from_command_line(app: &TestApp, args: &[&str]) -> String {
    let mut all = vec!["client", "registration-token", "--json"];
    all.extend_from_slice(args);
    let out = crate::cli::portcullis(app, &all, "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    printed["token"].as_str().unwrap().to_owned()
}

fn wiki() -> Value {
    json!({
        "client_name": "Assistant",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid profile"
    })
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

both_backends! {
    async fn by_default_apps_cannot_register_themselves(app: TestApp) {
        let discovery: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert!(discovery.get("registration_endpoint").is_none(), "{discovery}");

        let refused = register(&app, None, &wiki()).await;

        assert_eq!(error_of(refused).await, (403, "access_denied".to_owned()));
    }
}

fn with_tokens(settings: &mut Settings) {
    settings.dynamic_registration = DynamicRegistration::Token;
}

both_backends_with! { with_tokens;
    async fn an_app_registers_with_a_token_once_and_then_signs_people_in_with_their_consent(app: TestApp) {
        let discovery: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(discovery["registration_endpoint"], format!("{}/oauth2/register", app.issuer));
        let token = token_from_command_line(&app, &["--uses", "1", "--expires", "1h"]);

        assert_eq!(error_of(register(&app, None, &wiki()).await).await, (401, "invalid_token".to_owned()));
        assert_eq!(error_of(register(&app, Some("pcr_forged"), &wiki()).await).await, (401, "invalid_token".to_owned()));
        let registered = register(&app, Some(&token), &wiki()).await;
        assert_eq!(registered.status(), 201);
        assert_eq!(registered.headers()["cache-control"], "no-store");
        let body: Value = registered.json().await.unwrap();
        assert_eq!(body["client_name"], "Assistant");
        assert_eq!(body["token_endpoint_auth_method"], "none");
        assert_eq!(body["redirect_uris"], json!(["http://127.0.0.1:33418/callback"]));
        assert!(body.get("client_secret").is_none(), "a public app has no secret");
        let used_up = register(&app, Some(&token), &wiki()).await;
        assert_eq!(error_of(used_up).await, (401, "invalid_token".to_owned()), "a one-use token works once");

        // The app signs a user in, and asks their consent first (nobody vetted it).
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let challenge = portcullis::oauth::flow::s256("a-verifier-of-forty-three-or-more-characters-for-dcr-000");
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", body["client_id"].as_str().unwrap()),
            ("redirect_uri", "http://127.0.0.1:33418/callback"),
            ("scope", "openid profile"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]).unwrap();
        let page = app.get(&format!("/oauth2/authorize?{query}")).await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("Sign in to Assistant?"));
        assert!(app.audit_actions().await.contains(&"app.registered".to_owned()));
    }

    async fn hostile_metadata_is_refused_with_the_reason_and_spends_nothing(app: TestApp) {
        let token = token_from_command_line(&app, &["--uses", "2"]);
        let many: Vec<String> = (0..21).map(|n| format!("https://app.example/cb/{n}")).collect();
        let ten_thousand: Vec<String> = (0..10_000).map(|n| format!("https://a.ex/{n}")).collect();
        let cases: Vec<(&str, Value, &str)> = vec![
            ("a javascript: address", json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid_redirect_uri"),
            ("a data: address", json!({"redirect_uris": ["data:text/html,<script>alert(1)</script>"]}), "invalid_redirect_uri"),
            ("a fragment", json!({"redirect_uris": ["https://app.example/cb#x"]}), "invalid_redirect_uri"),
            ("plain http elsewhere", json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri"),
            ("no address", json!({"client_name": "x"}), "invalid_redirect_uri"),
            ("21 addresses", json!({"redirect_uris": many}), "invalid_redirect_uri"),
            ("not a list", json!({"redirect_uris": "https://app.example/cb"}), "invalid_redirect_uri"),
            ("client_credentials", json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["client_credentials"]}), "invalid_client_metadata"),
            ("implicit", json!({"redirect_uris": ["https://app.example/cb"], "response_types": ["token"]}), "invalid_client_metadata"),
            ("an http back-channel", json!({"redirect_uris": ["https://app.example/cb"], "backchannel_logout_uri": "http://10.0.0.1/admin"}), "invalid_client_metadata"),
            ("a long name", json!({"redirect_uris": ["https://app.example/cb"], "client_name": "x".repeat(5000)}), "invalid_client_metadata"),
            ("an unknown scope", json!({"redirect_uris": ["https://app.example/cb"], "scope": "openid admin"}), "invalid_client_metadata"),
            ("an unknown method", json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}), "invalid_client_metadata"),
            ("not an object", json!(["https://app.example/cb"]), "invalid_client_metadata"),
        ];
        for (what, metadata, error) in cases {
            let (status, code) = error_of(register(&app, Some(&token), &metadata).await).await;
            assert_eq!((status, code.as_str()), (400, error), "{what}");
        }
        let (status, _) = error_of(register(&app, Some(&token), &json!({"redirect_uris": ten_thousand})).await).await;
        assert_eq!(status, 413, "10,000 addresses are more than a registration may send (16 KiB)");
        let huge = format!("{{\"redirect_uris\": [\"https://app.example/cb\"], \"client_name\": \"{}\"}}", "x".repeat(1 << 20));
        let too_big = app.client.post(app.url("/oauth2/register")).bearer_auth(&token).header("content-type", "application/json").body(huge).send().await.unwrap();
        assert_eq!(too_big.status(), 413, "a 1 MB document");
        let not_json = app.client.post(app.url("/oauth2/register")).bearer_auth(&token).header("content-type", "application/json").body("{not json").send().await.unwrap();
        assert_eq!(error_of(not_json).await, (400, "invalid_client_metadata".to_owned()));
        let form = app.client.post(app.url("/oauth2/register")).bearer_auth(&token).form(&[("redirect_uris", "https://app.example/cb")]).send().await.unwrap();
        assert_eq!(error_of(form).await, (400, "invalid_client_metadata".to_owned()));
        // None of those spent the token: both its registrations are left.
        for _ in 0..2 {
            assert_eq!(register(&app, Some(&token), &json!({"redirect_uris": ["https://app.example/cb"]})).await.status(), 201);
        }
        assert_eq!(register(&app, Some(&token), &json!({"redirect_uris": ["https://app.example/cb"]})).await.status(), 401);
    }

    async fn an_admin_makes_a_token_on_the_apps_page_and_an_expired_one_is_refused(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let list = app.get("/admin/apps").await.text().await.unwrap();
        assert!(list.contains("Apps that register themselves") && list.contains("Make a registration token"), "{list}");

        let made = app.post_form("/admin/apps/registration-tokens", &[("csrf_token", &csrf), ("days", "7"), ("uses", "3")]).await;

        assert_eq!(made.status(), 200);
        let html = made.text().await.unwrap();
        let token = html.split("id=\"registration-token\">").nth(1).and_then(|rest| rest.split('<').next()).unwrap().to_owned();
        assert!(token.starts_with("pcr_"), "{token}");
        assert!(app.get("/admin/apps").await.text().await.unwrap().contains(">3<"), "three registrations left are listed");
        assert_eq!(register(&app, Some(&token), &wiki()).await.status(), 201);
        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::oauth_registration_tokens::dsl::*;
            diesel::update(oauth_registration_tokens).set(expires_at.eq(portcullis::db::users::now() - chrono::Duration::seconds(1))).execute(conn).unwrap();
        }).await;
        assert_eq!(error_of(register(&app, Some(&token), &wiki()).await).await, (401, "invalid_token".to_owned()));
        let bad = app.post_form("/admin/apps/registration-tokens", &[("csrf_token", &csrf), ("days", "9999"), ("uses", "1")]).await;
        assert_eq!(bad.status(), 303, "out-of-range values make nothing and say so");
    }
}

fn with_approval(settings: &mut Settings) {
    settings.dynamic_registration = DynamicRegistration::Approval;
}

both_backends_with! { with_approval;
    async fn without_a_token_an_app_waits_for_an_admin_and_the_waiting_list_is_bounded(app: TestApp) {
        let registered = register(&app, None, &wiki()).await;
        assert_eq!(registered.status(), 201);
        let body: Value = registered.json().await.unwrap();
        assert_eq!(body["portcullis_status"], "waiting_for_approval");
        let client_id = body["client_id"].as_str().unwrap().to_owned();
        let alice = app.create_user("alice", Role::User).await;
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&alice).await;
        let authorize = format!(
            "/oauth2/authorize?{}",
            serde_urlencoded::to_string([("response_type", "code"), ("client_id", client_id.as_str()), ("redirect_uri", "http://127.0.0.1:33418/callback"), ("scope", "openid")]).unwrap()
        );
        let waiting = app.get(&authorize).await;
        assert_eq!(waiting.status(), 400, "a waiting app signs nobody in");
        assert!(waiting.headers().get("location").is_none());

        let admins = app.in_new_browser();
        admins.login_as(&admin).await;
        let list = admins.get("/admin/apps").await.text().await.unwrap();
        assert!(list.contains("Waiting for approval"), "{list}");
        let id = app.with_conn({
            let client_id = client_id.clone();
            move |conn| portcullis::db::oauth::find_client_by_client_id(conn, &client_id).unwrap().unwrap().id
        }).await;
        let csrf = admins.session_csrf_token().await;
        let approved = admins.post_form(&format!("/admin/apps/{id}/approve"), &[("csrf_token", &csrf)]).await;
        assert_eq!(approved.status(), 303);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let page = app.get(&authorize).await;
        assert!(page.status() == 200 || page.status() == 303, "approved, it works: {}", page.status());

        // Strangers fill the waiting list at most: then only registrations with a token go on.
        let mut statuses = Vec::new();
        for _ in 0..60 {
            statuses.push(register(&app, None, &wiki()).await.status().as_u16());
        }
        assert_eq!(statuses.iter().filter(|status| **status == 201).count(), 50, "{statuses:?}");
        assert!(statuses[50..].iter().all(|status| *status == 400));
        let token = token_from_command_line(&app, &[]);
        assert_eq!(register(&app, Some(&token), &wiki()).await.status(), 201, "a token still registers");
    }
}
