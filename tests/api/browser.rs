//! In a real browser (headless Chromium): the journeys people take, with screenshots of each
//! page saved under `target/screenshots/` (or `PORTCULLIS_SCREENSHOTS_DIR`).
use portcullis::domain::Role;

use crate::helpers::*;
use crate::webdriver::Driver;

const NEW_PASSWORD: &str = "lantern orchard quietly hums";

pub(crate) async fn sign_in(browser: &crate::webdriver::Browser, username: &str, password: &str) {
    browser.type_into("#username", username).await;
    browser.type_into("#password", password).await;
    browser.click_and_wait(r#"form[action="/login"] button[type="submit"]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_a_user_who_signs_in_chooses_a_password_and_is_signed_out_from_elsewhere() {
    let Some(driver) = Driver::start().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.create_user("admin", Role::Admin).await;
    let url = |path: &str| format!("{}{path}", app.address);

    // An anonymous visit to a private page lands on the login form, and returns there after it.
    let first = driver.browser().await;
    first.go(&url("/admin/users/new")).await;
    assert_eq!(first.path().await, "/login?next=%2Fadmin%2Fusers%2Fnew");
    first.screenshot("01-login").await;
    sign_in(&first, &admin.username, &admin.password).await;
    assert_eq!(first.path().await, "/admin/users/new");

    // The session lives only in HttpOnly cookies: nothing for a script to read or steal.
    let cookies = first.script("return document.cookie").await;
    assert!(!cookies.as_str().unwrap().contains("portcullis"), "scripts can read {cookies}");
    let storage = first.script("return localStorage.length + sessionStorage.length").await;
    assert_eq!(storage, 0);

    // The admin adds a user with a one-time password.
    first.type_into("#username", "newbie").await;
    first.type_into("#email", "newbie@example.com").await;
    first.type_into("#display_name", "New Bie").await;
    first.click("#password_mode-generate").await;
    first.screenshot("02-admin-add-user").await;
    first.click_and_wait(r#"form[action="/admin/users/new"] button[type="submit"]"#).await;
    let one_time_password = first.text_of(".secret code").await;
    assert_eq!(one_time_password.len(), 19, "{one_time_password}");
    first.screenshot("03-one-time-password").await;
    first.go(&url("/admin/users")).await;
    first.screenshot("04-admin-users").await;
    // On a phone's width the list still fits: nothing to scroll sideways.
    first.resize(390, 844).await;
    assert!(!first.scrolls_sideways().await, "the user list is wider than a phone");
    first.screenshot("04-admin-users-phone").await;
    first.resize(1280, 1000).await;

    // The admin makes a group, finds the new user by part of their name and adds them.
    first.click_and_wait(r#"a[href="/admin/groups"]"#).await;
    first.click_and_wait(r#"a[href="/admin/groups/new"]"#).await;
    first.type_into("#name", "wiki-editors").await;
    first.type_into("#display_name", "Wiki editors").await;
    first.type_into("#description", "May edit the team wiki").await;
    first.click_and_wait(r#"form[action="/admin/groups/new"] button[type="submit"]"#).await;
    let group_page = first.path().await;
    assert!(group_page.starts_with("/admin/groups/"), "{group_page}");
    first.type_into("#find", "newb").await;
    first.click_and_wait(r#"form[aria-label="Find people to add"] button[type="submit"]"#).await;
    first.click(r#"input[id^="found-"]"#).await;
    first.click_and_wait(&format!(r#"form[action="{group_page}/members/add"] button[type="submit"]"#)).await;
    assert!(first.source().await.contains("1 person added."));
    first.screenshot("24-admin-group").await;
    first.resize(390, 844).await;
    assert!(!first.scrolls_sideways().await, "a group's page is wider than a phone");
    first.resize(1280, 1000).await;
    first.go(&url("/admin/groups")).await;
    first.screenshot("25-admin-groups").await;
    first.click_and_wait("form.site-nav__logout button").await;
    assert!(first.path().await.starts_with("/login"));

    // The new user signs in with it and must choose their own password first.
    sign_in(&first, "newbie", &one_time_password).await;
    assert_eq!(first.path().await, "/password/change");
    first.screenshot("05-choose-password").await;
    first.type_into("#new_password", NEW_PASSWORD).await;
    first.type_into("#confirm_password", NEW_PASSWORD).await;
    first.click_and_wait(r#"form[action="/password/change"] button[type="submit"]"#).await;
    assert_eq!(first.path().await, "/dashboard");
    let dashboard = first.source().await;
    assert!(dashboard.contains("New Bie"));
    assert!(dashboard.contains("Your new password is set"), "the confirmation shows where the user lands");
    first.screenshot("06-dashboard").await;
    first.resize(390, 844).await;
    assert!(!first.scrolls_sideways().await, "the dashboard is wider than a phone");
    first.screenshot("06-dashboard-phone").await;
    first.resize(1280, 1000).await;

    // Signed in on a second browser too; the first signs it out from the sessions page.
    let second = driver.browser().await;
    second.go(&url("/login")).await;
    sign_in(&second, "newbie", NEW_PASSWORD).await;
    assert_eq!(second.path().await, "/dashboard");
    first.go(&url("/account/sessions")).await;
    assert_eq!(first.source().await.matches("This device").count(), 1);
    first.screenshot("07-sessions").await;
    first.click_and_wait(r#"form[action="/account/sessions/revoke-others"] button"#).await;
    assert_eq!(first.path().await, "/account/sessions");

    second.click_and_wait(r#"a[href="/account"]"#).await;
    assert_eq!(second.path().await, "/login?next=%2Faccount", "the signed-out browser is sent to login");
    assert_eq!(first.path().await, "/account/sessions");
    first.go(&url("/account")).await;
    assert_eq!(first.path().await, "/account", "the first browser is still signed in");
    first.screenshot("08-account").await;

    first.quit().await;
    second.quit().await;
    app.server.stop(true).await;
}

/// The code an authenticator app shows for `step` (30-second steps since 1970).
pub(crate) fn authenticator_code(key: &str, step: u64) -> String {
    let secret =
        base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &key.replace(' ', "")).expect("base32 key");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret).generate(step * 30)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_admin_sets_up_an_authenticator_app_and_signs_in_with_its_code() {
    let Some(driver) = Driver::start().await else { return };
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.mfa_required = portcullis::config::MfaPolicy::Admins;
    })
    .await;
    let admin = app.create_user("ops", Role::Admin).await;
    let url = |path: &str| format!("{}{path}", app.address);
    let browser = driver.browser().await;

    // The policy requires a second factor of admins: after the password, only its setup opens.
    browser.go(&url("/admin")).await;
    sign_in(&browser, &admin.username, &admin.password).await;
    assert_eq!(browser.path().await, "/account/security");
    assert!(browser.source().await.contains("Set up two-step sign-in to continue"));
    browser.screenshot("09-security-setup-required").await;
    browser.click_and_wait(r#"form[action="/account/security/authenticator"] button"#).await;
    assert_eq!(browser.path().await, "/account/security/authenticator");
    assert!(browser.source().await.contains("<svg class=\"qr\""));
    browser.screenshot("10-authenticator-setup").await;
    browser.resize(390, 844).await;
    assert!(!browser.scrolls_sideways().await, "the setup page is wider than a phone");
    browser.screenshot("10-authenticator-setup-phone").await;
    browser.resize(1280, 1000).await;

    // The person types the key into their app (here: computes its code) and confirms.
    let key = browser.text_of("#totp-key").await;
    let step = u64::try_from(chrono::Utc::now().timestamp()).unwrap() / 30;
    browser.type_into("#code", &authenticator_code(&key, step)).await;
    browser.click_and_wait(r#"form[action="/account/security/authenticator/confirm"] button"#).await;
    assert!(browser.source().await.contains("Two-step sign-in is on"));
    let codes = browser.script("return document.querySelectorAll('#recovery-codes code').length").await;
    assert_eq!(codes, 10);
    browser.screenshot("11-recovery-codes").await;
    browser.go(&url("/admin")).await;
    assert_eq!(browser.path().await, "/admin", "set up: the admin pages open");

    // Signing in again takes the app's next code after the password.
    browser.click_and_wait("form.site-nav__logout button").await;
    browser.go(&url("/login?next=%2Fadmin%2Fusers")).await;
    sign_in(&browser, &admin.username, &admin.password).await;
    assert_eq!(browser.path().await, "/login/second-step");
    browser.screenshot("12-second-step").await;
    browser.type_into("#code", &authenticator_code(&key, step + 1)).await;
    browser.click_and_wait(r#"form[action="/login/second-step"] button[type="submit"]"#).await;
    assert_eq!(browser.path().await, "/admin/users", "`next` survives both steps");
    browser.go(&url("/account/sessions")).await;
    assert!(browser.source().await.contains("password and one-time code"));

    browser.quit().await;
    app.server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_adds_a_passkey_and_signs_in_with_it_with_and_without_a_password() {
    let Some(driver) = Driver::start().await else { return };
    // WebAuthn needs a domain name: the server is reached as localhost, on a port chosen first.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let origin = format!("http://localhost:{port}");
    let public_url = origin.clone();
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.bind = format!("127.0.0.1:{port}").parse().unwrap();
        settings.public_url = portcullis::config::PublicUrl::parse(&public_url).unwrap();
    })
    .await;
    let user = app.create_user("pat", Role::User).await;
    let url = |path: &str| format!("{origin}{path}");
    let browser = driver.browser().await;
    let authenticator = browser.add_virtual_authenticator().await;
    // The pages with passkeys on (they need a domain) get their accessibility check here.
    let mut axe = crate::accessibility::Axe::load();

    browser.go(&url("/login")).await;
    sign_in(&browser, &user.username, &user.password).await;
    assert_eq!(browser.path().await, "/dashboard");
    browser.go(&url("/account/security")).await;
    browser.type_into("#passkey-name", "Laptop").await;
    browser.click(r#"#add-passkey button[type="submit"]"#).await;
    // The first second factor comes with recovery codes, shown once on the same page.
    let started = std::time::Instant::now();
    while browser.script("return document.querySelectorAll('#new-recovery-codes code').length").await != 10 {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the passkey was not added");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser.screenshot("13-passkey-recovery-codes").await;
    browser.click_and_wait("#new-recovery-codes a.button:not([download])").await;
    assert!(browser.source().await.contains("<strong>Laptop</strong>"));
    assert!(browser.source().await.contains("10 of 10 recovery codes left"));
    assert_eq!(browser.virtual_credentials(&authenticator).await.len(), 1);
    browser.screenshot("13-passkeys").await;
    if let Some(axe) = axe.as_mut() {
        axe.check(&browser, "security page with a passkey").await;
    }
    browser.resize(390, 844).await;
    assert!(!browser.scrolls_sideways().await, "the Security page is wider than a phone");
    browser.resize(1280, 1000).await;

    // Signed out, the passkey alone signs in: the login page asks the browser for a passkey
    // quietly (autofill); the virtual device, like a person picking it, answers at once.
    let started = std::time::Instant::now();
    browser.click("form.site-nav__logout button").await;
    browser.wait_for_path("/dashboard").await;
    eprintln!("passkey sign-in in Chromium, sign-out click to signed-in dashboard: {:?}", started.elapsed());
    browser.go(&url("/account/sessions")).await;
    assert!(browser.source().await.contains("<td data-label=\"Signed in with\">passkey</td>"));

    // Away from the device, the login page offers the password and the passkey button.
    let credentials = browser.virtual_credentials(&authenticator).await;
    browser.remove_virtual_authenticator(&authenticator).await;
    browser.click_and_wait("form.site-nav__logout button").await;
    assert!(browser.path().await.starts_with("/login"));
    assert!(browser.script("return !document.querySelector('[data-passkey-sign-in]').hidden").await == true);
    browser.screenshot("14-login-with-passkey").await;
    if let Some(axe) = axe.as_mut() {
        axe.check(&browser, "sign-in with the passkey button").await;
    }

    // With a passkey, the password is followed by a second step the passkey completes.
    sign_in(&browser, &user.username, &user.password).await;
    assert_eq!(browser.path().await, "/login/second-step");
    browser.screenshot("15-second-step-passkey").await;
    if let Some(axe) = axe.as_mut() {
        axe.check(&browser, "second step by passkey").await;
        axe.assert_clean();
    }
    browser.restore_virtual_authenticator(&credentials).await;
    browser.click("[data-passkey-second-step] button").await;
    browser.wait_for_path("/dashboard").await;
    browser.go(&url("/account/sessions")).await;
    assert!(browser.source().await.contains("password and passkey"));

    browser.quit().await;
    app.server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_forgot_their_password_resets_it_from_the_mailed_link() {
    let Some(driver) = Driver::start().await else { return };
    if !crate::smtp::SmtpSink::available() {
        return;
    }
    let sink = crate::smtp::SmtpSink::start();
    let app = spawn_app_with(Backend::Sqlite, |settings| sink.configure(settings)).await;
    let ann = app.create_user("ann", Role::User).await;
    let url = |path: &str| format!("{}{path}", app.address);

    let browser = driver.browser().await;
    browser.go(&url("/login")).await;
    browser.click_and_wait(r#"a[href="/login/forgot"]"#).await;
    assert_eq!(browser.path().await, "/login/forgot");
    browser.type_into("#email", &ann.email).await;
    browser.screenshot("16-forgot-password").await;
    browser.click_and_wait(r#"form[action="/login/forgot"] button[type="submit"]"#).await;
    assert!(browser.text_of("h1").await.contains("Check your inbox"));

    // The link from the real message, opened in the same browser.
    let mail = sink.next_to(&ann.email, 0).await;
    browser.go(&url(&mail.link())).await;
    browser.screenshot("17-choose-new-password").await;
    browser.type_into("#new_password", NEW_PASSWORD).await;
    browser.type_into("#confirm_password", NEW_PASSWORD).await;
    browser.click_and_wait(r#"form[action="/password/reset"] button[type="submit"]"#).await;
    assert!(browser.path().await.starts_with("/login"));
    assert!(browser.text_of(".flash").await.contains("Your password is changed"));
    sign_in(&browser, "ann", NEW_PASSWORD).await;
    assert_eq!(browser.path().await, "/dashboard");

    // The link worked once: now it says so.
    browser.go(&url(&mail.link())).await;
    assert!(browser.text_of("h1").await.contains("This link does not work"));
    browser.screenshot("18-link-used").await;
    assert_eq!(sink.next_to(&ann.email, 1).await.subject, "Your password was changed");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_finds_people_by_part_of_a_name_acts_on_several_exports_them_and_reads_times_in_their_zone() {
    let Some(driver) = Driver::start().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.create_user("root", Role::Admin).await;
    app.create_users_fast("member", 40).await;
    // People with real names: the list finds a surname inside a display name, accents or not.
    for (username, name) in [("mgarcia", "María García"), ("jgarcia", "José García Pérez"), ("lfang", "Li Fang")] {
        let user = app.create_user(username, Role::User).await;
        let name = portcullis::domain::DisplayName::parse(name).unwrap();
        app.with_conn(move |conn| {
            let stored = portcullis::db::users::find_by_id(conn, user.id).unwrap().unwrap();
            let changes = portcullis::db::users::ProfileChanges { display_name: Some(&name), ..Default::default() };
            portcullis::db::users::update_profile(conn, &stored, &changes).unwrap();
        })
        .await;
    }
    let url = |path: &str| format!("{}{path}", app.address);
    let browser = driver.browser().await;
    browser.go(&url("/login")).await;
    sign_in(&browser, &admin.username, &admin.password).await;

    // The admin reads times in their own zone: chosen on the account page.
    browser.go(&url("/account")).await;
    browser.script("document.querySelector('#time_zone').value = 'Asia/Tokyo'; return null").await;
    browser.click_and_wait(r#"form[action="/account"] button[type="submit"]"#).await;
    assert!(browser.text_of(".flash").await.contains("Your details were saved"));
    browser.screenshot("19-account-time-zone").await;

    // Searching a surname without its accent finds both Garcías, and says how many.
    browser.go(&url("/admin/users")).await;
    browser.type_into("#q", "garcia").await;
    browser.click_and_wait(r#"form[role="search"] button[type="submit"]"#).await;
    assert_eq!(browser.text_of(".result-count").await, "2 users found");
    let rows = browser.script("return [...document.querySelectorAll('tbody tr td[data-label=\"Display name\"]')].map(td => td.textContent)").await;
    assert_eq!(rows, serde_json::json!(["José García Pérez", "María García"]));
    assert!(browser.text_of(".time-zone-note").await.contains("Times are in Asia/Tokyo"));
    let exact = browser.script("return document.querySelector('td[data-label=\"Created\"] time').title").await;
    assert!(exact.as_str().unwrap().ends_with(" JST"), "exact times are in the admin's zone: {exact}");
    browser.screenshot("20-admin-search").await;

    // The list as CSV, fetched as the browser would download it (same cookies, same filters).
    let csv = browser
        .script_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(document.querySelector('a[href^=\"/admin/users.csv\"]').href).then(r => r.text()).then(done)",
            serde_json::json!([]),
        )
        .await;
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("username,email,display_name,role"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "the header and the two users found: {csv}");
    assert!(csv.contains("mgarcia,mgarcia@example.com,María García,user"));

    // Both ticked, disabled after a page that lists them.
    browser.click("input[name^='select-']:not(:checked)").await;
    browser.click("input[name^='select-']:not(:checked)").await;
    browser.script("document.querySelector('#bulk-action').value = 'disable'; return null").await;
    browser.click_and_wait(r#"form[action="/admin/users/bulk"] button[type="submit"]"#).await;
    assert_eq!(browser.text_of("h1").await, "Disable 2 users?");
    browser.screenshot("21-bulk-confirm").await;
    browser.click_and_wait(r#"form[action="/admin/users/bulk/apply"] button[type="submit"]"#).await;
    assert_eq!(browser.path().await, "/admin/users?q=garcia&sort=username", "back on the same list");
    assert_eq!(browser.text_of(".flash").await, "Disabled: jgarcia, mgarcia.");
    let statuses = browser
        .script("return [...document.querySelectorAll('td[data-label=\"Status\"]')].map(td => td.textContent.trim())")
        .await;
    assert_eq!(statuses, serde_json::json!(["Disabled", "Disabled"]));
    browser.screenshot("22-bulk-done").await;
    browser.prefer_dark(true).await;
    browser.screenshot("23-admin-users-dark").await;
    browser.prefer_dark(false).await;
    browser.quit().await;
    app.server.stop(true).await;
}
