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
