//! The letters, in ru (default), kk and en, as text and HTML, from templates the exam center
//! owns: `<letter>.<language>.txt` in `VERIFICATION_LETTERS_DIR`, or the ones in
//! `services/verification/letters/` compiled in. A template is the subject, an empty line,
//! and paragraphs separated by empty lines; `{code}`, `{minutes}` (the code's configured
//! lifetime, in words) and `{support}` (the support desk's contact) are filled in. The Russian
//! registration letter follows the exam center's own wording from the seed instruction.

use crate::store::Purpose;
use examreg_kit::texts;
use std::collections::HashMap;
use std::path::Path;
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

/// Which letter a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Code(Purpose),
    Notice(Notice),
}

impl Kind {
    const ALL: [Kind; 3] = [
        Kind::Code(Purpose::Registration),
        Kind::Code(Purpose::Recovery),
        Kind::Notice(Notice::AccountExists),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Code(Purpose::Registration) => "code-registration",
            Self::Code(Purpose::Recovery) => "code-recovery",
            Self::Notice(Notice::AccountExists) => "account-exists",
        }
    }

    /// The placeholders this letter must carry (and the only ones it may).
    fn placeholders(self) -> &'static [&'static str] {
        match self {
            Self::Code(_) => &["{code}", "{minutes}"],
            Self::Notice(_) => &["{support}"],
        }
    }
}

const LANGS: [&str; 3] = ["kk", "ru", "en"];

/// The templates compiled in, used when no directory is configured.
const DEFAULTS: &[(&str, &str)] = &[
    (
        "code-registration.kk.txt",
        include_str!("../letters/code-registration.kk.txt"),
    ),
    (
        "code-registration.ru.txt",
        include_str!("../letters/code-registration.ru.txt"),
    ),
    (
        "code-registration.en.txt",
        include_str!("../letters/code-registration.en.txt"),
    ),
    (
        "code-recovery.kk.txt",
        include_str!("../letters/code-recovery.kk.txt"),
    ),
    (
        "code-recovery.ru.txt",
        include_str!("../letters/code-recovery.ru.txt"),
    ),
    (
        "code-recovery.en.txt",
        include_str!("../letters/code-recovery.en.txt"),
    ),
    (
        "account-exists.kk.txt",
        include_str!("../letters/account-exists.kk.txt"),
    ),
    (
        "account-exists.ru.txt",
        include_str!("../letters/account-exists.ru.txt"),
    ),
    (
        "account-exists.en.txt",
        include_str!("../letters/account-exists.en.txt"),
    ),
];

#[derive(Debug)]
struct Template {
    subject: String,
    paragraphs: Vec<String>,
}

