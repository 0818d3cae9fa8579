//! Where an app asks us to send its users back (OAuth 2.0 redirect URIs). Registered ones are
//! checked once; a request's is compared with them exactly (RFC 9700 §4.1.3), except that a
//! native app's loopback address may name any port (RFC 8252 §7.3).

const MAX_URI_BYTES: usize = 2000;

/// A redirect URI an admin registered for an app: absolute, `https` (or `http` to a loopback
/// address, for apps on the same machine and native apps), no fragment, no user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl std::ops::Deref for RedirectUri {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An absolute address without a fragment or credentials, `https` (or `http` to this machine),
/// at most 2,000 characters: what redirect URIs and resource indicators (RFC 8707) must be.
/// Errors are in words for the person who typed it.
pub fn https_or_loopback_url(input: &str) -> Result<url::Url, &'static str> {
    if input.is_empty() {
        return Err("Enter an address");
    }
    if input.len() > MAX_URI_BYTES {
        return Err("An address may be at most 2,000 characters");
    }
    if input.chars().any(|c| c.is_control() || c.is_whitespace()) || input.contains('\\') {
        return Err("An address may not contain spaces or control characters");
    }
    let url = url::Url::parse(input).map_err(|_| "Enter a full address, such as https://app.example.com/callback")?;
    if url.fragment().is_some() {
        return Err("An address may not have a fragment (#…)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("An address may not contain a user name or password");
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => Err("Use https (plain http only to this machine: 127.0.0.1, [::1] or localhost)"),
        _ => Err("Use an https address"),
    }
}

impl RedirectUri {
    /// The registered form, or why not (in words for the admin).
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let input = input.trim();
        let url = https_or_loopback_url(input)?;
        // What is stored is what the admin typed, once it reads the same when parsed: a
        // request must then send exactly these characters.
        if url.as_str() != input && format!("{input}/") != url.as_str() {
            return Err(
                "Write the address in its plain form (lower-case scheme and host, no dot segments, no default port)",
            );
        }
        Ok(Self(url.as_str().to_owned()))
    }

    /// Whether a request's `redirect_uri` is this one: the same characters, or for a loopback
    /// IP address over http the same apart from the port.
    pub fn accepts(&self, presented: &str) -> bool {
        if presented == self.0 {
            return true;
        }
        let (Ok(registered), Ok(mut asked)) = (url::Url::parse(&self.0), url::Url::parse(presented)) else {
            return false;
        };
        let loopback_ip = |url: &url::Url| {
            url.scheme() == "http"
                && match url.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    _ => false,
                }
        };
        if !loopback_ip(&registered) || !loopback_ip(&asked) || asked.as_str() != presented {
            return false;
        }
        let mut registered = registered;
        if registered.set_port(None).is_err() || asked.set_port(None).is_err() {
            return false;
        }
        registered == asked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_addresses_are_https_or_loopback_without_fragments() {
        for good in [
            "https://app.example.com/callback",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "https://a.test/cb?x=1",
        ] {
            assert_eq!(&*RedirectUri::parse(good).unwrap(), good, "{good}");
        }
        for bad in [
            "",
            "app.example.com/cb",
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://user@app.example.com/cb",
            "javascript:alert(1)",
            "https://APP.example.com/cb",
            "https://app.example.com/a/../cb",
            "https://app.example.com:443/cb",
            "https://app.example.com/c b",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_must_send_the_same_characters_except_a_loopback_port() {
        let uri = RedirectUri::parse("https://app.example.com/callback").unwrap();
        assert!(uri.accepts("https://app.example.com/callback"));
        for variant in [
            "https://app.example.com/callback/",
            "https://APP.example.com/callback",
            "https://app.example.com/Callback",
            "https://app.example.com/callback?x=1",
            "https://evil@app.example.com/callback",
            "https://app.example.com/x/../callback",
            "https://app.example.com:443/callback",
            "https://app.example.com.evil.test/callback",
        ] {
            assert!(!uri.accepts(variant), "{variant}");
        }
        let native = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert!(native.accepts("http://127.0.0.1:51004/cb"));
        assert!(!native.accepts("http://127.0.0.1:51004/other"));
        assert!(!native.accepts("http://127.0.0.1:51004/x/../cb"));
        assert!(!native.accepts("https://127.0.0.1:51004/cb"));
        let named = RedirectUri::parse("http://localhost:8080/cb").unwrap();
        assert!(!named.accepts("http://localhost:9090/cb"), "only IP literals get any port (RFC 8252 8.3)");
    }
}
