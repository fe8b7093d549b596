//! Guild routes: the guild, its roles, channels, active threads, members, and member role
//! changes (which also change the simulator's state and emit GUILD_MEMBER_UPDATE).

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use http::StatusCode;
use twilight_model::{
    channel::{Channel, thread::ThreadsListing},
    guild::{Guild, Member, Role},
};

use super::error::{ApiError, snowflake};
use crate::{
    community::{GuildState, RoleKind, World, wire},
    emit,
    state::Shared,
};

fn guild_index(world: &World, guild: &str) -> Result<usize, ApiError> {
    let id = snowflake(guild, ApiError::UNKNOWN_GUILD)?;
    world.guild_idx(id).ok_or(ApiError::UNKNOWN_GUILD)
}

fn with_guild<T>(
    shared: &Shared,
    guild: &str,
    f: impl FnOnce(&World, &GuildState) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let world = shared.world();
    let g = guild_index(&world, guild)?;
    let state = world.guilds.get(g).ok_or(ApiError::UNKNOWN_GUILD)?;
    f(&world, state)
}

/// `GET /guilds/{guild}`.
pub(crate) async fn get_guild(
    State(shared): State<Arc<Shared>>,
    Path(guild): Path<String>,
) -> Result<Json<Guild>, ApiError> {
    with_guild(&shared, &guild, |world, g| {
        let mut guild = wire::guild(world, g, Vec::new(), false);
        guild.approximate_member_count = Some(g.members.len() as u64);
        guild.approximate_presence_count = Some(g.members.len() as u64 / 5);
        guild.member_count = None;
        Ok(Json(guild))
    })
}

/// `GET /guilds/{guild}/roles`.
pub(crate) async fn roles(
    State(shared): State<Arc<Shared>>,
    Path(guild): Path<String>,
) -> Result<Json<Vec<Role>>, ApiError> {
    with_guild(&shared, &guild, |world, g| {
        Ok(Json(
            g.roles
                .iter()
                .map(|r| wire::role(r, world.bot.user_id))
                .collect(),
        ))
    })
}

/// `GET /guilds/{guild}/channels`.
pub(crate) async fn channels(
    State(shared): State<Arc<Shared>>,
    Path(guild): Path<String>,
) -> Result<Json<Vec<Channel>>, ApiError> {
    with_guild(&shared, &guild, |_, g| {
        Ok(Json(
            g.channels
                .iter()
                .map(|c| wire::channel(g, c, true))
                .collect(),
        ))
    })
}

/// `GET /guilds/{guild}/threads/active`.
pub(crate) async fn active_threads(
    State(shared): State<Arc<Shared>>,
    Path(guild): Path<String>,
) -> Result<Json<ThreadsListing>, ApiError> {
    with_guild(&shared, &guild, |_, g| {
        Ok(Json(ThreadsListing {
            has_more: None,
            members: Vec::new(),
            threads: g
                .threads
                .iter()
                .filter(|t| t.thread.as_ref().is_some_and(|s| !s.archived))
                .map(|t| wire::channel(g, t, true))
                .collect(),
        }))
    })
}

/// `GET /guilds/{guild}/members?limit=&after=`: by user id, ascending.
pub(crate) async fn members(
    State(shared): State<Arc<Shared>>,
    Path(guild): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Member>>, ApiError> {
    let limit = match query.get("limit") {
        None => 1,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid_form("limit must be between 1 and 1000"))?,
    };
    let after = match query.get("after") {
        None => 0,
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::invalid_form("after is not a snowflake"))?,
    };
    with_guild(&shared, &guild, |world, g| {
        let mut ids: Vec<u64> = g
            .members
            .iter()
            .map(|m| m.user_id)
            .filter(|&id| id > after)
            .collect();
        ids.sort_unstable();
        Ok(Json(
            ids.into_iter()
                .take(limit)
                .filter_map(|id| g.member(id))
                .map(|m| wire::member(world, m))
                .collect(),
        ))
    })
}

/// `GET /guilds/{guild}/members/{user}`.
pub(crate) async fn member(
    State(shared): State<Arc<Shared>>,
    Path((guild, user)): Path<(String, String)>,
) -> Result<Json<Member>, ApiError> {
    let user_id = snowflake(&user, ApiError::UNKNOWN_MEMBER)?;
    with_guild(&shared, &guild, |world, g| {
        g.member(user_id)
            .map(|m| Json(wire::member(world, m)))
            .ok_or(ApiError::UNKNOWN_MEMBER)
    })
}

/// Whether a member role route adds or removes the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleEdit {
    Add,
    Remove,
}

/// Adds or removes a role; Discord's checks: the role exists, is not managed or @everyone,
/// and sits below the bot's highest role.
fn change_role(
    shared: &Shared,
    guild: &str,
    user: &str,
    role: &str,
    edit: RoleEdit,
) -> Result<Response, ApiError> {
    let add = edit == RoleEdit::Add;
    let user_id = snowflake(user, ApiError::UNKNOWN_MEMBER)?;
    let role_id = snowflake(role, ApiError::UNKNOWN_ROLE)?;
    let mut world = shared.world();
    let g = guild_index(&world, guild)?;
    let bot_id = world.bot.user_id;
    let changed = {
        let state = world.guilds.get_mut(g).ok_or(ApiError::UNKNOWN_GUILD)?;
        let role = state.role(role_id).ok_or(ApiError::UNKNOWN_ROLE)?;
        let bot_top = state.member(bot_id).map_or(0, |m| state.top_position(m));
        if matches!(role.kind, RoleKind::Everyone | RoleKind::Integration)
            || role.position >= bot_top
        {
            return Err(ApiError::MISSING_PERMISSIONS);
        }
        let member = state.member_mut(user_id).ok_or(ApiError::UNKNOWN_MEMBER)?;
        let has = member.roles.contains(&role_id);
        if add && !has {
            member.roles.push(role_id);
        } else if !add && has {
            member.roles.retain(|&r| r != role_id);
        }
        add != has
    };
    if changed {
        tracing::debug!(user_id, role_id, add, "member role changed over REST");
        emit::member_update(&shared.hub, &mut world, g, user_id);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /guilds/{guild}/members/{user}/roles/{role}`.
pub(crate) async fn add_role(
    State(shared): State<Arc<Shared>>,
    Path((guild, user, role)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    change_role(&shared, &guild, &user, &role, RoleEdit::Add)
}

/// `DELETE /guilds/{guild}/members/{user}/roles/{role}`.
pub(crate) async fn remove_role(
    State(shared): State<Arc<Shared>>,
    Path((guild, user, role)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    change_role(&shared, &guild, &user, &role, RoleEdit::Remove)
}
