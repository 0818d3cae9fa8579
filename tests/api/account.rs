use portcullis::domain::Role;

use crate::helpers::*;

both_backends! {
    async fn a_user_changes_their_display_name_and_email(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;

        let saved = app.post_form("/account", &[("csrf_token", &csrf), ("display_name", "Alice Liddell"), ("email", "Alice@Wonder.land")]).await;

        assert_eq!(location(&saved), "/account");
        let html = app.get("/account").await.text().await.unwrap();
        assert!(html.contains("Your details were saved.") && html.contains(r#"value="alice@wonder.land""#));
        assert!(app.get("/dashboard").await.text().await.unwrap().contains("Welcome, Alice Liddell"));
    }

    async fn a_user_cannot_take_someone_elses_email_or_save_nonsense(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.create_user("bob", Role::User).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        let before = app.snapshot().await;

        let taken = app.post_form("/account", &[("csrf_token", &csrf), ("display_name", "A"), ("email", "BOB@example.com")]).await;
        let invalid = app.post_form("/account", &[("csrf_token", &csrf), ("display_name", " "), ("email", "nope")]).await;
        let forged = app.post_form("/account", &[("csrf_token", "forged"), ("display_name", "X"), ("email", "x@example.com")]).await;

        assert_eq!(taken.status(), 422);
        assert!(taken.text().await.unwrap().contains("That email address is already in use"));
        assert_eq!(invalid.status(), 422);
        let html = invalid.text().await.unwrap();
        assert!(html.contains("Enter a display name") && html.contains("Enter an email address like"));
        assert_eq!(forged.status(), 403);
        let after = app.snapshot().await;
        assert_eq!(after.split("\naudit events").next(), before.split("\naudit events").next(), "no account changed");
        let refused = app.audit_actions().await.into_iter().filter(|action| action == "user.email_change_refused");
        assert_eq!(refused.count(), 1, "trying an address in use is audited (it tells the user someone has it)");
    }

    async fn changing_the_password_needs_the_current_one_and_refuses_weak_ones(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        let change = |current: &'static str, new: &'static str, confirm: &'static str| {
            let csrf = csrf.clone();
            let app = &app;
            async move {
                app.post_form("/account/password", &[("csrf_token", &csrf), ("current_password", current),
                    ("new_password", new), ("confirm_password", confirm)]).await
            }
        };

        let wrong_current = change("not it", "saffron glacier rolls", "saffron glacier rolls").await;
        let common = change(PASSWORD, "qwerty123", "qwerty123").await;
        let mismatch = change(PASSWORD, "saffron glacier rolls", "saffron glacier roll").await;
        let good = change(PASSWORD, "saffron glacier rolls", "saffron glacier rolls").await;

        assert!(wrong_current.text().await.unwrap().contains("Your current password is not right"));
        assert!(common.text().await.unwrap().contains("too easy to guess"));
        assert!(mismatch.text().await.unwrap().contains("not the same"));
        assert_eq!(location(&good), "/account");
        let other = app.browser();
        assert_eq!(other.login("carol", PASSWORD).await.status(), 401);
        assert_eq!(other.login("carol", "saffron glacier rolls").await.status(), 303);
        let details = app.audit_details().await;
        assert!(details.iter().any(|(action, ..)| action == "password.change"));
        let all = format!("{details:?}");
        assert!(!all.contains("saffron") && !all.contains("argon2") && !all.contains(PASSWORD), "no secrets in the audit trail");
    }

    async fn the_password_has_its_own_page_and_its_errors_are_brought_into_view(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;
        app.login_as(&user).await;
        let account = app.get("/account").await.text().await.unwrap();
        assert!(account.contains(r#"href="/account/password""#) && !account.contains("current_password"),
            "the account page links to the password page instead of sharing a form with it");
        let page = app.get("/account/password").await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains(r#"autocomplete="current-password""#));

        let csrf = app.session_csrf_token().await;
        let refused = app.post_form("/account/password", &[("csrf_token", &csrf), ("current_password", "")]).await;

        assert_eq!(refused.status(), 422);
        let html = refused.text().await.unwrap();
        assert!(html.contains("<title>Error: Change your password"), "the title says there is a problem");
        assert!(html.contains(r#"class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" autofocus"#),
            "the summary takes the focus, so it is in view without a script");
        assert!(html.contains("Enter your current password") && !html.contains(r#"action="/account""#),
            "only the password form comes back");
    }

    async fn a_user_reads_times_in_their_own_time_zone(app: TestApp) {
        let user = app.create_user("dana", Role::User).await;
        app.login_as(&user).await;
        let sessions = app.get("/account/sessions").await.text().await.unwrap();
        assert!(sessions.contains("Times are in UTC"), "the zone is named where times are shown");
        assert!(sessions.contains("just now"), "a recent time reads as words");
        assert!(sessions.contains(" UTC\">"), "the exact time, with its zone, is on the <time> element");
        let csrf = app.session_csrf_token().await;
        let profile = |zone: &'static str| {
            let csrf = csrf.clone();
            let app = &app;
            async move {
                app.post_form("/account", &[("csrf_token", &csrf), ("display_name", "Dana"),
                    ("email", "dana@example.com"), ("time_zone", zone)]).await
            }
        };
        let before = app.snapshot().await;

        let unknown = profile("Mars/Olympus_Mons").await;
        assert_eq!(unknown.status(), 422);
        assert!(unknown.text().await.unwrap().contains("Choose a time zone from the list"));
        assert_eq!(app.snapshot().await, before, "nothing saved");

        let saved = profile("Asia/Kolkata").await;
        assert_eq!(location(&saved), "/account");
        let account = app.get("/account").await.text().await.unwrap();
        assert!(account.contains("<option selected>Asia/Kolkata</option>"), "the choice is kept");
        let sessions = app.get("/account/sessions").await.text().await.unwrap();
        assert!(sessions.contains("Times are in Asia/Kolkata"), "the page's token carries the new zone at once");
        assert!(sessions.contains(" IST\">"), "exact times are in the chosen zone");
        let details = app.audit_details().await;
        assert!(details.iter().any(|(action, _, _, details)| action == "user.update"
            && details.contains("time zone: UTC → Asia/Kolkata")), "{details:?}");

        let token = app.api_token(&user).await;
        let me: serde_json::Value = app.get_with_bearer("/api/me", &token).await.json().await.unwrap();
        assert_eq!(me["time_zone"], "Asia/Kolkata", "API clients can read it too");
    }

    async fn a_new_password_must_differ_from_the_current_one(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        let before = app.snapshot().await;

        let same = app.post_form("/account/password", &[("csrf_token", &csrf), ("current_password", PASSWORD),
            ("new_password", PASSWORD), ("confirm_password", PASSWORD)]).await;

        assert_eq!(same.status(), 422);
        assert!(same.text().await.unwrap().contains("must be different from your current one"));
        assert_eq!(app.snapshot().await, before, "nothing changed, no session ended");
    }

    async fn probing_which_addresses_are_taken_is_throttled_and_audited(app: TestApp) {
        let user = app.create_user("alice", Role::User).await;
        app.create_users_fast("member", 6).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        let try_address = |email: String| {
            let csrf = csrf.clone();
            let app = &app;
            async move { app.post_form("/account", &[("csrf_token", &csrf), ("display_name", "Alice"), ("email", &email)]).await }
        };

        for n in 0..5 {
            assert_eq!(try_address(format!("member00{n}@example.com")).await.status(), 422, "probe {n}");
        }
        let paused = try_address("member005@example.com".to_owned()).await;

        assert_eq!(paused.status(), 429);
        assert!(paused.headers().contains_key("retry-after"));
        let html = paused.text().await.unwrap();
        assert!(html.contains("tried too many addresses") && !html.contains("already in use"), "the answer no longer tells");
        assert_eq!(try_address("alice.new@example.com".to_owned()).await.status(), 429, "any new address waits");
        let same_address = app.post_form("/account", &[("csrf_token", &csrf), ("display_name", "Alice A."), ("email", "alice@example.com")]).await;
        assert_eq!(same_address.status(), 303, "saving other details still works");
        let details = app.audit_details().await;
        let probes: Vec<_> = details.iter().filter(|(action, ..)| action == "user.email_change_refused").collect();
        assert_eq!(probes.len(), 5, "{details:?}");
        assert!(probes[0].3.contains("member000@example.com"));
    }

    async fn bytes_that_are_not_text_are_refused_not_mangled(app: TestApp) {
        let user = app.create_user("dora", Role::User).await;
        app.login_as(&user).await;
        let csrf = app.session_csrf_token().await;
        let before = app.snapshot().await;

        let account = app.post_raw("/account", "application/x-www-form-urlencoded",
            format!("csrf_token={csrf}&display_name=%FF%FE&email=dora%40example.com")).await;
        let truncated = app.post_raw("/account", "application/x-www-form-urlencoded",
            format!("csrf_token={csrf}&display_name=Dor%C3&email=dora%40example.com")).await;

        assert_eq!(account.status(), 400);
        assert!(account.text().await.unwrap().contains("not valid text"));
        assert_eq!(truncated.status(), 400);
        assert_eq!(app.snapshot().await, before, "nothing was saved");
        let fine = app.post_raw("/account", "application/x-www-form-urlencoded",
            format!("csrf_token={csrf}&display_name=D%C3%B6ra+%F0%9D%84%9E&email=dora%40example.com")).await;
        assert_eq!(fine.status(), 303);
        assert!(app.get("/account").await.text().await.unwrap().contains("Döra 𝄞"));
    }
}
