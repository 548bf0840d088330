//! Event types a domain documents: their fields, what each holds, and the check the
//! router runs on every posted event of such a type.

use serde_json::{Map, Value, json};

/// A documented event type: its name and its fields.
#[derive(Debug, Clone, Copy)]
pub struct EventType {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// One documented field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
}

impl Field {
    /// A field the event must have.
    pub const fn required(name: &'static str, kind: FieldKind) -> Field {
        Field {
            name,
            kind,
            required: true,
        }
    }

    /// A field the event may have.
    pub const fn optional(name: &'static str, kind: FieldKind) -> Field {
        Field {
            name,
            kind,
            required: false,
        }
    }
}

/// What a documented field holds.
#[derive(Debug, Clone, Copy)]
pub enum FieldKind {
    Text,
    Number,
    Integer,
    /// A number of seconds or a human text such as "3 hours".
    Duration,
    List,
    /// A list of objects, each with these fields (a portfolio's positions).
    Records(&'static [Field]),
}

impl FieldKind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            FieldKind::Text => v.is_string(),
            FieldKind::Number => v.is_number(),
            FieldKind::Integer => {
                v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            FieldKind::Duration => v.is_number() || v.is_string(),
            FieldKind::List | FieldKind::Records(_) => v.is_array(),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            FieldKind::Text => "a string",
            FieldKind::Number => "a number",
            FieldKind::Integer => "a whole number",
            FieldKind::Duration => "a number of seconds or a text such as \"3 hours\"",
            FieldKind::List | FieldKind::Records(_) => "an array",
        }
    }

    /// Some value of this kind, for sample events.
    pub fn sample(self) -> Value {
        match self {
            FieldKind::Text => json!("sample"),
            FieldKind::Number => json!(12.5),
            FieldKind::Integer => json!(12),
            FieldKind::Duration => json!(10800),
            FieldKind::List | FieldKind::Records(_) => json!([]),
        }
    }
}

/// A documented field with the wrong shape: the field's path (`positions[0].side`) and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl EventType {
    /// Checks an event's data fields against this type, then removes the optional
    /// documented fields sent as `null`: a bot's `cash: None` means "not given", so
    /// templates and stores see it as absent instead of failing on a null where a number
    /// belongs. Fields the type does not document pass as they are.
    pub fn check(&self, data: &mut Map<String, Value>) -> Result<(), FieldError> {
        check_object(self.fields, data, "")?;
        drop_null_optionals(self.fields, data);
        Ok(())
    }
}

fn check_object(
    fields: &[Field],
    map: &Map<String, Value>,
    prefix: &str,
) -> Result<(), FieldError> {
    for field in fields {
        let error = |message: String| FieldError {
            field: format!("{prefix}{}", field.name),
            message,
        };
        match map.get(field.name) {
            None | Some(Value::Null) if field.required => {
                return Err(error(format!(
                    "missing: required, {}",
                    field.kind.expected()
                )));
            }
            None | Some(Value::Null) => {}
            Some(v) if !field.kind.accepts(v) => {
                return Err(error(format!(
                    "expected {}, got {}",
                    field.kind.expected(),
                    describe_value(v)
                )));
            }
            Some(v) => {
                if let (FieldKind::Records(inner), Value::Array(records)) = (field.kind, v) {
                    for (i, record) in records.iter().enumerate() {
                        let at = format!("{prefix}{}[{i}]", field.name);
                        match record {
                            Value::Object(record) => {
                                check_object(inner, record, &format!("{at}."))?
                            }
                            other => {
                                return Err(FieldError {
                                    field: at,
                                    message: format!(
                                        "expected an object, got {}",
                                        describe_value(other)
                                    ),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn drop_null_optionals(fields: &[Field], map: &mut Map<String, Value>) {
    map.retain(|key, value| {
        !(value.is_null() && fields.iter().any(|f| f.name == key && !f.required))
    });
    for field in fields {
        if let (FieldKind::Records(inner), Some(Value::Array(records))) =
            (field.kind, map.get_mut(field.name))
        {
            for record in records.iter_mut().filter_map(Value::as_object_mut) {
                drop_null_optionals(inner, record);
            }
        }
    }
}

/// A JSON value as an error message names it: `the string "45000"`, `an array`.
pub fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}
