//! The instrumented REST client: domain-level calls over twilight-http's
//! request builders.
//!
//! Callers speak guildscope types (`GuildId`, `Interaction`, `MessageMeta`);
//! twilight types stay inside. twilight builds and validates each request;
//! `transport` sends it through guildscope's own rate limiter (`ratelimit`),
//! which honours Discord's headers and 429s and measures every wait. Every
//! call runs in a `discord.rest` span carrying the method, route template,
//! status, rate-limit bucket and time spent waiting on rate limits, and is
//! reported to the [`RestObserver`], if one is set.

mod command;
mod error;
mod guild;
mod ratelimit;
mod transport;

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use guildscope_model::{
    ApplicationId, ChannelId, GuildId, Interaction, MessageId, MessageMeta, RoleId, RoleInfo,
    Snowflake, UserId,
};
use guildscope_trace::{Kind, Span, Status};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use twilight_http::{Client, request::TryIntoRequest};
use twilight_model::{
    application::command::{CommandOptionChoice, CommandOptionChoiceValue},
    channel::message::{AllowedMentions, MessageFlags},
    http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType},
    id::{Id, marker::MessageMarker},
};

use self::transport::{Exchange, Transport};
use crate::{config::DiscordConfig, convert::wire};

pub use self::{
    command::{Choice, ChoiceValue, CommandScope, CommandSpec, OptionKind, OptionSpec},
    error::{RestError, RestErrorKind},
};

/// Route templates, used as span fields and in errors. They never contain
/// ids or tokens.
mod route {
    pub(super) const GATEWAY_BOT: &str = "GET gateway/bot";
    pub(super) const CURRENT_USER: &str = "GET users/@me";
    pub(super) const CURRENT_APPLICATION: &str = "GET applications/@me";
    pub(super) const INTERACTION_CALLBACK: &str =
        "POST interactions/{interaction_id}/{interaction_token}/callback";
    pub(super) const EDIT_ORIGINAL: &str =
        "PATCH webhooks/{application_id}/{interaction_token}/messages/@original";
    pub(super) const FOLLOWUP: &str = "POST webhooks/{application_id}/{interaction_token}";
    pub(super) const CREATE_MESSAGE: &str = "POST channels/{channel_id}/messages";
    pub(super) const CHANNEL_MESSAGES: &str = "GET channels/{channel_id}/messages";
    pub(super) const ADD_MEMBER_ROLE: &str =
        "PUT guilds/{guild_id}/members/{user_id}/roles/{role_id}";
    pub(super) const REMOVE_MEMBER_ROLE: &str =
        "DELETE guilds/{guild_id}/members/{user_id}/roles/{role_id}";
    pub(super) const GUILD_ROLES: &str = "GET guilds/{guild_id}/roles";
    pub(super) const GLOBAL_COMMANDS: &str = "GET applications/{application_id}/commands";
    pub(super) const GUILD_COMMANDS: &str =
        "GET applications/{application_id}/guilds/{guild_id}/commands";
    pub(super) const SET_GLOBAL_COMMANDS: &str = "PUT applications/{application_id}/commands";
    pub(super) const SET_GUILD_COMMANDS: &str =
        "PUT applications/{application_id}/guilds/{guild_id}/commands";
}

/// The answer to a slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionReply {
    /// The message text.
    pub content: String,
    /// Whether only the invoking user sees it.
    pub ephemeral: bool,
}

impl InteractionReply {
    /// A reply everyone in the channel sees.
    pub fn public(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            ephemeral: false,
        }
    }

    /// A reply only the invoking user sees.
    pub fn ephemeral(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            ephemeral: true,
        }
    }
}

/// Who sees a deferred answer ("the bot is thinking...").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Everyone in the channel.
    Public,
    /// Only the invoking user.
    Ephemeral,
}

/// A page of channel history: messages before or after a message (newest
/// first, as Discord returns them), or the latest ones when neither is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Messages older than this one.
    pub before: Option<MessageId>,
    /// Messages newer than this one.
    pub after: Option<MessageId>,
    /// How many, 1 to 100.
    pub limit: u16,
}

/// What `GET gateway/bot` says about how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayInfo {
    /// The gateway URL.
    pub url: String,
    /// The recommended number of shards.
    pub shards: u32,
    /// How many shards may identify at once (per 5 seconds).
    pub max_concurrency: u16,
    /// Identifies left in the current 24 hour window.
    pub session_start_remaining: u32,
    /// Identifies allowed per window.
    pub session_start_total: u32,
    /// When the window resets.
    pub session_start_reset_after: Duration,
}

