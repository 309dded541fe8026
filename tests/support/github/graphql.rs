//! GraphQL: the endpoint and an executor for the review-thread part of GitHub's schema (only the
//! fields asked for, validation errors like GitHub's, connections paginated by cursor).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::DOCS_GRAPHQL;
use super::encoding::base64_encode;
use super::graphql_parser::{GqlField, GqlOp, GqlParser, GqlValue};
use super::server::{Ctx, Reply};
use super::world::{Repo, ThreadState, World};

/// One GraphQL request being executed.
pub(super) struct GqlExec {
    pub(super) variables: serde_json::Map<String, Value>,
    pub(super) errors: Vec<Value>,
    /// A validation error happened (unknown field or argument, wrong selection): like GitHub,
    /// the answer then has no `data`, and a mutation is not applied.
    pub(super) invalid: bool,
    /// Validate a mutation without applying it.
    pub(super) dry_run: bool,
    pub(super) installation_id: u64,
    pub(super) scope: Option<BTreeSet<String>>,
}

impl GqlExec {
    fn value(&self, v: &GqlValue) -> Value {
        match v {
            GqlValue::Var(name) => self.variables.get(name).cloned().unwrap_or(Value::Null),
            GqlValue::Const(v) => v.clone(),
            GqlValue::List(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            GqlValue::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.value(v)))
                    .collect(),
            ),
        }
    }

    pub(super) fn arg(&self, f: &GqlField, name: &str) -> Value {
        f.args
            .iter()
            .find(|(n, _)| n == name)
            .map_or(Value::Null, |(_, v)| self.value(v))
    }

    pub(super) fn invalid(&mut self, path: &[Value], message: String, extensions: Value) {
        self.invalid = true;
        self.errors
            .push(json!({ "path": path, "extensions": extensions, "message": message }));
    }

    /// An execution error: the field is `null` and the rest of the answer stands.
    pub(super) fn fail(&mut self, path: &[Value], kind: &str, message: String) {
        self.errors
            .push(json!({ "type": kind, "path": path, "message": message }));
    }

    pub(super) fn undefined(&mut self, type_name: &str, f: &GqlField, path: &[Value]) -> Resolved {
        self.invalid(
            path,
            format!("Field '{}' doesn't exist on type '{type_name}'", f.name),
            json!({ "code": "undefinedField", "typeName": type_name, "fieldName": f.name }),
        );
        Resolved::Null
    }

    /// Unknown arguments and missing required ones are validation errors.
    pub(super) fn check_args(
        &mut self,
        f: &GqlField,
        allowed: &[&str],
        required: &[&str],
        path: &[Value],
    ) -> bool {
        if let Some((name, _)) = f.args.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            self.invalid(
                path,
                format!("Field '{}' doesn't accept argument '{name}'", f.name),
                json!({ "code": "argumentNotAccepted", "name": f.name, "typeName": "Field", "argumentName": name }),
            );
            return false;
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| self.arg(f, r).is_null())
            .collect();
        if !missing.is_empty() {
            self.invalid(
                path,
                format!(
                    "Field '{}' is missing required arguments: {}",
                    f.name,
                    missing.join(", ")
                ),
                json!({ "code": "missingRequiredArguments", "className": "Field", "name": f.name, "arguments": missing.join(", ") }),
            );
            return false;
        }
        true
    }

    fn typed_arg(
        &mut self,
        f: &GqlField,
        name: &str,
        expected: &str,
        ok: fn(&Value) -> bool,
        path: &[Value],
    ) -> Result<Value, ()> {
        let v = self.arg(f, name);
        if v.is_null() || ok(&v) {
            return Ok(v);
        }
        self.invalid(
            path,
            format!(
                "Argument '{name}' on Field '{}' has an invalid value ({v}). Expected type '{expected}'.",
                f.name
            ),
            json!({ "code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": name }),
        );
        Err(())
    }

    pub(super) fn int_arg(
        &mut self,
        f: &GqlField,
        name: &str,
        path: &[Value],
    ) -> Result<Option<i64>, ()> {
        Ok(self
            .typed_arg(f, name, "Int", |v| v.as_i64().is_some(), path)?
            .as_i64())
    }

    pub(super) fn string_arg(
        &mut self,
        f: &GqlField,
        name: &str,
        path: &[Value],
    ) -> Result<Option<String>, ()> {
        Ok(self
            .typed_arg(f, name, "String", Value::is_string, path)?
            .as_str()
            .map(str::to_owned))
    }

    pub(super) fn can_access(&self, repo: &Repo) -> bool {
        let key = repo.full_name.to_ascii_lowercase();
        repo.installation_id == self.installation_id
            && self.scope.as_ref().is_none_or(|s| s.contains(&key))
    }
}

