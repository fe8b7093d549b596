//! Typed Discord snowflake ids.
//!
//! Each id kind is its own type so the compiler catches a channel id passed as
//! a user id. Raw integers appear only at the SQL and wire boundaries.

use std::fmt;

/// Milliseconds between the Unix epoch and the Discord epoch (2015-01-01).
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Behaviour shared by every snowflake id.
pub trait Snowflake: Copy {
    /// The raw 64-bit value.
    fn get(self) -> u64;

    /// Unix time in milliseconds at which the id was minted.
    fn timestamp_ms(self) -> u64 {
        (self.get() >> 22) + DISCORD_EPOCH_MS
    }
}

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw snowflake.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }
        }

        impl Snowflake for $name {
            fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    )*};
}

ids! {
    /// A guild (a Discord "server").
    GuildId;
    /// A channel, category or thread.
    ChannelId;
    /// A user account (person or bot).
    UserId;
    /// A message.
    MessageId;
    /// A role.
    RoleId;
    /// An application (the bot's application).
    ApplicationId;
    /// An interaction (a slash command invocation or autocomplete request).
    InteractionId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_of_documented_example_snowflake() {
        // The example from Discord's reference docs: 2016-04-30 11:18:25.796 UTC.
        let id = UserId::new(175_928_847_299_117_063);
        assert_eq!(id.timestamp_ms(), 1_462_015_105_796);
    }

    #[test]
    fn parses_and_displays_round_trip() {
        let id: GuildId = "81384788765712384".parse().unwrap();
        assert_eq!(id.to_string(), "81384788765712384");
        assert_eq!(format!("{id:?}"), "GuildId(81384788765712384)");
    }
}