/// Every letter in every language, checked when the service starts.
#[derive(Debug)]
pub struct Letters {
    templates: HashMap<(Kind, &'static str), Template>,
}

impl Letters {
    /// Reads `dir` (or takes the compiled-in templates); refuses a directory that lacks a
    /// letter in a language, holds a file no letter is named so, or a template whose
    /// placeholders are missing or unknown.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let from = dir.map_or("the compiled-in letters".to_owned(), |d| {
            d.display().to_string()
        });
        let files = texts::load(dir, DEFAULTS)?;
        let mut templates = HashMap::new();
        for file in &files {
            let found = Kind::ALL.into_iter().find_map(|kind| {
                LANGS
                    .into_iter()
                    .find(|lang| file.name == format!("{}.{lang}.txt", kind.name()))
                    .map(|lang| (kind, lang))
            });
            let (kind, lang) = found.ok_or_else(|| {
                anyhow::anyhow!(
                    "{from}: {} is not <letter>.<language>.txt (letters: code-registration, \
                     code-recovery, account-exists; languages: kk, ru, en)",
                    file.name
                )
            })?;
            let template = parse(kind, &file.content)
                .map_err(|why| anyhow::anyhow!("{from}: {}: {why}", file.name))?;
            templates.insert((kind, lang), template);
        }
        for kind in Kind::ALL {
            for lang in LANGS {
                anyhow::ensure!(
                    templates.contains_key(&(kind, lang)),
                    "{from}: {}.{lang}.txt is missing",
                    kind.name()
                );
            }
        }
        Ok(Self { templates })
    }

    fn render(&self, kind: Kind, to: &str, locale_tag: &str, fill: &[(&str, &str)]) -> Letter {
        let lang = locale(locale_tag);
        let template = &self.templates[&(kind, lang)];
        let mut text = String::new();
        let mut html = String::new();
        for paragraph in &template.paragraphs {
            let mut plain = paragraph.clone();
            let mut marked = html_escape(paragraph).replace('\n', "<br>");
            for (key, value) in fill {
                plain = plain.replace(key, value);
                let shown = match *key {
                    "{code}" => format!(
                        "<b style=\"font-size:28px;letter-spacing:6px\">{}</b>",
                        html_escape(value)
                    ),
                    _ => html_escape(value),
                };
                marked = marked.replace(key, &shown);
            }
            text.push_str(&plain);
            text.push_str("\n\n");
            html.push_str("<p>");
            html.push_str(&marked);
            html.push_str("</p>");
        }
        let subject = &template.subject;
        Letter {
            to: to.to_owned(),
            subject: subject.clone(),
            text: format!("{}\n", text.trim_end()),
            html: format!(
                "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
                 <title>{}</title></head><body style=\"font-family:sans-serif\">{html}</body></html>",
                html_escape(subject)
            ),
            traceparent: None,
        }
    }

    /// The letter carrying `code` for `purpose` in `locale`, for a code that lives `ttl`.
    pub fn code(
        &self,
        to: &str,
        purpose: Purpose,
        locale_tag: &str,
        code: &str,
        ttl: Duration,
    ) -> Letter {
        let minutes = minutes(locale(locale_tag), ttl);
        self.render(
            Kind::Code(purpose),
            to,
            locale_tag,
            &[("{code}", code), ("{minutes}", &minutes)],
        )
    }

    /// The letter for `notice` in `locale`; `support` is how to reach the support desk.
    pub fn notice(&self, to: &str, notice: Notice, locale_tag: &str, support: &str) -> Letter {
        self.render(
            Kind::Notice(notice),
            to,
            locale_tag,
            &[("{support}", support)],
        )
    }
}

/// A template's subject and paragraphs, its placeholders checked against its letter's.
fn parse(kind: Kind, content: &str) -> Result<Template, String> {
    let (subject, body) =
        texts::title_and_body(content).ok_or("a subject, an empty line, then the letter")?;
    let body = body.replace("\r\n", "\n");
    let paragraphs: Vec<String> = body
        .split("\n\n")
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let all = paragraphs.join("\n");
    for placeholder in kind.placeholders() {
        if !all.contains(placeholder) {
            return Err(format!("the letter must say {placeholder}"));
        }
    }
    let mut rest = all.as_str();
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c + 1)
            .ok_or("a { without its }")?;
        let name = &rest[open..close];
        if !kind.placeholders().contains(&name) {
            return Err(format!(
                "{name} is not filled in this letter (it knows {})",
                kind.placeholders().join(", ")
            ));
        }
        rest = &rest[close..];
    }
    Ok(Template {
        subject: subject.to_owned(),
        paragraphs,
    })
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

