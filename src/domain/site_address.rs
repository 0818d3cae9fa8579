//! The address a reverse proxy asks the gate about, normalised the way the proxy and the site
//! behind it will read it, so that a rule is never judged on a spelling the site reads
//! differently (`/ADMIN`, `/%61dmin`, `//admin`, `/public/../admin`, `/admin;x`,
//! `Vault.Example.COM.:443`).
//!
//! - [`SiteHost`]: lower case, without port or trailing dot, international names as IDNA
//!   (`xn--…`), nothing else accepted.
//! - [`SitePath`]: percent-decoded. Where sites disagree on how to read a path (dot segments
//!   resolved or not, duplicate slashes merged or not, `;parameters` dropped or not), every
//!   reading is kept and the access rules apply the strictest answer among them. What no site
//!   can read safely (an encoded `/` or `\`, a raw `\`, NUL or other control characters,
//!   broken or double percent-encoding, invalid UTF-8, `..` above the root) is refused.

/// Why an address was refused, in words for the proxy's administrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressError(&'static str);

const MAX_HOST_BYTES: usize = 253;
const MAX_PATH_BYTES: usize = 8192;

/// A host name as routing compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteHost(String);

impl SiteHost {
    /// `raw` as a `Host` header or URL authority carries it: with or without a port.
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_HOST_BYTES + 7 {
            return Err(AddressError("the host is empty or too long"));
        }
        let name = if let Some(rest) = raw.strip_prefix('[') {
            // An IPv6 literal, `[::1]` or `[::1]:8443`.
            let (inside, after) = rest.split_once(']').ok_or(AddressError("the host is not a host name"))?;
            if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port))
                || inside.is_empty()
                || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(AddressError("the host is not a host name"));
            }
            return Ok(Self(format!("[{}]", inside.to_ascii_lowercase())));
        } else {
            match raw.rsplit_once(':') {
                Some((name, port)) if is_port(port) => name,
                Some(_) => return Err(AddressError("the host's port is not a number")),
                None => raw,
            }
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        let ascii = if name.is_ascii() {
            name.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_strict(name)
                .map_err(|_| AddressError("the host is not a valid international name"))?
        };
        let labels_ok = !ascii.is_empty()
            && ascii.len() <= MAX_HOST_BYTES
            && ascii.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !labels_ok {
            return Err(AddressError("the host is not a host name"));
        }
        Ok(Self(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this host is `pattern`: a host name, or `*.parent` for every host below `parent`
    /// (the way nginx's `server_name *.example.com` routes).
    pub fn matches(&self, pattern: &str) -> bool {
        match pattern.strip_prefix("*.") {
            Some(parent) => is_below(&self.0, parent),
            None => self.0 == pattern,
        }
    }
}

/// Whether `host` is a subdomain of `parent` (`a.example.com` of `example.com`, not
/// `evilexample.com`, and not `example.com` itself). Both lower case.
pub(crate) fn is_below(host: &str, parent: &str) -> bool {
    host.strip_suffix(parent).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// A path as the sites behind the proxy may read it: one reading for an ordinary path, a few
/// when it holds dot segments, duplicate slashes or `;` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePath {
    readings: Vec<String>,
}

impl SitePath {
    /// `raw` as the request line carries it (query and fragment are ignored).
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let raw = raw.split(['?', '#']).next().unwrap_or_default();
        if !raw.starts_with('/') {
            return Err(AddressError("the path does not start with /"));
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(AddressError("the path is too long"));
        }
        if raw.bytes().any(|b| b == b'\\' || b.is_ascii_control() || b == b' ') {
            return Err(AddressError("the path holds a backslash, a space or a control character"));
        }
        let raw_segments: Vec<&str> = raw[1..].split('/').collect();
        let has_params = raw.contains(';');
        let mut readings = Vec::new();
        for strip_params in if has_params { &[true, false][..] } else { &[false][..] } {
            let decoded = raw_segments
                .iter()
                .map(|segment| {
                    let segment = if *strip_params { segment.split(';').next().unwrap_or_default() } else { segment };
                    decode_segment(segment)
                })
                .collect::<Result<Vec<String>, AddressError>>()?;
            let has_dots = decoded.iter().any(|segment| segment == "." || segment == "..");
            // An empty segment before the last: a duplicate slash.
            let has_empty = decoded.iter().rev().skip(1).any(String::is_empty);
            for resolve_dots in if has_dots { &[true, false][..] } else { &[false][..] } {
                for merge_slashes in if has_empty { &[true, false][..] } else { &[false][..] } {
                    let reading = read_path(&decoded, *resolve_dots, *merge_slashes)?;
                    if !readings.contains(&reading) {
                        readings.push(reading);
                    }
                }
            }
        }
        Ok(Self { readings })
    }

    /// Every way the sites behind the proxy may read the path (at least one).
    pub fn readings(&self) -> &[String] {
        &self.readings
    }
}

/// One segment, percent-decoded exactly once.
fn decode_segment(segment: &str) -> Result<String, AddressError> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = bytes.get(at + 1..at + 3).ok_or(AddressError("the path has a broken %-escape"))?;
            let byte = std::str::from_utf8(hex)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or(AddressError("the path has a broken %-escape"))?;
            decoded.push(byte);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    if decoded.iter().any(|&b| b == b'/' || b == b'\\' || b.is_ascii_control()) {
        return Err(AddressError("the path holds an encoded slash, backslash or control character"));
    }
    let text = String::from_utf8(decoded).map_err(|_| AddressError("the path is not valid UTF-8 once decoded"))?;
    let double_encoded = text
        .as_bytes()
        .windows(3)
        .any(|window| window[0] == b'%' && window[1].is_ascii_hexdigit() && window[2].is_ascii_hexdigit());
    if double_encoded {
        return Err(AddressError("the path is percent-encoded twice"));
    }
    Ok(text)
}

