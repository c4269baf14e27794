//! Texts that operators own (the user agreement, the consent, the letters): read from one flat
//! directory of UTF-8 files, or the defaults compiled into the service when no directory is
//! configured. Flat, because a Kubernetes ConfigMap mounts as one: its `..data` link and
//! timestamped directories start with a dot and are skipped, the file links are followed.

use anyhow::Context;
use sha2::Digest;
use std::path::Path;

/// One text file: its name and its content exactly as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub content: String,
}

impl File {
    /// The SHA-256 of the file's bytes, lowercase hex: what `sha256sum` prints for it.
    pub fn sha256(&self) -> String {
        hex::encode(sha2::Sha256::digest(self.content.as_bytes()))
    }
}

/// Every file of `dir` whose name ends in `.txt`, sorted by name; any other visible file is an
/// error (a misnamed text would otherwise be silently ignored), as is one that is not UTF-8.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<File>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        anyhow::ensure!(
            name.ends_with(".txt") && path.is_file(),
            "{}: only .txt files belong in the texts directory",
            path.display()
        );
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let content = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{}: not UTF-8", path.display()))?;
        files.push(File { name, content });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The files of `dir` when one is configured, else `defaults` (name, content).
pub fn load(dir: Option<&Path>, defaults: &[(&str, &str)]) -> anyhow::Result<Vec<File>> {
    match dir {
        Some(dir) => read_dir(dir),
        None => Ok(defaults
            .iter()
            .map(|(name, content)| File {
                name: (*name).to_owned(),
                content: (*content).to_owned(),
            })
            .collect()),
    }
}

/// A text's title (its first line) and body (after one empty line), both trimmed; `None` when
/// the file is not shaped so or either is empty.
pub fn title_and_body(content: &str) -> Option<(&str, &str)> {
    let (title, rest) = content.split_once('\n')?;
    let body = rest
        .strip_prefix('\n')
        .or_else(|| rest.strip_prefix("\r\n"))?;
    let (title, body) = (title.trim(), body.trim());
    (!title.is_empty() && !body.is_empty()).then_some((title, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_reads_its_texts_skips_the_configmap_links_and_refuses_strays() {
        let dir = std::env::temp_dir().join(format!("examreg-texts-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("..2026_12_03")).unwrap();
        std::fs::write(dir.join("b.txt"), "Title\n\nBody").unwrap();
        std::fs::write(dir.join("a.txt"), "Заголовок\n\nТекст\n").unwrap();
        std::fs::write(dir.join("..2026_12_03/a.txt"), "old").unwrap();
        let files = read_dir(&dir).unwrap();
        assert_eq!(
            files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["a.txt", "b.txt"]
        );
        assert_eq!(
            files[1].sha256(),
            // printf 'Title\n\nBody' | sha256sum
            "45777c14d90fa79dc6ce71ceb6f81cced62c929c472199547cfd939a54e954c6"
        );
        std::fs::write(dir.join("notes.md"), "x").unwrap();
        let error = read_dir(&dir).unwrap_err().to_string();
        assert!(error.contains("notes.md"), "{error}");
        std::fs::remove_file(dir.join("notes.md")).unwrap();
        std::fs::write(dir.join("c.txt"), [0xff, 0xfe]).unwrap();
        let error = read_dir(&dir).unwrap_err().to_string();
        assert!(error.contains("c.txt: not UTF-8"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_text_is_a_title_an_empty_line_and_a_body() {
        assert_eq!(
            title_and_body("Title\n\nOne.\n\nTwo.\n"),
            Some(("Title", "One.\n\nTwo."))
        );
        assert_eq!(title_and_body("Title\r\n\r\nBody"), Some(("Title", "Body")));
        assert_eq!(title_and_body("Title\nBody"), None);
        assert_eq!(title_and_body("Title\n\n  \n"), None);
        assert_eq!(title_and_body("\n\nBody"), None);
        assert_eq!(title_and_body("no newline"), None);
    }
}
