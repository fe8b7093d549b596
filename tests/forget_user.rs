//! `guildscope forget-user` as a user runs it: a real process on an SQLite
//! file, its exact report, and the configured default.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::guildscope_in;

use std::path::Path;

use guildscope_model::{ChannelId, GuildId, MessageId, UserId};
use guildscope_store::{Location, MemberRow, MessageRow, Op, Store};

/// Runs the command; returns stdout, or panics with stderr.
fn forget(dir: &Path, args: &[&str]) -> String {
    let output = guildscope_in(dir)
        .arg("forget-user")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// User 7 is a member of two guilds with three messages; user 8 of one guild
/// with one message.
fn populate(path: &Path) {
    let mut ops = Vec::new();
    for (guild, user) in [(1, 7), (2, 7), (1, 8)] {
        ops.push(Op::UpsertMember(MemberRow {
            guild_id: GuildId::new(guild),
            user_id: UserId::new(user),
            name: format!("user{user}"),
            is_bot: false,
            is_staff: false,
            pending: false,
            joined_at_ms: Some(1_700_000_000_000),
        }));
    }
    for (id, author) in [(1, 7), (2, 7), (3, 7), (4, 8)] {
        ops.push(Op::InsertMessage(MessageRow {
            id: MessageId::new(id),
            guild_id: GuildId::new(1),
            channel_id: ChannelId::new(10),
            thread_id: None,
            author_id: UserId::new(author),
            created_at_ms: 1_700_000_000_000,
            keyed_hash: None,
        }));
    }
    Store::open(&Location::Sqlite(path.to_owned()))
        .unwrap()
        .apply(&ops)
        .unwrap();
}

fn count(path: &Path, sql: &str) -> i64 {
    guildscope_store::SqliteStore::open(path)
        .unwrap()
        .count(sql)
        .unwrap()
}

#[test]
fn forget_user_anonymises_by_default_and_reports_exactly_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stats.db");
    populate(&db);
    assert_eq!(
        forget(dir.path(), &["7", "--database", "stats.db"]),
        "members removed: 2, messages anonymised: 3, user row removed: yes\n"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM messages"), 4);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM messages WHERE author_id = 0"),
        3
    );
    assert_eq!(
        forget(dir.path(), &["7", "--database", "stats.db"]),
        "members removed: 0, messages anonymised: 0, user row removed: no\n"
    );
}

#[test]
fn forget_user_deletes_when_asked_on_the_command_line_or_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stats.db");
    populate(&db);
    assert_eq!(
        forget(
            dir.path(),
            &["8", "--database", "stats.db", "--messages", "delete"]
        ),
        "members removed: 1, messages deleted: 1, user row removed: yes\n"
    );
    std::fs::write(
        dir.path().join("g.toml"),
        "[storage]\nurl = \"stats.db\"\nforget_messages = \"delete\"\n",
    )
    .unwrap();
    assert_eq!(
        forget(dir.path(), &["7", "--config", "g.toml"]),
        "members removed: 2, messages deleted: 3, user row removed: yes\n"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM messages"), 0);
}

#[test]
fn a_bad_forget_messages_value_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("g.toml"),
        "[storage]\nforget_messages = \"shred\"\n",
    )
    .unwrap();
    let output = guildscope_in(dir.path())
        .args(["forget-user", "7", "--config", "g.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "guildscope: config key `storage.forget_messages`: expected \"delete\" or \"anonymise\", got \"shred\""
    );
    assert!(!dir.path().join("guildscope.db").exists());
}
