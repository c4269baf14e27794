//! The texts an applicant accepts — the user agreement and the consent to processing
//! biometric data — as the exam center publishes them: files named
//! `<document>.<version>.<language>.txt` (`terms` or `biometric-consent`; a version such as
//! `2026-01`; `kk`, `ru` or `en`) in `GATEWAY_TEXTS_DIR`, or the ones in `gateway/texts/`
//! compiled in. A file is its title, an empty line, and the text. The current version of a
//! document is its greatest version name; each version must exist in all three languages.
//! An acceptance records the version, the language and the SHA-256 of the file shown, so what
//! was accepted can be proven later with the file and `sha256sum`.

use crate::{
    error::{ApiError, ApiResult},
    i18n::Lang,
};
use examreg_kit::texts::{self, File};
use std::collections::BTreeMap;
use std::path::Path;

/// The texts compiled in, used when no directory is configured.
const DEFAULTS: &[(&str, &str)] = &[
    (
        "terms.2026-01.kk.txt",
        include_str!("../texts/terms.2026-01.kk.txt"),
    ),
    (
        "terms.2026-01.ru.txt",
        include_str!("../texts/terms.2026-01.ru.txt"),
    ),
    (
        "terms.2026-01.en.txt",
        include_str!("../texts/terms.2026-01.en.txt"),
    ),
    (
        "biometric-consent.2026-01.kk.txt",
        include_str!("../texts/biometric-consent.2026-01.kk.txt"),
    ),
    (
        "biometric-consent.2026-01.ru.txt",
        include_str!("../texts/biometric-consent.2026-01.ru.txt"),
    ),
    (
        "biometric-consent.2026-01.en.txt",
        include_str!("../texts/biometric-consent.2026-01.en.txt"),
    ),
];

const LANGS: [Lang; 3] = [Lang::Kk, Lang::Ru, Lang::En];

/// Which text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    Terms,
    BiometricConsent,
}

impl Doc {
    fn name(self) -> &'static str {
        match self {
            Self::Terms => "terms",
            Self::BiometricConsent => "biometric-consent",
        }
    }

    /// The error code of an acceptance of a version (or a text) that is no longer current.
    fn outdated(self) -> ApiError {
        match self {
            Self::Terms => {
                ApiError::validation("terms_version_outdated", "terms_version", "outdated")
            }
            Self::BiometricConsent => {
                ApiError::validation("consent_version_outdated", "consent_version", "outdated")
            }
        }
    }
}

/// One text in one language.
#[derive(Debug, Clone)]
pub struct Text {
    pub version: String,
    pub lang: Lang,
    pub title: String,
    pub body: String,
    pub sha256: String,
}

/// What an applicant accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub version: String,
    pub language: &'static str,
    pub sha256: String,
}

/// The current version of each document, in each language.
#[derive(Debug)]
pub struct Texts {
    terms: Vec<Text>,
    consent: Vec<Text>,
}

