//! Terraform values and their types, independent of any wire encoding.
//!
//! A [`Value`] is what Terraform calls a cty value: it can be null, unknown (not yet known during
//! planning), a primitive, or a collection. Its [`Type`] travels separately, in the schema, which is
//! why decoding needs the type (see `codec`). Resources never see this directly: they convert to and
//! from their own serde models through `framework::model`.

use std::collections::BTreeMap;
use std::fmt;

/// A value as Terraform sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Absent: unset optional attributes, or a destroyed resource's state.
    Null,
    /// Not known until apply. Refinements Terraform may attach are dropped: we never rely on them.
    Unknown,
    /// A boolean.
    Bool(bool),
    /// A number, kept exact.
    Number(Number),
    /// A string.
    String(String),
    /// An ordered list.
    List(Vec<Value>),
    /// A set; kept in the order received, compared without regard to order.
    Set(Vec<Value>),
    /// A map with string keys.
    Map(BTreeMap<String, Value>),
    /// An object (and a nested block), keyed by attribute name.
    Object(BTreeMap<String, Value>),
}

/// A Terraform number. Terraform's numbers are arbitrary-precision decimals, so values that fit
/// neither `i64` nor `f64` exactly travel as their decimal text.
#[derive(Clone, Debug, PartialEq)]
pub enum Number {
    /// An integer within `i64`.
    Int(i64),
    /// A number with a fractional part that `f64` holds.
    Float(f64),
    /// Any other number, as decimal text (for example beyond `i64`).
    Big(String),
}

/// The type of a value, as declared in a schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// `bool`.
    Bool,
    /// `number`.
    Number,
    /// `string`.
    String,
    /// `dynamic`: the value carries its own type on the wire.
    Dynamic,
    /// `list(T)`.
    List(Box<Type>),
    /// `set(T)`.
    Set(Box<Type>),
    /// `map(T)`.
    Map(Box<Type>),
    /// `object({...})`.
    Object(BTreeMap<String, Type>),
    /// `tuple([...])`.
    Tuple(Vec<Type>),
}

impl Value {
    /// Whether this is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this is `Unknown`.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// Whether this value, or anything inside it, is unknown.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) | Value::Set(items) => items.iter().any(Value::contains_unknown),
            Value::Map(entries) | Value::Object(entries) => {
                entries.values().any(Value::contains_unknown)
            }
            _ => false,
        }
    }

    /// The attribute `name` of an object, or `Null` for anything else.
    pub fn attribute(&self, name: &str) -> &Value {
        match self {
            Value::Object(attributes) => attributes.get(name).unwrap_or(&Value::Null),
            _ => &Value::Null,
        }
    }

    /// A mutable reference to attribute `name` of an object, if this is an object that has it.
    pub fn attribute_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Object(attributes) => attributes.get_mut(name),
            _ => None,
        }
    }

    /// The string inside, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// The integer inside, if this is a known number that is a whole `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(Number::Int(number)) => Some(*number),
            Value::Number(Number::Float(number)) if number.fract() == 0.0 => Some(*number as i64),
            _ => None,
        }
    }

    /// Semantic equality: sets compare without regard to order, numbers by value.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Set(left), Value::Set(right)) => {
                left.len() == right.len()
                    && left.iter().all(|item| right.iter().any(|candidate| item.same_as(candidate)))
            }
            (Value::List(left), Value::List(right)) => {
                left.len() == right.len() && left.iter().zip(right).all(|(a, b)| a.same_as(b))
            }
            (Value::Map(left), Value::Map(right)) | (Value::Object(left), Value::Object(right)) => {
                left.len() == right.len()
                    && left.iter().all(|(key, item)| {
                        right.get(key).is_some_and(|candidate| item.same_as(candidate))
                    })
            }
            (Value::Number(left), Value::Number(right)) => left.same_as(right),
            _ => self == other,
        }
    }
}

impl Number {
    /// Numeric equality across representations.
    pub fn same_as(&self, other: &Number) -> bool {
        match (self, other) {
            (Number::Big(left), Number::Big(right)) => left == right,
            (Number::Big(_), _) | (_, Number::Big(_)) => false,
            _ => self.as_f64() == other.as_f64() && self.to_string() == other.to_string(),
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            Number::Int(number) => *number as f64,
            Number::Float(number) => *number,
            Number::Big(text) => text.parse().unwrap_or(f64::NAN),
        }
    }

    /// Reads decimal text, keeping it exact when it fits neither `i64` nor a round-tripping `f64`.
    pub fn from_decimal(text: &str) -> Option<Number> {
        if let Ok(integer) = text.parse::<i64>() {
            return Some(Number::Int(integer));
        }
        let float: f64 = text.parse().ok()?;
        if float.is_finite() && float.to_string() == text {
            Some(Number::Float(float))
        } else {
            Some(Number::Big(text.to_string()))
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(number) => write!(formatter, "{number}"),
            Number::Float(number) if number.fract() == 0.0 && number.abs() < 1e15 => {
                write!(formatter, "{}", *number as i64)
            }
            Number::Float(number) => write!(formatter, "{number}"),
            Number::Big(text) => formatter.write_str(text),
        }
    }
}

