//! The built binary as a process: start-up, a real port, SIGTERM, exit codes, one-line errors,
//! and the embedded store surviving restarts.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_clianta-server");
/// Debug builds on a busy 2-core machine start slowly; these bound waits, they are not sleeps.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A command with no inherited `CLIANTA_*` settings, run in `dir` (so no stray ./clianta.toml).
fn command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CLIANTA_") {
            c.env_remove(k);
        }
    }
    c.current_dir(dir).args(args).envs(env.iter().copied());
    c
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    command(dir, env, args).output().unwrap()
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `serve` on a free port (port 0) and reads the bound address from the JSON log.
    fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut env = env.to_vec();
        env.extend([
            ("CLIANTA_LISTEN", "127.0.0.1:0"),
            ("CLIANTA_LOG_FORMAT", "json"),
            ("CLIANTA_LOG", "info"),
        ]);
        let mut child = command(dir, &env, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if v["message"] == "listening" {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(a) => a.parse().unwrap(),
            Err(e) => {
                let _ = child.kill();
                panic!("server did not log `listening` ({e}): {:?}", child.wait());
            }
        };
        Self { child, addr }
    }

    /// Polls until `path` answers 200, within the start-up bound.
    fn wait_for(&self, path: &str) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match http_get(self.addr, path) {
                Ok((200, body)) => return body,
                other if Instant::now() > deadline => {
                    panic!("{path} never answered 200: {other:?}")
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not stop within {EXIT_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only when a test failed half-way; `terminate` consumes the server otherwise.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare HTTP/1.1 GET: status code and body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    Ok((status, body.unwrap_or_default()))
}

/// `migrate status` as (version, state) rows.
fn states(dir: &Path, env: &[(&str, &str)]) -> Vec<(u32, String)> {
    let o = run(dir, env, &["migrate", "status"]);
    assert!(o.status.success(), "{o:?}");
    stdout(&o)
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<_> = l.split_whitespace().collect();
            (cols[0].parse().unwrap(), cols[2].to_owned())
        })
        .collect()
}

fn row(v: u32, state: &str) -> (u32, String) {
    (v, state.to_owned())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn assert_one_line_error(o: &Output, starts_with: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "exactly one line: {err}");
    assert!(err.starts_with(starts_with), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn serves_health_and_ready_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("CLIANTA_STORAGE_URI", "memory:")]);
    assert_eq!(server.wait_for("/health"), r#"{"status":"ok"}"#);
    assert_eq!(
        server.wait_for("/ready"),
        r#"{"status":"ok","storage":"memory"}"#
    );
    let doc = server.wait_for("/api/v1/openapi.json");
    assert!(doc.contains(r#""openapi":"3.1.0""#));
    let (status, body) = http_get(server.addr, "/nope").unwrap();
    assert_eq!(status, 404);
    assert!(body.contains(r#""code":"route_not_found""#), "{body}");

    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn embedded_store_keeps_migrations_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let uri = [("CLIANTA_STORAGE_URI", "sqlite:data/clianta.db")];
    let rows = |applied: u32| -> Vec<_> {
        (1..=4)
            .map(|v| row(v, if v <= applied { "applied" } else { "pending" }))
            .collect()
    };

    assert_eq!(states(dir.path(), &uri), rows(0));

    let o = run(dir.path(), &uri, &["migrate", "up", "--to", "1"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o).trim(), "applied 1 contact_defaults");
    assert_eq!(states(dir.path(), &uri), rows(1));

    // The default store (no URI) is the same file: ./data/clianta.db. Serving migrates the rest.
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        server.wait_for("/ready"),
        r#"{"status":"ok","storage":"sqlite"}"#
    );
    assert_eq!(server.terminate().code(), Some(0));
    assert!(dir.path().join("data/clianta.db").is_file());
    assert_eq!(states(dir.path(), &uri), rows(4));

    let o = run(dir.path(), &uri, &["migrate", "down"]);
    assert_eq!(stdout(&o).trim(), "reverted 4 fold_legacy_deals", "{o:?}");
    assert_eq!(states(dir.path(), &uri), rows(3));

    let o = run(dir.path(), &uri, &["migrate", "down", "--to", "1"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(states(dir.path(), &uri), rows(1));
    let o = run(dir.path(), &uri, &["migrate", "down", "--to", "0"]);
    assert_eq!(stdout(&o).trim(), "reverted 1 contact_defaults", "{o:?}");
    let o = run(dir.path(), &uri, &["migrate", "down"]);
    assert_eq!(stdout(&o).trim(), "nothing reverted", "{o:?}");
}

#[test]
fn bad_storage_uri_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &[("CLIANTA_STORAGE_URI", "postgres://u:hunter2@db/crm")],
        &[],
    );
    assert_one_line_error(&o, "error: unsupported storage URI scheme `postgres:`");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("hunter2"));
    assert!(o.stdout.is_empty(), "nothing else printed");
}

#[test]
fn bad_settings_exit_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &[("CLIANTA_LISTEN", "nowhere")], &[]);
    assert_one_line_error(&o, "error: invalid listen address `nowhere`");
    let o = run(dir.path(), &[("CLIANTA_MIGRATE_ON_START", "maybe")], &[]);
    assert_one_line_error(&o, "error: invalid configuration:");
    let o = run(
        dir.path(),
        &[("CLIANTA_CONFIG", "absent.toml")],
        &["migrate", "status"],
    );
    assert_one_line_error(&o, "error: configuration file absent.toml does not exist");
}

#[test]
fn unreachable_mongodb_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &[(
            "CLIANTA_STORAGE_URI",
            "mongodb://app:hunter2@127.0.0.1:1/crm?serverSelectionTimeoutMS=300",
        )],
        &[],
    );
    assert_one_line_error(
        &o,
        "error: cannot reach MongoDB at mongodb://app:***@127.0.0.1:1/crm",
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("hunter2"));
}

#[test]
fn port_in_use_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(
        dir.path(),
        &[
            ("CLIANTA_STORAGE_URI", "memory:"),
            ("CLIANTA_LISTEN", &addr),
        ],
        &[],
    );
    assert_one_line_error(&o, &format!("error: cannot listen on {addr}:"));
}
