use portcullis::domain::Role;
use serde_json::Value;

use crate::helpers::*;

fn rows_in(html: &str) -> Vec<String> {
    let marker = r#"<td data-label="Username"><a href="/admin/users/"#;
    html.match_indices(marker)
        .map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            let start = rest.find("\">").unwrap() + 2;
            let end = rest.find("</a>").unwrap();
            unescape(&rest[start..end])
        })
        .collect()
}

fn link(html: &str, rel: &str) -> Option<String> {
    let marker = format!(r#"rel="{rel}" href=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

async fn signed_in_admin(app: &TestApp) -> TestUser {
    let admin = app.create_user("root", Role::Admin).await;
    app.login_as(&admin).await;
    admin
}

both_backends! {
    async fn an_admin_finds_users_by_the_start_of_username_email_or_display_name(app: TestApp) {
        signed_in_admin(&app).await;
        let alice = app.create_user("alice", Role::User).await;
        app.create_user("bob", Role::User).await;
        let id = alice.id;
        app.with_conn(move |conn| {
            use portcullis::db::audit::Actor;
            use portcullis::db::users::ProfileChanges;
            use portcullis::domain::DisplayName;
            let name = DisplayName::parse("Zoë Ångström").unwrap();
            portcullis::accounts::update_profile(conn, &crate::helpers::no_mail(), &Actor::command_line(), id,
                &ProfileChanges { display_name: Some(&name), ..Default::default() }).unwrap();
        }).await;

        for (query, expected) in [("ALI", vec!["alice"]), ("bob@", vec!["bob"]), ("zoë", vec!["alice"]),
                                  ("ZOË ÅNG", vec!["alice"]), ("nobody", vec![]), ("%", vec![]), ("_", vec![])] {
            let url = format!("/admin/users?{}", serde_urlencoded::to_string([("q", query)]).unwrap());
            let html = app.get(&url).await.text().await.unwrap();
            assert_eq!(rows_in(&html), expected, "search {query:?}");
        }
    }

    async fn the_list_filters_by_role_and_status(app: TestApp) {
        signed_in_admin(&app).await;
        app.create_user("alice", Role::User).await;
        let bob = app.create_user("bob", Role::User).await;
        app.with_conn(move |conn| portcullis::db::users::set_active(conn, bob.id, false).unwrap()).await;

        let admins = app.get("/admin/users?role=admin").await.text().await.unwrap();
        let disabled = app.get("/admin/users?status=disabled").await.text().await.unwrap();
        let active_users = app.get("/admin/users?role=user&status=active").await.text().await.unwrap();

        assert_eq!(rows_in(&admins), ["root"]);
        assert_eq!(rows_in(&disabled), ["bob"]);
        assert_eq!(rows_in(&active_users), ["alice"]);
    }

    async fn the_list_pages_forward_and_back_with_links_that_keep_the_search(app: TestApp) {
        signed_in_admin(&app).await;
        app.create_users_fast("member", 120).await;
        app.create_users_fast("other", 3).await;

        let first = app.get("/admin/users?q=mem").await.text().await.unwrap();
        let first_rows = rows_in(&first);
        assert_eq!(first_rows.len(), 50);
        assert_eq!(first_rows[0], "member000");
        assert!(link(&first, "prev").is_none());
        let next = link(&first, "next").expect("a next link");
        assert!(next.contains("q=mem"), "{next}");

        let second = app.get(&next).await.text().await.unwrap();
        assert_eq!(rows_in(&second)[0], "member050");
        let third = app.get(&link(&second, "next").unwrap()).await.text().await.unwrap();
        assert_eq!(rows_in(&third).len(), 20);
        assert!(link(&third, "next").is_none(), "the last page has no next link");

        let back = app.get(&link(&third, "prev").unwrap()).await.text().await.unwrap();
        assert_eq!(rows_in(&back), rows_in(&second));
        let start = app.get(&link(&back, "prev").unwrap()).await.text().await.unwrap();
        assert_eq!(rows_in(&start), first_rows);
    }

    async fn every_sort_order_visits_every_user_exactly_once(app: TestApp) {
        signed_in_admin(&app).await;
        let ids = app.create_users_fast("u", 70).await;
        // Half of them have logged in, at distinct and at equal times.
        app.with_conn(move |conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::users;
            for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 2 == 0) {
                let at = chrono::DateTime::from_timestamp(1_790_000_000 + (n as i64 / 4) * 60, 0).unwrap().naive_utc();
                diesel::update(users::table.find(*id)).set(users::last_login_at.eq(at)).execute(conn).unwrap();
            }
        }).await;

        for sort in ["username", "-username", "created", "-created", "last_login", "-last_login"] {
            let mut seen = Vec::new();
            let mut url = format!("/admin/users?sort={sort}&role=user");
            for _ in 0..10 {
                let html = app.get(&url).await.text().await.unwrap();
                seen.extend(rows_in(&html));
                match link(&html, "next") { Some(next) => url = next, None => break }
            }
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(seen.len(), 70, "{sort}: {seen:?}");
            assert_eq!(unique.len(), 70, "{sort}: duplicates");
        }
    }

    async fn a_damaged_page_link_is_a_400_not_a_500(app: TestApp) {
        signed_in_admin(&app).await;

        for url in ["/admin/users?after=%%%", "/admin/users?sort=created&after=dTFhbGljZQ", "/admin/audit?before=x"] {
            assert_eq!(app.get(url).await.status(), 400, "{url}");
        }
    }

    async fn a_one_time_password_cannot_become_the_users_permanent_one(app: TestApp) {
        signed_in_admin(&app).await;
        let csrf = app.session_csrf_token().await;
        let created = app.post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "newbie"),
            ("email", "newbie@example.com"), ("display_name", ""), ("role", "user"), ("password_mode", "generate")]).await;
        let html = created.text().await.unwrap();
        let start = html.find("<code>").unwrap() + 6;
        let one_time = html[start..start + 19].to_owned();
        let newbie = app.browser();
        assert_eq!(newbie.login("newbie", &one_time).await.status(), 303);
        let csrf = newbie.csrf("/password/change").await;

        let kept = newbie.post_form("/password/change", &[("csrf_token", &csrf), ("new_password", &one_time), ("confirm_password", &one_time)]).await;

        assert_eq!(kept.status(), 422);
        assert!(kept.text().await.unwrap().contains("That is the one-time password you were given"));
        assert_eq!(location(&newbie.get("/dashboard").await), "/password/change", "still has to choose one");
        let output = crate::cli::portcullis(&app, &["user", "set-password", "newbie", "--password-stdin"], &format!("{one_time}\n"));
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("the password \"newbie\" already has"), "{output:?}");
    }

    async fn an_admin_adds_a_user_with_a_one_time_password_who_must_then_choose_their_own(app: TestApp) {
        signed_in_admin(&app).await;
        let csrf = app.session_csrf_token().await;

        let created = app.post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "Newbie"),
            ("email", "newbie@example.com"), ("display_name", "New Bie"), ("role", "user"), ("password_mode", "generate")]).await;

        assert_eq!(created.status(), 200);
        assert_eq!(created.headers()["cache-control"], "no-store");
        let html = created.text().await.unwrap();
        let start = html.find("<code>").unwrap() + 6;
        let one_time = html[start..start + 19].to_owned();
        assert!(html.contains("only this once"));

        let newbie = app.browser();
        assert_eq!(newbie.login("newbie", &one_time).await.status(), 303);
        assert_eq!(location(&newbie.get("/dashboard").await), "/password/change");
        assert_eq!(location(&newbie.get("/account").await), "/password/change");
        let forced = newbie.get("/password/change").await.text().await.unwrap();
        assert!(!forced.contains(r#"href="/dashboard""#) && !forced.contains(r#"href="/account""#),
            "the page offers only what works: choosing a password, or signing out");
        assert!(forced.contains(r#"action="/logout""#));
        let api = app.post_json("/api/token", &serde_json::json!({"username": "newbie", "password": one_time})).await;
        assert_eq!(api.status(), 403);
        assert_eq!(api.json::<Value>().await.unwrap()["error"], "password_change_required");

        let csrf = newbie.csrf("/password/change").await;
        let weak = newbie.post_form("/password/change", &[("csrf_token", &csrf), ("new_password", "password123"), ("confirm_password", "password123")]).await;
        assert_eq!(weak.status(), 422);
        assert!(weak.text().await.unwrap().contains("too easy to guess"));
        let mismatch = newbie.post_form("/password/change", &[("csrf_token", &csrf), ("new_password", "amber falcon drifts"), ("confirm_password", "amber falcon drift")]).await;
        assert!(mismatch.text().await.unwrap().contains("not the same"));
        let chosen = newbie.post_form("/password/change", &[("csrf_token", &csrf), ("new_password", "amber falcon drifts"), ("confirm_password", "amber falcon drifts")]).await;
        assert_eq!(location(&chosen), "/dashboard");
        assert_eq!(newbie.get("/dashboard").await.status(), 200);
        let actions = app.audit_actions().await;
        assert!(actions.contains(&"user.create".to_owned()) && actions.contains(&"password.forced_change".to_owned()), "{actions:?}");
    }

    async fn an_admin_sets_a_password_and_can_let_the_user_keep_it(app: TestApp) {
        signed_in_admin(&app).await;
        let csrf = app.session_csrf_token().await;

        let created = app.post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "carol"),
            ("email", "carol@example.com"), ("role", "user"), ("password_mode", "set"), ("password", "copper kettle hums")]).await;

        assert_eq!(created.status(), 303);
        let page = app.get(&location(&created)).await.text().await.unwrap();
        assert!(page.contains("User carol created."), "flash shown");
        let again = app.get(&location(&created)).await.text().await.unwrap();
        assert!(!again.contains("User carol created."), "flash shown once");
        let carol = app.browser();
        carol.login("carol", "copper kettle hums").await;
        assert_eq!(carol.get("/dashboard").await.status(), 200);
    }

    async fn bad_input_on_the_add_form_is_shown_beside_each_field_with_the_input_kept(app: TestApp) {
        signed_in_admin(&app).await;
        app.create_user("alice", Role::User).await;
        let csrf = app.session_csrf_token().await;
        let before = app.snapshot().await;

        let bad = app.post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "a"), ("email", "not-an-email"),
            ("display_name", "<b>Kept</b>"), ("role", "user"), ("password_mode", "set"), ("password", "password")]).await;
        let taken = app.post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "ALICE"), ("email", "x@example.com"),
            ("role", "user"), ("password_mode", "generate")]).await;

        assert_eq!(bad.status(), 422);
        let html = bad.text().await.unwrap();
        assert!(html.contains("<title>Error: Add a user"));
        for message in ["Username must be 3 to 32", "Enter an email address like", "too easy to guess"] {
            assert!(html.contains(message), "{message}");
        }
        assert!(html.contains(r##"href="#username""##) && html.contains(r#"id="username-error""#), "summary links to fields");
        assert!(html.contains(r#"value="not-an-email""#) && html.contains("&#60;b&#62;Kept&#60;/b&#62;"), "input kept, escaped");
        assert_eq!(taken.status(), 422);
        assert!(taken.text().await.unwrap().contains("That username is already taken"));
        assert_eq!(app.snapshot().await, before, "nothing was written");
    }

    async fn editing_a_user_saves_and_records_which_fields_changed(app: TestApp) {
        signed_in_admin(&app).await;
        let bob = app.create_user("bob", Role::User).await;
        let csrf = app.session_csrf_token().await;

        let saved = app.post_form(&format!("/admin/users/{}", bob.id), &[("csrf_token", &csrf), ("username", "bobby"),
            ("email", "bobby@example.com"), ("display_name", "Bobby"), ("role", "admin")]).await;

        assert_eq!(saved.status(), 303);
        assert!(app.get(&location(&saved)).await.text().await.unwrap().contains("Saved bobby."));
        let update = app.audit_details().await.into_iter().find(|(action, ..)| action == "user.update").unwrap();
        assert_eq!(update.1.as_deref(), Some("root"));
        assert!(update.3.contains("username: bob → bobby") && update.3.contains("email: bob@example.com → bobby@example.com")
            && update.3.contains("role: user → admin"), "{}", update.3);
    }

    async fn an_edit_that_collides_or_is_invalid_keeps_the_input_and_says_why(app: TestApp) {
        signed_in_admin(&app).await;
        let bob = app.create_user("bob", Role::User).await;
        app.create_user("carol", Role::User).await;
        let csrf = app.session_csrf_token().await;
        let before = app.snapshot().await;

        let taken = app.post_form(&format!("/admin/users/{}", bob.id), &[("csrf_token", &csrf), ("username", "bob"),
            ("email", "CAROL@example.com"), ("display_name", "Bob"), ("role", "user")]).await;
        let invalid = app.post_form(&format!("/admin/users/{}", bob.id), &[("csrf_token", &csrf), ("username", "b o b"),
            ("email", "bob@example.com"), ("display_name", ""), ("role", "superuser")]).await;

        assert_eq!(taken.status(), 422);
        let html = taken.text().await.unwrap();
        assert!(html.contains("That email address is already in use") && html.contains(r#"value="CAROL@example.com""#));
        assert_eq!(invalid.status(), 422);
        let html = invalid.text().await.unwrap();
        assert!(html.contains("Username may only contain") && html.contains("Enter a display name") && html.contains("Role must be"));
        assert_eq!(app.snapshot().await, before);
    }

    async fn disabling_a_user_locks_out_their_live_cookie_and_token_and_enabling_lets_them_back(app: TestApp) {
        signed_in_admin(&app).await;
        let bob = app.create_user("bob", Role::User).await;
        let bobs_browser = app.browser();
        bobs_browser.login("bob", PASSWORD).await;
        let token = app.api_token(&bob).await;
        let csrf = app.session_csrf_token().await;

        let disabled = app.post_form(&format!("/admin/users/{}/disable", bob.id), &[("csrf_token", &csrf)]).await;

        assert_eq!(disabled.status(), 303);
        assert!(app.get(&location(&disabled)).await.text().await.unwrap().contains("bob is disabled"));
        assert_eq!(bobs_browser.get("/dashboard").await.status(), 303);
        assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 401);
        assert_eq!(bobs_browser.login("bob", PASSWORD).await.status(), 401);

        app.post_form(&format!("/admin/users/{}/enable", bob.id), &[("csrf_token", &csrf)]).await;
        assert_eq!(bobs_browser.login("bob", PASSWORD).await.status(), 303);
        let actions = app.audit_actions().await;
        assert!(actions.contains(&"user.disable".into()) && actions.contains(&"user.enable".into()));
    }

    async fn resetting_a_password_shows_a_one_time_password_and_forces_a_change(app: TestApp) {
        signed_in_admin(&app).await;
        let bob = app.create_user("bob", Role::User).await;
        let csrf = app.session_csrf_token().await;

        let reset = app.post_form(&format!("/admin/users/{}/reset-password", bob.id), &[("csrf_token", &csrf)]).await;

        assert_eq!(reset.status(), 200);
        let html = reset.text().await.unwrap();
        let start = html.find("<code>").unwrap() + 6;
        let one_time = &html[start..start + 19];
        let bobs_browser = app.browser();
        assert_eq!(bobs_browser.login("bob", PASSWORD).await.status(), 401, "the old password is gone");
        assert_eq!(bobs_browser.login("bob", one_time).await.status(), 303);
        assert_eq!(location(&bobs_browser.get("/dashboard").await), "/password/change");
    }

    async fn deleting_asks_first_then_removes_the_user_but_keeps_their_history(app: TestApp) {
        signed_in_admin(&app).await;
        let bob = app.create_user("bob", Role::User).await;
        let token = app.api_token(&bob).await;
        let csrf = app.session_csrf_token().await;

        let confirm = app.get(&format!("/admin/users/{}/delete", bob.id)).await;
        assert_eq!(confirm.status(), 200);
        let html = confirm.text().await.unwrap();
        assert!(html.contains("Delete bob?") && html.contains("audit trail keeps"));
        assert_eq!(app.get(&format!("/admin/users/{}", bob.id)).await.status(), 200, "GET changed nothing");

        let deleted = app.post_form(&format!("/admin/users/{}/delete", bob.id), &[("csrf_token", &csrf)]).await;

        assert_eq!(location(&deleted), "/admin/users");
        assert!(app.get("/admin/users").await.text().await.unwrap().contains("bob was deleted."));
        assert_eq!(app.get(&format!("/admin/users/{}", bob.id)).await.status(), 404);
        assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 401);
        let history = app.get(&format!("/admin/audit?target={}", bob.id)).await.text().await.unwrap();
        assert!(history.contains("user.delete") && history.contains("login.ok"));
    }

    async fn an_admin_cannot_lock_themself_out(app: TestApp) {
        let root = signed_in_admin(&app).await;
        let csrf = app.session_csrf_token().await;
        let before = app.snapshot().await;

        let demote = app.post_form(&format!("/admin/users/{}", root.id), &[("csrf_token", &csrf), ("username", "root"),
            ("email", "root@example.com"), ("display_name", "root"), ("role", "user")]).await;
        assert_eq!(demote.status(), 422);
        assert!(demote.text().await.unwrap().contains("You cannot change the role of your own account"));
        let disable = app.post_form(&format!("/admin/users/{}/disable", root.id), &[("csrf_token", &csrf)]).await;
        assert!(app.get(&location(&disable)).await.text().await.unwrap().contains("You cannot disable your own account"));
        let delete = app.post_form(&format!("/admin/users/{}/delete", root.id), &[("csrf_token", &csrf)]).await;
        assert!(app.get(&location(&delete)).await.text().await.unwrap().contains("You cannot delete your own account"));
        let reset = app.post_form(&format!("/admin/users/{}/reset-password", root.id), &[("csrf_token", &csrf)]).await;
        assert_eq!(reset.status(), 303, "no one-time password is shown");
        let page = app.get(&location(&reset)).await.text().await.unwrap();
        assert!(page.contains("You cannot reset your own password to a one-time password"), "{page}");
        assert!(page.contains("href=\"/account\""), "the page points to the account page");
        assert!(!page.contains("/reset-password\""), "and offers no reset button for oneself");
        assert_eq!(app.snapshot().await, before);
        assert_eq!(app.get("/admin").await.status(), 200);
    }

    async fn the_last_active_admin_cannot_be_demoted_disabled_or_deleted(app: TestApp) {
        let root = app.create_user("root", Role::Admin).await;
        let id = root.id;
        let results = app.with_conn(move |conn| {
            use portcullis::accounts::{self, AccountError};
            use portcullis::db::audit::Actor;
            use portcullis::db::users::ProfileChanges;
            let cli = Actor::command_line();
            let demote = accounts::update_profile(conn, &crate::helpers::no_mail(), &cli, id, &ProfileChanges { role: Some(Role::User), ..Default::default() });
            let disable = accounts::set_active(conn, &cli, id, false);
            let delete = accounts::delete(conn, &cli, id);
            [demote.err(), disable.err(), delete.err()].map(|e| matches!(e, Some(AccountError::Refused(ref m)) if m.contains("last active administrator")))
        }).await;

        assert_eq!(results, [true, true, true]);
        let second = app.create_user("second", Role::Admin).await;
        let demoted = app.with_conn(move |conn| {
            let changes = portcullis::db::users::ProfileChanges { role: Some(Role::User), ..Default::default() };
            portcullis::accounts::update_profile(conn, &crate::helpers::no_mail(), &portcullis::db::audit::Actor::command_line(), second.id, &changes).is_ok()
        }).await;
        assert!(demoted, "with two admins, one may go");
    }

    async fn a_missing_user_is_a_404_page_and_a_malformed_id_a_400(app: TestApp) {
        signed_in_admin(&app).await;
        let csrf = app.session_csrf_token().await;

        assert_eq!(app.get("/admin/users/999999").await.status(), 404);
        assert_eq!(app.get("/admin/users/999999/delete").await.status(), 404);
        assert_eq!(app.post_form("/admin/users/999999/disable", &[("csrf_token", &csrf)]).await.status(), 404);
        assert_eq!(app.post_form("/admin/users/999999/reset-password", &[("csrf_token", &csrf)]).await.status(), 404);
        let malformed = app.get("/admin/users/12abc").await;
        assert_eq!(malformed.status(), 400);
        assert!(malformed.text().await.unwrap().contains("is not a user id"));
        assert_eq!(app.get("/admin/users/99999999999999999999").await.status(), 400);
        assert_eq!(app.get("/admin/nothing-here").await.status(), 404);
    }

    async fn html_in_a_display_name_is_escaped_on_every_page_that_shows_it(app: TestApp) {
        let root = signed_in_admin(&app).await;
        let payload = r#"<script>alert("x")</script><img src=x onerror=alert(1)>"#;
        let csrf = app.session_csrf_token().await;
        app.post_form("/account", &[("csrf_token", &csrf), ("display_name", payload), ("email", "root@example.com")]).await;

        for path in ["/dashboard", "/account", "/admin/users", &format!("/admin/users/{}", root.id), "/admin/audit",
                     &format!("/admin/users/{}/delete", root.id), "/admin/users?q=%3Cscript"] {
            let html = app.get(path).await.text().await.unwrap();
            assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "{path} is not escaped");
            assert!(html.contains("&#60;script&#62;") || path.contains("?q="), "{path} shows the name escaped");
        }
    }

    async fn every_admin_route_refuses_plain_users_and_anonymous_visitors_and_changes_nothing(app: TestApp) {
        app.create_user("root", Role::Admin).await;
        let target = app.create_user("target", Role::User).await;
        let plain = app.create_user("plain", Role::User).await;
        let before = app.snapshot().await;
        let token = app.api_token(&plain).await;
        let anonymous = app.browser();
        let user = app.browser();
        user.login(&plain.username, PASSWORD).await;
        let csrf = user.csrf("/account").await;
        let snapshot_after_login = app.snapshot().await;
        let fields = [("csrf_token", csrf.as_str()), ("username", "hacked"), ("email", "hacked@example.com"),
                      ("display_name", "hacked"), ("role", "admin"), ("password_mode", "generate")];
        // Every admin route, from the app's own route table: a new one is covered by being mounted.
        let routes = portcullis::startup::admin_routes();
        let listed: Vec<&str> = routes.iter().map(|route| route.path.as_str()).collect();
        for expected in ["/admin", "/admin/users/{id}/throttle/clear", "/admin/users/{id}/sessions/{session}/revoke", "/api/users/{id}"] {
            assert!(listed.contains(&expected), "{expected} is not in the admin route table: {listed:?}");
        }

        for route in &routes {
            let path = route.path.replace("{id}", &target.id.to_string()).replace("{session}", "1");
            for method in &route.methods {
                let what = format!("{method} {path}");
                if path.starts_with("/api/") {
                    let request = |token: Option<&str>| {
                        let request = app.client.request(method.as_str().parse().unwrap(), app.url(&path));
                        match token { Some(token) => request.bearer_auth(token), None => request }
                    };
                    let refused = request(Some(&token)).send().await.unwrap();
                    assert_eq!(refused.status(), 403, "{what} with a plain user's token");
                    assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["error"], "forbidden", "{what}");
                    assert_eq!(request(None).send().await.unwrap().status(), 401, "{what} without a token");
                } else if method.as_str() == "GET" {
                    let refused = user.get(&path).await;
                    assert_eq!(refused.status(), 403, "{what} as a plain user");
                    assert!(refused.text().await.unwrap().contains("This area is for administrators."), "{what}");
                    let response = anonymous.get(&path).await;
                    assert_eq!(response.status(), 303, "{what} anonymously");
                    assert!(location(&response).starts_with("/login?next="));
                } else {
                    assert_eq!(user.post_form(&path, &fields).await.status(), 403, "{what} as a plain user");
                    let response = anonymous.post_form(&path, &fields).await;
                    assert_eq!(location(&response), "/login", "{what} anonymously");
                }
            }
        }
        assert_eq!(app.snapshot().await, snapshot_after_login, "nothing changed");
        assert_ne!(before, snapshot_after_login, "(the login itself was recorded)");
    }
}

