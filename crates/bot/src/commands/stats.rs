//! `/stats`: community statistics from the store's read API. Queries run on
//! the read pool; a slash command is acknowledged first if they take long.
//! Guild-wide numbers are shared between commands for [`STATS_TTL`], so a
//! busy server costs one query per guild per interval, not one per command;
//! past it they are still given while a background read replaces them.

use std::{sync::Arc, time::Duration};

use guildscope_discord::Visibility;
use guildscope_model::{ChannelId, CommandValue, GuildId, Snowflake};
use guildscope_store::{AuthorCount, ChannelCount, ForumThreads, Store, StoreError, TimeWindow};

use super::{Answer, CommandContext, CommandError, Invocation, now_ms};
use crate::{StoreReader, reader::Cached};

/// How long guild-wide statistics are shared between commands.
pub const STATS_TTL: Duration = Duration::from_secs(10);

/// `/stats server`: members, messages over 24 hours and 7 days, the busiest
/// channels.
type ServerNumbers = (u64, u64, u64, Arc<Vec<ChannelCount>>);

/// Messages per channel over 24 hours and over 7 days.
type DayAndWeek = (Vec<ChannelCount>, Vec<ChannelCount>);

/// Guild-wide statistics shared between commands for [`STATS_TTL`].
#[derive(Debug)]
pub struct StatsCache {
    server: Cached<GuildId, ServerNumbers>,
    /// Messages per channel over 24 hours and over 7 days.
    channels: Cached<GuildId, Arc<DayAndWeek>>,
    /// The most active authors of the week.
    authors: Cached<GuildId, Arc<Vec<AuthorCount>>>,
    forums: Cached<GuildId, Arc<Vec<ForumThreads>>>,
}

impl Default for StatsCache {
    /// Background reads of all four take turns, so statistics that expire
    /// together do not take every core at once from the commands.
    fn default() -> Self {
        let refreshes = Arc::new(tokio::sync::Semaphore::new(1));
        Self {
            server: Cached::sharing_refreshes(STATS_TTL, Arc::clone(&refreshes)),
            channels: Cached::sharing_refreshes(STATS_TTL, Arc::clone(&refreshes)),
            authors: Cached::sharing_refreshes(STATS_TTL, Arc::clone(&refreshes)),
            forums: Cached::sharing_refreshes(STATS_TTL, refreshes),
        }
    }
}

/// Authors ranked for `/stats me`.
const RANKED_AUTHORS: u32 = 10;

/// `/stats server|channel|me|help`.
pub(super) async fn stats(
    ctx: &CommandContext,
    invocation: &Invocation,
) -> Result<Answer, CommandError> {
    let (Some(guild), Some(reader)) = (invocation.guild, &ctx.reader) else {
        return Ok(Answer::refused("Statistics are kept for servers only."));
    };
    let scope = Scope {
        ctx,
        invocation,
        reader,
        guild,
    };
    let (sub, options) = invocation.subcommand().unwrap_or(("server", &[]));
    match sub {
        "server" => server(&scope).await,
        "channel" => {
            let channel = options
                .iter()
                .find_map(|o| match o.value {
                    CommandValue::Id(id) if o.name == "channel" => Some(ChannelId::new(id)),
                    _ => None,
                })
                .or(invocation.channel);
            match channel {
                Some(channel) => channel_stats(&scope, channel).await,
                None => Ok(Answer::refused(
                    "Name a channel: `/stats channel #general`.",
                )),
            }
        }
        "me" => me(&scope).await,
        "help" => help_threads(&scope).await,
        other => Ok(Answer::refused(format!(
            "`{other}` is not a statistic this bot keeps; try `server`, `channel`, `me` or `help`."
        ))),
    }
}

/// What every statistic needs: where to read, for which guild, and whom to
/// acknowledge if reading takes long.
struct Scope<'a> {
    ctx: &'a CommandContext,
    invocation: &'a Invocation,
    reader: &'a Arc<StoreReader>,
    guild: GuildId,
}

impl Scope<'_> {
    /// Runs `query` on the read pool. The read borrows nothing, so a cache
    /// can finish it in the background.
    fn read<T: Send + 'static>(
        &self,
        operation: &'static str,
        query: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<T, CommandError>> + Send + 'static {
        let reader = Arc::clone(self.reader);
        async move { Ok(reader.query(operation, query).await?) }
    }

    /// Waits for `work`, acknowledging a slash command first if it takes
    /// long (the answer will be `visibility`).
    async fn in_time<T>(
        &self,
        visibility: Visibility,
        work: impl Future<Output = Result<T, CommandError>>,
    ) -> Result<T, CommandError> {
        self.invocation.in_time(self.ctx, visibility, work).await?
    }
}

fn total(counts: &[ChannelCount]) -> u64 {
    counts.iter().map(|c| c.messages).sum()
}

