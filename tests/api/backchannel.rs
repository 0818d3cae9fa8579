//! Sign-outs that reach the apps (OpenID Connect Back-Channel Logout 1.0): whenever a Portcullis
//! session ends, every app it signed in to receives a signed logout token at its back-channel
//! address, through a durable queue that a slow, failing or dead app cannot hold up.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::domain::Role;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::oidc::{App, CALLBACK, claims, code_for, exchange, header, register, verify_id_token};

/// How a test app's back-channel endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Ok,
    Status(u16),
    /// 200, after this long.
    After(Duration),
}

/// A logout token as an app received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub at: Instant,
    pub path: String,
    pub token: String,
    /// What the endpoint answered.
    pub answer: Answer,
}

/// An app's back-channel endpoint on loopback: records every logout token posted to it.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub port: u16,
    answer: Arc<Mutex<Answer>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub(crate) async fn start(answer: Answer) -> Self {
        Self::start_on(0, answer).await
    }

    pub(crate) async fn start_on(port: u16, answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the receiver");
        let port = listener.local_addr().unwrap().port();
        let receiver = Self { port, answer: Arc::new(Mutex::new(answer)), received: Arc::default() };
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(stream));
            }
        });
        receiver
    }

    async fn serve(self, mut stream: tokio::net::TcpStream) {
        let mut buffer = Vec::new();
        loop {
            // One request: the head, then Content-Length bytes.
            let head_end = loop {
                if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                    break end + 4;
                }
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            while buffer.len() < head_end + length {
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).to_string();
            buffer.drain(..head_end + length);
            let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let token = serde_urlencoded::from_str::<Vec<(String, String)>>(&body)
                .unwrap_or_default()
                .into_iter()
                .find(|(name, _)| name == "logout_token")
                .map(|(_, value)| value)
                .unwrap_or_default();
            let answer = *self.answer.lock().unwrap();
            self.received.lock().unwrap().push(Received { at: Instant::now(), path, token, answer });
            let status = match answer {
                Answer::Ok => 200,
                Answer::Status(status) => status,
                Answer::After(wait) => {
                    tokio::time::sleep(wait).await;
                    200
                }
            };
            let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nCache-Control: no-store\r\n\r\n");
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    pub(crate) fn uri(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn answer_with(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The tokens this endpoint answered 200 at once, posted to `path`.
    pub(crate) fn accepted(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|got| got.path == path && got.answer == Answer::Ok).collect()
    }

    /// Waits until `count` tokens were accepted at `path`, and returns them.
    pub(crate) async fn wait_for(&self, path: &str, count: usize, limit: Duration) -> Vec<Received> {
        let waited = within(limit, || async { self.accepted(path).len() >= count }).await;
        let accepted = self.accepted(path);
        assert!(
            waited.is_some(),
            "{count} logout tokens at {path} within {limit:?}; got {}: {:?}",
            accepted.len(),
            self.received()
        );
        accepted
    }
}

/// An app that hears of sign-outs at `receiver`'s `path`.
pub(crate) async fn register_listening(app: &TestApp, name: &str, receiver: &Receiver, path: &str) -> App {
    let (name, uri) = (name.to_owned(), receiver.uri(path));
    register(app, move |form| {
        form.name = name;
        form.backchannel_logout_uri = uri;
    })
    .await
}

/// Signs `browser`'s session in to `client` (code and tokens); returns the ID token's claims.
pub(crate) async fn sign_in_to(browser: &TestApp, client: &App) -> Value {
    let code = code_for(browser, client, &[]).await;
    let tokens = exchange(browser, client, &code).await;
    claims(tokens["id_token"].as_str().unwrap())
}

/// Checks a logout token as Back-Channel Logout 1.0 §2.6 tells an app to, and returns its claims.
pub(crate) async fn check_logout_token(app: &TestApp, token: &str, client: &App) -> Value {
    assert_eq!(header(token)["typ"], "logout+jwt", "§2.4: explicitly typed");
    let claims = verify_id_token(app, token, &client.client_id).await;
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], client.client_id.as_str());
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(), "{claims}");
    assert!(claims.get("nonce").is_none(), "§2.4: a logout token has no nonce");
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 16));
    let now = chrono::Utc::now().timestamp();
    assert!((claims["iat"].as_i64().unwrap() - now).abs() < 30);
    assert!(claims["exp"].as_i64().unwrap() > now);
    claims
}

