use portcullis::domain::Role;
use serde_json::{Value, json};

use crate::helpers::*;

both_backends! {
    async fn a_script_exchanges_a_username_and_password_for_a_bearer_token(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;

        let response = app.post_json("/api/token", &json!({"username": "alice", "password": user.password})).await;

        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900, "access tokens live 15 minutes by default");
        assert_eq!(body["refresh_expires_in"], 8 * 3600, "the idle timeout");
        assert!(body["refresh_token"].as_str().unwrap().len() >= 43, "256 random bits");
        assert_eq!(body["user"], json!({"id": user.id, "username": "alice", "email": user.email, "role": "user"}));
        let token = body["token"].as_str().unwrap();
        assert_eq!(app.get_with_bearer("/api/me", token).await.status(), 200);
    }

    async fn the_token_carries_the_registered_claims_and_a_pinned_type(app: TestApp) {
        use base64::Engine;
        let user = app.create_user("bob", Role::User).await;
        let token = app.api_token(&user).await;
        let decode = |part: &str| -> Value {
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
        };
        let parts: Vec<&str> = token.split('.').collect();

        let header = decode(parts[0]);
        let claims = decode(parts[1]);

        assert_eq!(header["alg"], "EdDSA", "the default: anyone can check it, only we can make it");
        assert_eq!(header["typ"], "at+jwt");
        for claim in ["sub", "preferred_username", "name", "role", "pwc", "iat", "nbf", "exp", "iss", "aud", "jti", "sid"] {
            assert!(claims.get(claim).is_some(), "missing {claim}");
        }
        assert_eq!(claims["sub"], user.id.to_string());
        assert_eq!(claims["iss"], app.issuer);
        assert_eq!(claims["aud"], "portcullis");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    }

    async fn a_script_can_use_the_email_instead_of_the_username(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;

        let response = app.post_json("/api/token", &json!({"email": "Carol@Example.com", "password": user.password})).await;

        assert_eq!(response.status(), 200);
    }

    async fn bad_credentials_get_the_same_401_whatever_the_cause(app: TestApp) {
        app.create_user("dave", Role::User).await;
        let disabled = app.create_user("erin", Role::User).await;
        let id = disabled.id;
        app.with_conn(move |conn| portcullis::db::users::set_active(conn, id, false).unwrap()).await;

        let mut bodies = Vec::new();
        for body in [json!({"username": "dave", "password": "wrong password"}),
                     json!({"username": "nobody", "password": PASSWORD}),
                     json!({"username": "erin", "password": PASSWORD}),
                     json!({"email": "nobody@example.com", "password": PASSWORD})] {
            let response = app.post_json("/api/token", &body).await;
            assert_eq!(response.status(), 401);
            bodies.push(response.text().await.unwrap());
        }
        assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
        assert!(bodies[0].contains("invalid_credentials"));
    }

    async fn missing_fields_and_malformed_json_get_a_400_that_says_what_is_wrong(app: TestApp) {
        let cases: [(&str, &str); 7] = [
            (r#"{"username": "alice"}"#, "password"),
            (r#"{"password": "x"}"#, "username"),
            (r#"{"username": "a", "email": "a@example.com", "password": "x"}"#, "not both"),
            (r#"{"username": "", "password": ""}"#, "must not be empty"),
            (r#"{"username": 5, "password": "x"}"#, "invalid type"),
            (r#"{"username": "alice", "password": "#, "EOF"),
            (r#"[1, 2, 3]"#, "invalid type"),
        ];
        for (body, expected) in cases {
            let response = app.post_raw("/api/token", "application/json", body).await;

            assert_eq!(response.status(), 400, "{body}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"], "invalid_request");
            assert!(error["message"].as_str().unwrap().contains(expected), "{body}: {error}");
        }
    }

    async fn a_non_json_or_oversized_body_is_refused_with_a_json_error(app: TestApp) {
        let form = app.post_raw("/api/token", "application/x-www-form-urlencoded", "username=a&password=b").await;
        assert_eq!(form.status(), 415);
        assert_eq!(form.json::<Value>().await.unwrap()["error"], "unsupported_media_type");

        let huge = format!(r#"{{"username": "alice", "password": "{}"}}"#, "x".repeat(100_000));
        let oversized = app.post_raw("/api/token", "application/json", huge).await;
        assert_eq!(oversized.status(), 413);
        assert_eq!(oversized.json::<Value>().await.unwrap()["error"], "payload_too_large");

        let nul = app.post_raw("/api/token", "application/json", b"{\"username\": \"a\xff\", \"password\": \"x\"}".to_vec()).await;
        assert_eq!(nul.status(), 400);
    }

    async fn unknown_api_paths_get_a_json_404_and_wrong_methods_are_refused(app: TestApp) {
        let user = app.create_user("frank", Role::User).await;
        let token = app.api_token(&user).await;

        let missing = app.get_with_bearer("/api/nope", &token).await;
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.json::<Value>().await.unwrap()["error"], "not_found");

        let get_token = app.get("/api/token").await;
        assert!(get_token.status().is_client_error(), "{}", get_token.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_endpoint_its_errors_and_the_bearer_scheme() {
    let app = spawn_app(Backend::Sqlite).await;

    let response = app.get("/api/openapi.json").await;

    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/token", "post"),
        ("/api/token/refresh", "post"),
        ("/api/logout", "post"),
        ("/api/me", "get"),
        ("/api/users/{id}", "get"),
    ] {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.contains_key("401") || path == "/api/token/refresh" || path == "/api/token", "{path}");
    }
    // The passkey script's JSON calls, with the same error contract.
    for path in [
        "/api/token/mfa",
        "/login/passkey/options",
        "/login/passkey",
        "/login/second-step/passkey/options",
        "/login/second-step/passkey",
        "/account/security/passkeys/options",
        "/account/security/passkeys",
    ] {
        let responses = paths[path]["post"]["responses"].as_object().unwrap_or_else(|| panic!("{path} undocumented"));
        assert_eq!(
            responses["400"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ApiErrorBody"
        );
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(paths["/api/me"]["get"]["security"][0]["bearer"], json!([]));
    for schema in ["ApiErrorBody", "TokenResponse", "SignIn", "RefreshRequest", "UserJson", "Me"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema} missing");
    }
    let token_fields = doc["components"]["schemas"]["TokenResponse"]["required"].as_array().unwrap();
    for field in ["token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"] {
        assert!(token_fields.contains(&json!(field)), "{field}");
    }
    // Each operation, called for real, answers with a documented status and a body that has
    // every field its schema requires: the document and the code agree.
    let admin = app.create_user("admin", portcullis::domain::Role::Admin).await;
    let login = app.post_json("/api/token", &json!({"username": "admin", "password": admin.password})).await;
    let tokens: Value = check_against(&doc, "/api/token", "post", login).await.unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refreshed = app.post_json("/api/token/refresh", &json!({"refresh_token": refresh_token})).await;
    let tokens = check_against(&doc, "/api/token/refresh", "post", refreshed).await.unwrap();
    let access = tokens["token"].as_str().unwrap().to_owned();
    check_against(&doc, "/api/me", "get", app.get_with_bearer("/api/me", &access).await).await;
    let user = app.get_with_bearer(&format!("/api/users/{}", admin.id), &access).await;
    check_against(&doc, "/api/users/{id}", "get", user).await;
    check_against(&doc, "/api/users/{id}", "get", app.get_with_bearer("/api/users/999999", &access).await).await;
    check_against(&doc, "/api/me", "get", app.get("/api/me").await).await;
    let logout = app.client.post(app.url("/api/logout")).bearer_auth(&access).send().await.unwrap();
    check_against(&doc, "/api/logout", "post", logout).await;
    app.server.stop(true).await;
}

/// Asserts the response's status is documented for the operation and its JSON body has every
/// field the documented schema requires; returns the body.
async fn check_against(doc: &Value, path: &str, method: &str, response: reqwest::Response) -> Option<Value> {
    let status = response.status().as_u16().to_string();
    let documented = &doc["paths"][path][method]["responses"][&status];
    assert!(documented.is_object(), "{method} {path} answered {status}, which is not documented");
    let reference = documented["content"]["application/json"]["schema"]["$ref"].as_str()?;
    let schema = &doc["components"]["schemas"][reference.rsplit('/').next().unwrap()];
    let body: Value = response.json().await.unwrap();
    for field in schema["required"].as_array().into_iter().flatten() {
        assert!(body.get(field.as_str().unwrap()).is_some(), "{method} {path} {status}: no {field} in {body}");
    }
    Some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_on_an_api_address_is_a_json_405_naming_the_right_one() {
    let app = spawn_app(Backend::Sqlite).await;
    for (method, path, allow) in [
        ("PUT", "/api/me", "GET, HEAD, OPTIONS"),
        ("GET", "/api/token", "POST, OPTIONS"),
        ("DELETE", "/api/users/1", "GET, HEAD, OPTIONS"),
    ] {
        let response = app
            .client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow);
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "method_not_allowed");
    }
    let unknown = app.get("/api/nothing-here").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"], "not_found");
    app.server.stop(true).await;
}

/// `POST /api/logout` with a Bearer token: the status.
async fn api_logout(app: &TestApp, access: &str) -> u16 {
    app.client.post(app.url("/api/logout")).bearer_auth(access).send().await.unwrap().status().as_u16()
}

// `POST /api/token/refresh` and `POST /api/logout`: rotation, reuse detection, ending a session.
both_backends! {
    async fn a_refresh_rotates_the_refresh_token_and_issues_a_new_access_token(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let first = app.api_login(&user).await;

        let response = app.post_json("/api/token/refresh", &json!({"refresh_token": first.refresh})).await;

        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["refresh_expires_in"], 8 * 3600);
        let second = body["refresh_token"].as_str().unwrap();
        assert_ne!(second, first.refresh, "rotated");
        assert_ne!(body["token"].as_str().unwrap(), first.access);
        assert_eq!(app.get_with_bearer("/api/me", body["token"].as_str().unwrap()).await.status(), 200);
        assert!(app.api_refresh(second).await.is_ok(), "the new refresh token works once");
    }

    async fn reusing_a_retired_refresh_token_ends_the_session_and_is_recorded(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let stolen = app.api_login(&user).await;
        let legitimate = app.api_refresh(&stolen.refresh).await.expect("first refresh");

        assert_eq!(app.api_refresh(&stolen.refresh).await.err(), Some(401), "the retired token is refused");

        assert_eq!(app.api_refresh(&legitimate.refresh).await.err(), Some(401), "the whole session is revoked");
        assert_eq!(app.get_with_bearer("/api/me", &legitimate.access).await.status(), 401);
        assert_eq!(app.get_with_bearer("/api/me", &stolen.access).await.status(), 401);
        let reuse = app.audit_details().await.into_iter().find(|(action, ..)| action == "session.refresh_reused");
        let (_, _, target, details) = reuse.expect("a security event in the audit trail");
        assert_eq!(target.as_deref(), Some("alice"));
        assert!(details.contains("revoked"), "{details}");
        // A fresh login still works: reuse ends the session, it does not lock the account.
        assert!(!app.api_login(&user).await.access.is_empty());
    }

    async fn the_refresh_endpoint_answers_bad_input_with_json_errors(app: TestApp) {
        let response = app.post_json("/api/token/refresh", &json!({})).await;
        assert_eq!(response.status(), 400);
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request");

        for token in ["", "garbage", &"x".repeat(5000), "' OR 1=1 --"] {
            let response = app.post_json("/api/token/refresh", &json!({"refresh_token": token})).await;
            assert_eq!(response.status(), 401, "{token:.20}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_refresh_token");
            assert!(body.get("token").is_none());
        }
        let response = app.post_raw("/api/token/refresh", "application/json", "{not json").await;
        assert_eq!(response.status(), 400);
    }

    async fn an_access_token_is_not_a_refresh_token_nor_the_reverse(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let tokens = app.api_login(&user).await;

        assert_eq!(app.api_refresh(&tokens.access).await.err(), Some(401));
        assert_eq!(app.get_with_bearer("/api/me", &tokens.refresh).await.status(), 401);
        assert!(app.api_refresh(&tokens.refresh).await.is_ok(), "and neither mistake harmed the session");
    }

    async fn api_logout_ends_the_session_for_its_access_and_refresh_tokens(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let tokens = app.api_login(&user).await;
        let other = app.api_login(&user).await;

        assert_eq!(api_logout(&app, &tokens.access).await, 204);

        assert_eq!(app.get_with_bearer("/api/me", &tokens.access).await.status(), 401);
        assert_eq!(app.api_refresh(&tokens.refresh).await.err(), Some(401));
        assert_eq!(app.get_with_bearer("/api/me", &other.access).await.status(), 200, "other sessions go on");
        assert_eq!(api_logout(&app, &tokens.access).await, 401, "twice is refused, not an error");
    }
}