both_backends! {
    async fn two_admins_demoting_each_other_at_once_leave_one_admin(app: TestApp) {
        for round in 0..5 {
            let a = app.create_user(&format!("alpha{round}"), Role::Admin).await;
            let b = app.create_user(&format!("bravo{round}"), Role::Admin).await;
            let pool = app.pool.clone();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let demote = |actor: (i64, String), target: i64| {
                let pool = pool.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    use portcullis::db::audit::Actor;
                    use portcullis::db::users::ProfileChanges;
                    let mut conn = pool.get().unwrap();
                    barrier.wait();
                    let actor = Actor { user: Some(actor), client_ip: None };
                    portcullis::accounts::update_profile(&mut conn, &crate::helpers::no_mail(), &actor, target,
                        &ProfileChanges { role: Some(Role::User), ..Default::default() })
                })
            };
            let first = demote((a.id, a.username.clone()), b.id);
            let second = demote((b.id, b.username.clone()), a.id);
            let results = [first.join().unwrap(), second.join().unwrap()];

            let admins = app.with_conn(|conn| portcullis::db::users::count_active_admins(conn).unwrap()).await;
            assert_eq!(admins, 1, "round {round}: {results:?}");
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {results:?}");
            let refused = |r: &Result<_, portcullis::accounts::AccountError>| {
                matches!(r, Err(portcullis::accounts::AccountError::Refused(m)) if m.contains("last active administrator"))
            };
            assert_eq!(results.iter().filter(|r| refused(r)).count(), 1, "round {round}: a clean refusal, not a lock error");
            // Reset for the next round: demote the survivor through the database directly.
            app.with_conn(|conn| {
                use diesel::prelude::*;
                use portcullis::db::schema::users;
                diesel::update(users::table).set(users::role.eq("user")).execute(conn).unwrap();
            }).await;
        }
    }
}