both_backends! {
    async fn a_sign_out_reaches_every_app_the_session_signed_in_to_and_no_other(app: TestApp) {
        let receiver = Receiver::start(Answer::Ok).await;
        let wiki = register_listening(&app, "Wiki", &receiver, "/wiki/logout").await;
        let chat = register_listening(&app, "Chat", &receiver, "/chat/logout?kind=backchannel").await;
        let notes = register(&app, |form| form.name = "Notes".to_owned()).await;
        let alice = app.create_user("alice", Role::User).await;
        let bob = app.create_user("bob", Role::User).await;
        app.login_as(&alice).await;
        let wiki_id = sign_in_to(&app, &wiki).await;
        let chat_id = sign_in_to(&app, &chat).await;
        sign_in_to(&app, &notes).await;
        let bobs = app.in_new_browser();
        bobs.login_as(&bob).await;
        let bobs_wiki = sign_in_to(&bobs, &wiki).await;
        let sessions_page = unescape(&app.get("/account/sessions").await.text().await.unwrap());
        assert!(sessions_page.contains("Apps signed in") && sessions_page.contains("Chat, Notes, Wiki"), "{sessions_page}");

        let csrf = app.session_csrf_token().await;
        let signed_out = app.post_form("/logout", &[("csrf_token", &csrf)]).await;

        assert_eq!(signed_out.status(), 303);
        let at_wiki = receiver.wait_for("/wiki/logout", 1, Duration::from_secs(5)).await;
        let at_chat = receiver.wait_for("/chat/logout?kind=backchannel", 1, Duration::from_secs(5)).await;
        let wiki_logout = check_logout_token(&app, &at_wiki[0].token, &wiki).await;
        let chat_logout = check_logout_token(&app, &chat_logout_token(&at_chat), &chat).await;
        assert_eq!(wiki_logout["sid"], wiki_id["sid"], "the sid of the app's ID token");
        assert_eq!(chat_logout["sid"], chat_id["sid"]);
        assert_eq!(wiki_logout["sub"], alice.id.to_string());
        assert_ne!(wiki_logout["jti"], chat_logout["jti"]);
        assert_ne!(wiki_logout["sid"], bobs_wiki["sid"]);
        // Bob's session and the app without an address hear nothing, now or later.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(receiver.received().len(), 2, "{:?}", receiver.received());

        // The admin sees the delivery and the session still signed in through the app.
        let admin = app.create_user("root", Role::Admin).await;
        let admins = app.in_new_browser();
        admins.login_as(&admin).await;
        let wiki_row = app.with_conn({
            let client_id = wiki.client_id.clone();
            move |conn| portcullis::db::oauth::find_client_by_client_id(conn, &client_id).unwrap().unwrap().id
        }).await;
        let page = unescape(&admins.get(&format!("/admin/apps/{wiki_row}")).await.text().await.unwrap());
        assert!(page.contains(&receiver.uri("/wiki/logout")), "{page}");
        assert!(page.contains("1 session.") && page.contains("(bob)"), "{page}");
        assert!(page.contains("0 waiting, 1 delivered, 0 given up") && page.contains("Delivered"), "{page}");
    }

    async fn every_way_a_session_ends_tells_the_app(app: TestApp) {
        let receiver = Receiver::start(Answer::Ok).await;
        let path = "/wiki/logout";
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let made = app.post_form("/admin/groups/new", &[("name", "staff"), ("csrf_token", &csrf)]).await;
        assert_eq!(made.status(), 303);
        let staff = location(&made).rsplit('/').next().unwrap().to_owned();
        let wiki = register(&app, {
            let uri = receiver.uri(path);
            move |form| {
                form.backchannel_logout_uri = uri;
                form.allowed_groups = "staff".to_owned();
            }
        })
        .await;
        let names = ["everywhere", "ended", "disabled", "deleted", "reset", "removed", "disconnected"];
        let mut people = Vec::new();
        for name in names {
            people.push(app.create_user(name, Role::User).await);
        }
        let added = app
            .post_form(&format!("/admin/groups/{staff}/members/add"), &[("usernames", &names.join("\n")), ("csrf_token", &csrf)])
            .await;
        assert_eq!(added.status(), 303);
        let mut browsers = Vec::new();
        let mut sids = Vec::new();
        for person in &people {
            let browser = app.in_new_browser();
            browser.login_as(person).await;
            sids.push(sign_in_to(&browser, &wiki).await["sid"].as_str().unwrap().to_owned());
            browsers.push(browser);
        }
        let session_of = |user_id: i64| {
            app.with_conn(move |conn| {
                let now = portcullis::db::users::now();
                portcullis::db::sessions::live_for_user(conn, user_id, now, now - chrono::Duration::hours(1)).unwrap()[0].id
            })
        };
        let told = |index: usize| {
            let (receiver, app, wiki, sid, sub) = (&receiver, &app, &wiki, sids[index].clone(), people[index].id.to_string());
            async move {
                let waited = within(Duration::from_secs(5), || async {
                    receiver.accepted(path).iter().any(|got| claims(&got.token)["sid"] == sid.as_str())
                })
                .await;
                assert!(waited.is_some(), "{} was told of the end of {}'s session", wiki.client_id, names[index]);
                let got = receiver.accepted(path).into_iter().find(|got| claims(&got.token)["sid"] == sid.as_str()).unwrap();
                let claims = check_logout_token(app, &got.token, wiki).await;
                assert_eq!(claims["sub"], sub);
            }
        };

        // Signing out everywhere from another device.
        let other_device = app.in_new_browser();
        other_device.login_as(&people[0]).await;
        let other_csrf = other_device.session_csrf_token().await;
        assert_eq!(other_device.post_form("/account/sessions/revoke-others", &[("csrf_token", &other_csrf)]).await.status(), 303);
        told(0).await;
        // An admin ending one session.
        let ended = session_of(people[1].id).await;
        let response = app.post_form(&format!("/admin/users/{}/sessions/{ended}/revoke", people[1].id), &[("csrf_token", &csrf)]).await;
        assert!(response.status().is_redirection(), "{}", response.status());
        told(1).await;
        // Disabling, deleting, a password reset.
        assert_eq!(app.post_form(&format!("/admin/users/{}/disable", people[2].id), &[("csrf_token", &csrf)]).await.status(), 303);
        told(2).await;
        assert_eq!(app.post_form(&format!("/admin/users/{}/delete", people[3].id), &[("csrf_token", &csrf)]).await.status(), 303);
        told(3).await;
        assert_eq!(app.post_form(&format!("/admin/users/{}/reset-password", people[4].id), &[("csrf_token", &csrf)]).await.status(), 200);
        told(4).await;
        // Removed from the group the app requires: the session goes on, the app's grant ends.
        let removed = app
            .post_form(&format!("/admin/groups/{staff}/members/remove"), &[(&format!("select-{}", people[5].id), "on"), ("csrf_token", &csrf)])
            .await;
        assert_eq!(removed.status(), 303);
        told(5).await;
        assert_eq!(browsers[5].get("/dashboard").await.status(), 200, "still signed in to Portcullis");
        // Disconnecting the app on the account page.
        let apps_page = browsers[6].get("/account/apps").await.text().await.unwrap();
        let disconnect = apps_page
            .split("action=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_owned())
            .find(|action| action.contains("/disconnect"))
            .expect("a disconnect button");
        let user_csrf = browsers[6].session_csrf_token().await;
        assert!(browsers[6].post_form(&disconnect, &[("csrf_token", &user_csrf)]).await.status().is_redirection());
        told(6).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.received().len(), names.len(), "each session's end told once: {:?}", receiver.received());
    }

    async fn a_slow_failing_or_dead_app_delays_no_sign_out_and_is_retried(app: TestApp) {
        let healthy = Receiver::start(Answer::Ok).await;
        let slow = Receiver::start(Answer::After(Duration::from_secs(10))).await;
        let failing = Receiver::start(Answer::Status(500)).await;
        let dead_port = crate::proxies::free_port();
        let apps = [
            register_listening(&app, "Healthy", &healthy, "/logout").await,
            register_listening(&app, "Slow", &slow, "/logout").await,
            register_listening(&app, "Failing", &failing, "/logout").await,
            register(&app, move |form| {
                form.name = "Dead".to_owned();
                form.backchannel_logout_uri = format!("http://127.0.0.1:{dead_port}/logout");
            })
            .await,
        ];
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        for client in &apps {
            sign_in_to(&app, client).await;
        }
        let csrf = app.session_csrf_token().await;

        let started = Instant::now();
        let signed_out = app.post_form("/logout", &[("csrf_token", &csrf)]).await;
        let took = started.elapsed();

        assert_eq!(signed_out.status(), 303);
        assert!(took < Duration::from_secs(1), "the sign-out took {took:?}");
        let at_healthy = healthy.wait_for("/logout", 1, Duration::from_secs(3)).await;
        assert!(at_healthy[0].at - started < Duration::from_secs(2), "the slow app held up the healthy one");
        // The failing app answers 200 from now on; the dead one comes up: both hear of it on a retry.
        within(Duration::from_secs(3), || async { !failing.received().is_empty() }).await.expect("a first attempt");
        failing.answer_with(Answer::Ok);
        let came_up = Receiver::start_on(dead_port, Answer::Ok).await;
        failing.wait_for("/logout", 1, Duration::from_secs(8)).await;
        came_up.wait_for("/logout", 1, Duration::from_secs(10)).await;
        assert!(failing.received().len() >= 2, "retried after the 500");
        check_logout_token(&app, &failing.accepted("/logout")[0].token, &apps[2]).await;
        // The slow app gets its token again after the first attempt timed out (5 s).
        within(Duration::from_secs(12), || async { slow.received().len() >= 2 }).await.expect("the slow app is tried again");
        let first = &slow.received()[0];
        let second = &slow.received()[1];
        assert!(second.at - first.at >= Duration::from_secs(5), "a new attempt only after the first timed out");
        let error = app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::oauth_logout_deliveries::dsl::*;
            oauth_logout_deliveries.filter(last_error.is_not_null()).select(last_error).load::<Option<String>>(conn).unwrap()
        })
        .await;
        assert!(error.iter().flatten().any(|error| error.contains("no answer within 5 s")), "{error:?}");
    }
}

