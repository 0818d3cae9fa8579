//! Over HTTPS, as users run it: Portcullis behind nginx terminating TLS (a certificate made for
//! the test hosts), signed into with curl. Every cookie is `Secure` and `HttpOnly`; ours are
//! `__Host-` (no `Domain`, `Path=/`: no sibling site can plant or read them); the one the
//! guarded sites receive is `__Secure-portcullis-gate`, for the cookie domain.
use std::process::Command;

use portcullis::domain::Role;

use crate::helpers::*;
use crate::proxies::{APP_HOST, AUTH_HOST, GuardedSite, Proxy};

struct Curl {
    port: u16,
    jar: std::path::PathBuf,
}

impl Curl {
    /// `curl` against our test hosts on the proxy's port: the test certificate accepted,
    /// cookies kept in a jar, headers and body returned.
    fn run(&self, url: &str, form: &[(&str, &str)]) -> (Vec<String>, String) {
        let mut command = Command::new("curl");
        command.args(["-sS", "-k", "--max-time", "10", "-D", "-", "-H", "Accept: text/html"]);
        for host in [AUTH_HOST, APP_HOST] {
            command.args(["--resolve", &format!("{host}:{}:127.0.0.1", self.port)]);
        }
        command.arg("-c").arg(&self.jar).arg("-b").arg(&self.jar);
        for (name, value) in form {
            command.args(["--data-urlencode", &format!("{name}={value}")]);
        }
        let output = command.arg(url).output().expect("curl runs");
        assert!(output.status.success(), "curl {url}: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (head.lines().map(str::to_owned).collect(), body.to_owned())
    }
}

fn set_cookies(head: &[String]) -> Vec<String> {
    head.iter()
        .filter_map(|line| line.strip_prefix("set-cookie: ").or_else(|| line.strip_prefix("Set-Cookie: ")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_every_cookie_is_secure_and_ours_cannot_be_planted_by_a_sibling_site() {
    if !Proxy::Nginx.available() {
        return;
    }
    let site = GuardedSite::start_tls(|_| {}).await;
    let user = site.app.create_user("ines", Role::User).await;
    let dir = tempfile::tempdir().unwrap();
    let curl = Curl { port: site.port, jar: dir.path().join("jar") };
    let origin = format!("https://{AUTH_HOST}:{}", site.port);

    let (head, page) = curl.run(&format!("{origin}/login"), &[]);
    let mut cookies = set_cookies(&head);
    let csrf = hidden_field(&page, "csrf_token").unwrap_or_else(|| panic!("the login form over https: {head:?}"));
    let (head, _) = curl.run(
        &format!("{origin}/login"),
        &[("username", &user.username), ("password", &user.password), ("csrf_token", &csrf)],
    );
    assert!(head[0].contains(" 303"), "signed in: {head:?}");
    cookies.extend(set_cookies(&head));

    let named = |name: &str| {
        cookies
            .iter()
            .rev()
            .find(|cookie| cookie.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} was set: {cookies:#?}"))
            .clone()
    };
    for cookie in &cookies {
        let name = cookie.split('=').next().unwrap();
        assert!(cookie.contains("; Secure"), "{cookie}");
        assert!(cookie.contains("; HttpOnly"), "{cookie}");
        assert!(cookie.contains("; SameSite="), "{cookie}");
        assert!(name.starts_with("__Host-") || name.starts_with("__Secure-"), "{name}: every name carries a prefix");
        if name.starts_with("__Host-") {
            assert!(cookie.contains("; Path=/") && !cookie.contains("Domain="), "__Host- rules: {cookie}");
        }
    }
    for ours in
        ["__Host-portcullis", "__Host-portcullis-refresh", "__Host-portcullis-login", "__Host-portcullis-device"]
    {
        assert!(!named(ours).contains("Domain="), "{ours} is host-only");
    }
    assert!(named("__Host-portcullis-refresh").contains("SameSite=Strict"));
    let gate = named("__Secure-portcullis-gate");
    assert!(gate.contains("Domain=portcullis.test"), "the guarded sites' cookie: {gate}");

    // Through the guarded site over https: in, with the gate cookie only.
    let (head, body) = curl.run(&format!("https://{APP_HOST}:{}/docs", site.port), &[]);
    assert!(head[0].contains(" 200"), "the guarded site over https: {head:?}");
    let seen = unescape(body.split("<pre id=seen>").nth(1).unwrap().split("</pre>").next().unwrap());
    assert!(seen.contains("__Secure-portcullis-gate=") && !seen.contains("__Host-"), "{seen}");
}
