//! The `portcullis` binary itself: user commands against the test database, and start-up
//! refusing bad settings with one readable line.
use std::io::Write;
use std::process::{Command, Output, Stdio};

use portcullis::domain::Role;

use crate::helpers::*;

/// Runs the `portcullis` binary against `app`'s database.
pub(crate) fn portcullis(app: &TestApp, args: &[&str], stdin: &str) -> Output {
    portcullis_with_env(&[("DATABASE_URL", &app.database_url), ("PORTCULLIS_JWT_SECRET", &app.jwt_secret)], args, stdin)
}

pub(crate) fn portcullis_with_env(env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .env("PORTCULLIS_LOG", "warn")
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

both_backends! {
    async fn an_operator_creates_an_admin_from_the_command_line_who_can_then_sign_in(app: TestApp) {
        let output = portcullis(&app, &["user", "create", "--username", "Root", "--email", "root@example.com",
            "--role", "admin", "--password-stdin"], "granite lantern whistles\n");

        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(text(&output.stdout).contains(r#"Created admin user "root""#));
        let response = app.login("root", "granite lantern whistles").await;
        assert_eq!(response.status(), 303);
        assert_eq!(app.get("/admin").await.status(), 200);
    }

    async fn a_username_differing_only_in_case_is_refused(app: TestApp) {
        app.create_user("alice", Role::User).await;

        let output = portcullis(&app, &["user", "create", "--username", "ALICE", "--email", "other@example.com",
            "--password-stdin"], "granite lantern whistles\n");
        let same_email = portcullis(&app, &["user", "create", "--username", "alice2", "--email", "Alice@Example.COM",
            "--password-stdin"], "granite lantern whistles\n");

        assert!(!output.status.success());
        assert!(text(&output.stderr).contains("username is already taken"), "{}", text(&output.stderr));
        assert!(!same_email.status.success());
        assert!(text(&same_email.stderr).contains("email address is already in use"), "{}", text(&same_email.stderr));
    }

    async fn common_and_short_passwords_are_refused_with_a_reason(app: TestApp) {
        for (password, reason) in [("password1", "too easy to guess"), ("short", "at least 8")] {
            let output = portcullis(&app, &["user", "create", "--username", "bob", "--email", "bob@example.com",
                "--password-stdin"], &format!("{password}\n"));

            assert!(!output.status.success());
            assert!(text(&output.stderr).contains(reason), "{password}: {}", text(&output.stderr));
        }
        assert_eq!(app.with_conn(|conn| portcullis::db::users::counts(conn).unwrap().total).await, 0);
    }

    async fn set_password_changes_it_and_keeps_spaces_exactly(app: TestApp) {
        let user = app.create_user("carol", Role::User).await;

        let output = portcullis(&app, &["user", "set-password", "carol", "--password-stdin"], "  marble comet harbour  \n");

        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(app.login(&user.username, &user.password).await.status(), 401);
        assert_eq!(app.login(&user.username, "marble comet harbour").await.status(), 401, "not trimmed");
        assert_eq!(app.login(&user.username, "  marble comet harbour  ").await.status(), 303);
    }

    async fn operators_list_disable_enable_promote_and_delete_users_from_the_command_line(app: TestApp) {
        app.create_user("root", Role::Admin).await;
        let bob = app.create_user("bob", Role::User).await;
        app.create_user("bobby", Role::User).await;
        app.create_user("carol", Role::User).await;

        let listed = portcullis(&app, &["user", "list", "--search", "BOB"], "");
        assert!(listed.status.success(), "{}", text(&listed.stderr));
        let out = text(&listed.stdout);
        assert!(out.contains("bob@example.com") && out.contains("bobby") && !out.contains("carol"), "{out}");

        assert!(portcullis(&app, &["user", "disable", "bob"], "").status.success());
        assert_eq!(app.login("bob", PASSWORD).await.status(), 401);
        assert!(portcullis(&app, &["user", "enable", "bob@example.com"], "").status.success());
        assert_eq!(app.login("bob", PASSWORD).await.status(), 303);
        assert!(portcullis(&app, &["user", "set-role", "carol", "admin"], "").status.success());
        let carol = app.with_conn(|conn| portcullis::db::users::find_by_login(conn, "carol")).await.unwrap().unwrap();
        assert_eq!(carol.role, Role::Admin, "promoted");
        let listed = text(&portcullis(&app, &["user", "list", "--search", "carol"], "").stdout);
        assert!(listed.lines().any(|line| line.contains("carol") && line.contains("admin")), "{listed}");
        let deleted = portcullis(&app, &["user", "delete", "bobby"], "");
        assert!(text(&deleted.stdout).contains("Deleted bobby"));
        let missing = portcullis(&app, &["user", "disable", "nobody"], "");
        assert!(!missing.status.success() && text(&missing.stderr).contains("there is no user \"nobody\""));
        let actions = app.audit_actions().await;
        assert!(["user.disable", "user.enable", "user.update", "user.delete"].iter().all(|a| actions.contains(&a.to_string())));
        let stored = app.with_conn(move |conn| portcullis::db::users::find_by_id(conn, bob.id)).await.unwrap().unwrap();
        assert!(stored.is_active, "bob is enabled again");
        let gone = app.with_conn(|conn| portcullis::db::users::find_by_login(conn, "bobby")).await.unwrap();
        assert!(gone.is_none(), "bobby is deleted");
    }

    async fn the_command_line_cannot_remove_the_last_admin_either(app: TestApp) {
        app.create_user("root", Role::Admin).await;

        for args in [&["user", "disable", "root"][..], &["user", "delete", "root"], &["user", "set-role", "root", "user"]] {
            let output = portcullis(&app, args, "");
            assert!(!output.status.success(), "{args:?}");
            assert!(text(&output.stderr).contains("last active administrator"), "{}", text(&output.stderr));
        }
        assert_eq!(app.login("root", PASSWORD).await.status(), 303);
    }

    async fn a_csv_import_adds_every_user_or_none_and_reports_bad_rows_by_line(app: TestApp) {
        app.create_user("existing", Role::User).await;
        let hash = portcullis::auth::password::hash_blocking("imported hash works").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        std::fs::write(&good, format!("username,email,display_name,role,password_hash\n\
            dora,dora@example.com,Dora Explorer,user,\"{hash}\"\n\
            Eve,EVE@example.com,,admin,\n\
            \"frank\",frank@example.com,\"Frank, Jr.\",,\n")).unwrap();
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "username,email,display_name,role\n\
            gina,gina@example.com,Gina,user\n\
            h,not-an-email,Hal,user\n\
            gina,gina2@example.com,Gina Two,user\n\
            existing,new@example.com,Existing,user\n\
            ivan,ivan@example.com,Ivan,root\n").unwrap();
        let headerless = dir.path().join("headerless.csv");
        std::fs::write(&headerless, "name,mail\nx,y\n").unwrap();
        let before = app.snapshot().await;

        let refused = portcullis(&app, &["user", "import", bad.to_str().unwrap()], "");
        let no_header = portcullis(&app, &["user", "import", headerless.to_str().unwrap()], "");

        assert!(!refused.status.success());
        let report = text(&refused.stderr);
        for expected in ["line 3: Username must be 3 to 32", "Enter an email address like", "line 4: username gina is also on line 2",
                         "line 6: Role must be", "nothing was imported"] {
            assert!(report.contains(expected), "{expected}: {report}");
        }
        assert!(!no_header.status.success() && text(&no_header.stderr).contains("missing username"));
        assert_eq!(app.snapshot().await, before, "nothing half-imported");

        let existing_only = dir.path().join("existing.csv");
        std::fs::write(&existing_only, "username,email,display_name,role\nexisting,new@example.com,E,user\n").unwrap();
        let collision = portcullis(&app, &["user", "import", existing_only.to_str().unwrap()], "");
        assert!(text(&collision.stderr).contains("line 2: username existing already exists"), "{}", text(&collision.stderr));

        let imported = portcullis(&app, &["user", "import", good.to_str().unwrap()], "");
        assert!(imported.status.success(), "{}", text(&imported.stderr));
        assert!(text(&imported.stdout).contains("Imported 3 users"));
        assert_eq!(app.login("dora", "imported hash works").await.status(), 303, "the imported hash works");
        // Without a hash there is no password at all: not even the marker stored in its place.
        let eve = app.with_conn(|conn| portcullis::db::users::find_by_login(conn, "eve")).await.unwrap().unwrap();
        assert_eq!(eve.password_hash, portcullis::auth::password::NO_PASSWORD);
        assert!(eve.must_change_password);
        for attempt in ["any password at all", portcullis::auth::password::NO_PASSWORD] {
            assert_eq!(app.browser().login("eve", attempt).await.status(), 401, "no hash, no password: {attempt:?}");
        }
        let listed = text(&portcullis(&app, &["user", "list", "--search", "frank"], "").stdout);
        assert!(listed.contains("frank@example.com"), "{listed}");
        assert!(app.audit_actions().await.contains(&"user.import".to_owned()));
    }

    async fn a_hash_with_huge_parameters_is_refused_on_import_and_fails_only_its_own_sign_in(app: TestApp) {
        let valid = portcullis::auth::password::hash_blocking("imported hash works").unwrap();
        let huge = valid.replace("m=19456", "m=4000000000");
        let many_passes = valid.replace("t=2", "t=4000000");
        assert_ne!(huge, valid);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("huge.csv");
        std::fs::write(&file, format!("username,email,display_name,role,password_hash\nmia,mia@example.com,Mia,user,\"{valid}\"\n\
            max,max@example.com,Max,user,\"{huge}\"\nmoe,moe@example.com,Moe,user,\"{many_passes}\"\n")).unwrap();
        let before = app.snapshot().await;

        let refused = portcullis(&app, &["user", "import", file.to_str().unwrap()], "");

        assert!(!refused.status.success());
        let report = text(&refused.stderr);
        assert!(report.contains("line 3: password_hash is refused") && report.contains("m=4000000000"), "{report}");
        assert!(report.contains("line 4: password_hash is refused"), "{report}");
        assert_eq!(app.snapshot().await, before, "nothing half-imported");

        // Already in the database (an older import, a hand edit): that sign-in fails, quickly,
        // and the server goes on answering everyone else.
        let victim = app.create_user("max", Role::User).await;
        let other = app.create_user("ned", Role::User).await;
        let id = victim.id;
        app.with_conn(move |conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::users;
            diesel::update(users::table.find(id)).set(users::password_hash.eq(huge)).execute(conn)
        })
        .await
        .unwrap();
        let started = std::time::Instant::now();
        let attempt = app.browser().login("max", "imported hash works").await;
        assert_eq!(attempt.status(), 401, "refused like a wrong password");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "never tried: {:?}", started.elapsed());
        assert_eq!(app.browser().login(&other.username, &other.password).await.status(), 303, "the server still runs");
        assert_no_server_panics();
    }

    async fn migrate_reports_an_up_to_date_database(app: TestApp) {
        let output = portcullis(&app, &["migrate"], "");

        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(text(&output.stdout).contains("up to date"));
    }

    async fn after_an_upgrade_existing_addresses_are_covered_by_the_look_alike_check(app: TestApp) {
        app.create_user("alice", Role::User).await;
        // As a database from before the check: no skeletons recorded.
        app.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::users;
            diesel::update(users::table).set(users::email_skeleton.eq(None::<String>)).execute(conn).unwrap()
        }).await;

        let output = portcullis(&app, &["migrate"], "");

        assert!(output.status.success(), "{}", text(&output.stderr));
        let stored = app.with_conn(|conn| portcullis::db::users::find_by_login(conn, "alice").unwrap().unwrap()).await;
        assert_eq!(stored.email_skeleton.as_deref(), Some("alice@exarnple.corn"), "TR39 reads 'm' as 'rn'");
        let bob = app.create_user("bob", Role::User).await;
        let id = bob.id;
        let clash = app.with_conn(move |conn| {
            use portcullis::db::{audit::Actor, users::ProfileChanges};
            let email = portcullis::domain::Email::parse("\u{430}lice@example.com").unwrap();
            portcullis::accounts::update_profile(conn, &crate::helpers::no_mail(), &Actor::command_line(), id, &ProfileChanges { email: Some(&email), ..Default::default() }).err()
        }).await;
        assert!(clash.is_some_and(|error| error.to_string().contains("looks the same")));
    }
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["user", "--help"],
        &["user", "create", "--help"],
        &["user", "set-password", "--help"],
        &["user", "list", "--help"],
        &["user", "disable", "--help"],
        &["user", "enable", "--help"],
        &["user", "delete", "--help"],
        &["user", "set-role", "--help"],
        &["user", "import", "--help"],
    ] {
        let output = portcullis_with_env(&[], args, "");
        assert!(output.status.success(), "{args:?}");
        assert!(text(&output.stdout).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn bad_settings_stop_start_up_with_one_readable_line() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("PORTCULLIS_JWT_SECRET", "too-short")], "PORTCULLIS_JWT_SECRET is too short"),
        (
            &[("PORTCULLIS_JWT_SECRET", "my_very_long_and_safe_secret_key")],
            "PORTCULLIS_JWT_SECRET is a secret published in public code",
        ),
        (
            &[("PORTCULLIS_JWT_SECRET", "correct horse battery staple correct horse")],
            "PORTCULLIS_JWT_SECRET is made of words or patterns",
        ),
        (
            &[("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")],
            "PORTCULLIS_JWT_SECRET is required with PostgreSQL",
        ),
        (&[("DATABASE_URL", "mysql://localhost/db")], "DATABASE_URL must start with"),
        (&[("PORTCULLIS_BIND", "not-an-address")], "PORTCULLIS_BIND"),
    ];
    for (env, expected) in cases {
        let output = portcullis_with_env(env, &["serve"], "");

        assert_eq!(output.status.code(), Some(2), "{env:?}");
        let stderr = text(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
    }
}

