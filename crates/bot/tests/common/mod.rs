//! Helpers shared by the bot's integration tests: a database per test
//! (an SQLite file in a temporary directory, or a fresh PostgreSQL database
//! dropped afterwards) and waiting on a condition with a deadline.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use guildscope_store::Location;

/// The longest a test waits for anything.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A database for one test: an SQLite file, or a fresh PostgreSQL database
/// dropped afterwards.
pub struct Db {
    pub location: Location,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin, db)) = self.drop_pg.take() {
            // The sync client must not run on the async runtime's threads.
            let _ = std::thread::spawn(move || {
                if let Ok(mut client) = postgres::Client::connect(&admin, postgres::NoTls) {
                    let _ =
                        client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
                }
            })
            .join();
        }
    }
}

/// A database in a fresh temporary directory.
pub fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        location: Location::Sqlite(dir.path().join("stats.db")),
        _dir: Some(dir),
        drop_pg: None,
    }
}

/// A fresh PostgreSQL database; fails under CI when PostgreSQL is unreachable,
/// returns `None` (and says so) elsewhere.
pub fn postgres(tag: &str) -> Option<(Db, String)> {
    let admin = std::env::var("GUILDSCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("guildscope_e2e_{tag}_{}", std::process::id());
    let created = {
        let (admin, db) = (admin.clone(), db.clone());
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls)?;
            client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
            client.batch_execute(&format!("CREATE DATABASE {db}"))
        })
        .join()
        .unwrap()
    };
    match created {
        Ok(()) => {}
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required in CI and unreachable at {admin}: {e}")
        }
        Err(e) => {
            eprintln!("skipping the PostgreSQL case: {admin} is unreachable ({e})");
            return None;
        }
    }
    let (base, _) = admin.rsplit_once('/').unwrap();
    let url = format!("{base}/{db}");
    Some((
        Db {
            location: Location::parse(&url),
            _dir: None,
            drop_pg: Some((admin, db)),
        },
        url,
    ))
}

/// Waits until `done`, failing after [`DEADLINE`].
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A PostgreSQL server of the test's own, made from the machine's PostgreSQL
/// binaries in a temporary directory, so a test can stop and restart it in
/// the middle of a run without disturbing the tests sharing the machine's
/// server.
pub struct PrivatePostgres {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Initialises and starts a server; fails under CI when PostgreSQL's
    /// binaries are missing, returns `None` (and says so) elsewhere.
    pub fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max();
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL's server binaries are required in CI and missing under /usr/lib/postgresql"
            );
            eprintln!("skipping: no PostgreSQL server binaries under /usr/lib/postgresql");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("guildscope-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let server = Self { bin, dir, port };
        // initdb and the server refuse to run as root.
        if server.as_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown of the server directory failed");
        }
        server.run(
            "initdb",
            &[
                "-D",
                &server.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        server.set_running(true);
        Some(server)
    }

    fn as_root(&self) -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Runs one of PostgreSQL's programs (as the postgres user when root).
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if self.as_root() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            std::process::Command::new(&program)
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts or stops the server, waiting until it is done.
    pub fn set_running(&self, running: bool) {
        let data = self.data();
        if running {
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.display()
            );
            let log = self.dir.join("server.log").display().to_string();
            self.run(
                "pg_ctl",
                &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
            );
        } else {
            self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        }
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let stop = self.bin.join("pg_ctl");
        let _ = if self.as_root() {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&stop)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .output()
        } else {
            std::process::Command::new(&stop)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
