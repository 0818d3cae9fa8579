//! What someone typed to create an account or choose a password, checked field by field.
use secrecy::SecretString;

use crate::db::users::User;
use crate::domain::{DisplayName, Email, NewPassword, Role, Username, ValidationError};

/// What someone typed to create an account, before any checks.
pub struct AccountInput<'a> {
    pub username: &'a str,
    pub email: &'a str,
    /// Empty means "use the username".
    pub display_name: &'a str,
    pub role: &'a str,
    pub password: SecretString,
}

/// A new account whose every field has been checked.
pub struct ValidAccount {
    pub username: Username,
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub password: NewPassword,
}

/// Field name and message, in form order, so a page can show each beside its field.
#[derive(Debug, Default)]
pub struct FieldErrors(pub Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// The message for `field`, or "" (templates test for emptiness).
    pub fn get(&self, field: &str) -> &str {
        self.0.iter().find(|(name, _)| *name == field).map_or("", |(_, message)| message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn first_field(&self) -> &str {
        self.0.first().map_or("", |(field, _)| field)
    }

    /// Collects a parse result's error under `field`, keeping the value when it parsed.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, ValidationError>) -> Option<T> {
        result.map_err(|error| self.add(field, error.0)).ok()
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|(field, message)| format!("{field}: {message}")).collect();
        f.write_str(&lines.join("; "))
    }
}

impl std::error::Error for FieldErrors {}

impl ValidAccount {
    pub fn parse(input: AccountInput<'_>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut check = |field: &'static str, result: Result<(), ValidationError>| {
            if let Err(error) = result {
                errors.0.push((field, error.0));
            }
        };
        let username = Username::parse(input.username);
        check("username", username.as_ref().map(drop).map_err(Clone::clone));
        let email = Email::parse(input.email);
        check("email", email.as_ref().map(drop).map_err(Clone::clone));
        let display_name = if input.display_name.trim().is_empty() {
            DisplayName::parse(input.username)
        } else {
            DisplayName::parse(input.display_name)
        };
        check("display_name", display_name.as_ref().map(drop).map_err(Clone::clone));
        let role = Role::parse(input.role);
        check("role", role.as_ref().map(drop).map_err(Clone::clone));
        let password = NewPassword::parse(input.password, &[input.username, input.email, input.display_name]);
        let password_error = password.as_ref().err().cloned();
        check("password", password_error.map_or(Ok(()), Err));
        match (username, email, display_name, role, password) {
            (Ok(username), Ok(email), Ok(display_name), Ok(role), Ok(password)) if errors.0.is_empty() => {
                Ok(Self { username, email, display_name, role, password })
            }
            _ => Err(errors),
        }
    }
}

/// The checks every new password passes: typed twice alike, long and uncommon enough (and not
/// built from the account's own names). Messages go to `new_password` / `confirm_password`.
pub fn check_new_password(user: &User, new: &str, confirm: &str, errors: &mut FieldErrors) -> Option<NewPassword> {
    let parsed = errors.check(
        "new_password",
        NewPassword::parse(SecretString::from(new), &[&user.username, &user.email, &user.display_name]),
    );
    if parsed.is_some() && new != confirm {
        errors.add("confirm_password", "The two passwords are not the same");
        return None;
    }
    parsed
}

/// "45 seconds", "1 minute", "3 minutes" (rounded up).
pub fn wait_phrase(wait: std::time::Duration) -> String {
    match wait.as_secs() {
        0..=1 => "a second".to_owned(),
        seconds @ 2..=59 => format!("{seconds} seconds"),
        60 => "1 minute".to_owned(),
        seconds => format!("{} minutes", seconds.div_ceil(60)),
    }
}

/// A password to hand over once: 16 characters from an alphabet without look-alikes,
/// about 80 bits, in groups of four.
pub fn generate_one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let bytes = crate::random::bytes::<16>();
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    chars.chunks(4).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(username: &'a str, email: &'a str, password: &str) -> AccountInput<'a> {
        AccountInput { username, email, display_name: "", role: "user", password: SecretString::from(password) }
    }

    #[test]
    fn a_good_account_parses_and_defaults_the_display_name() {
        let account = ValidAccount::parse(input("Alice", "alice@example.com", "violet tractor sings")).unwrap();
        assert_eq!(account.username.as_str(), "alice");
        assert_eq!(account.display_name.as_str(), "Alice");
    }

    #[test]
    fn one_time_passwords_are_long_random_and_acceptable_as_passwords() {
        let first = generate_one_time_password();
        assert_eq!(first.len(), 19);
        assert_ne!(first, generate_one_time_password());
        assert!(NewPassword::parse(SecretString::from(first), &[]).is_ok());
    }

    #[test]
    fn every_bad_field_is_reported_in_form_order() {
        let errors =
            ValidAccount::parse(AccountInput { role: "root", ..input("a", "nope", "password") }).err().unwrap();
        let fields: Vec<_> = errors.0.iter().map(|(field, _)| *field).collect();
        assert_eq!(fields, ["username", "email", "role", "password"]);
    }
}
