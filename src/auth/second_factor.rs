//! Second factors at sign-in: the pending state between a right password and a right code
//! (a *challenge*), and the check of a code against the user's authenticator app or recovery
//! codes. Enrolling and removing factors are account changes (`accounts`); they use the
//! primitives here.
//!
//! A challenge is found by the SHA-256 of a 256-bit token that only its browser (in an
//! HttpOnly cookie) or API client holds; it names its user, lives five minutes, is deleted by
//! the request that completes it, by five wrong codes, or by a new password attempt from the
//! same browser. Codes are checked on the same throttle counters as passwords.
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use chrono::NaiveDateTime;

use webauthn_rs::prelude::PublicKeyCredential;

use super::credentials;
use super::passkeys::{PasskeyError, Passkeys, Purpose};
use super::throttle::{Counters, LoginThrottle};
use super::totp::{self, TotpSecret};
use crate::config::{JwtSecret, MfaPolicy, NoticeKind};
use crate::crypto::sealed::SealingKey;
use crate::db::audit::{self, Action, Actor};
use crate::db::challenges::{self, NewChallenge};
use crate::db::second_factors;
use crate::db::users::{self, User, now};
use crate::db::{self, DbConnection, DbPool, write_transaction};
use crate::domain::Role;
use crate::mail::{Notice, Outbox, Recipient};

pub const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
/// Wrong codes one challenge takes before the sign-in must start over (the throttle's
/// counters limit guessing across challenges).
pub const MAX_CHALLENGE_FAILURES: i32 = 5;
/// Pending sign-ins one user may have; older ones are dropped.
const MAX_CHALLENGES_PER_USER: i64 = 5;
pub const RECOVERY_CODES: usize = 10;
/// 16 characters of 5 bits: 80 random bits, so a plain SHA-256 of a code cannot be reversed
/// by trying them all.
const RECOVERY_CODE_CHARS: usize = 16;
/// Crockford's base32: no i, l, o or u to misread.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A second factor a user can sign in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    RecoveryCode,
    /// With its RFC 8176 kind: `hwk` or `swk`.
    Passkey(&'static str),
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey(_) => "passkey",
        }
    }
}

/// A code as the user gave it, checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Totp(String),
    /// Normalised: lower case, no separators.
    Recovery(String),
}

pub const TOTP_SHAPE: &str = "Enter the 6-digit code from your authenticator app (digits only).";
pub const RECOVERY_SHAPE: &str = "Enter one of your recovery codes: 16 letters and digits, like 7kq2-m9xd-4hbt-wc3e.";

impl Code {
    /// What the form's field holds, for the method it asked for.
    pub fn parse(raw: &str, method: Method) -> Result<Self, &'static str> {
        match method {
            Method::Totp | Method::Passkey(_) => totp::parse_code(raw).map(Self::Totp).ok_or(TOTP_SHAPE),
            Method::RecoveryCode => parse_recovery_code(raw).map(Self::Recovery).ok_or(RECOVERY_SHAPE),
        }
    }

    /// Either kind, told apart by shape (the API's single `code` field).
    pub fn parse_any(raw: &str) -> Result<Self, &'static str> {
        Self::parse(raw, Method::Totp).or_else(|_| {
            Self::parse(raw, Method::RecoveryCode)
                .map_err(|_| "\"code\" must be a 6-digit authenticator code or a 16-character recovery code")
        })
    }

    pub fn method(&self) -> Method {
        match self {
            Self::Totp(_) => Method::Totp,
            Self::Recovery(_) => Method::RecoveryCode,
        }
    }
}

fn parse_recovery_code(raw: &str) -> Option<String> {
    if raw.len() > 64 {
        return None;
    }
    let code: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            other => other,
        })
        .collect();
    (code.len() == RECOVERY_CODE_CHARS && code.bytes().all(|byte| RECOVERY_ALPHABET.contains(&byte))).then_some(code)
}

/// A new set of recovery codes: as shown to the user (`abcd-efgh-jkmn-pqrs`), and as stored.
pub fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw = crate::random::bytes::<RECOVERY_CODE_CHARS>();
            let code: String = raw.iter().map(|byte| RECOVERY_ALPHABET[usize::from(byte % 32)] as char).collect();
            let shown =
                code.as_bytes().chunks(4).map(|part| String::from_utf8_lossy(part)).collect::<Vec<_>>().join("-");
            (shown, hash_recovery_code(&code))
        })
        .unzip()
}

