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

/// The text with every address in it masked (`450 4.2.2 <ivan@mail.kz>: mailbox full` →
/// `450 4.2.2 <i***@mail.kz>: mailbox full`): mail servers write the recipient into their
/// replies, and those replies are logged.
pub fn mask_emails_in(text: &str) -> String {
    let local = |c: char| c.is_alphanumeric() || "._%+-!#$&'*/=?^`{|}~".contains(c);
    let domain = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let (mut at, mut floor) = (0, 0);
    while at < chars.len() {
        if chars[at] != '@' {
            out.push(chars[at]);
            at += 1;
            continue;
        }
        // The local part is already in `out`: take it back.
        let mut start = at;
        while start > floor && local(chars[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < chars.len() && domain(chars[end]) {
            end += 1;
        }
        let taken = at - start;
        for _ in 0..taken {
            out.pop();
        }
        let address: String = chars[start..end].iter().collect();
        out.push_str(&mask_email(&address));
        at = end;
        floor = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_inside_a_server_reply_are_masked() {
        assert_eq!(
            mask_emails_in("450 4.2.2 <ivan.petrov@mail.kz>: mailbox full; ivan.petrov@mail.kz"),
            "450 4.2.2 <i***@mail.kz>: mailbox full; i***@mail.kz"
        );
        assert_eq!(mask_emails_in("421 try later"), "421 try later");
        assert_eq!(mask_emails_in("@ alone"), "***@ alone");
    }

    #[test]
    fn masks_keep_only_a_hint() {
        assert_eq!(mask_email("ivan.petrov@mail.kz"), "i***@mail.kz");
        assert_eq!(mask_identifier("791028302728"), "79********28");
        assert_eq!(mask_identifier("N1234567"), "********");
    }
}