impl Type {
    /// A `list(element)` type.
    pub fn list(element: Type) -> Type {
        Type::List(Box::new(element))
    }

    /// A `set(element)` type.
    pub fn set(element: Type) -> Type {
        Type::Set(Box::new(element))
    }

    /// A `map(element)` type.
    pub fn map(element: Type) -> Type {
        Type::Map(Box::new(element))
    }

    /// The type in Terraform's JSON type notation, as sent in schemas: `"string"`,
    /// `["list","string"]`, `["object",{"a":"number"}]`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Type::Bool => json!("bool"),
            Type::Number => json!("number"),
            Type::String => json!("string"),
            Type::Dynamic => json!("dynamic"),
            Type::List(element) => json!(["list", element.to_json()]),
            Type::Set(element) => json!(["set", element.to_json()]),
            Type::Map(element) => json!(["map", element.to_json()]),
            Type::Tuple(elements) => {
                json!(["tuple", elements.iter().map(Type::to_json).collect::<Vec<_>>()])
            }
            Type::Object(attributes) => {
                let attributes: serde_json::Map<String, serde_json::Value> =
                    attributes.iter().map(|(name, ty)| (name.clone(), ty.to_json())).collect();
                json!(["object", attributes])
            }
        }
    }

    /// Parses Terraform's JSON type notation (used inside `dynamic` values).
    pub fn from_json(json: &serde_json::Value) -> Option<Type> {
        use serde_json::Value as Json;
        match json {
            Json::String(name) => match name.as_str() {
                "bool" => Some(Type::Bool),
                "number" => Some(Type::Number),
                "string" => Some(Type::String),
                "dynamic" => Some(Type::Dynamic),
                _ => None,
            },
            Json::Array(parts) if parts.len() == 2 => {
                let kind = parts[0].as_str()?;
                match kind {
                    "list" => Some(Type::list(Type::from_json(&parts[1])?)),
                    "set" => Some(Type::set(Type::from_json(&parts[1])?)),
                    "map" => Some(Type::map(Type::from_json(&parts[1])?)),
                    "tuple" => {
                        let elements = parts[1].as_array()?;
                        elements.iter().map(Type::from_json).collect::<Option<_>>().map(Type::Tuple)
                    }
                    "object" => {
                        let attributes = parts[1].as_object()?;
                        attributes
                            .iter()
                            .map(|(name, ty)| Some((name.clone(), Type::from_json(ty)?)))
                            .collect::<Option<_>>()
                            .map(Type::Object)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_json_round_trips() {
        let cases = [
            ("primitive", Type::String),
            ("list of numbers", Type::list(Type::Number)),
            ("map of strings", Type::map(Type::String)),
            (
                "object with a set",
                Type::Object(BTreeMap::from([
                    ("a".to_string(), Type::set(Type::Bool)),
                    ("b".to_string(), Type::Dynamic),
                ])),
            ),
            ("tuple", Type::Tuple(vec![Type::String, Type::Number])),
        ];
        for (name, ty) in cases {
            assert_eq!(Type::from_json(&ty.to_json()), Some(ty), "{name}");
        }
        assert_eq!(Type::list(Type::String).to_json(), json!(["list", "string"]));
    }

    #[test]
    fn numbers_keep_precision() {
        let cases = [
            ("small integer", "42", Number::Int(42)),
            ("fraction", "1.5", Number::Float(1.5)),
            ("beyond i64", "92233720368547758070", Number::Big("92233720368547758070".into())),
            (
                "long decimal",
                "0.10000000000000000001",
                Number::Big("0.10000000000000000001".into()),
            ),
        ];
        for (name, text, expected) in cases {
            let number = Number::from_decimal(text).expect(name);
            assert_eq!(number, expected, "{name}");
            assert_eq!(number.to_string(), text, "{name}");
        }
    }

    #[test]
    fn sets_compare_without_order() {
        let left = Value::Set(vec![Value::String("a".into()), Value::String("b".into())]);
        let right = Value::Set(vec![Value::String("b".into()), Value::String("a".into())]);
        assert!(left.same_as(&right));
        assert!(!left.same_as(&Value::Set(vec![Value::String("a".into())])));
    }

    #[test]
    fn unknown_is_found_when_nested() {
        let value = Value::Object(BTreeMap::from([(
            "tags".to_string(),
            Value::Map(BTreeMap::from([("k".to_string(), Value::Unknown)])),
        )]));
        assert!(value.contains_unknown());
        assert!(!Value::String("x".into()).contains_unknown());
    }
}
