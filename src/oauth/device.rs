//! Sign-in for devices without a browser (RFC 8628 Device Authorization Grant): the device asks
//! for a code (`/oauth2/device_authorization`), shows its user code, a person enters it at
//! `/device` signed in as usual (second step included) and allows the app by name; the device
//! polls the token endpoint and gets tokens of a grant tied to that person's session, so they
//! end with it like every other app's.
use std::time::Duration;

use super::clients::Client;
use super::flow::{Approved, OAuthError, Provider, TokenAnswer, sha256_hex, start_grant};
use super::scopes::Scopes;
use crate::db::device_codes::{self, Decision, DeviceCodeRow};
use crate::db::users::now;
use crate::db::{self, write_transaction};

/// How long a device code works (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// How often a device may poll at first (§3.2 `interval`), and by how much `slow_down` raises it.
pub const POLL_SECONDS: i32 = 5;
const SLOW_DOWN_BY: i32 = 5;
/// Codes one app may have waiting (so nobody can grow the table).
const CODES_PER_APP: i64 = 1000;
/// §6.1: letters only, no vowels (no words), none that look alike; 20⁸ ≈ 2.6·10¹⁰ codes, and
/// typing them is throttled like passwords.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LENGTH: usize = 8;

/// The device authorization response (§3.2).
#[derive(Debug, serde::Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: i32,
}

/// A user code as typed, normalised (case, dashes and spaces ignored); `None` when it cannot be
/// one of ours.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let code: String =
        typed.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == USER_CODE_LENGTH && code.bytes().all(|byte| USER_CODE_ALPHABET.contains(&byte))).then_some(code)
}

/// A user code as people read it: `WDJB-MJHT`.
pub fn shown_user_code(code: &str) -> String {
    let (first, second) = code.split_at(code.len() / 2);
    format!("{first}-{second}")
}

fn new_user_code() -> String {
    let bytes = crate::random::bytes::<USER_CODE_LENGTH>();
    // 256 is not a multiple of 20: draw from the first 240 values only.
    let mut code = String::with_capacity(USER_CODE_LENGTH);
    let mut pool = bytes.to_vec();
    while code.len() < USER_CODE_LENGTH {
        if pool.is_empty() {
            pool = crate::random::bytes::<USER_CODE_LENGTH>().to_vec();
        }
        let byte = pool.remove(0);
        if byte < 240 {
            code.push(char::from(USER_CODE_ALPHABET[usize::from(byte % 20)]));
        }
    }
    code
}

/// A code a person typed, waiting for their decision, and the app it is for.
pub struct Waiting {
    pub client: Client,
    pub user_code: String,
    pub scopes: Scopes,
}

