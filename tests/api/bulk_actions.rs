//! An admin ticks users in the list and acts on all of them: a confirmation page lists who and
//! what happens first; nothing changes until its button is pressed.
use portcullis::domain::Role;

use crate::helpers::*;

/// The form the list's checkboxes and action menu post.
fn selection<'a>(csrf: &'a str, action: &'a str, back: &'a str, ids: &'a [String]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("csrf_token", csrf), ("action", action), ("back", back)];
    fields.extend(ids.iter().map(|key| (key.as_str(), "on")));
    fields
}

fn ticked(ids: &[i64]) -> Vec<String> {
    ids.iter().map(|id| format!("select-{id}")).collect()
}

both_backends! {
    async fn an_admin_disables_several_users_after_a_page_that_lists_them(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let staff: Vec<TestUser> = futures_util::future::join_all(
            ["ann", "bob", "cyd"].map(|name| app.create_user(name, Role::User))).await;
        let untouched = app.create_user("dee", Role::User).await;
        let tokens: Vec<String> = futures_util::future::join_all(staff.iter().map(|user| app.api_token(user))).await;
        app.login_as(&admin).await;
        let list = app.get("/admin/users?q=b&sort=username").await.text().await.unwrap();
        assert!(list.contains(&format!(r#"name="select-{}""#, staff[1].id)), "each row has a checkbox");
        let csrf = app.session_csrf_token().await;
        let mut ids: Vec<i64> = staff.iter().map(|user| user.id).collect();
        ids.push(admin.id);
        let keys = ticked(&ids);
        let before = app.snapshot().await;

        let confirm = app.post_form("/admin/users/bulk", &selection(&csrf, "disable", "/admin/users?q=b&sort=username", &keys)).await;

        assert_eq!(confirm.status(), 200);
        let page = unescape(&confirm.text().await.unwrap());
        assert!(page.contains("Disable 4 users?"), "{page}");
        for user in &staff {
            assert!(page.contains(&user.email), "the page lists {}", user.username);
        }
        assert!(!page.contains(&untouched.email));
        assert!(page.contains("You cannot disable your own account."), "who is left out is said before");
        assert!(page.contains("Yes, disable 3 users"));
        assert_eq!(app.snapshot().await, before, "nothing changes before the confirmation");

        let done = app.post_form("/admin/users/bulk/apply", &selection(&csrf, "disable", "/admin/users?q=b&sort=username", &keys)).await;

        assert_eq!(location(&done), "/admin/users?q=b&sort=username", "back to the same list");
        let message = unescape(&app.get(&location(&done)).await.text().await.unwrap());
        assert!(message.contains("Disabled: ann, bob, cyd."), "{message}");
        assert!(message.contains("Left as they were: root (You cannot disable your own account)"), "{message}");
        for token in &tokens {
            assert_eq!(app.get_with_bearer("/api/me", token).await.status(), 401, "their sessions ended at once");
        }
        let disabled = app.audit_actions().await.into_iter().filter(|action| action == "user.disable").count();
        assert_eq!(disabled, 3, "one audit row each, as from their own pages");
        assert_eq!(app.get("/admin").await.status(), 200, "the admin is still signed in and enabled");

        // Enabling them again, the same way.
        let back = app.post_form("/admin/users/bulk/apply", &selection(&csrf, "enable", "/admin/users", &ticked(&ids[..3]))).await;
        assert!(unescape(&app.get(&location(&back)).await.text().await.unwrap()).contains("Enabled: ann, bob, cyd."));
        assert_eq!(app.browser().login("ann", PASSWORD).await.status(), 303, "they can sign in again");
    }

    async fn deleting_many_keeps_the_last_administrator_and_signing_out_keeps_your_own_session(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let other_admin = app.create_user("ops", Role::Admin).await;
        let user = app.create_user("eve", Role::User).await;
        let elsewhere = app.api_token(&admin).await;
        let user_token = app.api_token(&user).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;

        let out = app.post_form("/admin/users/bulk/apply", &selection(&csrf, "sign-out", "/admin/users", &ticked(&[admin.id, user.id]))).await;
        let message = unescape(&app.get(&location(&out)).await.text().await.unwrap());
        assert!(message.contains("Signed out everywhere: eve, root."), "{message}");
        assert_eq!(app.get_with_bearer("/api/me", &user_token).await.status(), 401);
        assert_eq!(app.get_with_bearer("/api/me", &elsewhere).await.status(), 401, "the admin's other sessions end");
        assert_eq!(app.get("/admin").await.status(), 200, "the session in use stays");

        let confirm = app.post_form("/admin/users/bulk", &selection(&csrf, "delete", "/admin/users", &ticked(&[other_admin.id, user.id]))).await;
        let page = confirm.text().await.unwrap();
        assert!(page.contains("Delete 2 users?") && page.contains("cannot be undone") && page.contains("button--danger"));
        let deleted = app.post_form("/admin/users/bulk/apply", &selection(&csrf, "delete", "/admin/users", &ticked(&[other_admin.id, user.id]))).await;
        let message = unescape(&app.get(&location(&deleted)).await.text().await.unwrap());
        assert!(message.contains("Deleted: eve, ops."), "{message}");

        // Now root is the only administrator: selecting them to delete is refused, with the reason.
        let last = app.post_form("/admin/users/bulk/apply", &selection(&csrf, "delete", "/admin/users", &ticked(&[admin.id]))).await;
        let message = unescape(&app.get(&location(&last)).await.text().await.unwrap());
        assert!(message.contains("Nobody was changed.") && message.contains("your own account"), "{message}");
        assert_eq!(app.get("/admin").await.status(), 200);
    }

    async fn a_bad_selection_is_explained_and_changes_nothing(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let user = app.create_user("fay", Role::User).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let one = ticked(&[user.id]);
        let member = app.in_new_browser();
        member.login_as(&user).await;
        let member_csrf = member.session_csrf_token().await;
        let before = app.snapshot().await;

        let nobody = app.post_form("/admin/users/bulk", &selection(&csrf, "disable", "/admin/users?q=f", &[])).await;
        assert_eq!(location(&nobody), "/admin/users?q=f");
        assert!(app.get("/admin/users?q=f").await.text().await.unwrap().contains("Select at least one user"));
        let no_action = app.post_form("/admin/users/bulk", &selection(&csrf, "explode", "/admin/users", &one)).await;
        assert!(unescape(&app.get(&location(&no_action)).await.text().await.unwrap()).contains("Choose what to do"));
        let gone = app.post_form("/admin/users/bulk/apply", &selection(&csrf, "delete", "/admin/users", &ticked(&[987_654]))).await;
        assert!(app.get(&location(&gone)).await.text().await.unwrap().contains("None of the selected users exist any more"));
        let elsewhere = app.post_form("/admin/users/bulk", &selection(&csrf, "disable", "https://evil.example/", &[])).await;
        assert_eq!(location(&elsewhere), "/admin/users", "only the user list is a way back");
        let damaged = app.post_form("/admin/users/bulk", &[("csrf_token", &csrf), ("action", "disable"), ("select-abc", "on")]).await;
        assert_eq!(damaged.status(), 400);
        let many = ticked(&(1..=101).collect::<Vec<i64>>());
        let too_many = app.post_form("/admin/users/bulk", &selection(&csrf, "disable", "/admin/users", &many)).await;
        assert_eq!(too_many.status(), 400);
        assert!(too_many.text().await.unwrap().contains("at most 100 users"));
        let forged = app.post_form("/admin/users/bulk/apply", &selection("forged", "delete", "/admin/users", &one)).await;
        assert_eq!(forged.status(), 403);
        assert_eq!(app.snapshot().await.split("\naudit events").next(), before.split("\naudit events").next(), "nobody changed");

        // Someone who is not an administrator cannot use it at all.
        let refused = member.post_form("/admin/users/bulk/apply", &selection(&member_csrf, "delete", "/admin/users", &ticked(&[admin.id]))).await;
        assert_eq!(refused.status(), 403);
        assert_eq!(app.snapshot().await.split("\naudit events").next(), before.split("\naudit events").next());
    }
}
