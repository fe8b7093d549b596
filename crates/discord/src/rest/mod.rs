//! The instrumented REST client: domain-level calls over twilight-http.
//!
//! Callers speak guildscope types (`GuildId`, `Interaction`, `MessageMeta`);
//! twilight types stay inside. Every call runs in a `discord.rest` span with
//! the route template and the resulting status, and twilight's rate limiter
//! stays on so rate-limit headers and 429s are honoured (a 429 is retried
//! after the wait Discord asked for).

mod command;
mod error;
mod guild;

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use guildscope_model::{
    ApplicationId, ChannelId, GuildId, Interaction, MessageId, MessageMeta, RoleId, RoleInfo,
    Snowflake, UserId,
};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use tracing::{Instrument, field};
use twilight_http::{Client, Response};
use twilight_model::{
    application::command::{CommandOptionChoice, CommandOptionChoiceValue},
    channel::message::MessageFlags,
    http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType},
    id::Id,
};

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

/// A cloneable client for Discord's REST API.
#[derive(Clone)]
pub struct Rest {
    /// Shared state.
    inner: Arc<RestInner>,
}

/// The state every clone shares.
struct RestInner {
    /// twilight's client, with its rate limiter.
    client: Client,
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
            .finish_non_exhaustive()
    }
}

impl Rest {
    /// A client for `config.api_base` (Discord itself when `None`).
    ///
    /// Must be called inside a tokio runtime: twilight's rate limiter runs as
    /// a task.
    pub fn new(config: &DiscordConfig) -> Self {
        crate::install_crypto_provider();
        let mut builder = Client::builder().token(config.token.expose().to_owned());
        if let Some(base) = &config.api_base {
            let base = base.trim_end_matches('/');
            builder = match base.strip_prefix("http://") {
                Some(host) => builder.proxy(host.to_owned(), true),
                None => builder.proxy(
                    base.strip_prefix("https://").unwrap_or(base).to_owned(),
                    false,
                ),
            };
        }
        Self {
            inner: Arc::new(RestInner {
                client: builder.build(),
                application_id: OnceCell::new(),
                api_base: config.api_base.clone(),
                content_key: config.content_key.clone(),
            }),
        }
    }

    /// What `GET gateway/bot` says about how to connect.
    pub async fn gateway_info(&self) -> Result<GatewayInfo, RestError> {
        let info = call(route::GATEWAY_BOT, async {
            model(self.inner.client.gateway().authed().await).await
        })
        .await?;
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
        let user = call(route::CURRENT_USER, async {
            model(self.inner.client.current_user().await).await
        })
        .await?;
        Ok(UserId::new(user.id.get()))
    }

    /// The bot's application id (fetched once, then cached).
    pub async fn application_id(&self) -> Result<ApplicationId, RestError> {
        self.inner
            .application_id
            .get_or_try_init(|| async {
                let application = call(route::CURRENT_APPLICATION, async {
                    model(self.inner.client.current_user_application().await).await
                })
                .await?;
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
        call(route, async {
            self.inner
                .client
                .interaction(application)
                .create_response(id, interaction.token.expose(), response)
                .await
                .map(drop)
                .map_err(Failure::from)
        })
        .await
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
        call(route, async {
            self.inner
                .client
                .interaction(application)
                .update_response(interaction.token.expose())
                .content(Some(&content))
                .await
                .map(drop)
                .map_err(Failure::from)
        })
        .await
    }

    /// Sends another message answering the interaction.
    pub async fn followup(
        &self,
        interaction: &Interaction,
        reply: InteractionReply,
    ) -> Result<MessageId, RestError> {
        let route = route::FOLLOWUP;
        let application = twid(interaction.application_id.get(), route)?;
        let message = call(route, async {
            let client = self.inner.client.interaction(application);
            let request = client
                .create_followup(interaction.token.expose())
                .content(&reply.content);
            let request = if reply.ephemeral {
                request.flags(MessageFlags::EPHEMERAL)
            } else {
                request
            };
            lean::<wire::IdOnly<twilight_model::id::marker::MessageMarker>, _>(request.await).await
        })
        .await?;
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
        let message = call(route, async {
            let request = self.inner.client.create_message(channel).content(&content);
            lean::<wire::IdOnly<twilight_model::id::marker::MessageMarker>, _>(request.await).await
        })
        .await?;
        Ok(MessageId::new(message.id.get()))
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
        let request = self.inner.client.channel_messages(channel);
        let bytes = match (page.before, page.after) {
            (Some(_), Some(_)) => {
                return Err(RestError::Invalid {
                    route,
                    reason: "a page can go before or after a message, not both",
                });
            }
            (Some(before), None) => {
                let before = twid(before.get(), route)?;
                call(route, async {
                    body(request.before(before).limit(page.limit).await).await
                })
                .await?
            }
            (None, Some(after)) => {
                let after = twid(after.get(), route)?;
                call(route, async {
                    body(request.after(after).limit(page.limit).await).await
                })
                .await?
            }
            (None, None) => {
                call(route, async { body(request.limit(page.limit).await).await }).await?
            }
        };
        let messages: Vec<wire::Message<'_>> =
            serde_json::from_slice(&bytes).map_err(|_| RestError::Decode { route })?;
        let key = self.inner.content_key.as_ref();
        Ok(messages
            .into_iter()
            .map(|m| m.into_meta(None, key))
            .collect())
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
        call(route, async {
            self.inner
                .client
                .add_guild_member_role(guild, user, role)
                .await
                .map(drop)
                .map_err(Failure::from)
        })
        .await
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
        call(route, async {
            self.inner
                .client
                .remove_guild_member_role(guild, user, role)
                .await
                .map(drop)
                .map_err(Failure::from)
        })
        .await
    }

    /// A guild's roles.
    pub async fn guild_roles(&self, guild: GuildId) -> Result<Vec<RoleInfo>, RestError> {
        let route = route::GUILD_ROLES;
        let guild = twid(guild.get(), route)?;
        let bytes = call(route, async {
            body(self.inner.client.roles(guild).await).await
        })
        .await?;
        let roles: Vec<wire::Role> =
            serde_json::from_slice(&bytes).map_err(|_| RestError::Decode { route })?;
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
                call(route, async {
                    self.inner
                        .client
                        .interaction(application)
                        .set_global_commands(&commands)
                        .await
                        .map(drop)
                        .map_err(Failure::from)
                })
                .await
            }
            CommandScope::Guild(guild) => {
                let route = route::SET_GUILD_COMMANDS;
                let application = twid(application.get(), route)?;
                let guild = twid(guild.get(), route)?;
                call(route, async {
                    self.inner
                        .client
                        .interaction(application)
                        .set_guild_commands(guild, &commands)
                        .await
                        .map(drop)
                        .map_err(Failure::from)
                })
                .await
            }
        }
    }

