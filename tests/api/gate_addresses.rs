//! The gate judges the address the proxy actually routed to, spelled the way the site behind
//! reads it: through real nginx, Caddy and Traefik, requests written byte for byte try every
//! trick of the third attack run (a request line naming one host and a `Host` header naming
//! another, a host the proxy does not serve, a trailing dot, `/ADMIN`, `/%61dmin`,
//! `//admin`, `/public/../admin`, `/admin;x`, an encoded slash), and the upstream — which
//! normalises paths as a lenient application does — says what it was asked for.
use portcullis::domain::Role;

use crate::proxies::{APP_HOST, GuardedSite, Proxy, STATUS_HOST, VAULT_HOST};

const RULES: &str = r#"
[[rule]]
host = "status.portcullis.test"
allow = "public"

[[rule]]
host = "vault.portcullis.test"
allow = ["admin"]

[[rule]]
host = "app.portcullis.test"
path = "/admin"
allow = ["admin"]

[[rule]]
host = "app.portcullis.test"
path = "/public"
allow = "public"
"#;

async fn site_with_rules(proxy: Proxy) -> GuardedSite {
    GuardedSite::start(proxy, |settings| settings.forward_auth.rules_file = Some(crate::proxies::rules_file(RULES)))
        .await
}

macro_rules! through_each_proxy {
    ($scenario:ident: $($test:ident => $proxy:expr),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                if $proxy.available() {
                    $scenario($proxy).await;
                }
            }
        )+
    };
}

async fn nobody_reaches_a_guarded_site_by_naming_another_host(proxy: Proxy) {
    let site = site_with_rules(proxy).await;
    let user = site.app.create_user("ulla", Role::User).await;
    let admin = site.app.create_user("ada", Role::Admin).await;
    let (status, vault) = (site.authority(STATUS_HOST), site.authority(VAULT_HOST));

    // The public site is open and the vault is open to its administrator: what the tricks
    // below must not reach is reachable.
    assert!(site.raw("/", &status, None).await.reached_the_site(), "{proxy:?}: the public site answers");
    let admins_cookies = site.cookies_for_sites(&admin).await;
    assert!(site.raw("/secret", &vault, Some(&admins_cookies)).await.reached_the_site(), "{proxy:?}: admin opens it");

    let absolute = format!("http://{vault}/secret");
    let unserved = site.authority("nowhere.portcullis.test");
    let dotted = format!("{VAULT_HOST}.:{}", site.port);
    let shouted = site.authority(&VAULT_HOST.to_uppercase());
    let anonymous: [(&str, &str); 5] = [
        (&absolute, &status),
        ("/secret", &unserved),
        ("/secret", &dotted),
        ("/secret", &shouted),
        (&absolute, &unserved),
    ];
    for (target, host) in anonymous {
        let answer = site.raw(target, host, None).await;
        assert!(
            !answer.reached_the_site() && answer.status != 200,
            "{proxy:?}: GET {target} with Host {host} reached the vault anonymously ({})",
            answer.status
        );
        assert!(answer.status < 500 || proxy == Proxy::Nginx && answer.status == 500, "{proxy:?}: {}", answer.text);
    }
    let users_cookies = site.cookies_for_sites(&user).await;
    for (target, host) in
        [("/secret", vault.as_str()), ("/secret", &dotted), ("/secret", &shouted), (&absolute, &status)]
    {
        let answer = site.raw(target, host, Some(&users_cookies)).await;
        assert!(!answer.reached_the_site(), "{proxy:?}: a user reached the admins' vault with {target} / {host}");
    }
    assert!(site.raw("/", &status, Some(&users_cookies)).await.reached_the_site());
}

through_each_proxy! { nobody_reaches_a_guarded_site_by_naming_another_host:
    through_nginx_nobody_reaches_a_guarded_site_by_naming_another_host => Proxy::Nginx,
    through_caddy_nobody_reaches_a_guarded_site_by_naming_another_host => Proxy::Caddy,
    through_traefik_nobody_reaches_a_guarded_site_by_naming_another_host => Proxy::Traefik,
}

/// Spellings an application reads as `/admin…`.
const ADMIN_SPELLINGS: [&str; 12] = [
    "/admin",
    "/ADMIN",
    "/Admin/settings",
    "/%61dmin",
    "/%41DMIN/settings",
    "//admin/settings",
    "/public/../admin",
    "/./admin",
    "/admin;x",
    "/public;x/../admin/settings",
    "/public/%2e%2e/admin",
    "/admin/../public",
];

