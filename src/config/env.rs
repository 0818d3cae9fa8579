//! The environment as the settings read it: each variable named once, where it is read; a
//! blank value is unset; one grammar for switches (`on`/`off`, also `true`/`false`, `1`/`0`)
//! and for durations (`90s`, `15m`, `8h`, `7d`); every error names its variable.
use std::cell::RefCell;
use std::time::Duration;

use anyhow::{anyhow, bail};

/// The log filter (read by `telemetry`, at start-up, before the settings).
pub const LOG_FILTER: &str = "PORTCULLIS_LOG";

/// Reads settings through a lookup (the process environment, or a test's own), remembering
/// which names were asked for (`.env.example` must list them all).
pub(super) struct Env<F> {
    lookup: F,
    asked: RefCell<Vec<&'static str>>,
}

/// An inclusive bound of a duration setting, with the words its error uses ("1m").
pub(super) struct Bound(pub Duration, pub &'static str);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub(super) fn new(lookup: F) -> Self {
        Self { lookup, asked: RefCell::new(Vec::new()) }
    }

    /// The value as given, unless unset or blank.
    pub(super) fn text(&self, name: &'static str) -> Option<String> {
        self.asked.borrow_mut().push(name);
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    /// The value parsed by `parse` (whose errors should name the variable), or `None`.
    pub(super) fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        self.text(name).map(|raw| parse(&raw)).transpose()
    }

    /// `on` or `off` (`default` when unset).
    pub(super) fn switch(&self, name: &'static str, default: bool) -> anyhow::Result<bool> {
        match self.text(name).map(|raw| raw.trim().to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("on" | "true" | "1" | "yes") => Ok(true),
            Some("off" | "false" | "0" | "no") => Ok(false),
            Some(other) => bail!("{name} must be on or off (got {other:?})"),
        }
    }

    /// A duration within `min..=max` (`default` when unset).
    pub(super) fn duration(
        &self,
        name: &'static str,
        default: Duration,
        min: Bound,
        max: Bound,
    ) -> anyhow::Result<Duration> {
        let Some(raw) = self.text(name) else { return Ok(default) };
        parse_duration(name, &raw, min, max)
    }

    /// A whole number within `range` (`default` when unset).
    pub(super) fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> anyhow::Result<T>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.text(name) else { return Ok(default) };
        match raw.trim().parse::<T>() {
            Ok(value) if range.contains(&value) => Ok(value),
            _ => bail!("{name} must be a whole number from {} to {} (got {raw:?})", range.start(), range.end()),
        }
    }

    /// Every name asked for so far, in order, once each.
    pub(super) fn asked(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for name in self.asked.borrow().iter() {
            if !names.contains(name) {
                names.push(*name);
            }
        }
        names
    }
}

/// `raw` as a duration of `name` within `min..=max`.
pub(super) fn parse_duration(
    name: &str,
    raw: &str,
    Bound(min, min_text): Bound,
    Bound(max, max_text): Bound,
) -> anyhow::Result<Duration> {
    let value = humantime::parse_duration(raw.trim())
        .map_err(|_| anyhow!("{name} must be a duration such as 15m, 8h or 7d (got {raw:?})"))?;
    if value < min || value > max {
        bail!("{name} must be between {min_text} and {max_text} (got {raw})");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env::new(move |name: &str| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned()))
    }

    #[test]
    fn switches_durations_and_numbers_share_one_grammar_and_name_their_variable() {
        let env =
            env(&[("A", "on"), ("B", "OFF"), ("C", "maybe"), ("D", "90s"), ("E", "soon"), ("F", "  "), ("G", "7")]);
        assert!(env.switch("A", false).unwrap());
        assert!(!env.switch("B", true).unwrap());
        assert!(env.switch("C", false).unwrap_err().to_string().contains("C must be on or off"));
        assert!(env.switch("F", true).unwrap(), "blank is unset");
        let (min, max) = (|| Bound(Duration::from_secs(1), "1s"), || Bound(Duration::from_secs(3600), "1h"));
        assert_eq!(env.duration("D", Duration::ZERO, min(), max()).unwrap(), Duration::from_secs(90));
        assert!(
            env.duration("E", Duration::ZERO, min(), max()).unwrap_err().to_string().contains("E must be a duration")
        );
        assert_eq!(env.number("G", 1, 1..=9).unwrap(), 7);
        assert!(env.number("G", 1, 1..=5).unwrap_err().to_string().contains("G must be a whole number from 1 to 5"));
        assert_eq!(env.asked(), ["A", "B", "C", "F", "D", "E", "G"]);
    }
}
