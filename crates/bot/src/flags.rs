//! Feature flags: on for everyone, for some roles, users or guilds, or for a
//! stable percentage of users. A flag can gate commands: a gated command is
//! refused to whoever the flag is off for.
//!
//! Every evaluation is a `flag.evaluate` span with the flag, the result and
//! the rule that decided it, and the command's root span gets
//! `flags.<name> = true|false`.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use guildscope_model::{GuildId, RoleId, Snowflake, UserId};
use guildscope_trace::Span;

/// Who a flag turns on for. A flag is on when any of its rules matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flag {
    /// On for everyone.
    pub everyone: bool,
    /// On for holders of these roles.
    pub roles: Vec<RoleId>,
    /// On for these users.
    pub users: Vec<UserId>,
    /// On in these guilds.
    pub guilds: Vec<GuildId>,
    /// On for this share of users (0 to 100), chosen by a stable hash of the
    /// user id and the flag name, so a user keeps their answer and raising
    /// the share only adds users.
    pub percentage: u8,
    /// Commands that are refused to those the flag is off for.
    pub commands: Vec<String>,
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The user.
    pub user: UserId,
    /// The guild the command ran in.
    pub guild: Option<GuildId>,
    /// The user's roles there.
    pub roles: &'a [RoleId],
}

/// Every flag, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    flags: BTreeMap<String, Flag>,
}

impl Flags {
    /// Flags from `(name, flag)` pairs.
    pub fn new(flags: impl IntoIterator<Item = (String, Flag)>) -> Self {
        Self {
            flags: flags.into_iter().collect(),
        }
    }

    /// Whether no flag is defined.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Evaluates `name` for `subject` in a `flag.evaluate` span (a child of the
    /// current scope's span); an unknown flag is off.
    pub fn evaluate(&self, name: &str, subject: Subject<'_>) -> bool {
        let mut span = Span::child("flag.evaluate");
        let (on, reason) = match self.flags.get(name) {
            Some(flag) => decide(name, flag, subject),
            None => (false, "unknown flag"),
        };
        if span.is_recording() {
            span.set("flag.name", name.to_owned());
            span.set("flag.result", on);
            span.set("flag.reason", reason);
        }
        on
    }

    /// Evaluates every flag that gates `command`, recording each result as
    /// `flags.<name>` on `root`; returns the first flag that is off, which
    /// refuses the command.
    pub fn gate(&self, command: &str, subject: Subject<'_>, root: &mut Span) -> Option<&str> {
        let mut refused = None;
        for (name, flag) in &self.flags {
            if !flag.commands.iter().any(|c| c == command) {
                continue;
            }
            let on = self.evaluate(name, subject);
            if root.is_recording() {
                root.set(format!("flags.{name}"), on);
            }
            if !on && refused.is_none() {
                refused = Some(name.as_str());
            }
        }
        refused
    }

    /// Whether any flag that gates `command` is off for `subject`, without
    /// spans (for listing commands).
    pub fn hides(&self, command: &str, subject: Subject<'_>) -> bool {
        self.flags
            .iter()
            .filter(|(_, flag)| flag.commands.iter().any(|c| c == command))
            .any(|(name, flag)| !decide(name, flag, subject).0)
    }
}

/// The flags in force, replaced whole when the configuration is reloaded;
/// a command keeps the set it started with.
#[derive(Debug, Default)]
pub struct LiveFlags {
    current: RwLock<Arc<Flags>>,
}

impl LiveFlags {
    /// Starts with `flags`.
    pub fn new(flags: Flags) -> Self {
        Self {
            current: RwLock::new(Arc::new(flags)),
        }
    }

    /// The flags in force now.
    pub fn current(&self) -> Arc<Flags> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `flags` in force; returns whether anything changed.
    pub fn replace(&self, flags: Flags) -> bool {
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        if **current == flags {
            return false;
        }
        *current = Arc::new(flags);
        true
    }
}

/// Whether `flag` is on for `subject`, and which rule said so.
fn decide(name: &str, flag: &Flag, subject: Subject<'_>) -> (bool, &'static str) {
    if flag.everyone {
        return (true, "everyone");
    }
    if flag.users.contains(&subject.user) {
        return (true, "user");
    }
    if subject.guild.is_some_and(|g| flag.guilds.contains(&g)) {
        return (true, "guild");
    }
    if subject.roles.iter().any(|r| flag.roles.contains(r)) {
        return (true, "role");
    }
    if flag.percentage > 0 && rollout_bucket(name, subject.user) < u64::from(flag.percentage) {
        return (true, "rollout");
    }
    (false, "no rule matched")
}

