use super::ValidationError;

/// An IANA time zone ("Europe/Paris"), in which a person reads the times the pages show.
/// Stored and carried in tokens (the OpenID `zoneinfo` claim) by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub const UTC: TimeZone = TimeZone(chrono_tz::Tz::UTC);

    /// Only the zone names the list offers (`choices`), spelled exactly.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let input = input.trim();
        Self::choices()
            .find(|name| *name == input)
            .and_then(|name| name.parse().ok())
            .map(TimeZone)
            .ok_or_else(|| ValidationError::new("Choose a time zone from the list"))
    }

    /// A name read back from the database or a token; anything unknown reads as UTC.
    pub fn from_stored(stored: &str) -> Self {
        stored.parse().map(TimeZone).unwrap_or_default()
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    /// The zones a person picks from: UTC, then every "Area/Place" zone of the IANA database
    /// (its old aliases such as "US/Eastern" and its fixed offsets left out), alphabetically.
    pub fn choices() -> impl Iterator<Item = &'static str> {
        const AREAS: [&str; 10] = [
            "Africa",
            "America",
            "Antarctica",
            "Arctic",
            "Asia",
            "Atlantic",
            "Australia",
            "Europe",
            "Indian",
            "Pacific",
        ];
        std::iter::once("UTC").chain(
            chrono_tz::TZ_VARIANTS
                .iter()
                .map(|tz| tz.name())
                .filter(|name| name.split_once('/').is_some_and(|(area, _)| AREAS.contains(&area))),
        )
    }
}

impl std::fmt::Display for TimeZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_zone_names_parse_and_stored_ones_fall_back_to_utc() {
        assert_eq!(TimeZone::parse("Europe/Paris").unwrap().name(), "Europe/Paris");
        assert_eq!(TimeZone::parse(" UTC ").unwrap(), TimeZone::UTC);
        for bad in ["europe/paris", "Mars/Olympus", "", "US/Eastern", "Etc/GMT+3", "Europe/Paris/x"] {
            assert!(TimeZone::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(TimeZone::from_stored("Nowhere/Land"), TimeZone::UTC);
        assert!(TimeZone::choices().count() > 300);
        assert!(TimeZone::choices().any(|name| name == "America/Argentina/Buenos_Aires"));
    }
}