#[test]
fn an_unreachable_database_is_a_clear_error() {
    let secret = &portcullis::random::token_base64(48);
    let unreachable = portcullis_with_env(
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/portcullis"), ("PORTCULLIS_JWT_SECRET", secret)],
        &["migrate"],
        "",
    );
    let no_directory =
        portcullis_with_env(&[("DATABASE_URL", "sqlite:///no/such/directory/portcullis.db")], &["migrate"], "");

    assert_eq!(unreachable.status.code(), Some(1));
    assert!(text(&unreachable.stderr).contains("could not open PostgreSQL"), "{}", text(&unreachable.stderr));
    assert!(
        text(&no_directory.stderr).contains("could not open the SQLite database"),
        "{}",
        text(&no_directory.stderr)
    );
}

#[test]
fn an_operator_times_the_password_hash_to_size_the_sign_in_capacity() {
    let output = portcullis_with_env(&[("PORTCULLIS_HASH_CONCURRENCY", "2")], &["hash-speed", "--samples", "3"], "");

    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed = text(&output.stdout);
    assert!(printed.contains("one argon2id hash: "), "{printed}");
    assert!(printed.contains("with 2 hashing at once: "), "{printed}");
    assert!(printed.contains("sign-ins per second at most: "), "{printed}");
}

#[test]
fn a_hash_speed_without_samples_is_refused() {
    let output = portcullis_with_env(&[], &["hash-speed", "--samples", "0"], "");

    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--samples"), "{}", text(&output.stderr));
}