/// An object of the schema subset, owning what its fields need.
#[derive(Clone)]
pub(super) enum GqlObj {
    Query,
    Mutation,
    /// Lowercase full name.
    Repository(String),
    PullRequest(String, u64),
    Connection {
        type_name: &'static str,
        edge_type: &'static str,
        edges: Vec<(String, GqlObj)>,
        total: usize,
        has_next: bool,
        has_prev: bool,
    },
    Edge {
        type_name: &'static str,
        cursor: String,
        node: Box<GqlObj>,
    },
    PageInfo {
        start: Option<String>,
        end: Option<String>,
        has_next: bool,
        has_prev: bool,
    },
    Thread(ThreadView),
    Comment(CommentView),
    Actor(String),
    ThreadPayload {
        type_name: &'static str,
        thread: ThreadView,
        client_mutation_id: Value,
    },
}

impl GqlObj {
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            GqlObj::Query => "Query",
            GqlObj::Mutation => "Mutation",
            GqlObj::Repository(_) => "Repository",
            GqlObj::PullRequest(..) => "PullRequest",
            GqlObj::Connection { type_name, .. }
            | GqlObj::Edge { type_name, .. }
            | GqlObj::ThreadPayload { type_name, .. } => type_name,
            GqlObj::PageInfo { .. } => "PageInfo",
            GqlObj::Thread(_) => "PullRequestReviewThread",
            GqlObj::Comment(_) => "PullRequestReviewComment",
            GqlObj::Actor(login) if login.ends_with("[bot]") => "Bot",
            GqlObj::Actor(_) => "User",
        }
    }
}

pub(super) enum Resolved {
    Scalar(Value),
    Object(GqlObj),
    Objects(Vec<GqlObj>),
    Null,
}

/// A review thread: a root comment and its replies.
#[derive(Clone)]
pub(super) struct ThreadView {
    pub(super) root: u64,
    pub(super) path: String,
    pub(super) line: u64,
    pub(super) start_line: Option<u64>,
    pub(super) side: String,
    pub(super) start_side: Option<String>,
    pub(super) state: ThreadState,
    pub(super) comments: Vec<CommentView>,
}

#[derive(Clone)]
pub(super) struct CommentView {
    pub(super) id: u64,
    pub(super) body: String,
    pub(super) author: String,
    pub(super) path: String,
    pub(super) line: u64,
    pub(super) outdated: bool,
    pub(super) created_at: DateTime<Utc>,
    pub(super) diff_hunk: String,
    pub(super) url: String,
    pub(super) reply_to: Option<Box<CommentView>>,
}

fn gql_cursor(index: usize) -> String {
    base64_encode(format!("cursor:v2:{index}").as_bytes())
}

pub(super) fn thread_node_id(root: u64) -> String {
    format!("PRRT_kwDO{root:010}")
}