fn hash_recovery_code(normalised: &str) -> String {
    let digest = digest::digest(&digest::SHA256, format!("portcullis recovery code v1:{normalised}").as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

fn hash_token(token: &str) -> String {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What checking a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right, and now used up. `recovery_codes_left` after a recovery code.
    Right {
        method: Method,
        recovery_codes_left: Option<i64>,
    },
    Wrong,
    /// A code (or an older one) that was already used.
    Replayed,
}

/// The keys and policy for second factors; one per application.
pub struct SecondFactors {
    sealing: SealingKey,
    policy: MfaPolicy,
    issuer: String,
    outbox: Arc<Outbox>,
}

impl SecondFactors {
    /// `issuer` is what authenticator apps show next to the account (the site's host name).
    pub fn new(
        secret: &JwtSecret,
        previous: Option<&JwtSecret>,
        policy: MfaPolicy,
        issuer: &str,
        outbox: Arc<Outbox>,
    ) -> Self {
        Self {
            sealing: SealingKey::derive(secret, previous, "portcullis totp secret v1"),
            policy,
            issuer: issuer.to_owned(),
            outbox,
        }
    }

    pub fn policy(&self) -> MfaPolicy {
        self.policy
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether the policy covers a user in this role.
    pub fn required_for(&self, role: Role) -> bool {
        self.policy.covers(role == Role::Admin)
    }

    /// Covered by the policy but without a second factor: may only enrol.
    pub fn must_enrol(&self, user: &User) -> bool {
        self.required_for(user.role) && !user.mfa_enabled
    }

    pub fn seal(&self, user_id: i64, secret: &TotpSecret) -> String {
        self.sealing.seal(user_id, secret.as_bytes())
    }

    /// The secret of a stored factor, and whether it should be resealed under the current key.
    pub fn open(&self, user_id: i64, sealed: &str) -> Option<(TotpSecret, bool)> {
        let opened = self.sealing.open(user_id, sealed)?;
        Some((TotpSecret::from_bytes(opened.plaintext), opened.stale))
    }

    /// Checks `code` against the user's factors and, if right, uses it up (a compare-and-set,
    /// so it works once across every instance). Call inside a write transaction.
    pub fn check_code(&self, conn: &mut DbConnection, user_id: i64, code: &Code) -> anyhow::Result<CodeCheck> {
        match code {
            Code::Totp(digits) => {
                let Some(factor) = second_factors::find_totp(conn, user_id)?.filter(|f| f.confirmed_at.is_some())
                else {
                    return Ok(CodeCheck::Wrong);
                };
                // A key still sealed under the previous secret is used as it is: resealing it
                // here would lock it away from instances not yet restarted with the new secret
                // (see `reseal_all`).
                let (secret, _) = self.open(user_id, &factor.sealed_secret).ok_or_else(|| {
                    anyhow::anyhow!(
                        "the authenticator secret of user {user_id} cannot be opened with the configured signing \
                         secret (was PORTCULLIS_JWT_SECRET changed without PORTCULLIS_JWT_SECRET_PREVIOUS?)"
                    )
                })?;
                let Some(step) = secret.matching_step(digits, unix_now()) else { return Ok(CodeCheck::Wrong) };
                let step = i64::try_from(step)?;
                if step <= factor.last_used_step || !second_factors::advance_step(conn, user_id, step)? {
                    return Ok(CodeCheck::Replayed);
                }
                Ok(CodeCheck::Right { method: Method::Totp, recovery_codes_left: None })
            }
            Code::Recovery(normalised) => {
                let hash = hash_recovery_code(normalised);
                if second_factors::use_recovery_code(conn, user_id, &hash, now())? {
                    let left = second_factors::recovery_codes_left(conn, user_id)?;
                    if let Some(user) = users::find_by_id(conn, user_id)? {
                        let notice = Notice::RecoveryCodeUsed { left };
                        self.outbox.notify(conn, Recipient::of(&user), NoticeKind::RecoveryCode, notice)?;
                    }
                    return Ok(CodeCheck::Right { method: Method::RecoveryCode, recovery_codes_left: Some(left) });
                }
                Ok(CodeCheck::Wrong)
            }
        }
    }

    /// After a rotation of the signing secret, once every instance has the new secret:
    /// reseals every stored key under it, so the previous secret can be retired. Returns how
    /// many were resealed.
    pub fn reseal_all(&self, conn: &mut DbConnection) -> anyhow::Result<usize> {
        let mut resealed = 0;
        for factor in second_factors::all_totp(conn)? {
            if let Some((secret, true)) = self.open(factor.user_id, &factor.sealed_secret) {
                second_factors::reseal_totp(conn, factor.user_id, &self.seal(factor.user_id, &secret))?;
                resealed += 1;
            }
        }
        Ok(resealed)
    }

    /// How the stored keys stand against the configured secrets: (sealed under the previous
    /// secret, sealed under neither). Keys of the second kind cannot produce codes here.
    pub fn key_standing(&self, conn: &mut DbConnection) -> anyhow::Result<(usize, usize)> {
        let (mut stale, mut unreadable) = (0, 0);
        for factor in second_factors::all_totp(conn)? {
            match self.open(factor.user_id, &factor.sealed_secret) {
                Some((_, true)) => stale += 1,
                Some((_, false)) => {}
                None => unreadable += 1,
            }
        }
        Ok((stale, unreadable))
    }

    /// Stores the recovery-code hashes of a new set (voiding the old one).
    pub fn store_recovery_codes(conn: &mut DbConnection, user_id: i64, hashes: &[String]) -> diesel::QueryResult<()> {
        second_factors::replace_recovery_codes(conn, user_id, hashes)
    }
}

fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

/// After a right password for a user with a second factor: a pending sign-in. Returns the
/// token its client must present with the code. `replacing` is the token this client held
/// before, if any (a new password attempt starts over).
pub async fn begin_challenge(
    pool: &DbPool,
    user_id: i64,
    via: &'static str,
    next_path: &str,
    replacing: Option<&str>,
) -> anyhow::Result<String> {
    let token = crate::random::token_base64(32);
    let hash = hash_token(&token);
    let replaced = replacing.map(hash_token);
    let next_path = next_path.to_owned();
    db::run(pool, move |conn| -> anyhow::Result<()> {
        write_transaction(conn, |conn| {
            if let Some(replaced) = &replaced {
                challenges::delete(conn, replaced)?;
            }
            let created = now();
            let new = NewChallenge {
                token_hash: &hash,
                user_id,
                created_at: created,
                expires_at: created + chrono::Duration::from_std(CHALLENGE_TTL)?,
                via,
                next_path: &next_path,
            };
            challenges::insert(conn, &new)?;
            challenges::keep_newest(conn, user_id, MAX_CHALLENGES_PER_USER)?;
            Ok(())
        })
    })
    .await?;
    Ok(token)
}

/// The kinds of code a user can complete a second step with over the API (`totp` when they
/// have an authenticator app, `recovery_code` when they have unused codes); passkeys need the
/// browser.
pub async fn api_methods(pool: &DbPool, user_id: i64) -> anyhow::Result<Vec<&'static str>> {
    db::run(pool, move |conn| -> anyhow::Result<Vec<&'static str>> {
        let has = second_factors::inventory(conn, user_id)?;
        let methods = [(has.app, Method::Totp), (has.recovery_codes_left > 0, Method::RecoveryCode)];
        Ok(methods.into_iter().filter(|(has, _)| *has).map(|(_, method)| method.as_str()).collect())
    })
    .await
}

/// Drops a pending sign-in (its client started over).
pub async fn abandon_challenge(pool: &DbPool, token: &str) -> anyhow::Result<()> {
    let hash = hash_token(token);
    db::run(pool, move |conn| -> anyhow::Result<()> {
        challenges::delete(conn, &hash)?;
        Ok(())
    })
    .await
}

/// A live pending sign-in: its user and where the browser goes afterwards.
pub struct Pending {
    pub user: User,
    pub next_path: String,
    pub via: String,
}

/// The pending sign-in `token` names, if it is still live and its user still active.
pub async fn pending(pool: &DbPool, token: &str) -> anyhow::Result<Option<Pending>> {
    if token.is_empty() || token.len() > 64 {
        return Ok(None);
    }
    let hash = hash_token(token);
    db::run(pool, move |conn| -> anyhow::Result<Option<Pending>> { find_pending(conn, &hash, now()) }).await
}

fn find_pending(conn: &mut DbConnection, hash: &str, at: NaiveDateTime) -> anyhow::Result<Option<Pending>> {
    let Some(challenge) = challenges::find_live(conn, hash, at)? else { return Ok(None) };
    let user = users::find_by_id(conn, challenge.user_id)?.filter(|user| user.is_active && user.mfa_enabled);
    Ok(user.map(|user| Pending { user, next_path: challenge.next_path, via: challenge.via }))
}

/// The client completing a second step.
pub struct SecondStepAttempt<'a> {
    pub token: &'a str,
    pub client_ip: &'a str,
    /// The device credentials the client carries, if any (see `device.rs`).
    pub device: Option<&'a str>,
}

