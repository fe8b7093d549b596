//! Gateway discovery, the bot user and application, and application command registration.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
};
use serde_json::{Value, json};
use twilight_model::{
    gateway::{SessionStartLimit, connection_info::BotConnectionInfo},
    oauth::Application,
    user::CurrentUser,
};

use super::error::{ApiError, snowflake};
use crate::{
    community::wire,
    state::{Shared, Stats, lock},
};

/// Sessions a bot may start per day.
const SESSION_START_TOTAL: u32 = 1000;

/// `GET /gateway`.
pub(crate) async fn gateway(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "url": shared.info.gateway_url }))
}

/// `GET /gateway/bot`.
pub(crate) async fn gateway_bot(State(shared): State<Arc<Shared>>) -> Json<BotConnectionInfo> {
    let used = u32::try_from(Stats::get(&shared.stats.identifies)).unwrap_or(u32::MAX);
    let elapsed = u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Json(BotConnectionInfo {
        session_start_limit: SessionStartLimit {
            max_concurrency: u16::try_from(shared.config.max_concurrency).unwrap_or(1),
            remaining: SESSION_START_TOTAL.saturating_sub(used),
            reset_after: 86_400_000u64.saturating_sub(elapsed % 86_400_000),
            total: SESSION_START_TOTAL,
        },
        shards: shared.config.shards,
        url: shared.info.gateway_url.clone(),
    })
}

/// `GET /users/@me`.
pub(crate) async fn current_user(State(shared): State<Arc<Shared>>) -> Json<CurrentUser> {
    let world = shared.world();
    Json(wire::current_user(&world.bot))
}

/// `GET /applications/@me`.
pub(crate) async fn current_application(State(shared): State<Arc<Shared>>) -> Json<Application> {
    let world = shared.world();
    let bot = &world.bot;
    let owner = world
        .guilds
        .first()
        .map(|g| wire::user(g.owner_id, world.user(g.owner_id)));
    let bot_user = wire::user(bot.user_id, world.user(bot.user_id));
    Json(Application {
        approximate_guild_count: Some(world.guilds.len() as u64),
        approximate_user_install_count: None,
        bot: Some(bot_user),
        bot_public: false,
        bot_require_code_grant: false,
        cover_image: None,
        custom_install_url: None,
        description: "guildscope, simulated".to_owned(),
        flags: Some(wire::application_flags()),
        guild: None,
        guild_id: None,
        icon: None,
        id: wire::id(bot.application_id),
        install_params: None,
        integration_types_config: None,
        interactions_endpoint_url: None,
        name: bot.name.clone(),
        owner,
        primary_sku_id: None,
        privacy_policy_url: None,
        redirect_uris: None,
        role_connections_verification_url: None,
        rpc_origins: Vec::new(),
        slug: None,
        tags: None,
        team: None,
        terms_of_service_url: None,
        verify_key: format!("{:064x}", u128::from(bot.application_id)),
    })
}

fn check_application(shared: &Shared, application: &str) -> Result<(), ApiError> {
    let id = snowflake(application, ApiError::UNKNOWN_APPLICATION)?;
    if id == shared.world().bot.application_id {
        Ok(())
    } else {
        Err(ApiError::UNKNOWN_APPLICATION)
    }
}

fn check_guild(shared: &Shared, guild: &str) -> Result<u64, ApiError> {
    let id = snowflake(guild, ApiError::UNKNOWN_GUILD)?;
    shared
        .world()
        .guild_idx(id)
        .map(|_| id)
        .ok_or(ApiError::UNKNOWN_GUILD)
}

fn overwrite(
    shared: &Shared,
    guild: Option<u64>,
    body: &[u8],
) -> Result<Json<Vec<Value>>, ApiError> {
    let commands: Vec<Value> = serde_json::from_slice(body).map_err(|_| ApiError::INVALID_JSON)?;
    if commands.len() > 100 {
        return Err(ApiError::invalid_form("at most 100 commands"));
    }
    let mut world = shared.world();
    let application_id = world.bot.application_id;
    let stored = lock(&shared.commands)
        .overwrite(guild, commands, application_id, || world.next_id())
        .map_err(|e| ApiError::invalid_form(format!("command {}: {}", e.index, e.reason)))?;
    tracing::info!(
        guild_id = guild.unwrap_or(0),
        count = stored.len(),
        "commands registered"
    );
    Ok(Json(stored))
}

/// `GET /applications/{application}/commands`.
pub(crate) async fn global_commands(
    State(shared): State<Arc<Shared>>,
    Path(application): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_application(&shared, &application)?;
    Ok(Json(lock(&shared.commands).list(None)))
}

/// `PUT /applications/{application}/commands` (bulk overwrite).
pub(crate) async fn set_global_commands(
    State(shared): State<Arc<Shared>>,
    Path(application): Path<String>,
    body: Bytes,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_application(&shared, &application)?;
    overwrite(&shared, None, &body)
}

/// `GET /applications/{application}/guilds/{guild}/commands`.
pub(crate) async fn guild_commands(
    State(shared): State<Arc<Shared>>,
    Path((application, guild)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_application(&shared, &application)?;
    let guild = check_guild(&shared, &guild)?;
    Ok(Json(lock(&shared.commands).list(Some(guild))))
}

/// `PUT /applications/{application}/guilds/{guild}/commands` (bulk overwrite).
pub(crate) async fn set_guild_commands(
    State(shared): State<Arc<Shared>>,
    Path((application, guild)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_application(&shared, &application)?;
    let guild = check_guild(&shared, &guild)?;
    overwrite(&shared, Some(guild), &body)
}
