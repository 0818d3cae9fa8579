//! Tokens other services can check without being able to make one: EdDSA (or ES256) keys in
//! the database, published as a JWKS; rotation that publishes first and drops last; a switch
//! from HS256 that signs nobody out; and every trick of a forger refused.
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use portcullis::config::JwtAlgorithm;
use portcullis::db::schema::signing_keys;
use portcullis::domain::Role;
use serde_json::{Value, json};

use crate::cli::portcullis;
use crate::helpers::*;

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

async fn jwks(app: &TestApp) -> Vec<Value> {
    let answer = app.get("/.well-known/jwks.json").await;
    assert_eq!(answer.status(), 200);
    answer.json::<Value>().await.unwrap()["keys"].as_array().unwrap().clone()
}

fn kids(keys: &[Value]) -> Vec<String> {
    keys.iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect()
}

/// Re-reads its keys every 100 ms, so a test sees a change at once.
fn quick_reload(settings: &mut portcullis::config::Settings) {
    settings.signing.reload_interval = Duration::from_millis(100);
}

async fn accepted(app: &TestApp, token: &str) -> bool {
    app.get_with_bearer("/api/me", token).await.status() == 200
}

/// Signs `claims` with `header` by an Ed25519 key of the forger's own.
fn forged_eddsa(header: &Value, claims: &Value) -> String {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref()))
}