/// Members, messages over 24 hours and 7 days, and the three busiest
/// channels of the week.
async fn server(scope: &Scope<'_>) -> Result<Answer, CommandError> {
    let (guild, now) = (scope.guild, now_ms());
    let read = scope.read("stats.server", move |store| {
        let members = store.member_count(guild)?;
        let day = total(&store.channel_messages(guild, TimeWindow::last_days(now, 1))?);
        let week_window = TimeWindow::last_days(now, 7);
        let week = total(&store.channel_messages(guild, week_window)?);
        let top = store.top_channels(guild, week_window, 3)?;
        Ok((members, day, week, Arc::new(top)))
    });
    let cached = scope.ctx.stats_cache.server.get_or_read(guild, read);
    let (members, day, week, top) = scope.in_time(Visibility::Public, cached).await?;
    let mut text = format!(
        "**{members}** members · **{day}** messages in the last 24 hours · **{week}** in the last 7 days"
    );
    if !top.is_empty() {
        let list: Vec<String> = top
            .iter()
            .map(|c| format!("<#{}> ({})", c.channel_id.get(), c.messages))
            .collect();
        text.push_str("\nBusiest channels this week: ");
        text.push_str(&list.join(", "));
    }
    Ok(Answer::public(text))
}

/// One channel's messages over 24 hours and 7 days, and its rank among the
/// guild's channels this week.
async fn channel_stats(scope: &Scope<'_>, channel: ChannelId) -> Result<Answer, CommandError> {
    let (guild, now) = (scope.guild, now_ms());
    let read = scope.read("stats.channel", move |store| {
        let day = store.channel_messages(guild, TimeWindow::last_days(now, 1))?;
        let week = store.channel_messages(guild, TimeWindow::last_days(now, 7))?;
        Ok(Arc::new((day, week)))
    });
    let cached = scope.ctx.stats_cache.channels.get_or_read(guild, read);
    let counts = scope.in_time(Visibility::Public, cached).await?;
    let (day, week) = (&counts.0, &counts.1);
    let count = |counts: &[ChannelCount]| {
        counts
            .iter()
            .find(|c| c.channel_id == channel)
            .map_or(0, |c| c.messages)
    };
    let (in_day, in_week) = (count(day), count(week));
    let mut text = format!(
        "<#{}>: **{in_day}** messages in the last 24 hours · **{in_week}** in the last 7 days",
        channel.get()
    );
    if in_week > 0 {
        let rank = 1 + week.iter().filter(|c| c.messages > in_week).count();
        text.push_str(&format!(
            "\n{} busiest of {} active channels this week ({}% of messages)",
            ordinal(rank),
            week.iter().filter(|c| c.messages > 0).count(),
            in_week * 100 / total(week).max(1)
        ));
    }
    Ok(Answer::public(text))
}

/// The caller's own messages over 24 hours and 7 days, and their rank this
/// week if they are among the most active; only they see it.
async fn me(scope: &Scope<'_>) -> Result<Answer, CommandError> {
    let (guild, now, user) = (scope.guild, now_ms(), scope.invocation.user);
    let own = scope.read("stats.me", move |store| {
        let day = store.author_messages(guild, user, TimeWindow::last_days(now, 1))?;
        let week = store.author_messages(guild, user, TimeWindow::last_days(now, 7))?;
        Ok((day, week))
    });
    let ranked = scope.read("stats.top_authors", move |store| {
        let top = store.top_authors(guild, TimeWindow::last_days(now, 7), RANKED_AUTHORS)?;
        Ok(Arc::new(top))
    });
    let ranked = scope.ctx.stats_cache.authors.get_or_read(guild, ranked);
    let both = async {
        let (own, top) = tokio::join!(own, ranked);
        Ok((own?, top?))
    };
    let ((day, week), top) = scope.in_time(Visibility::Ephemeral, both).await?;
    let mut text = format!(
        "You posted **{day}** messages in the last 24 hours · **{week}** in the last 7 days"
    );
    if let Some(rank) = top.iter().position(|a| a.author_id == user) {
        text.push_str(&format!(
            "\nYou are the {} most active member this week.",
            ordinal(rank + 1)
        ));
    }
    Ok(Answer::private(text))
}

/// Help-forum threads in use (open, not archived), per forum.
async fn help_threads(scope: &Scope<'_>) -> Result<Answer, CommandError> {
    let guild = scope.guild;
    let read = scope.read("stats.help", move |store| {
        store.forum_threads_in_use(guild).map(Arc::new)
    });
    let cached = scope.ctx.stats_cache.forums.get_or_read(guild, read);
    let forums = scope.in_time(Visibility::Public, cached).await?;
    if forums.is_empty() {
        return Ok(Answer::public("This server has no help forum."));
    }
    let in_use: u64 = forums.iter().map(|f| f.open_threads).sum();
    let list: Vec<String> = forums
        .iter()
        .map(|f| format!("<#{}> {}", f.forum_id.get(), f.open_threads))
        .collect();
    Ok(Answer::public(format!(
        "**{in_use}** help threads in use: {}",
        list.join(" · ")
    )))
}

/// 1st, 2nd, 3rd, 4th, 11th, 21st...
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::ordinal;

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th"
            ]
        );
    }
}
