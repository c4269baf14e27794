//! Typed configuration from the environment (12-factor). Every variable is read through
//! [`Env`], which collects every problem instead of stopping at the first, so an operator sees
//! all mistakes at once, each naming its variable. Secrets may come from `NAME` or from a file
//! named by `NAME_FILE` (Kubernetes mounts), and are wrapped in [`Secret`], which never prints.

use std::{collections::HashMap, fmt, str::FromStr};

/// A secret value: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Every problem found while loading configuration, one per variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|(var, why)| format!("  {var}: {why}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<(String, String)>,
}

impl ConfigError {
    pub fn names(&self, var: &str) -> bool {
        self.problems.iter().any(|(name, _)| name == var)
    }
}

/// Reads variables from a snapshot of the environment and records what is wrong.
pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<(String, String)>,
}

impl Env {
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars().collect())
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Records a problem found by the caller's own validation.
    pub fn invalid(&mut self, name: &str, why: impl Into<String>) {
        self.problems.push((name.to_owned(), why.into()));
    }

    /// Whether this runs in production (`EXAMREG_ENVIRONMENT=production`; `development`, the
    /// default, is the local stack and the tests). Anything else is a problem.
    pub fn production(&mut self) -> bool {
        match self.raw(ENVIRONMENT) {
            None | Some("development") => false,
            Some("production") => true,
            Some(_) => {
                self.invalid(ENVIRONMENT, "production or development");
                false
            }
        }
    }

    /// In production, `name` must be set, and not to a local stack's value (an `.local`
    /// domain, localhost, loopback): its default is the local stack's, and production would
    /// run with it silently (letters from an unroutable domain, documents valid until today).
    pub fn required_in_production(&mut self, name: &str) {
        if !self.production() {
            return;
        }
        let local = match self.raw(name) {
            None => Some("required in production: its default is the local stack's"),
            Some(value) if is_local(value) => Some("a local stack's value, in production"),
            Some(_) => None,
        };
        if let Some(why) = local {
            self.invalid(name, why);
        }
    }

    /// A plain value with a default.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_owned()
    }

    /// Another service's gRPC URL with a default. In production it must be `https://`: the
    /// binaries speak TLS to each other there.
    pub fn service_url(&mut self, name: &str, default: &str) -> String {
        let url = self.string(name, default);
        if self.production() && !url.starts_with("https://") {
            self.invalid(
                name,
                "in production the services are reached over TLS (https://)",
            );
        }
        url
    }

    /// A parsed value with a default; a value that does not parse is a problem.
    pub fn parse<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => default,
            Some(text) => match text.parse() {
                Ok(value) => value,
                Err(e) => {
                    self.invalid(name, format!("cannot parse {text:?}: {e}"));
                    default
                }
            },
        }
    }

    /// A duration in seconds with a default.
    pub fn seconds(&mut self, name: &str, default: u64) -> std::time::Duration {
        std::time::Duration::from_secs(self.parse(name, default))
    }

    /// A retention period in whole days with a default; `None` (the rule off) for 0.
    pub fn days(&mut self, name: &str, default: u64) -> Option<std::time::Duration> {
        let days: u64 = self.parse(name, default);
        (days > 0).then(|| std::time::Duration::from_secs(days.saturating_mul(86_400)))
    }

    /// A secret from `NAME` or the file at `NAME_FILE` (trailing newline trimmed).
    /// Both set is a problem: the operator's intent is unclear.
    pub fn secret(&mut self, name: &str) -> Option<Secret> {
        let file_var = format!("{name}_FILE");
        match (self.raw(name), self.raw(&file_var)) {
            (Some(_), Some(_)) => {
                self.invalid(name, format!("set either {name} or {file_var}, not both"));
                None
            }
            (Some(value), None) => Some(Secret::new(value)),
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(text) => Some(Secret::new(text.trim_end_matches(['\n', '\r']))),
                Err(e) => {
                    let why = format!("cannot read {path}: {e}");
                    self.invalid(&file_var, why);
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// A value that can carry a credential (a URL with a password), from `NAME` or the file
    /// `NAME_FILE` names, with the local stack's `default` when neither is set.
    pub fn secret_or(&mut self, name: &str, default: &str) -> Secret {
        self.secret(name).unwrap_or_else(|| Secret::new(default))
    }

    /// A secret that must be present.
    pub fn required_secret(&mut self, name: &str) -> Secret {
        self.secret(name).unwrap_or_else(|| {
            if !self.problems.iter().any(|(n, _)| n.starts_with(name)) {
                self.invalid(name, format!("required (or {name}_FILE)"));
            }
            Secret::new("")
        })
    }

    /// Ends loading: every recorded problem, or nothing.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// Every default of a service's configuration, listening on free loopback ports (the
/// variable `addr_var`, `<SERVICE>_ADDR`, and its `<SERVICE>_OPS_ADDR` as `127.0.0.1:0`),
/// without secrets: for tests and tools, which set the secrets they need.
pub fn defaults<T>(load: impl FnOnce(&mut Env) -> T, addr_var: &str) -> T {
    let mut values = std::collections::HashMap::new();
    values.insert(addr_var.to_owned(), "127.0.0.1:0".to_owned());
    let ops_var = format!("{}_OPS_ADDR", addr_var.trim_end_matches("_ADDR"));
    values.insert(ops_var, "127.0.0.1:0".to_owned());
    load(&mut Env::from_map(values))
}

/// The variable that says whether a binary runs in production.
pub const ENVIRONMENT: &str = "EXAMREG_ENVIRONMENT";

/// A value that names the local stack: an `.local` domain, localhost or loopback.
fn is_local(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .any(|local| lower.contains(local))
        || lower
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .any(|word| word.ends_with(".local"))
}

/// Loads configuration or exits with status 2 naming every bad variable, before any port is
/// bound. The message names variables and reasons only, never values of secrets.
pub fn load_or_exit<T>(load: impl FnOnce(&mut Env) -> T) -> T {
    let mut env = Env::from_process();
    let config = load(&mut env);
    if let Err(e) = env.finish() {
        eprintln!("{e}");
        std::process::exit(2);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn reports_every_bad_variable_by_name() {
        let mut e = env(&[("A_PORT", "eighty"), ("B_TTL", "-1")]);
        let _: u16 = e.parse("A_PORT", 1);
        let _ = e.seconds("B_TTL", 5);
        let _ = e.required_secret("C_KEY");
        let err = e.finish().unwrap_err();
        assert!(err.names("A_PORT") && err.names("B_TTL") && err.names("C_KEY"));
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = std::env::temp_dir().join(format!("examreg-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "s3cr3t\n").unwrap();
        let mut e = env(&[("X_SECRET_FILE", path.to_str().unwrap())]);
        let secret = e.secret("X_SECRET").unwrap();
        assert_eq!(secret.expose(), "s3cr3t");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        e.finish().unwrap();

        let mut both = env(&[("X_SECRET", "a"), ("X_SECRET_FILE", "/nonexistent")]);
        assert!(both.secret("X_SECRET").is_none());
        assert!(both.finish().unwrap_err().names("X_SECRET"));
        let err = {
            let mut missing = env(&[("X_SECRET_FILE", "/nonexistent/file")]);
            let _ = missing.secret("X_SECRET");
            missing.finish().unwrap_err()
        };
        assert!(err.names("X_SECRET_FILE"));
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn production_refuses_the_local_stacks_defaults() {
        let check = |pairs: &[(&str, &str)]| {
            let mut e = env(pairs);
            e.required_in_production("MAIL_FROM");
            e.finish()
        };
        // Development (the default) takes the defaults.
        check(&[]).unwrap();
        check(&[("EXAMREG_ENVIRONMENT", "development")]).unwrap();
        // Production wants the value, and not a local one.
        let prod = ("EXAMREG_ENVIRONMENT", "production");
        assert!(check(&[prod]).unwrap_err().names("MAIL_FROM"));
        for local in [
            "ИСО <noreply@examreg.local>",
            "http://localhost:8080",
            "https://127.0.0.1",
        ] {
            assert!(
                check(&[prod, ("MAIL_FROM", local)])
                    .unwrap_err()
                    .names("MAIL_FROM")
            );
        }
        check(&[prod, ("MAIL_FROM", "ҰТО <noreply@abiturient.example.kz>")]).unwrap();
        // A third environment is a mistake, named.
        let err = check(&[("EXAMREG_ENVIRONMENT", "prod")]).unwrap_err();
        assert!(err.names("EXAMREG_ENVIRONMENT"));
    }

    #[test]
    fn a_url_with_a_password_comes_from_its_file_or_the_local_default() {
        let dir = std::env::temp_dir().join(format!("examreg-url-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("redis-url");
        std::fs::write(&path, "redis://gateway:pw@redis:6379\n").unwrap();
        let mut e = env(&[("R_URL_FILE", path.to_str().unwrap())]);
        let url = e.secret_or("R_URL", "redis://127.0.0.1:6379");
        assert_eq!(url.expose(), "redis://gateway:pw@redis:6379");
        assert_eq!(format!("{url:?}"), "[redacted]");
        assert_eq!(
            e.secret_or("OTHER_URL", "redis://127.0.0.1:6379").expose(),
            "redis://127.0.0.1:6379"
        );
        e.finish().unwrap();
    }
}
