//! The letters, in ru (default), kk and en, as text and HTML. The Russian registration letter
//! follows the exam center's own wording from the seed instruction.

use crate::store::Purpose;
use std::time::Duration;

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
            "Код {minutes} жарамды. Егер сіз тіркелмесеңіз, бұл хатты елемеңіз.",
        ),
        (Purpose::Registration, "en") => (
            "Confirm your registration in ISO",
            "Hello,",
            "Dear user, to continue your registration, enter the code:",
            "The code is valid for {minutes}. If you did not register, ignore this letter.",
        ),
        (Purpose::Registration, _) => (
            "Подтверждение регистрации в ИСО",
            "Здравствуйте,",
            "Уважаемый пользователь для продолжения регистрации, введите код:",
            "Код действует {minutes}. Если вы не регистрировались, проигнорируйте это письмо.",
        ),
        (Purpose::Recovery, "kk") => (
            "ИСО-да құпиясөзді қалпына келтіру",
            "Сәлеметсіз бе,",
            "Құрметті пайдаланушы, құпиясөзді қалпына келтіру үшін кодты енгізіңіз:",
            "Код {minutes} жарамды. Егер сіз сұрамасаңыз, бұл хатты елемеңіз.",
        ),
        (Purpose::Recovery, "en") => (
            "Password recovery in ISO",
            "Hello,",
            "Dear user, to reset your password, enter the code:",
            "The code is valid for {minutes}. If you did not ask for it, ignore this letter.",
        ),
        (Purpose::Recovery, _) => (
            "Восстановление пароля в ИСО",
            "Здравствуйте,",
            "Уважаемый пользователь для восстановления пароля, введите код:",
            "Код действует {minutes}. Если вы не запрашивали код, проигнорируйте это письмо.",
        ),
    }
}

/// "10 минут", "1 minute": how long a code lives, in whole minutes (rounded up, at least one),
/// as the footer of `lang` says it.
fn minutes(lang: &str, ttl: Duration) -> String {
    let n = ttl.as_secs().div_ceil(60).max(1);
    match lang {
        "en" if n == 1 => "1 minute".to_owned(),
        "en" => format!("{n} minutes"),
        // Kazakh does not inflect the noun after a numeral.
        "kk" => format!("{n} минут"),
        _ => {
            let word = match (n % 10, n % 100) {
                (_, 11..=14) => "минут",
                (1, _) => "минуту",
                (2..=4, _) => "минуты",
                _ => "минут",
            };
            format!("{n} {word}")
        }
    }
}

/// Builds the letter carrying `code` for `purpose` in `locale`, for a code that lives `ttl`.
pub fn code_letter(
    to: &str,
    purpose: Purpose,
    locale_tag: &str,
    code: &str,
    ttl: Duration,
) -> Letter {
    let lang = locale(locale_tag);
    let (subject, greeting, lead, footer) = wording(purpose, lang);
    let footer = footer.replace("{minutes}", &minutes(lang, ttl));
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

/// A letter without a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A registration with this address was refused: an account already holds its IIN,
    /// passport number or email. The letter never says which of them, so it is no oracle.
    AccountExists,
}

fn notice_wording(notice: Notice, locale: &str) -> (&'static str, [&'static str; 5]) {
    // (subject, [greeting, what happened, if it is yours, if someone took your IIN, footer]);
    // `{support}` is the support desk's contact.
    match (notice, locale) {
        (Notice::AccountExists, "kk") => (
            "ИСО-да тіркелгі бұрыннан бар",
            [
                "Сәлеметсіз бе,",
                "осы поштамен ИСО-да тіркелу әрекеті жасалды, бірақ көрсетілген ЖСН (немесе паспорт) не осы пошта бойынша тіркелгі бұрыннан бар.",
                "Егер бұл сіздің тіркелгіңіз болса, кіріңіз немесе құпиясөзді қалпына келтіріңіз: кіру бетінде «Құпиясөзді ұмыттыңыз ба?» сілтемесін басып, ЖСН-ды немесе поштаны енгізіңіз.",
                "Егер сіздің ЖСН-ды басқа біреу тіркеген болса, жеке басыңызды куәландыратын құжатпен қолдау қызметіне хабарласыңыз: {support}. Тіркелгі тексеріліп, сізге қайтарылады.",
                "Егер сіз тіркелмесеңіз, бұл хатты елемеңіз.",
            ],
        ),
        (Notice::AccountExists, "en") => (
            "An account already exists in ISO",
            [
                "Hello,",
                "someone tried to register in ISO with this email, but an account with the given IIN (or passport number) or with this email already exists.",
                "If the account is yours, log in or recover the password: on the login page choose “Forgot password” and enter your IIN or this email.",
                "If someone else registered your IIN, contact the support desk with your ID document: {support}. They will check the account and give it back to you.",
                "If you did not try to register, ignore this letter.",
            ],
        ),
        (Notice::AccountExists, _) => (
            "Учётная запись в ИСО уже существует",
            [
                "Здравствуйте,",
                "с этой почтой пытались зарегистрироваться в ИСО, но учётная запись с указанным ИИН (или паспортом) или с этой почтой уже существует.",
                "Если это ваша учётная запись, войдите или восстановите пароль: на странице входа нажмите «Забыли пароль» и укажите ИИН или эту почту.",
                "Если ваш ИИН зарегистрировал кто-то другой, обратитесь в службу поддержки с удостоверением личности: {support}. Учётную запись проверят и вернут вам.",
                "Если вы не регистрировались, проигнорируйте это письмо.",
            ],
        ),
    }
}

