//! Conversions between the framework's types and the tfplugin6 wire types.
//!
//! This is the only place that knows both sides: schemas become `proto::Schema` (nested attributes
//! as `nested_type` alone, since Terraform rejects an attribute that also sets `type`), diagnostics
//! become `proto::Diagnostic`, and `DynamicValue`s are decoded with the schema's type.

use crate::framework::codec::{self, DecodeError};
use crate::framework::diag::{AttributePath, Diagnostic, Diagnostics, PathStep, Severity};
use crate::framework::schema::{Attribute, AttributeType, Block, Mode, Nesting, Schema};
use crate::framework::value::{Type, Value};

use super::proto;

/// A schema in wire form.
pub fn schema(schema: &Schema) -> proto::Schema {
    proto::Schema { version: schema.version, block: Some(block(&schema.block, schema.version)) }
}

fn block(block: &Block, version: i64) -> proto::schema::Block {
    proto::schema::Block {
        version,
        attributes: block.attributes.iter().map(attribute).collect(),
        block_types: block
            .blocks
            .iter()
            .map(|nested| proto::schema::NestedBlock {
                type_name: nested.name.to_string(),
                block: Some(self::block(&nested.block, 0)),
                nesting: block_nesting(nested.nesting) as i32,
                min_items: 0,
                max_items: 0,
            })
            .collect(),
        description: block.description.clone(),
        description_kind: proto::StringKind::Markdown as i32,
        deprecated: false,
    }
}

fn attribute(attribute: &Attribute) -> proto::schema::Attribute {
    let (ty, nested_type) = match &attribute.ty {
        AttributeType::Plain(ty) => (ty.to_json().to_string().into_bytes(), None),
        AttributeType::Nested(nesting, attributes) => (
            Vec::new(),
            Some(proto::schema::Object {
                attributes: attributes.iter().map(self::attribute).collect(),
                nesting: object_nesting(*nesting) as i32,
                ..Default::default()
            }),
        ),
    };
    proto::schema::Attribute {
        name: attribute.name.to_string(),
        r#type: ty,
        nested_type,
        description: attribute.description.clone(),
        description_kind: proto::StringKind::Markdown as i32,
        required: attribute.mode == Mode::Required,
        optional: matches!(attribute.mode, Mode::Optional | Mode::OptionalComputed),
        computed: attribute.is_computed(),
        sensitive: attribute.sensitive,
        deprecated: false,
        write_only: false,
    }
}

fn block_nesting(nesting: Nesting) -> proto::schema::nested_block::NestingMode {
    use proto::schema::nested_block::NestingMode;
    match nesting {
        Nesting::Single => NestingMode::Single,
        Nesting::List => NestingMode::List,
        Nesting::Set => NestingMode::Set,
        Nesting::Map => NestingMode::Map,
    }
}

fn object_nesting(nesting: Nesting) -> proto::schema::object::NestingMode {
    use proto::schema::object::NestingMode;
    match nesting {
        Nesting::Single => NestingMode::Single,
        Nesting::List => NestingMode::List,
        Nesting::Set => NestingMode::Set,
        Nesting::Map => NestingMode::Map,
    }
}

/// Diagnostics in wire form.
pub fn diagnostics(diagnostics: Diagnostics) -> Vec<proto::Diagnostic> {
    diagnostics.into_iter().map(diagnostic).collect()
}

fn diagnostic(diagnostic: Diagnostic) -> proto::Diagnostic {
    let severity = match diagnostic.severity {
        Severity::Error => proto::diagnostic::Severity::Error,
        Severity::Warning => proto::diagnostic::Severity::Warning,
    };
    proto::Diagnostic {
        severity: severity as i32,
        summary: diagnostic.summary,
        detail: diagnostic.detail,
        attribute: diagnostic.attribute.map(|path| attribute_path(&path)),
    }
}

/// An attribute path in wire form.
pub fn attribute_path(path: &AttributePath) -> proto::AttributePath {
    use proto::attribute_path::{Step, step::Selector};
    let steps = path
        .steps
        .iter()
        .map(|step| Step {
            selector: Some(match step {
                PathStep::Attribute(name) => Selector::AttributeName(name.clone()),
                PathStep::Key(key) => Selector::ElementKeyString(key.clone()),
                PathStep::Index(index) => Selector::ElementKeyInt(*index),
            }),
        })
        .collect();
    proto::AttributePath { steps }
}

/// Decodes a `DynamicValue` of type `ty`: msgpack when present, else JSON. A missing value is null.
pub fn decode(value: Option<&proto::DynamicValue>, ty: &Type) -> Result<Value, Diagnostics> {
    let Some(value) = value else { return Ok(Value::Null) };
    let decoded = if !value.msgpack.is_empty() {
        codec::from_msgpack(&value.msgpack, ty)
    } else if !value.json.is_empty() {
        codec::from_json(&value.json, ty)
    } else {
        Ok(Value::Null)
    };
    decoded.map_err(undecodable)
}

/// Encodes a value as msgpack, the form Terraform prefers.
pub fn encode(value: &Value, ty: &Type) -> proto::DynamicValue {
    proto::DynamicValue { msgpack: codec::to_msgpack(value, ty), json: Vec::new() }
}

fn undecodable(error: DecodeError) -> Diagnostics {
    let detail = format!(
        "Terraform sent a value the provider could not read at {}: {}. This usually means the \
         state was written by an incompatible provider version.",
        if error.path.is_empty() { "the root" } else { &error.path },
        error.problem
    );
    Diagnostic::error("Unreadable value", detail).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_are_sent_without_a_type() {
        let nested = Attribute::nested("rules", Nesting::Set, vec![Attribute::string("name")]);
        let wire = attribute(&nested);
        assert!(wire.r#type.is_empty(), "Terraform rejects type and nested_type together");
        let object = wire.nested_type.expect("nested type");
        assert_eq!(object.nesting, proto::schema::object::NestingMode::Set as i32);
        assert_eq!(object.attributes[0].r#type, br#""string""#.to_vec());
    }

    #[test]
    fn optional_computed_sets_both_flags() {
        let wire = attribute(&Attribute::bool("adopt").default(Value::Bool(true)));
        assert!(wire.optional && wire.computed && !wire.required);
    }

    #[test]
    fn diagnostics_keep_their_path() {
        let diagnostic = Diagnostic::error("bad", "detail")
            .at(AttributePath::root("timeouts").attribute("create"));
        let wire = diagnostics(diagnostic.into()).remove(0);
        assert_eq!(wire.severity, proto::diagnostic::Severity::Error as i32);
        assert_eq!(wire.attribute.expect("path").steps.len(), 2);
    }

    #[test]
    fn empty_dynamic_values_are_null() {
        let empty = proto::DynamicValue::default();
        assert_eq!(decode(Some(&empty), &Type::String).unwrap(), Value::Null);
    }
}
