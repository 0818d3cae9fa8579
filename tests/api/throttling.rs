//! Password guessing is slowed by temporary, escalating pauses per sign-in name and per client
//! address, and no answer tells an attacker whether an account exists.
use portcullis::config::Settings;
use portcullis::domain::Role;
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::*;

const WRONG: &str = "not the password at all";

async fn api_attempt(app: &TestApp, login: &str, password: &str) -> Response {
    app.post_json("/api/token", &json!({"username": login, "password": password})).await
}

/// Status, headers (but `date`) and body: what must not differ between two refusals.
async fn fingerprint(response: Response, typed_login: &str) -> (u16, Vec<(String, String)>, String) {
    let status = response.status().as_u16();
    let mut headers = headers_but_date(&response);
    let echoes_name = response.headers()["content-type"].to_str().unwrap().starts_with("text/html");

    let body = response.text().await.unwrap();
    if !echoes_name {
        return (status, headers, body);
    }
    // The form shows the typed name back in its field: the one allowed difference, and the
    // length that follows from it.
    for (name, value) in &mut headers {
        if name == "content-length" {
            *value = (value.parse::<usize>().unwrap() - typed_login.len()).to_string();
        }
    }
    (status, headers, body.replace(&format!("value=\"{typed_login}\""), "value=\"\""))
}

async fn form_attempt(app: &TestApp, login: &str, password: &str) -> Response {
    let csrf = app.login_form_token().await;
    app.post_form("/login", &[("username", login), ("password", password), ("csrf_token", &csrf)]).await
}

both_backends! {
    async fn fifty_wrong_guesses_at_once_spend_no_more_than_the_budget(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let budget = usize::try_from(portcullis::config::ThrottlePolicy::default().account_attempts).unwrap();

        // Fifty wrong guesses in flight together, from one client: a check-then-count race would
        // let each of them through to argon2.
        let mut attempts = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (client, url) = (app.client.clone(), app.url("/api/token"));
            attempts.spawn(async move {
                client.post(url).json(&json!({"username": "alice", "password": WRONG})).send().await.unwrap().status()
            });
        }
        let statuses = attempts.join_all().await;

        let checked = statuses.iter().filter(|status| status.as_u16() == 401).count();
        let refused = statuses.iter().filter(|status| status.as_u16() == 429).count();
        assert_eq!(checked + refused, 50, "every guess is checked or refused: {statuses:?}");
        assert!(checked <= budget, "{checked} guesses reached the password hash; the budget is {budget}");
        assert!(checked >= 1, "the budget is spent by guesses, not by nothing");
        assert_eq!(api_attempt(&app, "alice", &user.password).await.status(), 429, "the name is paused now");
    }
}

