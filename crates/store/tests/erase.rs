//! Forgetting a user on both back ends: what goes, what stays, and that the
//! report says exactly what changed.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Db, each_backend};
use guildscope_model::{ChannelId, GuildId, MessageId, UserId};
use guildscope_store::{
    ANONYMOUS_AUTHOR, Erasure, Location, MemberRow, MessageErasure, MessageRow, Op, Store,
};

const FORGOTTEN: u64 = 7;
const OTHER: u64 = 8;

fn member(guild: u64, user: u64) -> Op {
    Op::UpsertMember(MemberRow {
        guild_id: GuildId::new(guild),
        user_id: UserId::new(user),
        name: format!("user{user}"),
        is_bot: false,
        is_staff: false,
        pending: false,
        joined_at_ms: Some(1_700_000_000_000),
    })
}

fn message(id: u64, guild: u64, author: u64) -> Op {
    Op::InsertMessage(MessageRow {
        id: MessageId::new(id),
        guild_id: GuildId::new(guild),
        channel_id: ChannelId::new(100 + guild),
        thread_id: None,
        author_id: UserId::new(author),
        created_at_ms: 1_700_000_000_000 + id as i64,
        keyed_hash: None,
    })
}

/// Two guilds; the forgotten user is in both with three messages, another
/// user in one with two. Every message gets a keyed hash.
fn populate(db: &Db) -> Store {
    let mut store = db.open();
    store
        .apply(&[
            member(1, FORGOTTEN),
            member(2, FORGOTTEN),
            member(1, OTHER),
            message(1, 1, FORGOTTEN),
            message(2, 1, FORGOTTEN),
            message(3, 2, FORGOTTEN),
            message(4, 1, OTHER),
            message(5, 1, OTHER),
        ])
        .unwrap();
    // No op writes keyed hashes yet; set them directly, as a hashing
    // collector would.
    match &db.location {
        Location::Sqlite(path) => {
            rusqlite::Connection::open(path)
                .unwrap()
                .execute("UPDATE messages SET keyed_hash = X'0102'", [])
                .unwrap();
        }
        Location::Postgres(url) => {
            postgres::Client::connect(url.expose(), postgres::NoTls)
                .unwrap()
                .execute("UPDATE messages SET keyed_hash = '\\x0102'::bytea", &[])
                .unwrap();
        }
    }
    store
}

fn count(store: &mut Store, sql: &str) -> i64 {
    store.count(sql).unwrap()
}

#[test]
fn anonymising_keeps_the_messages_but_points_them_at_no_one() {
    each_backend(|db| {
        let mut store = populate(db);
        let erasure = store
            .forget_user(UserId::new(FORGOTTEN), MessageErasure::Anonymise)
            .unwrap();
        assert_eq!(
            erasure,
            Erasure {
                members_removed: 2,
                messages: MessageErasure::Anonymise,
                messages_changed: 3,
                user_removed: true,
            },
            "{}",
            db.name
        );
        assert_eq!(
            erasure.to_string(),
            "members removed: 2, messages anonymised: 3, user row removed: yes"
        );
        let gone = format!(
            "SELECT (SELECT COUNT(*) FROM members WHERE user_id = {FORGOTTEN})
                  + (SELECT COUNT(*) FROM users WHERE id = {FORGOTTEN})
                  + (SELECT COUNT(*) FROM messages WHERE author_id = {FORGOTTEN})"
        );
        assert_eq!(count(&mut store, &gone), 0, "{}", db.name);
        // The messages still count for their channels, anonymously and
        // without the hash that could link them elsewhere.
        assert_eq!(count(&mut store, "SELECT COUNT(*) FROM messages"), 5);
        let anonymous = format!(
            "SELECT COUNT(*) FROM messages WHERE author_id = {} AND keyed_hash IS NULL",
            ANONYMOUS_AUTHOR
        );
        assert_eq!(count(&mut store, &anonymous), 3);
        // Everyone else is untouched.
        let others = format!(
            "SELECT COUNT(*) FROM messages WHERE author_id = {OTHER} AND keyed_hash IS NOT NULL"
        );
        assert_eq!(count(&mut store, &others), 2);
        assert_eq!(count(&mut store, "SELECT COUNT(*) FROM members"), 1);
        assert_eq!(count(&mut store, "SELECT COUNT(*) FROM users"), 1);

        // Forgetting again finds nothing and says so.
        let again = store
            .forget_user(UserId::new(FORGOTTEN), MessageErasure::Anonymise)
            .unwrap();
        assert_eq!(
            again.to_string(),
            "members removed: 0, messages anonymised: 0, user row removed: no"
        );
    });
}

#[test]
fn deleting_removes_the_messages_and_nothing_else() {
    each_backend(|db| {
        let mut store = populate(db);
        let erasure = store
            .forget_user(UserId::new(FORGOTTEN), MessageErasure::Delete)
            .unwrap();
        assert_eq!(
            erasure.to_string(),
            "members removed: 2, messages deleted: 3, user row removed: yes",
            "{}",
            db.name
        );
        assert_eq!(count(&mut store, "SELECT COUNT(*) FROM messages"), 2);
        let others = format!("SELECT COUNT(*) FROM messages WHERE author_id = {OTHER}");
        assert_eq!(count(&mut store, &others), 2);
        assert_eq!(count(&mut store, "SELECT COUNT(*) FROM members"), 1);
    });
}

#[test]
fn the_anonymous_author_cannot_be_forgotten() {
    each_backend(|db| {
        let mut store = populate(db);
        store
            .forget_user(UserId::new(FORGOTTEN), MessageErasure::Anonymise)
            .unwrap();
        let err = store
            .forget_user(ANONYMOUS_AUTHOR, MessageErasure::Delete)
            .unwrap_err();
        assert!(err.to_string().contains("user id 0"), "{err}");
        // Nothing was deleted.
        assert_eq!(count(&mut store, "SELECT COUNT(*) FROM messages"), 5);
    });
}
