//! A small GraphQL parser: one operation of fields with arguments and selection sets.

use serde_json::Value;

/// A field of a selection set, arguments unevaluated.
#[derive(Clone, Debug)]
pub(super) struct GqlField {
    pub(super) alias: Option<String>,
    pub(super) name: String,
    pub(super) args: Vec<(String, GqlValue)>,
    pub(super) selection: Vec<GqlField>,
}

#[derive(Clone, Debug)]
pub(super) enum GqlValue {
    Var(String),
    Const(Value),
    List(Vec<GqlValue>),
    Object(Vec<(String, GqlValue)>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GqlOp {
    Query,
    Mutation,
}

/// Parses one operation (query or mutation, optionally named, with variable definitions whose
/// types are not checked); fragments, directives and block strings are refused.
pub(super) struct GqlParser<'s> {
    src: &'s str,
    pos: usize,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

impl<'s> GqlParser<'s> {
    pub(super) fn parse(src: &'s str) -> Result<(GqlOp, Vec<GqlField>), String> {
        let mut p = GqlParser { src, pos: 0 };
        let op = if p.peek() == Some(b'{') {
            GqlOp::Query
        } else {
            match p.name()?.as_str() {
                "query" => GqlOp::Query,
                "mutation" => GqlOp::Mutation,
                other => {
                    return Err(p.error(&format!(
                        "expected `query`, `mutation` or `{{`, found `{other}`"
                    )));
                }
            }
        };
        if p.peek().is_some_and(is_name_start) {
            p.name()?;
        }
        if p.peek() == Some(b'(') {
            p.skip_variable_definitions()?;
        }
        if p.peek() == Some(b'@') {
            return Err(p.error("directives are not supported by the fake"));
        }
        let selection = p.selection_set()?;
        if p.peek().is_some() {
            return Err(p.error("the fake supports one operation per document and no fragments"));
        }
        Ok((op, selection))
    }

    fn error(&self, detail: &str) -> String {
        let before = &self.src[..self.pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("Parse error at [{line}, {column}]: {detail}")
    }

    fn skip_ignored(&mut self) {
        let b = self.src.as_bytes();
        while let Some(&c) = b.get(self.pos) {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.pos += 1,
                b'#' => {
                    while b.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ignored();
        self.src.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", c as char)))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.skip_ignored();
        let b = self.src.as_bytes();
        let start = self.pos;
        if !b.get(self.pos).copied().is_some_and(is_name_start) {
            return Err(self.error("expected a name"));
        }
        while b
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.pos += 1;
        }
        Ok(self.src[start..self.pos].to_owned())
    }

    /// Variables are read from the request's `variables`; their declared types are not checked.
    fn skip_variable_definitions(&mut self) -> Result<(), String> {
        self.expect(b'(')?;
        let mut depth = 1;
        while depth > 0 {
            match self.src.as_bytes().get(self.pos) {
                None => return Err(self.error("unclosed variable definitions")),
                Some(b'"') => {
                    self.string()?;
                    continue;
                }
                Some(b'(') => depth += 1,
                Some(b')') => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn selection_set(&mut self) -> Result<Vec<GqlField>, String> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        while !self.eat(b'}') {
            match self.peek() {
                None => return Err(self.error("unclosed selection set")),
                Some(b'.') => return Err(self.error("fragments are not supported by the fake")),
                _ => fields.push(self.field()?),
            }
        }
        if fields.is_empty() {
            return Err(self.error("empty selection set"));
        }
        Ok(fields)
    }

    fn field(&mut self) -> Result<GqlField, String> {
        let first = self.name()?;
        let (alias, name) = if self.eat(b':') {
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        let mut args = Vec::new();
        if self.eat(b'(') {
            while !self.eat(b')') {
                let arg = self.name()?;
                self.expect(b':')?;
                args.push((arg, self.value()?));
            }
        }
        if self.peek() == Some(b'@') {
            return Err(self.error("directives are not supported by the fake"));
        }
        let selection = if self.peek() == Some(b'{') {
            self.selection_set()?
        } else {
            Vec::new()
        };
        Ok(GqlField {
            alias,
            name,
            args,
            selection,
        })
    }

    fn value(&mut self) -> Result<GqlValue, String> {
        match self.peek() {
            Some(b'$') => {
                self.pos += 1;
                Ok(GqlValue::Var(self.name()?))
            }
            Some(b'"') => Ok(GqlValue::Const(Value::String(self.string()?))),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                while !self.eat(b']') {
                    if self.peek().is_none() {
                        return Err(self.error("unclosed list"));
                    }
                    items.push(self.value()?);
                }
                Ok(GqlValue::List(items))
            }
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                while !self.eat(b'}') {
                    let key = self.name()?;
                    self.expect(b':')?;
                    fields.push((key, self.value()?));
                }
                Ok(GqlValue::Object(fields))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let b = self.src.as_bytes();
                let start = self.pos;
                self.pos += 1;
                while b
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_digit() || b".eE+-".contains(c))
                {
                    self.pos += 1;
                }
                let text = &self.src[start..self.pos];
                serde_json::from_str(text)
                    .map(GqlValue::Const)
                    .map_err(|_| self.error(&format!("bad number `{text}`")))
            }
            Some(c) if is_name_start(c) => Ok(GqlValue::Const(match self.name()?.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                enum_value => Value::String(enum_value.to_owned()),
            })),
            _ => Err(self.error("expected a value")),
        }
    }

    /// A `"..."` string at the cursor; GraphQL's escapes are JSON's.
    fn string(&mut self) -> Result<String, String> {
        if self.src[self.pos..].starts_with("\"\"\"") {
            return Err(self.error("block strings are not supported by the fake"));
        }
        let b = self.src.as_bytes();
        let start = self.pos;
        self.pos += 1;
        loop {
            match b.get(self.pos) {
                None | Some(b'\n') => return Err(self.error("unterminated string")),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        serde_json::from_str(&self.src[start..self.pos]).map_err(|_| self.error("bad string"))
    }
}
