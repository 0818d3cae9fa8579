//! Finding people in the admin's list by any part of a name or address, whatever the accents
//! and case, on both backends, through their trigram indexes.
use portcullis::db::users::{self, NewUser};
use portcullis::domain::{DisplayName, Email, Role, Username};

use crate::helpers::*;

async fn add(app: &TestApp, username: &str, email: &str, display_name: &str) {
    let (username, email, display_name) = (username.to_owned(), email.to_owned(), display_name.to_owned());
    app.with_conn(move |conn| {
        users::insert(
            conn,
            &NewUser {
                username: &Username::parse(&username).unwrap(),
                email: &Email::parse(&email).unwrap(),
                display_name: &DisplayName::parse(&display_name).unwrap(),
                password_hash: "x",
                role: Role::User,
                must_change_password: false,
            },
        )
        .unwrap();
    })
    .await;
}

/// `count` users `bulkNNNNN` inserted in batches of a thousand.
async fn add_many(app: &TestApp, count: usize) {
    app.with_conn(move |conn| {
        let names: Vec<(Username, Email, DisplayName)> = (0..count)
            .map(|n| {
                let name = format!("bulk{n:05}");
                (
                    Username::parse(&name).unwrap(),
                    Email::parse(&format!("{name}@bulk.test")).unwrap(),
                    DisplayName::parse(&format!("Bulk Person {n}")).unwrap(),
                )
            })
            .collect();
        for chunk in names.chunks(1000) {
            let rows: Vec<NewUser<'_>> = chunk
                .iter()
                .map(|(username, email, display_name)| NewUser {
                    username,
                    email,
                    display_name,
                    password_hash: "x",
                    role: Role::User,
                    must_change_password: false,
                })
                .collect();
            users::insert_many(conn, &rows).unwrap();
        }
    })
    .await;
}

fn listed(html: &str) -> Vec<String> {
    html.split(r#"<a href="/admin/users/"#)
        .skip(1)
        .filter_map(|rest| rest.split_once("\">").map(|(_, after)| after.split('<').next().unwrap_or("").to_owned()))
        .filter(|name| !name.is_empty() && name != "new")
        .collect()
}

both_backends! {
    async fn any_part_of_a_name_or_address_finds_people_whatever_the_accents(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        add(&app, "lfang", "lee@corp.test", "Lee Fang").await;
        add(&app, "mgarcia", "maria@example.org", "María García").await;
        add(&app, "zoe", "zoe@example.org", "Zoë Ünal").await;
        add(&app, "pat_x", "pat@other.test", "Pat 100% Sure").await;
        app.login_as(&admin).await;

        for (search, expected) in [
            ("fang", vec!["lfang"]),
            ("garcía", vec!["mgarcia"]),
            ("GARCIA", vec!["mgarcia"]),
            ("@example.org", vec!["mgarcia", "zoe"]),
            ("unal", vec!["zoe"]),
            ("100%", vec!["pat_x"]),
            ("t_x", vec!["pat_x"]),
            ("nobody-at-all", vec![]),
        ] {
            let html = app.get(&format!("/admin/users?q={}", urlencode(search))).await.text().await.unwrap();
            let names = listed(&html);
            assert_eq!(names, expected, "searching {search:?}");
            let count = if expected.len() == 1 { "1 user found".to_owned() } else { format!("{} users found", expected.len()) };
            assert!(html.contains(&count), "{search:?}: the page says how many");
        }
        // Two characters: the start of a field, as before.
        assert_eq!(listed(&app.get("/admin/users?q=zo").await.text().await.unwrap()), vec!["zoe"]);
        // A change of name is found at once.
        let csrf = app.session_csrf_token().await;
        let id: i64 = app
            .with_conn(|conn| users::find_by_login(conn, "zoe").unwrap().unwrap().id)
            .await;
        app.post_form(&format!("/admin/users/{id}"), &[("csrf_token", &csrf), ("username", "zoe"), ("email", "zoe@example.org"), ("display_name", "Zoë Åkesson"), ("role", "user")]).await;
        assert_eq!(listed(&app.get("/admin/users?q=akess").await.text().await.unwrap()), vec!["zoe"]);
        assert!(listed(&app.get("/admin/users?q=unal").await.text().await.unwrap()).is_empty());
    }

    async fn a_broad_search_lists_the_first_page_in_order_and_says_more_than_ten_thousand(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        add_many(&app, 10_050).await;
        // What housekeeping does hourly on PostgreSQL: estimate how common each trigram is.
        app.with_conn(|conn| portcullis::db::user_search::refresh_trigram_sample(conn).unwrap()).await;
        app.login_as(&admin).await;
        let html = app.get("/admin/users?q=person").await.text().await.unwrap();
        assert!(html.contains("More than 10,000 users found"), "{html}");
        let names = listed(&html);
        assert_eq!(names.len(), 50);
        assert_eq!(names[0], "bulk00000");
        assert_eq!(names[49], "bulk00049");
        let narrow = app.get("/admin/users?q=person+1004").await.text().await.unwrap();
        assert!(narrow.contains("11 users found"), "1004 and 10040–10049");
        assert_eq!(listed(&narrow)[0], "bulk01004");
    }
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("q", text)]).unwrap().trim_start_matches("q=").to_owned()
}

both_backends! {
    async fn a_nul_or_other_control_character_in_a_filter_is_a_clear_400_not_a_500(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        app.create_user("abc", Role::User).await;
        app.login_as(&admin).await;
        for path in [
            "/admin/users?q=ab%00c",
            "/admin/users?q=%00",
            "/admin/users?q=a%0Db",
            "/admin/users.csv?q=ab%00c",
            "/admin/users?role=%00",
            "/admin/audit?actor=ro%00ot",
            "/admin/audit?target=%00",
            "/admin/audit.csv?actor=ro%00ot",
            "/admin/audit?from=2026-01-01%00",
        ] {
            let answer = app.get(path).await;
            assert_eq!(answer.status(), 400, "{path}");
            let page = unescape(&answer.text().await.unwrap());
            assert!(page.contains("control character"), "{path}: {page}");
        }
        assert_eq!(app.get("/admin/users?q=abc").await.status(), 200, "the same search without it works");
        assert_no_server_panics();
    }
}
