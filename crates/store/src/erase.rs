//! Erasure: forgetting a user on request (a GDPR-style "delete my data").
//!
//! The user's member rows (in every guild) and user row go; their messages
//! are either deleted or anonymised. Anonymised messages keep counting in
//! channel activity but point at no one: `author_id` becomes
//! [`ANONYMOUS_AUTHOR`] and the keyed content hash is cleared, since it could
//! link the message back to a duplicate elsewhere. Everything happens in one
//! transaction, so a failure leaves the user's data whole rather than half
//! erased.

use guildscope_model::UserId;

use crate::{
    PostgresStore, SqliteStore, Store, StoreError,
    backfill::{query_err, sql_id},
};

/// The author id anonymised messages get: no Discord account has id 0.
pub const ANONYMOUS_AUTHOR: UserId = UserId::new(0);

/// What happens to a forgotten user's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageErasure {
    /// The message rows are deleted: channel activity loses them.
    Delete,
    /// The rows stay but their author becomes [`ANONYMOUS_AUTHOR`] and their
    /// keyed hash is cleared.
    Anonymise,
}

impl MessageErasure {
    /// The word used in configuration and output: `delete` or `anonymise`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageErasure::Delete => "delete",
            MessageErasure::Anonymise => "anonymise",
        }
    }

    /// The past tense, for reports: `deleted` or `anonymised`.
    pub const fn past_tense(self) -> &'static str {
        match self {
            MessageErasure::Delete => "deleted",
            MessageErasure::Anonymise => "anonymised",
        }
    }
}

/// What forgetting a user changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    /// Member rows removed, over every guild.
    pub members_removed: u64,
    /// What was done to the user's messages.
    pub messages: MessageErasure,
    /// Message rows deleted or anonymised.
    pub messages_changed: u64,
    /// Whether a user row existed and was removed.
    pub user_removed: bool,
}

impl std::fmt::Display for Erasure {
    /// `members removed: 2, messages anonymised: 5, user row removed: yes`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "members removed: {}, messages {}: {}, user row removed: {}",
            self.members_removed,
            self.messages.past_tense(),
            self.messages_changed,
            if self.user_removed { "yes" } else { "no" }
        )
    }
}

impl Store {
    /// Forgets `user`, in one transaction, and reports what changed.
    /// Forgetting a user the database does not know changes nothing and
    /// says so.
    pub fn forget_user(
        &mut self,
        user: UserId,
        messages: MessageErasure,
    ) -> Result<Erasure, StoreError> {
        let step = "while forgetting a user";
        let user = sql_id(user);
        let anonymous = sql_id(ANONYMOUS_AUTHOR);
        let (members, changed, users) = match self {
            Store::Sqlite(SqliteStore { conn, name, .. }) => {
                if user == anonymous {
                    return Err(query_err(name, step, NOT_A_USER));
                }
                let run =
                    |conn: &mut rusqlite::Connection| -> rusqlite::Result<(usize, usize, usize)> {
                        // IMMEDIATE takes the write lock up front, so a running
                        // bot's writer waits instead of interleaving.
                        let tx = conn
                            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                        let members =
                            tx.execute("DELETE FROM members WHERE user_id = ?1", [user])?;
                        let changed = match messages {
                            MessageErasure::Delete => {
                                tx.execute("DELETE FROM messages WHERE author_id = ?1", [user])?
                            }
                            MessageErasure::Anonymise => tx.execute(
                                "UPDATE messages SET author_id = ?2, keyed_hash = NULL
                             WHERE author_id = ?1",
                                [user, anonymous],
                            )?,
                        };
                        let users = tx.execute("DELETE FROM users WHERE id = ?1", [user])?;
                        tx.commit()?;
                        Ok((members, changed, users))
                    };
                let (m, c, u) = run(conn).map_err(|e| query_err(name, step, e))?;
                (m as u64, c as u64, u as u64)
            }
            Store::Postgres(PostgresStore { client, name, .. }) => {
                if user == anonymous {
                    return Err(query_err(name, step, NOT_A_USER));
                }
                let run =
                    |client: &mut postgres::Client| -> Result<(u64, u64, u64), postgres::Error> {
                        let mut tx = client.transaction()?;
                        let members =
                            tx.execute("DELETE FROM members WHERE user_id = $1", &[&user])?;
                        let row = match messages {
                            MessageErasure::Delete => {
                                tx.query_one(POSTGRES_DELETE_MESSAGES, &[&user])?
                            }
                            MessageErasure::Anonymise => {
                                tx.query_one(POSTGRES_ANONYMISE_MESSAGES, &[&user, &anonymous])?
                            }
                        };
                        let changed = row.get::<_, i64>(0) as u64;
                        let users = tx.execute("DELETE FROM users WHERE id = $1", &[&user])?;
                        tx.commit()?;
                        Ok((members, changed, users))
                    };
                run(client).map_err(|e| query_err(name, step, e))?
            }
        };
        Ok(Erasure {
            members_removed: members,
            messages,
            messages_changed: changed,
            user_removed: users > 0,
        })
    }
}

