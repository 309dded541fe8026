//! A reply's JSON schema as a llama.cpp grammar (GBNF) that keeps the JSON on one line.
//! llama.cpp's own conversion of `response_format: json_schema` lets the model break lines
//! and indent, and small models do: a fifth of a review's output tokens were line breaks and
//! indentation (BENCHMARKS.md), and on a local model output tokens are the time.
//!
//! One space may follow a colon or a comma, as Python's `json.dumps` writes: held to no
//! space at all, a small model answered `"findings":[]` on nearly every change (it has seen
//! little JSON written that way), and with the space it reviews as it does pretty-printed.
//! The space costs nothing: a tokenizer merges it into the token after it.
//!
//! Covers the schemas Critic asks with: objects of fixed properties (all required), arrays,
//! strings, integers (a small `minimum`..`maximum` range as its numbers; any other at most 16
//! digits, as llama.cpp's own conversion), numbers, booleans, null, string enums, and a list
//! of types (`["integer", "null"]`). Anything else, including a limit this does not enforce
//! (`maxLength`, `pattern`, ...), is an error, and the caller asks with the schema instead.

use std::collections::BTreeMap;

use serde_json::Value;

/// The grammar of `schema`'s JSON, compact.
pub fn compact_grammar(schema: &Value) -> Result<String, String> {
    let mut g = Grammar::default();
    let root = g.rule_for(schema, "root")?;
    let mut out = String::new();
    if root != "root" {
        out.push_str(&format!("root ::= {root}\n"));
    }
    for (name, body) in &g.rules {
        out.push_str(&format!("{name} ::= {body}\n"));
    }
    out.push_str(PRIMITIVES);
    Ok(out)
}

/// Strings as JSON writes them (escapes, no raw control characters), and numbers.
const PRIMITIVES: &str = r#"sp ::= " "?
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] ) )* "\""
integer ::= "-"? ( "0" | [1-9] [0-9]{0,15} )
number ::= integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
boolean ::= "true" | "false"
null ::= "null"
"#;

#[derive(Default)]
struct Grammar {
    /// Rules made for objects and arrays, by name.
    rules: BTreeMap<String, String>,
}

impl Grammar {
    /// An expression for `schema`; objects and arrays get a rule of their own named after
    /// `path`.
    fn rule_for(&mut self, schema: &Value, path: &str) -> Result<String, String> {
        if let Some(key) = schema
            .as_object()
            .and_then(|o| o.keys().find(|k| !KNOWN.contains(&k.as_str())))
        {
            return Err(format!("{path}: `{key}` is not enforced by this grammar"));
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            let literals: Result<Vec<String>, String> = options
                .iter()
                .map(|o| match o {
                    Value::String(s) => Ok(literal(&json_string(s))),
                    other => Err(format!("{path}: enum value {other} is not a string")),
                })
                .collect();
            return Ok(format!("( {} )", literals?.join(" | ")));
        }
        match schema.get("type") {
            Some(Value::String(t)) => self.typed(t, schema, path),
            Some(Value::Array(types)) => {
                let mut options = Vec::new();
                for t in types {
                    let t = t
                        .as_str()
                        .ok_or_else(|| format!("{path}: a type that is not a name"))?;
                    options.push(self.typed(t, schema, path)?);
                }
                Ok(format!("( {} )", options.join(" | ")))
            }
            _ => Err(format!("{path}: no type")),
        }
    }

    fn typed(&mut self, t: &str, schema: &Value, path: &str) -> Result<String, String> {
        Ok(match t {
            "integer" => integer_range(schema, path)?,
            "number" if schema.get("minimum").is_some() || schema.get("maximum").is_some() => {
                return Err(format!("{path}: a number with limits"));
            }
            "string" | "number" | "boolean" | "null" => t.to_string(),
            "array" => {
                let items = schema
                    .get("items")
                    .ok_or_else(|| format!("{path}: an array without items"))?;
                let item = self.rule_for(items, &format!("{path}-item"))?;
                let name = rule_name(path);
                // `minItems: 1`: a list that may not be empty (without it, a small model
                // held to no whitespace closes a list it should fill).
                let min_items = schema.get("minItems").map_or(Some(0), Value::as_u64);
                if !matches!(min_items, Some(0 | 1)) {
                    return Err(format!("{path}: minItems other than 0 or 1"));
                }
                let body = if min_items == Some(1) {
                    format!("\"[\" {item} ( \",\" sp {item} )* \"]\"")
                } else {
                    format!("\"[\" ( {item} ( \",\" sp {item} )* )? \"]\"")
                };
                self.rules.insert(name.clone(), body);
                name
            }
            "object" => {
                let properties = schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .ok_or_else(|| format!("{path}: an object without properties"))?;
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if let Some(key) = properties.keys().find(|k| !required.contains(&k.as_str())) {
                    return Err(format!("{path}.{key}: an optional property"));
                }
                if let Some(key) = required.iter().find(|k| !properties.contains_key(**k)) {
                    return Err(format!("{path}.{key}: required but not a property"));
                }
                // In the order of `properties` (alphabetical, as serde_json writes a schema):
                // the order every schema-enforcing mode already holds the model to (llama.cpp's
                // and vLLM's `json_schema` and OpenAI's strict mode write properties in the
                // schema's order), so this mode differs from them in whitespace only, the one
                // difference measured (BENCHMARKS.md).
                let mut parts = Vec::new();
                for (key, value) in properties {
                    let value = self.rule_for(value, &format!("{path}-{key}"))?;
                    parts.push(format!("{} \":\" sp {value}", literal(&json_string(key))));
                }
                let name = rule_name(path);
                let body = if parts.is_empty() {
                    "\"{\" \"}\"".to_string()
                } else {
                    format!("\"{{\" {} \"}}\"", parts.join(" \",\" sp "))
                };
                self.rules.insert(name.clone(), body);
                name
            }
            other => return Err(format!("{path}: type {other} is not supported")),
        })
    }
}

