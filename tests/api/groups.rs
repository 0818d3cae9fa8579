//! Groups: administrators create, rename and delete them and say who is in them (pages, bulk
//! actions, the command line); tokens, `/api/me` and the gate carry them; a change reaches
//! every instance within two seconds without signing anyone out; managers change their own
//! group's members and nothing else.
use portcullis::domain::Role;
use serde_json::Value;

use crate::cli::portcullis;
use crate::helpers::*;

/// Creates group `name` through the admin page (the app's browser must be an admin's); its id.
async fn create_group(app: &TestApp, name: &str, display_name: &str) -> i64 {
    let csrf = app.session_csrf_token().await;
    let fields = [("name", name), ("display_name", display_name), ("description", ""), ("csrf_token", csrf.as_str())];
    let response = app.post_form("/admin/groups/new", &fields).await;
    assert_eq!(response.status(), 303, "{name}: {}", response.text().await.unwrap());
    location(&response).trim_start_matches("/admin/groups/").parse().expect("the new group's page")
}

async fn add_members(app: &TestApp, group: i64, usernames: &str) -> String {
    let csrf = app.session_csrf_token().await;
    let response = app
        .post_form(&format!("/admin/groups/{group}/members/add"), &[("usernames", usernames), ("csrf_token", &csrf)])
        .await;
    assert_eq!(response.status(), 303);
    app.get(&location(&response)).await.text().await.unwrap()
}

