//! E-mail, through a real SMTP server (aiosmtpd on loopback): forgotten passwords,
//! invitations, address changes, security notices, and an outbox that loses nothing.
use std::time::Duration;

use portcullis::domain::Role;

use crate::helpers::{PASSWORD, TestApp, hidden_field, location, spawn_second_instance_with, unescape};
use crate::smtp::{PUBLIC_ORIGIN, SmtpSink};

const NEW_PASSWORD: &str = "copper lantern drifts north";

async fn forgot(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_form("/login/forgot", &[("email", email)]).await
}

/// Follows a reset link and chooses `password` on its page.
async fn reset_with(app: &TestApp, link: &str, password: &str) -> reqwest::Response {
    let page = app.get(link).await;
    assert_eq!(page.status(), 200, "the link's page opens");
    let token = hidden_field(&page.text().await.unwrap(), "token").unwrap();
    app.post_form("/password/reset", &[("token", &token), ("new_password", password), ("confirm_password", password)])
        .await
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

with_mail! {
    async fn forgot_password_answers_the_same_for_known_and_unknown_addresses_and_mails_only_the_known(app: TestApp, sink: SmtpSink) {
        let ann = app.create_user("ann", Role::User).await;

        let known = forgot(&app, &ann.email).await;
        let known_headers = crate::helpers::headers_but_date(&known);
        let (known_status, known_body) = (known.status(), known.text().await.unwrap());
        let unknown = forgot(&app, "nobody@example.com").await;
        let unknown_headers = crate::helpers::headers_but_date(&unknown);
        let (unknown_status, unknown_body) = (unknown.status(), unknown.text().await.unwrap());
        assert_eq!(known_headers, unknown_headers, "and the same headers, cookies included");

        assert_eq!(known_status, 200);
        assert_eq!(known_status, unknown_status);
        assert_eq!(known_body, unknown_body, "the page says the same whether or not the address has an account");
        assert!(known_body.contains("Check your inbox"));

        let mail = sink.next_to(&ann.email, 0).await;
        assert_eq!(mail.subject, "Reset your password");
        assert!(mail.text.contains(&format!("{PUBLIC_ORIGIN}/password/reset?token=")), "links come from PORTCULLIS_PUBLIC_URL");
        assert_eq!(token_of(&mail.link()).len(), 43, "a 256-bit token");
        assert!(mail.header("Message-ID").is_some_and(|id| id.contains("@portcullis.test")));
        assert!(mail.header("Date").is_some());
        assert!(mail.to.contains("ann"), "the display name is in To");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(sink.messages().len(), 1, "the unknown address got nothing");
        let stored: Vec<String> = app
            .with_conn(|conn| {
                use diesel::prelude::*;
                portcullis::db::schema::email_links::table
                    .select(portcullis::db::schema::email_links::token_hash)
                    .load(conn)
                    .unwrap()
            })
            .await;
        assert!(!stored.contains(&token_of(&mail.link())), "only the token's hash is stored");
    }

    async fn a_reset_link_works_once_ends_every_session_and_sends_a_notice(app: TestApp, sink: SmtpSink) {
        let ann = app.create_user("ann", Role::User).await;
        let elsewhere = app.in_new_browser();
        elsewhere.login_as(&ann).await;
        forgot(&app, &ann.email).await;
        let link = sink.next_to(&ann.email, 0).await.link();

        let response = reset_with(&app, &link, NEW_PASSWORD).await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/login");
        let login_page = app.get("/login").await.text().await.unwrap();
        assert!(unescape(&login_page).contains("Your password is changed"), "{login_page}");
        assert_eq!(elsewhere.get("/dashboard").await.status(), 303, "the other session ended");
        assert_eq!(app.login(&ann.username, PASSWORD).await.status(), 401, "the old password is gone");
        assert_eq!(app.login(&ann.username, NEW_PASSWORD).await.status(), 303);

        let again = app.get(&link).await;
        assert_eq!(again.status(), 410);
        assert!(unescape(&again.text().await.unwrap()).contains("used already"));
        // The reset link, the password notice, and (this browser is new to ann) a new-device notice.
        let mails = sink.wait_for_count(&ann.email, 3, Duration::from_secs(10)).await;
        let notice = mails.iter().find(|mail| mail.subject == "Your password was changed").expect("a password notice");
        assert!(notice.text.contains("with a reset link"));
        assert!(mails.iter().any(|mail| mail.subject == "New sign-in to your account"));
        assert!(app.audit_actions().await.contains(&"password.reset_by_link".to_owned()));
    }

    async fn a_reset_link_is_voided_by_a_newer_link_by_a_password_change_and_by_time(app: TestApp, sink: SmtpSink) {
        let ann = app.create_user("ann", Role::User).await;
        forgot(&app, &ann.email).await;
        let first = sink.next_to(&ann.email, 0).await.link();
        forgot(&app, &ann.email).await;
        let second = sink.next_to(&ann.email, 1).await.link();
        let voided = app.get(&first).await;
        assert_eq!(voided.status(), 410, "a newer link voids the older");
        assert!(unescape(&voided.text().await.unwrap()).contains("a newer one was sent"));

        // The password changes another way (the account page): the link dies with the old password.
        app.login_as(&ann).await;
        let csrf = app.session_csrf_token().await;
        let changed = app
            .post_form("/account/password", &[("csrf_token", &csrf), ("current_password", PASSWORD), ("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)])
            .await;
        assert_eq!(changed.status(), 303);
        assert_eq!(app.in_new_browser().get(&second).await.status(), 410, "a password change voids the link");

        let browser = app.in_new_browser();
        forgot(&browser, &ann.email).await;
        // Two links, the password notice, and the third link.
        let third = sink.wait_for_count(&ann.email, 4, Duration::from_secs(10)).await;
        let link = third.iter().rev().find(|mail| mail.subject == "Reset your password").unwrap().link();
        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::email_links::dsl::*;
            diesel::update(email_links).set(expires_at.eq(portcullis::db::users::now() - chrono::Duration::minutes(1))).execute(conn).unwrap();
        })
        .await;
        let expired = browser.get(&link).await;
        assert_eq!(expired.status(), 410);
        assert!(unescape(&expired.text().await.unwrap()).contains("expired"));
        let page = browser.get("/password/reset?token=not-a-token").await;
        assert_eq!(page.status(), 410, "a made-up link gets the same clear page");
    }

    async fn reset_mails_to_one_address_are_capped_so_nobody_can_flood_it(app: TestApp, sink: SmtpSink) {
        let ann = app.create_user("ann", Role::User).await;
        for _ in 0..5 {
            assert_eq!(forgot(&app, &ann.email).await.status(), 200);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = sink.to(&ann.email);
        assert_eq!(got.len(), 3, "at most three reset links an hour");
        let mut working = 0;
        for mail in &got {
            if app.get(&mail.link()).await.status() == 200 {
                working += 1;
            }
        }
        assert_eq!(working, 1, "the newest link sent still works, the older ones do not");
    }

    async fn an_invited_user_chooses_a_password_and_is_signed_in(app: TestApp, sink: SmtpSink) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let created = app
            .post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "bea"), ("email", "bea@example.com"), ("display_name", "Bea"), ("role", "user"), ("password_mode", "invite")])
            .await;
        assert_eq!(created.status(), 303);
        let user_page = location(&created);
        let shown = app.get(&user_page).await.text().await.unwrap();
        assert!(shown.contains("has not chosen a password yet"), "the admin sees the pending invitation");

        let mail = sink.next_to("bea@example.com", 0).await;
        assert_eq!(mail.subject, "You are invited to portcullis.test");
        assert!(mail.text.contains("root has made you an account") && mail.text.contains("username bea"));
        assert_eq!(app.in_new_browser().login("bea", PASSWORD).await.status(), 401, "nobody can sign in before the invitation is accepted");

        let invited = app.in_new_browser();
        let page = invited.get(&mail.link()).await.text().await.unwrap();
        let token = hidden_field(&page, "token").unwrap();
        let weak = invited.post_form("/invitation", &[("token", &token), ("new_password", "bea"), ("confirm_password", "bea")]).await;
        assert_eq!(weak.status(), 422, "the usual password rules hold");
        let accepted = invited
            .post_form("/invitation", &[("token", &token), ("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)])
            .await;
        assert_eq!(accepted.status(), 303);
        assert_eq!(location(&accepted), "/dashboard");
        assert_eq!(invited.get("/dashboard").await.status(), 200, "signed in");
        assert_eq!(invited.get(&mail.link()).await.status(), 410, "the invitation works once");
        assert!(!app.get(&user_page).await.text().await.unwrap().contains("has not chosen a password"));
        assert!(app.audit_actions().await.contains(&"user.invitation_accepted".to_owned()));
    }

    async fn an_invitation_can_be_resent_revoked_and_expires(app: TestApp, sink: SmtpSink) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let created = app
            .post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "cyd"), ("email", "cyd@example.com"), ("role", "user"), ("password_mode", "invite")])
            .await;
        assert_eq!(created.status(), 303);
        let user_page = location(&created);
        let first = sink.next_to("cyd@example.com", 0).await.link();

        let resent = app.post_form(&format!("{user_page}/invitation/resend"), &[("csrf_token", &csrf)]).await;
        assert_eq!(resent.status(), 303);
        let second = sink.next_to("cyd@example.com", 1).await.link();
        assert_eq!(app.get(&first).await.status(), 410, "resending voids the old link");
        assert_eq!(app.get(&second).await.status(), 200);

        let revoked = app.post_form(&format!("{user_page}/invitation/revoke"), &[("csrf_token", &csrf)]).await;
        assert_eq!(revoked.status(), 303);
        let gone = app.get(&second).await;
        assert_eq!(gone.status(), 410);
        assert!(unescape(&gone.text().await.unwrap()).contains("Ask the administrator who invited you"));

        app.post_form(&format!("{user_page}/invitation/resend"), &[("csrf_token", &csrf)]).await;
        let third = sink.next_to("cyd@example.com", 2).await.link();
        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::email_links::dsl::*;
            diesel::update(email_links).set(expires_at.eq(portcullis::db::users::now() - chrono::Duration::seconds(1))).execute(conn).unwrap();
        })
        .await;
        assert_eq!(app.get(&third).await.status(), 410, "an invitation expires");
        assert!(app.get(&user_page).await.text().await.unwrap().contains("that link no longer works"));
    }

    async fn a_new_address_takes_effect_only_when_confirmed_and_the_old_one_hears_of_it(app: TestApp, sink: SmtpSink) {
        let ann = app.create_user("ann", Role::User).await;
        app.login_as(&ann).await;
        let csrf = app.session_csrf_token().await;
        let saved = app.post_form("/account", &[("csrf_token", &csrf), ("display_name", "Ann N"), ("email", "ann.new@example.com")]).await;
        assert_eq!(saved.status(), 303);
        let account = unescape(&app.get("/account").await.text().await.unwrap());
        assert!(account.contains("We sent a link to ann.new@example.com"), "{account}");
        assert!(account.contains("value=\"ann@example.com\""), "the address has not changed yet");
        assert!(account.contains("Ann N"), "the name changed at once");

        let confirm = sink.next_to("ann.new@example.com", 0).await;
        assert_eq!(confirm.subject, "Confirm your new e-mail address");
        let link = confirm.link();
        // Not confirmed: an expired link changes nothing.
        let page = app.get(&link).await;
        assert_eq!(page.status(), 200);
        let token = hidden_field(&page.text().await.unwrap(), "token").unwrap();
        let confirmed = app.in_new_browser().post_form("/email/confirm", &[("token", &token)]).await;
        assert_eq!(confirmed.status(), 303, "confirming needs only the link");
        let account = unescape(&app.get("/account").await.text().await.unwrap());
        assert!(account.contains("value=\"ann.new@example.com\""));
        let notice = sink.next_to(&ann.email, 0).await;
        assert_eq!(notice.subject, "Your e-mail address was changed");
        assert!(notice.text.contains("from ann@example.com to ann.new@example.com"));
        assert_eq!(app.post_form("/email/confirm", &[("token", &token)]).await.status(), 410, "a link works once");
    }

    async fn an_unconfirmed_address_change_expires_and_changes_nothing(app: TestApp, sink: SmtpSink) {
        let ann = app.create_user("ann", Role::User).await;
        app.login_as(&ann).await;
        let csrf = app.session_csrf_token().await;
        app.post_form("/account", &[("csrf_token", &csrf), ("display_name", "ann"), ("email", "elsewhere@example.com")]).await;
        let link = sink.next_to("elsewhere@example.com", 0).await.link();
        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::email_links::dsl::*;
            diesel::update(email_links).set(expires_at.eq(portcullis::db::users::now() - chrono::Duration::seconds(1))).execute(conn).unwrap();
        })
        .await;
        let token = token_of(&link);
        let late = app.post_form("/email/confirm", &[("token", &token)]).await;
        assert_eq!(late.status(), 410);
        assert!(unescape(&late.text().await.unwrap()).contains("Your address has not changed"));
        assert!(app.get("/account").await.text().await.unwrap().contains("value=\"ann@example.com\""));
    }

    async fn one_user_cannot_send_confirmation_links_to_many_addresses(app: TestApp, sink: SmtpSink) {
        let ann = app.create_user("ann", Role::User).await;
        app.login_as(&ann).await;
        for n in 0..5 {
            let csrf = app.session_csrf_token().await;
            let email = format!("new{n}@example.net");
            let saved = app.post_form("/account", &[("csrf_token", &csrf), ("display_name", "ann"), ("email", &email)]).await;
            assert_eq!(saved.status(), 303);
        }
        let csrf = app.session_csrf_token().await;
        let refused = app.post_form("/account", &[("csrf_token", &csrf), ("display_name", "ann"), ("email", "new5@example.net")]).await;
        assert_eq!(refused.status(), 400);
        assert!(unescape(&refused.text().await.unwrap()).contains("several times in the last hour"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(sink.messages().len(), 5, "no sixth message");
        assert!(sink.to("new5@example.net").is_empty());
    }

    async fn an_admin_changing_an_address_tells_both_addresses(app: TestApp, sink: SmtpSink) {
        let admin = app.create_user("root", Role::Admin).await;
        let ann = app.create_user("ann", Role::User).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let saved = app
            .post_form(&format!("/admin/users/{}", ann.id), &[("csrf_token", &csrf), ("username", "ann"), ("email", "ann2@example.com"), ("display_name", "ann"), ("role", "user")])
            .await;
        assert_eq!(saved.status(), 303, "an admin's change takes effect at once");
        let old = sink.next_to(&ann.email, 0).await;
        let new = sink.next_to("ann2@example.com", 0).await;
        for notice in [old, new] {
            assert_eq!(notice.subject, "Your e-mail address was changed");
            assert!(notice.text.contains("by an administrator"));
        }
    }

    async fn security_notices_tell_the_owner_of_new_browsers_and_paused_sign_ins(app: TestApp, sink: SmtpSink) {
        let ann = app.create_user("ann", Role::User).await;
        app.login_as(&ann).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(sink.to(&ann.email).is_empty(), "no notice for the very first sign-in");
        let other = app.in_new_browser();
        other.login_as(&ann).await;
        let notice = sink.next_to(&ann.email, 0).await;
        assert_eq!(notice.subject, "New sign-in to your account");
        assert!(notice.text.contains("not seen before"));
        // The same browser again (signed out, then in): it is known now.
        let csrf = other.session_csrf_token().await;
        assert_eq!(other.post_form("/logout", &[("csrf_token", &csrf)]).await.status(), 303);
        other.login_as(&ann).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(sink.to(&ann.email).len(), 1, "a browser that signed in before brings no notice");

        let stranger = app.in_new_browser();
        for _ in 0..6 {
            stranger.login(&ann.username, "wrong password entirely").await;
        }
        let paused = sink.next_to(&ann.email, 1).await;
        assert_eq!(paused.subject, "Sign-ins to your account are paused");
    }

    async fn bad_addresses_are_refused_and_never_reach_a_header(app: TestApp, sink: SmtpSink) {
        let ann = app.create_user("ann", Role::User).await;
        for bad in ["ann@example.com\r\nBcc: evil@example.com", "ann@example.com\nBcc: evil@example.com", &format!("{}@example.com", "a".repeat(300)), "not an address"] {
            let response = forgot(&app, bad).await;
            assert_eq!(response.status(), 400, "{bad:?}");
            assert!(response.text().await.unwrap().contains("Enter your e-mail address"));
        }
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let injected = app
            .post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "dan"), ("email", "dan@example.com"), ("display_name", "Dan\r\nBcc: evil@example.com"), ("role", "user"), ("password_mode", "invite")])
            .await;
        assert_eq!(injected.status(), 422, "a display name with a line break is refused");
        forgot(&app, &ann.email).await;
        sink.next_to(&ann.email, 0).await;
        assert!(sink.messages().iter().all(|mail| !mail.raw.contains("evil@example.com") && mail.rcpt_tos.len() == 1));
    }

    async fn the_admin_outbox_page_lists_what_was_sent(app: TestApp, sink: SmtpSink) {
        let admin = app.create_user("root", Role::Admin).await;
        forgot(&app, &admin.email).await;
        sink.next_to(&admin.email, 0).await;
        app.login_as(&admin).await;
        let page = app.get("/admin/outbox?state=sent").await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Reset your password") && html.contains("root@example.com") && html.contains("Sent "));
        assert!(!html.contains("token="), "bodies are never shown");
    }
}

