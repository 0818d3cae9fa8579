//! Pushed authorization requests (RFC 9126): an app sends its authorization request from its
//! server to `/oauth2/par`, authenticated, and the browser carries only the `request_uri` it
//! got — single use, short-lived, bound to the app; an app may be made to push every request.
use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;
use crate::oidc::{App, CALLBACK, exchange, query_of, register};

/// `POST /oauth2/par` with the app's credentials (Basic, or the body's client_id for a public app).
async fn push(app: &TestApp, client: &App, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.post(app.url("/oauth2/par"));
    let mut fields: Vec<(&str, &str)> = fields.to_vec();
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.client_id, Some(secret)),
        None => fields.push(("client_id", &client.client_id)),
    }
    request.form(&fields).send().await.unwrap()
}

const REQUEST: [(&str, &str); 5] = [
    ("response_type", "code"),
    ("redirect_uri", CALLBACK),
    ("scope", "openid profile"),
    ("state", "pushed-state"),
    ("nonce", "pushed-nonce"),
];

async fn pushed_uri(app: &TestApp, client: &App, extra: &[(&str, &str)]) -> String {
    let mut fields = REQUEST.to_vec();
    fields.extend_from_slice(extra);
    let response = push(app, client, &fields).await;
    assert_eq!(response.status(), 201, "RFC 9126 §2.2");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:") && uri.len() > 70, "{uri}");
    uri
}

fn by_reference(client_id: &str, request_uri: &str) -> String {
    format!(
        "/oauth2/authorize?{}",
        serde_urlencoded::to_string([("client_id", client_id), ("request_uri", request_uri)]).unwrap()
    )
}

both_backends! {
    async fn a_pushed_request_signs_in_once_with_only_its_reference_in_the_browser(app: TestApp) {
        let client = register(&app, |_| {}).await;
        let discovery: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(discovery["pushed_authorization_request_endpoint"], format!("{}/oauth2/par", app.issuer));
        let alice = app.create_user("alice", Role::User).await;
        let request_uri = pushed_uri(&app, &client, &[]).await;

        // Not signed in: our sign-in, and the way back names only the reference.
        let answer = app.get(&by_reference(&client.client_id, &request_uri)).await;
        assert_eq!(answer.status(), 303);
        let next = query_of(&format!("http://x{}", location(&answer)))["next"].clone();
        assert!(!next.contains("redirect_uri") && !next.contains("state") && next.contains("request_uri"), "{next}");
        app.login_as(&alice).await;
        let back = app.get(&next).await;

        assert_eq!(back.status(), 303, "{}", back.text().await.unwrap());
        let query = query_of(&location(&back));
        assert!(location(&back).starts_with(CALLBACK));
        assert_eq!(query["state"], "pushed-state", "the pushed state comes back");
        let tokens = exchange(&app, &client, &query["code"]).await;
        assert_eq!(crate::oidc::claims(tokens["id_token"].as_str().unwrap())["nonce"], "pushed-nonce");
        // Used once: the same reference again is refused with a page, no redirect.
        let again = app.get(&by_reference(&client.client_id, &request_uri)).await;
        assert_eq!(again.status(), 400);
        assert!(again.text().await.unwrap().contains("expired or was used already"));
    }

    async fn references_that_are_forged_foreign_or_expired_lead_nowhere(app: TestApp) {
        let wiki = register(&app, |_| {}).await;
        let chat = register(&app, |form| form.name = "Chat".to_owned()).await;
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let request_uri = pushed_uri(&app, &wiki, &[]).await;

        let foreign = app.get(&by_reference(&chat.client_id, &request_uri)).await;
        let forged = app.get(&by_reference(&wiki.client_id, "urn:ietf:params:oauth:request_uri:forged")).await;
        let unknown_kind = app.get(&by_reference(&wiki.client_id, "https://evil.example/request.jwt")).await;
        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::oauth_pushed_requests::dsl::*;
            diesel::update(oauth_pushed_requests).set(expires_at.eq(portcullis::db::users::now() - chrono::Duration::seconds(1))).execute(conn).unwrap();
        }).await;
        let expired = app.get(&by_reference(&wiki.client_id, &request_uri)).await;

        for (what, response) in [("another app's", foreign), ("a forged", forged), ("a URL as", unknown_kind), ("an expired", expired)] {
            assert_eq!(response.status(), 400, "{what} reference");
            assert!(response.headers().get("location").is_none(), "{what} reference redirects nowhere");
        }
    }

    async fn pushing_is_checked_like_the_authorization_request_and_authenticated(app: TestApp) {
        let client = register(&app, |_| {}).await;
        let wrong = App { client_id: client.client_id.clone(), secret: Some("wrong".to_owned()) };
        let unregistered = push(&app, &client, &[("response_type", "code"), ("redirect_uri", "https://evil.example/cb"), ("scope", "openid")]).await;
        let bad_secret = push(&app, &wrong, &REQUEST).await;
        let nested = push(&app, &client, &[("response_type", "code"), ("redirect_uri", CALLBACK), ("request_uri", "urn:x")]).await;
        let no_pkce_public = {
            let public = register(&app, |form| form.public = true).await;
            push(&app, &public, &REQUEST).await
        };
        let not_form = app.client.post(app.url("/oauth2/par")).basic_auth(&client.client_id, client.secret.as_deref()).json(&serde_json::json!({"response_type": "code"})).send().await.unwrap();

        for (what, response, status, error) in [
            ("an unregistered redirect_uri", unregistered, 400, "invalid_request"),
            ("a wrong secret", bad_secret, 401, "invalid_client"),
            ("a nested request_uri", nested, 400, "invalid_request"),
            ("a public app without PKCE", no_pkce_public, 400, "invalid_request"),
            ("a JSON body", not_form, 400, "invalid_request"),
        ] {
            assert_eq!(response.status(), status, "{what}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], error, "{what}: {body}");
        }
    }

    async fn an_app_that_must_push_cannot_be_started_with_a_plain_request(app: TestApp) {
        let client = register(&app, |form| form.require_pushed_requests = true).await;
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let plain = format!(
            "/oauth2/authorize?{}",
            serde_urlencoded::to_string([("client_id", client.client_id.as_str()), ("response_type", "code"), ("redirect_uri", CALLBACK), ("scope", "openid"), ("state", "s")]).unwrap()
        );

        let refused = app.get(&plain).await;

        assert_eq!(refused.status(), 303);
        let query = query_of(&location(&refused));
        assert_eq!(query["error"], "invalid_request");
        assert!(!query.contains_key("code"));
        let request_uri = pushed_uri(&app, &client, &[]).await;
        let pushed = app.get(&by_reference(&client.client_id, &request_uri)).await;
        assert!(query_of(&location(&pushed)).contains_key("code"));
    }

    async fn a_pushed_request_with_prompt_login_asks_once_and_then_goes_on(app: TestApp) {
        let client = register(&app, |_| {}).await;
        let alice = app.create_user("alice", Role::User).await;
        let request_uri = pushed_uri(&app, &client, &[("prompt", "login")]).await;

        let answer = app.get(&by_reference(&client.client_id, &request_uri)).await;
        let next = query_of(&format!("http://x{}", location(&answer)))["next"].clone();
        app.login_as(&alice).await;
        let back = app.get(&next).await;

        assert_eq!(back.status(), 303);
        assert!(location(&back).starts_with(CALLBACK), "the sign-in was the login prompt=login asked for: {}", location(&back));
        assert!(query_of(&location(&back)).contains_key("code"));
    }
}
