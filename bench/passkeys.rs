//! Passkey sign-ins beside password sign-ins, in one run: `cargo bench --bench passkeys`.
//!
//! Starts the server in this process on SQLite, reached as `http://localhost:PORT` (WebAuthn
//! needs a domain name), with USERS users who each register a passkey held by a software
//! authenticator (`webauthn-authenticator-rs`, which signs with P-256 in this process too).
//! Then, with CLIENTS concurrent clients, SIGN_INS password sign-ins (`POST /api/token`: one
//! argon2id hash each) and SIGN_INS password-free passkey sign-ins (options, the
//! authenticator's signature, the answer: no argon2 anywhere), and the time of one passkey
//! sign-in end to end on an idle server.
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::config::{PublicUrl, Settings};
use portcullis::db::users::{self, NewUser};
use portcullis::domain::{DisplayName, Email, Role, Username};
use portcullis::startup::Application;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{Base64UrlSafeData, CreationChallengeResponse, RequestChallengeResponse, Url, Uuid};

const PASSWORD: &str = "violet tractor sings loudly";
const USERS: usize = 16;
const CLIENTS: usize = 8;
const SIGN_INS: usize = 400;
const SOLO: usize = 30;

struct Holder {
    username: String,
    device: WebauthnAuthenticator<SoftPasskey>,
    credential_id: String,
    handle: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start =
        html.find(&marker).unwrap_or_else(|| panic!("no {name} in {}", &html[..html.len().min(3000)])) + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// A browser that is not signed in (a fresh cookie jar) signs in with the holder's passkey.
async fn passkey_sign_in(base: &str, holder: &mut Holder) -> anyhow::Result<()> {
    let http = client();
    let page = http.get(format!("{base}/login")).send().await?.text().await?;
    let csrf = hidden(&page, "csrf_token");
    let body: Value = http
        .post(format!("{base}/login/passkey/options"))
        .json(&json!({"csrf_token": csrf}))
        .send()
        .await?
        .json()
        .await?;
    let mut options = body["options"].clone();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": holder.credential_id}]);
    let options: RequestChallengeResponse = serde_json::from_value(options)?;
    let mut credential =
        holder.device.do_authentication(Url::parse(base)?, options).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    credential.response.user_handle =
        Some(Base64UrlSafeData::from(Uuid::parse_str(&holder.handle)?.as_bytes().to_vec()));
    let answer = http
        .post(format!("{base}/login/passkey"))
        .json(&json!({"csrf_token": csrf, "token": body["token"], "credential": credential}))
        .send()
        .await?;
    anyhow::ensure!(answer.status() == 200, "passkey sign-in answered {}", answer.status());
    Ok(())
}

async fn password_sign_in(http: &reqwest::Client, base: &str, username: &str) -> anyhow::Result<()> {
    let answer = http
        .post(format!("{base}/api/token"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(answer.status() == 200, "password sign-in answered {}", answer.status());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://localhost:{port}");
    let env = [
        ("DATABASE_URL", format!("sqlite://{}", dir.path().join("bench.db").display())),
        ("PORTCULLIS_BIND", format!("127.0.0.1:{port}")),
        ("PORTCULLIS_JWT_SECRET", portcullis::random::token_base64(48)),
        ("PORTCULLIS_MFA_REQUIRED", "off".to_owned()),
        ("PORTCULLIS_LOGIN_ACCOUNT_ATTEMPTS", "1000".to_owned()),
        ("PORTCULLIS_LOGIN_ADDRESS_ATTEMPTS", "100000".to_owned()),
        ("PORTCULLIS_LOG", "warn".to_owned()),
    ];
    let mut settings = Settings::from_lookup(|key| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))?;
    settings.public_url = PublicUrl::parse(&base)?;
    let pool = portcullis::db::build_pool(&settings.database)?;
    let application = Application::build(settings).await?;
    let server = application.handle();
    tokio::spawn(application.run_until_stopped());

    let hash = portcullis::auth::password::hash_blocking(PASSWORD)?;
    let mut holders = Vec::new();
    let add_user = |username: &str| -> anyhow::Result<()> {
        let new = NewUser {
            username: &Username::parse(username)?,
            email: &Email::parse(&format!("{username}@example.com"))?,
            display_name: &DisplayName::parse(username)?,
            password_hash: &hash,
            role: Role::User,
            must_change_password: false,
        };
        users::insert(&mut *pool.get()?, &new)?;
        Ok(())
    };
    // Users who sign in with a password only (a passkey makes it a second factor).
    for n in 0..USERS {
        add_user(&format!("pw{n:02}"))?;
    }
    for n in 0..USERS {
        let username = format!("user{n:02}");
        add_user(&username)?;
        // Signed in with the password once, the user adds a passkey from the Security page.
        let http = client();
        let page = http.get(format!("{base}/login")).send().await?.text().await?;
        let form =
            [("username", username.as_str()), ("password", PASSWORD), ("csrf_token", &hidden(&page, "csrf_token"))];
        let signed = http.post(format!("{base}/login")).form(&form).send().await?;
        anyhow::ensure!(signed.status() == 303, "form sign-in answered {}: {:?}", signed.status(), signed.headers());
        let page = http.get(format!("{base}/account/security")).send().await?.text().await?;
        let csrf = hidden(&page, "csrf_token");
        let body: Value = http
            .post(format!("{base}/account/security/passkeys/options"))
            .json(&json!({"csrf_token": csrf}))
            .send()
            .await?
            .json()
            .await?;
        let mut options: CreationChallengeResponse = serde_json::from_value(body["options"].clone())?;
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.require_resident_key = false;
            selection.resident_key = None;
        }
        let mut device = WebauthnAuthenticator::new(SoftPasskey::new(true));
        let credential = device.do_registration(Url::parse(&base)?, options).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let added = http
            .post(format!("{base}/account/security/passkeys"))
            .json(&json!({"csrf_token": csrf, "token": body["token"], "name": "Bench", "credential": credential}))
            .send()
            .await?;
        anyhow::ensure!(added.status() == 200, "registration answered {}", added.status());
        let (credential_id, handle) = {
            use diesel::prelude::*;
            use portcullis::db::schema::passkeys::dsl::*;
            let mut conn = pool.get()?;
            passkeys.order(id.desc()).select((credential_id, user_handle)).first::<(String, String)>(&mut conn)?
        };
        holders.push(Arc::new(Mutex::new(Holder { username, device, credential_id, handle })));
    }

    // One passkey sign-in end to end on an idle server, several times.
    let mut solo = Vec::new();
    for n in 0..SOLO {
        let mut holder = holders[n % USERS].lock().await;
        let started = Instant::now();
        passkey_sign_in(&base, &mut holder).await?;
        solo.push(started.elapsed());
    }
    solo.sort();

    // Password sign-ins, then passkey sign-ins, CLIENTS at a time.
    let load = |passkeys: bool| {
        let holders = holders.clone();
        let base = base.clone();
        async move {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for worker in 0..CLIENTS {
                let holders = holders.clone();
                let base = base.clone();
                tasks.push(tokio::spawn(async move {
                    let http = client();
                    for n in (worker..SIGN_INS).step_by(CLIENTS) {
                        let mut holder = holders[n % USERS].lock().await;
                        if passkeys {
                            passkey_sign_in(&base, &mut holder).await?;
                        } else {
                            let username = holder.username.replace("user", "pw");
                            password_sign_in(&http, &base, &username).await?;
                        }
                    }
                    anyhow::Ok(())
                }));
            }
            for task in tasks {
                task.await??;
            }
            anyhow::Ok(started.elapsed())
        }
    };
    let passwords = load(false).await?;
    let passkeys = load(true).await?;
    let rate = |took: Duration| SIGN_INS as f64 / took.as_secs_f64();
    println!(
        "SQLite, {} cores, {CLIENTS} clients, {USERS} users",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "one passkey sign-in end to end (options, authenticator, answer), idle server: median {:.1} ms, p90 {:.1} ms",
        solo[SOLO / 2].as_secs_f64() * 1000.0,
        solo[SOLO * 9 / 10].as_secs_f64() * 1000.0
    );
    println!("password sign-ins (POST /api/token): {:.1}/s", rate(passwords));
    println!("passkey sign-ins (password-free, 3 requests each): {:.1}/s", rate(passkeys));
    println!("passkey ÷ password sign-ins/s: {:.1}×", rate(passkeys) / rate(passwords));
    server.stop(true).await;
    Ok(())
}