/// A server told to send through a port where nothing listens yet.
fn down_sink() -> SmtpSink {
    SmtpSink::not_started(crate::smtp::free_port())
}

async fn outage(backend: crate::helpers::Backend) {
    if !SmtpSink::available() {
        return;
    }
    let mut sink = down_sink();
    let app = crate::helpers::spawn_app_with(backend, |settings| sink.configure(settings)).await;
    let admin = app.create_user("root", Role::Admin).await;

    assert_eq!(forgot(&app, &admin.email).await.status(), 200, "the request succeeds while SMTP is down");
    app.login_as(&admin).await;
    let failing = crate::helpers::within(Duration::from_secs(10), || async {
        app.get("/admin/outbox?state=failing").await.text().await.unwrap().contains("Failing; next try")
    })
    .await;
    assert!(failing.is_some(), "the admin sees the failing message with its last error");
    let html = app.get("/admin/outbox").await.text().await.unwrap();
    assert!(html.to_lowercase().contains("connection refused"), "{html}");

    sink.resume();
    let mail = sink.wait_for_count(&admin.email, 1, Duration::from_secs(30)).await;
    assert_eq!(mail[0].subject, "Reset your password", "delivered once the server is back");
    app.server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_during_an_smtp_outage_is_delivered_when_the_server_returns_sqlite() {
    outage(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn mail_queued_during_an_smtp_outage_is_delivered_when_the_server_returns_postgres() {
    if crate::helpers::postgres_available() {
        outage(crate::helpers::Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn two_instances_on_one_postgres_send_each_message_once() {
    if !crate::helpers::postgres_available() || !SmtpSink::available() {
        return;
    }
    let sink = SmtpSink::start();
    let first = crate::helpers::spawn_app_with(crate::helpers::Backend::Postgres, |s| sink.configure(s)).await;
    let second = spawn_second_instance_with(&first, |s| sink.configure(s)).await;
    let ids = first.create_users_fast("u", 30).await;
    assert_eq!(ids.len(), 30);
    for n in 0..30 {
        let instance = if n % 2 == 0 { &first } else { &second };
        assert_eq!(forgot(instance, &format!("u{n:03}@example.com")).await.status(), 200);
    }
    let started = std::time::Instant::now();
    while sink.messages().len() < 30 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 30, "every message once, none twice");
    for n in 0..30 {
        assert_eq!(messages.iter().filter(|mail| mail.is_for(&format!("u{n:03}@example.com"))).count(), 1);
    }
    first.server.stop(true).await;
    second.server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_sender_mid_delivery_loses_nothing() {
    use std::process::{Command, Stdio};
    if !SmtpSink::available() {
        return;
    }
    let sink = SmtpSink::start_slow(3.0);
    let dir = tempfile::tempdir().unwrap();
    let port = crate::smtp::free_port();
    let env = [
        ("DATABASE_URL".to_owned(), format!("sqlite://{}", dir.path().join("kill.db").display())),
        ("PORTCULLIS_BIND".to_owned(), format!("127.0.0.1:{port}")),
        ("PORTCULLIS_PUBLIC_URL".to_owned(), PUBLIC_ORIGIN.to_owned()),
        ("PORTCULLIS_SMTP_URL".to_owned(), format!("smtp://127.0.0.1:{}?tls=none", sink.port)),
        ("PORTCULLIS_MAIL_FROM".to_owned(), "login@portcullis.test".to_owned()),
        ("PORTCULLIS_MFA_REQUIRED".to_owned(), "off".to_owned()),
        ("PORTCULLIS_STATIC_DIR".to_owned(), concat!(env!("CARGO_MANIFEST_DIR"), "/static").to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for name in ["slowpoke", "quick"] {
        let out = crate::cli::portcullis_with_env(
            &pairs,
            &["user", "create", "--username", name, "--email", &format!("{name}@example.com"), "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let serve = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command.arg("serve").stdout(Stdio::null()).stderr(Stdio::null());
        for (key, value) in &env {
            command.env(key, value);
        }
        command.spawn().unwrap()
    };
    let client = reqwest::Client::new();
    let address = format!("http://127.0.0.1:{port}");
    let ready = |client: reqwest::Client, address: String| async move {
        crate::helpers::within(Duration::from_secs(20), || {
            let (client, address) = (client.clone(), address.clone());
            async move { client.get(format!("{address}/healthz")).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await
        .is_some()
    };
    let mut server = serve();
    assert!(ready(client.clone(), address.clone()).await, "the server started");
    for email in ["slowpoke@example.com", "quick@example.com"] {
        let response = client.post(format!("{address}/login/forgot")).form(&[("email", email)]).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    // The slow message is being delivered (the sink holds its answer for 3 s): kill -9 now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    let mut server = serve();
    assert!(ready(client.clone(), address.clone()).await, "the server started again");
    sink.wait_for_count("slowpoke@example.com", 1, Duration::from_secs(30)).await;
    sink.wait_for_count("quick@example.com", 1, Duration::from_secs(30)).await;
    let _ = server.kill();
    let _ = server.wait();
}

/// The outbox row of the (only) message to `address`: attempts, claimed, sent, failed, last error.
type Delivery = (i32, Option<chrono::NaiveDateTime>, bool, bool, Option<String>);

async fn delivery_to(app: &TestApp, address: &str) -> Option<Delivery> {
    let address = address.to_owned();
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::outbox::dsl::*;
        outbox
            .filter(recipient.like(format!("%{address}%")))
            .select((attempts, claimed_until, sent_at.is_not_null(), failed_at.is_not_null(), last_error))
            .first::<Delivery>(conn)
            .optional()
            .unwrap()
    })
    .await
}

/// Moves the message to `address` in time: its claim, when it falls due, when it was made.
async fn set_delivery(app: &TestApp, address: &str, claim: Option<i64>, due: i64, made: i64) {
    let address = address.to_owned();
    app.with_conn(move |conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::outbox::dsl::*;
        let at = |seconds: i64| chrono::Utc::now().naive_utc() + chrono::Duration::seconds(seconds);
        diesel::update(outbox.filter(recipient.like(format!("%{address}%"))))
            .set((claimed_until.eq(claim.map(at)), next_attempt_at.eq(at(due)), created_at.eq(at(made))))
            .execute(conn)
            .unwrap()
    })
    .await;
}

async fn mail_on_postgres() -> Option<(TestApp, SmtpSink)> {
    if !crate::helpers::postgres_available() || !SmtpSink::available() {
        return None;
    }
    let sink = down_sink();
    let app =
        crate::helpers::spawn_app_with(crate::helpers::Backend::Postgres, |settings| sink.configure(settings)).await;
    Some((app, sink))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn on_postgres_a_claim_left_by_a_dead_sender_holds_until_its_lease_ends_then_the_message_goes() {
    let Some((app, mut sink)) = mail_on_postgres().await else { return };
    let kim = app.create_user("kim", Role::User).await;
    forgot(&app, &kim.email).await;
    let tried = crate::helpers::within(Duration::from_secs(10), || async {
        delivery_to(&app, &kim.email).await.is_some_and(|row| row.0 >= 1)
    })
    .await;
    assert!(tried.is_some(), "the sender tried while SMTP was down");
    // Another instance claimed it and died mid-delivery (kill -9): its lease still runs.
    set_delivery(&app, &kim.email, Some(60), -1, -10).await;
    sink.resume();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(sink.to(&kim.email).is_empty(), "a live claim is respected: no second sender takes the message");
    // The lease has passed: the message is anyone's again, and goes out.
    set_delivery(&app, &kim.email, Some(-1), -1, -10).await;
    let mail = sink.wait_for_count(&kim.email, 1, Duration::from_secs(20)).await;
    assert_eq!(mail[0].subject, "Reset your password");
    let done = crate::helpers::within(Duration::from_secs(5), || async {
        delivery_to(&app, &kim.email).await.is_some_and(|row| row.2 && row.1.is_none())
    })
    .await;
    assert!(done.is_some(), "marked sent, claim released: {:?}", delivery_to(&app, &kim.email).await);
    app.server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn on_postgres_a_permanent_refusal_gives_up_at_once_and_a_message_undeliverable_for_48_hours_too() {
    let Some((app, mut sink)) = mail_on_postgres().await else { return };
    sink.resume();
    let bounce = app.create_user("bounce", Role::User).await;
    forgot(&app, &bounce.email).await;
    let refused = crate::helpers::within(Duration::from_secs(10), || async {
        delivery_to(&app, &bounce.email).await.is_some_and(|row| row.3)
    })
    .await;
    let row = delivery_to(&app, &bounce.email).await.unwrap();
    assert!(refused.is_some(), "a 550 is final: given up after one attempt: {row:?}");
    assert_eq!(row.0, 1, "one attempt, no retries");
    assert!(row.4.as_deref().unwrap_or_default().contains("550"), "the server's answer is kept: {row:?}");

    // A message that could not be delivered for two days is given up too (its links are long dead).
    sink.stop();
    let late = app.create_user("late", Role::User).await;
    forgot(&app, &late.email).await;
    let retrying = crate::helpers::within(Duration::from_secs(10), || async {
        delivery_to(&app, &late.email).await.is_some_and(|row| row.0 >= 1 && !row.3)
    })
    .await;
    assert!(retrying.is_some(), "a refused connection is retried, not given up");
    set_delivery(&app, &late.email, None, -1, -49 * 3600).await;
    let given_up = crate::helpers::within(Duration::from_secs(10), || async {
        delivery_to(&app, &late.email).await.is_some_and(|row| row.3)
    })
    .await;
    assert!(given_up.is_some(), "after 48 hours: given up: {:?}", delivery_to(&app, &late.email).await);
    assert!(!delivery_to(&app, &late.email).await.unwrap().2, "and never sent");
    app.server.stop(true).await;
}
