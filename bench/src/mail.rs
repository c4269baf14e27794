//! The applicants' mailbox: one task reads the mail catcher's REST API, hands each code to the
//! applicant waiting for it and deletes the letter, so the catcher's list stays short however
//! many applicants run. The mail path (outbox, SMTP, catcher) stays part of the measured work.

use serde_json::Value;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::oneshot;

#[derive(Default)]
struct Boxes {
    waiting: HashMap<String, oneshot::Sender<String>>,
    /// Codes that arrived before anyone asked for them.
    early: HashMap<String, String>,
}

#[derive(Clone)]
pub(crate) struct Mailbox {
    boxes: Arc<Mutex<Boxes>>,
}

impl Mailbox {
    /// Starts polling `catcher` (maildev's web port).
    pub(crate) fn start(http: reqwest::Client, catcher: String) -> Self {
        let mailbox = Self {
            boxes: Arc::default(),
        };
        let boxes = mailbox.boxes.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = poll(&http, &catcher, &boxes).await {
                    eprintln!("mailbox: {e}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        mailbox
    }

    /// The next code sent to `to` (lower case), or None after `within`.
    pub(crate) async fn code_for(&self, to: &str, within: Duration) -> Option<String> {
        let receiver = {
            let mut boxes = self.boxes.lock().expect("mailbox lock");
            if let Some(code) = boxes.early.remove(to) {
                return Some(code);
            }
            let (sender, receiver) = oneshot::channel();
            boxes.waiting.insert(to.to_owned(), sender);
            receiver
        };
        tokio::time::timeout(within, receiver).await.ok()?.ok()
    }
}

async fn poll(
    http: &reqwest::Client,
    catcher: &str,
    boxes: &Mutex<Boxes>,
) -> Result<(), reqwest::Error> {
    let mails: Vec<Value> = http
        .get(format!("{catcher}/email"))
        .send()
        .await?
        .json()
        .await?;
    for mail in mails {
        let id = mail["id"].as_str().unwrap_or_default().to_owned();
        let to = mail["to"][0]["address"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        let code = last_six_digits(mail["text"].as_str().unwrap_or_default());
        if let Some(code) = code {
            let mut boxes = boxes.lock().expect("mailbox lock");
            match boxes.waiting.remove(&to) {
                Some(waiter) => {
                    let _ = waiter.send(code);
                }
                None => {
                    boxes.early.insert(to, code);
                }
            }
        }
        http.delete(format!("{catcher}/email/{id}")).send().await?;
    }
    Ok(())
}

/// The last run of exactly six digits (the code; the letter has no other).
fn last_six_digits(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .rfind(|run| run.len() == 6)
        .map(str::to_owned)
}
