//! Login sessions in the browser: transparent renewal of the access cookie, revocation that
//! takes effect everywhere, the session pages, idle and absolute expiry. (The token API's
//! refresh and logout are in `api_token.rs`.)
use std::time::Duration;

use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;

/// The Cookie header a browser holding these cookies would send (to any instance).
fn cookie_header(app: &TestApp) -> String {
    ["portcullis", "portcullis-refresh"]
        .iter()
        .filter_map(|name| app.cookie(name).map(|value| format!("{name}={value}")))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn get_with_cookies(app: &TestApp, path: &str, cookies: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client.get(app.url(path)).header("cookie", cookies).send().await.unwrap()
}

both_backends! {
    async fn web_logout_refuses_the_old_cookies_if_replayed(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let replay = cookie_header(&app);
        assert!(replay.contains("portcullis-refresh="), "{replay}");
        let csrf = app.session_csrf_token().await;

        let response = app.post_form("/logout", &[("csrf_token", &csrf)]).await;

        assert_eq!(response.status(), 303);
        let cleared = set_cookies(&response);
        assert!(cleared.iter().any(|c| c.starts_with("portcullis=;")), "{cleared:?}");
        assert!(cleared.iter().any(|c| c.starts_with("portcullis-refresh=;")), "{cleared:?}");
        let replayed = get_with_cookies(&app, "/dashboard", &replay).await;
        assert_eq!(replayed.status(), 303, "a copy of the cookies taken before logout is worthless");
        assert!(location(&replayed).starts_with("/login"));
    }

    async fn the_refresh_cookie_is_httponly_strict_and_lives_as_long_as_the_idle_timeout(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;

        let response = app.login(&user.username, &user.password).await;

        let cookie = set_cookies(&response).into_iter().find(|c| c.starts_with("portcullis-refresh=")).unwrap();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
    }

    async fn an_expired_access_cookie_is_renewed_on_the_next_page_view(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let old_refresh = app.cookie("portcullis-refresh").unwrap();
        app.expire_access_cookie().await;

        let response = app.get("/dashboard").await;

        assert_eq!(response.status(), 200, "not bounced to the login page");
        let renewed = set_cookies(&response);
        assert!(renewed.iter().any(|c| c.starts_with("portcullis=ey")), "{renewed:?}");
        assert!(renewed.iter().any(|c| c.starts_with("portcullis-refresh=")), "rotated: {renewed:?}");
        assert_ne!(app.cookie("portcullis-refresh").unwrap(), old_refresh);
        assert_eq!(app.get("/dashboard").await.status(), 200);
        assert_eq!(app.get("/account").await.status(), 200);
    }

    async fn an_expired_access_cookie_is_renewed_on_a_form_post_which_takes_effect_once(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        app.expire_access_cookie().await;

        let response = app
            .post_form("/account", &[("csrf_token", &csrf), ("display_name", "Alice Renewed"), ("email", "alice@example.com")])
            .await;

        assert_eq!(response.status(), 303, "the form was accepted, not bounced to login");
        assert_eq!(location(&response), "/account");
        let html = app.get("/account").await.text().await.unwrap();
        assert!(html.contains("Alice Renewed"));
        let updates = app.audit_actions().await.iter().filter(|action| *action == "user.update").count();
        assert_eq!(updates, 1, "the change happened exactly once");
    }

    async fn two_tabs_renewing_at_once_do_not_trip_the_reuse_alarm(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        app.expire_access_cookie().await;
        let stale = cookie_header(&app);

        let (first, second) =
            tokio::join!(get_with_cookies(&app, "/dashboard", &stale), get_with_cookies(&app, "/dashboard", &stale));

        assert_eq!(first.status(), 200);
        assert_eq!(second.status(), 200);
        assert_eq!(app.get("/dashboard").await.status(), 200, "the session lives on");
        assert!(!app.audit_actions().await.contains(&"session.refresh_reused".to_owned()));
    }

    async fn a_page_visit_with_a_dead_refresh_cookie_goes_to_login_and_clears_both_cookies(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        app.expire_access_cookie().await;
        app.set_cookie("portcullis-refresh", "not-a-real-token");

        let response = app.get("/account").await;

        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/login?next=%2Faccount");
        let cleared = set_cookies(&response);
        assert!(cleared.iter().any(|c| c.starts_with("portcullis=;")), "{cleared:?}");
        assert!(cleared.iter().any(|c| c.starts_with("portcullis-refresh=;")), "{cleared:?}");
    }

    async fn changing_your_password_keeps_this_session_and_ends_the_others(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let elsewhere = app.api_login(&user).await;
        let csrf = app.session_csrf_token().await;
        let new_password = "a completely different sentence";

        let response = app
            .post_form(
                "/account/password",
                &[("csrf_token", &csrf), ("current_password", &user.password), ("new_password", new_password), ("confirm_password", new_password)],
            )
            .await;

        assert_eq!(response.status(), 303);
        assert_eq!(app.get("/dashboard").await.status(), 200, "this browser stays signed in");
        assert_eq!(app.get_with_bearer("/api/me", &elsewhere.access).await.status(), 401);
        assert_eq!(app.api_refresh(&elsewhere.refresh).await.err(), Some(401));
    }

    async fn disabling_deleting_or_demoting_a_user_ends_their_access_and_refresh_tokens(app: TestApp) {
        let admin = app.create_user("admin", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let victims = [
            (app.create_user("disabled", Role::User).await, "disable"),
            (app.create_user("deleted", Role::User).await, "delete"),
            (app.create_user("demoted", Role::Admin).await, "demote"),
        ];
        for (victim, action) in &victims {
            let tokens = app.api_login(victim).await;
            let response = match *action {
                "disable" => app.post_form(&format!("/admin/users/{}/disable", victim.id), &[("csrf_token", &csrf)]).await,
                "delete" => app.post_form(&format!("/admin/users/{}/delete", victim.id), &[("csrf_token", &csrf)]).await,
                _ => {
                    let fields = [("csrf_token", csrf.as_str()), ("username", "demoted"), ("email", "demoted@example.com"), ("display_name", "demoted"), ("role", "user")];
                    app.post_form(&format!("/admin/users/{}", victim.id), &fields).await
                }
            };
            assert_eq!(response.status(), 303, "{action}");

            assert_eq!(app.get_with_bearer("/api/me", &tokens.access).await.status(), 401, "{action}: access token");
            assert_eq!(app.api_refresh(&tokens.refresh).await.err(), Some(401), "{action}: refresh token");
        }
        let details = app.audit_details().await;
        assert!(details.iter().any(|(action, .., d)| action == "user.disable" && d.contains("1 session ended")), "{details:?}");
    }

    async fn an_admins_password_reset_signs_the_user_out_everywhere(app: TestApp) {
        let admin = app.create_user("admin", Role::Admin).await;
        let user = app.create_user("alice", Role::User).await;
        let tokens = app.api_login(&user).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;

        let response = app.post_form(&format!("/admin/users/{}/reset-password", user.id), &[("csrf_token", &csrf)]).await;

        assert_eq!(response.status(), 200);
        assert_eq!(app.get_with_bearer("/api/me", &tokens.access).await.status(), 401);
        assert_eq!(app.api_refresh(&tokens.refresh).await.err(), Some(401));
    }

    async fn a_user_sees_their_sessions_and_signs_out_one_or_all_others(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let laptop = app.browser();
        laptop.client.get(format!("{}/login", app.address)).header("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0").send().await.unwrap();
        assert_eq!(laptop.login(&user.username, &user.password).await.status(), 303);
        let script = app.api_login(&user).await;
        app.login_as(&user).await;

        let html = unescape(&app.get("/account/sessions").await.text().await.unwrap());

        assert_eq!(html.matches("Sign out<span").count(), 3, "{html}");
        assert_eq!(html.matches("This device").count(), 1);
        assert!(html.contains("API"));
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let sessions = app.with_conn(move |conn| {
            portcullis::db::sessions::live_for_user(conn, user.id, portcullis::db::users::now(), portcullis::db::users::now() - chrono::Duration::hours(1)).unwrap()
        }).await;
        let api_session = sessions.iter().find(|s| s.via == "api").unwrap().id;

        let response = app.post_form(&format!("/account/sessions/{api_session}/revoke"), &[("csrf_token", &csrf)]).await;
        assert_eq!(response.status(), 303);
        assert_eq!(app.get_with_bearer("/api/me", &script.access).await.status(), 401);
        assert_eq!(laptop.get("/dashboard").await.status(), 200, "only that one ended");

        let response = app.post_form("/account/sessions/revoke-others", &[("csrf_token", &csrf)]).await;
        assert_eq!(response.status(), 303);
        assert_eq!(laptop.get("/dashboard").await.status(), 303, "the laptop is signed out");
        assert_eq!(app.get("/dashboard").await.status(), 200, "this browser is not");
    }

    async fn signing_in_past_the_limit_ends_the_least_recently_used_session_so_rows_stay_bounded(app: TestApp) {
        use portcullis::auth::sessions::MAX_SESSIONS_PER_USER;
        let user = app.create_user("alice", Role::User).await;
        let oldest = app.api_login(&user).await;
        let recent = app.api_login(&user).await;

        for _ in 0..MAX_SESSIONS_PER_USER - 1 {
            app.api_login(&user).await;
        }

        assert_eq!(app.api_refresh(&oldest.refresh).await.err(), Some(401), "the oldest session ended");
        let refused = within(REVOCATION_LIMIT, || async {
            app.get_with_bearer("/api/me", &oldest.access).await.status() == 401
        }).await;
        assert!(refused.is_some(), "its access token stops working");
        assert_eq!(app.get_with_bearer("/api/me", &recent.access).await.status(), 200, "the others go on");
        let id = user.id;
        let rows = app.with_conn(move |conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::sessions;
            sessions::table.filter(sessions::user_id.eq(id)).count().get_result::<i64>(conn).unwrap()
        }).await;
        assert_eq!(rows, MAX_SESSIONS_PER_USER);
        let details = app.audit_details().await;
        assert!(details.iter().any(|(action, .., d)| action == "login.ok" && d.contains("least recently used session")));
    }

    async fn a_session_id_of_someone_else_cannot_be_revoked_from_your_page(app: TestApp) {
        let victim = app.create_user("victim", Role::User).await;
        let tokens = app.api_login(&victim).await;
        let attacker = app.create_user("mallory", Role::User).await;
        app.login_as(&attacker).await;
        let csrf = app.session_csrf_token().await;
        let victim_id = victim.id;
        let ids: Vec<i64> = app.with_conn(move |conn| {
            portcullis::db::sessions::live_for_user(conn, victim_id, portcullis::db::users::now(), portcullis::db::users::now() - chrono::Duration::hours(1)).unwrap()
        }).await.iter().map(|s| s.id).collect();

        let response = app.post_form(&format!("/account/sessions/{}/revoke", ids[0]), &[("csrf_token", &csrf)]).await;

        assert_eq!(response.status(), 303);
        assert_eq!(app.get_with_bearer("/api/me", &tokens.access).await.status(), 200, "the victim's session lives");
        let bad = app.post_form("/account/sessions/abc/revoke", &[("csrf_token", &csrf)]).await;
        assert_eq!(bad.status(), 400);
    }

    async fn an_admin_sees_a_users_sessions_and_signs_out_one_or_all(app: TestApp) {
        let admin = app.create_user("admin", Role::Admin).await;
        let user = app.create_user("alice", Role::User).await;
        let first = app.api_login(&user).await;
        let second = app.api_login(&user).await;
        app.login_as(&admin).await;

        let html = app.get(&format!("/admin/users/{}", user.id)).await.text().await.unwrap();
        assert_eq!(html.matches("Sign out<span").count(), 2, "{html}");
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let start = html.find(&format!("/admin/users/{}/sessions/", user.id)).unwrap();
        let action: String = html[start..].chars().take_while(|c| *c != '"').collect();

        assert_eq!(app.post_form(&action, &[("csrf_token", &csrf)]).await.status(), 303);
        let statuses = [
            app.get_with_bearer("/api/me", &first.access).await.status().as_u16(),
            app.get_with_bearer("/api/me", &second.access).await.status().as_u16(),
        ];
        assert!(statuses.contains(&401) && statuses.contains(&200), "exactly one ended: {statuses:?}");

        let all = format!("/admin/users/{}/sessions/revoke-all", user.id);
        assert_eq!(app.post_form(&all, &[("csrf_token", &csrf)]).await.status(), 303);
        assert_eq!(app.get_with_bearer("/api/me", &first.access).await.status(), 401);
        assert_eq!(app.get_with_bearer("/api/me", &second.access).await.status(), 401);
        assert_eq!(app.get("/admin").await.status(), 200, "the admin's own session is untouched");
        let actions = app.audit_actions().await;
        assert!(actions.contains(&"session.revoke".to_owned()) && actions.contains(&"session.revoke_all".to_owned()));
    }
}

mod expiry {
    use super::*;

    async fn scenario_idle(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let tokens = app.api_login(&user).await;
        let kept_busy = app.api_login(&user).await;

        // Renewing within the idle timeout keeps a session alive...
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let renewed = app.api_refresh(&kept_busy.refresh).await.expect("renewed within the idle timeout");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(app.api_refresh(&renewed.refresh).await.is_ok(), "activity resets the idle clock");
        // ...an unused one ends.
        assert_eq!(app.api_refresh(&tokens.refresh).await.err(), Some(401), "idle for 2.4 s of a 2 s timeout");
    }

    async fn scenario_absolute(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        let tokens = app.api_login(&user).await;
        let claims = decode_claims(&tokens.access);
        assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 3, "capped at the session's end");

        tokio::time::sleep(Duration::from_millis(1500)).await;
        let renewed = app.api_refresh(&tokens.refresh).await.expect("still within its lifetime");
        tokio::time::sleep(Duration::from_millis(2000)).await;

        assert_eq!(app.api_refresh(&renewed.refresh).await.err(), Some(401), "past its 3 s lifetime, however active");
    }

    fn decode_claims(token: &str) -> Value {
        use base64::Engine;
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn short_idle(settings: &mut portcullis::config::Settings) {
        settings.sessions.idle_timeout = Duration::from_secs(2);
    }

    fn short_lifetime(settings: &mut portcullis::config::Settings) {
        settings.sessions.lifetime = Duration::from_secs(3);
    }

    async fn run(
        backend: Backend,
        adjust: fn(&mut portcullis::config::Settings),
        scenario: fn(TestApp) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) {
        if backend == Backend::Postgres && !postgres_available() {
            return;
        }
        let app = spawn_app_with(backend, adjust).await;
        let server = app.server.clone();
        scenario(app).await;
        server.stop(true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_left_idle_past_the_idle_timeout_ends_sqlite() {
        run(Backend::Sqlite, short_idle, |app| Box::pin(scenario_idle(app))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
    async fn a_session_left_idle_past_the_idle_timeout_ends_postgres() {
        run(Backend::Postgres, short_idle, |app| Box::pin(scenario_idle(app))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_ends_at_its_absolute_lifetime_however_active_sqlite() {
        run(Backend::Sqlite, short_lifetime, |app| Box::pin(scenario_absolute(app))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
    async fn a_session_ends_at_its_absolute_lifetime_however_active_postgres() {
        run(Backend::Postgres, short_lifetime, |app| Box::pin(scenario_absolute(app))).await;
    }
}
