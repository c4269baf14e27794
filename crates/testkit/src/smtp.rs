//! A small SMTP server for tests that need what the mail catcher cannot do: it defers chosen
//! recipients (`450` to `RCPT TO`, with the address in the reply as real relays write it) and
//! accepts everyone else, keeping what it accepted — and, started in front of the mail catcher,
//! relays what it accepts there, so the rest of a test reads its codes as usual. Loopback only.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// A letter the server accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub recipients: Vec<String>,
    /// The message as it came after `DATA` (headers and body, dot-unstuffed).
    pub data: String,
}

#[derive(Default)]
struct State {
    /// Where accepted letters are relayed (the mail catcher), if anywhere.
    upstream: Option<String>,
    deferred: HashSet<String>,
    accepted: Vec<Accepted>,
    /// `RCPT TO` commands answered 450, per address.
    deferrals: Vec<String>,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpServer {
    /// Starts on a free loopback port, deferring every letter to the addresses in `defer`.
    pub async fn start(defer: &[&str]) -> Self {
        Self::start_with(defer, None).await
    }

    /// Like [`start`](Self::start), relaying every accepted letter to `upstream` (host:port).
    pub async fn in_front_of(upstream: &str, defer: &[&str]) -> Self {
        Self::start_with(defer, Some(upstream.to_owned())).await
    }

    async fn start_with(defer: &[&str], upstream: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            deferred: defer.iter().map(|a| a.to_ascii_lowercase()).collect(),
            upstream,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone()));
            }
        });
        Self { addr, state, task }
    }

    /// The letters accepted for `to`.
    pub fn accepted_for(&self, to: &str) -> Vec<Accepted> {
        let state = self.state.lock().expect("not poisoned");
        state
            .accepted
            .iter()
            .filter(|a| a.recipients.iter().any(|r| r.eq_ignore_ascii_case(to)))
            .cloned()
            .collect()
    }

    /// How many times `to` was deferred.
    pub fn deferrals_of(&self, to: &str) -> usize {
        let state = self.state.lock().expect("not poisoned");
        state
            .deferrals
            .iter()
            .filter(|d| d.eq_ignore_ascii_case(to))
            .count()
    }

    /// Defers `to` from now on.
    pub fn defer(&self, to: &str) {
        let mut state = self.state.lock().expect("not poisoned");
        state.deferred.insert(to.to_ascii_lowercase());
    }

    /// Stops deferring `to`: its next attempt is accepted.
    pub fn accept(&self, to: &str) {
        let mut state = self.state.lock().expect("not poisoned");
        state.deferred.remove(&to.to_ascii_lowercase());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn address_in(argument: &str) -> String {
    let inside = argument
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(argument, |(address, _)| address);
    inside.trim().to_owned()
}

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut out = "220 localhost test SMTP\r\n".to_owned();
    let mut recipients: Vec<String> = Vec::new();
    let mut sender = String::new();
    loop {
        if write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        out = match verb.as_str() {
            "EHLO" | "HELO" => "250 localhost\r\n".to_owned(),
            "MAIL" => {
                recipients.clear();
                sender = address_in(&command);
                "250 2.1.0 OK\r\n".to_owned()
            }
            "RCPT" => {
                let address = address_in(&command);
                let mut state = state.lock().expect("not poisoned");
                if state.deferred.contains(&address.to_ascii_lowercase()) {
                    state.deferrals.push(address.clone());
                    format!("450 4.2.2 <{address}>: mailbox temporarily unavailable\r\n")
                } else {
                    recipients.push(address);
                    "250 2.1.5 OK\r\n".to_owned()
                }
            }
            "DATA" => {
                if write
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let upstream = state.lock().expect("not poisoned").upstream.clone();
                let relayed = match &upstream {
                    Some(upstream) => relay(upstream, &sender, &recipients, &data).await,
                    None => Ok(()),
                };
                if relayed.is_err() {
                    "451 4.4.1 upstream unavailable\r\n".to_owned()
                } else {
                    state.lock().expect("not poisoned").accepted.push(Accepted {
                        recipients: std::mem::take(&mut recipients),
                        data,
                    });
                    "250 2.0.0 queued\r\n".to_owned()
                }
            }
            "RSET" => {
                recipients.clear();
                "250 2.0.0 OK\r\n".to_owned()
            }
            "NOOP" => "250 2.0.0 OK\r\n".to_owned(),
            "QUIT" => {
                let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            }
            _ => "502 5.5.2 command not recognized\r\n".to_owned(),
        };
    }
}

/// Sends one letter on to `upstream` with the plainest SMTP exchange.
async fn relay(
    upstream: &str,
    sender: &str,
    recipients: &[String],
    data: &str,
) -> std::io::Result<()> {
    let stream = TcpStream::connect(upstream).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    async fn expect(
        lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        code: &str,
    ) -> std::io::Result<()> {
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            // Multi-line replies continue with "250-".
            if line.len() >= 4 && &line[3..4] == "-" {
                continue;
            }
            return if line.starts_with(code) {
                Ok(())
            } else {
                Err(std::io::Error::other(line))
            };
        }
    }
    expect(&mut lines, "220").await?;
    write.write_all(b"EHLO localhost\r\n").await?;
    expect(&mut lines, "250").await?;
    write
        .write_all(format!("MAIL FROM:<{sender}>\r\n").as_bytes())
        .await?;
    expect(&mut lines, "250").await?;
    for to in recipients {
        write
            .write_all(format!("RCPT TO:<{to}>\r\n").as_bytes())
            .await?;
        expect(&mut lines, "250").await?;
    }
    write.write_all(b"DATA\r\n").await?;
    expect(&mut lines, "354").await?;
    for line in data.split_inclusive('\n') {
        if line.starts_with('.') {
            write.write_all(b".").await?;
        }
        write.write_all(line.as_bytes()).await?;
    }
    write.write_all(b".\r\n").await?;
    expect(&mut lines, "250").await?;
    write.write_all(b"QUIT\r\n").await?;
    Ok(())
}
