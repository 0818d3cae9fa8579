use portcullis::domain::Role;

use crate::helpers::*;

both_backends! {
    async fn sign_ins_failures_and_sign_outs_are_recorded_with_the_client_address(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let bob = app.create_user("bob", Role::User).await;
        let other = app.browser();
        other.login("bob", "wrong password").await;
        other.login("ghost", "whatever it is").await;
        other.login("bob", PASSWORD).await;
        let csrf = other.csrf("/dashboard").await;
        other.post_form("/logout", &[("csrf_token", &csrf)]).await;
        app.api_token(&bob).await;

        let events = app.audit_details().await;
        let summary: Vec<(String, Option<String>, Option<String>)> =
            events.iter().map(|(action, actor, target, _)| (action.clone(), actor.clone(), target.clone())).collect();
        assert_eq!(summary, [
            ("login.failed".into(), None, Some("bob".into())),
            ("login.failed".into(), None, None),
            ("login.ok".into(), Some("bob".into()), Some("bob".into())),
            ("logout".into(), Some("bob".into()), Some("bob".into())),
            ("login.ok".into(), Some("bob".into()), Some("bob".into())),
        ]);
        assert!(events[1].3.contains("login: ghost"));
        assert!(events[4].3.contains("via api"));

        app.login_as(&admin).await;
        let page = app.get("/admin/audit").await.text().await.unwrap();
        assert!(page.contains("127.0.0.1") && page.contains("login.failed"));
    }

    async fn the_audit_trail_filters_by_actor_and_target_and_pages(app: TestApp) {
        let admin = app.create_user("root", Role::Admin).await;
        let bob = app.create_user("bob", Role::User).await;
        let ids = (admin.id, bob.id);
        app.with_conn(move |conn| {
            use portcullis::db::audit::{self, Actor};
            let root = Actor { user: Some((ids.0, "root".into())), client_ip: Some("10.0.0.1".into()) };
            for n in 0..60 {
                audit::record(conn, &root, audit::Action::UserUpdate, Some((ids.1, "bob")), &format!("change {n}")).unwrap();
            }
            audit::record(conn, &Actor::command_line(), audit::Action::UserDisable, Some((ids.0, "root")), "").unwrap();
        }).await;
        app.login_as(&admin).await;

        let by_target = app.get("/admin/audit?target=bob").await.text().await.unwrap();
        assert!(by_target.contains("change 59") && !by_target.contains("change 9<"), "newest 50 first");
        let older = unescape(by_target.split(r#"rel="next" href=""#).nth(1).unwrap().split('"').next().unwrap());
        let second = app.get(&older).await.text().await.unwrap();
        assert!(second.contains("change 0<") && second.contains("change 9<") && !second.contains("change 10<"));
        let by_actor = app.get(&format!("/admin/audit?actor={}", admin.id)).await.text().await.unwrap();
        assert!(!by_actor.contains("<code>user.disable</code>"), "only the events of that actor");
        let unknown = app.get("/admin/audit?actor=nobody").await.text().await.unwrap();
        assert!(unknown.contains("There is no user called “nobody”"));
    }
}