both_backends! {
    async fn an_address_that_only_looks_like_an_existing_one_is_refused_everywhere(app: TestApp) {
        let alice = app.create_user("alice", Role::User).await;
        signed_in_admin(&app).await;
        let csrf = app.session_csrf_token().await;
        let add = |email: &'static str| {
            let csrf = csrf.clone();
            let app = &app;
            async move {
                app.post_form("/admin/users/new", &[("csrf_token", &csrf), ("username", "mallory"), ("email", email),
                    ("display_name", ""), ("role", "user"), ("password_mode", "generate")]).await
            }
        };
        let before = app.snapshot().await;

        let cyrillic = add("\u{430}lice@example.com").await;
        let fullwidth = add("\u{ff41}lice@example.com").await;
        let greek_o_domain = add("alice@example.c\u{3bf}m").await;

        assert_eq!(cyrillic.status(), 422);
        assert!(cyrillic.text().await.unwrap().contains("looks the same as one already in use"));
        assert_eq!(fullwidth.status(), 422, "fullwidth letters are the same letters");
        assert!(fullwidth.text().await.unwrap().contains("already in use"));
        assert_eq!(greek_o_domain.status(), 422);
        assert_eq!(app.snapshot().await, before, "no one was added");
        let bob = app.create_user("bob", Role::User).await;
        let bobs = app.browser();
        assert_eq!(bobs.login("bob", &bob.password).await.status(), 303);
        let csrf = bobs.csrf("/account").await;
        let taken = bobs.post_form("/account", &[("csrf_token", &csrf), ("display_name", "Bob"), ("email", "\u{430}lice@example.com")]).await;
        assert_eq!(taken.status(), 422, "nor can a user take it for themself");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "username,email,display_name,role\nmallory,\u{430}lice@example.com,,user\n").unwrap();
        let import = crate::cli::portcullis(&app, &["user", "import", file.path().to_str().unwrap()], "");
        assert!(!import.status.success(), "nor can an import");
        assert!(String::from_utf8_lossy(&import.stderr).contains("looks the same"), "{import:?}");
        let fullwidth_login = app.post_json("/api/token", &serde_json::json!({"email": "\u{ff21}LICE@example.com", "password": alice.password})).await;
        assert_eq!(fullwidth_login.status(), 200, "the owner may type their address in fullwidth");
    }
}
