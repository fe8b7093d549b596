//! The rollup-backed read queries (PostgreSQL's daily rollups, migration
//! 0004) give exactly what counting every message gives, on both back ends:
//! for windows of whole days, partial days, across midnight and empty; after
//! replays, deletes and forgetting a user in both modes. The expected
//! numbers come from a model of the messages kept in the test; on
//! PostgreSQL the rollup tables are also compared with a recount of
//! `messages`.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{Db, each_backend};
use guildscope_model::{ChannelId, GuildId, MessageId, Snowflake, UserId};
use guildscope_store::{
    ANONYMOUS_AUTHOR, AuthorCount, ChannelCount, Location, MessageErasure, MessageRow, Op, Store,
    TimeWindow,
};

/// 2023-11-14 00:00:00 UTC, a midnight.
const DAY0: i64 = 1_699_920_000_000;
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

const G: GuildId = GuildId::new(1);
const OTHER: GuildId = GuildId::new(2);

/// One stored message as the test sees it.
#[derive(Clone, Copy)]
struct Msg {
    id: u64,
    guild: GuildId,
    channel: u64,
    author: u64,
    at: i64,
}

impl Msg {
    fn op(self) -> Op {
        Op::InsertMessage(MessageRow {
            id: MessageId::new(self.id),
            guild_id: self.guild,
            channel_id: ChannelId::new(self.channel),
            thread_id: None,
            author_id: UserId::new(self.author),
            created_at_ms: self.at,
            keyed_hash: None,
        })
    }
}

/// 1,500 messages over six days around `DAY0` in two guilds, with skewed
/// channels and authors (so top authors needs more than one round of
/// candidates), plus messages on the first and last millisecond of days.
fn messages() -> Vec<Msg> {
    let mut out = Vec::new();
    for i in 0..1_500u64 {
        let r = (i * 2_654_435_761) % 1_000_003;
        let guild = if i % 5 == 4 { OTHER } else { G };
        let channel = 10 + (r * r / 1_000_003) % 7 + if guild == OTHER { 100 } else { 0 };
        // Author 0..300, skewed towards small ids.
        let u = (r % 1_000) as f64 / 1_000.0;
        let author = 1 + (300.0 * u * u * u) as u64;
        let at = DAY0 - 2 * DAY + ((i * 7_919_993_u64) % (6 * DAY as u64)) as i64;
        out.push(Msg {
            id: i + 1,
            guild,
            channel,
            author,
            at,
        });
    }
    for (k, at) in [DAY0, DAY0 - 1, DAY0 + DAY, DAY0 + DAY - 1, DAY0 + 2 * DAY]
        .into_iter()
        .enumerate()
    {
        out.push(Msg {
            id: 10_000 + k as u64,
            guild: G,
            channel: 10,
            author: 7,
            at,
        });
    }
    out
}

fn windows() -> Vec<(&'static str, TimeWindow)> {
    vec![
        ("one whole day", TimeWindow::new(DAY0, DAY0 + DAY)),
        (
            "three whole days",
            TimeWindow::new(DAY0 - DAY, DAY0 + 2 * DAY),
        ),
        (
            "partial days at both ends",
            TimeWindow::new(DAY0 - DAY + 3 * HOUR, DAY0 + 2 * DAY + 5 * HOUR),
        ),
        (
            "spanning midnight",
            TimeWindow::new(DAY0 - HOUR, DAY0 + HOUR),
        ),
        (
            "inside one day",
            TimeWindow::new(DAY0 + HOUR, DAY0 + 20 * HOUR),
        ),
        (
            "starts at midnight, ends inside a day",
            TimeWindow::new(DAY0, DAY0 + 2 * DAY + 1),
        ),
        (
            "starts a millisecond before midnight",
            TimeWindow::new(DAY0 - 1, DAY0 + 3 * DAY),
        ),
        (
            "everything",
            TimeWindow::new(DAY0 - 10 * DAY, DAY0 + 10 * DAY),
        ),
        ("empty", TimeWindow::new(DAY0 + 5, DAY0 + 5)),
        (
            "before the data",
            TimeWindow::new(DAY0 - 9 * DAY, DAY0 - 5 * DAY),
        ),
    ]
}

fn in_window(m: &Msg, guild: GuildId, w: TimeWindow) -> bool {
    m.guild == guild && m.at >= w.from_ms && m.at < w.to_ms
}

fn expected_channels(model: &[Msg], guild: GuildId, w: TimeWindow) -> Vec<ChannelCount> {
    let mut by: BTreeMap<u64, u64> = BTreeMap::new();
    for m in model.iter().filter(|m| in_window(m, guild, w)) {
        *by.entry(m.channel).or_default() += 1;
    }
    by.into_iter()
        .map(|(c, n)| ChannelCount {
            channel_id: ChannelId::new(c),
            messages: n,
        })
        .collect()
}

fn top<K: Copy + Ord>(counts: BTreeMap<K, u64>, limit: usize) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

fn expected_authors(model: &[Msg], guild: GuildId, w: TimeWindow) -> BTreeMap<u64, u64> {
    let mut by = BTreeMap::new();
    for m in model.iter().filter(|m| in_window(m, guild, w)) {
        *by.entry(m.author).or_default() += 1;
    }
    by
}