fn forged_hs256(key: &[u8], header: &Value, claims: &Value) -> String {
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Moves the stored keys' times, as if minutes had passed.
async fn set_times(app: &TestApp, kid: &str, signs_from: Option<i64>, retired: Option<i64>, drop_after: Option<i64>) {
    let kid = kid.to_owned();
    app.with_conn(move |conn| {
        let at = |offset: i64| (chrono::Utc::now() + chrono::Duration::seconds(offset)).naive_utc();
        let row = signing_keys::table.filter(signing_keys::kid.eq(&kid));
        if let Some(offset) = signs_from {
            diesel::update(row).set(signing_keys::signs_from.eq(at(offset))).execute(conn).unwrap();
        }
        if let Some(offset) = retired {
            diesel::update(row).set(signing_keys::retired_at.eq(Some(at(offset)))).execute(conn).unwrap();
        }
        if let Some(offset) = drop_after {
            diesel::update(row).set(signing_keys::drop_after.eq(Some(at(offset)))).execute(conn).unwrap();
        }
    })
    .await;
}

/// Waits until the server has re-read its keys and `probe` holds.
async fn eventually<F, Fut>(what: &str, probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    assert!(within(Duration::from_secs(5), probe).await.is_some(), "{what}");
}

both_backends! {
    async fn a_new_installation_signs_with_ed25519_and_publishes_only_the_public_key(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let token = app.api_token(&user).await;
        let header = header_of(&token);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "at+jwt");

        let answer = app.get("/.well-known/jwks.json").await;
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["cache-control"], "public, max-age=300", "verifiers may cache it, briefly");
        assert_eq!(answer.headers()["content-type"], "application/jwk-set+json");
        let keys = answer.json::<Value>().await.unwrap()["keys"].as_array().unwrap().clone();
        assert_eq!(keys.len(), 1);
        let key = keys[0].as_object().unwrap();
        let mut members: Vec<&str> = key.keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"], "public parts only: {key:?}");
        assert_eq!((key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str(), key["use"].as_str()),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig")));
        assert_eq!(key["kid"], header["kid"], "tokens name the published key");
        assert_eq!(URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap().len(), 32);

        let metadata: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
        assert_eq!(metadata["issuer"], app.issuer.as_str());
        assert_eq!(metadata["issuer"], claims_of(&token)["iss"], "the issuer tokens name");
        assert_eq!(metadata["jwks_uri"], format!("{}/.well-known/jwks.json", app.issuer));

        // The private key is in the database only sealed.
        let stored: Vec<(Option<String>, Option<String>)> = app.with_conn(|conn| {
            signing_keys::table.select((signing_keys::sealed_private_key, signing_keys::public_key)).load(conn).unwrap()
        }).await;
        assert_eq!(stored.len(), 1, "a new installation has no record of HS256 tokens to honour");
        let (sealed, public) = &stored[0];
        assert_eq!(public.as_deref(), key["x"].as_str());
        assert!(sealed.as_deref().is_some_and(|sealed| sealed.contains('.') && sealed.len() > 80));

        // A token made with the shared secret is not one of ours here.
        let hs256 = forged_hs256(app.jwt_secret.as_bytes(), &json!({"alg": "HS256", "typ": "at+jwt", "kid": app.kid()}), &claims_of(&token));
        assert!(!accepted(&app, &hs256).await, "HS256 is refused when the installation signs with EdDSA");
        assert!(accepted(&app, &token).await);
    }

    async fn forgers_are_refused_whatever_their_token_claims(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let token = app.api_token(&user).await;
        let kid = header_of(&token)["kid"].as_str().unwrap().to_owned();
        let mut claims = claims_of(&token);
        claims["role"] = json!("admin");
        let public_x = jwks(&app).await[0]["x"].as_str().unwrap().to_owned();
        let public_raw = URL_SAFE_NO_PAD.decode(&public_x).unwrap();
        let unsigned = |header: Value| format!("{}.{}.", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let attacker = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let attacker_x = URL_SAFE_NO_PAD.encode(Ed25519KeyPair::from_pkcs8(attacker.as_ref()).unwrap().public_key().as_ref());

        let forgeries = [
            ("alg none", unsigned(json!({"alg": "none", "typ": "at+jwt", "kid": kid}))),
            ("HS256 keyed with the public key's bytes", forged_hs256(&public_raw, &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}), &claims)),
            ("HS256 keyed with the public key as published", forged_hs256(public_x.as_bytes(), &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}), &claims)),
            ("another Ed25519 key under our kid", forged_eddsa(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}), &claims)),
            ("an unknown kid", forged_eddsa(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "not-a-key-we-made"}), &claims)),
            ("no kid", forged_eddsa(&json!({"alg": "EdDSA", "typ": "at+jwt"}), &claims)),
            ("its own key embedded (jwk)", forged_eddsa(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid,
                "jwk": {"kty": "OKP", "crv": "Ed25519", "x": attacker_x}}), &claims)),
            ("a key URL (jku)", forged_eddsa(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jku": "https://evil.example/jwks.json"}), &claims)),
        ];
        for (what, forged) in forgeries {
            let answer = app.get_with_bearer("/api/me", &forged).await;
            assert_eq!(answer.status(), 401, "{what}");
            assert_eq!(answer.json::<Value>().await.unwrap()["error"], "invalid_token", "{what}");
        }
        // The real token, with its claims changed but the signature kept, is refused too.
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
        assert!(!accepted(&app, &tampered).await);
        assert!(accepted(&app, &token).await, "and the real one still works");
    }
}

