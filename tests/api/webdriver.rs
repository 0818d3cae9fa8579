//! A minimal W3C WebDriver client over reqwest, driving Debian's chromium through
//! chromedriver (headless). Enough for the browser tests: navigate, find, type, click, run a
//! script, take screenshots.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The chromedriver process; killed when dropped.
pub(crate) struct Driver {
    process: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    /// Starts chromedriver, or returns `None` (loudly) when it is not installed outside CI.
    /// In CI a missing browser fails the test: these tests may not be skipped there.
    pub(crate) async fn start() -> Option<Driver> {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists());
        let Some(binary) = binary else {
            assert!(
                std::env::var("CI").is_err(),
                "chromedriver must be installed in CI (apt-get install chromium-driver)"
            );
            crate::helpers::announce_skip("the browser tests: install chromium and chromium-driver to run them");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver { process, url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
        let started = Instant::now();
        while driver.http.get(format!("{}/status", driver.url)).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(driver)
    }

    /// A new browser with its own profile: its own cookies and storage.
    pub(crate) async fn browser(&self) -> Browser {
        self.browser_with(&[]).await
    }

    /// A new browser started with `extra` command-line switches (e.g. host-name mappings).
    pub(crate) async fn browser_with(&self, extra: &[&str]) -> Browser {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ];
        args.extend_from_slice(extra);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
        }}});
        let answer = send(self.http.post(format!("{}/session", self.url)).json(&capabilities)).await;
        let session = answer["sessionId"].as_str().expect("a WebDriver session").to_owned();
        Browser { base: format!("{}/session/{session}", self.url), http: self.http.clone() }
    }
}

async fn send(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("WebDriver answers");
    let status = response.status();
    let body: Value = response.json().await.expect("WebDriver JSON");
    assert!(status.is_success(), "WebDriver error {status}: {body}");
    body["value"].clone()
}

pub(crate) struct Browser {
    base: String,
    http: reqwest::Client,
}

impl Browser {
    pub(crate) async fn go(&self, url: &str) {
        send(self.http.post(format!("{}/url", self.base)).json(&json!({"url": url}))).await;
    }

    pub(crate) async fn url(&self) -> String {
        send(self.http.get(format!("{}/url", self.base))).await.as_str().unwrap().to_owned()
    }

    pub(crate) async fn path(&self) -> String {
        let url = self.url().await;
        let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        after_scheme.find('/').map_or("/".to_owned(), |at| after_scheme[at..].to_owned())
    }

    pub(crate) async fn source(&self) -> String {
        send(self.http.get(format!("{}/source", self.base))).await.as_str().unwrap().to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let element = send(
            self.http.post(format!("{}/element", self.base)).json(&json!({"using": "css selector", "value": css})),
        )
        .await;
        element[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("no element {css}: {element}")).to_owned()
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        send(self.http.post(format!("{}/element/{element}/clear", self.base)).json(&json!({}))).await;
        send(self.http.post(format!("{}/element/{element}/value", self.base)).json(&json!({"text": text}))).await;
    }

    pub(crate) async fn click(&self, css: &str) {
        let element = self.find(css).await;
        send(self.http.post(format!("{}/element/{element}/click", self.base)).json(&json!({}))).await;
    }

    /// Clicks something that loads a new page (a link, a form's button) and waits until the new
    /// page has loaded: a click returns before a slow answer (a sign-in hashes) arrives.
    pub(crate) async fn click_and_wait(&self, css: &str) {
        self.script("window.portcullisOldPage = true; return null").await;
        self.click(css).await;
        let started = Instant::now();
        let new_page_loaded = "return window.portcullisOldPage === undefined && document.readyState === 'complete'";
        while self.script(new_page_loaded).await != Value::Bool(true) {
            assert!(started.elapsed() < Duration::from_secs(30), "clicking {css} loaded no new page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn text_of(&self, css: &str) -> String {
        let element = self.find(css).await;
        send(self.http.get(format!("{}/element/{element}/text", self.base))).await.as_str().unwrap().to_owned()
    }

    pub(crate) async fn script(&self, script: &str) -> Value {
        send(self.http.post(format!("{}/execute/sync", self.base)).json(&json!({"script": script, "args": []}))).await
    }

    /// Runs a script that calls back (its last argument) when done, e.g. after a promise.
    pub(crate) async fn script_async(&self, script: &str, args: Value) -> Value {
        send(self.http.post(format!("{}/execute/async", self.base)).json(&json!({"script": script, "args": args})))
            .await
    }

    /// Asks Chromium (through the DevTools protocol) to report the system colours as dark or
    /// light: `prefers-color-scheme` media queries follow.
    pub(crate) async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        let command = json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]}});
        send(self.http.post(format!("{}/goog/cdp/execute", self.base)).json(&command)).await;
    }

    /// Resizes the window, e.g. to a phone's width.
    pub(crate) async fn resize(&self, width: u32, height: u32) {
        send(self.http.post(format!("{}/window/rect", self.base)).json(&json!({"width": width, "height": height})))
            .await;
    }

    /// Whether the page is wider than the window (a reader would have to scroll sideways).
    pub(crate) async fn scrolls_sideways(&self) -> bool {
        let wider = self.script("return document.documentElement.scrollWidth > window.innerWidth").await;
        wider.as_bool().expect("a boolean")
    }

    /// Saves a PNG in `target/screenshots/`, or in `PORTCULLIS_SCREENSHOTS_DIR` (the README's
    /// pictures live in `tests/screenshots/`).
    pub(crate) async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = send(self.http.get(format!("{}/screenshot", self.base))).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = std::env::var_os("PORTCULLIS_SCREENSHOTS_DIR").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"),
            std::path::PathBuf::from,
        );
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// A virtual passkey device (WebDriver's WebAuthn extension): CTAP2, built in, keeps
    /// discoverable credentials, verifies its user, and always consents.
    pub(crate) async fn add_virtual_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserConsenting": true, "isUserVerified": true,
        });
        let id = send(self.http.post(format!("{}/webauthn/authenticator", self.base)).json(&options)).await;
        id.as_str().expect("an authenticator id").to_owned()
    }

    /// The credentials a virtual authenticator holds.
    pub(crate) async fn virtual_credentials(&self, authenticator: &str) -> Vec<Value> {
        let url = format!("{}/webauthn/authenticator/{authenticator}/credentials", self.base);
        send(self.http.get(url)).await.as_array().cloned().unwrap_or_default()
    }

    /// Takes a virtual authenticator away (the user walks off with their phone).
    pub(crate) async fn remove_virtual_authenticator(&self, authenticator: &str) {
        send(self.http.delete(format!("{}/webauthn/authenticator/{authenticator}", self.base))).await;
    }

    /// A new virtual authenticator holding `credentials` (as `virtual_credentials` returned them).
    pub(crate) async fn restore_virtual_authenticator(&self, credentials: &[Value]) -> String {
        let authenticator = self.add_virtual_authenticator().await;
        for credential in credentials {
            let url = format!("{}/webauthn/authenticator/{authenticator}/credential", self.base);
            send(self.http.post(url).json(credential)).await;
        }
        authenticator
    }

    /// Waits until a script has taken the browser to `path` (fetch, then `location.assign`).
    pub(crate) async fn wait_for_path(&self, path: &str) {
        let started = Instant::now();
        while self.path().await != path {
            assert!(started.elapsed() < Duration::from_secs(20), "never reached {path}; at {}", self.path().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        while self.script("return document.readyState").await != json!("complete") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn quit(self) {
        send(self.http.delete(&self.base)).await;
    }
}
