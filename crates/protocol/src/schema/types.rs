//! The parsed schema: key and command schemas, value types, `rangelist`
//! values, and the validation error.

/// Schema validation errors. Paths look like `Command.Queries[2]`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// The `RequestType` is not in Apple's schema.
    #[error("unknown RequestType {0:?}")]
    UnknownRequestType(String),
    /// A required key is missing.
    #[error("{path}: required key missing")]
    MissingKey {
        /// Path of the missing key.
        path: String,
    },
    /// A value has the wrong type.
    #[error("{path}: expected {expected}")]
    WrongType {
        /// Path of the value.
        path: String,
        /// Expected type, e.g. `string` or `data (base64 string)`.
        expected: &'static str,
    },
    /// A key that the schema does not define.
    #[error("{path}: unknown key")]
    UnknownKey {
        /// Path of the unexpected key.
        path: String,
    },
    /// A value outside the schema's `rangelist`.
    #[error("{path}: value {value} is not one of [{allowed}]")]
    NotAllowed {
        /// Path of the value.
        path: String,
        /// The offending value.
        value: String,
        /// The allowed values, comma separated.
        allowed: String,
    },
    /// Any other invalid value.
    #[error("{path}: {message}")]
    Invalid {
        /// Path of the value.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The embedded schema could not be loaded (a build defect).
    #[error("embedded schema failed to load: {0}")]
    Load(String),
}

impl SchemaError {
    /// The key path the error refers to, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            SchemaError::MissingKey { path }
            | SchemaError::WrongType { path, .. }
            | SchemaError::UnknownKey { path }
            | SchemaError::NotAllowed { path, .. }
            | SchemaError::Invalid { path, .. } => Some(path),
            SchemaError::UnknownRequestType(_) | SchemaError::Load(_) => None,
        }
    }
}

/// A schema value type (`type:` in the YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `<string>`
    String,
    /// `<integer>`
    Integer,
    /// `<real>`
    Real,
    /// `<boolean>`
    Boolean,
    /// `<date>`
    Date,
    /// `<data>`
    Data,
    /// `<array>`
    Array,
    /// `<dictionary>`
    Dictionary,
    /// `<any>`
    Any,
}

impl ValueType {
    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "<string>" => Self::String,
            "<integer>" => Self::Integer,
            "<real>" => Self::Real,
            "<boolean>" => Self::Boolean,
            "<date>" => Self::Date,
            "<data>" => Self::Data,
            "<array>" => Self::Array,
            "<dictionary>" => Self::Dictionary,
            "<any>" => Self::Any,
            _ => return None,
        })
    }

    /// Expected-type description for JSON input.
    pub(super) fn json_name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Real => "real",
            Self::Boolean => "boolean",
            Self::Date => "date (RFC 3339 string)",
            Self::Data => "data (base64 string)",
            Self::Array => "array",
            Self::Dictionary => "dictionary",
            Self::Any => "any value",
        }
    }

    /// Expected-type description for plist input.
    pub(super) fn plist_name(self) -> &'static str {
        match self {
            Self::Date => "date",
            Self::Data => "data",
            other => other.json_name(),
        }
    }
}

/// One allowed value from a `rangelist`.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeValue {
    /// A string value.
    String(String),
    /// An integer value.
    Integer(i64),
    /// A real value.
    Real(f64),
    /// A boolean value.
    Boolean(bool),
}

impl RangeValue {
    pub(super) fn from_yaml(v: &serde_yaml_ng::Value) -> Option<Self> {
        match v {
            serde_yaml_ng::Value::String(s) => Some(Self::String(s.clone())),
            serde_yaml_ng::Value::Bool(b) => Some(Self::Boolean(*b)),
            serde_yaml_ng::Value::Number(n) => n
                .as_i64()
                .map(Self::Integer)
                .or_else(|| n.as_f64().map(Self::Real)),
            _ => None,
        }
    }

    pub(super) fn matches_str(&self, s: &str) -> bool {
        match self {
            Self::String(v) => v == s,
            Self::Integer(i) => i.to_string() == s,
            Self::Real(r) => r.to_string() == s,
            Self::Boolean(b) => b.to_string() == s,
        }
    }

    pub(super) fn matches_int(&self, i: i128) -> bool {
        match self {
            Self::Integer(v) => i128::from(*v) == i,
            Self::String(s) => s.parse::<i128>().ok() == Some(i),
            Self::Real(r) => r.fract() == 0.0 && (*r as i128) == i,
            Self::Boolean(_) => false,
        }
    }
}

impl std::fmt::Display for RangeValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::String(s) => write!(f, "{s:?}"),
            Self::Integer(i) => write!(f, "{i}"),
            Self::Real(r) => write!(f, "{r}"),
            Self::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// Schema of one key (a `payloadkeys` / `subkeys` entry).
#[derive(Debug, Clone, PartialEq)]
pub struct KeySchema {
    /// Key name (`ANY` stands for "any key").
    pub name: String,
    /// Declared type.
    pub value_type: ValueType,
    /// `presence: required`.
    pub required: bool,
    /// The key declares its own `supportedOS` (its presence may depend on the
    /// platform, channel or enrollment type).
    pub os_dependent: bool,
    /// Allowed values (empty: unrestricted).
    pub rangelist: Vec<RangeValue>,
    /// Allowed numeric range, inclusive (`range: {min, max}`).
    pub range: (Option<f64>, Option<f64>),
    /// Platforms where the key does not exist (`supportedOS: {P:
    /// {introduced: n/a}}`).
    pub unsupported_on: Vec<String>,
    /// Nested keys (dictionary members, array item type, or documented values).
    pub subkeys: Vec<KeySchema>,
    /// Apple's short title (`title:`), for forms; may be empty.
    pub title: String,
    /// Apple's description (`content:`, English), for forms; may be empty.
    pub description: String,
    /// The value the device assumes when the key is absent (`default:`).
    pub default: Option<RangeValue>,
}

impl KeySchema {
    pub(super) fn is_any_key(&self) -> bool {
        self.name == "ANY"
    }
}

/// Schema of one command, check-in message or profile payload.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSchema {
    /// `payload.requesttype` (commands, check-in) or `payload.payloadtype`
    /// (profiles).
    pub request_type: String,
    /// Human title from the YAML.
    pub title: String,
    /// Source file name inside `apple-schema/mdm/…`.
    pub file: &'static str,
    /// Request keys (`payloadkeys`).
    pub keys: Vec<KeySchema>,
    /// Response keys (`responsekeys`).
    pub response_keys: Vec<KeySchema>,
    /// Platforms the whole payload does not exist on.
    pub unsupported_on: Vec<String>,
}