/// Schema keywords the grammar enforces (or, for the descriptive ones, need not).
const KNOWN: &[&str] = &[
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "minItems",
    "minimum",
    "maximum",
    "additionalProperties",
    "description",
    "title",
];

/// An integer between `minimum` and `maximum` as its numbers (a verify confidence of 0 to
/// 10 cannot come back as 85); any integer without limits. Other limits are refused.
fn integer_range(schema: &Value, path: &str) -> Result<String, String> {
    let (min, max) = (schema.get("minimum"), schema.get("maximum"));
    if min.is_none() && max.is_none() {
        return Ok("integer".to_string());
    }
    match (min.and_then(Value::as_u64), max.and_then(Value::as_u64)) {
        (Some(min), Some(max)) if min <= max && max - min <= 100 => {
            let numbers: Vec<String> = (min..=max).rev().map(|n| format!("\"{n}\"")).collect();
            Ok(format!("( {} )", numbers.join(" | ")))
        }
        _ => Err(format!("{path}: integer limits other than a small range")),
    }
}

/// A rule name GBNF takes: letters, digits and dashes.
fn rule_name(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .to_ascii_lowercase()
}

/// `s` as JSON writes it, quotes included.
fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A GBNF literal matching `text` exactly.
fn literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schema_becomes_a_grammar_with_one_line_and_single_spaces() {
        let schema = json!({
            "type": "object",
            "required": ["verdicts"],
            "properties": {"verdicts": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "verdict", "fix_ok"],
                "properties": {
                    "id": {"type": "integer"},
                    "verdict": {"type": "string", "enum": ["real", "taste", "wrong"]},
                    "fix_ok": {"type": ["boolean", "null"]}
                }
            }}}
        });
        let g = compact_grammar(&schema).expect("grammar");
        assert!(
            g.starts_with(r#"root ::= "{" "\"verdicts\"" ":" sp root-verdicts "}""#),
            "{g}"
        );
        assert!(
            g.contains(r#"root-verdicts-item ::= "{" "\"fix_ok\"" ":" sp ( boolean | null ) "," sp "\"id\"" ":" sp integer "," sp "\"verdict\"" ":" sp ( "\"real\"" | "\"taste\"" | "\"wrong\"" ) "}""#),
            "{g}"
        );
        assert!(
            g.contains(
                r#"root-verdicts ::= "[" ( root-verdicts-item ( "," sp root-verdicts-item )* )? "]""#
            ),
            "{g}"
        );
        assert!(g.contains("sp ::= \" \"?\n"), "one optional space: {g}");
        assert!(!g.contains("\\n"), "no line breaks: {g}");
        let listed = json!({"type": "array", "minItems": 1, "items": {"type": "integer"}});
        let g = compact_grammar(&listed).expect("grammar");
        assert!(
            g.starts_with(r#"root ::= "[" integer ( "," sp integer )* "]""#),
            "{g}"
        );
    }

    #[test]
    fn critics_schemas_all_convert_and_unknown_shapes_are_refused() {
        for schema in [
            crate::review::review_schema(),
            crate::review::review_schema_asking(false, false),
            crate::review::verify::schema(),
            crate::review::verify::schema_asking(false),
            crate::review::tasks::schema(crate::domain::Task::Describe),
            crate::review::tasks::schema(crate::domain::Task::Improve),
            crate::review::tasks::schema(crate::domain::Task::Ask),
            crate::review::tasks::schema(crate::domain::Task::Tests),
            crate::review::tasks::thread_schema(),
        ] {
            compact_grammar(&schema.schema).expect(schema.name);
        }
        // The verify confidence's 0..=10 holds: 85 cannot be written.
        let g = compact_grammar(&crate::review::verify::schema().schema).expect("verify");
        assert!(
            g.contains(r#""\"confidence\"" ":" sp ( "10" | "9" | "8" | "7" | "6" | "5" | "4" | "3" | "2" | "1" | "0" )"#),
            "{g}"
        );
        // Limits the grammar would not enforce send the caller back to the schema.
        for limited in [
            json!({"type": "string", "maxLength": 80}),
            json!({"type": "string", "pattern": "^a"}),
            json!({"type": "integer", "minimum": 0}),
            json!({"type": "integer", "minimum": 0, "maximum": 100000}),
            json!({"type": "array", "maxItems": 3, "items": {"type": "integer"}}),
            json!({"type": "array", "minItems": 2, "items": {"type": "integer"}}),
        ] {
            assert!(compact_grammar(&limited).is_err(), "{limited}");
        }
        let optional =
            json!({"type": "object", "required": [], "properties": {"a": {"type": "string"}}});
        assert!(compact_grammar(&optional).is_err());
        assert!(compact_grammar(&json!({"type": "date"})).is_err());
    }
}