/// Sees every completed REST request, so the bot can count requests and
/// rate-limit waits without this crate knowing about metrics.
pub trait RestObserver: Send + Sync + 'static {
    /// Called once per request that was sent, when it completes: `route` is
    /// the route template (`POST channels/{channel_id}/messages`), `status`
    /// the final HTTP status (`None` when no response arrived), and
    /// `ratelimit_wait` the time spent waiting on rate limits before it was
    /// sent, waits before retries after a 429 included. Requests refused
    /// before sending (invalid, or after the token was rejected) are not
    /// reported. Called on the request's task: keep it short and
    /// non-blocking.
    fn request(&self, route: &'static str, status: Option<u16>, ratelimit_wait: Duration);
}

/// A cloneable client for Discord's REST API.
#[derive(Clone)]
pub struct Rest {
    /// Shared state.
    inner: Arc<RestInner>,
    /// Who is told about completed requests.
    observer: Option<Arc<dyn RestObserver>>,
}

/// The state every clone shares.
struct RestInner {
    /// twilight's client, used only to build and validate requests.
    builder: Client,
    /// Sends requests through the rate limiter; the reason it could not be
    /// built (a token that is not a valid header value, a bad API base)
    /// fails every call instead.
    transport: Result<Transport, &'static str>,
    /// The bot's application id, fetched on first use.
    application_id: OnceCell<ApplicationId>,
    /// The API base, for `Debug`.
    api_base: Option<String>,
    /// The key for keyed hashes of message content, when configured.
    content_key: Option<crate::ContentKey>,
}

