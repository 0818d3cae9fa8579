//! Taking data out: the user list and the audit trail as CSV (streamed, with the filters of
//! the page they come from), and `portcullis user export` in the format `user import` reads.
use portcullis::domain::Role;

use crate::helpers::*;

fn csv_rows(body: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

both_backends! {
    async fn an_admin_downloads_the_filtered_user_list_as_csv_every_page_of_it(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.create_users_fast("staff", 1203).await;
        app.create_user("zed", Role::User).await;
        app.with_conn(|conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query("UPDATE users SET display_name = '=1+1' WHERE username = 'zed'").execute(conn).unwrap();
        })
        .await;
        app.login_as(&admin).await;
        let list = app.get("/admin/users?q=staff").await.text().await.unwrap();
        assert!(list.contains(r#"href="/admin/users.csv?q=staff""#), "the list links to its own export");

        let response = app.get("/admin/users.csv?q=staff").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
        assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"users-"));
        let body = response.text().await.unwrap();
        assert!(body.starts_with("username,email,display_name,role,status,two_step,created_at,last_login_at,groups\n"));
        let rows = csv_rows(&body);
        assert_eq!(rows.len(), 1203, "all pages, not the 50 on screen");
        assert!(rows.iter().all(|row| row[0].starts_with("staff")));
        assert!(!body.contains("argon2"), "no password hashes leave through the web");

        let everyone = csv_rows(&app.get("/admin/users.csv").await.text().await.unwrap());
        assert_eq!(everyone.len(), 1205);
        assert!(everyone.iter().any(|row| row[0] == "zed" && row[2] == "'=1+1"), "a formula-looking cell is defused");

        let plain = app.in_new_browser();
        let bob = plain.create_user("bob", Role::User).await;
        plain.login_as(&bob).await;
        assert_eq!(plain.get("/admin/users.csv").await.status(), 403, "admins only");
    }

    async fn the_audit_trail_filters_by_action_and_dates_and_downloads_as_csv(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let other = app.browser();
        other.login("root", "wrong password").await;
        app.login_as(&admin).await;
        let refused = crate::cli::portcullis(&app, &["user", "disable", "root"], "");
        assert!(!refused.status.success(), "the last administrator cannot be disabled");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("last active administrator"));

        let failed = app.get("/admin/audit?action=login.failed").await.text().await.unwrap();
        assert!(failed.contains("Sign-in refused") && !failed.contains("Signed in</td>"), "{failed}");
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let dated = app.get(&format!("/admin/audit?from={today}&to={today}")).await.text().await.unwrap();
        assert!(dated.contains("login.ok"));
        let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
        let none = app.get(&format!("/admin/audit?from={tomorrow}")).await.text().await.unwrap();
        assert!(none.contains("No events."));
        let bad = app.get("/admin/audit?from=yesterday").await;
        assert_eq!(bad.status(), 400);
        assert!(unescape(&bad.text().await.unwrap()).contains("is not a date"));

        let csv = app.get("/admin/audit.csv?action=login.failed").await;
        assert_eq!(csv.status(), 200);
        let rows = csv_rows(&csv.text().await.unwrap());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][2], "login.failed");
        assert_eq!(rows[0][1], "someone not signed in");
        assert_eq!(rows[0][3], "Sign-in refused");
    }

    async fn the_command_line_is_named_as_the_actor_of_what_it_did(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.create_user("bob", Role::User).await;
        let out = crate::cli::portcullis(&app, &["user", "disable", "bob"], "");
        assert!(out.status.success());
        app.login_as(&admin).await;
        let page = app.get("/admin/audit?action=user.disable").await.text().await.unwrap();
        assert!(page.contains("command line"), "{page}");
    }

    async fn user_export_on_the_command_line_reads_back_with_user_import(app: TestApp) {
        app.create_users_fast("crew", 1500).await;
        let out = crate::cli::portcullis(&app, &["user", "export", "--with-password-hashes"], "");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let body = String::from_utf8(out.stdout).unwrap();
        let rows = csv_rows(&body);
        assert_eq!(rows.len(), 1500);
        assert!(rows[0][8].starts_with("$argon2id$"), "the hash column on request");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Exported 1500 user(s)."));

        // The file imports into another installation, passwords included.
        let other = spawn_app(Backend::Sqlite).await;
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &body).unwrap();
        let imported = crate::cli::portcullis(&other, &["user", "import", &file.path().display().to_string()], "");
        assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
        assert_eq!(other.login("crew007", PASSWORD).await.status(), 303, "the password came along");
        other.server.stop(true).await;
    }

    async fn an_export_imported_elsewhere_and_exported_again_is_the_same_file(app: TestApp) {
        let tricky = "username,email,display_name,role\n\
            bob,-bob@example.com,=1+1,user\n\
            carla,+carla@example.com,\"Carla, \"\"the\"\" Boss\",admin\n\
            dina,dina@example.com,'quoted',user\n\
            emil,emil@example.com,''-twice,user\n\
            farah,farah@example.com,\u{200f}فرح,user\n\
            gus,gus@example.com,－fullwidth＠,user\n\
            hana,hana@example.com,@hana|pipe,user\n";
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("tricky.csv");
        std::fs::write(&source, tricky).unwrap();
        let first_import = crate::cli::portcullis(&app, &["user", "import", source.to_str().unwrap()], "");
        assert!(first_import.status.success(), "{}", String::from_utf8_lossy(&first_import.stderr));
        let stored = |app: &TestApp| {
            let pool = app.pool.clone();
            async move {
                let mut conn = pool.get().unwrap();
                tokio::task::block_in_place(|| {
                let conn = &mut conn;
                use diesel::prelude::*;
                use portcullis::db::schema::users;
                users::table
                    .order(users::username)
                    .select((users::username, users::email, users::display_name, users::role))
                    .load::<(String, String, String, String)>(conn)
                    .unwrap()
                })
            }
        };
        let original = stored(&app).await;
        assert!(original.contains(&("bob".into(), "-bob@example.com".into(), "=1+1".into(), "user".into())));
        assert!(original.iter().any(|row| row.2 == "'-twice"), "an apostrophe as export writes it comes off: {original:?}");

        let exported = crate::cli::portcullis(&app, &["user", "export", "--with-password-hashes"], "");
        assert!(exported.status.success());
        let file = dir.path().join("export.csv");
        std::fs::write(&file, &exported.stdout).unwrap();
        let other = spawn_app(Backend::Sqlite).await;
        let imported = crate::cli::portcullis(&other, &["user", "import", file.to_str().unwrap()], "");
        assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));

        assert_eq!(stored(&other).await, original, "every value arrived exactly as it left");
        let again = crate::cli::portcullis(&other, &["user", "export"], "");
        let columns = |body: &[u8]| -> Vec<Vec<String>> {
            csv_rows(std::str::from_utf8(body).unwrap()).into_iter().map(|row| row[..4].to_vec()).collect()
        };
        let first_export = crate::cli::portcullis(&app, &["user", "export"], "");
        assert_eq!(columns(&again.stdout), columns(&first_export.stdout), "and leaves the second one the same");
        other.server.stop(true).await;
    }
}
