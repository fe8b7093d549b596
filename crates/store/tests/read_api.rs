//! The read API on both back ends, against a small hand-made data set whose
//! every expected number can be checked by reading the data below.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Db, each_backend};
use guildscope_model::{ChannelId, ChannelKind, GuildId, MessageId, UserId};
use guildscope_store::{
    ActivityBlock, ActivityScope, AuthorCount, ChannelCount, ChannelRow, ForumThreads, MemberRow,
    MembershipDay, MessageRow, Op, Store, ThreadRow, TimeWindow,
};

/// 2023-11-14 00:00:00 UTC, a midnight.
const DAY0: i64 = 1_699_920_000_000;
const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

const G: GuildId = GuildId::new(1);
const OTHER: GuildId = GuildId::new(2);

fn channel(id: u64, guild_id: GuildId, kind: ChannelKind) -> Op {
    Op::UpsertChannel(ChannelRow {
        id: ChannelId::new(id),
        guild_id,
        name: format!("c{id}"),
        kind,
        category_id: None,
    })
}

fn thread(id: u64, guild_id: GuildId, parent: u64, archived: bool) -> Op {
    Op::UpsertThread(ThreadRow {
        id: ChannelId::new(id),
        guild_id,
        parent_id: Some(ChannelId::new(parent)),
        name: format!("t{id}"),
        archived,
        locked: false,
        created_at_ms: Some(DAY0),
    })
}

fn message(id: u64, guild_id: GuildId, channel: u64, author: u64, at: i64) -> Op {
    Op::InsertMessage(MessageRow {
        id: MessageId::new(id),
        guild_id,
        channel_id: ChannelId::new(channel),
        thread_id: None,
        author_id: UserId::new(author),
        created_at_ms: at,
        keyed_hash: None,
    })
}

fn joined(guild_id: GuildId, user: u64, at: i64) -> Op {
    Op::UpsertMember(MemberRow {
        guild_id,
        user_id: UserId::new(user),
        name: format!("u{user}"),
        is_bot: user == 10,
        is_staff: false,
        pending: false,
        joined_at_ms: Some(at),
    })
}

fn left(guild_id: GuildId, user: u64, at_ms: i64) -> Op {
    Op::MemberLeft {
        guild_id,
        user_id: UserId::new(user),
        at_ms,
    }
}

/// The data set. Guild 1 has text channels 10 and 11 and forums 12, 13 and
/// 14 (deleted); guild 2 has forum 20. Times are minutes after `DAY0`.
fn data() -> Vec<Op> {
    let mut ops = vec![
        channel(10, G, ChannelKind::Text),
        channel(11, G, ChannelKind::Text),
        channel(12, G, ChannelKind::Forum),
        channel(13, G, ChannelKind::Forum),
        channel(14, G, ChannelKind::Forum),
        Op::DeleteChannel {
            id: ChannelId::new(14),
        },
        channel(20, OTHER, ChannelKind::Forum),
        // In use: 100 and 101 only. 102 is archived, 103 deleted, 104 is
        // in a text channel, 105 in a deleted forum, 200 in another guild.
        thread(100, G, 12, false),
        thread(101, G, 12, false),
        thread(102, G, 12, true),
        thread(103, G, 12, false),
        Op::DeleteThread {
            id: ChannelId::new(103),
        },
        thread(104, G, 11, false),
        thread(105, G, 14, false),
        thread(200, OTHER, 20, false),
        // Block 0 (00:00–00:10): three in channel 10.
        message(1, G, 10, 7, DAY0),
        message(2, G, 10, 7, DAY0 + 5 * MIN + 30_000),
        message(3, G, 10, 8, DAY0 + 10 * MIN - 1),
        // Block 1: one in channel 11, on the block's first millisecond.
        message(4, G, 11, 7, DAY0 + 10 * MIN),
        // Block 2: a thread message, stored under forum 12.
        Op::InsertMessage(MessageRow {
            id: MessageId::new(5),
            guild_id: G,
            channel_id: ChannelId::new(12),
            thread_id: Some(ChannelId::new(100)),
            author_id: UserId::new(9),
            created_at_ms: DAY0 + 25 * MIN,
            keyed_hash: None,
        }),
        // Block 3: one in channel 10, later deleted; it still counts.
        message(6, G, 10, 8, DAY0 + 35 * MIN),
        Op::DeleteMessage {
            id: MessageId::new(6),
            at_ms: DAY0 + 36 * MIN,
        },
        // The next day.
        message(7, G, 10, 7, DAY0 + DAY + HOUR),
        // The millisecond before DAY0.
        message(8, G, 11, 9, DAY0 - 1),
        // Another guild.
        message(9, OTHER, 20, 7, DAY0 + MIN),
    ];
    ops.extend([
        joined(G, 7, DAY0 + HOUR),
        joined(G, 8, DAY0 + 2 * HOUR),
        joined(G, 9, DAY0 - DAY),
        joined(G, 10, DAY0 + DAY + 5 * HOUR),
        joined(G, 11, DAY0 + 3 * DAY),
        joined(G, 12, DAY0 + 10 * MIN),
        joined(OTHER, 7, DAY0 + HOUR),
    ]);
    ops.extend([
        left(G, 8, DAY0 + DAY + 3 * HOUR),
        left(G, 9, DAY0 + 2 * DAY + 1),
        left(G, 12, DAY0 + 20 * MIN),
    ]);
    // Member 12 comes back the next day.
    ops.push(joined(G, 12, DAY0 + DAY + HOUR));
    ops
}

