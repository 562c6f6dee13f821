//! The language the simulated toy speaks: English, German or Spanish, chosen with
//! `pawpost toy --language`. Digits (a pairing code, the number to confirm, the safety
//! number) are spoken one at a time in every language.

use std::fmt;
use std::str::FromStr;

use pawpost_toy::Prompt;

use crate::speech::{prompt_text, spaced_digits};

/// A language the toy speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Language {
    /// English (the default).
    #[default]
    En,
    /// German.
    De,
    /// Spanish.
    Es,
}

impl Language {
    /// Every language, in the order `--help` lists them.
    pub const ALL: [Language; 3] = [Language::En, Language::De, Language::Es];

    /// The language's code: `en`, `de` or `es` (also the `espeak-ng` voice).
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
            Language::Es => "es",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Language {
    type Err = String;

    /// `en`, `de` or `es`; a region is allowed and ignored (`de-AT` is German).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let primary = s.split(['-', '_']).next().unwrap_or_default();
        Language::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
            .ok_or_else(|| format!("the toy speaks en, de or es, not {s:?}"))
    }
}

/// What the toy says for a prompt in `language`.
pub fn prompt_text_in(language: Language, prompt: Prompt) -> String {
    match language {
        Language::En => prompt_text(prompt),
        Language::De => german(prompt),
        Language::Es => spanish(prompt),
    }
}

fn german(prompt: Prompt) -> String {
    match prompt {
        Prompt::PairingStarted => "lass uns deine Familie finden".into(),
        Prompt::PairingCode(code) => spaced_digits(&code.digits()),
        Prompt::ConfirmPairing(number) => format!(
            "wenn deine App {} zeigt, drück meine Pfote",
            spaced_digits(&number.digits())
        ),
        Prompt::Paired => "hurra, ich habe meine Familie gefunden".into(),
        Prompt::PairingFailed => {
            "ich konnte meine Familie nicht finden; halte meine Pfote, dann versuchen wir es noch einmal".into()
        }
        Prompt::AlreadyPaired => "ich habe schon eine Familie".into(),
        Prompt::NotPaired => {
            "ich habe noch keine Familie; halte meine Pfote, dann suchen wir sie".into()
        }
        Prompt::Unpaired => "tschüss, Familie".into(),
        Prompt::NoMessages => "keine neuen Nachrichten".into(),
        Prompt::Recording => "ich höre zu".into(),
        Prompt::RecordingFailed => "hoppla, diese Nachricht hat nicht geklappt".into(),
        Prompt::Sent => "Nachricht gesendet".into(),
        Prompt::QuietHours => "pst, jetzt ist Ruhezeit".into(),
        Prompt::TryLater => "lass es uns später noch einmal versuchen".into(),
        Prompt::Forgotten => {
            "Ich habe alles vergessen. Ich bin bereit, neu mit einer Familie verbunden zu werden."
                .into()
        }
        Prompt::LeftFamily => {
            "Ich habe meine Familie verlassen. Ich kann wieder für eine Familie eingerichtet werden."
                .into()
        }
        Prompt::SafetyNumber(number) => format!(
            "meine Sicherheitsnummer ist {}",
            spaced_digits(&number.digits())
        ),
        Prompt::MessageFrom(name) => format!("eine Nachricht von {name}"),
    }
}