both_backends! {
    async fn after_five_wrong_passwords_the_account_is_paused_even_for_the_right_one(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        for attempt in 1..=5 {
            assert_eq!(api_attempt(&app, "alice", WRONG).await.status(), 401, "attempt {attempt}");
        }

        let paused = api_attempt(&app, "alice", &user.password).await;

        assert_eq!(paused.status(), 429);
        let retry_after: u64 = paused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let body: Value = paused.json().await.unwrap();
        assert_eq!(body["error"], "too_many_attempts");
        assert!(body.get("token").is_none());
        let form = form_attempt(&app, "alice", &user.password).await;
        assert_eq!(form.status(), 429, "one set of counters for the form and the API");
        assert!(form.headers().contains_key("retry-after"));
        assert!(form.text().await.unwrap().contains("Too many sign-in attempts"));
        assert!(app.cookie("portcullis").is_none(), "no session while paused");
    }

    async fn the_username_and_the_email_share_one_budget(app: TestApp) {
        app.create_user("alice", Role::User).await;
        for login in ["alice", "alice@example.com", "ALICE", "Alice@Example.com", "alice"] {
            assert_eq!(api_attempt(&app, login, WRONG).await.status(), 401);
        }
        assert_eq!(api_attempt(&app, "alice@example.com", WRONG).await.status(), 429);
    }

    async fn a_successful_sign_in_resets_the_accounts_count(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        for _ in 0..4 {
            api_attempt(&app, "alice", WRONG).await;
        }
        assert_eq!(api_attempt(&app, "alice", &user.password).await.status(), 200);
        for attempt in 1..=4 {
            assert_eq!(api_attempt(&app, "alice", WRONG).await.status(), 401, "attempt {attempt} after the reset");
        }
    }

    async fn unknown_wrong_and_disabled_get_identical_answers_on_both_paths(app: TestApp) {
        app.create_user("alice", Role::User).await;
        let disabled = app.create_user("dora", Role::User).await;
        let id = disabled.id;
        app.with_conn(move |conn| portcullis::db::users::set_active(conn, id, false).unwrap()).await;

        let cases = [("nobody", WRONG), ("alice", WRONG), ("dora", disabled.password.as_str())];
        let mut api = Vec::new();
        let mut form = Vec::new();
        for (login, password) in cases {
            api.push(fingerprint(api_attempt(&app, login, password).await, login).await);
            form.push(fingerprint(form_attempt(&app, login, password).await, login).await);
        }
        assert_eq!(api[0].0, 401);
        assert!(api.iter().all(|answer| *answer == api[0]), "API answers differ: {api:#?}");
        assert_eq!(form[0].0, 401);
        assert!(form.iter().all(|answer| *answer == form[0]), "form answers differ");
    }

    async fn a_made_up_name_is_paused_exactly_like_a_real_account(app: TestApp) {
        app.create_user("alice", Role::User).await;
        for _ in 0..5 {
            api_attempt(&app, "alice", WRONG).await;
            api_attempt(&app, "nobody", WRONG).await;
        }

        let real = fingerprint(api_attempt(&app, "alice", WRONG).await, "alice").await;
        let made_up = fingerprint(api_attempt(&app, "nobody", WRONG).await, "nobody").await;

        assert_eq!(real.0, 429);
        assert_eq!(real, made_up, "a pause must not reveal that an account exists");
        let real = fingerprint(form_attempt(&app, "alice", WRONG).await, "alice").await;
        let made_up = fingerprint(form_attempt(&app, "nobody", WRONG).await, "nobody").await;
        assert_eq!(real.0, 429);
        assert_eq!(real, made_up);
    }

    async fn an_admin_sees_a_paused_account_and_can_clear_it(app: TestApp) {
        let admin = app.create_user("admin", Role::Admin).await;
        let user = app.create_user("alice", Role::User).await;
        for _ in 0..5 {
            api_attempt(&app, "alice", WRONG).await;
        }
        assert_eq!(api_attempt(&app, "alice", &user.password).await.status(), 429);
        app.login_as(&admin).await;

        let html = app.get(&format!("/admin/users/{}", user.id)).await.text().await.unwrap();
        assert!(html.contains("Sign-in is paused until"), "the admin sees it");
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let response = app.post_form(&format!("/admin/users/{}/throttle/clear", user.id), &[("csrf_token", &csrf)]).await;

        assert_eq!(response.status(), 303);
        assert_eq!(api_attempt(&app, "alice", &user.password).await.status(), 200);
        assert!(app.audit_actions().await.contains(&"user.throttle_cleared".to_owned()));
        let html = app.get(&format!("/admin/users/{}", user.id)).await.text().await.unwrap();
        assert!(!html.contains("Sign-in is paused"));
    }
}

fn three_per_address(settings: &mut Settings) {
    settings.throttle.address_attempts = 3;
}

