//! Who is on the other end of a request: address and a short description of the software,
//! for logs, the audit trail and the session lists (read off the request by `web::client`).

/// What a session list shows about the device that signed in.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: String,
    /// "Firefox on Linux", "curl", … (never the raw header, which is long and forgeable).
    pub software: String,
}

const BROWSERS: [(&str, &str); 8] = [
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
];
const SYSTEMS: [(&str, &str); 7] = [
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
];
const MAX_SUMMARY_CHARS: usize = 60;

/// "Firefox on Linux" for browsers we know; otherwise the product token ("python-requests"),
/// cut short; "unknown" when there is nothing.
pub fn summarize_user_agent(user_agent: &str) -> String {
    let browser = BROWSERS.iter().find(|(token, _)| user_agent.contains(token)).map(|(_, name)| *name);
    let system = SYSTEMS.iter().find(|(token, _)| user_agent.contains(token)).map(|(_, name)| *name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, _) => {
            let product = user_agent.split(['/', ' ']).next().unwrap_or("").trim();
            let product: String = product.chars().filter(|c| c.is_ascii_graphic()).take(MAX_SUMMARY_CHARS).collect();
            if product.is_empty() { "unknown".to_owned() } else { product }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::summarize_user_agent;

    #[test]
    fn common_user_agents_are_summarised_in_plain_words() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                 Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            ("curl/8.5.0", "curl"),
            ("python-requests/2.32", "python-requests"),
            ("", "unknown"),
            ("\u{1b}[31m/evil", "[31m"),
        ];
        for (user_agent, expected) in cases {
            assert_eq!(summarize_user_agent(user_agent), expected, "{user_agent}");
        }
    }
}