/// The one token of `received`.
fn chat_logout_token(received: &[Received]) -> String {
    assert_eq!(received.len(), 1);
    received[0].token.clone()
}

fn short_idle(settings: &mut portcullis::config::Settings) {
    settings.sessions.idle_timeout = Duration::from_secs(2);
    settings.housekeeping_interval = Duration::from_secs(1);
}

both_backends_with! { short_idle;
    async fn a_session_that_times_out_tells_its_apps(app: TestApp) {
        let receiver = Receiver::start(Answer::Ok).await;
        let wiki = register_listening(&app, "Wiki", &receiver, "/logout").await;
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let sid = sign_in_to(&app, &wiki).await["sid"].clone();

        let got = receiver.wait_for("/logout", 1, Duration::from_secs(8)).await;

        let claims = check_logout_token(&app, &got[0].token, &wiki).await;
        assert_eq!(claims["sid"], sid);
        assert_eq!(claims["sub"], user.id.to_string());
    }
}

both_backends! {
    async fn two_instances_deliver_each_sign_out_once(app: TestApp) {
        let second = spawn_second_instance(&app).await;
        let receiver = Receiver::start(Answer::Ok).await;
        let wiki = register_listening(&app, "Wiki", &receiver, "/wiki").await;
        let chat = register_listening(&app, "Chat", &receiver, "/chat").await;
        let mut browsers = Vec::new();
        for n in 0..12 {
            let user = app.create_user(&format!("user{n:02}"), Role::User).await;
            let browser = if n % 2 == 0 { app.in_new_browser() } else { second.in_new_browser() };
            browser.login_as(&user).await;
            sign_in_to(&browser, &wiki).await;
            sign_in_to(&browser, &chat).await;
            browsers.push(browser);
        }

        for browser in &browsers {
            let csrf = browser.session_csrf_token().await;
            assert_eq!(browser.post_form("/logout", &[("csrf_token", &csrf)]).await.status(), 303);
        }

        receiver.wait_for("/wiki", 12, Duration::from_secs(5)).await;
        receiver.wait_for("/chat", 12, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut seen: Vec<(String, String)> = receiver
            .received()
            .iter()
            .map(|got| { let c = claims(&got.token); (c["aud"].as_str().unwrap().to_owned(), c["sid"].as_str().unwrap().to_owned()) })
            .collect();
        assert_eq!(seen.len(), 24, "each delivered once: {seen:?}");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 24);
        second.server.stop(true).await;
    }
}