fn behind_a_proxy(settings: &mut Settings) {
    settings.throttle.address_attempts = 3;
    settings.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

async fn with_app(backend: Backend, adjust: fn(&mut Settings), scenario: impl AsyncFnOnce(&TestApp)) {
    if backend == Backend::Postgres && !postgres_available() {
        return;
    }
    let app = spawn_app_with(backend, adjust).await;
    scenario(&app).await;
    app.server.stop(true).await;
}

async fn one_address_guessing_many_names_is_paused(app: &TestApp) {
    for name in ["ann", "bob", "cat"] {
        assert_eq!(api_attempt(app, name, WRONG).await.status(), 401);
    }
    assert_eq!(api_attempt(app, "dan", WRONG).await.status(), 429, "the fourth name from one address");
    // A forged X-Forwarded-For from a client that is not a trusted proxy changes nothing.
    let spoofed = app
        .client
        .post(app.url("/api/token"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"username": "eve", "password": WRONG}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 429);
}

async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(app: &TestApp) {
    let attempt = |client_ip: &'static str, name: &'static str| async move {
        app.client
            .post(app.url("/api/token"))
            .header("x-forwarded-for", format!("198.51.100.200, {client_ip}"))
            .json(&json!({"username": name, "password": WRONG}))
            .send()
            .await
            .unwrap()
            .status()
    };
    for name in ["ann", "bob", "cat"] {
        assert_eq!(attempt("203.0.113.1", name).await, 401);
    }
    assert_eq!(attempt("203.0.113.1", "dan").await, 429);
    assert_eq!(attempt("203.0.113.2", "dan").await, 401, "another client behind the same proxy");
    let addresses: Vec<String> = app
        .with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::audit_events;
            audit_events::table.select(audit_events::client_ip).load::<Option<String>>(conn).unwrap()
        })
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(addresses.contains(&"203.0.113.1".to_owned()), "the audit trail records the client: {addresses:?}");
    assert!(!addresses.contains(&"198.51.100.200".to_owned()), "not an address the client wrote itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_guessing_many_names_is_paused_sqlite() {
    with_app(Backend::Sqlite, three_per_address, one_address_guessing_many_names_is_paused).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn one_address_guessing_many_names_is_paused_postgres() {
    with_app(Backend::Postgres, three_per_address, one_address_guessing_many_names_is_paused).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_count_sqlite() {
    with_app(Backend::Sqlite, behind_a_proxy, behind_a_trusted_proxy_each_forwarded_client_has_its_own_count).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_count_postgres() {
    with_app(Backend::Postgres, behind_a_proxy, behind_a_trusted_proxy_each_forwarded_client_has_its_own_count).await;
}

async fn form_attempt_in(browser: &Browser, login: &str, password: &str) -> u16 {
    browser.login(login, password).await.status().as_u16()
}

async fn api_attempt_with_device(app: &TestApp, login: &str, password: &str, device: &str) -> Response {
    app.post_json("/api/token", &json!({"username": login, "password": password, "device_token": device})).await
}

/// A stranger's client making `count` wrong guesses at `login`.
async fn strangers_guess(app: &TestApp, login: &str, count: usize) {
    let stranger = app.browser();
    for _ in 0..count {
        stranger.login(login, WRONG).await;
    }
}

both_backends! {
    async fn strangers_guessing_cannot_keep_the_owner_out_of_a_browser_they_signed_in_with_before(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let own_browser = app.browser();
        assert_eq!(form_attempt_in(&own_browser, "alice", &user.password).await, 303);
        let csrf = own_browser.csrf("/dashboard").await;
        own_browser.post_form("/logout", &[("csrf_token", &csrf)]).await;

        strangers_guess(&app, "alice", 12).await;

        assert_eq!(form_attempt_in(&app.browser(), "alice", &user.password).await, 429, "a new browser waits out the pause");
        assert_eq!(api_attempt(&app, "alice", &user.password).await.status(), 429, "so does an unknown API client");
        assert_eq!(form_attempt_in(&own_browser, "alice", &user.password).await, 303, "the owner's browser signs in");
        assert_eq!(own_browser.get("/dashboard").await.status(), 200);
        let html = own_browser.get("/account").await.text().await.unwrap();
        assert!(html.contains("sign-in from browsers and apps you have not used here before is paused until"), "the owner is told");
    }

    async fn an_api_client_that_keeps_its_device_token_signs_in_during_an_attack(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let other = app.create_user("bob", Role::User).await;
        let first = app.post_json("/api/token", &json!({"username": "alice", "password": user.password})).await;
        let device: String = first.json::<Value>().await.unwrap()["device_token"].as_str().unwrap().to_owned();
        let bobs = app.post_json("/api/token", &json!({"username": "bob", "password": other.password})).await;
        let bobs_device: String = bobs.json::<Value>().await.unwrap()["device_token"].as_str().unwrap().to_owned();

        strangers_guess(&app, "alice", 6).await;

        let trusted = api_attempt_with_device(&app, "alice", &user.password, &device).await;
        assert_eq!(trusted.status(), 200);
        assert!(trusted.json::<Value>().await.unwrap()["device_token"].as_str().unwrap().starts_with(&format!("{}.", user.id)));
        let tampered = format!("{}x", &device[..device.len() - 1]);
        assert_eq!(api_attempt_with_device(&app, "alice", &user.password, &tampered).await.status(), 429, "a forged credential counts for nothing");
        assert_eq!(api_attempt_with_device(&app, "alice", &user.password, &bobs_device).await.status(), 429, "another account's credential neither");
        assert_eq!(api_attempt_with_device(&app, "alice", &user.password, &"a.".repeat(600)).await.status(), 429);
    }

    async fn a_known_browser_has_its_own_small_budget_and_its_mistakes_do_not_pause_the_account(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let own_browser = app.browser();
        assert_eq!(form_attempt_in(&own_browser, "alice", &user.password).await, 303);
        let csrf = own_browser.csrf("/dashboard").await;
        own_browser.post_form("/logout", &[("csrf_token", &csrf)]).await;

        for attempt in 1..=5 {
            assert_eq!(form_attempt_in(&own_browser, "alice", WRONG).await, 401, "attempt {attempt}");
        }

        assert_eq!(form_attempt_in(&own_browser, "alice", &user.password).await, 429, "that browser is paused");
        assert_eq!(form_attempt_in(&app.browser(), "alice", &user.password).await, 303, "the account is not");
    }

    async fn an_office_behind_one_address_can_sign_in_all_day(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        // The default budget is 50 attempts per address; 60 right sign-ins must not use it up.
        for sign_in in 1..=60 {
            assert_eq!(api_attempt(&app, "alice", &user.password).await.status(), 200, "sign-in {sign_in}");
        }
        for guess in 1..=4 {
            assert_eq!(api_attempt(&app, &format!("nobody{guess}"), WRONG).await.status(), 401, "guess {guess}");
        }
    }

    async fn a_stolen_session_cannot_guess_the_password_faster_than_a_stranger(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        // The thief copied the session cookie into a client of their own (no device credential).
        let access = app.cookie("portcullis").unwrap();
        let thief = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let page = thief.get(app.url("/account")).header("cookie", format!("portcullis={access}")).send().await.unwrap();
        let csrf = hidden_field(&page.text().await.unwrap(), "csrf_token").unwrap();
        let users_before = app.snapshot().await;
        let guess = |current: String| {
            let (thief, csrf, access) = (thief.clone(), csrf.clone(), access.clone());
            let url = app.url("/account/password");
            async move {
                let body = serde_urlencoded::to_string([("csrf_token", csrf.as_str()), ("current_password", &current),
                    ("new_password", "lantern quarry whistle"), ("confirm_password", "lantern quarry whistle")]).unwrap();
                thief.post(url).header("cookie", format!("portcullis={access}"))
                    .header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap()
            }
        };

        for attempt in 1..=5 {
            assert_eq!(guess(format!("guess number {attempt}")).await.status(), 422, "attempt {attempt}");
        }
        let paused = guess(user.password.clone()).await;

        assert_eq!(paused.status(), 429, "even the right password waits");
        assert!(paused.headers().contains_key("retry-after"));
        assert!(paused.text().await.unwrap().contains("Too many wrong passwords"));
        assert_eq!(form_attempt_in(&app.browser(), "alice", &user.password).await, 429, "one set of counters with sign-in");
        let failures = app.audit_actions().await.into_iter().filter(|action| action == "password.check_failed").count();
        assert_eq!(failures, 5, "every wrong current password is audited");
        let users_now = app.snapshot().await;
        assert_eq!(users_now.split("\naudit").next(), users_before.split("\naudit").next(), "the password did not change");
    }
}

fn guessing_drill(settings: &mut Settings) {
    settings.throttle.address_attempts = 3;
    settings.throttle.window = std::time::Duration::from_secs(2);
    settings.throttle.pause = std::time::Duration::from_secs(10);
    settings.throttle.max_pause = std::time::Duration::from_secs(10);
    settings.housekeeping_interval = std::time::Duration::from_secs(1);
}

async fn throttle_rows(app: &TestApp) -> i64 {
    app.with_conn(|conn| portcullis::db::throttles::count(conn).unwrap()).await
}

async fn refused_attempts_write_nothing_and_the_counters_return_to_their_baseline(app: &TestApp) {
    assert_eq!(throttle_rows(app).await, 0);
    for name in ["ann", "bob", "cat"] {
        assert_eq!(api_attempt(app, name, WRONG).await.status(), 401);
    }
    let after_guessing = throttle_rows(app).await;
    assert!(after_guessing <= 4, "three name buckets and one address: {after_guessing}");

    // 1,000 made-up names from the paused address, eight at a time.
    let mut refused = 0;
    for batch in 0..125 {
        let mut attempts = tokio::task::JoinSet::new();
        for n in 0..8 {
            let (client, url) = (app.client.clone(), app.url("/api/token"));
            let body = json!({"username": format!("made-up-{batch}-{n}"), "password": WRONG});
            attempts.spawn(async move { client.post(url).json(&body).send().await.unwrap().status() });
        }
        refused += attempts.join_all().await.into_iter().filter(|status| *status == 429).count();
    }

    assert_eq!(refused, 1000, "the paused address is refused every time");
    assert_eq!(throttle_rows(app).await, after_guessing, "and nothing was written");
    let emptied = within(std::time::Duration::from_secs(30), || async { throttle_rows(app).await == 0 }).await;
    assert!(emptied.is_some(), "spent counters are deleted once their window and pause are over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_attempts_write_nothing_and_the_counters_return_to_their_baseline_sqlite() {
    with_app(Backend::Sqlite, guessing_drill, refused_attempts_write_nothing_and_the_counters_return_to_their_baseline)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn refused_attempts_write_nothing_and_the_counters_return_to_their_baseline_postgres() {
    with_app(
        Backend::Postgres,
        guessing_drill,
        refused_attempts_write_nothing_and_the_counters_return_to_their_baseline,
    )
    .await;
}