fn read_path(segments: &[String], resolve_dots: bool, merge_slashes: bool) -> Result<String, AddressError> {
    let mut kept: Vec<&str> = Vec::with_capacity(segments.len());
    for segment in segments {
        match segment.as_str() {
            "" if merge_slashes => {}
            "." if resolve_dots => {}
            ".." if resolve_dots => {
                kept.pop().ok_or(AddressError("the path climbs above the root"))?;
            }
            other => kept.push(other),
        }
    }
    Ok(format!("/{}", kept.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_compared_as_routing_compares_them() {
        for (raw, host) in [
            ("vault.example.com", "vault.example.com"),
            ("Vault.Example.COM", "vault.example.com"),
            ("vault.example.com.", "vault.example.com"),
            ("vault.example.com.:8443", "vault.example.com"),
            ("vault.example.com:80", "vault.example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("[::1]:8080", "[::1]"),
            ("127.0.0.1:3000", "127.0.0.1"),
        ] {
            assert_eq!(SiteHost::parse(raw).unwrap().as_str(), host, "{raw}");
        }
        for bad in [
            "",
            "vault..example.com",
            ".vault.example.com",
            "vault.example.com..",
            "vault.example.com:http",
            "vault%2eexample.com",
            "vault.example.com/x",
            "user@vault.example.com",
            "vault_example.com",
            "-vault.example.com",
            "[::1",
        ] {
            assert!(SiteHost::parse(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        let host = SiteHost::parse("db.internal.example.com").unwrap();
        assert!(host.matches("*.internal.example.com"));
        assert!(host.matches("*.example.com"));
        assert!(!host.matches("*.db.internal.example.com"));
        assert!(!SiteHost::parse("evilinternal.example.com").unwrap().matches("*.internal.example.com"));
    }

    fn readings(raw: &str) -> Vec<String> {
        SitePath::parse(raw).unwrap().readings().to_vec()
    }

    #[test]
    fn paths_are_decoded_once_and_every_reading_is_kept() {
        assert_eq!(readings("/docs/page?id=7"), ["/docs/page"]);
        assert_eq!(readings("/%61dmin"), ["/admin"]);
        assert_eq!(readings("/caf%C3%A9/"), ["/café/"]);
        assert_eq!(readings("//admin/settings"), ["/admin/settings", "//admin/settings"]);
        assert_eq!(readings("/public/../admin"), ["/admin", "/public/../admin"]);
        assert_eq!(readings("/./admin"), ["/admin", "/./admin"]);
        assert_eq!(readings("/public/%2e%2e/admin"), ["/admin", "/public/../admin"]);
        assert_eq!(readings("/admin;x"), ["/admin", "/admin;x"]);
        assert_eq!(readings("/public;/../admin"), ["/admin", "/public/../admin", "/public;/../admin"]);
        assert_eq!(readings("/"), ["/"]);
    }

    #[test]
    fn what_cannot_be_read_safely_is_refused() {
        for bad in [
            "/admin%2Fsettings",
            "/admin%2fsettings",
            "/admin%5Csettings",
            "/admin\\settings",
            "/admin%00",
            "/admin%0a",
            "/ad min",
            "/%zz",
            "/admin%2",
            "/%C3%28",
            "/%252e%252e/admin",
            "/../admin",
            "admin",
            "",
        ] {
            assert!(SitePath::parse(bad).is_err(), "{bad:?} is refused");
        }
    }
}