async fn no_spelling_of_an_admin_path_gets_past_the_gate(proxy: Proxy) {
    let site = site_with_rules(proxy).await;
    let user = site.app.create_user("ulla", Role::User).await;
    let admin = site.app.create_user("ada", Role::Admin).await;
    let app = site.authority(APP_HOST);
    let users_cookies = site.cookies_for_sites(&user).await;
    let admins_cookies = site.cookies_for_sites(&admin).await;

    for path in ADMIN_SPELLINGS {
        for (who, cookies) in [("an anonymous visitor", None), ("a user", Some(users_cookies.as_str()))] {
            let answer = site.raw(path, &app, cookies).await;
            let read = answer.site_read().unwrap_or_default().to_lowercase();
            assert!(!read.starts_with("/admin"), "{proxy:?}: {who} reached {read} with {path} ({})", answer.status);
            // Traefik resolves `/admin/../public` itself: the site then rightly serves /public.
            let resolved_by_the_proxy = path == "/admin/../public" && read == "/public";
            assert!(
                !answer.reached_the_site() || resolved_by_the_proxy,
                "{proxy:?}: {who} was let through with {path}"
            );
        }
    }
    // The administrator is let in by the spellings the proxy passes on: the rules still work.
    let answer = site.raw("/%61dmin/settings", &app, Some(&admins_cookies)).await;
    assert_eq!(answer.site_read().as_deref(), Some("/admin/settings"), "{proxy:?}: {}", answer.text);
    // A public path stays public, without tricks.
    assert!(site.raw("/public/page", &app, None).await.reached_the_site(), "{proxy:?}");

    // What no site reads safely is refused outright, for the administrator too.
    for path in ["/admin%2Fsettings", "/admin%5Csettings", "/admin%00", "/%252e%252e/admin"] {
        let answer = site.raw(path, &app, Some(&admins_cookies)).await;
        assert!(!answer.reached_the_site(), "{proxy:?}: {path} reached the site");
        assert_eq!(answer.status, 400, "{proxy:?}: {path} is refused as a bad request: {}", answer.text);
    }
}

through_each_proxy! { no_spelling_of_an_admin_path_gets_past_the_gate:
    through_nginx_no_spelling_of_an_admin_path_gets_past_the_gate => Proxy::Nginx,
    through_caddy_no_spelling_of_an_admin_path_gets_past_the_gate => Proxy::Caddy,
    through_traefik_no_spelling_of_an_admin_path_gets_past_the_gate => Proxy::Traefik,
}

both_backends! {
    async fn a_check_whose_address_and_routed_site_disagree_is_refused(app: TestApp) {
        let ask = |original: &'static str, routed: Option<&'static str>| {
            let mut request = app.client.get(app.url("/auth/verify")).header("X-Original-URL", original);
            if let Some(routed) = routed {
                request = request.header("X-Forwarded-Host", routed);
            }
            request.header("Accept", "text/html").send()
        };
        let agreed = ask("https://wiki.example.com/page", Some("wiki.example.com")).await.unwrap();
        assert_eq!(agreed.status(), 302, "agreeing: sent to sign in");
        let wildcard = ask("https://wiki.example.com/page", Some("*.example.com")).await.unwrap();
        assert_eq!(wildcard.status(), 302, "nginx's wildcard server_name covers the host");

        let disagree = ask("https://status.example.com/page", Some("vault.example.com")).await.unwrap();
        assert_eq!(disagree.status(), 400);
        let page = disagree.text().await.unwrap();
        assert!(page.contains("not the site the proxy routed the request to"), "{page}");

        let old_config = ask("https://wiki.example.com/page", None).await.unwrap();
        assert_eq!(old_config.status(), 400, "an nginx configuration without the routed host is refused");
        assert!(old_config.text().await.unwrap().contains("X-Forwarded-Host $server_name"));

        let for_nginx = app
            .client
            .get(app.url("/auth/verify?answer=401"))
            .header("X-Original-URL", "https://status.example.com/admin%2Fx")
            .header("X-Forwarded-Host", "status.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(for_nginx.status(), 403, "under answer=401 a refusal nginx can pass on");
    }
}

/// An administrator under the default second-factor policy (`admins`), who has not set one up,
/// and a user who must first replace a one-time password: through every proxy the guarded site
/// sends them to the page where they do that — nginx too, which passes on only 2xx, 401 and
/// 403 (a 302 from the check was a 500 for the visitor).
async fn who_must_first_finish_their_account_is_sent_to_do_so(proxy: Proxy) {
    let site = GuardedSite::start(proxy, |settings| {
        settings.mfa_required = portcullis::config::MfaPolicy::default();
    })
    .await;
    let admin = site.app.create_user("ada", Role::Admin).await;
    let user = site.app.create_user("una", Role::User).await;
    let user_id = user.id;
    site.app
        .with_conn(move |conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::users;
            diesel::update(users::table.find(user_id)).set(users::must_change_password.eq(true)).execute(conn)
        })
        .await
        .unwrap();
    let app = site.authority(APP_HOST);
    for (who, page) in [(&admin, "/account/security"), (&user, "/password/change")] {
        let cookies = site.cookies_for_sites(who).await;
        let answer = site.raw("/docs", &app, Some(&cookies)).await;
        assert_eq!(answer.status, 302, "{proxy:?}: {} is redirected: {}", who.username, answer.text);
        let location = answer
            .text
            .lines()
            .find_map(|line| line.strip_prefix("Location: ").or_else(|| line.strip_prefix("location: ")))
            .unwrap_or_default()
            .trim()
            .to_owned();
        assert_eq!(location, site.auth_url(page), "{proxy:?}: {} goes to {page}", who.username);
        assert!(!answer.reached_the_site());
    }
}

