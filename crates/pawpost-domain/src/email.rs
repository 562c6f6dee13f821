//! Email addresses, normalised once at the edge so that one person has one account.
use serde::Serialize;
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// Longest address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest local part accepted (RFC 5321).
pub const MAX_LOCAL_PART_LEN: usize = 64;

/// A normalised email address: trimmed, NFKC, lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the email address is empty: enter the address you read your mail at")]
    Empty,
    #[error("the email address is longer than {MAX_EMAIL_LEN} characters")]
    TooLong,
    #[error("the email address must look like name@example.org")]
    Malformed,
    #[error("the email address contains an invisible or text-direction character (U+{0:04X}): type the address by hand instead of pasting it")]
    Invisible(u32),
    #[error("the email address mixes letters of different alphabets (such as Latin and Cyrillic) in one part, so it could pass for another address: type it with the letters of one alphabet")]
    MixedScripts,
}

impl Email {
    /// An address a person typed: its shape, and no hidden characters or look-alike
    /// letters from another alphabet.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = Self::from_stored(raw)?;
        let (local, domain) = email.0.rsplit_once('@').ok_or(EmailError::Malformed)?;
        if let Some(c) = email.0.chars().find(|&c| crate::text::is_hidden(c)) {
            return Err(EmailError::Invisible(u32::from(c)));
        }
        // Each part on its own: a Latin name at a Cyrillic domain is a real address.
        if !std::iter::once(local)
            .chain(domain.split('.'))
            .all(crate::text::is_single_script)
        {
            return Err(EmailError::MixedScripts);
        }
        Ok(email)
    }

    /// An address read back from storage: only its shape is checked, so that an account
    /// made before a rule was added still loads.
    pub fn from_stored(raw: &str) -> Result<Self, EmailError> {
        let normalised: String = raw.trim().nfkc().collect::<String>().to_lowercase();
        if normalised.is_empty() {
            return Err(EmailError::Empty);
        }
        if normalised.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = normalised.rsplit_once('@').ok_or(EmailError::Malformed)?;
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || c == '@';
        if local.is_empty()
            || local.len() > MAX_LOCAL_PART_LEN
            || local.chars().any(bad_char)
            || domain.is_empty()
            || domain.chars().any(bad_char)
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(EmailError::Malformed);
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`, which a password must not be built from.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_differing_in_case_and_spaces_are_the_same_account() {
        let a = Email::parse("  Grandma.Rose@Example.ORG ").unwrap();
        let b = Email::parse("grandma.rose@example.org").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.local_part(), "grandma.rose");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "rose",
            "rose@",
            "@example.org",
            "rose@example",
            "ro se@example.org",
            "rose@@example.org",
            "rose@example..org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.org", "a".repeat(300));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn hidden_characters_are_refused_wherever_they_are() {
        for (bad, c) in [
            ("mum.alpha\u{200b}@example.org", 0x200b),
            ("\u{202e}mum.alpha@example.org", 0x202e),
            ("mum\u{ad}.alpha@example.org", 0xad),
            ("mum.alpha@example.org\u{e0041}", 0xe0041),
            ("mum.alpha@exa\u{2060}mple.org", 0x2060),
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Invisible(c)), "{bad:?}");
        }
    }

    #[test]
    fn look_alike_letters_from_another_alphabet_are_refused() {
        for bad in [
            "mum.\u{430}lpha@example.org",
            "m\u{3bf}m@example.org",
            "mum@ex\u{430}mple.org",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::MixedScripts), "{bad:?}");
        }
        for good in [
            "\u{43c}\u{430}\u{43c}\u{430}@example.org",
            "rose@\u{43f}\u{43e}\u{447}\u{442}\u{430}.\u{440}\u{444}",
            "rose.1975+toys@example.org",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn an_address_stored_before_these_rules_still_loads() {
        let old = "mum.\u{430}lpha@example.org";
        assert_eq!(Email::from_stored(old).unwrap().as_str(), old);
        assert_eq!(Email::from_stored("rose"), Err(EmailError::Malformed));
    }
}
