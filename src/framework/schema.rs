//! The schema model: attributes, nested attributes and blocks, with the behaviour the framework
//! derives from them (types, validation, plan rules).
//!
//! Schemas are built once per process with the small builder on [`Attribute`]. Each attribute
//! carries, beside what Terraform needs (type, required/optional/computed, sensitive, markdown
//! description), what the framework applies for it: validators run at plan time and the plan
//! rules in `plan` (replacement on change, unknown until apply, kept from state).

use std::collections::BTreeMap;

use super::value::{Type, Value};

/// A resource, data source or provider schema.
#[derive(Clone, Debug)]
pub struct Schema {
    /// The state version; bump it with a state upgrader when the shape of state changes.
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

/// A block: attributes and nested blocks.
#[derive(Clone, Debug, Default)]
pub struct Block {
    /// Markdown shown in the registry and by language servers.
    pub description: String,
    /// The attributes, in the order the documentation lists them.
    pub attributes: Vec<Attribute>,
    /// Nested blocks such as `timeouts`.
    pub blocks: Vec<NestedBlock>,
}

/// Whether the user sets an attribute, the provider does, or either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The user must set it.
    Required,
    /// The user may set it; otherwise it is null.
    Optional,
    /// Only the provider sets it.
    Computed,
    /// The user may set it; otherwise the provider does.
    OptionalComputed,
}

/// How a nested block or nested attribute repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one.
    Single,
    /// An ordered list.
    List,
    /// A set.
    Set,
    /// A map keyed by label.
    Map,
}

/// A check on a known attribute value, run at plan time. Each returns the problem in a sentence.
#[derive(Clone, Copy, Debug)]
pub enum Validator {
    /// Any check of a string value.
    String(fn(&str) -> Result<(), String>),
    /// The string must be one of these.
    OneOf(&'static [&'static str]),
    /// The number must be one of these.
    OneOfNumbers(&'static [i64]),
}

/// The value type of an attribute: a plain type, or nested attributes.
#[derive(Clone, Debug)]
pub enum AttributeType {
    /// A plain type such as `string` or `map(string)`.
    Plain(Type),
    /// Nested attributes. Terraform wants these sent as `nested_type` alone, never with `type`.
    Nested(Nesting, Vec<Attribute>),
}

/// One attribute and the rules the framework applies to it.
#[derive(Clone, Debug)]
pub struct Attribute {
    /// The name users write.
    pub name: &'static str,
    /// Its type.
    pub ty: AttributeType,
    /// Who sets it.
    pub mode: Mode,
    /// Markdown description.
    pub description: String,
    /// Hidden in plans and logs.
    pub sensitive: bool,
    /// A change to it replaces the resource.
    pub requires_replace: bool,
    /// A computed attribute that may change whenever the resource is updated, so the plan shows it
    /// as unknown on update instead of keeping the value in state.
    pub unknown_on_update: bool,
    /// The value planned when the user leaves an optional+computed attribute unset.
    pub default: Option<Value>,
    /// Checks run on known values at plan time.
    pub validators: Vec<Validator>,
}

/// A nested block.
#[derive(Clone, Debug)]
pub struct NestedBlock {
    /// The block's name.
    pub name: &'static str,
    /// How it repeats.
    pub nesting: Nesting,
    /// Its contents.
    pub block: Block,
}

impl Attribute {
    fn new(name: &'static str, ty: AttributeType) -> Attribute {
        Attribute {
            name,
            ty,
            mode: Mode::Optional,
            description: String::new(),
            sensitive: false,
            requires_replace: false,
            unknown_on_update: false,
            default: None,
            validators: Vec::new(),
        }
    }

    /// A string attribute.
    pub fn string(name: &'static str) -> Attribute {
        Attribute::new(name, AttributeType::Plain(Type::String))
    }

    /// A number attribute.
    pub fn number(name: &'static str) -> Attribute {
        Attribute::new(name, AttributeType::Plain(Type::Number))
    }

    /// A bool attribute.
    pub fn bool(name: &'static str) -> Attribute {
        Attribute::new(name, AttributeType::Plain(Type::Bool))
    }

    /// An attribute of any plain type.
    pub fn of_type(name: &'static str, ty: Type) -> Attribute {
        Attribute::new(name, AttributeType::Plain(ty))
    }

    /// Nested attributes.
    pub fn nested(name: &'static str, nesting: Nesting, attributes: Vec<Attribute>) -> Attribute {
        Attribute::new(name, AttributeType::Nested(nesting, attributes))
    }

