//! Every page, in Chromium, checked by axe-core (WCAG 2.0–2.2 A and AA, and axe's best
//! practices) in light and dark colours and at a phone's width: any violation fails.
//! axe-core comes from the npm registry (`tests/axe`, `npm ci` in `.ci/run`).
use std::collections::BTreeSet;

use portcullis::domain::Role;
use serde_json::{Value, json};

use crate::browser::{authenticator_code, sign_in};
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::webdriver::{Browser, Driver};

const AXE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/axe/node_modules/axe-core/axe.min.js");

/// axe-core's source, the pages it has checked and what it found.
pub(crate) struct Axe {
    source: String,
    visited: BTreeSet<String>,
    findings: Vec<String>,
}

impl Axe {
    /// `None` (loudly) outside CI when `npm ci --prefix tests/axe` has not run; in CI its absence fails.
    pub(crate) fn load() -> Option<Axe> {
        match std::fs::read_to_string(AXE) {
            Ok(source) => Some(Axe { source, visited: BTreeSet::new(), findings: Vec::new() }),
            Err(_) => {
                assert!(std::env::var("CI").is_err(), "axe-core must be installed in CI (npm ci --prefix tests/axe)");
                announce_skip("the accessibility checks: run `npm ci --prefix tests/axe` to install axe-core");
                None
            }
        }
    }

    /// Checks the page the browser shows: light and dark at 1280 px, light at a phone's 390 px.
    pub(crate) async fn check(&mut self, browser: &Browser, what: &str) {
        let path = browser.path().await;
        self.visited.insert(path.split('?').next().unwrap_or_default().to_owned());
        for (label, dark, width) in [("light", false, 1280), ("dark", true, 1280), ("phone", false, 390)] {
            browser.prefer_dark(dark).await;
            browser.resize(width, 1000).await;
            let found = self.run(browser).await;
            for violation in found.as_array().expect("axe's violations") {
                let nodes: Vec<String> = violation["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .take(3)
                    .map(|node| {
                        format!(
                            "{} ({})",
                            node["target"],
                            node["failureSummary"].as_str().unwrap_or_default().replace('\n', " ")
                        )
                    })
                    .collect();
                self.findings.push(format!(
                    "{what} [{path}, {label}]: {} ({}): {}\n    {}",
                    violation["id"].as_str().unwrap_or_default(),
                    violation["impact"].as_str().unwrap_or_default(),
                    violation["help"].as_str().unwrap_or_default(),
                    nodes.join("\n    ")
                ));
            }
        }
        browser.prefer_dark(false).await;
        browser.resize(1280, 1000).await;
    }

    async fn run(&self, browser: &Browser) -> Value {
        let script = r#"
            const done = arguments[arguments.length - 1];
            if (!window.axe) { eval(arguments[0]); }
            axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } })
              .then(result => done(result.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.map(n => ({ target: n.target.join(' '), failureSummary: n.failureSummary })) }))))
              .catch(error => done([{ id: 'axe-error', impact: 'critical', help: String(error), nodes: [] }]));
        "#;
        browser.script_async(script, json!([self.source])).await
    }

    pub(crate) fn assert_clean(&self) {
        assert!(
            self.findings.is_empty(),
            "axe-core found {} problems:\n{}",
            self.findings.len(),
            self.findings.join("\n")
        );
    }
}

