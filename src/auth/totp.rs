//! Authenticator-app codes (TOTP, RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps, one step
//! of clock skew either way. The arithmetic is `totp-rs`'s; which step a code matched is
//! ours, because a code is accepted only for a step later than the last one used.
use aws_lc_rs::constant_time;
use totp_rs::{Algorithm, TOTP};

pub const DIGITS: usize = 6;
pub const STEP_SECONDS: u64 = 30;
/// 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// The shared secret of one authenticator app.
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub fn generate() -> Self {
        Self(crate::random::bytes::<SECRET_BYTES>().to_vec())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, what apps expect in `otpauth://` links.
    pub fn base32(&self) -> String {
        base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &self.0)
    }

    /// The key in groups of four, for typing it into an app by hand.
    pub fn grouped(&self) -> String {
        let plain = self.base32();
        plain
            .as_bytes()
            .chunks(4)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `otpauth://` link the QR code carries (Key Uri Format).
    pub fn otpauth_url(&self, issuer: &str, account: &str) -> String {
        let label = format!("{}:{}", percent_encode(issuer), percent_encode(account));
        format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            self.base32(),
            percent_encode(issuer)
        )
    }

    fn totp(&self, digits: usize) -> TOTP {
        TOTP::new_unchecked(Algorithm::SHA1, digits, 1, STEP_SECONDS, self.0.clone())
    }

    /// The code for the step that holds Unix time `at`.
    pub fn code_at(&self, at: u64) -> String {
        self.totp(DIGITS).generate(at)
    }

    /// The step (`at / 30`) whose code `code` is, looking one step either side of `at`; the
    /// latest such step if several match. Compared in constant time.
    pub fn matching_step(&self, code: &str, at: u64) -> Option<u64> {
        let now = at / STEP_SECONDS;
        let totp = self.totp(DIGITS);
        [now + 1, now, now.saturating_sub(1)].into_iter().find(|step| {
            let expected = totp.generate(step * STEP_SECONDS);
            constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok()
        })
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A code as typed: six digits, spaces allowed (apps show "123 456").
pub fn parse_code(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS && digits.bytes().all(|byte| byte.is_ascii_digit())).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits, the RFC's 20-byte ASCII key).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        for (time, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(secret.totp(8).generate(time), expected, "T = {time}");
            // Our six digits are the last six of the RFC's eight (the same truncation mod 10^6).
            assert_eq!(secret.code_at(time), expected[2..], "T = {time}");
        }
    }

    #[test]
    fn a_code_matches_its_own_step_and_one_either_side_only() {
        let secret = TotpSecret::generate();
        let at = 1_700_000_000;
        let step = at / STEP_SECONDS;
        assert_eq!(secret.matching_step(&secret.code_at(at), at), Some(step));
        assert_eq!(secret.matching_step(&secret.code_at(at - 30), at), Some(step - 1));
        assert_eq!(secret.matching_step(&secret.code_at(at + 30), at), Some(step + 1));
        assert_eq!(secret.matching_step(&secret.code_at(at - 60), at), None);
        assert_eq!(secret.matching_step(&secret.code_at(at + 60), at), None);
        assert_eq!(secret.matching_step("12345", at), None);
    }

    #[test]
    fn codes_are_six_digits_with_spaces_allowed() {
        assert_eq!(parse_code(" 123 456 "), Some("123456".to_owned()));
        for bad in ["12345", "1234567", "12345a", "", "１２３４５６"] {
            assert_eq!(parse_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_otpauth_link_names_the_issuer_and_account_safely() {
        let secret = TotpSecret::from_bytes(vec![0; 20]);
        let url = secret.otpauth_url("portcullis.test", "ann lee@x");
        assert_eq!(
            url,
            "otpauth://totp/portcullis.test:ann%20lee%40x?secret=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&issuer=portcullis.test\
             &algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(secret.grouped().split(' ').count(), 8);
    }
}