both_backends_with! { quick_reload;
    async fn a_rotation_publishes_the_new_key_before_it_signs_and_drops_the_old_one_last(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let before = app.api_token(&user).await;
        let old = header_of(&before)["kid"].as_str().unwrap().to_owned();

        let output = portcullis(&app, &["keys", "rotate"], "");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(said.contains("is published; it signs in 6 minutes"), "{said}");
        eventually("the new key is published at once", || async { jwks(&app).await.len() == 2 }).await;
        let new = kids(&jwks(&app).await).into_iter().find(|kid| *kid != old).unwrap();
        let meanwhile = app.api_token(&user).await;
        assert_eq!(header_of(&meanwhile)["kid"], old.as_str(), "it does not sign before every cache can know it");
        let listed = String::from_utf8_lossy(&portcullis(&app, &["keys", "list"], "").stdout).into_owned();
        assert!(listed.contains(&format!("EdDSA  {new}")) && listed.contains("published; signs from"), "{listed}");

        // Six minutes later (the stored times moved): the new key signs; the old one still verifies.
        set_times(&app, &new, Some(-1), None, None).await;
        set_times(&app, &old, None, Some(-1), Some(900)).await;
        eventually("the new key signs", || async { header_of(&app.api_token(&user).await)["kid"] == new.as_str() }).await;
        assert!(accepted(&app, &before).await, "tokens of the old key verify until they expire");
        assert_eq!(kids(&jwks(&app).await).len(), 2, "and it stays published meanwhile");

        // Once its tokens have all expired, it is dropped.
        set_times(&app, &old, None, None, Some(-1)).await;
        eventually("the old key leaves the JWKS", || async { kids(&jwks(&app).await) == [new.clone()] }).await;
        assert!(!accepted(&app, &before).await);
        let audit = app.audit_actions().await;
        assert!(audit.contains(&"keys.rotate".to_owned()), "{audit:?}");
    }

    async fn after_a_leak_the_old_keys_stop_at_once_and_browsers_renew_without_signing_in(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let api = app.api_login(&user).await;
        app.login_as(&user).await;
        assert_eq!(app.get("/dashboard").await.status(), 200);

        let output = portcullis(&app, &["keys", "rotate", "--now", "--revoke-old"], "");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        eventually("tokens of the leaked key stop working", || async { !accepted(&app, &api.access).await }).await;

        assert_eq!(app.get("/dashboard").await.status(), 200, "the browser renews from its refresh cookie");
        let renewed = app.api_refresh(&api.refresh).await.expect("the app renews with its refresh token");
        assert!(accepted(&app, &renewed.access).await);
        assert_eq!(kids(&jwks(&app).await).len(), 1, "only the new key is published");
    }
}

fn hs256_quick_reload(settings: &mut portcullis::config::Settings) {
    settings.signing.algorithm = JwtAlgorithm::Hs256;
    quick_reload(settings);
}

fn es256(settings: &mut portcullis::config::Settings) {
    settings.signing.algorithm = JwtAlgorithm::Es256;
}

both_backends_with! { hs256_quick_reload;
    async fn an_hs256_installation_switches_to_eddsa_without_signing_anyone_out(first: TestApp) {
        let user = first.create_user("alice", Role::User).await;
        let hs256 = first.api_token(&user).await;
        assert_eq!(header_of(&hs256)["alg"], "HS256");
        assert!(jwks(&first).await.is_empty(), "the secret is never published");

        // The same installation restarted with the new default.
        let second = spawn_second_instance_with(&first, quick_reload).await;
        assert!(accepted(&second, &hs256).await, "tokens signed before the switch still work");
        let eddsa = second.api_token(&user).await;
        assert_eq!(header_of(&eddsa)["alg"], "EdDSA");
        eventually("the instance still on HS256 learns the new key", || async { accepted(&first, &eddsa).await }).await;

        // Once they have all expired, the secret's tokens are refused.
        let marker: String = second.with_conn(|conn| {
            signing_keys::table.filter(signing_keys::alg.eq("HS256")).select(signing_keys::kid).first(conn).unwrap()
        }).await;
        set_times(&second, &marker, None, None, Some(-1)).await;
        eventually("HS256 tokens are refused after the switch's window", || async { !accepted(&second, &hs256).await }).await;
    }

}