/// `/admin/users/12/delete` → `/admin/users/{}/delete`, as the route table writes it.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|part| {
            if part.starts_with('{') || (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())) {
                "{}"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_core_in_light_and_dark_colours_and_on_a_phone() {
    let Some(driver) = Driver::start().await else { return };
    let Some(mut axe) = Axe::load() else { return };
    if !SmtpSink::available() {
        return;
    }
    let sink = SmtpSink::start();
    let app = spawn_app_with(Backend::Sqlite, |settings| sink.configure(settings)).await;
    let admin = app.create_user("root", Role::Admin).await;
    let member = app.create_user("mia", Role::User).await;
    app.create_users_fast("member", 12).await;
    let url = |path: &str| format!("{}{path}", app.address);
    let b = driver.browser().await;

    // Signed out.
    b.go(&url("/login")).await;
    axe.check(&b, "sign-in").await;
    sign_in(&b, "root", "not the password").await;
    axe.check(&b, "sign-in refused").await;
    b.go(&url("/login/forgot")).await;
    axe.check(&b, "forgot password").await;
    b.go(&url("/password/reset?token=made-up")).await;
    axe.check(&b, "a link that does not work").await;
    b.go(&url("/nowhere")).await;
    axe.check(&b, "not found, signed out").await;

    // An administrator's own pages.
    b.go(&url("/login")).await;
    sign_in(&b, &admin.username, &admin.password).await;
    axe.check(&b, "dashboard").await;
    for path in ["/account", "/account/password", "/account/sessions", "/account/security", "/account/security/confirm"]
    {
        b.go(&url(path)).await;
        axe.check(&b, path).await;
    }
    b.click_and_wait(r#"form[action="/account/security/confirm"] button[type="submit"]"#).await;
    axe.check(&b, "confirm it is you, with an error").await;
    b.go(&url("/account/password")).await;
    b.click_and_wait(r#"form[action="/account/password"] button[type="submit"]"#).await;
    axe.check(&b, "password errors").await;
    b.go(&url("/account")).await;
    b.type_into("#display_name", " ").await;
    b.click_and_wait(r#"form[action="/account"] button[type="submit"]"#).await;
    axe.check(&b, "profile errors").await;
    b.go(&url("/account/security")).await;
    b.click_and_wait(r#"form[action="/account/security/authenticator"] button"#).await;
    axe.check(&b, "authenticator setup").await;
    b.type_into("#code", "000000").await;
    b.click_and_wait(r#"form[action="/account/security/authenticator/confirm"] button"#).await;
    axe.check(&b, "authenticator code refused").await;
    let key = b.text_of("#totp-key").await;
    let step = u64::try_from(chrono::Utc::now().timestamp()).unwrap() / 30;
    b.type_into("#code", &authenticator_code(&key, step)).await;
    b.click_and_wait(r#"form[action="/account/security/authenticator/confirm"] button"#).await;
    axe.check(&b, "recovery codes").await;
    let recovery = b.text_of("#recovery-codes li:first-child code").await;

    // The admin pages.
    for path in [
        "/admin",
        "/admin/users",
        "/admin/users?q=member0&sort=-created",
        "/admin/users/new",
        "/admin/audit",
        "/admin/outbox",
    ] {
        b.go(&url(path)).await;
        axe.check(&b, path).await;
    }
    b.go(&url("/admin/audit?from=yesterday")).await;
    axe.check(&b, "audit filter refused").await;
    b.go(&url("/admin/users/new")).await;
    b.click_and_wait(r#"form[action="/admin/users/new"] button[type="submit"]"#).await;
    axe.check(&b, "add a user: errors").await;
    b.type_into("#username", "newbie").await;
    b.type_into("#email", "newbie@example.com").await;
    b.type_into("#display_name", "New Bie").await;
    b.click("#password_mode-generate").await;
    b.click_and_wait(r#"form[action="/admin/users/new"] button[type="submit"]"#).await;
    axe.check(&b, "one-time password").await;
    let one_time = b.text_of(".secret code").await;
    b.go(&url("/admin/users/new")).await;
    b.type_into("#username", "invitee").await;
    b.type_into("#email", "invitee@example.com").await;
    b.type_into("#display_name", "In Vitee").await;
    b.click("#password_mode-invite").await;
    b.click_and_wait(r#"form[action="/admin/users/new"] button[type="submit"]"#).await;
    axe.check(&b, "a user invited").await;
    let user_page = format!("/admin/users/{}", member.id);
    for path in ["", "/reset-password", "/sessions/revoke-all", "/delete", "/reset-mfa"] {
        b.go(&url(&format!("{user_page}{path}"))).await;
        axe.check(&b, &format!("user page{path}")).await;
    }
    b.go(&url(&user_page)).await;
    b.type_into("#email", "not an address").await;
    b.click_and_wait(&format!(r#"form[action="{user_page}"] button[type="submit"]"#)).await;
    axe.check(&b, "user page: errors").await;
    b.go(&url("/admin/users?q=member")).await;
    b.click("input[name^='select-']").await;
    b.click_and_wait(r#"form[action="/admin/users/bulk"] button[type="submit"]"#).await;
    axe.check(&b, "bulk confirmation").await;
    b.go(&url("/admin/users/987654")).await;
    axe.check(&b, "not found, signed in").await;
    b.go(&url("/admin/groups")).await;
    axe.check(&b, "groups, none yet").await;
    b.go(&url("/admin/groups/new")).await;
    axe.check(&b, "add a group").await;
    b.click_and_wait(r#"form[action="/admin/groups/new"] button[type="submit"]"#).await;
    axe.check(&b, "add a group: errors").await;
    b.type_into("#name", "wiki-editors").await;
    b.type_into("#description", "Who may edit the wiki").await;
    b.click_and_wait(r#"form[action="/admin/groups/new"] button[type="submit"]"#).await;
    let group_page = b.path().await;
    axe.check(&b, "a new group's page").await;
    b.type_into("#usernames", &member.username).await;
    b.click_and_wait(&format!(r#"form[action="{group_page}/members/add"] button[type="submit"]"#)).await;
    b.type_into("#manager", &member.username).await;
    b.click_and_wait(&format!(r#"form[action="{group_page}/managers"] button[type="submit"]"#)).await;
    axe.check(&b, "a group with a member and a manager").await;
    b.go(&url(&format!("{group_page}?find=member0"))).await;
    axe.check(&b, "finding people to add").await;
    for path in ["/edit", "/delete"] {
        b.go(&url(&format!("{group_page}{path}"))).await;
        axe.check(&b, &format!("group page{path}")).await;
    }
    b.go(&url("/admin/groups")).await;
    axe.check(&b, "groups").await;
    b.go(&url("/admin/apps")).await;
    axe.check(&b, "apps, none yet").await;
    b.go(&url("/admin/apps/new")).await;
    axe.check(&b, "add an app").await;
    b.click_and_wait(r#"form[action="/admin/apps/new"] button[type="submit"]"#).await;
    axe.check(&b, "add an app: errors").await;
    b.type_into("#name", "Team wiki").await;
    b.type_into("#redirect_uris", &url("/dashboard")).await;
    b.click("#ask_consent").await;
    b.click_and_wait(r#"form[action="/admin/apps/new"] button[type="submit"]"#).await;
    axe.check(&b, "a new app and its secret").await;
    let client_id = b.text_of("#client-id").await;
    let client_secret = b.text_of("#client-secret").await;
    b.click_and_wait("main a.button").await;
    let app_page = b.path().await;
    axe.check(&b, "an app's page").await;
    for path in ["/edit", "/rotate-secret", "/delete"] {
        b.go(&url(&format!("{app_page}{path}"))).await;
        axe.check(&b, &format!("app page{path}")).await;
    }
    b.go(&url("/admin/apps")).await;
    axe.check(&b, "apps").await;
    b.click_and_wait(r#"form[action="/admin/apps/registration-tokens"] button[type="submit"]"#).await;
    axe.check(&b, "a registration token").await;

    // Someone else's first steps, in another browser.
    let other = driver.browser().await;
    let invitation = sink.next_to("invitee@example.com", 0).await;
    other.go(&url(&invitation.link())).await;
    axe.check(&other, "invitation: choose a password").await;
    other.go(&url("/login")).await;
    sign_in(&other, "newbie", &one_time).await;
    axe.check(&other, "forced password change").await;
    other.click_and_wait("form.site-nav__logout button").await;
    sign_in(&other, &member.username, &member.password).await;
    other.go(&url("/admin")).await;
    axe.check(&other, "admin area refused").await;
    other.go(&url("/groups")).await;
    axe.check(&other, "the groups a manager manages").await;
    other.go(&url(&group_page.replace("/admin", ""))).await;
    axe.check(&other, "a manager's group page").await;
    let authorize = format!(
        "/oauth2/authorize?{}",
        serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", url("/dashboard").as_str()),
            ("scope", "openid profile email"),
            ("state", "s")
        ])
        .unwrap()
    );
    other.go(&url(&authorize)).await;
    axe.check(&other, "consent to an app").await;
    other.click_and_wait(r#"button[name="decision"][value="allow"]"#).await;
    assert!(other.path().await.starts_with("/dashboard?code="), "back at the app's address with a code");
    other.go(&url("/account/apps")).await;
    axe.check(&other, "connected apps").await;
    // A device asks for a code; the person enters it, wrongly first, then allows the app.
    let device: serde_json::Value = reqwest::Client::new()
        .post(url("/oauth2/device_authorization"))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[("scope", "openid")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    other.go(&url("/device")).await;
    axe.check(&other, "sign in on a device").await;
    other.type_into("#user_code", "BCDF-GHJK").await;
    other.click_and_wait(r#"form[action="/device"] button[type="submit"]"#).await;
    axe.check(&other, "sign in on a device: a wrong code").await;
    other.go(&url(&format!("/device?user_code={}", device["user_code"].as_str().unwrap()))).await;
    axe.check(&other, "allow a device").await;
    other.click_and_wait(r#"button[name="decision"][value="allow"]"#).await;
    axe.check(&other, "a device signed in").await;
    other.go(&url(&format!("/oauth2/logout?client_id={client_id}"))).await;
    axe.check(&other, "an app asks to sign out").await;
    other.go(&url("/oauth2/authorize?client_id=no-such-app")).await;
    axe.check(&other, "a sign-in request that cannot be used").await;
    other.go(&url("/account")).await;
    other.type_into("#email", "mia.new@example.com").await;
    other.click_and_wait(r#"form[action="/account"] button[type="submit"]"#).await;
    let confirmation = sink.next_to("mia.new@example.com", 0).await;
    other.go(&url(&confirmation.link())).await;
    axe.check(&other, "confirm a new address").await;
    other.quit().await;

    // Signing in again: the second step.
    b.go(&url("/account")).await;
    b.click_and_wait("form.site-nav__logout button").await;
    axe.check(&b, "signed out").await;
    sign_in(&b, &admin.username, &admin.password).await;
    assert_eq!(b.path().await, "/login/second-step");
    axe.check(&b, "second step").await;
    b.go(&url("/login/second-step?method=recovery_code")).await;
    axe.check(&b, "second step with a recovery code").await;
    b.type_into("#code", &recovery).await;
    b.click_and_wait(r#"form[action="/login/second-step"] button[type="submit"]"#).await;
    assert_eq!(b.path().await, "/dashboard");
    b.quit().await;

    // Every page of the signed-in areas was among them (a new page cannot be forgotten here).
    let visited: BTreeSet<String> = axe.visited.iter().map(|path| shape(path)).collect();
    let missed: Vec<String> = portcullis::startup::page_routes()
        .into_iter()
        .filter(|route| route.methods.contains(&actix_web::http::Method::GET) && !route.path.ends_with(".csv"))
        .map(|route| shape(&route.path))
        .filter(|path| !visited.contains(path))
        .collect();
    assert!(missed.is_empty(), "pages the accessibility check did not open: {missed:?}");
    axe.assert_clean();
    app.server.stop(true).await;
}
