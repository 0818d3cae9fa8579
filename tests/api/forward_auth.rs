//! Portcullis as the sign-in gate of other sites, through real reverse proxies (nginx and
//! Caddy, see `proxies.rs`): browsers are sent to sign in and come back, the site behind sees
//! who they are (and never a client's own `Remote-*` headers), scripts get 401, rules give 403
//! with a page that says why, and a signed-out or disabled user is refused within 2 s.
use portcullis::domain::Role;
use reqwest::Client;
use serde_json::Value;

use crate::cli::portcullis;
use crate::helpers::*;
use crate::proxies::{GuardedSite, Proxy};

const RULES: &str = r#"
[[rule]]
host = "app.portcullis.test"
path = "/admin"
allow = ["admin"]

[[rule]]
host = "app.portcullis.test"
path = "/public"
allow = "public"
"#;

/// The rules above, as the file `PORTCULLIS_ACCESS_RULES` names.
fn with_rules(settings: &mut portcullis::config::Settings) {
    settings.forward_auth.rules_file = Some(crate::proxies::rules_file(RULES));
}

/// What the upstream received, from its page.
async fn seen(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "the upstream answered");
    let page = response.text().await.unwrap();
    let json = page.split("<pre id=seen>").nth(1).and_then(|rest| rest.split("</pre>").next()).unwrap_or(&page);
    serde_json::from_str(&unescape(json)).unwrap_or_else(|_| panic!("not the upstream's answer: {page}"))
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// Signs in on the login page `login_url` leads to, as a person would; returns where it sent us.
async fn sign_in(browser: &Client, login_url: &str, user: &TestUser) -> reqwest::Response {
    let page = browser.get(login_url).send().await.unwrap().text().await.unwrap();
    let csrf = hidden_field(&page, "csrf_token").expect("the login form");
    let next = hidden_field(&page, "next").unwrap_or_default();
    let action = login_url.split("/login").next().unwrap().to_owned() + "/login";
    browser
        .post(action)
        .form(&[
            ("username", user.username.as_str()),
            ("password", user.password.as_str()),
            ("csrf_token", &csrf),
            ("next", &next),
        ])
        .send()
        .await
        .unwrap()
}