pub enum SecondStep {
    /// Both steps passed: the challenge is used up. Start the session.
    Passed {
        user: Box<User>,
        method: Method,
        recovery_codes_left: Option<i64>,
        next_path: String,
        device_credential: String,
    },
    /// The code was wrong (or already used); `starts_over` when that was the last try this
    /// pending sign-in allowed.
    Refused {
        check: CodeCheck,
        starts_over: bool,
        next_path: String,
    },
    /// No such pending sign-in: expired, used, or never was.
    Expired,
    Throttled {
        retry_after: Duration,
    },
}

/// What checking the factor of a pending sign-in found.
enum Verdict {
    /// Right, and used up.
    Right { method: Method, recovery_codes_left: Option<i64> },
    /// Wrong: how (for the page), and in words for the audit trail.
    Wrong { check: CodeCheck, what: String },
}

/// A live pending sign-in whose attempt is reserved on the throttle: ready for its check.
struct Started {
    pending: Pending,
    hash: String,
    counters: Counters,
}

/// Finds the pending sign-in and reserves this attempt on the password's throttle counters;
/// or the answer when there is nothing to check (expired, throttled).
async fn start_second_step(
    pool: &DbPool,
    throttle: &Arc<LoginThrottle>,
    attempt: &SecondStepAttempt<'_>,
) -> anyhow::Result<Result<Started, SecondStep>> {
    if attempt.token.is_empty() || attempt.token.len() > 64 {
        return Ok(Err(SecondStep::Expired));
    }
    let hash = hash_token(attempt.token);
    let lookup = hash.clone();
    let Some(pending) = db::run(pool, move |conn| find_pending(conn, &lookup, now())).await? else {
        return Ok(Err(SecondStep::Expired));
    };
    let user = &pending.user;
    let counters = throttle.password_counters(Some(user.id), &user.username, attempt.client_ip, attempt.device);
    if let Err(retry_after) = credentials::begin(pool, throttle, &counters).await? {
        return Ok(Err(SecondStep::Throttled { retry_after }));
    }
    Ok(Ok(Started { pending, hash, counters }))
}

