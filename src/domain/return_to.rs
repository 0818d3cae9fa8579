use super::SafeNextPath;

const MAX_RETURN_BYTES: usize = 2048;

/// The sites a sign-in may send someone back to: this one, and with a cookie domain every
/// host under it (the applications behind the same reverse proxy), on the scheme's own port
/// or ours (a port of its own would be another service on that host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteHosts {
    own: String,
    own_port: Option<u16>,
    domain: Option<String>,
    https: bool,
}

impl SiteHosts {
    pub fn new(own_host: &str, own_port: Option<u16>, domain: Option<&str>, https: bool) -> Self {
        Self { own: own_host.to_ascii_lowercase(), own_port, domain: domain.map(str::to_ascii_lowercase), https }
    }

    fn covers(&self, host: &str) -> bool {
        host == self.own
            || self
                .domain
                .as_deref()
                .is_some_and(|domain| host == domain || super::site_address::is_below(host, domain))
    }
}

/// Where to go after signing in: a path on this site, or (from a reverse proxy's login
/// redirect, `?rd=`) a full address on one of our sites. Anything else — another site, a
/// user name in the address, `javascript:`, control characters — is refused and the caller
/// falls back to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    pub fn parse(input: &str, sites: &SiteHosts) -> Option<Self> {
        if let Some(path) = SafeNextPath::parse(input) {
            return Some(Self(path.as_str().to_owned()));
        }
        if input.len() > MAX_RETURN_BYTES
            || input.contains('\\')
            || input.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return None;
        }
        let url = url::Url::parse(input).ok()?;
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && !sites.https);
        let host = url.host_str()?.to_ascii_lowercase();
        let plain = url.username().is_empty() && url.password().is_none();
        // `url` leaves out the scheme's own port: any other must be ours.
        let port_ok = url.port().is_none_or(|port| Some(port) == sites.own_port);
        (scheme_ok && plain && port_ok && sites.covers(&host)).then(|| Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites() -> SiteHosts {
        SiteHosts::new("login.example.com", Some(8443), Some("example.com"), true)
    }

    #[test]
    fn our_paths_and_our_sites_are_kept() {
        for good in [
            "/dashboard",
            "https://wiki.example.com/page?id=3",
            "https://example.com/",
            "https://login.example.com:8443/x",
            "https://wiki.example.com:8443/x",
            "https://wiki.example.com:443/x",
        ] {
            assert!(ReturnTo::parse(good, &sites()).is_some(), "{good}");
        }
        assert_eq!(
            ReturnTo::parse("https://WIKI.example.com", &sites()).unwrap().as_str(),
            "https://wiki.example.com/"
        );
    }

    #[test]
    fn every_other_address_is_refused() {
        for bad in [
            "https://evil.example",
            "https://example.com.evil.example/",
            "https://evilexample.com/",
            "http://wiki.example.com/",
            "https://user:pass@wiki.example.com/",
            "https://attacker@wiki.example.com/",
            "javascript:alert(1)//example.com",
            "//wiki.example.com",
            "https://wiki.example.com/\\@evil.example",
            "https://wiki.example.com/\n",
            "ftp://wiki.example.com/",
            "https://wiki.example.com:6379/",
            "https://login.example.com:8080/",
        ] {
            assert!(ReturnTo::parse(bad, &sites()).is_none(), "{bad}");
        }
        let own_only = SiteHosts::new("login.example.com", None, None, false);
        assert!(ReturnTo::parse("http://login.example.com/x", &own_only).is_some());
        assert!(ReturnTo::parse("http://wiki.example.com/x", &own_only).is_none(), "no cookie domain: only this host");
    }
}