    /// The user must set it.
    pub fn required(mut self) -> Attribute {
        self.mode = Mode::Required;
        self
    }

    /// The user may set it (the default).
    pub fn optional(mut self) -> Attribute {
        self.mode = Mode::Optional;
        self
    }

    /// Only the provider sets it.
    pub fn computed(mut self) -> Attribute {
        self.mode = Mode::Computed;
        self
    }

    /// The user may set it; otherwise the provider does.
    pub fn optional_computed(mut self) -> Attribute {
        self.mode = Mode::OptionalComputed;
        self
    }

    /// Sets the markdown description.
    pub fn describe(mut self, description: impl Into<String>) -> Attribute {
        self.description = description.into();
        self
    }

    /// Marks it sensitive.
    pub fn sensitive(mut self) -> Attribute {
        self.sensitive = true;
        self
    }

    /// A change replaces the resource.
    pub fn requires_replace(mut self) -> Attribute {
        self.requires_replace = true;
        self
    }

    /// The plan shows it unknown whenever the resource is updated.
    pub fn unknown_on_update(mut self) -> Attribute {
        self.unknown_on_update = true;
        self
    }

    /// The value planned when unset (makes it optional+computed).
    pub fn default(mut self, value: Value) -> Attribute {
        self.mode = Mode::OptionalComputed;
        self.default = Some(value);
        self
    }

    /// Adds a check.
    pub fn validate(mut self, validator: Validator) -> Attribute {
        self.validators.push(validator);
        self
    }

    /// Whether the user may write it.
    pub fn is_configurable(&self) -> bool {
        self.mode != Mode::Computed
    }

    /// Whether the provider may set it.
    pub fn is_computed(&self) -> bool {
        matches!(self.mode, Mode::Computed | Mode::OptionalComputed)
    }

    /// The attribute's value type.
    pub fn value_type(&self) -> Type {
        match &self.ty {
            AttributeType::Plain(ty) => ty.clone(),
            AttributeType::Nested(nesting, attributes) => {
                let object = Type::Object(
                    attributes.iter().map(|a| (a.name.to_string(), a.value_type())).collect(),
                );
                wrap_nesting(*nesting, object)
            }
        }
    }
}

impl Block {
    /// A block with these attributes.
    pub fn new(description: impl Into<String>, attributes: Vec<Attribute>) -> Block {
        Block { description: description.into(), attributes, blocks: Vec::new() }
    }

    /// This block with a nested block added.
    pub fn with_block(mut self, block: NestedBlock) -> Block {
        self.blocks.push(block);
        self
    }

    /// The attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|attribute| attribute.name == name)
    }

    /// The object type of this block's values.
    pub fn value_type(&self) -> Type {
        let mut members: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|attribute| (attribute.name.to_string(), attribute.value_type()))
            .collect();
        for nested in &self.blocks {
            members.insert(nested.name.to_string(), nested.value_type());
        }
        Type::Object(members)
    }
}

impl NestedBlock {
    /// The type of this block's value inside its parent.
    pub fn value_type(&self) -> Type {
        wrap_nesting(self.nesting, self.block.value_type())
    }
}

impl Schema {
    /// The object type of values of this schema.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }
}

fn wrap_nesting(nesting: Nesting, object: Type) -> Type {
    match nesting {
        Nesting::Single => object,
        Nesting::List => Type::list(object),
        Nesting::Set => Type::set(object),
        Nesting::Map => Type::map(object),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_type_includes_attributes_nested_attributes_and_blocks() {
        let block = Block::new(
            "",
            vec![
                Attribute::string("name").required(),
                Attribute::nested("rules", Nesting::List, vec![Attribute::number("size")]),
            ],
        )
        .with_block(NestedBlock {
            name: "timeouts",
            nesting: Nesting::Single,
            block: Block::new("", vec![Attribute::string("create")]),
        });
        let Type::Object(members) = block.value_type() else { panic!("not an object") };
        assert_eq!(members["name"], Type::String);
        assert_eq!(
            members["rules"],
            Type::list(Type::Object(BTreeMap::from([("size".to_string(), Type::Number)])))
        );
        assert!(matches!(members["timeouts"], Type::Object(_)));
    }

    #[test]
    fn default_makes_an_attribute_optional_and_computed() {
        let attribute = Attribute::bool("adopt_existing").default(Value::Bool(true));
        assert_eq!(attribute.mode, Mode::OptionalComputed);
        assert!(attribute.is_computed() && attribute.is_configurable());
    }
}