/// Records a checked second step: a right one uses up the pending sign-in (once, whoever
/// races it) and gives back both steps' reservations; a wrong one counts on the throttle and
/// on the pending sign-in (the fifth ends it) and is audited.
async fn finish_second_step(
    pool: &DbPool,
    throttle: &Arc<LoginThrottle>,
    started: Started,
    verdict: Verdict,
    client_ip: &str,
) -> anyhow::Result<SecondStep> {
    let Started { pending, hash, counters } = started;
    let (user_id, username, via) = (pending.user.id, pending.user.username.to_string(), pending.via.clone());
    let actor = Actor::anonymous(Some(client_ip.to_owned()));
    match verdict {
        Verdict::Right { method, recovery_codes_left } => {
            let completed = db::run(pool, move |conn| -> anyhow::Result<bool> {
                write_transaction(conn, |conn| {
                    if !challenges::delete(conn, &hash)? {
                        // Completed a moment ago by a concurrent request.
                        return Ok(false);
                    }
                    if method == Method::RecoveryCode {
                        let details = format!("via {via}; {} recovery code(s) left", recovery_codes_left.unwrap_or(0));
                        let actor = Actor { user: Some((user_id, username.clone())), ..actor };
                        audit::record(conn, &actor, Action::RecoveryCodeUsed, Some((user_id, &username)), &details)?;
                    }
                    Ok(true)
                })
            })
            .await?;
            if !completed {
                credentials::settle(pool, throttle, counters, true).await?;
                return Ok(SecondStep::Expired);
            }
            // Both steps passed: the password step's reservation is given back too.
            credentials::settle(pool, throttle, counters.clone(), true).await?;
            credentials::settle(pool, throttle, counters, true).await?;
            Ok(SecondStep::Passed {
                device_credential: throttle.devices().issue(user_id, chrono::Utc::now().timestamp()),
                user: Box::new(pending.user),
                method,
                recovery_codes_left,
                next_path: pending.next_path,
            })
        }
        Verdict::Wrong { check, what } => {
            credentials::settle(pool, throttle, counters, false).await?;
            let starts_over = db::run(pool, move |conn| -> anyhow::Result<bool> {
                write_transaction(conn, |conn| {
                    // No row: ended meanwhile (its fifth wrong answer, or a new password attempt).
                    let failures = challenges::add_failure(conn, &hash)?.unwrap_or(MAX_CHALLENGE_FAILURES);
                    let starts_over = failures >= MAX_CHALLENGE_FAILURES;
                    if starts_over {
                        challenges::delete(conn, &hash)?;
                    }
                    let details = format!("via {via}; {what}; try {failures} of {MAX_CHALLENGE_FAILURES}");
                    audit::record(conn, &actor, Action::LoginSecondStepFailed, Some((user_id, &username)), &details)?;
                    Ok(starts_over)
                })
            })
            .await?;
            Ok(SecondStep::Refused { check, starts_over, next_path: pending.next_path })
        }
    }
}