/// Builds the letter for `notice` in `locale`; `support` is how to reach the support desk.
pub fn notice_letter(to: &str, notice: Notice, locale_tag: &str, support: &str) -> Letter {
    let lang = locale(locale_tag);
    let (subject, lines) = notice_wording(notice, lang);
    let [greeting, what, yours, taken, footer] = lines.map(|l| l.replace("{support}", support));
    let text = format!("{greeting} {what}\n\n{yours}\n\n{taken}\n\n{footer}\n");
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
         <body style=\"font-family:sans-serif\"><p>{greeting} {what}</p><p>{yours}</p><p>{taken}</p>\
         <p style=\"color:#666\">{footer}</p></body></html>",
        greeting = html_escape(&greeting),
        what = html_escape(&what),
        yours = html_escape(&yours),
        taken = html_escape(&taken),
        footer = html_escape(&footer),
    );
    Letter {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
        traceparent: None,
    }
}

/// The support contact comes from config: escaped before it goes into HTML.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: Duration = Duration::from_secs(600);

    #[test]
    fn the_footer_names_the_codes_configured_lifetime() {
        let say = |lang: &str, secs: u64| {
            code_letter(
                "a@mail.kz",
                Purpose::Registration,
                lang,
                "301369",
                Duration::from_secs(secs),
            )
            .text
        };
        assert!(say("ru", 600).contains("Код действует 10 минут."));
        assert!(say("ru", 60).contains("Код действует 1 минуту."));
        assert!(say("ru", 180).contains("Код действует 3 минуты."));
        assert!(say("ru", 660).contains("Код действует 11 минут."));
        assert!(say("ru", 1260).contains("Код действует 21 минуту."));
        assert!(say("kk", 300).contains("Код 5 минут жарамды."));
        assert!(say("en", 90).contains("valid for 2 minutes."));
        assert!(say("en", 5).contains("valid for 1 minute."));
        assert!(!say("en", 600).contains("{minutes}"));
    }

    #[test]
    fn the_russian_registration_letter_follows_the_seed() {
        let letter = code_letter("a@mail.kz", Purpose::Registration, "", "301369", TEN);
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
        let kk = code_letter("a@mail.kz", Purpose::Recovery, "kk", "000001", TEN);
        assert_eq!(kk.subject, "ИСО-да құпиясөзді қалпына келтіру");
    }

    #[test]
    fn the_account_exists_notice_names_recovery_and_support_in_every_language() {
        for (tag, forgot) in [
            ("ru", "Забыли пароль"),
            ("kk", "Құпиясөзді ұмыттыңыз ба?"),
            ("en", "Forgot password"),
        ] {
            let letter = notice_letter(
                "a@mail.kz",
                Notice::AccountExists,
                tag,
                "help@center.kz, +7 727 000 00 00",
            );
            for part in [letter.text.as_str(), letter.html.as_str()] {
                assert!(part.contains(forgot), "{tag}: {part}");
                assert!(
                    part.contains("help@center.kz, +7 727 000 00 00"),
                    "{tag}: {part}"
                );
                assert!(!part.contains("{support}"), "{tag}: {part}");
            }
        }
        let html = notice_letter("a@mail.kz", Notice::AccountExists, "en", "<b>desk</b>").html;
        assert!(html.contains("&lt;b&gt;desk&lt;/b&gt;"), "{html}");
    }

    #[test]
    fn debug_output_masks_the_address_and_leaves_out_the_code() {
        let letter = code_letter(
            "aigerim@example.kz",
            Purpose::Registration,
            "ru",
            "493027",
            TEN,
        );
        let shown = format!("{letter:?}");
        assert!(!shown.contains("aigerim@example.kz"), "{shown}");
        assert!(!shown.contains("493027"), "{shown}");
    }
}
