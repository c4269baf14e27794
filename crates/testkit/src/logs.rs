//! What the code and the stores write to their logs, for tests that look for personal data
//! there: the services' own lines (the same JSON layer production uses, into memory) and the
//! Postgres server log of the local stack.

use std::{
    io::{Read, Seek, SeekFrom},
    sync::{Arc, Mutex, OnceLock},
};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// Bytes written from anywhere (a log layer, an encoder that wants to own its writer) and read
/// back by the test.
#[derive(Clone, Default)]
pub struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("not poisoned").clone()
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// The log lines of everything running in this test process (every service of a suite), at
/// the production level (`info`).
pub struct ServiceLogs(Sink);

impl ServiceLogs {
    /// Installs the process's subscriber (once; nextest runs each test in its own process).
    pub fn capture() -> Self {
        let sink = SINK.get_or_init(|| {
            let sink = Sink::default();
            let writer = sink.clone();
            tracing_subscriber::registry()
                .with(EnvFilter::new("info"))
                .with(examreg_kit::telemetry::json_layer(move || writer.clone()))
                .init();
            sink
        });
        Self(sink.clone())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.bytes()).into_owned()
    }
}

/// The Postgres server log (`EXAMREG_TEST_PG_LOG`, set by deploy/test; Debian's default
/// place otherwise), read from where it stood when the test began.
pub struct PostgresLog {
    path: std::path::PathBuf,
    start: u64,
}

impl PostgresLog {
    pub fn from_now() -> Self {
        let path = std::env::var("EXAMREG_TEST_PG_LOG").map_or_else(
            |_| std::path::PathBuf::from("/var/log/postgresql/postgresql-15-main.log"),
            std::path::PathBuf::from,
        );
        let start = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("the Postgres log {} is readable: {e}", path.display()))
            .len();
        Self { path, start }
    }

    /// What the server logged since [`from_now`](Self::from_now).
    pub fn since(&self) -> String {
        let mut file = std::fs::File::open(&self.path).expect("the Postgres log opens");
        file.seek(SeekFrom::Start(self.start)).expect("seek");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).expect("read");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
