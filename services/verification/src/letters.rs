//! The letters, in ru (default), kk and en, as text and HTML. The Russian registration letter
//! follows the exam center's own wording from the seed instruction.

use crate::store::Purpose;

/// A letter ready for the outbox. Its `Debug` masks the address and leaves out the text,
/// which carries the code.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Letter {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The trace of the request that queued the letter, for the delivery span's link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl std::fmt::Debug for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letter")
            .field("to", &examreg_domain::mask_email(&self.to))
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// ru, kk or en; anything else falls back to ru.
pub fn locale(tag: &str) -> &'static str {
    let primary = tag
        .split(['-', '_', ',', ';'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match primary.as_str() {
        "kk" => "kk",
        "en" => "en",
        _ => "ru",
    }
}

fn wording(
    purpose: Purpose,
    locale: &str,
) -> (&'static str, &'static str, &'static str, &'static str) {
    // (subject, greeting, lead, footer)
    match (purpose, locale) {
        (Purpose::Registration, "kk") => (
            "ИСО-да тіркелуді растау",
            "Сәлеметсіз бе,",
            "Құрметті пайдаланушы, тіркеуді жалғастыру үшін кодты енгізіңіз:",
            "Код 10 минут жарамды. Егер сіз тіркелмесеңіз, бұл хатты елемеңіз.",
        ),
        (Purpose::Registration, "en") => (
            "Confirm your registration in ISO",
            "Hello,",
            "Dear user, to continue your registration, enter the code:",
            "The code is valid for 10 minutes. If you did not register, ignore this letter.",
        ),
        (Purpose::Registration, _) => (
            "Подтверждение регистрации в ИСО",
            "Здравствуйте,",
            "Уважаемый пользователь для продолжения регистрации, введите код:",
            "Код действует 10 минут. Если вы не регистрировались, проигнорируйте это письмо.",
        ),
        (Purpose::Recovery, "kk") => (
            "ИСО-да құпиясөзді қалпына келтіру",
            "Сәлеметсіз бе,",
            "Құрметті пайдаланушы, құпиясөзді қалпына келтіру үшін кодты енгізіңіз:",
            "Код 10 минут жарамды. Егер сіз сұрамасаңыз, бұл хатты елемеңіз.",
        ),
        (Purpose::Recovery, "en") => (
            "Password recovery in ISO",
            "Hello,",
            "Dear user, to reset your password, enter the code:",
            "The code is valid for 10 minutes. If you did not ask for it, ignore this letter.",
        ),
        (Purpose::Recovery, _) => (
            "Восстановление пароля в ИСО",
            "Здравствуйте,",
            "Уважаемый пользователь для восстановления пароля, введите код:",
            "Код действует 10 минут. Если вы не запрашивали код, проигнорируйте это письмо.",
        ),
    }
}

/// Builds the letter carrying `code` for `purpose` in `locale`.
pub fn code_letter(to: &str, purpose: Purpose, locale_tag: &str, code: &str) -> Letter {
    let lang = locale(locale_tag);
    let (subject, greeting, lead, footer) = wording(purpose, lang);
    let text = format!("{greeting} {lead} {code}\n\n{footer}\n");
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
         <body style=\"font-family:sans-serif\"><p>{greeting}</p><p>{lead}</p>\
         <p style=\"font-size:28px;letter-spacing:6px;font-weight:bold\">{code}</p>\
         <p style=\"color:#666\">{footer}</p></body></html>"
    );
    Letter {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
        traceparent: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_russian_registration_letter_follows_the_seed() {
        let letter = code_letter("a@mail.kz", Purpose::Registration, "", "301369");
        assert_eq!(letter.subject, "Подтверждение регистрации в ИСО");
        assert!(letter.text.starts_with(
            "Здравствуйте, Уважаемый пользователь для продолжения регистрации, введите код: 301369"
        ));
        assert!(letter.html.contains("301369"));
    }

    #[test]
    fn picks_the_language_from_a_tag() {
        assert_eq!(locale("kk-KZ"), "kk");
        assert_eq!(locale("en_US"), "en");
        assert_eq!(locale("de"), "ru");
        let kk = code_letter("a@mail.kz", Purpose::Recovery, "kk", "000001");
        assert_eq!(kk.subject, "ИСО-да құпиясөзді қалпына келтіру");
    }

    #[test]
    fn debug_output_masks_the_address_and_leaves_out_the_code() {
        let letter = code_letter("aigerim@example.kz", Purpose::Registration, "ru", "493027");
        let shown = format!("{letter:?}");
        assert!(!shown.contains("aigerim@example.kz"), "{shown}");
        assert!(!shown.contains("493027"), "{shown}");
    }
}