/// A letter without a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// A registration with this address was refused: an account already holds its IIN,
    /// passport number or email. The letter never says which of them, so it is no oracle.
    AccountExists,
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

    fn letters() -> Letters {
        Letters::load(None).unwrap()
    }

    #[test]
    fn the_footer_names_the_codes_configured_lifetime() {
        let letters = letters();
        let say = |lang: &str, secs: u64| {
            letters
                .code(
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
    fn the_russian_registration_letter_follows_the_seed_and_signs_off_as_the_center() {
        let letter = letters().code("a@mail.kz", Purpose::Registration, "", "301369", TEN);
        assert_eq!(letter.subject, "Подтверждение регистрации в ИСО");
        assert!(letter.text.starts_with(
            "Здравствуйте, Уважаемый пользователь для продолжения регистрации, введите код: 301369"
        ));
        assert!(
            letter.text.ends_with(
                "\n\nС уважением,\nРОО \"Национальный центр независимой экзаменации\"\n"
            ),
            "{}",
            letter.text
        );
        assert!(letter.html.contains(">301369</b>"), "{}", letter.html);
        assert!(
            letter.html.contains(
                "С уважением,<br>РОО &quot;Национальный центр независимой экзаменации&quot;"
            ),
            "{}",
            letter.html
        );
    }

    #[test]
    fn every_letter_signs_off_in_its_language() {
        let letters = letters();
        for (lang, sign_off) in [
            ("ru", "С уважением,"),
            ("kk", "Құрметпен,"),
            ("en", "Kind regards,"),
        ] {
            for purpose in [Purpose::Registration, Purpose::Recovery] {
                let letter = letters.code("a@mail.kz", purpose, lang, "000001", TEN);
                assert!(letter.text.contains(sign_off), "{lang}: {}", letter.text);
            }
            let notice = letters.notice("a@mail.kz", Notice::AccountExists, lang, "desk");
            assert!(notice.text.contains(sign_off), "{lang}: {}", notice.text);
        }
    }

    #[test]
    fn picks_the_language_from_a_tag() {
        assert_eq!(locale("kk-KZ"), "kk");
        assert_eq!(locale("en_US"), "en");
        assert_eq!(locale("de"), "ru");
        let kk = letters().code("a@mail.kz", Purpose::Recovery, "kk", "000001", TEN);
        assert_eq!(kk.subject, "ИСО-да құпиясөзді қалпына келтіру");
    }

    #[test]
    fn the_account_exists_notice_names_recovery_and_support_in_every_language() {
        let letters = letters();
        for (tag, forgot) in [
            ("ru", "Забыли пароль"),
            ("kk", "Құпиясөзді ұмыттыңыз ба?"),
            ("en", "Forgot password"),
        ] {
            let letter = letters.notice(
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
        let html = letters
            .notice("a@mail.kz", Notice::AccountExists, "en", "<b>desk</b>")
            .html;
        assert!(html.contains("&lt;b&gt;desk&lt;/b&gt;"), "{html}");
    }

    #[test]
    fn a_directory_of_templates_replaces_the_wording_and_is_checked_at_start() {
        let dir = std::env::temp_dir().join(format!("examreg-letters-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, content) in DEFAULTS {
            std::fs::write(dir.join(name), content).unwrap();
        }
        std::fs::write(
            dir.join("code-registration.ru.txt"),
            "Ваш код\n\nКод {code}, {minutes}.\n\nЦентр\n",
        )
        .unwrap();
        let letters = Letters::load(Some(&dir)).unwrap();
        let letter = letters.code(
            "a@mail.kz",
            Purpose::Registration,
            "ru",
            "123456",
            Duration::from_secs(300),
        );
        assert_eq!(letter.subject, "Ваш код");
        assert_eq!(letter.text, "Код 123456, 5 минут.\n\nЦентр\n");
        for (content, why) in [
            ("Ваш код\n\nКод {minutes}.", "must say {code}"),
            (
                "Ваш код\n\nКод {code}, {minutes}, {support}.",
                "{support} is not filled",
            ),
            ("Ваш код\n\nКод {code}, {minutes} {", "without its }"),
            ("Ваш код {code}", "a subject, an empty line"),
        ] {
            std::fs::write(dir.join("code-registration.ru.txt"), content).unwrap();
            let error = Letters::load(Some(&dir)).unwrap_err().to_string();
            assert!(error.contains(why), "{content}: {error}");
            assert!(error.contains("code-registration.ru.txt"), "{error}");
        }
        std::fs::remove_file(dir.join("code-registration.ru.txt")).unwrap();
        let error = Letters::load(Some(&dir)).unwrap_err().to_string();
        assert!(
            error.contains("code-registration.ru.txt is missing"),
            "{error}"
        );
        std::fs::write(dir.join("code-registration.de.txt"), "x").unwrap();
        let error = Letters::load(Some(&dir)).unwrap_err().to_string();
        assert!(error.contains("code-registration.de.txt is not"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_output_masks_the_address_and_leaves_out_the_code() {
        let letter = letters().code(
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
