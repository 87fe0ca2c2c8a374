//! Conversion between [`Value`] and a resource's own serde model.
//!
//! Resources work with plain structs (`Option<String>` for optional or computed attributes). Going
//! in, unknown values read as `None`: a resource only reads them in planned values, where an
//! unknown is exactly "the provider decides". Going out, the struct is shaped by the schema's type,
//! so attributes the struct leaves out are null.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{json_to_value, value_to_json};
use super::diag::{Diagnostic, Diagnostics};
use super::schema::Schema;
use super::value::Value;

/// Reads a model out of a value.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Diagnostics> {
    serde_json::from_value(value_to_json(value)).map_err(|error| {
        Diagnostic::error(
            "Unexpected value shape",
            format!(
                "The provider could not read this resource's values ({error}). This is a bug in \
                 the provider; please report it with the configuration that caused it."
            ),
        )
        .into()
    })
}

/// Writes a model as a value of the schema's type.
pub fn to_value<T: Serialize>(model: &T, schema: &Schema) -> Value {
    let json = serde_json::to_value(model).unwrap_or(serde_json::Value::Null);
    // A model serialises to the schema's shape by construction; a mismatch is a provider bug that
    // the tests of each resource catch, so falling back to null here never hides user input.
    json_to_value(&json, &schema.value_type(), "").unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::framework::schema::{Attribute, Block};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Model {
        name: String,
        id: Option<String>,
        size: Option<i64>,
    }

    fn schema() -> Schema {
        let attributes = vec![
            Attribute::string("name").required(),
            Attribute::string("id").computed(),
            Attribute::number("size").optional(),
            Attribute::string("extra").optional(),
        ];
        Schema { version: 0, block: Block::new("", attributes) }
    }

    #[test]
    fn unknowns_read_as_none_and_missing_fields_write_as_null() {
        let value = to_value(&Model { name: "a".into(), id: None, size: Some(3) }, &schema());
        assert_eq!(value.attribute("extra"), &Value::Null);

        let mut planned = value.clone();
        *planned.attribute_mut("id").unwrap() = Value::Unknown;
        let model: Model = from_value(&planned).unwrap();
        assert_eq!(model, Model { name: "a".into(), id: None, size: Some(3) });
    }
}