both_backends_with! { es256;
    async fn es256_when_configured(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let token = app.api_token(&user).await;
        assert_eq!(header_of(&token)["alg"], "ES256");
        let keys = jwks(&app).await;
        assert_eq!((keys[0]["kty"].as_str(), keys[0]["crv"].as_str(), keys[0]["alg"].as_str()), (Some("EC"), Some("P-256"), Some("ES256")));
        assert!(keys[0]["y"].is_string() && keys[0].get("d").is_none());
        assert!(accepted(&app, &token).await);
    }

    async fn an_es256_signature_has_one_spelling_and_its_key_only_its_algorithm(app: TestApp) {
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6,
            0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
        ];
        let user = app.create_user("alice", Role::User).await;
        let key = &jwks(&app).await[0];
        let mut point = vec![0x04];
        point.extend(URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(key["y"].as_str().unwrap()).unwrap());
        let plain_ecdsa = aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED, point);
        for _ in 0..12 {
            // Half of ECDSA signatures come out high: every one of ours is low, and its high twin
            // (s → n − s, which ECDSA alone accepts) is refused.
            let token = app.api_token(&user).await;
            let (input, signature) = token.rsplit_once('.').unwrap();
            let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
            assert_eq!(bytes.len(), 64);
            let mut borrow = 0i16;
            for at in (0..32).rev() {
                let difference = i16::from(N[at]) - i16::from(bytes[32 + at]) - borrow;
                borrow = i16::from(difference < 0);
                bytes[32 + at] = difference.rem_euclid(256) as u8;
            }
            let twin = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert!(accepted(&app, &token).await, "our own signature");
            assert!(!accepted(&app, &twin).await, "its twin spelling");
            assert!(plain_ecdsa.verify(input.as_bytes(), &bytes).is_ok(), "which plain ECDSA does accept: the test is real");
        }
        // Our ES256 key's kid under another algorithm (an Ed25519 signature) is refused.
        let token = app.api_token(&user).await;
        let kid = header_of(&token)["kid"].as_str().unwrap().to_owned();
        let forged = forged_eddsa(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}), &claims_of(&token));
        assert!(!accepted(&app, &forged).await);
    }
}

/// A verifier in another language (Python, PyJWT) that knows only the issuer's address.
fn python_verifies(issuer: &str, token: &str) -> Result<Value, String> {
    let output = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/jwks_verify.py"))
        .args([issuer, token])
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(serde_json::from_str(&said).unwrap())
    } else {
        Err(format!("{said}{}", String::from_utf8_lossy(&output.stderr)))
    }
}

fn pyjwt_available() -> bool {
    let available = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !available {
        assert!(std::env::var("CI").is_err(), "the JWKS test needs python3 with PyJWT[crypto] in CI");
        announce_skip("the JWKS verifier test: pip install 'pyjwt[crypto]' to run it");
    }
    available
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_in_python_checks_tokens_with_nothing_but_the_published_keys_before_and_after_a_rotation() {
    if !pyjwt_available() {
        return;
    }
    // The issuer must be reachable at its own address: the verifier starts from it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let public_url = issuer.clone();
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.bind = format!("127.0.0.1:{port}").parse().unwrap();
        settings.public_url = portcullis::config::PublicUrl::parse(&public_url).unwrap();
        quick_reload(settings);
    })
    .await;
    let user = app.create_user("alice", Role::User).await;
    let before = app.api_token(&user).await;

    let checked = python_verifies(&issuer, &before).expect("a real token verifies");
    assert_eq!(checked["alg"], "EdDSA");
    assert_eq!(checked["claims"]["sub"], user.id.to_string());
    assert_eq!(checked["claims"]["preferred_username"], "alice");
    let mut claims = claims_of(&before);
    claims["role"] = json!("admin");
    let parts: Vec<&str> = before.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    assert!(python_verifies(&issuer, &tampered).unwrap_err().contains("Signature verification failed"));
    let forged = forged_eddsa(&header_of(&before), &claims);
    assert!(python_verifies(&issuer, &forged).is_err(), "a forger's key is not the published one");

    let output = portcullis(&app, &["keys", "rotate", "--now"], "");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let old_kid = header_of(&before)["kid"].clone();
    eventually("the new key signs", || async { header_of(&app.api_token(&user).await)["kid"] != old_kid }).await;
    let after = app.api_token(&user).await;
    assert_eq!(
        python_verifies(&issuer, &after).expect("a token of the new key verifies")["claims"]["sub"],
        user.id.to_string()
    );
    assert!(python_verifies(&issuer, &before).is_ok(), "the old key is still published until its tokens expire");
}