impl fmt::Debug for Rest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rest")
            .field("api_base", &self.inner.api_base)
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl Rest {
    /// A client for `config.api_base` (Discord itself when `None`; a base
    /// without a scheme means `https`).
    pub fn new(config: &DiscordConfig) -> Self {
        crate::install_crypto_provider();
        Self {
            inner: Arc::new(RestInner {
                builder: Client::builder().ratelimiter(None).build(),
                transport: Transport::new(config.api_base.as_deref(), config.token.expose()),
                application_id: OnceCell::new(),
                api_base: config.api_base.clone(),
                content_key: config.content_key.clone(),
            }),
            observer: None,
        }
    }

    /// This client, reporting every completed request to `observer`. Clones
    /// made from the returned client report to it too; the rate limiter and
    /// connections stay shared with the original.
    pub fn with_observer(self, observer: Arc<dyn RestObserver>) -> Self {
        Self {
            observer: Some(observer),
            ..self
        }
    }

    /// What `GET gateway/bot` says about how to connect.
    pub async fn gateway_info(&self) -> Result<GatewayInfo, RestError> {
        let route = route::GATEWAY_BOT;
        let request = self.inner.builder.gateway().authed().try_into_request();
        let info: twilight_model::gateway::connection_info::BotConnectionInfo =
            self.call(route, request, json).await?;
        Ok(GatewayInfo {
            url: info.url,
            shards: info.shards,
            max_concurrency: info.session_start_limit.max_concurrency,
            session_start_remaining: info.session_start_limit.remaining,
            session_start_total: info.session_start_limit.total,
            session_start_reset_after: Duration::from_millis(info.session_start_limit.reset_after),
        })
    }

    /// The number of shards Discord recommends.
    pub async fn gateway_shards(&self) -> Result<u32, RestError> {
        Ok(self.gateway_info().await?.shards)
    }

    /// The bot's own user id.
    pub async fn current_user(&self) -> Result<UserId, RestError> {
        let route = route::CURRENT_USER;
        let request = self.inner.builder.current_user().try_into_request();
        let user: wire::IdOnly<twilight_model::id::marker::UserMarker> =
            self.call(route, request, json).await?;
        Ok(UserId::new(user.id.get()))
    }

    /// The bot's application id (fetched once, then cached).
    pub async fn application_id(&self) -> Result<ApplicationId, RestError> {
        self.inner
            .application_id
            .get_or_try_init(|| async {
                let route = route::CURRENT_APPLICATION;
                let request = self
                    .inner
                    .builder
                    .current_user_application()
                    .try_into_request();
                let application: wire::IdOnly<twilight_model::id::marker::ApplicationMarker> =
                    self.call(route, request, json).await?;
                Ok(ApplicationId::new(application.id.get()))
            })
            .await
            .copied()
    }

    /// Answers a slash command with a message.
    pub async fn reply(
        &self,
        interaction: &Interaction,
        reply: InteractionReply,
    ) -> Result<(), RestError> {
        let response = InteractionResponse {
            kind: InteractionResponseType::ChannelMessageWithSource,
            data: Some(InteractionResponseData {
                // Answers quote role and channel names: they never ping.
                allowed_mentions: Some(AllowedMentions::default()),
                content: Some(reply.content),
                flags: reply.ephemeral.then_some(MessageFlags::EPHEMERAL),
                ..InteractionResponseData::default()
            }),
        };
        self.respond(interaction, &response).await
    }

    /// Acknowledges a slash command now and answers later with
    /// [`edit_original`](Self::edit_original) (Discord allows 3 s to answer,
    /// 15 minutes to edit).
    pub async fn defer(
        &self,
        interaction: &Interaction,
        visibility: Visibility,
    ) -> Result<(), RestError> {
        let response = InteractionResponse {
            kind: InteractionResponseType::DeferredChannelMessageWithSource,
            data: Some(InteractionResponseData {
                flags: (visibility == Visibility::Ephemeral).then_some(MessageFlags::EPHEMERAL),
                ..InteractionResponseData::default()
            }),
        };
        self.respond(interaction, &response).await
    }

    /// Answers an autocomplete request with `(name, value)` choices (at most 25).
    pub async fn autocomplete(
        &self,
        interaction: &Interaction,
        choices: Vec<(String, String)>,
    ) -> Result<(), RestError> {
        let response = InteractionResponse {
            kind: InteractionResponseType::ApplicationCommandAutocompleteResult,
            data: Some(InteractionResponseData {
                choices: Some(
                    choices
                        .into_iter()
                        .map(|(name, value)| CommandOptionChoice {
                            name,
                            name_localizations: None,
                            value: CommandOptionChoiceValue::String(value),
                        })
                        .collect(),
                ),
                ..InteractionResponseData::default()
            }),
        };
        self.respond(interaction, &response).await
    }

    /// Sends an interaction callback.
    async fn respond(
        &self,
        interaction: &Interaction,
        response: &InteractionResponse,
    ) -> Result<(), RestError> {
        let route = route::INTERACTION_CALLBACK;
        let application = twid(interaction.application_id.get(), route)?;
        let id = twid(interaction.id.get(), route)?;
        let request = self
            .inner
            .builder
            .interaction(application)
            .create_response(id, interaction.token.expose(), response)
            .try_into_request();
        self.call(route, request, ignore).await
    }

    /// Replaces the text of the original answer (after [`defer`](Self::defer)
    /// or [`reply`](Self::reply)).
    pub async fn edit_original(
        &self,
        interaction: &Interaction,
        content: String,
    ) -> Result<(), RestError> {
        let route = route::EDIT_ORIGINAL;
        let application = twid(interaction.application_id.get(), route)?;
        let request = self
            .inner
            .builder
            .interaction(application)
            .update_response(interaction.token.expose())
            .allowed_mentions(Some(&AllowedMentions::default()))
            .content(Some(&content))
            .try_into_request();
        self.call(route, request, ignore).await
    }

    /// Sends another message answering the interaction.
    pub async fn followup(
        &self,
        interaction: &Interaction,
        reply: InteractionReply,
    ) -> Result<MessageId, RestError> {
        let route = route::FOLLOWUP;
        let application = twid(interaction.application_id.get(), route)?;
        let client = self.inner.builder.interaction(application);
        let request = client
            .create_followup(interaction.token.expose())
            .content(&reply.content);
        let request = if reply.ephemeral {
            request.flags(MessageFlags::EPHEMERAL)
        } else {
            request
        };
        let message: wire::IdOnly<MessageMarker> =
            self.call(route, request.try_into_request(), json).await?;
        Ok(MessageId::new(message.id.get()))
    }

    /// Posts a message.
    pub async fn create_message(
        &self,
        channel: ChannelId,
        content: String,
    ) -> Result<MessageId, RestError> {
        let route = route::CREATE_MESSAGE;
        let channel = twid(channel.get(), route)?;
        let request = self
            .inner
            .builder
            .create_message(channel)
            .content(&content)
            .try_into_request();
        let message: wire::IdOnly<MessageMarker> = self.call(route, request, json).await?;
        Ok(MessageId::new(message.id.get()))
    }

    /// Posts a message in `channel` that replies to `message` (a
    /// `message_reference`), mentioning nobody: no `@everyone`, role or user
    /// pings from the text, and no ping of the replied-to author. Fails with
    /// Discord's error 50035 when `message` no longer exists.
    pub async fn reply_to_message(
        &self,
        channel: ChannelId,
        message: MessageId,
        content: String,
    ) -> Result<MessageId, RestError> {
        let route = route::CREATE_MESSAGE;
        let channel = twid(channel.get(), route)?;
        let message = twid(message.get(), route)?;
        // The default allows nothing: an empty `parse` list, `replied_user` false.
        let mentions = AllowedMentions::default();
        let request = self
            .inner
            .builder
            .create_message(channel)
            .content(&content)
            .reply(message)
            .allowed_mentions(Some(&mentions))
            .try_into_request();
        let reply: wire::IdOnly<MessageMarker> = self.call(route, request, json).await?;
        Ok(MessageId::new(reply.id.get()))
    }

    /// A page of a channel's history, as metadata (content is never read).
    /// `guild_id` is left empty: the history endpoint does not say.
    pub async fn channel_messages(
        &self,
        channel: ChannelId,
        page: Page,
    ) -> Result<Vec<MessageMeta>, RestError> {
        let route = route::CHANNEL_MESSAGES;
        let channel = twid(channel.get(), route)?;
        let request = self.inner.builder.channel_messages(channel);
        let request = match (page.before, page.after) {
            (Some(_), Some(_)) => {
                return Err(RestError::Invalid {
                    route,
                    reason: "a page can go before or after a message, not both",
                });
            }
            (Some(before), None) => request
                .before(twid(before.get(), route)?)
                .limit(page.limit)
                .try_into_request(),
            (None, Some(after)) => request
                .after(twid(after.get(), route)?)
                .limit(page.limit)
                .try_into_request(),
            (None, None) => request.limit(page.limit).try_into_request(),
        };
        let key = self.inner.content_key.as_ref();
        self.call(route, request, |bytes| {
            let messages: Vec<wire::Message<'_>> =
                serde_json::from_slice(bytes).map_err(|_| Undecodable)?;
            Ok(messages
                .into_iter()
                .map(|m| m.into_meta(None, key))
                .collect())
        })
        .await
    }

    /// Gives a member a role.
    pub async fn add_member_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
    ) -> Result<(), RestError> {
        let route = route::ADD_MEMBER_ROLE;
        let (guild, user, role) = (
            twid(guild.get(), route)?,
            twid(user.get(), route)?,
            twid(role.get(), route)?,
        );
        let request = self
            .inner
            .builder
            .add_guild_member_role(guild, user, role)
            .try_into_request();
        self.call(route, request, ignore).await
    }

    /// Takes a role from a member.
    pub async fn remove_member_role(
        &self,
        guild: GuildId,
        user: UserId,
        role: RoleId,
    ) -> Result<(), RestError> {
        let route = route::REMOVE_MEMBER_ROLE;
        let (guild, user, role) = (
            twid(guild.get(), route)?,
            twid(user.get(), route)?,
            twid(role.get(), route)?,
        );
        let request = self
            .inner
            .builder
            .remove_guild_member_role(guild, user, role)
            .try_into_request();
        self.call(route, request, ignore).await
    }

    /// A guild's roles.
    pub async fn guild_roles(&self, guild: GuildId) -> Result<Vec<RoleInfo>, RestError> {
        let route = route::GUILD_ROLES;
        let guild = twid(guild.get(), route)?;
        let request = self.inner.builder.roles(guild).try_into_request();
        let roles: Vec<wire::Role> = self.call(route, request, json).await?;
        Ok(roles.into_iter().map(wire::Role::into_info).collect())
    }

    /// Replaces the bot's commands in `scope` with `commands`.
    pub async fn set_commands(
        &self,
        scope: CommandScope,
        commands: Vec<CommandSpec>,
    ) -> Result<(), RestError> {
        let application = self.application_id().await?;
        let commands: Vec<_> = commands.iter().map(CommandSpec::to_twilight).collect();
        match scope {
            CommandScope::Global => {
                let route = route::SET_GLOBAL_COMMANDS;
                let application = twid(application.get(), route)?;
                let request = self
                    .inner
                    .builder
                    .interaction(application)
                    .set_global_commands(&commands)
                    .try_into_request();
                self.call(route, request, ignore).await
            }
            CommandScope::Guild(guild) => {
                let route = route::SET_GUILD_COMMANDS;
                let application = twid(application.get(), route)?;
                let guild = twid(guild.get(), route)?;
                let request = self
                    .inner
                    .builder
                    .interaction(application)
                    .set_guild_commands(guild, &commands)
                    .try_into_request();
                self.call(route, request, ignore).await
            }
        }
    }

    /// The bot's commands registered in `scope`. A command guildscope does
    /// not register (a context-menu command, an option type it does not
    /// use) makes this a [`RestErrorKind::Decode`] error rather than being
    /// left out, so a comparison with guildscope's own commands never misses
    /// it.
    pub async fn commands(&self, scope: CommandScope) -> Result<Vec<CommandSpec>, RestError> {
        let application = self.application_id().await?;
        let (route, request) = match scope {
            CommandScope::Global => {
                let route = route::GLOBAL_COMMANDS;
                let application = twid(application.get(), route)?;
                let request = self
                    .inner
                    .builder
                    .interaction(application)
                    .global_commands()
                    .try_into_request();
                (route, request)
            }
            CommandScope::Guild(guild) => {
                let route = route::GUILD_COMMANDS;
                let application = twid(application.get(), route)?;
                let guild = twid(guild.get(), route)?;
                let request = self
                    .inner
                    .builder
                    .interaction(application)
                    .guild_commands(guild)
                    .try_into_request();
                (route, request)
            }
        };
        self.call(route, request, command::decode_commands).await
    }

    /// A measured REST round trip (`GET users/@me`), rate-limit waits included.
    pub async fn ping_rest(&self) -> Result<Duration, RestError> {
        let started = Instant::now();
        self.current_user().await?;
        Ok(started.elapsed())
    }

    /// Sends one request built by twilight and decodes its body, in a
    /// `discord.rest` span (a child of the current scope's span) that records
    /// the method, route template, status, rate-limit bucket and wait, and the
    /// outcome; then tells the observer.
    async fn call<T>(
        &self,
        route: &'static str,
        request: Result<twilight_http::request::Request, twilight_http::Error>,
        decode: impl FnOnce(&[u8]) -> Result<T, Undecodable>,
    ) -> Result<T, RestError> {
        let mut span = Span::child("discord.rest");
        span.set_name(route);
        span.set_kind(Kind::Client);
        span.set("http.route", route);
        if let Ok(request) = &request {
            span.set("http.request.method", request.method().name());
        }
        let started = Instant::now();
        let mut exchange = Exchange::default();
        let result = async {
            let request = request.map_err(|error| RestError::from_twilight(route, error))?;
            let transport = self
                .inner
                .transport
                .as_ref()
                .map_err(|reason| RestError::Invalid { route, reason })?;
            let body = transport
                .send(route, request, &mut span, &mut exchange)
                .await?;
            decode(&body).map_err(|Undecodable| RestError::Decode { route })
        }
        .await;
        record(&mut span, &exchange, started, &result);
        drop(span);
        if exchange.sent
            && let Some(observer) = &self.observer
        {
            observer.request(route, exchange.status, exchange.waited);
        }
        result
    }
}

