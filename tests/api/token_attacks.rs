//! Forged and broken tokens, each tried as a Bearer token (API) and as the cookie (pages), on an
//! installation that signs with the shared secret (HS256), where a forger who had it could
//! sign anything: every other flaw must still be caught. (Forgeries against EdDSA keys are in
//! `signing_keys`.)
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::domain::Role;
use serde_json::{Value, json};

use crate::helpers::*;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hs(key: &[u8], algorithm: hmac::Algorithm, input: &str) -> String {
    b64(hmac::sign(&hmac::Key::new(algorithm, key), input.as_bytes()).as_ref())
}

/// Signs any header and claims with HMAC-SHA256, exactly as given (the server's `kid` is
/// added to a header that names none, so each forgery fails for its own flaw).
fn sign_raw(key: &[u8], kid: &str, header: &str, claims: &Value) -> String {
    let input = format!("{}.{}", b64(with_kid(header, kid).as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = hs(key, hmac::HMAC_SHA256, &input);
    format!("{input}.{signature}")
}

const HEADER: &str = r#"{"typ":"at+jwt","alg":"HS256"}"#;

fn with_kid(header: &str, kid: &str) -> String {
    if header.contains("\"kid\"") {
        header.to_owned()
    } else {
        header.replacen('{', &format!(r#"{{"kid":"{kid}","#), 1)
    }
}

fn claims(app: &TestApp, user: &TestUser, role: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user.id.to_string(), "preferred_username": user.username, "name": user.username, "pwc": false,
           "role": role, "sid": "sid-test", "jti": "jti-test",
           "iat": now, "nbf": now, "exp": now + 600, "iss": app.issuer, "aud": "portcullis"})
}

fn with(mut value: Value, key: &str, new: Value) -> Value {
    value[key] = new;
    value
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().unwrap().remove(key);
    value
}

/// Every way a token can be wrong, with a name for the failure message.
fn forgeries(app: &TestApp, user: &TestUser) -> Vec<(&'static str, String)> {
    let key = app.jwt_secret.as_bytes();
    let kid = app.kid();
    let good = claims(app, user, "user");
    let valid = sign_raw(key, &kid, HEADER, &good);
    let (unsigned, signature) = valid.rsplit_once('.').unwrap();
    let now = chrono::Utc::now().timestamp();
    let encoded_claims = b64(good.to_string().as_bytes());
    let with_header = |header: &str| format!("{}.{encoded_claims}", b64(with_kid(header, &kid).as_bytes()));

    let mut cases = vec![
        ("empty signature", format!("{unsigned}.")),
        ("truncated signature", format!("{unsigned}.{}", &signature[..signature.len() - 4])),
        ("signature from another key", sign_raw(b"another-secret-that-is-long-enough-0123456789", &kid, HEADER, &good)),
        (
            "signature from another token",
            format!("{}.{signature}", with_header(r#"{"typ":"at+jwt","alg":"HS256","cty":"x"}"#)),
        ),
        (
            "tampered role",
            format!(
                "{}.{}.{signature}",
                unsigned.split('.').next().unwrap(),
                b64(with(good.clone(), "role", json!("admin")).to_string().as_bytes())
            ),
        ),
        (
            "expired",
            sign_raw(key, &kid, HEADER, &with(with(good.clone(), "exp", json!(now - 120)), "iat", json!(now - 900))),
        ),
        ("not yet valid", sign_raw(key, &kid, HEADER, &with(good.clone(), "nbf", json!(now + 120)))),
        ("exp as a string", sign_raw(key, &kid, HEADER, &with(good.clone(), "exp", json!((now + 600).to_string())))),
        ("nbf as a string", sign_raw(key, &kid, HEADER, &with(good.clone(), "nbf", json!(now.to_string())))),
        ("no exp", sign_raw(key, &kid, HEADER, &without(good.clone(), "exp"))),
        ("no nbf", sign_raw(key, &kid, HEADER, &without(good.clone(), "nbf"))),
        ("no iss", sign_raw(key, &kid, HEADER, &without(good.clone(), "iss"))),
        ("no aud", sign_raw(key, &kid, HEADER, &without(good.clone(), "aud"))),
        ("wrong iss", sign_raw(key, &kid, HEADER, &with(good.clone(), "iss", json!("https://evil.test")))),
        ("wrong aud", sign_raw(key, &kid, HEADER, &with(good.clone(), "aud", json!("someone-else")))),
        // Without the key, changing a claim breaks the signature.
        (
            "sub changed, signature kept",
            format!(
                "{}.{}.{signature}",
                b64(with_kid(HEADER, &kid).as_bytes()),
                b64(with(good.clone(), "sub", json!("999999")).to_string().as_bytes())
            ),
        ),
        (
            "role changed, signature kept",
            format!(
                "{}.{}.{signature}",
                b64(with_kid(HEADER, &kid).as_bytes()),
                b64(with(good.clone(), "role", json!("admin")).to_string().as_bytes())
            ),
        ),
        ("sub not a number", sign_raw(key, &kid, HEADER, &with(good.clone(), "sub", json!("1 OR 1=1")))),
        ("role claim not a role", sign_raw(key, &kid, HEADER, &with(good.clone(), "role", json!("root")))),
        ("pwc claim missing", sign_raw(key, &kid, HEADER, &without(good.clone(), "pwc"))),
        ("pwc claim a string", sign_raw(key, &kid, HEADER, &with(good.clone(), "pwc", json!("false")))),
        (
            "no kid",
            format!(
                "{}.{}",
                b64(HEADER.as_bytes()),
                hs(key, hmac::HMAC_SHA256, &format!("{}.{}", b64(HEADER.as_bytes()), encoded_claims))
            ),
        ),
        (
            "kid the server did not issue",
            sign_raw(key, &kid, r#"{"typ":"at+jwt","alg":"HS256","kid":"other-key"}"#, &good),
        ),
        (
            "kid path traversal",
            sign_raw(key, &kid, r#"{"typ":"at+jwt","alg":"HS256","kid":"../../../../dev/null"}"#, &good),
        ),
        (
            "kid SQL injection",
            sign_raw(key, &kid, r#"{"typ":"at+jwt","alg":"HS256","kid":"x' UNION SELECT 'secret"}"#, &good),
        ),
        ("kid not a string", sign_raw(key, &kid, r#"{"typ":"at+jwt","alg":"HS256","kid":1}"#, &good)),
        ("no typ", sign_raw(key, &kid, r#"{"alg":"HS256"}"#, &good)),
        ("typ JWT", sign_raw(key, &kid, r#"{"typ":"JWT","alg":"HS256"}"#, &good)),
        (
            "embedded jwk",
            sign_raw(key, &kid, r#"{"typ":"at+jwt","alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}}"#, &good),
        ),
        ("jku", sign_raw(key, &kid, r#"{"typ":"at+jwt","alg":"HS256","jku":"http://127.0.0.1:9/keys"}"#, &good)),
        ("x5u", sign_raw(key, &kid, r#"{"typ":"at+jwt","alg":"HS256","x5u":"http://127.0.0.1:9/cert"}"#, &good)),
        ("crit", sign_raw(key, &kid, r#"{"typ":"at+jwt","alg":"HS256","crit":["exp"]}"#, &good)),
        ("duplicate alg keys", sign_raw(key, &kid, r#"{"typ":"at+jwt","alg":"none","alg":"HS256"}"#, &good)),
        ("garbage", "not-a-token".to_owned()),
        ("three dots of garbage", "a.b.c".to_owned()),
        ("16 KiB", format!("{}.{}.{}", "e".repeat(8192), "e".repeat(8192), "e".repeat(100))),
    ];
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"typ":"at+jwt","alg":"{none}"}}"#);
        cases.push(("alg none, no signature", format!("{}.", with_header(&header))));
        cases.push(("alg none, kept signature", format!("{}.{signature}", with_header(&header))));
    }
    for (name, algorithm, alg) in [
        ("HS384 with the same secret", hmac::HMAC_SHA384, "HS384"),
        ("HS512 with the same secret", hmac::HMAC_SHA512, "HS512"),
    ] {
        let input = with_header(&format!(r#"{{"typ":"at+jwt","alg":"{alg}"}}"#));
        cases.push((name, format!("{input}.{}", hs(key, algorithm, &input))));
    }
    for alg in ["RS256", "ES256", "PS256", "EdDSA"] {
        // Key confusion: an asymmetric alg "verified" with the HMAC secret as if it were a public key.
        let input = with_header(&format!(r#"{{"typ":"at+jwt","alg":"{alg}"}}"#));
        cases.push((
            "asymmetric alg signed with the HMAC secret",
            format!("{input}.{}", hs(key, hmac::HMAC_SHA256, &input)),
        ));
    }
    // ECDSA "psychic signature": r = s = 0.
    cases.push((
        "ES256 all-zero signature",
        format!("{}.{}", with_header(r#"{"typ":"at+jwt","alg":"ES256"}"#), b64(&[0u8; 64])),
    ));
    cases
}

both_backends_with! { hs256;
    async fn clocks_may_differ_by_ten_seconds_and_no_more_for_exp_nbf_and_iat(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let key = app.jwt_secret.as_bytes();
        let now = chrono::Utc::now().timestamp();
        // Two seconds from the edge on each side, so a slow test machine cannot tip the result.
        let cases = [
            ("exp 8 s ago", "exp", now - 8, true),
            ("exp 12 s ago", "exp", now - 12, false),
            ("nbf in 8 s", "nbf", now + 8, true),
            ("nbf in 12 s", "nbf", now + 12, false),
            ("iat in 8 s", "iat", now + 8, true),
            ("iat in 12 s", "iat", now + 12, false),
        ];
        for (what, claim, value, accepted) in cases {
            let token = sign_raw(key, &app.kid(), HEADER, &with(claims(&app, &user, "user"), claim, json!(value)));
            let status = app.get_with_bearer("/api/me", &token).await.status();
            assert_eq!(status == 200, accepted, "{what}: {status}");
            app.set_cookie("portcullis", &token);
            let page = app.get("/dashboard").await.status();
            assert_eq!(page == 200, accepted, "{what} on a page: {page}");
        }
    }

    async fn a_correctly_signed_token_is_accepted_so_the_forgeries_below_fail_for_their_flaw(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let token = sign_raw(app.jwt_secret.as_bytes(), &app.kid(), HEADER, &claims(&app, &user, "user"));

        assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 200);
        app.set_cookie("portcullis", &token);
        assert_eq!(app.get("/dashboard").await.status(), 200);
    }

    async fn every_forged_bearer_token_gets_a_json_401_with_a_challenge(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        for (name, token) in forgeries(&app, &user) {
            let response = app.get_with_bearer("/api/me", &token).await;

            assert_eq!(response.status(), 401, "{name}");
            let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.contains(r#"error="invalid_token""#), "{name}: {challenge}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_token", "{name}");
            assert!(body.get("username").is_none());
        }
    }

    async fn every_forged_cookie_sends_the_browser_to_login_and_removes_the_cookie(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        for (name, token) in forgeries(&app, &user) {
            app.set_cookie("portcullis", &token);

            let response = app.get("/dashboard").await;

            assert_eq!(response.status(), 303, "{name}");
            assert_eq!(location(&response), "/login?next=%2Fdashboard", "{name}");
            assert!(set_cookies(&response).iter().any(|c| c.starts_with("portcullis=;")), "{name}: stale cookie removed");
        }
    }

    async fn a_tampered_role_claim_cannot_open_the_admin_area(app: TestApp) {
        use base64::Engine;
        let user = app.create_user("alice", Role::User).await;
        let token = app.api_token(&user).await;
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["role"] = json!("admin");
        let tampered = format!("{}.{}.{}", parts[0], b64(claims.to_string().as_bytes()), parts[2]);

        assert_eq!(app.get_with_bearer(&format!("/api/users/{}", user.id), &tampered).await.status(), 401);
        app.set_cookie("portcullis", &tampered);
        assert_eq!(app.get("/admin").await.status(), 303);
    }

    async fn a_non_ascii_authorization_header_is_a_401_not_a_crash(app: TestApp) {
        let value = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\x80").unwrap();

        let response = app.client.get(app.url("/api/me")).header("authorization", value).send().await.unwrap();

        assert_eq!(response.status(), 401);
    }
}
