//! Word lists for generated names and message text. Plain lowercase ASCII only: generated
//! text never needs JSON escaping, which keeps the hot MESSAGE_CREATE path a memcpy.

pub(crate) const GUILD_ADJECTIVES: &[&str] = &[
    "Rusty", "Async", "Friendly", "Quiet", "Midnight", "Open", "Pixel", "Cozy", "Lambda",
    "Borrowed", "Static", "Fearless", "Tiny", "Crimson", "Northern", "Electric",
];

pub(crate) const GUILD_NOUNS: &[&str] = &[
    "Harbor",
    "Hangout",
    "Workshop",
    "Collective",
    "Guild",
    "Lounge",
    "Den",
    "Garden",
    "Commons",
    "Foundry",
    "Campfire",
    "Library",
    "Lab",
    "Arcade",
];

/// Self-assignable "game" roles (no permissions), as reaction-role/`/role` bots hand out.
pub(crate) const GAME_ROLES: &[&str] = &[
    "Minecraft",
    "Factorio",
    "Terraria",
    "Stardew Valley",
    "Rocket League",
    "Celeste",
    "Hollow Knight",
    "Valorant",
    "Chess",
    "Advent of Code",
];

/// (category, [(channel name, topic)]) for the seeded channel layout.
pub(crate) const CATEGORY_LAYOUT: &[(&str, &[&str])] = &[
    ("Information", &["announcements", "rules", "changelog"]),
    (
        "Community",
        &["general", "off-topic", "memes", "showcase", "introductions"],
    ),
    (
        "Development",
        &["dev-chat", "code-review", "algorithms", "web-dev"],
    ),
    ("Games", &["gaming", "looking-for-group"]),
    ("Staff", &["mod-chat", "mod-log"]),
];

pub(crate) const FORUM_NAME: &str = "help-forum";
pub(crate) const VOICE_NAMES: &[&str] = &["Lounge", "Pair Programming"];

pub(crate) const USER_FIRST: &[&str] = &[
    "sunny", "byte", "quiet", "lazy", "rapid", "cosmic", "tiny", "mellow", "brave", "sleepy",
    "clever", "witty", "lucky", "fuzzy", "neon", "silver", "amber", "polar", "turbo", "gentle",
];

pub(crate) const USER_SECOND: &[&str] = &[
    "otter", "ferris", "panda", "falcon", "crab", "lynx", "badger", "moth", "koala", "heron",
    "gecko", "walrus", "raven", "tapir", "yak", "newt", "bison", "orca", "marmot", "puffin",
];

pub(crate) const BOT_NAMES: &[&str] = &["Dyno", "Carl-bot", "MEE6", "Statbot", "YAGPDB"];

pub(crate) const WORDS: &[&str] = &[
    "the",
    "a",
    "i",
    "you",
    "it",
    "is",
    "was",
    "to",
    "and",
    "of",
    "in",
    "that",
    "this",
    "for",
    "with",
    "on",
    "but",
    "not",
    "have",
    "just",
    "so",
    "what",
    "how",
    "why",
    "when",
    "can",
    "anyone",
    "know",
    "think",
    "code",
    "compiler",
    "borrow",
    "checker",
    "lifetime",
    "trait",
    "async",
    "await",
    "runtime",
    "crate",
    "build",
    "test",
    "bug",
    "fix",
    "release",
    "server",
    "game",
    "play",
    "tonight",
    "weekend",
    "lol",
    "nice",
    "thanks",
    "help",
    "error",
    "works",
    "finally",
    "pretty",
    "really",
    "maybe",
    "probably",
    "because",
    "question",
    "answer",
    "channel",
    "docs",
    "example",
    "function",
    "struct",
    "enum",
    "match",
    "closure",
    "iterator",
    "vector",
    "string",
    "memory",
    "fast",
    "slow",
    "today",
    "yesterday",
    "tomorrow",
    "cool",
    "great",
    "weird",
    "idea",
    "project",
    "repo",
    "branch",
    "merge",
    "review",
    "deploy",
    "cargo",
];

/// Names for channels and roles created by live traffic.
pub(crate) const TEMP_TOPICS: &[&str] = &[
    "events",
    "hackathon",
    "book-club",
    "jam",
    "study-group",
    "movie-night",
    "tournament",
];