fn loaded(db: &Db) -> Store {
    let mut store = db.open();
    store.apply(&data()).unwrap();
    store
}

fn channels(pairs: &[(u64, u64)]) -> Vec<ChannelCount> {
    pairs
        .iter()
        .map(|&(id, messages)| ChannelCount {
            channel_id: ChannelId::new(id),
            messages,
        })
        .collect()
}

fn blocks(start: i64, counts: &[u64]) -> Vec<ActivityBlock> {
    counts
        .iter()
        .enumerate()
        .map(|(i, &messages)| ActivityBlock {
            start_ms: start + i as i64 * 10 * MIN,
            messages,
        })
        .collect()
}

/// The first 40 minutes of DAY0: messages 1 to 6.
const FORTY_MINUTES: TimeWindow = TimeWindow {
    from_ms: DAY0,
    to_ms: DAY0 + 40 * MIN,
};

#[test]
fn messages_per_channel_count_deleted_and_thread_messages_inside_the_window() {
    each_backend(|db| {
        let mut store = loaded(db);
        assert_eq!(
            store.channel_messages(G, FORTY_MINUTES).unwrap(),
            channels(&[(10, 4), (11, 1), (12, 1)]),
            "{}",
            db.name
        );
        // The window is half-open: message 8 sits on its last millisecond.
        assert_eq!(
            store
                .channel_messages(G, TimeWindow::new(DAY0 - DAY, DAY0))
                .unwrap(),
            channels(&[(11, 1)]),
            "{}",
            db.name
        );
        assert_eq!(
            store.channel_messages(OTHER, FORTY_MINUTES).unwrap(),
            channels(&[(20, 1)]),
            "{}",
            db.name
        );
    });
}

#[test]
fn top_channels_rank_by_count_then_by_id() {
    each_backend(|db| {
        let mut store = loaded(db);
        // 11 and 12 tie at one message; the lower id wins the last place.
        assert_eq!(
            store.top_channels(G, FORTY_MINUTES, 2).unwrap(),
            channels(&[(10, 4), (11, 1)]),
            "{}",
            db.name
        );
        assert_eq!(
            store
                .top_channels(G, TimeWindow::last_days(DAY0 + 2 * DAY, 2), 10)
                .unwrap(),
            channels(&[(10, 5), (11, 1), (12, 1)]),
            "{}",
            db.name
        );
    });
}

#[test]
fn activity_blocks_are_aligned_complete_and_clipped_to_the_window() {
    each_backend(|db| {
        let mut store = loaded(db);
        assert_eq!(
            store
                .activity_blocks(G, ActivityScope::Guild, FORTY_MINUTES)
                .unwrap(),
            blocks(DAY0, &[3, 1, 1, 1]),
            "{}",
            db.name
        );
        assert_eq!(
            store
                .activity_blocks(G, ActivityScope::Channel(ChannelId::new(10)), FORTY_MINUTES)
                .unwrap(),
            blocks(DAY0, &[3, 0, 0, 1]),
            "{}",
            db.name
        );
        // A window starting mid-block returns that block, counting only the
        // messages inside the window (message 1 is before it).
        assert_eq!(
            store
                .activity_blocks(
                    G,
                    ActivityScope::Guild,
                    TimeWindow::new(DAY0 + 5 * MIN, DAY0 + 30 * MIN)
                )
                .unwrap(),
            blocks(DAY0, &[2, 1, 1]),
            "{}",
            db.name
        );
        // A channel of another guild shows nothing here.
        assert_eq!(
            store
                .activity_blocks(G, ActivityScope::Channel(ChannelId::new(20)), FORTY_MINUTES)
                .unwrap(),
            blocks(DAY0, &[0, 0, 0, 0]),
            "{}",
            db.name
        );
    });
}

