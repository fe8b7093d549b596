//! Backfill planning and bookkeeping on both back ends: which channels a
//! backfill pages through, and progress that resumes and never moves
//! backwards.

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::each_backend;
use guildscope_model::{ChannelId, ChannelKind, GuildId, MessageId};
use guildscope_store::{
    BackfillTarget, BackfillWindow, ChannelProgress, ChannelRow, Op, ThreadRow,
};

const GUILD: GuildId = GuildId::new(1);

fn channel(id: u64, kind: ChannelKind, category: Option<u64>) -> Op {
    Op::UpsertChannel(ChannelRow {
        id: ChannelId::new(id),
        guild_id: GUILD,
        name: format!("c{id}"),
        kind,
        category_id: category.map(ChannelId::new),
    })
}

fn thread(id: u64, parent: u64) -> Op {
    Op::UpsertThread(ThreadRow {
        id: ChannelId::new(id),
        guild_id: GUILD,
        parent_id: Some(ChannelId::new(parent)),
        name: format!("t{id}"),
        archived: id.is_multiple_of(2),
        locked: false,
        created_at_ms: Some(1_700_000_000_000),
    })
}

#[test]
fn targets_are_readable_channels_then_threads_with_their_parents() {
    each_backend(|db| {
        let mut store = db.open();
        store
            .apply(&[
                Op::UpsertGuild {
                    id: GUILD,
                    name: "g".into(),
                },
                Op::UpsertGuild {
                    id: GuildId::new(2),
                    name: "other".into(),
                },
                channel(10, ChannelKind::Category, None),
                channel(13, ChannelKind::Forum, Some(10)),
                channel(11, ChannelKind::Text, Some(10)),
                channel(12, ChannelKind::Announcement, None),
                channel(14, ChannelKind::Voice, Some(10)),
                channel(15, ChannelKind::Text, None),
                Op::DeleteChannel {
                    id: ChannelId::new(15),
                },
                thread(21, 13),
                thread(20, 11),
                thread(22, 11),
                Op::DeleteThread {
                    id: ChannelId::new(22),
                },
            ])
            .unwrap();
        assert_eq!(
            store.known_guilds().unwrap(),
            [GUILD, GuildId::new(2)],
            "{}",
            db.name
        );
        let targets = store.backfill_targets(GUILD).unwrap();
        let expected = [
            (11, ChannelKind::Text, None, Some(10)),
            (12, ChannelKind::Announcement, None, None),
            (13, ChannelKind::Forum, None, Some(10)),
            (20, ChannelKind::Thread, Some(11), Some(10)),
            (21, ChannelKind::Thread, Some(13), Some(10)),
        ]
        .map(|(id, kind, parent, category)| BackfillTarget {
            guild_id: GUILD,
            channel_id: ChannelId::new(id),
            name: if kind == ChannelKind::Thread {
                format!("t{id}")
            } else {
                format!("c{id}")
            },
            kind,
            parent_id: parent.map(ChannelId::new),
            category_id: category.map(ChannelId::new),
        });
        assert_eq!(targets, expected, "{}", db.name);
        assert!(store.backfill_targets(GuildId::new(2)).unwrap().is_empty());
    });
}

#[test]
fn progress_resumes_per_window_and_never_moves_backwards() {
    each_backend(|db| {
        let mut store = db.open();
        let closed = BackfillWindow {
            since: MessageId::new(1_000),
            until: Some(MessageId::new(9_000)),
        };
        let open = BackfillWindow {
            until: None,
            ..closed
        };
        let channel = ChannelId::new(11);
        assert_eq!(store.backfill_progress(channel, closed).unwrap(), None);

        let first = ChannelProgress {
            cursor: MessageId::new(3_000),
            done: false,
            messages_seen: 100,
            messages_inserted: 90,
        };
        store
            .save_backfill_progress(GUILD, channel, closed, &first)
            .unwrap();
        assert_eq!(
            store.backfill_progress(channel, closed).unwrap(),
            Some(first),
            "{}",
            db.name
        );
        // Another window of the same channel is independent, and an open
        // window is not the closed one.
        assert_eq!(store.backfill_progress(channel, open).unwrap(), None);

        let finished = ChannelProgress {
            cursor: MessageId::new(8_500),
            done: true,
            messages_seen: 150,
            messages_inserted: 120,
        };
        store
            .save_backfill_progress(GUILD, channel, closed, &finished)
            .unwrap();
        // A replayed older save changes nothing.
        store
            .save_backfill_progress(GUILD, channel, closed, &first)
            .unwrap();
        assert_eq!(
            store.backfill_progress(channel, closed).unwrap(),
            Some(finished),
            "{}",
            db.name
        );

        store
            .save_backfill_progress(GUILD, channel, open, &first)
            .unwrap();
        assert_eq!(store.backfill_progress(channel, open).unwrap(), Some(first));
        assert_eq!(
            store
                .count("SELECT COUNT(*) FROM backfill_progress")
                .unwrap(),
            2
        );
    });
}