impl Texts {
    /// Reads `dir` (or takes the compiled-in texts); refuses a directory that lacks a
    /// document, a language of a version, or holds a file it cannot read as a text.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let files = texts::load(dir, DEFAULTS)?;
        let from = dir.map_or("the compiled-in texts".to_owned(), |d| {
            d.display().to_string()
        });
        Self::from_files(&files).map_err(|e| anyhow::anyhow!("{from}: {e}"))
    }

    fn from_files(files: &[File]) -> anyhow::Result<Self> {
        // document → version → texts
        let mut found: BTreeMap<&str, BTreeMap<&str, Vec<Text>>> = BTreeMap::new();
        for file in files {
            let parts: Vec<&str> = file.name.split('.').collect();
            let [doc, version, lang, "txt"] = parts[..] else {
                anyhow::bail!(
                    "{}: not named <document>.<version>.<language>.txt",
                    file.name
                );
            };
            anyhow::ensure!(
                [Doc::Terms, Doc::BiometricConsent]
                    .iter()
                    .any(|d| d.name() == doc),
                "{}: the document is terms or biometric-consent",
                file.name
            );
            anyhow::ensure!(
                !version.is_empty()
                    && version.len() <= 32
                    && version
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "{}: a version is up to 32 letters, digits and dashes",
                file.name
            );
            let lang = LANGS
                .into_iter()
                .find(|l| l.tag() == lang)
                .ok_or_else(|| anyhow::anyhow!("{}: the language is kk, ru or en", file.name))?;
            let (title, body) = texts::title_and_body(&file.content).ok_or_else(|| {
                anyhow::anyhow!("{}: a title, an empty line, then the text", file.name)
            })?;
            found
                .entry(doc)
                .or_default()
                .entry(version)
                .or_default()
                .push(Text {
                    version: version.to_owned(),
                    lang,
                    title: title.to_owned(),
                    body: body.to_owned(),
                    sha256: file.sha256(),
                });
        }
        let mut current = |doc: Doc| -> anyhow::Result<Vec<Text>> {
            let versions = found
                .remove(doc.name())
                .ok_or_else(|| anyhow::anyhow!("no {} text", doc.name()))?;
            for (version, texts) in &versions {
                for lang in LANGS {
                    anyhow::ensure!(
                        texts.iter().any(|t| t.lang == lang),
                        "{}.{version}.{}.txt is missing",
                        doc.name(),
                        lang.tag()
                    );
                }
            }
            let (_, texts) = versions.into_iter().next_back().expect("not empty");
            Ok(texts)
        };
        Ok(Self {
            terms: current(Doc::Terms)?,
            consent: current(Doc::BiometricConsent)?,
        })
    }

    fn all(&self, doc: Doc) -> &[Text] {
        match doc {
            Doc::Terms => &self.terms,
            Doc::BiometricConsent => &self.consent,
        }
    }

    /// The current text of `doc` in `lang`.
    pub fn current(&self, doc: Doc, lang: Lang) -> &Text {
        self.all(doc)
            .iter()
            .find(|t| t.lang == lang)
            .expect("every language is loaded")
    }

    /// The current version of `doc`.
    pub fn version(&self, doc: Doc) -> &str {
        &self.current(doc, Lang::Ru).version
    }

    /// The API's document with what an acceptance may name now: the current versions and the
    /// hashes of their texts, as enums (so a client generated from it, or a fuzzer, sends only
    /// what is accepted).
    pub fn describe(&self, document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
        let mut value = serde_json::to_value(&document).expect("the document serializes");
        for (schema, field, doc) in [
            ("StartBody", "terms", Doc::Terms),
            ("ConsentBody", "consent", Doc::BiometricConsent),
        ] {
            let properties = &mut value["components"]["schemas"][schema]["properties"];
            properties[format!("{field}_version")]["enum"] = serde_json::json!([self.version(doc)]);
            let hashes: Vec<&str> = self.all(doc).iter().map(|t| t.sha256.as_str()).collect();
            properties[format!("{field}_sha256")]["enum"] = serde_json::json!(hashes);
        }
        serde_json::from_value(value).unwrap_or(document)
    }

    /// What accepting `version` of `doc` means: the text with `sha256` when the client names
    /// the one it showed (in whichever language it was), else the text in `lang`. A version
    /// or a text that is not current is refused, so nobody accepts what they were not shown.
    pub fn accept(
        &self,
        doc: Doc,
        version: &str,
        sha256: Option<&str>,
        lang: Lang,
    ) -> ApiResult<Acceptance> {
        if version != self.version(doc) {
            return Err(doc.outdated());
        }
        let text = match sha256 {
            Some(hash) => self
                .all(doc)
                .iter()
                .find(|t| t.sha256.eq_ignore_ascii_case(hash))
                .ok_or_else(|| doc.outdated())?,
            None => self.current(doc, lang),
        };
        Ok(Acceptance {
            version: text.version.clone(),
            language: text.lang.tag(),
            sha256: text.sha256.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(extra: &[(&str, &str)]) -> Vec<File> {
        DEFAULTS
            .iter()
            .chain(extra)
            .map(|(name, content)| File {
                name: (*name).to_owned(),
                content: (*content).to_owned(),
            })
            .collect()
    }

    #[test]
    fn the_compiled_in_texts_load_and_name_their_hash() {
        let texts = Texts::load(None).unwrap();
        assert_eq!(texts.version(Doc::Terms), "2026-01");
        let ru = texts.current(Doc::Terms, Lang::Ru);
        assert_eq!(ru.title, "Пользовательское соглашение");
        assert!(ru.body.contains("\n\n"), "paragraphs are kept");
        assert_eq!(
            ru.sha256,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(include_bytes!(
                "../texts/terms.2026-01.ru.txt"
            )))
        );
        let consent = texts.current(Doc::BiometricConsent, Lang::Kk);
        assert_eq!(consent.title, "Биометриялық деректерді өңдеуге келісім");
    }

    #[test]
    fn the_greatest_version_is_current_and_an_acceptance_names_the_text_shown() {
        let texts = Texts::from_files(&files(&[
            ("terms.2026-09.kk.txt", "Т\n\nжаңа"),
            ("terms.2026-09.ru.txt", "Т\n\nновое"),
            ("terms.2026-09.en.txt", "T\n\nnew"),
        ]))
        .unwrap();
        assert_eq!(texts.version(Doc::Terms), "2026-09");
        assert_eq!(texts.version(Doc::BiometricConsent), "2026-01");
        let kk = texts.current(Doc::Terms, Lang::Kk).sha256.clone();
        // The hash names the language it was shown in, whatever the request's language.
        let accepted = texts
            .accept(Doc::Terms, "2026-09", Some(&kk), Lang::En)
            .unwrap();
        assert_eq!(
            accepted,
            Acceptance {
                version: "2026-09".into(),
                language: "kk",
                sha256: kk
            }
        );
        let by_lang = texts.accept(Doc::Terms, "2026-09", None, Lang::En).unwrap();
        assert_eq!(by_lang.language, "en");
        let old = texts
            .accept(Doc::Terms, "2026-01", None, Lang::Ru)
            .unwrap_err();
        assert_eq!(old.code, "terms_version_outdated");
        let stale_hash = Texts::load(None)
            .unwrap()
            .current(Doc::Terms, Lang::Ru)
            .sha256
            .clone();
        let changed = texts
            .accept(Doc::Terms, "2026-09", Some(&stale_hash), Lang::Ru)
            .unwrap_err();
        assert_eq!(changed.code, "terms_version_outdated");
        let consent = texts
            .accept(Doc::BiometricConsent, "2025-12", None, Lang::Ru)
            .unwrap_err();
        assert_eq!(consent.code, "consent_version_outdated");
    }

    #[test]
    fn the_document_names_the_current_versions_and_the_hashes_of_their_texts() {
        let texts = Texts::load(None).unwrap();
        let doc = serde_json::to_value(texts.describe(crate::startup::document())).unwrap();
        for (schema, field, doc_kind) in [
            ("StartBody", "terms", Doc::Terms),
            ("ConsentBody", "consent", Doc::BiometricConsent),
        ] {
            let properties = &doc["components"]["schemas"][schema]["properties"];
            assert_eq!(
                properties[format!("{field}_version")]["enum"],
                serde_json::json!(["2026-01"]),
                "{schema}"
            );
            let hashes = properties[format!("{field}_sha256")]["enum"].clone();
            for lang in LANGS {
                let hash = &texts.current(doc_kind, lang).sha256;
                assert!(
                    hashes.as_array().unwrap().iter().any(|h| h == hash),
                    "{schema}: {hashes}"
                );
            }
        }
    }

    #[test]
    fn a_directory_missing_a_language_or_misnamed_is_refused() {
        let missing = Texts::from_files(&files(&[("terms.2026-09.ru.txt", "Т\n\nновое")]))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("terms.2026-09.kk.txt is missing"),
            "{missing}"
        );
        for (name, content, why) in [
            ("terms.ru.txt", "T\n\nx", "not named"),
            (
                "rules.2026-01.ru.txt",
                "T\n\nx",
                "terms or biometric-consent",
            ),
            (
                "terms.2026_01.ru.txt",
                "T\n\nx",
                "letters, digits and dashes",
            ),
            ("terms.2026-01.de.txt", "T\n\nx", "kk, ru or en"),
            (
                "terms.2026-02.ru.txt",
                "Title only\n",
                "a title, an empty line",
            ),
        ] {
            let error = Texts::from_files(&files(&[(name, content)]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(why), "{name}: {error}");
        }
        let none = Texts::from_files(&[]).unwrap_err().to_string();
        assert!(none.contains("no terms text"), "{none}");
    }
}
