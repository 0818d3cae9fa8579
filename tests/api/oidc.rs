//! The OpenID Connect provider, behaviour by behaviour as the OpenID Foundation's Basic OP
//! test plan names them (our own tests; none of its code), plus the attacks on it: apps are
//! registered, users sign in through our own pages and come back with a code, the code becomes
//! tokens once, and the tokens end with the session.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;

pub(crate) const CALLBACK: &str = "https://app.example.test/callback";

pub(crate) struct App {
    pub client_id: String,
    pub secret: Option<String>,
}

/// Registers an app the way the command line and the admin pages do (the service layer).
pub(crate) async fn register(
    app: &TestApp,
    adjust: impl FnOnce(&mut portcullis::oauth::ClientForm) + Send + 'static,
) -> App {
    app.with_conn(move |conn| {
        let mut form = portcullis::oauth::ClientForm {
            name: "Wiki".to_owned(),
            redirect_uris: format!("{CALLBACK}\nhttp://127.0.0.1/native"),
            ..Default::default()
        };
        adjust(&mut form);
        let valid = portcullis::oauth::ValidClient::parse(&form, 900).expect("valid app settings");
        let created =
            portcullis::oauth::clients::create(conn, &portcullis::db::audit::Actor::command_line(), &valid).unwrap();
        App { client_id: created.client.client_id, secret: created.secret }
    })
    .await
}

pub(crate) fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let url = reqwest::Url::parse(location).unwrap_or_else(|_| panic!("an absolute address: {location:?}"));
    url.query_pairs().map(|(name, value)| (name.into_owned(), value.into_owned())).collect()
}

pub(crate) fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub(crate) fn header(jwt: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap()
}

const VERIFIER: &str = "a-long-random-verifier-of-forty-three-or-more-characters-0123456789";

fn challenge() -> String {
    portcullis::oauth::flow::s256(VERIFIER)
}

fn authorize_path(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email"),
        ("state", "state-123"),
        ("nonce", "nonce-456"),
    ];
    for (name, value) in extra {
        params.retain(|(existing, _)| existing != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    format!("/oauth2/authorize?{}", serde_urlencoded::to_string(&params).unwrap())
}

/// The app's answer after a signed-in browser asks for a code (no consent asked).
pub(crate) async fn code_for(app: &TestApp, client: &App, extra: &[(&str, &str)]) -> String {
    let response = app.get(&authorize_path(&client.client_id, extra)).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let query = query_of(&location(&response));
    assert_eq!(query.get("state").map(String::as_str), Some("state-123"));
    assert_eq!(query.get("iss"), Some(&app.issuer), "RFC 9207");
    query.get("code").cloned().unwrap_or_else(|| panic!("a code: {query:?}"))
}

/// `POST /oauth2/token` with `client_secret_basic` (or the body's client_id for a public app).
async fn token(app: &TestApp, client: &App, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.post(app.url("/oauth2/token"));
    let mut fields: Vec<(&str, &str)> = fields.to_vec();
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.client_id, Some(secret)),
        None => fields.push(("client_id", &client.client_id)),
    }
    request.form(&fields).send().await.unwrap()
}

pub(crate) async fn exchange(app: &TestApp, client: &App, code: &str) -> Value {
    let response =
        token(app, client, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK)]).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn userinfo(app: &TestApp, access_token: &str) -> reqwest::Response {
    app.client.get(app.url("/oauth2/userinfo")).bearer_auth(access_token).send().await.unwrap()
}

/// Verifies an ID token's signature with the JWKS the discovery document names.
pub(crate) async fn verify_id_token(app: &TestApp, id_token: &str, client_id: &str) -> Value {
    let alg = header(id_token)["alg"].as_str().unwrap().to_owned();
    let kid = header(id_token)["kid"].as_str().unwrap().to_owned();
    let discovery: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    assert!(jwks_uri.starts_with(&app.issuer));
    let jwks: Value = app.get(&jwks_uri[app.issuer.len()..]).await.json().await.unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .expect("the ID token's key is published")
        .clone();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let algorithm: jsonwebtoken::Algorithm = alg.parse().unwrap();
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[app.issuer.as_str()]);
    jsonwebtoken::decode::<Value>(id_token, &decoding, &validation)
        .expect("the ID token verifies with the published key")
        .claims
}

