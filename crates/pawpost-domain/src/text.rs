//! Text that one person types and others read: names and email addresses. Characters
//! that draw nothing, or that reorder the text around them, let a name say something other
//! than what it shows ("Gran\u{202e}txt.exe" shows as "Granexe.txt"), or make two addresses
//! that look the same belong to two accounts; they are refused.
use unicode_properties::UnicodeEmoji;
use unicode_security::MixedScript;

/// Whether `c` draws nothing or changes the direction of the text around it: Unicode's
/// default-ignorable code points (zero-width spaces and joiners, bidirectional controls,
/// tags, byte-order marks, fillers, variation selectors) and the line and paragraph
/// separators.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fff8}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

/// An emoji drawn as a picture (not an ASCII digit or `#`, which are emoji too).
fn is_pictograph(c: char) -> bool {
    !c.is_ascii() && c.is_emoji_char_or_emoji_component()
}

/// The first character of a name that hides or reorders text, if any. Emoji keep what
/// they need: a variation selector after an emoji (red heart) and a zero-width joiner
/// between two emoji (a family drawn as one picture).
pub fn hidden_in_name(name: &str) -> Option<char> {
    let chars: Vec<char> = name.chars().collect();
    chars.iter().enumerate().find_map(|(i, &c)| {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let allowed = match c {
            '\u{fe0e}' | '\u{fe0f}' => before.is_some_and(is_pictograph),
            '\u{200d}' => before.is_some_and(is_pictograph) && after.is_some_and(is_pictograph),
            _ => false,
        };
        (is_hidden(c) && !allowed).then_some(c)
    })
}

/// Whether `text` uses letters of one writing system only (UTS #39 single-script: digits
/// and punctuation go with any, and Japanese or Korean mixes count as one). "mum.аlpha"
/// with a Cyrillic "а" is not.
pub fn is_single_script(text: &str) -> bool {
    text.is_single_script()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_overrides_zero_width_and_tag_characters_are_hidden() {
        for name in [
            "Gran\u{202e}txt.exe",
            "Gr\u{200b}an",
            "Gran\u{200d}",
            "Gran\u{2066}",
            "Gran\u{e0067}",
            "\u{feff}Gran",
            "Gr\u{ad}an",
            "Gran\u{2028}Mum",
            "G\u{fe0f}ran",
            "\u{3164}",
        ] {
            assert!(hidden_in_name(name).is_some(), "{name:?} passed");
        }
    }

    #[test]
    fn names_in_any_script_and_with_emoji_are_fine() {
        for name in [
            "Gran",
            "Nana \u{1f475}",
            "The \u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467} family",
            "Gran \u{2764}\u{fe0f}",
            "\u{41b}\u{435}\u{43d}\u{430}",
            "\u{5e1}\u{5d1}\u{5ea}\u{5d0}",
            "\u{304a}\u{3070}\u{3042}\u{3061}\u{3083}\u{3093}",
            "Zo\u{eb} & Lee",
        ] {
            assert_eq!(hidden_in_name(name), None, "{name:?} refused");
        }
    }

    #[test]
    fn latin_mixed_with_cyrillic_or_greek_is_not_one_script() {
        assert!(is_single_script("mum.alpha"));
        assert!(is_single_script("\u{43c}\u{430}\u{43c}\u{430}"));
        assert!(is_single_script("rose-1975_x"));
        assert!(is_single_script("\u{5c71}\u{7530}\u{306f}\u{306a}"));
        assert!(!is_single_script("mum.\u{430}lpha"));
        assert!(!is_single_script("exampl\u{3bf}"));
    }
}