impl Provider<'_> {
    /// §3.1–3.2: a device code and a user code for `client`, for the scopes it asks within its own.
    pub async fn start_device(&self, client: &Client, scope: Option<&str>) -> Result<DeviceAuthorization, OAuthError> {
        let scopes = Scopes::parse(scope.unwrap_or("openid")).within(&client.scopes);
        if scopes.is_empty() {
            return Err(OAuthError::new("invalid_scope", "Ask for at least one scope this app may have (openid)"));
        }
        let device_code = crate::random::token_base64(32);
        let (hash, client_id, scope) = (sha256_hex(&device_code), client.id, scopes.to_string());
        let user_code = db::run(self.pool, move |conn| -> anyhow::Result<Option<String>> {
            let at = now();
            let expires = at + chrono::Duration::from_std(DEVICE_CODE_TTL)?;
            // A user code still on file (even expired) is drawn again.
            for _ in 0..5 {
                let user_code = new_user_code();
                if device_codes::find_by_user_code(conn, &user_code)?.is_some() {
                    continue;
                }
                let stored = device_codes::insert(
                    conn,
                    (&hash, &user_code, client_id, &scope),
                    (at, expires, POLL_SECONDS),
                    CODES_PER_APP,
                )?;
                return Ok(stored.then_some(user_code));
            }
            anyhow::bail!("no free user code after five draws")
        })
        .await?;
        let Some(user_code) = user_code else {
            return Err(OAuthError {
                retry_after: Some(DEVICE_CODE_TTL),
                ..OAuthError::new("slow_down", "This app has too many device codes waiting; try again later")
            });
        };
        let verification_uri = format!("{}/device", self.issuer());
        let shown = shown_user_code(&user_code);
        Ok(DeviceAuthorization {
            device_code,
            verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
            verification_uri,
            user_code: shown,
            expires_in: DEVICE_CODE_TTL.as_secs(),
            interval: POLL_SECONDS,
        })
    }

    /// The code a person typed, if it is one waiting (not expired, not decided) for an app that
    /// is enabled.
    pub async fn waiting_device(&self, user_code: &str) -> Result<Option<Waiting>, OAuthError> {
        let code = user_code.to_owned();
        let row = db::run(self.pool, move |conn| -> anyhow::Result<Option<(DeviceCodeRow, String)>> {
            let Some(row) = device_codes::find_by_user_code(conn, &code)? else { return Ok(None) };
            let client = crate::db::oauth::find_client(conn, row.client_id)?;
            Ok(client.map(|client| (row, client.client_id)))
        })
        .await?;
        let Some((row, client_id)) = row.filter(|(row, _)| row.state == "pending" && row.expires_at > now()) else {
            return Ok(None);
        };
        let client = self.find_client(&client_id).await?.filter(|client| client.enabled);
        Ok(client.map(|client| Waiting { client, user_code: row.user_code, scopes: Scopes::parse(&row.scope) }))
    }

    /// Records a person's decision on a waiting code; false when it was decided already or has
    /// expired.
    pub async fn decide_device(&self, user_code: &str, decision: Decision<'_>) -> Result<bool, OAuthError> {
        let code = user_code.to_owned();
        let (allowed, user_id, sid, auth_time, amr) = (
            decision.allowed,
            decision.user_id,
            decision.session_sid.to_owned(),
            decision.auth_time,
            decision.amr.to_owned(),
        );
        Ok(db::run(self.pool, move |conn| -> anyhow::Result<bool> {
            let decision = Decision { allowed, user_id, session_sid: &sid, auth_time, amr: &amr };
            Ok(device_codes::decide(conn, &code, &decision, now())?)
        })
        .await?)
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (§3.4–3.5).
    pub async fn exchange_device_code(&self, client: &Client, device_code: &str) -> Result<TokenAnswer, OAuthError> {
        if device_code.is_empty() || device_code.len() > 200 {
            return Err(OAuthError::new("invalid_grant", "The device code is not valid"));
        }
        let (hash, client_db_id) = (sha256_hex(device_code), client.id);
        let refresh = crate::random::token_base64(32);
        let (refresh_hash, refresh_ttl) = (sha256_hex(&refresh), client.refresh_token_ttl);
        let outcome = db::run(self.pool, move |conn| -> anyhow::Result<_> {
            write_transaction(conn, |conn| -> anyhow::Result<Result<_, OAuthError>> {
                let at = now();
                let refused = |error: &'static str, description: &str| Ok(Err(OAuthError::new(error, description)));
                let Some(row) = device_codes::find(conn, &hash)?.filter(|row| row.client_id == client_db_id) else {
                    return refused("invalid_grant", "The device code is not valid");
                };
                if row.expires_at <= at {
                    return refused("expired_token", "The device code has expired; start again");
                }
                match row.state.as_str() {
                    "pending" => {
                        let too_soon = row
                            .last_polled_at
                            .is_some_and(|last| at - last < chrono::Duration::seconds(i64::from(row.poll_interval)));
                        let interval = if too_soon { row.poll_interval + SLOW_DOWN_BY } else { row.poll_interval };
                        device_codes::polled(conn, &hash, at, interval)?;
                        if too_soon {
                            return refused("slow_down", &format!("Poll at most every {interval} seconds"));
                        }
                        refused("authorization_pending", "The person has not decided yet")
                    }
                    "denied" => refused("access_denied", "The person did not allow it"),
                    "allowed" => {
                        let (Some(user_id), Some(sid), Some(auth_time)) =
                            (row.user_id, &row.session_sid, row.auth_time)
                        else {
                            return refused("invalid_grant", "The device code is not valid");
                        };
                        if !device_codes::use_allowed(conn, &hash)? {
                            return refused("invalid_grant", "The device code was used already");
                        }
                        let approved = Approved {
                            client_id: row.client_id,
                            user_id,
                            session_sid: sid,
                            scope: &row.scope,
                            auth_time,
                            amr: row.amr.as_deref().unwrap_or_default(),
                            nonce: None,
                            resource: None,
                        };
                        Ok(start_grant(conn, &approved, (&refresh_hash, refresh_ttl), at)?.map(|(issued, _)| issued))
                    }
                    _ => refused("invalid_grant", "The device code was used already"),
                }
            })
        })
        .await?;
        self.finish_grant(client, outcome, Some(refresh)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_unambiguous_letters_read_in_any_case_with_or_without_a_dash() {
        for _ in 0..200 {
            let code = new_user_code();
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|byte| USER_CODE_ALPHABET.contains(&byte)), "{code}");
            assert_eq!(normalise_user_code(&shown_user_code(&code)).as_deref(), Some(code.as_str()));
            assert_eq!(normalise_user_code(&code.to_lowercase()).as_deref(), Some(code.as_str()));
        }
        assert_eq!(normalise_user_code("wdjb mjht").as_deref(), Some("WDJBMJHT"));
        for bad in ["", "WDJB-MJH", "WDJB-MJHTX", "AEIO-UBCD", "WDJB-MJH0", "ＷDJB-MJHT"] {
            assert_eq!(normalise_user_code(bad), None, "{bad}");
        }
    }
}