#[test]
fn authors_are_counted_over_the_last_days() {
    each_backend(|db| {
        let mut store = loaded(db);
        let two_days = TimeWindow::last_days(DAY0 + 2 * DAY, 2);
        let author = |id: u64, messages: u64| AuthorCount {
            author_id: UserId::new(id),
            messages,
        };
        assert_eq!(
            store.top_authors(G, two_days, 10).unwrap(),
            vec![author(7, 4), author(8, 2), author(9, 1)],
            "{}",
            db.name
        );
        assert_eq!(
            store.top_authors(G, two_days, 1).unwrap(),
            vec![author(7, 4)],
            "{}",
            db.name
        );
        assert_eq!(
            store.author_messages(G, UserId::new(7), two_days).unwrap(),
            4,
            "{}",
            db.name
        );
        // Message 8 is the millisecond before the window.
        assert_eq!(
            store.author_messages(G, UserId::new(9), two_days).unwrap(),
            1,
            "{}",
            db.name
        );
        assert_eq!(
            store
                .author_messages(OTHER, UserId::new(7), two_days)
                .unwrap(),
            1,
            "{}",
            db.name
        );
        assert_eq!(
            store
                .author_messages(G, UserId::new(404), two_days)
                .unwrap(),
            0,
            "{}",
            db.name
        );
    });
}

#[test]
fn joins_and_leaves_are_counted_per_utc_day() {
    each_backend(|db| {
        let mut store = loaded(db);
        let day = |i: i64, joins: u64, leaves: u64| MembershipDay {
            day_ms: DAY0 + i * DAY,
            joins,
            leaves,
        };
        // Day 0: 7 and 8 join (12's first join was replaced by its rejoin).
        // Day 1: 10 and 12 join, 8 leaves. Day 2: 9 leaves. 11 joins after
        // the window.
        assert_eq!(
            store
                .membership_per_day(G, TimeWindow::new(DAY0, DAY0 + 3 * DAY))
                .unwrap(),
            vec![day(0, 2, 0), day(1, 2, 1), day(2, 0, 1)],
            "{}",
            db.name
        );
    });
}

#[test]
fn forum_threads_in_use_skip_archived_deleted_and_non_forum_threads() {
    each_backend(|db| {
        let mut store = loaded(db);
        let forum = |id: u64, open_threads: u64| ForumThreads {
            forum_id: ChannelId::new(id),
            open_threads,
        };
        assert_eq!(
            store.forum_threads_in_use(G).unwrap(),
            vec![forum(12, 2), forum(13, 0)],
            "{}",
            db.name
        );
        assert_eq!(
            store.forum_threads_in_use(OTHER).unwrap(),
            vec![forum(20, 1)],
            "{}",
            db.name
        );
    });
}

#[test]
fn member_count_includes_bots_and_excludes_those_who_left() {
    each_backend(|db| {
        let mut store = loaded(db);
        // 7, 10 (a bot), 11 and 12 (back again); 8 and 9 left.
        assert_eq!(store.member_count(G).unwrap(), 4, "{}", db.name);
        assert_eq!(store.member_count(OTHER).unwrap(), 1, "{}", db.name);
        assert_eq!(store.stored_messages().unwrap(), 9, "{}", db.name);
    });
}

#[test]
fn replaying_the_data_changes_no_answer() {
    each_backend(|db| {
        let mut store = loaded(db);
        store.apply(&data()).unwrap();
        assert_eq!(
            store.channel_messages(G, FORTY_MINUTES).unwrap(),
            channels(&[(10, 4), (11, 1), (12, 1)]),
            "{}",
            db.name
        );
        assert_eq!(store.member_count(G).unwrap(), 4, "{}", db.name);
        assert_eq!(store.stored_messages().unwrap(), 9, "{}", db.name);
    });
}

#[test]
fn the_synthetic_community_is_seeded_once() {
    each_backend(|db| {
        let mut store = db.open();
        let spec = guildscope_store::SyntheticSpec {
            messages: 2_000,
            end_ms: DAY0 + 10 * DAY,
            days: 10,
        };
        assert_eq!(store.seed_synthetic(spec).unwrap(), 2_000, "{}", db.name);
        assert_eq!(store.seed_synthetic(spec).unwrap(), 0, "{}", db.name);
        assert_eq!(store.stored_messages().unwrap(), 2_000, "{}", db.name);
        let guilds = guildscope_store::SyntheticSpec::GUILDS;
        let members: u64 = guilds.iter().map(|g| store.member_count(*g).unwrap()).sum();
        // 60,000 members, of whom every tenth with a leave inside the span left.
        assert!(
            (54_000..60_000).contains(&members),
            "{}: {members}",
            db.name
        );
        let all = TimeWindow::new(DAY0, DAY0 + 10 * DAY);
        let per_guild: u64 = guilds
            .iter()
            .flat_map(|g| store.channel_messages(*g, all).unwrap())
            .map(|c| c.messages)
            .sum();
        assert_eq!(per_guild, 2_000, "{}", db.name);
    });
}