/// `kill -9` of Portcullis with sign-outs waiting for an app that is down: started again, it
/// delivers every one.
async fn kill_9_with_sign_outs_pending_loses_none(backend: Backend) {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("kill.db").display()),
        Backend::Postgres => create_postgres_database(),
    };
    let port = crate::proxies::free_port();
    let app_port = crate::proxies::free_port();
    let address = format!("http://127.0.0.1:{port}");
    let mut env = vec![
        ("DATABASE_URL".to_owned(), database_url),
        ("PORTCULLIS_BIND".to_owned(), format!("127.0.0.1:{port}")),
        ("PORTCULLIS_PUBLIC_URL".to_owned(), address.clone()),
        ("PORTCULLIS_MFA_REQUIRED".to_owned(), "off".to_owned()),
        ("PORTCULLIS_STATIC_DIR".to_owned(), concat!(env!("CARGO_MANIFEST_DIR"), "/static").to_owned()),
    ];
    if backend == Backend::Postgres {
        env.push(("PORTCULLIS_JWT_SECRET".to_owned(), portcullis::random::token_base64(48)));
    }
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut users = Vec::new();
    for n in 0..5 {
        let name = format!("user{n}");
        let out = crate::cli::portcullis_with_env(
            &pairs,
            &["user", "create", "--username", &name, "--email", &format!("{name}@example.com"), "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        users.push(name);
    }
    let created = crate::cli::portcullis_with_env(
        &pairs,
        &[
            "client",
            "create",
            "--name",
            "Wiki",
            "--redirect-uri",
            CALLBACK,
            "--backchannel-logout-uri",
            &format!("http://127.0.0.1:{app_port}/logout"),
            "--json",
        ],
        "",
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let wiki = App {
        client_id: created["client_id"].as_str().unwrap().to_owned(),
        secret: created["client_secret"].as_str().map(str::to_owned),
    };
    let serve = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command.arg("serve").stdout(Stdio::null()).stderr(Stdio::null());
        for (key, value) in &env {
            command.env(key, value);
        }
        command.spawn().unwrap()
    };
    let ready = || async {
        let client = reqwest::Client::new();
        within(Duration::from_secs(30), || {
            let client = client.clone();
            let url = format!("{address}/healthz");
            async move { client.get(url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await
        .is_some()
    };
    let mut server = serve();
    assert!(ready().await, "the server started");
    // Each user signs in to the app and out again while the app is down.
    for name in &users {
        sign_in_and_out(&address, &wiki, name).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap();
    server.wait().unwrap();

    let receiver = Receiver::start_on(app_port, Answer::Ok).await;
    let mut server = serve();
    assert!(ready().await, "the server started again");
    let got = receiver.wait_for("/logout", users.len(), Duration::from_secs(30)).await;
    let mut subjects: Vec<String> =
        got.iter().map(|got| claims(&got.token)["sub"].as_str().unwrap().to_owned()).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), users.len());
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Over plain HTTP against a Portcullis started as a process: `name` signs in, signs in to the
/// app (code and tokens), and signs out.
async fn sign_in_and_out(address: &str, wiki: &App, name: &str) {
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
    let page = client.get(format!("{address}/login")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let login = client
        .post(format!("{address}/login"))
        .form(&[("username", name), ("password", PASSWORD), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let challenge = portcullis::oauth::flow::s256(VERIFIER);
    let authorize = format!(
        "{address}/oauth2/authorize?{}",
        serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", wiki.client_id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .unwrap()
    );
    let answer = client.get(authorize).send().await.unwrap();
    assert_eq!(answer.status(), 303);
    let code = crate::oidc::query_of(&location(&answer))["code"].clone();
    let tokens = client
        .post(format!("{address}/oauth2/token"))
        .basic_auth(&wiki.client_id, wiki.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), 200);
    let dashboard = client.get(format!("{address}/account/sessions")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden_field(&dashboard, "csrf_token").unwrap();
    let out = client.post(format!("{address}/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(out.status(), 303);
}

const VERIFIER: &str = "a-verifier-of-forty-three-or-more-characters-for-the-kill-test-0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_sign_outs_pending_loses_none_sqlite() {
    kill_9_with_sign_outs_pending_loses_none(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn kill_9_with_sign_outs_pending_loses_none_postgres() {
    if postgres_available() {
        kill_9_with_sign_outs_pending_loses_none(Backend::Postgres).await;
    }
}