/// Every rollup-backed query against the model, for every window.
fn check_all(db: &Db, store: &mut Store, model: &[Msg], when: &str) {
    for guild in [G, OTHER] {
        for (name, w) in windows() {
            let ctx = format!("{}: {when}, guild {guild}, {name}", db.name);
            let channels = expected_channels(model, guild, w);
            assert_eq!(store.channel_messages(guild, w).unwrap(), channels, "{ctx}");
            let mut by = BTreeMap::new();
            for c in &channels {
                by.insert(c.channel_id.get(), c.messages);
            }
            for limit in [0, 2, 100] {
                let want: Vec<ChannelCount> = top(by.clone(), limit)
                    .into_iter()
                    .map(|(c, n)| ChannelCount {
                        channel_id: ChannelId::new(c),
                        messages: n,
                    })
                    .collect();
                assert_eq!(
                    store.top_channels(guild, w, limit as u32).unwrap(),
                    want,
                    "{ctx}, top {limit} channels"
                );
            }
            let authors = expected_authors(model, guild, w);
            for limit in [1, 3, 10, 1_000] {
                let want: Vec<AuthorCount> = top(authors.clone(), limit)
                    .into_iter()
                    .map(|(a, n)| AuthorCount {
                        author_id: UserId::new(a),
                        messages: n,
                    })
                    .collect();
                assert_eq!(
                    store.top_authors(guild, w, limit as u32).unwrap(),
                    want,
                    "{ctx}, top {limit} authors"
                );
            }
            for author in [0, 1, 2, 7, 150, 999] {
                assert_eq!(
                    store
                        .author_messages(guild, UserId::new(author), w)
                        .unwrap(),
                    authors.get(&author).copied().unwrap_or(0),
                    "{ctx}, author {author}"
                );
            }
        }
    }
    check_tables(db, when);
}

/// On PostgreSQL, the rollup tables equal a recount of `messages`.
fn check_tables(db: &Db, when: &str) {
    let Location::Postgres(url) = &db.location else {
        return;
    };
    let mut client = postgres::Client::connect(url.expose(), postgres::NoTls).unwrap();
    for (table, recount) in [
        (
            "SELECT guild_id, day, channel_id, messages FROM channel_days WHERE messages <> 0",
            "SELECT guild_id, (created_at AT TIME ZONE 'UTC')::date, channel_id, COUNT(*)
             FROM messages GROUP BY 1, 2, 3",
        ),
        (
            "SELECT guild_id, day, author_id, messages FROM author_days WHERE messages <> 0",
            "SELECT guild_id, (created_at AT TIME ZONE 'UTC')::date, author_id, COUNT(*)
             FROM messages GROUP BY 1, 2, 3",
        ),
        (
            "SELECT guild_id, DATE 'epoch', author_id, messages FROM author_totals
             WHERE messages <> 0",
            "SELECT guild_id, DATE 'epoch', author_id, COUNT(*) FROM messages GROUP BY 1, 2, 3",
        ),
    ] {
        let diff = format!(
            "SELECT COUNT(*) FROM (({table} EXCEPT {recount}) UNION ALL ({recount} EXCEPT {table})) d"
        );
        let n: i64 = client.query_one(&diff, &[]).unwrap().get(0);
        assert_eq!(n, 0, "{when}: {table} differs from a recount");
    }
}

#[test]
fn rollup_backed_reads_match_a_recount() {
    each_backend(|db| {
        let mut store = db.open();
        let mut model = messages();
        let ops: Vec<Op> = model.iter().map(|m| m.op()).collect();
        // In several batches, as the writer commits them.
        for batch in ops.chunks(400) {
            store.apply(batch).unwrap();
        }
        check_all(db, &mut store, &model, "after inserting");

        // Replays, also of a whole batch mixed with new messages, change
        // nothing but the new ones.
        store.apply(&ops[..700]).unwrap();
        let fresh = Msg {
            id: 50_000,
            guild: G,
            channel: 11,
            author: 7,
            at: DAY0 + DAY / 2,
        };
        let mut mixed: Vec<Op> = ops[200..300].to_vec();
        mixed.push(fresh.op());
        mixed.push(fresh.op());
        store.apply(&mixed).unwrap();
        model.push(fresh);
        check_all(db, &mut store, &model, "after replays");

        // Deleted messages still count.
        let deletes: Vec<Op> = model
            .iter()
            .step_by(3)
            .map(|m| Op::DeleteMessage {
                id: MessageId::new(m.id),
                at_ms: m.at + 1,
            })
            .collect();
        store.apply(&deletes).unwrap();
        check_all(db, &mut store, &model, "after deletes");

        // Forgetting the busiest author (1) anonymises; then forgetting
        // author 7 deletes.
        store
            .forget_user(UserId::new(1), MessageErasure::Anonymise)
            .unwrap();
        for m in &mut model {
            if m.author == 1 {
                m.author = ANONYMOUS_AUTHOR.get();
            }
        }
        check_all(db, &mut store, &model, "after anonymising author 1");
        // A second anonymised user merges with the first.
        store
            .forget_user(UserId::new(2), MessageErasure::Anonymise)
            .unwrap();
        for m in &mut model {
            if m.author == 2 {
                m.author = ANONYMOUS_AUTHOR.get();
            }
        }
        check_all(db, &mut store, &model, "after anonymising author 2");
        store
            .forget_user(UserId::new(7), MessageErasure::Delete)
            .unwrap();
        model.retain(|m| m.author != 7);
        check_all(db, &mut store, &model, "after deleting author 7");

        // Writes after erasure keep counting.
        let late = Msg {
            id: 60_000,
            guild: G,
            channel: 12,
            author: 7,
            at: DAY0,
        };
        store.apply(&[late.op()]).unwrap();
        model.push(late);
        check_all(db, &mut store, &model, "after a new message");
    });
}