/// Checks the code of a pending sign-in, on the same throttle counters as the password.
pub async fn complete_challenge(
    pool: &DbPool,
    throttle: &Arc<LoginThrottle>,
    factors: &Arc<SecondFactors>,
    attempt: SecondStepAttempt<'_>,
    code: Code,
) -> anyhow::Result<SecondStep> {
    let started = match start_second_step(pool, throttle, &attempt).await? {
        Ok(started) => started,
        Err(answer) => return Ok(answer),
    };
    let (factors, user_id, kind) = (Arc::clone(factors), started.pending.user.id, code.method().as_str());
    let check = db::run(pool, move |conn| -> anyhow::Result<CodeCheck> {
        write_transaction(conn, |conn| factors.check_code(conn, user_id, &code))
    })
    .await?;
    let verdict = match check {
        CodeCheck::Right { method, recovery_codes_left } => Verdict::Right { method, recovery_codes_left },
        CodeCheck::Replayed => Verdict::Wrong { check, what: format!("a code already used ({kind})") },
        CodeCheck::Wrong => Verdict::Wrong { check, what: format!("a wrong code ({kind})") },
    };
    finish_second_step(pool, throttle, started, verdict, attempt.client_ip).await
}

/// The second step with a passkey instead of a code: `ceremony` is the token of the options
/// this pending sign-in asked for. Counted on the same throttle as codes and passwords.
pub async fn complete_with_passkey(
    pool: &DbPool,
    throttle: &Arc<LoginThrottle>,
    passkeys: &Passkeys,
    attempt: SecondStepAttempt<'_>,
    ceremony: &str,
    credential: &PublicKeyCredential,
) -> anyhow::Result<(SecondStep, Option<PasskeyError>)> {
    let started = match start_second_step(pool, throttle, &attempt).await? {
        Ok(started) => started,
        Err(answer) => return Ok((answer, None)),
    };
    let verified = passkeys
        .finish_authentication(pool, ceremony, Purpose::SecondStep, attempt.token, credential, attempt.client_ip)
        .await;
    let (verdict, error) = match verified {
        Ok(used) if used.user.id == started.pending.user.id => {
            (Verdict::Right { method: Method::Passkey(used.key_kind), recovery_codes_left: None }, None)
        }
        outcome => {
            let error = outcome.err().unwrap_or(PasskeyError::Unknown);
            (Verdict::Wrong { check: CodeCheck::Wrong, what: format!("passkey refused: {error}") }, Some(error))
        }
    };
    Ok((finish_second_step(pool, throttle, started, verdict, attempt.client_ip).await?, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_80_bits_and_forgive_case_dashes_and_lookalikes() {
        let (shown, hashes) = new_recovery_codes();
        assert_eq!(shown.len(), RECOVERY_CODES);
        assert_eq!(hashes.len(), RECOVERY_CODES);
        for (code, hash) in shown.iter().zip(&hashes) {
            assert_eq!(code.len(), 19, "{code}");
            let typed = code.to_uppercase().replace('-', " ");
            let Ok(Code::Recovery(normalised)) = Code::parse(&typed, Method::RecoveryCode) else { panic!("{typed}") };
            assert_eq!(&hash_recovery_code(&normalised), hash);
        }
        assert_eq!(parse_recovery_code("ILO0-1111-2222-3333"), Some("1100111122223333".to_owned()));
        assert_eq!(parse_recovery_code("abcd-efgh-jkmn-pqr"), None);
        assert_eq!(parse_recovery_code("abcd-efgh-jkmn-pqru"), None, "u is not in the alphabet");
        assert_eq!(Code::parse_any("123456"), Ok(Code::Totp("123456".to_owned())));
        assert!(Code::parse_any("1234567").is_err());
    }
}