fn spanish(prompt: Prompt) -> String {
    match prompt {
        Prompt::PairingStarted => "vamos a buscar a tu familia".into(),
        Prompt::PairingCode(code) => spaced_digits(&code.digits()),
        Prompt::ConfirmPairing(number) => format!(
            "si tu aplicación muestra {}, apriétame la pata",
            spaced_digits(&number.digits())
        ),
        Prompt::Paired => "¡bien!, encontré a mi familia".into(),
        Prompt::PairingFailed => {
            "no pude encontrar a mi familia; mantén apretada mi pata para intentarlo otra vez"
                .into()
        }
        Prompt::AlreadyPaired => "ya tengo una familia".into(),
        Prompt::NotPaired => {
            "todavía no tengo familia; mantén apretada mi pata para encontrarla".into()
        }
        Prompt::Unpaired => "adiós, familia".into(),
        Prompt::NoMessages => "no hay mensajes nuevos".into(),
        Prompt::Recording => "te escucho".into(),
        Prompt::RecordingFailed => "uy, ese mensaje no funcionó".into(),
        Prompt::Sent => "mensaje enviado".into(),
        Prompt::QuietHours => "chis, es hora de silencio".into(),
        Prompt::TryLater => "probemos otra vez más tarde".into(),
        Prompt::Forgotten => {
            "Lo he olvidado todo. Estoy listo para unirme a una familia otra vez.".into()
        }
        Prompt::LeftFamily => {
            "Dejé a mi familia. Me pueden configurar para una familia otra vez.".into()
        }
        Prompt::SafetyNumber(number) => format!(
            "mi número de seguridad es {}",
            spaced_digits(&number.digits())
        ),
        Prompt::MessageFrom(name) => format!("un mensaje de {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pawpost_toy::{PairingCode, SafetyNumber, SpokenName};

    /// Every prompt, with sample numbers and a name.
    fn every_prompt() -> Vec<Prompt> {
        vec![
            Prompt::PairingStarted,
            Prompt::PairingCode(PairingCode::from_number(48_190).unwrap()),
            Prompt::ConfirmPairing(pawpost_toy::ConfirmationNumber::from_number(427).unwrap()),
            Prompt::Paired,
            Prompt::PairingFailed,
            Prompt::AlreadyPaired,
            Prompt::NotPaired,
            Prompt::Unpaired,
            Prompt::NoMessages,
            Prompt::Recording,
            Prompt::RecordingFailed,
            Prompt::Sent,
            Prompt::QuietHours,
            Prompt::TryLater,
            Prompt::Forgotten,
            Prompt::LeftFamily,
            Prompt::SafetyNumber(SafetyNumber(5_107)),
            Prompt::MessageFrom(SpokenName::new("Oma").unwrap()),
        ]
    }

    #[test]
    fn languages_are_parsed_by_code_with_or_without_a_region() {
        assert_eq!("de".parse(), Ok(Language::De));
        assert_eq!("es-MX".parse(), Ok(Language::Es));
        assert_eq!("EN".parse(), Ok(Language::En));
        assert!("fr"
            .parse::<Language>()
            .unwrap_err()
            .contains("en, de or es"));
        assert_eq!(Language::default(), Language::En);
        for l in Language::ALL {
            assert_eq!(l.to_string().parse(), Ok(l));
        }
    }

    #[test]
    fn english_is_the_toys_own_words() {
        for p in every_prompt() {
            assert_eq!(prompt_text_in(Language::En, p), prompt_text(p));
        }
    }

    #[test]
    fn german_and_spanish_say_every_prompt_in_their_own_words_with_the_same_digits_and_name() {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        for language in [Language::De, Language::Es] {
            for p in every_prompt() {
                let english = prompt_text(p);
                let said = prompt_text_in(language, p);
                assert_eq!(digits(&said), digits(&english), "{language} {p:?}: {said}");
                if english.chars().any(char::is_alphabetic) {
                    assert_ne!(said, english, "{language} {p:?} is still English");
                }
                if let Prompt::MessageFrom(name) = p {
                    assert!(said.ends_with(name.as_str()), "{said}");
                }
            }
        }
        assert_eq!(
            prompt_text_in(Language::De, Prompt::SafetyNumber(SafetyNumber(5_107))),
            "meine Sicherheitsnummer ist 0 0 5 1 0 7"
        );
        assert_eq!(
            prompt_text_in(Language::Es, Prompt::QuietHours),
            "chis, es hora de silencio"
        );
    }
}