impl World {
    /// `POST /graphql` (and `/api/graphql`): installation token required, like REST.
    pub(super) fn graphql(&mut self, ctx: &Ctx) -> Reply {
        let (installation_id, scope) = match self.live_token(ctx) {
            Ok(info) => (info.installation_id, info.repositories.clone()),
            Err(_) => return Reply::error(401, "Bad credentials", DOCS_GRAPHQL),
        };
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let errors =
            |message: String| Reply::json(200, json!({ "errors": [{ "message": message }] }));
        let Some(query) = body.get("query").and_then(Value::as_str) else {
            return errors("A query attribute must be specified and must be a string.".into());
        };
        let variables = match body.get("variables") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(vars)) => vars.clone(),
            Some(other) => return errors(format!("Variables must be an object, got {other}")),
        };
        let (op, selection) = match GqlParser::parse(query) {
            Ok(parsed) => parsed,
            Err(message) => return errors(message),
        };
        let mut ex = GqlExec {
            variables,
            errors: Vec::new(),
            invalid: false,
            dry_run: op == GqlOp::Mutation,
            installation_id,
            scope,
        };
        let root = match op {
            GqlOp::Query => GqlObj::Query,
            GqlOp::Mutation => GqlObj::Mutation,
        };
        let mut data = self.gql_render(&mut ex, &root, &selection, &[]);
        if ex.dry_run && !ex.invalid {
            // Validated: now apply the mutation for real.
            ex.dry_run = false;
            ex.errors.clear();
            data = self.gql_render(&mut ex, &root, &selection, &[]);
        }
        if ex.invalid {
            return Reply::json(200, json!({ "errors": ex.errors }));
        }
        let mut out = json!({ "data": data });
        if !ex.errors.is_empty() {
            out["errors"] = Value::Array(ex.errors);
        }
        Reply::json(200, out)
    }

    fn gql_render(
        &mut self,
        ex: &mut GqlExec,
        obj: &GqlObj,
        selection: &[GqlField],
        path: &[Value],
    ) -> Value {
        let mut out = serde_json::Map::new();
        for f in selection {
            let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
            let mut field_path = path.to_vec();
            field_path.push(json!(key));
            let value = if f.name == "__typename" {
                json!(obj.type_name())
            } else {
                let resolved = self.gql_resolve(ex, obj, f, &field_path);
                self.gql_complete(ex, f, resolved, &field_path)
            };
            out.insert(key, value);
        }
        Value::Object(out)
    }

    fn gql_complete(
        &mut self,
        ex: &mut GqlExec,
        f: &GqlField,
        resolved: Resolved,
        path: &[Value],
    ) -> Value {
        let mismatch =
            json!({ "code": "selectionMismatch", "nodeName": format!("field '{}'", f.name) });
        match resolved {
            Resolved::Null => Value::Null,
            Resolved::Scalar(v) => {
                if !f.selection.is_empty() {
                    ex.invalid(
                        path,
                        format!("Selections can't be made on scalars (field '{}')", f.name),
                        mismatch,
                    );
                }
                v
            }
            Resolved::Object(_) | Resolved::Objects(_) if f.selection.is_empty() => {
                ex.invalid(
                    path,
                    format!(
                        "Field must have selections (field '{}' returns an object but has no selections. Did you mean '{} {{ ... }}'?)",
                        f.name, f.name
                    ),
                    mismatch,
                );
                Value::Null
            }
            Resolved::Object(o) => self.gql_render(ex, &o, &f.selection, path),
            Resolved::Objects(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, o) in items.iter().enumerate() {
                    let mut item_path = path.to_vec();
                    item_path.push(json!(i));
                    out.push(self.gql_render(ex, o, &f.selection, &item_path));
                }
                Value::Array(out)
            }
        }
    }
}

/// A connection page with GitHub's rules: `first` (at most 100) is required, `after` must be
/// a cursor it handed out. `last`/`before` are not supported by the fake.
pub(super) fn gql_connection(
    ex: &mut GqlExec,
    f: &GqlField,
    path: &[Value],
    field: &str,
    type_name: &'static str,
    edge_type: &'static str,
    items: Vec<GqlObj>,
) -> Resolved {
    if !ex.check_args(f, &["first", "last", "after", "before"], &[], path) {
        return Resolved::Null;
    }
    let (Ok(first), Ok(last), Ok(after), Ok(before)) = (
        ex.int_arg(f, "first", path),
        ex.int_arg(f, "last", path),
        ex.string_arg(f, "after", path),
        ex.string_arg(f, "before", path),
    ) else {
        return Resolved::Null;
    };
    if last.is_some() || before.is_some() {
        ex.fail(
            path,
            "UNSUPPORTED",
            format!("the fake paginates `{field}` with `first`/`after` only"),
        );
        return Resolved::Null;
    }
    let first = match first {
        None => {
            ex.fail(
                path,
                "MISSING_PAGINATION_BOUNDARIES",
                format!("You must provide a `first` or `last` value to properly paginate the `{field}` connection."),
            );
            return Resolved::Null;
        }
        Some(n) if n < 0 => {
            ex.fail(
                path,
                "INVALID_PAGINATION",
                format!("`first` on the `{field}` connection cannot be less than zero."),
            );
            return Resolved::Null;
        }
        Some(n) if n > 100 => {
            ex.fail(
                path,
                "EXCESSIVE_PAGINATION",
                format!("Requesting {n} records on the `{field}` connection exceeds the `first` limit of 100 records."),
            );
            return Resolved::Null;
        }
        Some(n) => n as usize,
    };
    let total = items.len();
    let start = match after {
        None => 0,
        Some(cursor) => match (0..total).find(|&i| gql_cursor(i) == cursor) {
            Some(i) => i + 1,
            None => {
                ex.fail(
                    path,
                    "INVALID_CURSOR_ARGUMENTS",
                    format!("`{cursor}` does not appear to be a valid cursor."),
                );
                return Resolved::Null;
            }
        },
    };
    let end = (start + first).min(total);
    let edges = items
        .into_iter()
        .enumerate()
        .skip(start)
        .take(end - start)
        .map(|(i, o)| (gql_cursor(i), o))
        .collect();
    Resolved::Object(GqlObj::Connection {
        type_name,
        edge_type,
        edges,
        total,
        has_next: end < total,
        has_prev: start > 0,
    })
}
