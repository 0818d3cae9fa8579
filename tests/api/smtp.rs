//! A real SMTP server for the mail tests: `tests/support/smtp_sink.py` (aiosmtpd) on a
//! loopback port, capturing every message it accepts as JSON the tests read links from.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::config::{Settings, SmtpSettings};

pub(crate) const PUBLIC_ORIGIN: &str = "http://portcullis.test";

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Captured {
    pub rcpt_tos: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub subject: String,
    pub to: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

impl Captured {
    pub(crate) fn is_for(&self, address: &str) -> bool {
        self.rcpt_tos.iter().any(|to| to == address)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The path and query of the link in the text part (which must point at the public URL).
    pub(crate) fn link(&self) -> String {
        let start = self.text.find(PUBLIC_ORIGIN).unwrap_or_else(|| panic!("no link in:\n{}", self.text));
        let link: String = self.text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        assert!(self.html.contains(&link), "the HTML part carries the same link");
        link[PUBLIC_ORIGIN.len()..].to_owned()
    }
}

pub(crate) struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    slow: f64,
    child: Option<Child>,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl SmtpSink {
    /// Whether Python's aiosmtpd is here. In CI it must be (`.ci/run` installs it); elsewhere
    /// the mail tests pass without running and the run says so once.
    pub(crate) fn available() -> bool {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let available = *AVAILABLE.get_or_init(|| {
            Command::new("python3").args(["-c", "import aiosmtpd"]).output().is_ok_and(|out| out.status.success())
        });
        if !available {
            assert!(std::env::var("CI").is_err(), "the mail tests need python3 with aiosmtpd in CI");
            crate::helpers::announce_skip(
                "the mail tests: install Python's aiosmtpd (pip install aiosmtpd) to run them",
            );
        }
        available
    }

    pub(crate) fn start() -> Self {
        Self::start_slow(0.0)
    }

    /// Recipients whose address contains "slow" get their DATA answered after `seconds`.
    pub(crate) fn start_slow(seconds: f64) -> Self {
        let mut sink = Self::not_started(free_port());
        sink.slow = seconds;
        sink.resume();
        sink
    }

    /// A sink on `port` that is not listening yet: the server is "down" until `resume`.
    pub(crate) fn not_started(port: u16) -> Self {
        Self { port, dir: tempfile::tempdir().unwrap(), slow: 0.0, child: None }
    }

    pub(crate) fn resume(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &self.port.to_string(), "--dir", &self.dir.path().display().to_string()])
            .args(["--slow", &self.slow.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 must be installed for the mail tests (.ci/run installs it with aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start: is aiosmtpd installed? (pip install aiosmtpd)");
        self.child = Some(child);
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Points a server at this sink: plain SMTP to loopback, as `?tls=none` allows.
    pub(crate) fn configure(&self, settings: &mut Settings) {
        settings.mail.smtp =
            Some(SmtpSettings::parse(&format!("smtp://127.0.0.1:{}?tls=none", self.port)).expect("sink URL"));
        settings.mail.from = Some("Portcullis <login@portcullis.test>".to_owned());
    }

    pub(crate) fn messages(&self) -> Vec<Captured> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        names.sort();
        names.iter().map(|path| serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()).collect()
    }

    pub(crate) fn to(&self, address: &str) -> Vec<Captured> {
        self.messages().into_iter().filter(|message| message.is_for(address)).collect()
    }

    /// Waits (up to `limit`) until `address` has received `count` messages; returns them.
    pub(crate) async fn wait_for_count(&self, address: &str, count: usize, limit: Duration) -> Vec<Captured> {
        let started = Instant::now();
        loop {
            let got = self.to(address);
            if got.len() >= count {
                return got;
            }
            assert!(
                started.elapsed() < limit,
                "{address} received {} message(s), not {count}, within {limit:?}: {:?}",
                got.len(),
                got.iter().map(|message| &message.subject).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The one next message to `address` (waits up to 10 s for it).
    pub(crate) async fn next_to(&self, address: &str, already: usize) -> Captured {
        self.wait_for_count(address, already + 1, Duration::from_secs(10)).await.remove(already)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs each mail scenario on SQLite and PostgreSQL, with a fresh SMTP sink the server sends to.
macro_rules! with_mail {
    ($(async fn $name:ident($app:ident: TestApp, $sink:ident: SmtpSink) $body:block)*) => {$(
        mod $name {
            #![allow(unused_imports, reason = "a scenario may use nothing of its file but the helpers")]
            use super::*;
            async fn scenario($app: $crate::helpers::TestApp, $sink: $crate::smtp::SmtpSink) $body
            async fn run(backend: $crate::helpers::Backend) {
                if !$crate::smtp::SmtpSink::available() {
                    return;
                }
                let sink = $crate::smtp::SmtpSink::start();
                let app = $crate::helpers::spawn_app_with(backend, |settings| sink.configure(settings)).await;
                let server = app.server.clone();
                scenario(app, sink).await;
                server.stop(true).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::helpers::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
            async fn postgres() {
                if $crate::helpers::postgres_available() {
                    run($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    )*};
}