async fn me(app: &TestApp, token: &str) -> Value {
    let response = app.get_with_bearer("/api/me", token).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

both_backends! {
    async fn an_admin_creates_renames_and_deletes_a_group_and_is_told_how_many_lose_it(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let alice = app.create_user("alice", Role::User).await;
        let bob = app.create_user("bob", Role::User).await;
        app.login_as(&admin).await;

        let id = create_group(&app, "Wiki-Editors", "Wiki editors").await;
        let page = add_members(&app, id, &format!("{} {}, nobody-here", alice.username, bob.email)).await;
        assert!(page.contains("2 people added.") && page.contains("No one is called nobody-here"), "{page}");
        let list = app.get("/admin/groups").await.text().await.unwrap();
        assert!(list.contains("wiki-editors") && list.contains("<td data-label=\"Members\">2</td>"), "{list}");
        let searched = app.get("/admin/groups?q=EDIT").await.text().await.unwrap();
        assert!(searched.contains("wiki-editors"));
        assert!(app.get("/admin/groups?q=finance").await.text().await.unwrap().contains("No group matches."));

        // Names are unique whatever their case; the form says so and keeps what was typed.
        let csrf = app.session_csrf_token().await;
        let again = app.post_form("/admin/groups/new", &[("name", "WIKI-editors"), ("csrf_token", &csrf)]).await;
        assert_eq!(again.status(), 422);
        assert!(again.text().await.unwrap().contains("A group with this name exists already"));

        let edit = [("name", "wiki"), ("display_name", "The wiki"), ("description", "Who may edit"), ("csrf_token", csrf.as_str())];
        assert_eq!(app.post_form(&format!("/admin/groups/{id}/edit"), &edit).await.status(), 303);
        let detail = app.get(&format!("/admin/groups/{id}")).await.text().await.unwrap();
        assert!(detail.contains("<code>wiki</code>") && detail.contains("Who may edit") && detail.contains("alice"), "{detail}");

        let confirm = app.get(&format!("/admin/groups/{id}/delete")).await.text().await.unwrap();
        assert!(confirm.contains("<strong>2 members</strong> lose"), "{confirm}");
        let deleted = app.post_form(&format!("/admin/groups/{id}/delete"), &[("csrf_token", &csrf)]).await;
        assert_eq!(location(&deleted), "/admin/groups");
        assert_eq!(app.get(&format!("/admin/groups/{id}")).await.status(), 404);
        let audit = app.get("/admin/audit").await.text().await.unwrap();
        for words in ["Created a group", "Renamed or described a group", "Added members to a group", "Deleted a group"] {
            assert!(audit.contains(words), "the audit trail has {words:?}");
        }
        let orphans = app.with_conn(|conn| {
            use diesel::prelude::*;
            portcullis::db::schema::group_members::table.count().get_result::<i64>(conn).unwrap()
        }).await;
        assert_eq!(orphans, 0, "no membership outlives its group");
    }

    async fn bad_group_input_gets_a_clear_error_and_changes_nothing(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let csrf = app.session_csrf_token().await;
        let long = "a".repeat(10 * 1024);
        for (name, display_name, expected) in [
            ("", "", "Enter the group"),
            (long.as_str(), "", "at most 64 characters"),
            ("wiki editors", "", "may only contain"),
            ("wiki", "bad\u{7}name", "control characters"),
            ("wiki", long.as_str(), "At most 100 characters"),
        ] {
            let fields = [("name", name), ("display_name", display_name), ("csrf_token", csrf.as_str())];
            let response = app.post_form("/admin/groups/new", &fields).await;
            assert_eq!(response.status(), 422, "{expected}");
            assert!(response.text().await.unwrap().contains(expected), "{expected}");
        }
        assert!(app.get("/admin/groups").await.text().await.unwrap().contains("No groups yet."));
        assert_eq!(app.get("/admin/groups/999999").await.status(), 404);
        assert_eq!(app.get("/admin/groups/not-a-number").await.status(), 400);
        assert_eq!(app.get("/admin/users?group=no-such-group").await.status(), 400);
        assert_eq!(app.get("/admin/users?group=%00").await.status(), 400);
        assert_no_server_panics();
    }

    async fn members_are_in_tokens_and_api_me_and_a_change_renews_sessions_instead_of_ending_them(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&admin).await;
        let finance = create_group(&app, "finance", "Finance").await;
        let tokens = app.api_login(&alice).await;
        assert_eq!(me(&app, &tokens.access).await["groups"], serde_json::json!([]));

        add_members(&app, finance, "alice").await;

        // Within two seconds her token is refused as outdated, and renewing it works: the
        // session goes on, and its new token names the group.
        let refused = within(REVOCATION_LIMIT, || async {
            app.get_with_bearer("/api/me", &tokens.access).await.status() == 401
        })
        .await;
        assert!(refused.is_some(), "the old token still speaks for her after 2 s");
        let renewed = app.api_refresh(&tokens.refresh).await.expect("the session was renewed, not ended");
        let body = me(&app, &renewed.access).await;
        assert_eq!(body["groups"], serde_json::json!(["finance"]), "{body}");
        assert_eq!(body["groups_truncated"], false);

        // A browser session renews itself: the page keeps working and the next token says it.
        let browser = app.browser();
        assert_eq!(browser.login(&alice.username, &alice.password).await.status(), 303);
        let csrf = app.session_csrf_token().await;
        let removed = app
            .post_form(&format!("/admin/groups/{finance}/members/remove"), &[(&format!("select-{}", alice.id), "on"), ("csrf_token", &csrf)])
            .await;
        assert_eq!(removed.status(), 303);
        assert!(app.get(&location(&removed)).await.text().await.unwrap().contains("1 person removed."));
        tokio::time::sleep(REVOCATION_LIMIT).await;
        let dashboard = browser.get("/dashboard").await;
        assert_eq!(dashboard.status(), 200, "still signed in");
        let after = app.api_refresh(&renewed.refresh).await.expect("the API session goes on too");
        assert_eq!(me(&app, &after.access).await["groups"], serde_json::json!([]));
    }

    async fn the_user_list_filters_by_group_and_pages_through_its_members(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        let ids = app.create_users_fast("member", 60).await;
        app.create_users_fast("other", 20).await;
        let group = create_group(&app, "readers", "Readers").await;
        let names: Vec<String> = (0..60).map(|n| format!("member{n:03}")).collect();
        add_members(&app, group, &names.join(" ")).await;
        assert_eq!(ids.len(), 60);

        let list = app.get("/admin/users?group=readers").await.text().await.unwrap();
        assert!(list.contains("60 users found"), "{list}");
        assert!(!list.contains("other0"), "only the members");
        let first = app.get(&format!("/admin/groups/{group}")).await.text().await.unwrap();
        assert!(first.contains("member000") && !first.contains("member055"), "a page of 50");
        let next = first.split("href=\"").find(|part| part.contains("after=")).and_then(|part| part.split('"').next()).expect("a next page");
        let second = app.get(&unescape(next)).await.text().await.unwrap();
        assert!(second.contains("member055") && !second.contains("member000"), "{second}");
        let searched = app.get(&format!("/admin/groups/{group}?q=er05")).await.text().await.unwrap();
        assert!(searched.contains("member050") && !searched.contains("member049"));
        let found = app.get(&format!("/admin/groups/{group}?find=other01")).await.text().await.unwrap();
        assert!(found.contains("other010") && found.contains("name=\"select-"), "people to add: {found}");
    }

    async fn a_manager_changes_their_groups_members_and_nothing_else(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let manager = app.create_user("mona", Role::User).await;
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&admin).await;
        let wiki = create_group(&app, "wiki", "Wiki").await;
        let finance = create_group(&app, "finance", "Finance").await;
        let csrf = app.session_csrf_token().await;
        let made = app.post_form(&format!("/admin/groups/{wiki}/managers"), &[("username", "mona"), ("change", "add"), ("csrf_token", &csrf)]).await;
        assert!(app.get(&location(&made)).await.text().await.unwrap().contains("mona now manages wiki"));

        let browser = app.browser();
        assert_eq!(browser.login(&manager.username, &manager.password).await.status(), 303);
        let mine = browser.get("/groups").await.text().await.unwrap();
        assert!(mine.contains("/groups/") && mine.contains("Wiki") && !mine.contains("Finance"), "{mine}");
        let csrf = browser.csrf(&format!("/groups/{wiki}")).await;
        let added = browser.post_form(&format!("/groups/{wiki}/members/add"), &[("usernames", "alice"), ("csrf_token", &csrf)]).await;
        assert_eq!(added.status(), 303);
        assert!(browser.get(&location(&added)).await.text().await.unwrap().contains("1 person added."));

        // Another group is not theirs: it does not exist for them, and nothing changes.
        assert_eq!(browser.get(&format!("/groups/{finance}")).await.status(), 404);
        let other = browser.post_form(&format!("/groups/{finance}/members/add"), &[("usernames", "alice"), ("csrf_token", &csrf)]).await;
        assert_eq!(other.status(), 404);
        let finance_members = app.with_conn(move |conn| portcullis::db::groups::member_count(conn, finance).unwrap()).await;
        assert_eq!(finance_members, 0);

        // Every admin route refuses them, changing nothing.
        let before = app.snapshot().await;
        for route in portcullis::startup::admin_routes() {
            let path = route.path.replace("{id}", &alice.id.to_string()).replace("{group}", &wiki.to_string()).replace("{session}", "1");
            for method in &route.methods {
                let response = match method.as_str() {
                    "GET" => browser.get(&path).await,
                    _ => browser.post_form(&path, &[("csrf_token", &csrf), ("usernames", "mona"), ("username", "mona"), ("name", "x")]).await,
                };
                assert!(matches!(response.status().as_u16(), 403 | 401), "{method} {path}: {}", response.status());
            }
        }
        assert_eq!(app.snapshot().await, before, "the manager changed nothing through the admin area");

        // No longer a manager: their page is gone.
        let csrf = app.session_csrf_token().await;
        app.post_form(&format!("/admin/groups/{wiki}/managers"), &[("username", "mona"), ("change", "remove"), ("csrf_token", &csrf)]).await;
        assert_eq!(browser.get(&format!("/groups/{wiki}")).await.status(), 404);
        let audit = app.get("/admin/audit").await.text().await.unwrap();
        assert!(audit.contains("mona now manages wiki") && audit.contains("wiki: alice"), "audited with the manager as actor");
    }

    async fn two_admins_adding_to_and_deleting_one_group_at_once_leave_no_orphan_rows(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.login_as(&admin).await;
        app.create_users_fast("crowd", 40).await;
        let names: Vec<String> = (0..40).map(|n| format!("crowd{n:03}")).collect();
        for round in 0..5 {
            let id = create_group(&app, &format!("race{round}"), "Race").await;
            let csrf = app.session_csrf_token().await;
            let (add_path, delete_path, everyone) =
                (format!("/admin/groups/{id}/members/add"), format!("/admin/groups/{id}/delete"), names.join(" "));
            let add_fields = [("usernames", everyone.as_str()), ("csrf_token", csrf.as_str())];
            let delete_fields = [("csrf_token", csrf.as_str())];
            let (added, deleted) = tokio::join!(app.post_form(&add_path, &add_fields), app.post_form(&delete_path, &delete_fields));
            assert!(matches!(added.status().as_u16(), 303 | 404), "{}", added.status());
            assert_eq!(deleted.status(), 303);
        }
        let orphans = app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::{group_members, user_groups};
            group_members::table
                .filter(diesel::dsl::not(group_members::group_id.eq_any(user_groups::table.select(user_groups::id))))
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        }).await;
        assert_eq!(orphans, 0);
        assert_no_server_panics();
    }

    async fn the_command_line_manages_groups_and_their_members(app: TestApp) {
        app.create_user("alice", Role::User).await;
        app.create_user("bob", Role::User).await;
        let created = portcullis(&app, &["group", "create", "Ledger", "--display-name", "Finance ledger", "--description", "Books"], "");
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        assert!(String::from_utf8_lossy(&created.stdout).contains("Created group ledger (Finance ledger"));
        let added = portcullis(&app, &["group", "add", "ledger", "alice", "BOB@example.com"], "");
        assert!(String::from_utf8_lossy(&added.stdout).contains("Added 2 user(s) to ledger"), "{added:?}");
        let members = String::from_utf8_lossy(&portcullis(&app, &["group", "members", "ledger"], "").stdout).to_string();
        assert!(members.contains("alice") && members.contains("bob"), "{members}");
        let listed = String::from_utf8_lossy(&portcullis(&app, &["group", "list"], "").stdout).to_string();
        assert!(listed.contains("ledger") && listed.contains("2 members"), "{listed}");
        let removed = portcullis(&app, &["group", "remove", "ledger", "bob"], "");
        assert!(String::from_utf8_lossy(&removed.stdout).contains("Removed 1 user(s) from ledger"));
        let unknown = portcullis(&app, &["group", "add", "no-such", "alice"], "");
        assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("there is no group \"no-such\""));
        let duplicate = portcullis(&app, &["group", "create", "LEDGER"], "");
        assert!(!duplicate.status.success() && String::from_utf8_lossy(&duplicate.stderr).contains("exists already"));
        let bad = portcullis(&app, &["group", "create", "has space"], "");
        assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("may only contain"));
        let deleted = portcullis(&app, &["group", "delete", "ledger"], "");
        assert!(String::from_utf8_lossy(&deleted.stdout).contains("Deleted group ledger (1 members lost it)"));
    }
}

