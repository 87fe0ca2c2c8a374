//! Wire encodings of [`Value`]: msgpack (what Terraform prefers) and JSON (its fallback, and the
//! form of stored state).
//!
//! Decoding is driven by the schema's [`Type`], because msgpack carries no attribute types and
//! numbers may arrive as strings. Unknown values are msgpack extension values: code 0 plain, code
//! 12 with refinements; any extension code is read as unknown and we always write code 0.

use std::collections::BTreeMap;

use rmpv::Value as Msgpack;
use serde_json::Value as Json;
use thiserror::Error;

use super::value::{Number, Type, Value};

/// The extension code Terraform uses for an unknown value without refinements.
const UNKNOWN_EXTENSION: i8 = 0;

/// A value that does not match its declared type.
#[derive(Debug, Error, PartialEq)]
#[error("{path}: {problem}")]
pub struct DecodeError {
    /// Where in the value, as `.a.b[0]`; empty for the root.
    pub path: String,
    /// What was wrong.
    pub problem: String,
}

impl DecodeError {
    fn new(path: &str, problem: impl Into<String>) -> DecodeError {
        DecodeError { path: path.to_string(), problem: problem.into() }
    }
}

/// Decodes a msgpack-encoded value of type `ty`.
pub fn from_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let mut reader = bytes;
    let raw = rmpv::decode::read_value(&mut reader)
        .map_err(|error| DecodeError::new("", format!("malformed msgpack: {error}")))?;
    msgpack_to_value(&raw, ty, "")
}

/// Encodes `value` as msgpack.
pub fn to_msgpack(value: &Value, ty: &Type) -> Vec<u8> {
    let mut bytes = Vec::new();
    let raw = value_to_msgpack(value, ty);
    // Writing to a Vec cannot fail.
    rmpv::encode::write_value(&mut bytes, &raw).expect("writing msgpack into memory");
    bytes
}

/// Decodes a JSON-encoded value of type `ty` (JSON cannot express unknown values).
pub fn from_json(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let raw: Json = serde_json::from_slice(bytes)
        .map_err(|error| DecodeError::new("", format!("malformed JSON: {error}")))?;
    json_to_value(&raw, ty, "")
}

/// Converts already-parsed JSON to a value of type `ty`. Attributes missing from an object are
/// read as null, which is how Terraform treats state written by an older schema.
pub fn json_to_value(raw: &Json, ty: &Type, path: &str) -> Result<Value, DecodeError> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        Type::Bool => raw.as_bool().map(Value::Bool).ok_or_else(|| expected(path, "bool")),
        Type::String => raw
            .as_str()
            .map(|text| Value::String(text.into()))
            .ok_or_else(|| expected(path, "string")),
        Type::Number => json_number(raw).map(Value::Number).ok_or_else(|| expected(path, "number")),
        Type::Dynamic => {
            let ty = Type::from_json(&raw["type"]).ok_or_else(|| expected(path, "typed value"))?;
            json_to_value(&raw["value"], &ty, path)
        }
        Type::List(element) | Type::Set(element) => {
            let items = raw.as_array().ok_or_else(|| expected(path, "array"))?;
            let values = items
                .iter()
                .enumerate()
                .map(|(index, item)| json_to_value(item, element, &format!("{path}[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::Set(_)) { Value::Set(values) } else { Value::List(values) })
        }
        Type::Tuple(elements) => {
            let items = raw.as_array().ok_or_else(|| expected(path, "array"))?;
            if items.len() != elements.len() {
                return Err(expected(path, &format!("tuple of {}", elements.len())));
            }
            let values = items
                .iter()
                .zip(elements)
                .enumerate()
                .map(|(index, (item, ty))| json_to_value(item, ty, &format!("{path}[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::List(values))
        }
        Type::Map(element) => {
            let entries = raw.as_object().ok_or_else(|| expected(path, "object"))?;
            let values = entries
                .iter()
                .map(|(key, item)| {
                    Ok((key.clone(), json_to_value(item, element, &format!("{path}[{key:?}]"))?))
                })
                .collect::<Result<BTreeMap<_, _>, DecodeError>>()?;
            Ok(Value::Map(values))
        }
        Type::Object(attributes) => {
            let entries = raw.as_object().ok_or_else(|| expected(path, "object"))?;
            let values = attributes
                .iter()
                .map(|(name, ty)| {
                    let item = entries.get(name).unwrap_or(&Json::Null);
                    Ok((name.clone(), json_to_value(item, ty, &format!("{path}.{name}"))?))
                })
                .collect::<Result<BTreeMap<_, _>, DecodeError>>()?;
            Ok(Value::Object(values))
        }
    }
}

/// Converts a value to JSON. Unknown values become null: JSON is only used for state, which is
/// always fully known.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Null | Value::Unknown => Json::Null,
        Value::Bool(flag) => Json::Bool(*flag),
        Value::String(text) => Json::String(text.clone()),
        Value::Number(Number::Int(number)) => Json::from(*number),
        Value::Number(Number::Float(number)) => Json::from(*number),
        Value::Number(Number::Big(text)) => {
            serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone()))
        }
        Value::List(items) | Value::Set(items) => {
            Json::Array(items.iter().map(value_to_json).collect())
        }
        Value::Map(entries) | Value::Object(entries) => Json::Object(
            entries.iter().map(|(key, item)| (key.clone(), value_to_json(item))).collect(),
        ),
    }
}

