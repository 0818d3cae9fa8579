//! What searching compares: text folded to lower case without accents, so "García", "GARCIA"
//! and "garcia" are one, on both backends alike.
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case, compatibility-decomposed, combining marks (accents) dropped.
pub fn fold(text: &str) -> String {
    text.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect()
}

/// What a user is found by: username, e-mail and display name, folded, one field per line.
pub fn user_search_text(username: &str, email: &str, display_name: &str) -> String {
    fold(&format!("{username}\n{email}\n{display_name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_case_fold_away() {
        assert_eq!(fold("García"), "garcia");
        assert_eq!(fold("ÅSA Ünal"), "asa unal");
        assert_eq!(fold("ﬁle"), "file", "compatibility forms too");
        assert!(user_search_text("ann", "ann@example.org", "Ann García").contains("garcia"));
    }
}
