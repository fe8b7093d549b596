//! Application commands registered through REST bulk overwrites. The traffic generator
//! invokes them (with options generated from their definitions), and tests read them back.

use std::collections::HashMap;

use serde_json::{Value, json};

/// Registered commands: global ones and per-guild ones, as JSON objects with ids assigned.
#[derive(Debug, Default)]
pub(crate) struct CommandRegistry {
    global: Vec<Value>,
    guild: HashMap<u64, Vec<Value>>,
}

/// Why a bulk overwrite was refused (400 Invalid Form Body).
#[derive(Debug, Clone)]
pub(crate) struct InvalidCommand {
    pub(crate) index: usize,
    pub(crate) reason: &'static str,
}

impl CommandRegistry {
    /// Replaces the command list of `guild` (or the global list), keeping the ids of
    /// commands whose name did not change, as Discord does.
    pub(crate) fn overwrite(
        &mut self,
        guild: Option<u64>,
        commands: Vec<Value>,
        application_id: u64,
        mut next_id: impl FnMut() -> u64,
    ) -> Result<Vec<Value>, InvalidCommand> {
        for (index, command) in commands.iter().enumerate() {
            validate(command).map_err(|reason| InvalidCommand { index, reason })?;
        }
        let previous = match guild {
            Some(g) => self.guild.get(&g).cloned().unwrap_or_default(),
            None => self.global.clone(),
        };
        let stored: Vec<Value> = commands
            .into_iter()
            .map(|mut command| {
                let name = command["name"].as_str().unwrap_or_default().to_owned();
                let kind = command.get("type").and_then(Value::as_u64).unwrap_or(1);
                let id = previous
                    .iter()
                    .find(|p| p["name"] == name.as_str() && p["type"] == kind)
                    .and_then(|p| p["id"].as_str())
                    .map_or_else(|| next_id().to_string(), str::to_owned);
                if let Value::Object(map) = &mut command {
                    map.insert("id".into(), json!(id));
                    map.insert("application_id".into(), json!(application_id.to_string()));
                    map.insert("version".into(), json!(next_id().to_string()));
                    map.insert("type".into(), json!(kind));
                    map.entry("description").or_insert(json!(""));
                    map.entry("options").or_insert(json!([]));
                    map.entry("default_member_permissions")
                        .or_insert(Value::Null);
                    map.entry("nsfw").or_insert(json!(false));
                    map.entry("contexts").or_insert(Value::Null);
                    map.entry("integration_types").or_insert(json!([0]));
                    match guild {
                        Some(g) => {
                            map.insert("guild_id".into(), json!(g.to_string()));
                        }
                        None => {
                            map.remove("guild_id");
                        }
                    }
                }
                command
            })
            .collect();
        match guild {
            Some(g) => {
                self.guild.insert(g, stored.clone());
            }
            None => self.global.clone_from(&stored),
        }
        Ok(stored)
    }

    pub(crate) fn list(&self, guild: Option<u64>) -> Vec<Value> {
        match guild {
            Some(g) => self.guild.get(&g).cloned().unwrap_or_default(),
            None => self.global.clone(),
        }
    }

    /// The command a guild member would see under `name`: guild commands shadow global ones.
    pub(crate) fn find(&self, guild: u64, name: &str) -> Option<&Value> {
        self.guild
            .get(&guild)
            .into_iter()
            .flatten()
            .chain(self.global.iter())
            .find(|c| c["name"] == name)
    }

    /// Chat-input commands visible in a guild.
    pub(crate) fn visible(&self, guild: u64) -> Vec<&Value> {
        self.guild
            .get(&guild)
            .into_iter()
            .flatten()
            .chain(self.global.iter())
            .filter(|c| c["type"] == 1)
            .collect()
    }
}

fn validate(command: &Value) -> Result<(), &'static str> {
    let Some(map) = command.as_object() else {
        return Err("command must be an object");
    };
    let Some(name) = map.get("name").and_then(Value::as_str) else {
        return Err("name is required");
    };
    let kind = map.get("type").and_then(Value::as_u64).unwrap_or(1);
    if name.is_empty() || name.chars().count() > 32 {
        return Err("name must be 1-32 characters");
    }
    if kind == 1 {
        if name.chars().any(|c| c.is_uppercase() || c.is_whitespace()) {
            return Err("chat input command names must be lowercase without spaces");
        }
        let description = map.get("description").and_then(Value::as_str).unwrap_or("");
        if description.is_empty() || description.chars().count() > 100 {
            return Err("description must be 1-100 characters");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn overwrite_keeps_ids_by_name() {
        let mut registry = super::CommandRegistry::default();
        let mut next = 100u64;
        let mut ids = || {
            next += 1;
            next
        };
        let first = registry
            .overwrite(
                None,
                vec![json!({"name": "ping", "description": "Ping"})],
                7,
                &mut ids,
            )
            .unwrap_or_default();
        let second = registry
            .overwrite(
                None,
                vec![json!({"name": "ping", "description": "Pong"})],
                7,
                &mut ids,
            )
            .unwrap_or_default();
        assert_eq!(first[0]["id"], second[0]["id"]);
        assert!(
            registry
                .overwrite(None, vec![json!({"name": "Bad Name"})], 7, &mut ids)
                .is_err()
        );
    }
}