both_backends! {
    async fn the_discovery_document_says_exactly_what_is_supported(app: TestApp) {
        let discovery: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(discovery["issuer"], app.issuer.as_str());
        for endpoint in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint"] {
            let address = discovery[endpoint].as_str().unwrap_or_else(|| panic!("{endpoint}"));
            assert!(address.starts_with(&app.issuer), "{endpoint}: {address}");
        }
        assert_eq!(discovery["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(discovery["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert!(discovery["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&"RS256".into()));
        assert_eq!(discovery["authorization_response_iss_parameter_supported"], true);
        assert_eq!(discovery["request_parameter_supported"], false);
        let oauth: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
        assert_eq!(oauth, discovery, "RFC 8414 and OpenID Discovery describe the same server");
    }

    async fn an_anonymous_visitor_signs_in_with_our_form_and_the_app_gets_tokens_that_verify(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        let client = register(&app, |_| {}).await;
        let path = authorize_path(&client.client_id, &[]);
        let response = app.get(&path).await;
        assert_eq!(response.status(), 303);
        let login = location(&response);
        assert!(login.starts_with("/login?next="), "{login}");
        let next = query_of(&app.url(&login))["next"].clone();
        let response = app.login_with_next("alice", &alice.password, &next).await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), next, "back to the request after signing in");
        let response = app.get(&next).await;
        assert_eq!(response.status(), 303);
        let query = query_of(&location(&response));
        assert!(location(&response).starts_with(CALLBACK));
        assert_eq!(query["state"], "state-123");
        assert_eq!(query["iss"], app.issuer);
        let tokens = exchange(&app, &client, &query["code"]).await;
        assert_eq!(tokens["token_type"], "Bearer");
        assert!(tokens["refresh_token"].as_str().is_some_and(|token| token.len() >= 43));
        let id_token = tokens["id_token"].as_str().unwrap();
        assert_eq!(header(id_token)["alg"], "RS256", "RS256 is the default");
        let id = verify_id_token(&app, id_token, &client.client_id).await;
        assert_eq!(id["sub"], alice.id.to_string());
        assert_eq!(id["nonce"], "nonce-456");
        assert_eq!(id["email"], format!("{}@example.com", "alice"));
        assert_eq!(id["preferred_username"], "alice");
        for claim in ["auth_time", "iat", "exp", "sid", "at_hash", "amr"] {
            assert!(!id[claim].is_null(), "{claim}: {id}");
        }
        // at_hash: the left half of SHA-256 of the access token (OpenID Connect Core 3.1.3.6).
        let access = tokens["access_token"].as_str().unwrap();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
        assert_eq!(id["at_hash"], URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]));
        // RFC 9068: the access token is a JWT for the app.
        assert_eq!(header(access)["typ"], "at+jwt");
        assert_eq!(claims(access)["aud"], client.client_id.as_str());
        assert_eq!(claims(access)["client_id"], client.client_id.as_str());
        // Our own API refuses it: it is the app's, not ours.
        assert_eq!(app.get_with_bearer("/api/me", access).await.status(), 401);
        // Userinfo by GET, POST with the header, POST with the body.
        let by_get: Value = userinfo(&app, access).await.json().await.unwrap();
        assert_eq!(by_get["sub"], alice.id.to_string());
        assert_eq!(by_get["email"], "alice@example.com");
        assert_eq!(by_get["email_verified"], true);
        let by_post = app.client.post(app.url("/oauth2/userinfo")).bearer_auth(access).send().await.unwrap();
        assert_eq!(by_post.json::<Value>().await.unwrap(), by_get);
        let by_body = app.client.post(app.url("/oauth2/userinfo")).form(&[("access_token", access)]).send().await.unwrap();
        assert_eq!(by_body.json::<Value>().await.unwrap(), by_get);
        let none = app.client.get(app.url("/oauth2/userinfo")).send().await.unwrap();
        assert_eq!(none.status(), 401);
        assert!(none.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        assert_no_server_panics();
    }

    async fn a_signed_in_user_goes_straight_through_and_client_secret_post_works(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let client = register(&app, |_| {}).await;
        let code = code_for(&app, &client, &[]).await;
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.secret.as_deref().unwrap()),
        ];
        let response = app.client.post(app.url("/oauth2/token")).form(&fields).send().await.unwrap();
        assert_eq!(response.status(), 200, "client_secret_post");
        // A wrong secret: 401 invalid_client, audited.
        let code = code_for(&app, &client, &[]).await;
        let wrong = App { client_id: client.client_id.clone(), secret: Some("wrong".into()) };
        let response = token(&app, &wrong, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)]).await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_client");
        let audited = app.with_conn(|conn| portcullis::db::audit::page(conn, &Default::default(), 20).unwrap().0).await;
        assert!(audited.iter().any(|event| event.action == "app.auth_failed"));
    }

    async fn errors_before_the_app_is_known_get_a_page_and_the_rest_go_back_to_the_app(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let client = register(&app, |_| {}).await;
        // Unknown client, unregistered or varied redirect URIs: a page, never a redirect.
        let unknown = app.get(&authorize_path("no-such-app", &[])).await;
        assert_eq!(unknown.status(), 400);
        assert!(location(&unknown).is_empty());
        for variant in [
            "https://app.example.test/callback/",
            "https://APP.example.test/callback",
            "https://app.example.test/Callback",
            "https://user@app.example.test/callback",
            "https://app.example.test/x/../callback",
            "https://app.example.test/callback?extra=1",
            "https://evil.example/callback",
            "",
        ] {
            let response = app.get(&authorize_path(&client.client_id, &[("redirect_uri", variant)])).await;
            assert_eq!(response.status(), 400, "{variant}");
            assert!(location(&response).is_empty(), "never redirected to {variant}");
            assert!(response.text().await.unwrap().contains("not registered"), "{variant}");
        }
        // A native app's loopback address may name any port (RFC 8252).
        let native = app.get(&authorize_path(&client.client_id, &[("redirect_uri", "http://127.0.0.1:49152/native")])).await;
        assert_eq!(native.status(), 303);
        assert!(location(&native).starts_with("http://127.0.0.1:49152/native?code="));
        for (extra, error) in [
            (vec![("response_type", "")], "invalid_request"),
            (vec![("response_type", "token")], "unsupported_response_type"),
            (vec![("request", "eyJhbGciOiJub25lIn0.e30.")], "request_not_supported"),
            (vec![("scope", "nothing-we-know")], "invalid_scope"),
            (vec![("code_challenge", "abc"), ("code_challenge_method", "plain")], "invalid_request"),
            (vec![("prompt", "none login")], "invalid_request"),
            (vec![("max_age", "soon")], "invalid_request"),
            (vec![("id_token_hint", "not.a.token")], "invalid_request"),
        ] {
            let response = app.get(&authorize_path(&client.client_id, &extra)).await;
            assert_eq!(response.status(), 303, "{extra:?}");
            let query = query_of(&location(&response));
            assert!(location(&response).starts_with(CALLBACK));
            assert_eq!(query["error"], error, "{extra:?}");
            assert_eq!(query["state"], "state-123");
            assert_eq!(query["iss"], app.issuer);
        }
        // A request_uri names a pushed request (RFC 9126); one we never stored gets a page.
        let unknown = app.get(&authorize_path(&client.client_id, &[("request_uri", "https://evil.example/r")])).await;
        assert_eq!(unknown.status(), 400);
        assert!(unknown.headers().get("location").is_none());
        // Unknown parameters and acr_values are accepted (and ignored); POST works like GET.
        code_for(&app, &client, &[("unknown_thing", "x"), ("acr_values", "urn:mace:incommon:iap:silver")]).await;
        let fields = [("response_type", "code"), ("client_id", client.client_id.as_str()), ("redirect_uri", CALLBACK), ("scope", "openid"), ("state", "s")];
        let posted = app.post_form("/oauth2/authorize", &fields).await;
        assert_eq!(posted.status(), 303);
        assert!(query_of(&location(&posted)).contains_key("code"), "POST to the authorization endpoint");
    }

    async fn prompt_none_max_age_and_prompt_login_follow_openid_connect(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        let client = register(&app, |_| {}).await;
        // Not signed in: prompt=none answers login_required without showing anything.
        let response = app.get(&authorize_path(&client.client_id, &[("prompt", "none")])).await;
        assert_eq!(query_of(&location(&response))["error"], "login_required");
        app.login_as(&alice).await;
        let first = exchange(&app, &client, &code_for(&app, &client, &[("prompt", "none")]).await).await;
        let first_id = claims(first["id_token"].as_str().unwrap());
        // max_age=10000: the sign-in is recent enough.
        code_for(&app, &client, &[("max_age", "10000")]).await;
        // max_age=1 after two seconds, and prompt=login: "Confirm it is you", then the code.
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        for extra in [("max_age", "1"), ("prompt", "login")] {
            let silent = app.get(&authorize_path(&client.client_id, &[extra, ("prompt", if extra.0 == "prompt" { "login" } else { "none" })])).await;
            if extra.0 == "max_age" {
                assert_eq!(query_of(&location(&silent))["error"], "login_required", "max_age with prompt=none");
            }
            let response = app.get(&authorize_path(&client.client_id, &[extra])).await;
            assert_eq!(response.status(), 303);
            let confirm = location(&response);
            assert!(confirm.starts_with("/account/security/confirm?next="), "{confirm}");
            let next = query_of(&app.url(&confirm))["next"].clone();
            let csrf = app.session_csrf_token().await;
            let confirmed = app.post_form("/account/security/confirm", &[("current_password", alice.password.as_str()), ("next", &next), ("csrf_token", &csrf)]).await;
            assert_eq!(confirmed.status(), 303);
            assert_eq!(location(&confirmed), next);
            let back = app.get(&next).await;
            let code = query_of(&location(&back))["code"].clone();
            let tokens = exchange(&app, &client, &code).await;
            let id = claims(tokens["id_token"].as_str().unwrap());
            assert!(id["auth_time"].as_i64() > first_id["auth_time"].as_i64(), "{extra:?}: a newer auth_time");
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        // id_token_hint naming the signed-in user: straight through, even with prompt=none.
        let hint = first["id_token"].as_str().unwrap();
        code_for(&app, &client, &[("prompt", "none"), ("id_token_hint", hint)]).await;
        // An unsigned copy of it is refused.
        let unsigned = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#), hint.split('.').nth(1).unwrap());
        let response = app.get(&authorize_path(&client.client_id, &[("id_token_hint", &unsigned)])).await;
        assert_eq!(query_of(&location(&response))["error"], "invalid_request");
        // The nonce is optional for the code flow.
        let tokens = exchange(&app, &client, &code_for(&app, &client, &[("nonce", "")]).await).await;
        assert!(claims(tokens["id_token"].as_str().unwrap()).get("nonce").is_none());
    }

    async fn login_hint_fills_in_the_sign_in_form(app: TestApp) {
        let client = register(&app, |_| {}).await;
        let response = app.get(&authorize_path(&client.client_id, &[("login_hint", "alice@example.com")])).await;
        let login = location(&response);
        assert!(login.contains("login_hint=alice%40example.com"), "{login}");
        let page = app.get(&login).await.text().await.unwrap();
        assert!(page.contains(r#"value="alice@example.com""#), "the username field is filled in");
    }

    async fn scopes_decide_the_claims(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let client = register(&app, |_| {}).await;
        let only_openid = exchange(&app, &client, &code_for(&app, &client, &[("scope", "openid")]).await).await;
        let info: Value = userinfo(&app, only_openid["access_token"].as_str().unwrap()).await.json().await.unwrap();
        assert_eq!(info, serde_json::json!({"sub": alice.id.to_string()}));
        assert_eq!(only_openid["scope"], "openid");
        let profile = exchange(&app, &client, &code_for(&app, &client, &[("scope", "openid profile")]).await).await;
        let info: Value = userinfo(&app, profile["access_token"].as_str().unwrap()).await.json().await.unwrap();
        assert_eq!(info["preferred_username"], "alice");
        assert!(info.get("email").is_none());
        let email = exchange(&app, &client, &code_for(&app, &client, &[("scope", "openid email")]).await).await;
        let info: Value = userinfo(&app, email["access_token"].as_str().unwrap()).await.json().await.unwrap();
        assert_eq!(info["email"], "alice@example.com");
        assert!(info.get("name").is_none());
    }

    async fn a_code_works_once_and_its_second_use_revokes_every_token_issued_from_it(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let client = register(&app, |_| {}).await;
        let code = code_for(&app, &client, &[]).await;
        let tokens = exchange(&app, &client, &code).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&app, access).await.status(), 200);
        let again = token(&app, &client, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)]).await;
        assert_eq!(again.status(), 400);
        assert_eq!(again.json::<Value>().await.unwrap()["error"], "invalid_grant");
        assert_eq!(userinfo(&app, access).await.status(), 401, "refused at once on this instance");
        let refresh = token(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
        assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "invalid_grant");
    }

    async fn a_code_used_again_thirty_seconds_later_still_revokes_its_tokens(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let client = register(&app, |_| {}).await;
        let code = code_for(&app, &client, &[]).await;
        let tokens = exchange(&app, &client, &code).await;
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        let again = token(&app, &client, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)]).await;
        assert_eq!(again.json::<Value>().await.unwrap()["error"], "invalid_grant");
        assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.status(), 401);
    }

    async fn pkce_is_required_of_public_apps_and_cannot_be_downgraded(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let public = register(&app, |form| form.public = true).await;
        assert!(public.secret.is_none());
        let response = app.get(&authorize_path(&public.client_id, &[])).await;
        assert_eq!(query_of(&location(&response))["error"], "invalid_request", "a public app without PKCE");
        let challenge = challenge();
        let pkce = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];
        let code = code_for(&app, &public, &pkce).await;
        let without = token(&app, &public, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)]).await;
        assert_eq!(without.json::<Value>().await.unwrap()["error"], "invalid_grant", "the verifier is missing");
        let code = code_for(&app, &public, &pkce).await;
        let wrong = "b-long-random-verifier-of-forty-three-or-more-characters-0123456789";
        let response = token(&app, &public, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", wrong)]).await;
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_grant");
        let code = code_for(&app, &public, &pkce).await;
        let response = token(&app, &public, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)]).await;
        assert_eq!(response.status(), 200, "the right verifier");
        // A confidential app may skip PKCE, but a verifier for a code without a challenge is a downgrade.
        let confidential = register(&app, |_| {}).await;
        let code = code_for(&app, &confidential, &[]).await;
        let response = token(&app, &confidential, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)]).await;
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_grant");
    }

    async fn a_code_stolen_into_another_app_is_refused(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let victim = register(&app, |_| {}).await;
        let attacker = register(&app, |form| form.name = "Other".into()).await;
        let code = code_for(&app, &victim, &[]).await;
        let response = token(&app, &attacker, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)]).await;
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_grant");
        let wrong_redirect = token(&app, &victim, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1/native")]).await;
        assert_eq!(wrong_redirect.json::<Value>().await.unwrap()["error"], "invalid_grant");
        exchange(&app, &victim, &code).await;
    }

    async fn refresh_tokens_rotate_detect_reuse_and_end_with_the_session(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let client = register(&app, |_| {}).await;
        let tokens = exchange(&app, &client, &code_for(&app, &client, &[]).await).await;
        let first = tokens["refresh_token"].as_str().unwrap();
        let renewed = token(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", first)]).await;
        assert_eq!(renewed.status(), 200);
        let renewed: Value = renewed.json().await.unwrap();
        let second = renewed["refresh_token"].as_str().unwrap();
        assert_ne!(first, second, "rotated");
        assert!(renewed["id_token"].is_string());
        let reused = token(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", first)]).await;
        assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");
        let after = token(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", second)]).await;
        assert_eq!(after.json::<Value>().await.unwrap()["error"], "invalid_grant", "the whole grant ended");
        assert_eq!(userinfo(&app, renewed["access_token"].as_str().unwrap()).await.status(), 401);
        // Signing out of Portcullis ends what the app holds.
        let tokens = exchange(&app, &client, &code_for(&app, &client, &[]).await).await;
        let csrf = app.session_csrf_token().await;
        assert_eq!(app.post_form("/logout", &[("csrf_token", &csrf)]).await.status(), 303);
        assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.status(), 401, "sign-out reaches the app's access token");
        let refresh = token(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
        assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "invalid_grant");
    }

    async fn one_session_signing_in_to_an_app_again_and_again_keeps_twenty_grants(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let client = register(&app, |_| {}).await;
        let first = exchange(&app, &client, &code_for(&app, &client, &[]).await).await;
        for _ in 0..portcullis::oauth::flow::GRANTS_PER_SESSION {
            exchange(&app, &client, &code_for(&app, &client, &[]).await).await;
        }
        let live: i64 = app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::oauth_grants;
            oauth_grants::table.filter(oauth_grants::revoked_at.is_null()).count().get_result(conn).unwrap()
        }).await;
        assert_eq!(live, portcullis::oauth::flow::GRANTS_PER_SESSION, "the oldest ended");
        assert_eq!(userinfo(&app, first["access_token"].as_str().unwrap()).await.status(), 401);
        let refresh = token(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())]).await;
        assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "invalid_grant");
    }

    async fn a_disabled_user_cannot_refresh_and_a_disabled_app_stops_within_two_seconds(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let alice = app.create_user("alice", Role::User).await;
        let browser = app.in_new_browser();
        browser.login_as(&alice).await;
        let client = register(&app, |_| {}).await;
        let tokens = exchange(&app, &client, &code_for(&browser, &client, &[]).await).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        assert_eq!(app.post_form(&format!("/admin/users/{}/disable", alice.id), &[("csrf_token", &csrf)]).await.status(), 303);
        let refresh = token(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
        assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "invalid_grant", "a disabled user's refresh");
        assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.status(), 401);
        // Another user's tokens, then the app is disabled.
        let bob = app.create_user("bob", Role::User).await;
        let other = app.in_new_browser();
        other.login_as(&bob).await;
        let tokens = exchange(&app, &client, &code_for(&other, &client, &[]).await).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&app, access).await.status(), 200);
        let second = spawn_second_instance(&app).await;
        assert_eq!(userinfo(&second, access).await.status(), 200);
        let id = app.with_conn({
            let client_id = client.client_id.clone();
            move |conn| portcullis::db::oauth::find_client_by_client_id(conn, &client_id).unwrap().unwrap().id
        }).await;
        app.with_conn(move |conn| portcullis::oauth::clients::set_enabled(conn, &portcullis::db::audit::Actor::command_line(), id, false).unwrap()).await;
        let started = std::time::Instant::now();
        while userinfo(&second, access).await.status() == 200 {
            assert!(started.elapsed() < std::time::Duration::from_secs(2), "a disabled app's tokens stop within 2 s");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let refresh = token(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
        assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "invalid_client");
        second.server.stop(true).await;
    }

    async fn introspection_and_revocation_answer_only_for_the_apps_own_tokens(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let a = register(&app, |_| {}).await;
        let b = register(&app, |form| form.name = "Other".into()).await;
        let tokens = exchange(&app, &a, &code_for(&app, &a, &[]).await).await;
        let access = tokens["access_token"].as_str().unwrap();
        let introspect = |client: &App, token: String| {
            let request = app.client.post(app.url("/oauth2/introspect")).basic_auth(&client.client_id, client.secret.as_deref()).form(&[("token", token)]);
            async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let own = introspect(&a, access.to_owned()).await;
        assert_eq!(own["active"], true);
        assert_eq!(own["client_id"], a.client_id.as_str());
        assert_eq!(own["sub"], alice.id.to_string());
        assert_eq!(introspect(&b, access.to_owned()).await, serde_json::json!({"active": false}), "A's token at B");
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(introspect(&a, refresh.clone()).await["active"], true);
        assert_eq!(introspect(&b, refresh.clone()).await["active"], false);
        assert_eq!(introspect(&a, "garbage".into()).await, serde_json::json!({"active": false}));
        // B revoking A's token changes nothing; A revoking it ends the grant.
        let revoke = |client: &App, token: String| {
            let request = app.client.post(app.url("/oauth2/revoke")).basic_auth(&client.client_id, client.secret.as_deref()).form(&[("token", token)]);
            async move { request.send().await.unwrap().status() }
        };
        assert_eq!(revoke(&b, refresh.clone()).await, 200);
        assert_eq!(introspect(&a, refresh.clone()).await["active"], true);
        assert_eq!(revoke(&a, refresh.clone()).await, 200);
        assert_eq!(introspect(&a, refresh).await["active"], false);
        assert_eq!(userinfo(&app, access).await.status(), 401, "revoking the refresh token ends its access tokens");
        // An access token revoked by itself.
        let tokens = exchange(&app, &a, &code_for(&app, &a, &[]).await).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(revoke(&a, access.clone()).await, 200);
        assert_eq!(userinfo(&app, &access).await.status(), 401);
    }

    async fn client_credentials_is_for_confidential_apps_acting_as_themselves(app: TestApp) {
        let client = register(&app, |_| {}).await;
        let response = token(&app, &client, &[("grant_type", "client_credentials")]).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert!(answer.get("refresh_token").is_none() && answer.get("id_token").is_none());
        let access = answer["access_token"].as_str().unwrap();
        assert_eq!(claims(access)["sub"], client.client_id.as_str());
        assert_eq!(userinfo(&app, access).await.status(), 401, "no user behind it");
        let public = register(&app, |form| form.public = true).await;
        let response = token(&app, &public, &[("grant_type", "client_credentials")]).await;
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "unauthorized_client");
        let response = token(&app, &client, &[("grant_type", "password")]).await;
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
        let response = app.client.post(app.url("/oauth2/token")).basic_auth(&client.client_id, client.secret.as_deref())
            .body("grant_type=client_credentials&grant_type=client_credentials").header("content-type", "application/x-www-form-urlencoded").send().await.unwrap();
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request", "a parameter given twice");
        let response = app.client.post(app.url("/oauth2/token")).json(&serde_json::json!({"grant_type": "client_credentials"})).send().await.unwrap();
        assert_eq!(response.status(), 400, "JSON is not a form");
    }

    async fn consent_is_asked_once_needs_our_csrf_token_and_can_be_refused(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let client = register(&app, |form| { form.ask_consent = true; form.name = "Third Party".into(); }).await;
        let path = authorize_path(&client.client_id, &[]);
        let page = app.get(&path).await;
        assert_eq!(page.status(), 200);
        let frame = page.headers().get("x-frame-options").map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(frame.as_deref(), Some("DENY"), "the consent page cannot be framed");
        let html = page.text().await.unwrap();
        assert!(html.contains("Sign in to Third Party?") && html.contains("Your e-mail address"), "{html}");
        let mut fields: Vec<(String, String)> = query_of(&app.url(&path)).into_iter().collect();
        fields.push(("decision".into(), "allow".into()));
        // Without our CSRF token (a page of another site posting it): refused.
        let forged = app.post_form("/oauth2/authorize/consent", &fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect::<Vec<_>>()).await;
        assert_eq!(forged.status(), 403);
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let mut deny = fields.clone();
        deny.retain(|(name, _)| name != "decision");
        deny.push(("decision".into(), "deny".into()));
        deny.push(("csrf_token".into(), csrf.clone()));
        let denied = app.post_form("/oauth2/authorize/consent", &deny.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect::<Vec<_>>()).await;
        assert_eq!(query_of(&location(&denied))["error"], "access_denied");
        fields.push(("csrf_token".into(), csrf));
        let allowed = app.post_form("/oauth2/authorize/consent", &fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect::<Vec<_>>()).await;
        assert!(query_of(&location(&allowed)).contains_key("code"));
        // Remembered: the next time goes straight through; prompt=consent asks again.
        code_for(&app, &client, &[]).await;
        assert_eq!(app.get(&authorize_path(&client.client_id, &[("prompt", "consent")])).await.status(), 200);
        let silent = app.get(&authorize_path(&client.client_id, &[("prompt", "none"), ("scope", "openid groups")])).await;
        assert_eq!(query_of(&location(&silent))["error"], "consent_required", "a scope not yet allowed");
    }

    async fn only_the_groups_an_app_names_may_use_it(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        let client = register(&app, |form| form.allowed_groups = "wiki-editors".into()).await;
        let response = app.get(&authorize_path(&client.client_id, &[])).await;
        assert_eq!(query_of(&location(&response))["error"], "access_denied");
        let admins_only = register(&app, |form| form.allowed_roles = vec!["admin".into()]).await;
        let response = app.get(&authorize_path(&admins_only.client_id, &[])).await;
        assert_eq!(query_of(&location(&response))["error"], "access_denied");
    }
}