both_backends! {
    async fn the_users_csv_carries_groups_and_an_import_elsewhere_exports_the_same_file(app: TestApp) {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("people.csv");
        std::fs::write(
            &source,
            "username,email,display_name,role,groups\r\n\
             anna,anna@example.com,Ana,user,finance;wiki-editors\r\n\
             bena,bena@example.com,Ben,user,\r\n\
             cyd,cyd@example.com,Cyd,admin,Wiki-Editors\r\n",
        )
        .unwrap();
        let imported = portcullis(&app, &["user", "import", source.to_str().unwrap()], "");
        assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
        let said = String::from_utf8_lossy(&imported.stdout).to_string();
        assert!(said.contains("Added 3 group memberships") && said.contains("Created 2 group(s) the file named: finance, wiki-editors"), "{said}");
        let members = String::from_utf8_lossy(&portcullis(&app, &["group", "members", "wiki-editors"], "").stdout).to_string();
        assert!(members.contains("anna") && members.contains("cyd") && !members.contains("bena"), "{members}");

        let exported = portcullis(&app, &["user", "export", "--with-password-hashes"], "");
        let text = String::from_utf8_lossy(&exported.stdout).to_string();
        assert!(text.lines().next().unwrap().contains(",groups"), "{text}");
        assert!(text.contains("finance;wiki-editors"), "{text}");
        let file = dir.path().join("export.csv");
        std::fs::write(&file, &exported.stdout).unwrap();
        let other = spawn_app(Backend::Sqlite).await;
        let again = portcullis(&other, &["user", "import", file.to_str().unwrap()], "");
        assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
        let second = portcullis(&other, &["user", "export", "--with-password-hashes"], "");
        // Every column but `created_at` (an import creates the accounts now) comes back as it was.
        let without_created = |csv: &str| -> Vec<String> {
            csv.lines()
                .map(|line| line.split(',').enumerate().filter(|(at, _)| *at != 6).map(|(_, cell)| cell).collect::<Vec<_>>().join(","))
                .collect()
        };
        assert_eq!(without_created(&String::from_utf8_lossy(&second.stdout)), without_created(&text), "the file round-trips");
    }

    async fn a_csv_groups_cell_naming_ten_thousand_groups_is_a_clear_error_and_imports_nothing(app: TestApp) {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("many.csv");
        let many: Vec<String> = (0..10_000).map(|n| format!("g{n}")).collect();
        std::fs::write(&source, format!("username,email,display_name,role,groups\nanna,anna@example.com,Ana,user,{}\nbob,bob@example.com,Bob,user,bad group\n", many.join(";"))).unwrap();
        let refused = portcullis(&app, &["user", "import", source.to_str().unwrap()], "");
        assert!(!refused.status.success());
        let said = String::from_utf8_lossy(&refused.stderr).to_string();
        assert!(said.contains("line 2: groups names 10000 groups; one row may name at most 200"), "{said}");
        assert!(said.contains("line 3: groups: \"bad group\" is not a group"), "{said}");
        let groups = app.with_conn(|conn| portcullis::db::groups::count(conn).unwrap()).await;
        assert_eq!(groups, 0, "nothing was imported");
    }

    async fn the_user_list_adds_and_removes_the_selected_users_after_a_confirmation(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let alice = app.create_user("alice", Role::User).await;
        let bob = app.create_user("bob", Role::User).await;
        app.login_as(&admin).await;
        create_group(&app, "ops", "Operations").await;
        let list = app.get("/admin/users").await.text().await.unwrap();
        assert!(list.contains("Add to group…") && list.contains(r#"<option value="ops">Operations</option>"#), "{list}");
        let csrf = app.session_csrf_token().await;
        let (a, b) = (format!("select-{}", alice.id), format!("select-{}", bob.id));
        let fields = [("action", "add-to-group"), ("group", "ops"), ("back", "/admin/users"), (a.as_str(), "on"), (b.as_str(), "on"), ("csrf_token", csrf.as_str())];
        let confirm = app.post_form("/admin/users/bulk", &fields).await;
        assert_eq!(confirm.status(), 200);
        let page = confirm.text().await.unwrap();
        assert!(page.contains("Add 2 users to ops?") && page.contains("Nobody is signed out"), "{page}");
        assert_eq!(app.with_conn(|conn| portcullis::db::groups::count(conn).unwrap()).await, 1);
        let applied = app.post_form("/admin/users/bulk/apply", &fields).await;
        let message = app.get(&location(&applied)).await.text().await.unwrap();
        assert!(message.contains("alice, bob added to ops."), "{message}");
        let user_page = app.get(&format!("/admin/users/{}", alice.id)).await.text().await.unwrap();
        assert!(user_page.contains("Remove from ops"), "the user page shows their groups");

        let removing = [("action", "remove-from-group"), ("group", "ops"), ("back", "/admin/users"), (a.as_str(), "on"), ("csrf_token", csrf.as_str())];
        let applied = app.post_form("/admin/users/bulk/apply", &removing).await;
        assert!(app.get(&location(&applied)).await.text().await.unwrap().contains("alice removed from ops."));
        let unknown = [("action", "add-to-group"), ("group", "nope"), ("back", "/admin/users"), (a.as_str(), "on"), ("csrf_token", csrf.as_str())];
        let refused = app.post_form("/admin/users/bulk", &unknown).await;
        assert!(app.get(&location(&refused)).await.text().await.unwrap().contains("That group no longer exists."));

        // From the user's own page: add, then remove.
        let ops = app.with_conn(|conn| portcullis::db::groups::list(conn, None, None, 1).unwrap()[0].group.id).await;
        let added = app.post_form(&format!("/admin/users/{}/groups", bob.id), &[("group", &ops.to_string()), ("change", "add"), ("csrf_token", &csrf)]).await;
        assert!(app.get(&location(&added)).await.text().await.unwrap().contains("Nothing changed."), "bob is a member already");
        let removed = app.post_form(&format!("/admin/users/{}/groups", bob.id), &[("group", &ops.to_string()), ("change", "remove"), ("csrf_token", &csrf)]).await;
        assert!(app.get(&location(&removed)).await.text().await.unwrap().contains("Removed from the group."));
    }
}

/// The real default: administrators must use two-step sign-in.
fn default_policy(settings: &mut portcullis::config::Settings) {
    settings.mfa_required = portcullis::config::MfaPolicy::default();
}

both_backends_with! { default_policy;
    async fn under_the_default_policy_an_admin_sets_up_two_step_sign_in_before_managing_groups(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let alice = app.create_user("alice", Role::User).await;
        app.login_as(&admin).await;
        let refused = app.get("/admin/groups").await;
        assert_eq!(refused.status(), 303, "nothing but setting up a second factor first");
        assert_eq!(location(&refused), "/account/security");

        crate::second_factor::enrol(&app).await;
        let id = create_group(&app, "finance", "Finance").await;
        add_members(&app, id, "alice").await;
        let tokens = app.api_login(&alice).await;
        assert_eq!(me(&app, &tokens.access).await["groups"], serde_json::json!(["finance"]));
    }
}

mod at_the_gate {
    //! Through real nginx, Caddy and Traefik: `group:` rules decide, the site sees
    //! `Remote-Groups` (never a client's own), and a member removed elsewhere (the command
    //! line, another instance) loses the site within two seconds.
    use portcullis::db::audit::Actor;
    use portcullis::domain::Role;

    use crate::helpers::*;
    use crate::proxies::{GuardedSite, Proxy};

    const RULES: &str = r#"
[[rule]]
host = "app.portcullis.test"
path = "/wiki"
allow = ["admin", "group:wiki-editors"]
"#;

    async fn upstream_headers(response: reqwest::Response) -> serde_json::Value {
        assert_eq!(response.status(), 200, "the upstream answered");
        let page = response.text().await.unwrap();
        let json = page.split("<pre id=seen>").nth(1).and_then(|rest| rest.split("</pre>").next()).unwrap_or(&page);
        serde_json::from_str::<serde_json::Value>(&unescape(json)).unwrap()["headers"].clone()
    }

    async fn scenario(proxy: Proxy) {
        let site = GuardedSite::start(proxy, |settings| {
            settings.forward_auth.rules_file = Some(crate::proxies::rules_file(RULES))
        })
        .await;
        let editor = site.app.create_user("edith", Role::User).await;
        let reader = site.app.create_user("rita", Role::User).await;
        let editor_id = editor.id;
        let group = site
            .app
            .with_conn(move |conn| {
                let input =
                    portcullis::accounts::GroupInput { name: "wiki-editors", display_name: "", description: "" };
                let group = portcullis::accounts::ValidGroup::parse(&input).ok().unwrap();
                let group = portcullis::accounts::create_group(conn, &Actor::command_line(), &group).unwrap();
                let by = portcullis::accounts::MemberChanger::Admin;
                portcullis::accounts::add_members(conn, &Actor::command_line(), group.id, &[editor_id], by).unwrap();
                group.id
            })
            .await;
        let wiki = site.app_url("/wiki/page");

        let editors_browser = site.browser();
        let cookies = site.cookies_for_sites(&editor).await;
        let forged = editors_browser
            .get(&wiki)
            .header("Cookie", &cookies)
            .header("Remote-Groups", "admins,finance")
            .send()
            .await
            .unwrap();
        let headers = upstream_headers(forged).await;
        assert_eq!(headers["remote-groups"], "wiki-editors", "{proxy:?}: only Portcullis says which groups: {headers}");

        let readers_cookies = site.cookies_for_sites(&reader).await;
        let refused = site.browser().get(&wiki).header("Cookie", &readers_cookies).send().await.unwrap();
        assert_eq!(refused.status(), 403, "{proxy:?}");
        let page = refused.text().await.unwrap();
        assert!(page.contains("administrators or members of wiki-editors") && page.contains("in no group"), "{page}");

        // Removed from the command line (as another instance would): within two seconds the
        // editor's cookies no longer open the wiki.
        site.app
            .with_conn(move |conn| {
                let by = portcullis::accounts::MemberChanger::Admin;
                portcullis::accounts::remove_members(conn, &Actor::command_line(), group, &[editor_id], by).unwrap()
            })
            .await;
        let shut = within(REVOCATION_LIMIT, || async {
            let answer = site.browser().get(&wiki).header("Cookie", &cookies).send().await.unwrap();
            answer.status() != 200
        })
        .await;
        assert!(shut.is_some(), "{proxy:?}: a removed member still opens the wiki after 2 s");
        assert_no_server_panics();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn through_nginx_group_rules_decide_and_a_removed_member_is_shut_out() {
        if Proxy::Nginx.available() {
            scenario(Proxy::Nginx).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn through_caddy_group_rules_decide_and_a_removed_member_is_shut_out() {
        if Proxy::Caddy.available() {
            scenario(Proxy::Caddy).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn through_traefik_group_rules_decide_and_a_removed_member_is_shut_out() {
        if Proxy::Traefik.available() {
            scenario(Proxy::Traefik).await;
        }
    }
}