through_each_proxy! { who_must_first_finish_their_account_is_sent_to_do_so:
    through_nginx_an_admin_under_the_default_policy_is_sent_to_set_up_a_second_factor => Proxy::Nginx,
    through_caddy_an_admin_under_the_default_policy_is_sent_to_set_up_a_second_factor => Proxy::Caddy,
    through_traefik_an_admin_under_the_default_policy_is_sent_to_set_up_a_second_factor => Proxy::Traefik,
}

/// What the guarded sites receive is good only for the gate: replayed against Portcullis it
/// opens no page and no API, not even an administrator's; our own session stays in a
/// host-only cookie no other site sees; and a second gate cookie planted by a sibling site is
/// never believed.
async fn what_guarded_sites_receive_opens_nothing_on_portcullis(proxy: Proxy) {
    let site = GuardedSite::start(proxy, |_| {}).await;
    let admin = site.app.create_user("ada", Role::Admin).await;
    let cookies = site.cookies_for_sites(&admin).await;
    let answer = site.raw("/wiki", &site.authority(APP_HOST), Some(&cookies)).await;
    let seen = answer.seen().unwrap_or_else(|| panic!("{proxy:?}: the admin reaches the site: {}", answer.text));
    let received = seen["headers"]["cookie"].as_str().unwrap_or_default().to_owned();
    let gate_token = received
        .split("; ")
        .find_map(|pair| pair.strip_prefix("portcullis-gate="))
        .unwrap_or_else(|| panic!("{proxy:?}: the site receives the gate cookie: {received}"))
        .to_owned();
    assert!(
        !received.split("; ").any(|pair| pair.starts_with("portcullis=") || pair.starts_with("portcullis-refresh=")),
        "{proxy:?}: our own session cookies are host-only: {received}"
    );

    // Replayed by the site (or whoever stole it there) against Portcullis itself.
    let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = replay
        .get(site.app.url("/admin/users"))
        .header("Cookie", format!("portcullis={gate_token}"))
        .send()
        .await
        .unwrap();
    assert!(page.status().is_redirection(), "{proxy:?}: the admin pages send the replayer to sign in");
    assert!(page.headers()["location"].to_str().unwrap().starts_with("/login"), "{proxy:?}");
    for path in ["/api/me", &format!("/api/users/{}", admin.id)] {
        let refused = replay.get(site.app.url(path)).bearer_auth(&gate_token).send().await.unwrap();
        assert_eq!(refused.status(), 401, "{proxy:?}: GET {path} with the gate's token");
    }
    let create = replay
        .post(site.app.url("/admin/users/new"))
        .header("Cookie", format!("portcullis={gate_token}"))
        .form(&[("username", "mallory"), ("email", "m@example.com"), ("role", "admin")])
        .send()
        .await
        .unwrap();
    assert!(!create.status().is_success(), "{proxy:?}: no admin is created with it");
    assert!(site.app.with_conn(|conn| portcullis::db::users::find_by_login(conn, "mallory")).await.unwrap().is_none());

    // A sibling site plants a gate cookie of its own (here: a second valid one, another user's).
    let other = site.app.create_user("otto", Role::User).await;
    let planted = site.cookies_for_sites(&other).await;
    let planted_token = planted.split("; ").find_map(|pair| pair.strip_prefix("portcullis-gate=")).unwrap();
    let both = format!("portcullis-gate={planted_token}; {cookies}");
    let tossed = site.raw("/wiki", &site.authority(APP_HOST), Some(&both)).await;
    assert!(!tossed.reached_the_site(), "{proxy:?}: two gate cookies are refused, not guessed between");
    assert_eq!(tossed.status, 400, "{proxy:?}: {}", tossed.text);
}

through_each_proxy! { what_guarded_sites_receive_opens_nothing_on_portcullis:
    through_nginx_what_guarded_sites_receive_opens_nothing_on_portcullis => Proxy::Nginx,
    through_caddy_what_guarded_sites_receive_opens_nothing_on_portcullis => Proxy::Caddy,
    through_traefik_what_guarded_sites_receive_opens_nothing_on_portcullis => Proxy::Traefik,
}