/// Deletes the user's (`$1`) messages and keeps the daily rollups of
/// migration 0004 exact: the channel days lose the removed messages, and the
/// user's author days and totals go (all their messages are gone).
const POSTGRES_DELETE_MESSAGES: &str = "
    WITH gone AS (
        DELETE FROM messages WHERE author_id = $1
        RETURNING guild_id, channel_id, (created_at AT TIME ZONE 'UTC')::date AS day
    ), per_channel AS (
        SELECT guild_id, day, channel_id, COUNT(*) AS n FROM gone GROUP BY 1, 2, 3
    ), channel_rollup AS (
        UPDATE channel_days c SET messages = c.messages - p.n FROM per_channel p
        WHERE c.guild_id = p.guild_id AND c.day = p.day AND c.channel_id = p.channel_id
    ), guilds AS (
        SELECT DISTINCT guild_id FROM gone
    ), author_rollup AS (
        DELETE FROM author_days a USING guilds g
        WHERE a.guild_id = g.guild_id AND a.author_id = $1
    ), author_total AS (
        DELETE FROM author_totals t USING guilds g
        WHERE t.guild_id = g.guild_id AND t.author_id = $1
    )
    SELECT COUNT(*) FROM gone";

/// Anonymises the user's (`$1`) messages (author `$2`, no keyed hash) and
/// moves their counts in the daily rollups of migration 0004 to `$2`,
/// merging with what `$2` already has. Channel days do not change.
const POSTGRES_ANONYMISE_MESSAGES: &str = "
    WITH moved AS (
        UPDATE messages SET author_id = $2, keyed_hash = NULL WHERE author_id = $1
        RETURNING guild_id, (created_at AT TIME ZONE 'UTC')::date AS day
    ), guilds AS (
        SELECT DISTINCT guild_id FROM moved
    ), old_days AS (
        DELETE FROM author_days a USING guilds g
        WHERE a.guild_id = g.guild_id AND a.author_id = $1
    ), new_days AS (
        INSERT INTO author_days (guild_id, author_id, day, messages)
        SELECT guild_id, $2, day, COUNT(*) FROM moved GROUP BY 1, 3
        ON CONFLICT (guild_id, author_id, day)
        DO UPDATE SET messages = author_days.messages + excluded.messages
    ), old_total AS (
        DELETE FROM author_totals t USING guilds g
        WHERE t.guild_id = g.guild_id AND t.author_id = $1
    ), new_total AS (
        INSERT INTO author_totals (guild_id, author_id, messages)
        SELECT guild_id, $2, COUNT(*) FROM moved GROUP BY 1
        ON CONFLICT (guild_id, author_id)
        DO UPDATE SET messages = author_totals.messages + excluded.messages
    )
    SELECT COUNT(*) FROM moved";

/// Why user id 0 cannot be forgotten.
const NOT_A_USER: &str =
    "user id 0 marks anonymised messages; it is not a user that can be forgotten";