async fn a_browser_signs_in_at_the_gate_and_returns_to_the_address_it_asked_for(proxy: Proxy) {
    if !proxy.available() {
        return;
    }
    let site = GuardedSite::start(proxy, with_rules).await;
    let user = site.app.create_user("alice", Role::User).await;
    let browser = site.browser();
    let wanted = site.app_url("/docs/page?id=7");

    let first = browser.get(&wanted).send().await.unwrap();
    assert_eq!(first.status(), 302, "{proxy:?}: an anonymous browser is sent to sign in");
    let login = location(&first);
    let expected = site.auth_url(&format!("/login?{}", serde_urlencoded::to_string([("rd", &wanted)]).unwrap()));
    assert_eq!(login, expected);

    let signed_in = sign_in(&browser, &login, &user).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location(&signed_in), wanted, "back to the original address");
    let cookies: Vec<String> =
        signed_in.headers().get_all("set-cookie").iter().map(|value| value.to_str().unwrap().to_owned()).collect();
    let access = cookies.iter().find(|cookie| cookie.starts_with("portcullis=")).unwrap();
    assert!(!access.contains("Domain=") && access.contains("HttpOnly"), "our own access cookie is host-only: {access}");
    let gate = cookies.iter().find(|cookie| cookie.starts_with("portcullis-gate=")).unwrap();
    assert!(gate.contains("Domain=portcullis.test") && gate.contains("HttpOnly"), "the sites get the gate's: {gate}");
    let refresh = cookies.iter().find(|cookie| cookie.starts_with("portcullis-refresh=")).unwrap();
    assert!(!refresh.contains("Domain="), "the refresh cookie never leaves Portcullis's own host: {refresh}");

    // The site sees who it is, from Portcullis only: the client's own claims never pass.
    let upstream =
        seen(browser.get(&wanted).header("Remote-User", "admin").header("Remote-Role", "admin").send().await.unwrap())
            .await;
    assert_eq!(upstream["path"], "/docs/page?id=7");
    let headers = &upstream["headers"];
    assert_eq!(headers["remote-user"], "alice", "{proxy:?}: {headers}");
    assert_eq!(headers["remote-email"], "alice@example.com");
    assert_eq!(headers["remote-name"], "alice");
    assert_eq!(headers["remote-role"], "user", "{proxy:?}: a forged Remote-Role never reaches the site");

    // A public address needs nobody, and forged headers are dropped there too.
    let anonymous = site.browser();
    let public =
        seen(anonymous.get(site.app_url("/public/status")).header("Remote-User", "admin").send().await.unwrap()).await;
    let nobody = public["headers"].get("remote-user").and_then(Value::as_str).unwrap_or_default();
    assert_eq!(nobody, "", "{proxy:?}: {public}");

    // Rules: a user is refused the admin section, with a page that says why.
    let refused = browser.get(site.app_url("/admin/settings")).send().await.unwrap();
    assert_eq!(refused.status(), 403, "{proxy:?}");
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("You cannot open this page")
            && page.contains("It is for administrators; your account is a user."),
        "{proxy:?}: {page}"
    );
    let admin = site.app.create_user("root", Role::Admin).await;
    let other = site.browser();
    let login = location(&other.get(site.app_url("/admin/settings")).send().await.unwrap());
    sign_in(&other, &login, &admin).await;
    assert_eq!(
        seen(other.get(site.app_url("/admin/settings")).send().await.unwrap()).await["headers"]["remote-role"],
        "admin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_a_browser_signs_in_and_returns_and_the_site_sees_who_it_is() {
    a_browser_signs_in_at_the_gate_and_returns_to_the_address_it_asked_for(Proxy::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_a_browser_signs_in_and_returns_and_the_site_sees_who_it_is() {
    a_browser_signs_in_at_the_gate_and_returns_to_the_address_it_asked_for(Proxy::Caddy).await;
}

async fn scripts_get_401_tokens_work_and_ended_sessions_stop_within_two_seconds(proxy: Proxy) {
    if !proxy.available() {
        return;
    }
    let site = GuardedSite::start(proxy, default_settings).await;
    let user = site.app.create_user("bob", Role::User).await;
    let script = site.script();
    let refused = script.get(site.app_url("/api/data")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "{proxy:?}: no redirect for a script");
    let token = site.app.api_token(&user).await;
    let with_token = seen(script.get(site.app_url("/api/data")).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(with_token["headers"]["remote-user"], "bob");

    // Signed in in a browser, then disabled from the command line: refused within 2 s.
    let browser = site.browser();
    let login = location(&browser.get(site.app_url("/")).send().await.unwrap());
    sign_in(&browser, &login, &user).await;
    assert_eq!(browser.get(site.app_url("/")).send().await.unwrap().status(), 200);
    let output = portcullis(&site.app, &["user", "disable", "bob"], "");
    assert!(output.status.success());
    let took =
        within(REVOCATION_LIMIT, || async { browser.get(site.app_url("/")).send().await.unwrap().status() == 302 })
            .await;
    assert!(took.is_some(), "{proxy:?}: the disabled user still reaches the site");
    assert!(
        within(REVOCATION_LIMIT, || async {
            script.get(site.app_url("/api/data")).bearer_auth(&token).send().await.unwrap().status() == 401
        })
        .await
        .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_scripts_get_401_and_a_disabled_user_is_refused_within_two_seconds() {
    scripts_get_401_tokens_work_and_ended_sessions_stop_within_two_seconds(Proxy::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_scripts_get_401_and_a_disabled_user_is_refused_within_two_seconds() {
    scripts_get_401_tokens_work_and_ended_sessions_stop_within_two_seconds(Proxy::Caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_traefik_a_browser_signs_in_and_returns_and_the_site_sees_who_it_is() {
    a_browser_signs_in_at_the_gate_and_returns_to_the_address_it_asked_for(Proxy::Traefik).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_traefik_scripts_get_401_and_a_disabled_user_is_refused_within_two_seconds() {
    scripts_get_401_tokens_work_and_ended_sessions_stop_within_two_seconds(Proxy::Traefik).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_at_the_gate_signs_out_of_every_guarded_site_and_foreign_return_addresses_are_refused() {
    if !Proxy::Nginx.available() {
        return;
    }
    let site = GuardedSite::start(Proxy::Nginx, default_settings).await;
    let user = site.app.create_user("carol", Role::User).await;
    let browser = site.browser();

    // A return address on another site is not followed.
    let evil = site.auth_url("/login?rd=https%3A%2F%2Fevil.example%2Fsteal");
    let landed = sign_in(&browser, &evil, &user).await;
    assert_eq!(location(&landed), "/dashboard", "a foreign rd leads to the dashboard, not away");
    for foreign in [
        "http://portcullis.test.evil.example/",
        "http://user@app.portcullis.test/",
        "javascript:alert(1)",
        "http://app.portcullis.test:6379/",
    ] {
        let url = site.auth_url(&format!("/login?{}", serde_urlencoded::to_string([("rd", foreign)]).unwrap()));
        let page = browser.get(&url).send().await.unwrap();
        assert_eq!(location(&page), "/dashboard", "{foreign}: a signed-in visitor is not sent there either");
    }
    assert_eq!(browser.get(site.app_url("/")).send().await.unwrap().status(), 200);

    // Signing out at Portcullis ends access to the guarded site too.
    let dashboard = browser.get(site.auth_url("/dashboard")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden_field(&dashboard, "csrf_token").unwrap();
    let out = browser.post(site.auth_url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(out.status(), 303);
    let after = browser.get(site.app_url("/")).send().await.unwrap();
    assert_eq!(after.status(), 302, "the cookie went with the sign-out, and its session is over");
    // The site itself never sees the refresh cookie.
    let fresh = site.browser();
    sign_in(&fresh, &location(&fresh.get(site.app_url("/")).send().await.unwrap()), &user).await;
    let upstream = seen(fresh.get(site.app_url("/")).send().await.unwrap()).await;
    let cookie = upstream["headers"]["cookie"].as_str().unwrap_or_default().to_owned();
    assert!(cookie.contains("portcullis-gate=") && !cookie.contains("portcullis-refresh"), "{cookie}");
    assert!(!cookie.split("; ").any(|pair| pair.starts_with("portcullis=")), "our access cookie stays home: {cookie}");
}

#[test]
fn a_mistake_in_the_rules_file_stops_start_up_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        "[[rule]]\nhost = \"wiki.example.com\"\nallow = [\"admin\"]\n\n[[rule]]\nhots = \"x.example.com\"\n",
    )
    .unwrap();
    let output = crate::cli::portcullis_with_env(
        &[
            ("DATABASE_URL", &format!("sqlite://{}", dir.path().join("db.sqlite").display())),
            ("PORTCULLIS_BIND", "127.0.0.1:0"),
            ("PORTCULLIS_ACCESS_RULES", &file.display().to_string()),
        ],
        &["serve"],
        "",
    );
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(said.contains("rules.toml), line 6: unknown field `hots`"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_a_person_signs_in_through_nginx_and_lands_on_the_guarded_site() {
    let Some(driver) = crate::webdriver::Driver::start().await else { return };
    if !Proxy::Nginx.available() {
        return;
    }
    let site = GuardedSite::start(Proxy::Nginx, with_rules).await;
    let user = site.app.create_user("dana", Role::User).await;
    let browser = driver.browser_with(&["--host-resolver-rules=MAP *.portcullis.test 127.0.0.1"]).await;

    browser.go(&site.app_url("/reports/2026?view=month")).await;
    assert!(browser.path().await.starts_with("/login?rd="), "at the gate: {}", browser.url().await);
    assert!(browser.url().await.starts_with(&site.auth_url("/login")));
    browser.screenshot("24-sign-in-for-another-site").await;
    crate::browser::sign_in(&browser, &user.username, &user.password).await;
    assert_eq!(browser.url().await, site.app_url("/reports/2026?view=month"), "back where the person was going");
    let seen: Value = serde_json::from_str(&browser.text_of("#seen").await).unwrap();
    assert_eq!(seen["headers"]["remote-user"], "dana");
    assert_eq!(seen["headers"]["remote-email"], "dana@example.com");

    // The admin section of that site is not for this user: the page says why.
    browser.go(&site.app_url("/admin")).await;
    assert!(browser.text_of("h1").await.contains("You cannot open this page"));
    assert!(browser.source().await.contains("It is for administrators"));
    browser.screenshot("25-refused-by-the-rules").await;
    if let Some(mut axe) = crate::accessibility::Axe::load() {
        axe.check(&browser, "refused by the access rules, at the other site's address").await;
        axe.assert_clean();
    }
    browser.quit().await;
}

both_backends_with! { hand_the_token_on;
    async fn the_gate_answers_from_the_token_and_says_what_a_proxy_got_wrong(app: TestApp) {
        let user = app.create_user("erin", Role::User).await;
        let token = app.api_token(&user).await;
        let ask = |headers: Vec<(&'static str, String)>, query: &'static str| {
            let mut request = app.client.get(app.url(&format!("/auth/verify{query}")));
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request.send()
        };
        let forwarded = || vec![("X-Forwarded-Host", "wiki.example.com".to_owned()), ("X-Forwarded-Uri", "/page".to_owned())];

        let mut with_token = forwarded();
        with_token.push(("Authorization", format!("Bearer {token}")));
        let allowed = ask(with_token, "").await.unwrap();
        assert_eq!(allowed.status(), 200);
        assert_eq!(allowed.headers()["remote-user"], "erin");
        assert_eq!(allowed.headers()["authorization"], format!("Bearer {token}").as_str(), "handed on for the upstream");

        let mut browser = forwarded();
        browser.push(("Accept", "text/html".to_owned()));
        let redirect = ask(browser.clone(), "").await.unwrap();
        assert_eq!(redirect.status(), 302);
        let login = redirect.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(login, format!("{}/login?rd=https%3A%2F%2Fwiki.example.com%2Fpage", app.issuer));
        let for_nginx = ask(browser, "?answer=401").await.unwrap();
        assert_eq!(for_nginx.status(), 401);
        assert_eq!(for_nginx.headers()["location"].to_str().unwrap(), login);

        let confused = ask(vec![("Authorization", format!("Bearer {token}"))], "").await.unwrap();
        assert_eq!(confused.status(), 400, "no address: the proxy is misconfigured");
        assert!(confused.text().await.unwrap().contains("X-Forwarded-Host"));
        let script = ask(forwarded(), "").await.unwrap();
        assert_eq!(script.status(), 401);
        assert_eq!(script.json::<Value>().await.unwrap()["error"], "unauthorized");
    }
}

fn hand_the_token_on(settings: &mut portcullis::config::Settings) {
    settings.forward_auth.pass_token = true;
}
