//! Plan-time rules every resource shares: validation of known values, computed attributes unknown
//! until apply, defaults, values kept from state, and replacement when an immutable attribute
//! changes.
//!
//! Terraform's proposed new state already merges configuration with prior state (a computed
//! attribute the user left unset keeps its prior value). What remains for the provider is to say
//! which of those values will change, which is what [`plan_resource`] decides from the schema.

use super::diag::{AttributePath, Diagnostic, Diagnostics};
use super::schema::{Attribute, AttributeType, Block, Schema, Validator};
use super::value::Value;

/// The framework's plan for one resource instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The state planned after apply; unknown where the provider cannot know yet.
    pub planned_state: Value,
    /// Attributes whose change forces the resource to be replaced.
    pub requires_replace: Vec<AttributePath>,
}

/// Whether Terraform is creating, updating or destroying the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// No prior state.
    Create,
    /// Prior state and a new configuration.
    Update,
    /// No new configuration.
    Destroy,
}

impl Change {
    /// The kind of change from Terraform's prior and proposed states.
    pub fn between(prior: &Value, proposed: &Value) -> Change {
        match (prior.is_null(), proposed.is_null()) {
            (_, true) => Change::Destroy,
            (true, false) => Change::Create,
            (false, false) => Change::Update,
        }
    }
}

/// Plans a change by the schema's rules.
pub fn plan_resource(schema: &Schema, prior: &Value, proposed: &Value, config: &Value) -> Plan {
    let change = Change::between(prior, proposed);
    if change == Change::Destroy {
        return Plan { planned_state: Value::Null, requires_replace: Vec::new() };
    }

    let mut planned = proposed.clone();
    let user_changed_something = change == Change::Update
        && schema.block.attributes.iter().filter(|a| a.is_configurable()).any(|attribute| {
            !prior.attribute(attribute.name).same_as(proposed.attribute(attribute.name))
        });

    for attribute in schema.block.attributes.iter().filter(|a| a.is_computed()) {
        if !config.attribute(attribute.name).is_null() {
            continue;
        }
        let value = planned_computed_value(attribute, change, user_changed_something, proposed);
        if let Some(slot) = planned.attribute_mut(attribute.name) {
            *slot = value;
        }
    }

    let requires_replace = match change {
        Change::Update => replaced_attributes(&schema.block, prior, &planned),
        _ => Vec::new(),
    };
    Plan { planned_state: planned, requires_replace }
}

/// What a computed attribute the user left unset will be after apply.
fn planned_computed_value(
    attribute: &Attribute,
    change: Change,
    user_changed_something: bool,
    proposed: &Value,
) -> Value {
    if let Some(default) = &attribute.default {
        return default.clone();
    }
    match change {
        Change::Create => Value::Unknown,
        Change::Update if user_changed_something && attribute.unknown_on_update => Value::Unknown,
        _ => proposed.attribute(attribute.name).clone(),
    }
}

fn replaced_attributes(block: &Block, prior: &Value, planned: &Value) -> Vec<AttributePath> {
    block
        .attributes
        .iter()
        .filter(|attribute| attribute.requires_replace)
        .filter(|attribute| {
            !prior.attribute(attribute.name).same_as(planned.attribute(attribute.name))
        })
        .map(|attribute| AttributePath::root(attribute.name))
        .collect()
}

/// Runs every attribute's validators on the known values of a configuration.
pub fn validate_config(block: &Block, config: &Value) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    validate_block(block, config, &AttributePath::default(), &mut diagnostics);
    diagnostics
}

fn validate_block(block: &Block, value: &Value, at: &AttributePath, out: &mut Diagnostics) {
    for attribute in &block.attributes {
        let path = at.clone().attribute(attribute.name);
        let item = value.attribute(attribute.name);
        if let AttributeType::Nested(_, nested) = &attribute.ty {
            let nested_block = Block::new("", nested.clone());
            for_each_element(item, &path, |element, element_path| {
                validate_block(&nested_block, element, &element_path, out)
            });
        }
        for validator in &attribute.validators {
            if let Some(problem) = check(validator, item) {
                out.push(
                    Diagnostic::error(format!("Invalid {}", attribute.name), format!("{problem}."))
                        .at(path.clone()),
                );
            }
        }
    }
    for nested in &block.blocks {
        let path = at.clone().attribute(nested.name);
        for_each_element(value.attribute(nested.name), &path, |element, element_path| {
            validate_block(&nested.block, element, &element_path, out)
        });
    }
}

fn for_each_element(
    value: &Value,
    path: &AttributePath,
    mut visit: impl FnMut(&Value, AttributePath),
) {
    match value {
        Value::Object(_) => visit(value, path.clone()),
        Value::List(items) | Value::Set(items) => {
            for (index, item) in items.iter().enumerate() {
                visit(item, path.clone().index(index as i64));
            }
        }
        Value::Map(entries) => {
            for (key, item) in entries {
                visit(item, path.clone().key(key));
            }
        }
        _ => {}
    }
}