    /// A measured REST round trip (`GET users/@me`), rate-limit waits included.
    pub async fn ping_rest(&self) -> Result<Duration, RestError> {
        let started = Instant::now();
        self.current_user().await?;
        Ok(started.elapsed())
    }
}

/// twilight's id for a raw snowflake; zero is not an id.
fn twid<M>(raw: u64, route: &'static str) -> Result<Id<M>, RestError> {
    Id::new_checked(raw).ok_or(RestError::Invalid {
        route,
        reason: "an id is zero",
    })
}

/// Why a call failed before it became a [`RestError`].
enum Failure {
    /// twilight reported an error.
    Http(twilight_http::Error),
    /// The body could not be read (transport trouble mid-body).
    Body(Box<dyn std::error::Error + Send + Sync>),
    /// The body was read but did not have the expected shape.
    Decode,
}

impl From<twilight_http::Error> for Failure {
    fn from(error: twilight_http::Error) -> Self {
        Failure::Http(error)
    }
}

impl From<twilight_http::response::DeserializeBodyError> for Failure {
    fn from(error: twilight_http::response::DeserializeBodyError) -> Self {
        match error.kind() {
            twilight_http::response::DeserializeBodyErrorType::Chunking => Failure::Body(
                error
                    .into_source()
                    .unwrap_or_else(|| "response body cut short".into()),
            ),
            _ => Failure::Decode,
        }
    }
}

/// Runs one REST call inside a `discord.rest` span that records the route,
/// the outcome and the duration (rate-limit waits included).
async fn call<T>(
    route: &'static str,
    request: impl Future<Output = Result<T, Failure>>,
) -> Result<T, RestError> {
    let span = tracing::info_span!(
        "discord.rest",
        http.route = route,
        http.status_code = field::Empty,
        otel.status_code = field::Empty,
        duration_ms = field::Empty,
    );
    let started = Instant::now();
    let result = request
        .instrument(span.clone())
        .await
        .map_err(|failure| match failure {
            Failure::Http(error) => RestError::from_twilight(route, error),
            Failure::Body(source) => RestError::Transport { route, source },
            Failure::Decode => RestError::Decode { route },
        });
    span.record("duration_ms", started.elapsed().as_secs_f64() * 1_000.0);
    match &result {
        Ok(_) => {
            span.record("otel.status_code", "OK");
        }
        Err(error) => {
            if let Some(status) = error.status() {
                span.record("http.status_code", status);
            }
            span.record("otel.status_code", "ERROR");
            tracing::debug!(parent: &span, route, kind = error.kind().as_str(), "discord rest call failed");
        }
    }
    result
}

/// Deserializes a response with twilight's full model.
async fn model<T: DeserializeOwned + Unpin + Send + 'static>(
    response: Result<Response<T>, twilight_http::Error>,
) -> Result<T, Failure> {
    Ok(response?.model().await?)
}

/// A response's raw body.
async fn body<T>(response: Result<Response<T>, twilight_http::Error>) -> Result<Vec<u8>, Failure> {
    Ok(response?.bytes().await?)
}

/// Deserializes a response into a lean mirror, so unused fields (message
/// content in particular) are skipped.
async fn lean<L: DeserializeOwned, T>(
    response: Result<Response<T>, twilight_http::Error>,
) -> Result<L, Failure> {
    let bytes = body(response).await?;
    serde_json::from_slice(&bytes).map_err(|_| Failure::Decode)
}
