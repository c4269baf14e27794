//! Masking of personal identifiers for logs: enough to tell two records apart when debugging,
//! too little to identify a person.

/// `ivan.petrov@mail.kz` → `i***@mail.kz`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `791028302728` → `79********28`: keeps two characters at each end of identifiers long
/// enough to hide eight or more, and nothing of shorter ones.
pub fn mask_identifier(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 10 {
        return "*".repeat(chars.len().max(3));
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_a_hint() {
        assert_eq!(mask_email("ivan.petrov@mail.kz"), "i***@mail.kz");
        assert_eq!(mask_identifier("791028302728"), "79********28");
        assert_eq!(mask_identifier("N1234567"), "********");
    }
}
