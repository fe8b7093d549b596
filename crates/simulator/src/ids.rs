//! Serde helpers for snowflakes in JSON. Discord sends ids as strings (they overflow
//! JavaScript numbers); the simulator's own JSON (control API, ground truth) does the same
//! and accepts either form on input.

use serde::{Deserialize, Deserializer, Serializer, de};

/// A snowflake as a JSON string, or a number on input.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flexible {
    Text(String),
    Number(u64),
}

impl Flexible {
    fn get<E: de::Error>(self) -> Result<u64, E> {
        match self {
            Self::Number(n) => Ok(n),
            Self::Text(s) => s
                .parse()
                .map_err(|_| E::custom(format_args!("invalid snowflake {s:?}"))),
        }
    }
}

/// `u64` ⇄ `"123"`.
pub(crate) mod string {
    use super::{Deserialize, Deserializer, Flexible, Serializer};

    pub(crate) fn serialize<S: Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Flexible::deserialize(d)?.get()
    }
}

/// `Option<u64>` ⇄ `"123"` or `null`.
pub(crate) mod option {
    use super::{Deserialize, Deserializer, Flexible, Serializer};

    pub(crate) fn serialize<S: Serializer>(id: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<Flexible>::deserialize(d)?
            .map(Flexible::get)
            .transpose()
    }
}

/// `Vec<u64>` ⇄ `["1", "2"]`.
pub(crate) mod vec {
    use super::{Deserialize, Deserializer, Flexible, Serializer};
    use serde::ser::SerializeSeq;

    pub(crate) fn serialize<S: Serializer>(ids: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(ids.len()))?;
        for id in ids {
            seq.serialize_element(&id.to_string())?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        Vec::<Flexible>::deserialize(d)?
            .into_iter()
            .map(Flexible::get)
            .collect()
    }
}
