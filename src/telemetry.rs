//! Logging: one line per request (actix's Logger) and one per auth event, to stderr.
//! `PORTCULLIS_LOG` (or `RUST_LOG`) takes an env-filter such as `info` or `portcullis=debug`.
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env(crate::config::LOG_FILTER)
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // try_init: a second call (tests) keeps the first subscriber instead of panicking.
    // Colours only for a person at a terminal, not for files or journald.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}