/// The user's bucket, 0 to 99, for a flag's percentage rollout: FNV-1a over
/// the flag name and the user id, stable across builds and platforms.
pub fn rollout_bucket(flag: &str, user: UserId) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in flag.bytes().chain([0]).chain(user.get().to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash % 100
}

#[cfg(test)]
mod tests {
    use guildscope_trace::{Recorder, Value, sync_scope};

    use super::*;

    fn subject(user: u64, roles: &[RoleId]) -> Subject<'_> {
        Subject {
            user: UserId::new(user),
            guild: Some(GuildId::new(1)),
            roles,
        }
    }

    #[test]
    fn rules_turn_a_flag_on() {
        let flags = Flags::new([
            (
                "all".to_owned(),
                Flag {
                    everyone: true,
                    ..Flag::default()
                },
            ),
            (
                "staff".to_owned(),
                Flag {
                    roles: vec![RoleId::new(7)],
                    ..Flag::default()
                },
            ),
            (
                "guild".to_owned(),
                Flag {
                    guilds: vec![GuildId::new(1)],
                    ..Flag::default()
                },
            ),
            (
                "alice".to_owned(),
                Flag {
                    users: vec![UserId::new(42)],
                    ..Flag::default()
                },
            ),
        ]);
        let staff = [RoleId::new(7)];
        assert!(flags.evaluate("all", subject(1, &[])));
        assert!(flags.evaluate("staff", subject(1, &staff)));
        assert!(!flags.evaluate("staff", subject(1, &[])));
        assert!(flags.evaluate("guild", subject(1, &[])));
        assert!(flags.evaluate("alice", subject(42, &[])));
        assert!(!flags.evaluate("alice", subject(43, &[])));
        assert!(!flags.evaluate("missing", subject(42, &[])));
    }

    #[test]
    fn a_rollout_reaches_about_its_share_and_only_grows() {
        let at = |percentage: u8| {
            let flags = Flags::new([(
                "beta".to_owned(),
                Flag {
                    percentage,
                    ..Flag::default()
                },
            )]);
            (1..=10_000u64)
                .filter(|u| flags.evaluate("beta", subject(*u, &[])))
                .collect::<Vec<_>>()
        };
        let ten = at(10);
        let thirty = at(30);
        assert!((900..=1_100).contains(&ten.len()), "{}", ten.len());
        assert!((2_800..=3_200).contains(&thirty.len()), "{}", thirty.len());
        assert!(ten.iter().all(|u| thirty.contains(u)));
        assert!(at(0).is_empty());
        assert_eq!(at(100).len(), 10_000);
    }

    #[test]
    fn a_gate_refuses_with_the_first_flag_that_is_off() {
        let flags = Flags::new([(
            "stats_beta".to_owned(),
            Flag {
                users: vec![UserId::new(5)],
                commands: vec!["stats".to_owned()],
                ..Flag::default()
            },
        )]);
        let (recorder, _guard) = Recorder::install();
        let mut root = Span::root("command");
        let scope = root.context();
        assert_eq!(
            sync_scope(scope, || flags.gate("stats", subject(6, &[]), &mut root)),
            Some("stats_beta")
        );
        assert_eq!(root.context(), scope);
        assert_eq!(flags.gate("ping", subject(6, &[]), &mut root), None);
        root.end();
        let root = &recorder.named("command")[0];
        assert_eq!(
            root.attribute("flags.stats_beta"),
            Some(&Value::Bool(false))
        );
        let evaluations = recorder.children(root);
        assert_eq!(evaluations.len(), 1, "{evaluations:#?}");
        let evaluation = &evaluations[0];
        assert_eq!(evaluation.name, "flag.evaluate");
        assert_eq!(
            evaluation.attribute("flag.name"),
            Some(&Value::from("stats_beta"))
        );
        assert_eq!(
            evaluation.attribute("flag.result"),
            Some(&Value::Bool(false))
        );
        assert_eq!(
            evaluation.attribute("flag.reason"),
            Some(&Value::from("no rule matched"))
        );

        let mut insider = Span::none();
        assert_eq!(flags.gate("stats", subject(5, &[]), &mut insider), None);
        assert!(flags.hides("stats", subject(6, &[])));
        assert!(!flags.hides("stats", subject(5, &[])));
    }
}
