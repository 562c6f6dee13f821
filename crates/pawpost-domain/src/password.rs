//! Password rules from NIST SP 800-63B-4: a minimum length, a generous maximum, no
//! composition rules, and a blocklist of common and breached passwords, which here is
//! zxcvbn's dictionaries (30,000 common passwords from breach dumps, plus common words
//! and names) together with keyboard patterns, sequences, repeats and the user's own
//! details.
use unicode_normalization::UnicodeNormalization;
use zxcvbn::Score;

/// Shortest password accepted when it is the only factor (NIST SP 800-63B-4 §3.1.1.2).
pub const DEFAULT_MIN_PASSWORD_CHARS: usize = 15;
/// Shortest password accepted once an account has a second factor.
pub const MIN_PASSWORD_CHARS_WITH_SECOND_FACTOR: usize = 8;
/// Longest password accepted; NIST asks for at least 64. The cap bounds hashing work.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Words a password must not be built from, whoever the user is: the service's own names.
pub const SERVICE_WORDS: &[&str] = &[
    "pawpost",
    "cloudpets",
    "cloudpet",
    "spiraltoys",
    "teddy",
    "plush",
];
/// Passwords that zxcvbn scores below this are common, breached, or built from patterns.
const MIN_SCORE: Score = Score::Three;

/// Why a password was refused; each names the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    #[error("rule min_length: the password must have at least {min} characters (it has {actual}); a few unrelated words make a long password that is easy to remember")]
    TooShort { min: usize, actual: usize },
    #[error("rule max_length: the password must have at most {max} characters")]
    TooLong { max: usize },
    #[error("rule blocklist: this password is a common or breached password, a keyboard pattern or repetition, or is built from your own email address or name; choose a few unrelated words instead")]
    Blocklisted,
}

/// The password rules in force on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_chars: usize,
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: DEFAULT_MIN_PASSWORD_CHARS,
            max_chars: MAX_PASSWORD_CHARS,
        }
    }
}

impl PasswordPolicy {
    /// Checks a new password against every rule. `personal` holds the user's own details
    /// (email address and its local part, display name) that the password must not be
    /// built from.
    pub fn check(&self, password: &str, personal: &[&str]) -> Result<(), PasswordRejection> {
        let normalised = normalise(password);
        let chars = normalised.chars().count();
        if chars < self.min_chars {
            return Err(PasswordRejection::TooShort {
                min: self.min_chars,
                actual: chars,
            });
        }
        if chars > self.max_chars {
            return Err(PasswordRejection::TooLong {
                max: self.max_chars,
            });
        }
        let lowered = normalised.to_lowercase();
        let mut context: Vec<String> = SERVICE_WORDS.iter().map(|w| (*w).to_owned()).collect();
        for detail in personal {
            let detail = normalise(detail).to_lowercase();
            // Names and addresses are split so that "rose" from "Grandma Rose" counts too.
            context.extend(
                detail
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|p| p.chars().count() >= 3)
                    .map(str::to_owned),
            );
            if !detail.is_empty() {
                context.push(detail);
            }
        }
        let context_refs: Vec<&str> = context.iter().map(String::as_str).collect();
        // A repetition is only as strong as the part that repeats: judge that part.
        let judged = repeated_unit(&lowered).unwrap_or(lowered);
        // Part of the user's own address or name is no secret, even cut short.
        if context.iter().any(|w| w.contains(judged.as_str()))
            || zxcvbn::zxcvbn(&judged, &context_refs).score() < MIN_SCORE
        {
            return Err(PasswordRejection::Blocklisted);
        }
        Ok(())
    }
}

/// NFKC so that the same password typed on two keyboards hashes the same way.
pub fn normalise(password: &str) -> String {
    password.nfkc().collect()
}

/// The shortest string that, repeated (and cut to length), gives `s`: "qweqweq" -> "qwe".
/// At least three characters must repeat, so that a real repetition is seen.
fn repeated_unit(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    (1..=chars.len().saturating_sub(3))
        .find(|&n| chars.iter().enumerate().all(|(i, c)| *c == chars[i % n]))
        .map(|n| chars[..n].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pw: &str) -> Result<(), PasswordRejection> {
        PasswordPolicy::default().check(
            pw,
            &[
                "margaret.whitfield@example.org",
                "margaret.whitfield",
                "Margaret Whitfield",
            ],
        )
    }

    fn repeat_to(unit: &str, len: usize) -> String {
        unit.chars().cycle().take(len).collect()
    }

    #[test]
    fn the_cloudpets_era_passwords_are_refused() {
        for short in ["123456", "qwe", "cloudpets", "password", "q"] {
            assert!(
                matches!(check(short), Err(PasswordRejection::TooShort { .. })),
                "{short}"
            );
        }
        for unit in [
            "123456",
            "qwe",
            "cloudpets",
            "password",
            "qwerty",
            "margaret.whitfield",
        ] {
            for len in [15, 16, 24, 40] {
                let pw = repeat_to(unit, len);
                assert_eq!(check(&pw), Err(PasswordRejection::Blocklisted), "{pw}");
            }
        }
    }

    #[test]
    fn the_users_own_email_local_part_is_refused() {
        assert_eq!(
            check("margaret.whitfield"),
            Err(PasswordRejection::Blocklisted)
        );
        assert_eq!(
            check("Margaret.Whitfield1"),
            Err(PasswordRejection::Blocklisted)
        );
    }

    #[test]
    fn common_passwords_padded_to_length_are_refused() {
        for pw in [
            "passwordpassword",
            "qwertyuiopasdfgh",
            "abcdefghijklmnop",
            "111111111111111",
            "iloveyouiloveyou",
        ] {
            assert_eq!(check(pw), Err(PasswordRejection::Blocklisted), "{pw}");
        }
    }

    #[test]
    fn a_long_passphrase_without_composition_rules_is_accepted() {
        assert_eq!(check("violet kettle harbour sprocket"), Ok(()));
        assert_eq!(check("lanternfishcobaltmarmalade"), Ok(()));
        // No composition rules: no digits, symbols or capitals needed; 64 characters work.
        let long = "orbit tulip granite whisper saddle comet lantern fjord meadow xyz";
        assert!(long.chars().count() >= 64);
        assert_eq!(check(long), Ok(()));
    }

    #[test]
    fn the_length_limits_are_configurable_and_named() {
        let relaxed = PasswordPolicy {
            min_chars: MIN_PASSWORD_CHARS_WITH_SECOND_FACTOR,
            ..PasswordPolicy::default()
        };
        assert_eq!(relaxed.check("vq7#Lmz!ke2", &[]), Ok(()));
        let too_long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        assert_eq!(
            check(&too_long),
            Err(PasswordRejection::TooLong {
                max: MAX_PASSWORD_CHARS
            })
        );
        let msg = check("short").unwrap_err().to_string();
        assert!(msg.contains("min_length") && msg.contains("15"), "{msg}");
    }
}