fn json_number(raw: &Json) -> Option<Number> {
    match raw {
        Json::Number(number) => Number::from_decimal(&number.to_string()),
        Json::String(text) => Number::from_decimal(text),
        _ => None,
    }
}

fn expected(path: &str, what: &str) -> DecodeError {
    DecodeError::new(path, format!("expected {what}"))
}

fn msgpack_to_value(raw: &Msgpack, ty: &Type, path: &str) -> Result<Value, DecodeError> {
    match raw {
        Msgpack::Nil => return Ok(Value::Null),
        Msgpack::Ext(_, _) => return Ok(Value::Unknown),
        _ => {}
    }
    match ty {
        Type::Bool => raw.as_bool().map(Value::Bool).ok_or_else(|| expected(path, "bool")),
        Type::String => {
            msgpack_string(raw).map(Value::String).ok_or_else(|| expected(path, "string"))
        }
        Type::Number => {
            msgpack_number(raw).map(Value::Number).ok_or_else(|| expected(path, "number"))
        }
        Type::Dynamic => msgpack_dynamic(raw, path),
        Type::List(element) | Type::Set(element) => {
            let items = raw.as_array().ok_or_else(|| expected(path, "array"))?;
            let values = items
                .iter()
                .enumerate()
                .map(|(index, item)| msgpack_to_value(item, element, &format!("{path}[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::Set(_)) { Value::Set(values) } else { Value::List(values) })
        }
        Type::Tuple(elements) => {
            let items = raw.as_array().ok_or_else(|| expected(path, "array"))?;
            if items.len() != elements.len() {
                return Err(expected(path, &format!("tuple of {}", elements.len())));
            }
            let values = items
                .iter()
                .zip(elements)
                .enumerate()
                .map(|(index, (item, ty))| msgpack_to_value(item, ty, &format!("{path}[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::List(values))
        }
        Type::Map(element) => {
            let entries = msgpack_entries(raw, path)?;
            let values = entries
                .into_iter()
                .map(|(key, item)| {
                    let value = msgpack_to_value(item, element, &format!("{path}[{key:?}]"))?;
                    Ok((key, value))
                })
                .collect::<Result<BTreeMap<_, _>, DecodeError>>()?;
            Ok(Value::Map(values))
        }
        Type::Object(attributes) => {
            let entries: BTreeMap<String, &Msgpack> =
                msgpack_entries(raw, path)?.into_iter().collect();
            let values = attributes
                .iter()
                .map(|(name, ty)| {
                    let value = match entries.get(name) {
                        Some(item) => msgpack_to_value(item, ty, &format!("{path}.{name}"))?,
                        None => Value::Null,
                    };
                    Ok((name.clone(), value))
                })
                .collect::<Result<BTreeMap<_, _>, DecodeError>>()?;
            Ok(Value::Object(values))
        }
    }
}

fn msgpack_string(raw: &Msgpack) -> Option<String> {
    match raw {
        Msgpack::String(text) => text.as_str().map(str::to_string),
        Msgpack::Binary(bytes) => String::from_utf8(bytes.clone()).ok(),
        _ => None,
    }
}

fn msgpack_number(raw: &Msgpack) -> Option<Number> {
    match raw {
        Msgpack::Integer(integer) => match integer.as_i64() {
            Some(number) => Some(Number::Int(number)),
            None => integer.as_u64().map(|number| Number::Big(number.to_string())),
        },
        Msgpack::F32(number) => Some(Number::Float(f64::from(*number))),
        Msgpack::F64(number) => Some(Number::Float(*number)),
        // Terraform sends numbers that do not fit a float as their decimal text.
        _ => msgpack_string(raw).and_then(|text| Number::from_decimal(&text)),
    }
}

fn msgpack_entries<'a>(
    raw: &'a Msgpack,
    path: &str,
) -> Result<Vec<(String, &'a Msgpack)>, DecodeError> {
    let entries = raw.as_map().ok_or_else(|| expected(path, "map"))?;
    entries
        .iter()
        .map(|(key, item)| {
            Ok((msgpack_string(key).ok_or_else(|| expected(path, "string key"))?, item))
        })
        .collect()
}

/// A `dynamic` value is a two-element array: the JSON type notation as bytes, then the value.
fn msgpack_dynamic(raw: &Msgpack, path: &str) -> Result<Value, DecodeError> {
    let parts = raw.as_array().filter(|parts| parts.len() == 2);
    let parts = parts.ok_or_else(|| expected(path, "[type, value] pair"))?;
    let type_json = msgpack_string(&parts[0]).ok_or_else(|| expected(path, "type notation"))?;
    let ty = serde_json::from_str(&type_json)
        .ok()
        .and_then(|json| Type::from_json(&json))
        .ok_or_else(|| expected(path, "valid type notation"))?;
    msgpack_to_value(&parts[1], &ty, path)
}

fn value_to_msgpack(value: &Value, ty: &Type) -> Msgpack {
    match (value, ty) {
        (Value::Null, _) => Msgpack::Nil,
        (Value::Unknown, _) => Msgpack::Ext(UNKNOWN_EXTENSION, Vec::new()),
        (_, Type::Dynamic) => {
            let inner = inferred_type(value);
            let notation = inner.to_json().to_string();
            Msgpack::Array(vec![Msgpack::from(notation), value_to_msgpack(value, &inner)])
        }
        (Value::Bool(flag), _) => Msgpack::Boolean(*flag),
        (Value::String(text), _) => Msgpack::from(text.as_str()),
        (Value::Number(Number::Int(number)), _) => Msgpack::from(*number),
        (Value::Number(Number::Float(number)), _) => Msgpack::F64(*number),
        (Value::Number(Number::Big(text)), _) => Msgpack::from(text.as_str()),
        (Value::List(items) | Value::Set(items), _) => {
            let element = |index: usize| match ty {
                Type::List(element) | Type::Set(element) => (**element).clone(),
                Type::Tuple(elements) => elements.get(index).cloned().unwrap_or(Type::Dynamic),
                _ => Type::Dynamic,
            };
            Msgpack::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| value_to_msgpack(item, &element(i)))
                    .collect(),
            )
        }
        (Value::Map(entries) | Value::Object(entries), _) => {
            let element = |name: &str| match ty {
                Type::Map(element) => (**element).clone(),
                Type::Object(attributes) => attributes.get(name).cloned().unwrap_or(Type::Dynamic),
                _ => Type::Dynamic,
            };
            Msgpack::Map(
                entries
                    .iter()
                    .map(|(key, item)| {
                        (Msgpack::from(key.as_str()), value_to_msgpack(item, &element(key)))
                    })
                    .collect(),
            )
        }
    }
}

/// The concrete type of a known value, for writing it where the schema says `dynamic`.
fn inferred_type(value: &Value) -> Type {
    match value {
        Value::Bool(_) => Type::Bool,
        Value::Number(_) => Type::Number,
        Value::String(_) | Value::Null | Value::Unknown => Type::String,
        Value::List(items) | Value::Set(items) => {
            Type::Tuple(items.iter().map(inferred_type).collect())
        }
        Value::Map(entries) | Value::Object(entries) => Type::Object(
            entries.iter().map(|(key, item)| (key.clone(), inferred_type(item))).collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object_type() -> Type {
        Type::Object(BTreeMap::from([
            ("name".to_string(), Type::String),
            ("size".to_string(), Type::Number),
            ("tags".to_string(), Type::map(Type::String)),
            ("ids".to_string(), Type::set(Type::String)),
            ("enabled".to_string(), Type::Bool),
        ]))
    }

    fn sample() -> Value {
        Value::Object(BTreeMap::from([
            ("name".to_string(), Value::String("kv".into())),
            ("size".to_string(), Value::Number(Number::Int(3072))),
            (
                "tags".to_string(),
                Value::Map(BTreeMap::from([("env".to_string(), Value::String("prod".into()))])),
            ),
            ("ids".to_string(), Value::Unknown),
            ("enabled".to_string(), Value::Null),
        ]))
    }

    #[test]
    fn msgpack_round_trips_objects_with_unknowns() {
        let bytes = to_msgpack(&sample(), &object_type());
        assert_eq!(from_msgpack(&bytes, &object_type()).unwrap(), sample());
    }

    #[test]
    fn refined_unknowns_decode_as_unknown() {
        // ext 12 carries refinements (here: "not null"), which we drop.
        let raw = Msgpack::Ext(12, vec![0x81, 0x01, 0xc2]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &raw).unwrap();
        assert_eq!(from_msgpack(&bytes, &Type::String).unwrap(), Value::Unknown);
    }

    #[test]
    fn numbers_decode_from_every_encoding() {
        let cases = [
            ("integer", Msgpack::from(7), Number::Int(7)),
            ("float", Msgpack::F64(2.5), Number::Float(2.5)),
            ("u64 beyond i64", Msgpack::from(u64::MAX), Number::Big(u64::MAX.to_string())),
            ("decimal string", Msgpack::from("1e400"), Number::Big("1e400".into())),
        ];
        for (name, raw, expected) in cases {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, &raw).unwrap();
            let value = from_msgpack(&bytes, &Type::Number).expect(name);
            assert_eq!(value, Value::Number(expected), "{name}");
        }
    }

    #[test]
    fn type_mismatch_names_the_path() {
        let raw = Msgpack::Map(vec![(Msgpack::from("size"), Msgpack::from("not a number"))]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &raw).unwrap();
        let error = from_msgpack(&bytes, &object_type()).unwrap_err();
        assert_eq!(error.path, ".size");
    }

    #[test]
    fn json_reads_state_and_treats_missing_attributes_as_null() {
        let json = br#"{"name":"kv","size":2048,"tags":{"a":"b"},"ids":["x"],"removed":1}"#;
        let value = from_json(json, &object_type()).unwrap();
        assert_eq!(value.attribute("enabled"), &Value::Null);
        assert_eq!(value.attribute("size"), &Value::Number(Number::Int(2048)));
        assert_eq!(value.attribute("ids"), &Value::Set(vec![Value::String("x".into())]));
    }

    #[test]
    fn dynamic_values_carry_their_type() {
        let value = Value::Object(BTreeMap::from([("n".to_string(), Value::Bool(true))]));
        let bytes = to_msgpack(&value, &Type::Dynamic);
        assert_eq!(from_msgpack(&bytes, &Type::Dynamic).unwrap(), value);
    }
}