/// Records the outcome of a call on its span.
fn record<T>(
    span: &mut Span,
    exchange: &Exchange,
    started: Instant,
    result: &Result<T, RestError>,
) {
    if !span.is_recording() {
        return;
    }
    span.set("duration_ms", ratelimit::millis(started.elapsed()));
    span.set(
        "discord.ratelimit.wait_ms",
        ratelimit::millis(exchange.waited),
    );
    if let Some(status) = exchange.status {
        span.set("http.response.status_code", i64::from(status));
    }
    if let Some(bucket) = &exchange.bucket {
        span.set("discord.ratelimit.bucket", bucket.to_string());
    }
    if exchange.resends > 0 {
        span.set("http.request.resend_count", i64::from(exchange.resends));
    }
    match result {
        Ok(_) => span.set_status(Status::Ok),
        Err(error) => {
            if let Some(code) = error.discord_code() {
                span.set("discord.error_code", code);
            }
            span.set_status(Status::Error(error.kind().as_str().into()));
            tracing::debug!(
                route = error.route(),
                kind = error.kind().as_str(),
                "discord rest call failed"
            );
        }
    }
}

/// twilight's id for a raw snowflake; zero is not an id.
fn twid<M>(raw: u64, route: &'static str) -> Result<Id<M>, RestError> {
    Id::new_checked(raw).ok_or(RestError::Invalid {
        route,
        reason: "an id is zero",
    })
}

/// A response body that does not have the expected shape.
struct Undecodable;

/// Deserializes a response body. twilight's models and the lean mirrors in
/// `wire` both work; a lean mirror skips unused fields, message content in
/// particular.
fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Undecodable> {
    serde_json::from_slice(bytes).map_err(|_| Undecodable)
}

/// Ignores a response body (204 answers have none).
fn ignore(_: &[u8]) -> Result<(), Undecodable> {
    Ok(())
}