both_backends_with! { quick_reload_daily_rotation;
    async fn a_key_older_than_the_rotation_period_is_replaced_by_itself(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let old = header_of(&app.api_token(&user).await)["kid"].as_str().unwrap().to_owned();
        // The key began signing two days ago; the period is one day.
        set_times(&app, &old, Some(-2 * 24 * 3600), None, None).await;
        let restarted = spawn_second_instance_with(&app, quick_reload_daily_rotation).await;
        eventually("a new key is published on its own", || async { jwks(&restarted).await.len() == 2 }).await;
        assert_eq!(header_of(&restarted.api_token(&user).await)["kid"], old.as_str(), "it signs only after the lead");
        let listed = String::from_utf8_lossy(&portcullis(&app, &["keys", "list"], "").stdout).into_owned();
        assert!(listed.contains("published; signs from"), "{listed}");
        restarted.server.stop(true).await;
    }

    async fn two_instances_finding_an_old_key_at_once_rotate_it_once(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let old = header_of(&app.api_token(&user).await)["kid"].as_str().unwrap().to_owned();
        set_times(&app, &old, Some(-2 * 24 * 3600), None, None).await;

        // Two instances start together (a deployment rolling out), both due to rotate.
        let (first, second) = tokio::join!(
            spawn_second_instance_with(&app, quick_reload_daily_rotation),
            spawn_second_instance_with(&app, quick_reload_daily_rotation),
        );
        eventually("a new key is published", || async { jwks(&first).await.len() >= 2 }).await;
        // Several reloads later (every 100 ms here) there is still exactly one new key.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stored: i64 = app
            .with_conn(|conn| signing_keys::table.filter(signing_keys::alg.ne("HS256")).count().get_result(conn).unwrap())
            .await;
        assert_eq!(stored, 2, "the old key and one replacement, not one per instance");
        let (a, b) = (kids(&jwks(&first).await), kids(&jwks(&second).await));
        assert_eq!(a.len(), 2);
        assert_eq!(a.iter().collect::<std::collections::BTreeSet<_>>(), b.iter().collect(), "both publish the same keys");
        let from_first = first.api_token(&user).await;
        assert!(accepted(&second, &from_first).await, "a token from one instance works on the other");
        first.server.stop(true).await;
        second.server.stop(true).await;
    }
}

both_backends_with! { quick_reload_daily_rotation;
    async fn an_apps_rs256_key_is_made_on_first_need_published_and_rotated_like_ours(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&alice).await;
        assert!(jwks(&app).await.iter().all(|key| key["kty"] != "RSA"), "no RSA key before an app needs one");
        let client = crate::oidc::register(&app, |_| {}).await;
        let id_token = crate::oidc::id_token_for(&app, &client).await;
        let old = header_of(&id_token)["kid"].as_str().unwrap().to_owned();
        assert_eq!(header_of(&id_token)["alg"], "RS256");
        let published = jwks(&app).await;
        let rsa = published.iter().find(|key| key["kid"] == old.as_str()).expect("the RS256 key is published");
        let mut members: Vec<&str> = rsa.as_object().unwrap().keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"], "public parts only: {rsa}");
        assert!(portcullis(&app, &["keys", "list"], "").status.success());
        // Two days old with a daily rotation: a new RS256 key is published, the old one stays.
        set_times(&app, &old, Some(-2 * 24 * 3600), None, None).await;
        let restarted = spawn_second_instance_with(&app, quick_reload_daily_rotation).await;
        eventually("a second RS256 key is published", || async {
            jwks(&restarted).await.iter().filter(|key| key["kty"] == "RSA").count() == 2
        })
        .await;
        assert!(kids(&jwks(&restarted).await).contains(&old), "the old key verifies until its tokens expire");
        restarted.server.stop(true).await;
    }
}

fn quick_reload_daily_rotation(settings: &mut portcullis::config::Settings) {
    quick_reload(settings);
    settings.signing.rotation = Some(Duration::from_secs(24 * 3600));
}