both_backends! {
    async fn an_admin_adds_an_app_sees_its_secret_once_edits_disables_and_deletes_it(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let bad = app.post_form("/admin/apps/new", &[("csrf_token", &csrf), ("name", ""), ("redirect_uris", "http://wiki.example.test/cb#x"), ("kind", "confidential")]).await;
        assert_eq!(bad.status(), 422);
        let html = bad.text().await.unwrap();
        assert!(html.contains("Enter a name") && html.contains("fragment"), "{html}");
        let created = app.post_form("/admin/apps/new", &[("csrf_token", &csrf), ("name", "Grafana"), ("redirect_uris", "https://grafana.example.test/login/generic_oauth"), ("kind", "confidential"), ("allowed_groups", "ops")]).await;
        assert_eq!(created.status(), 200);
        let html = created.text().await.unwrap();
        let client_id = html.split("id=\"client-id\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        let secret = html.split("id=\"client-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        assert_eq!(secret.len(), 43, "256 bits in base64url");
        let (id, stored) = app.with_conn({
            let client_id = client_id.clone();
            move |conn| {
                let row = portcullis::db::oauth::find_client_by_client_id(conn, &client_id).unwrap().unwrap();
                (row.id, row.secret_hash.unwrap())
            }
        }).await;
        assert!(!stored.contains(&secret), "only a hash is kept");
        let page = app.get(&format!("/admin/apps/{id}")).await.text().await.unwrap();
        assert!(page.contains(&client_id) && !page.contains(&secret), "the secret is never shown again");
        assert!(app.get("/admin/apps").await.text().await.unwrap().contains("Grafana"));
        let saved = app.post_form(&format!("/admin/apps/{id}/edit"), &[("csrf_token", &csrf), ("name", "Grafana (ops)"), ("redirect_uris", "https://grafana.example.test/login/generic_oauth"), ("id_token_alg", "ES256"), ("access_token_minutes", "5")]).await;
        assert_eq!(saved.status(), 303);
        let client = App { client_id: client_id.clone(), secret: Some(secret.clone()) };
        assert_eq!(token(&app, &client, &[("grant_type", "client_credentials")]).await.status(), 200);
        let rotated = app.post_form(&format!("/admin/apps/{id}/rotate-secret"), &[("csrf_token", &csrf)]).await.text().await.unwrap();
        let new_secret = rotated.split("id=\"client-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        assert_eq!(token(&app, &client, &[("grant_type", "client_credentials")]).await.status(), 401, "the old secret stopped");
        let client = App { client_id: client_id.clone(), secret: Some(new_secret) };
        let answer: Value = token(&app, &client, &[("grant_type", "client_credentials")]).await.json().await.unwrap();
        assert_eq!(answer["expires_in"], 300, "the edited lifetime");
        assert_eq!(app.post_form(&format!("/admin/apps/{id}/disable"), &[("csrf_token", &csrf)]).await.status(), 303);
        assert_eq!(userinfo(&app, answer["access_token"].as_str().unwrap()).await.status(), 401);
        assert_eq!(token(&app, &client, &[("grant_type", "client_credentials")]).await.status(), 401, "a disabled app");
        assert_eq!(app.post_form(&format!("/admin/apps/{id}/enable"), &[("csrf_token", &csrf)]).await.status(), 303);
        assert_eq!(token(&app, &client, &[("grant_type", "client_credentials")]).await.status(), 200);
        let confirm = app.get(&format!("/admin/apps/{id}/delete")).await.text().await.unwrap();
        assert!(confirm.contains("Delete Grafana (ops)?"));
        assert_eq!(app.post_form(&format!("/admin/apps/{id}/delete"), &[("csrf_token", &csrf)]).await.status(), 303);
        assert_eq!(app.get(&format!("/admin/apps/{id}")).await.status(), 404);
        let audit: Vec<String> = app.with_conn(|conn| portcullis::db::audit::page(conn, &Default::default(), 50).unwrap().0.into_iter().map(|event| event.action).collect()).await;
        for action in ["app.create", "app.update", "app.secret_rotated", "app.disable", "app.enable", "app.delete"] {
            assert!(audit.iter().any(|done| done == action), "{action} audited: {audit:?}");
        }
        // Without the CSRF token nothing changes.
        assert_eq!(app.post_form("/admin/apps/new", &[("name", "X"), ("redirect_uris", CALLBACK)]).await.status(), 403);
    }

    async fn a_user_sees_their_connected_apps_and_disconnecting_one_ends_its_tokens(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let alice = app.create_user("alice", Role::User).await;
        let browser = app.in_new_browser();
        browser.login_as(&alice).await;
        let client = register(&app, |form| form.name = "Team wiki".into()).await;
        let tokens = exchange(&app, &client, &code_for(&browser, &client, &[]).await).await;
        let page = browser.get("/account/apps").await.text().await.unwrap();
        assert!(page.contains("Team wiki") && page.contains("Your e-mail address"), "{page}");
        app.login_as(&admin).await;
        let user_page = app.get(&format!("/admin/users/{}", alice.id)).await.text().await.unwrap();
        assert!(user_page.contains("Team wiki"), "admins see a user's connected apps");
        let id = app.with_conn({
            let client_id = client.client_id.clone();
            move |conn| portcullis::db::oauth::find_client_by_client_id(conn, &client_id).unwrap().unwrap().id
        }).await;
        let csrf = browser.session_csrf_token().await;
        let done = browser.post_form(&format!("/account/apps/{id}/disconnect"), &[("csrf_token", &csrf)]).await;
        assert_eq!(done.status(), 303);
        assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.status(), 401);
        let refresh = token(&app, &client, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
        assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "invalid_grant");
        assert!(browser.get("/account/apps").await.text().await.unwrap().contains("No apps yet"));
    }

    async fn the_command_line_adds_lists_rotates_and_deletes_apps(app: TestApp) {
        let out = crate::cli::portcullis(&app, &["client", "create", "--name", "Gitea", "--redirect-uri", CALLBACK, "--json"], "");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let created: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        let client_id = created["client_id"].as_str().unwrap().to_owned();
        let secret = created["client_secret"].as_str().unwrap().to_owned();
        let client = App { client_id: client_id.clone(), secret: Some(secret) };
        assert_eq!(token(&app, &client, &[("grant_type", "client_credentials")]).await.status(), 200);
        let public = crate::cli::portcullis(&app, &["client", "create", "--name", "CLI tool", "--redirect-uri", "http://127.0.0.1/cb", "--public", "--json"], "");
        let public: Value = serde_json::from_slice(&public.stdout).unwrap();
        assert!(public["client_secret"].is_null());
        let list = String::from_utf8(crate::cli::portcullis(&app, &["client", "list"], "").stdout).unwrap();
        assert!(list.contains(&client_id) && list.contains("Gitea") && list.contains("public"), "{list}");
        let rotated = crate::cli::portcullis(&app, &["client", "rotate-secret", &client_id, "--json"], "");
        assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
        let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
        // The server keeps what it read of an app for a second (another process changed it).
        refused_within_two_seconds(&app, &client).await;
        let client = App { client_id: client_id.clone(), secret: rotated["client_secret"].as_str().map(str::to_owned) };
        assert_eq!(token(&app, &client, &[("grant_type", "client_credentials")]).await.status(), 200);
        let bad = crate::cli::portcullis(&app, &["client", "create", "--name", "Bad", "--redirect-uri", "http://example.test/cb"], "");
        assert!(!bad.status.success());
        assert!(String::from_utf8_lossy(&bad.stderr).contains("https"), "a clear reason");
        let deleted = crate::cli::portcullis(&app, &["client", "delete", &client_id], "");
        assert!(deleted.status.success());
        refused_within_two_seconds(&app, &client).await;
        let missing = crate::cli::portcullis(&app, &["client", "delete", "nope"], "");
        assert!(!missing.status.success());
    }

}

/// Behind a proxy we trust, so that clients have addresses of their own.
fn behind_a_proxy(settings: &mut portcullis::config::Settings) {
    settings.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

both_backends_with! { behind_a_proxy;
    async fn wrong_client_secrets_pause_that_address_only(app: TestApp) {
        let client = register(&app, |_| {}).await;
        let from = |address: &'static str, secret: Option<String>| {
            let request = app.client.post(app.url("/oauth2/token")).basic_auth(&client.client_id, secret)
                .header("x-forwarded-for", address).form(&[("grant_type", "client_credentials")]);
            async move { request.send().await.unwrap() }
        };
        let mut paused = false;
        for _ in 0..12 {
            let response = from("198.51.100.7", Some("wrong".into())).await;
            assert_eq!(response.status(), 401);
            if response.headers().contains_key("retry-after") {
                paused = true;
                break;
            }
        }
        assert!(paused, "repeated wrong secrets are throttled");
        let stranger = from("198.51.100.7", client.secret.clone()).await;
        assert_eq!(stranger.status(), 401, "that address waits, even with the right secret");
        let owner = from("203.0.113.9", client.secret.clone()).await;
        assert_eq!(owner.status(), 200, "the app elsewhere is not locked out");
    }
}

/// The real default: administrators must use two-step sign-in.
fn default_policy(settings: &mut portcullis::config::Settings) {
    settings.mfa_required = portcullis::config::MfaPolicy::default();
}

both_backends_with! { default_policy;
    async fn under_the_default_policy_an_admin_signs_in_to_an_app_with_the_second_step(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let enrolled = crate::second_factor::enrol(&app).await;
        let csrf = app.session_csrf_token().await;
        assert_eq!(app.post_form("/logout", &[("csrf_token", &csrf)]).await.status(), 303);
        let client = register(&app, |_| {}).await;
        let response = app.get(&authorize_path(&client.client_id, &[])).await;
        let next = query_of(&app.url(&location(&response)))["next"].clone();
        let password = app.login_with_next("root", &admin.password, &next).await;
        assert_eq!(location(&password), "/login/second-step");
        let done = crate::second_factor::second_step(&app, "totp", &enrolled.app.next_code()).await;
        assert_eq!(done.status(), 303);
        assert_eq!(location(&done), next, "back to the app's request after the second step");
        let tokens = exchange(&app, &client, &code_for(&app, &client, &[]).await).await;
        let id = verify_id_token(&app, tokens["id_token"].as_str().unwrap(), &client.client_id).await;
        let amr: Vec<&str> = id["amr"].as_array().unwrap().iter().map(|value| value.as_str().unwrap()).collect();
        assert!(amr.contains(&"pwd") && amr.contains(&"otp"), "{amr:?}");
        assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.status(), 200);
    }
}