/// The problem with `value`, if the validator rejects it. Null and unknown values pass: Terraform
/// checks required attributes itself, and unknown ones are checked again once known.
fn check(validator: &Validator, value: &Value) -> Option<String> {
    match (validator, value) {
        (Validator::String(rule), Value::String(text)) => rule(text).err(),
        (Validator::OneOf(allowed), Value::String(text)) => (!allowed.contains(&text.as_str()))
            .then(|| format!("{text:?} is not one of {}", allowed.join(", "))),
        (Validator::OneOfNumbers(allowed), Value::Number(_)) => {
            let number = value.as_i64();
            (!number.is_some_and(|n| allowed.contains(&n))).then(|| {
                let allowed: Vec<String> = allowed.iter().map(i64::to_string).collect();
                format!("the value must be one of {}", allowed.join(", "))
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn schema() -> Schema {
        Schema {
            version: 0,
            block: Block::new(
                "",
                vec![
                    Attribute::string("name").required().requires_replace(),
                    Attribute::string("description").optional(),
                    Attribute::string("id").computed(),
                    Attribute::string("etag").computed().unknown_on_update(),
                    Attribute::bool("adopt").default(Value::Bool(true)),
                    Attribute::string("kind").optional().validate(Validator::OneOf(&["a", "b"])),
                ],
            ),
        }
    }

    fn object(pairs: &[(&str, Value)]) -> Value {
        let mut attributes: BTreeMap<String, Value> =
            ["name", "description", "id", "etag", "adopt", "kind"]
                .iter()
                .map(|name| (name.to_string(), Value::Null))
                .collect();
        for (name, value) in pairs {
            attributes.insert(name.to_string(), value.clone());
        }
        Value::Object(attributes)
    }

    fn text(value: &str) -> Value {
        Value::String(value.into())
    }

    #[test]
    fn create_marks_computed_unknown_and_applies_defaults() {
        let config = object(&[("name", text("a"))]);
        let plan = plan_resource(&schema(), &Value::Null, &config, &config);
        assert_eq!(plan.planned_state.attribute("id"), &Value::Unknown);
        assert_eq!(plan.planned_state.attribute("adopt"), &Value::Bool(true));
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn update_without_changes_keeps_state() {
        let prior = object(&[
            ("name", text("a")),
            ("id", text("1")),
            ("etag", text("e1")),
            ("adopt", Value::Bool(true)),
        ]);
        let config = object(&[("name", text("a"))]);
        let plan = plan_resource(&schema(), &prior, &prior, &config);
        assert_eq!(plan.planned_state, prior);
    }

    #[test]
    fn update_with_changes_marks_volatile_attributes_unknown() {
        let prior = object(&[("name", text("a")), ("id", text("1")), ("etag", text("e1"))]);
        let proposed = object(&[
            ("name", text("a")),
            ("description", text("new")),
            ("id", text("1")),
            ("etag", text("e1")),
        ]);
        let config = object(&[("name", text("a")), ("description", text("new"))]);
        let plan = plan_resource(&schema(), &prior, &proposed, &config);
        assert_eq!(plan.planned_state.attribute("id"), &text("1"));
        assert_eq!(plan.planned_state.attribute("etag"), &Value::Unknown);
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn changing_an_immutable_attribute_requires_replacement() {
        let prior = object(&[("name", text("a")), ("id", text("1"))]);
        let proposed = object(&[("name", text("b")), ("id", text("1"))]);
        let plan = plan_resource(&schema(), &prior, &proposed, &proposed);
        assert_eq!(plan.requires_replace, vec![AttributePath::root("name")]);
    }

    #[test]
    fn destroy_plans_null() {
        let prior = object(&[("name", text("a"))]);
        let plan = plan_resource(&schema(), &prior, &Value::Null, &Value::Null);
        assert_eq!(plan.planned_state, Value::Null);
    }

    #[test]
    fn validators_name_the_attribute_and_skip_unknowns() {
        let bad = object(&[("name", text("a")), ("kind", text("c"))]);
        let diagnostics = validate_config(&schema().block, &bad);
        let diagnostic = diagnostics.iter().next().expect("a diagnostic");
        assert_eq!(diagnostic.attribute, Some(AttributePath::root("kind")));
        assert!(diagnostic.detail.contains("\"c\" is not one of a, b"), "{}", diagnostic.detail);

        let unknown = object(&[("name", text("a")), ("kind", Value::Unknown)]);
        assert!(validate_config(&schema().block, &unknown).is_empty());
    }
}