both_backends_with! { default_policy;
    async fn an_admin_who_must_set_up_two_step_sign_in_is_sent_there_not_round_in_circles(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let client = register(&app, |_| {}).await;
        let response = app.get(&authorize_path(&client.client_id, &[])).await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/account/security", "set up a second factor first");
        let silent = app.get(&authorize_path(&client.client_id, &[("prompt", "none")])).await;
        assert_eq!(query_of(&location(&silent))["error"], "interaction_required");
    }
}

/// `client_credentials` for `client` answers 401 within two seconds.
async fn refused_within_two_seconds(app: &TestApp, client: &App) {
    let started = std::time::Instant::now();
    while token(app, client, &[("grant_type", "client_credentials")]).await.status() != 401 {
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "still accepted after 2 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An access token for the app, from the code flow of the app's (signed-in) browser.
pub(crate) async fn access_token_for(app: &TestApp, client: &App) -> String {
    let code = code_for(app, client, &[]).await;
    exchange(app, client, &code).await["access_token"].as_str().unwrap().to_owned()
}

/// An ID token for the app, from the code flow of the app's (signed-in) browser.
pub(crate) async fn id_token_for(app: &TestApp, client: &App) -> String {
    let code = code_for(app, client, &[]).await;
    exchange(app, client, &code).await["id_token"].as_str().unwrap().to_owned()
}

mod sign_out_asked_by_an_app {
    //! OpenID Connect RP-Initiated Logout 1.0: `end_session_endpoint` with `id_token_hint`,
    //! `client_id`, a registered `post_logout_redirect_uri` and `state`.
    use super::*;

    const AFTER: &str = "https://app.example.test/signed-out";

    async fn registered(app: &TestApp) -> App {
        register(app, |form| form.post_logout_redirect_uris = AFTER.into()).await
    }

    fn logout_path(params: &[(&str, &str)]) -> String {
        format!("/oauth2/logout?{}", serde_urlencoded::to_string(params).unwrap())
    }

    both_backends! {
        async fn with_the_sessions_own_id_token_the_sign_out_is_immediate_and_returns_to_the_app(app: TestApp) {
            let alice = app.create_user("alice", Role::User).await;
            app.login_as(&alice).await;
            let client = registered(&app).await;
            let tokens = exchange(&app, &client, &code_for(&app, &client, &[]).await).await;
            let discovery: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
            assert_eq!(discovery["end_session_endpoint"], format!("{}/oauth2/logout", app.issuer));
            let hint = tokens["id_token"].as_str().unwrap();
            let response = app.get(&logout_path(&[("id_token_hint", hint), ("post_logout_redirect_uri", AFTER), ("state", "bye")])).await;
            assert_eq!(response.status(), 303);
            assert_eq!(location(&response), format!("{AFTER}?state=bye"));
            assert_eq!(app.get("/dashboard").await.status(), 303, "signed out of Portcullis");
            assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.status(), 401, "and of the app");
        }

        async fn without_proof_a_confirmation_page_asks_first_with_our_csrf_token(app: TestApp) {
            let alice = app.create_user("alice", Role::User).await;
            app.login_as(&alice).await;
            let client = registered(&app).await;
            let page = app.get(&logout_path(&[("client_id", &client.client_id), ("post_logout_redirect_uri", AFTER)])).await;
            assert_eq!(page.status(), 200);
            let html = page.text().await.unwrap();
            assert!(html.contains("Sign out of Portcullis?") && html.contains("Wiki asks to sign you out"), "{html}");
            assert_eq!(app.get("/dashboard").await.status(), 200, "nothing happened yet");
            let fields = [("client_id", client.client_id.as_str()), ("post_logout_redirect_uri", AFTER)];
            let forged = app.post_form("/oauth2/logout/confirm", &fields).await;
            assert_eq!(forged.status(), 403, "without the CSRF token");
            let csrf = hidden_field(&html, "csrf_token").unwrap();
            let done = app.post_form("/oauth2/logout/confirm", &[fields[0], fields[1], ("csrf_token", csrf.as_str())]).await;
            assert_eq!(done.status(), 303);
            assert_eq!(location(&done), AFTER);
            assert_eq!(app.get("/dashboard").await.status(), 303);
            // Someone else's ID token is no proof: the page asks.
            let bob = app.create_user("bob", Role::User).await;
            let other = app.in_new_browser();
            other.login_as(&bob).await;
            let bobs = exchange(&app, &client, &code_for(&other, &client, &[]).await).await;
            app.login_as(&alice).await;
            let foreign = app.get(&logout_path(&[("id_token_hint", bobs["id_token"].as_str().unwrap())])).await;
            assert_eq!(foreign.status(), 200, "a foreign id_token_hint gets the confirmation page");
            assert_eq!(app.get("/dashboard").await.status(), 200);
        }

        async fn unregistered_addresses_forged_hints_and_strangers_are_refused(app: TestApp) {
            let alice = app.create_user("alice", Role::User).await;
            app.login_as(&alice).await;
            let client = registered(&app).await;
            let other = register(&app, |form| form.name = "Other".into()).await;
            let hint = exchange(&app, &client, &code_for(&app, &client, &[]).await).await["id_token"].as_str().unwrap().to_owned();
            let forged = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#), hint.split('.').nth(1).unwrap());
            for (params, why) in [
                (vec![("client_id", client.client_id.as_str()), ("post_logout_redirect_uri", "https://evil.example/")], "an unregistered address"),
                (vec![("client_id", client.client_id.as_str()), ("post_logout_redirect_uri", "https://app.example.test/signed-out/")], "a variant of the address"),
                (vec![("post_logout_redirect_uri", AFTER)], "an address without saying which app"),
                (vec![("id_token_hint", forged.as_str())], "an unsigned ID token"),
                (vec![("id_token_hint", hint.as_str()), ("client_id", other.client_id.as_str())], "a hint of another app"),
                (vec![("client_id", "no-such-app")], "an unknown app"),
            ] {
                let response = app.get(&logout_path(&params)).await;
                assert_eq!(response.status(), 400, "{why}");
                assert!(location(&response).is_empty(), "{why}: never redirected");
            }
            assert_eq!(app.get("/dashboard").await.status(), 200, "still signed in");
            // Not signed in: straight to the registered address, or our sign-in page.
            let stranger = app.in_new_browser();
            let response = stranger.get(&logout_path(&[("client_id", &client.client_id), ("post_logout_redirect_uri", AFTER), ("state", "s")])).await;
            assert_eq!(location(&response), format!("{AFTER}?state=s"));
            assert_eq!(location(&stranger.get("/oauth2/logout").await), "/login");
        }
    }
}
