use super::*;

/// Default options with a known `extra`, so expected lines are easy to read.
fn opts(extra: u32, max_lines: u32) -> ScopeOptions {
    ScopeOptions { extra, max_lines }
}

/// The one scope found for `lines`, as (start, end, kind, header).
fn only_scope(
    path: &str,
    source: &str,
    lines: RangeInclusive<u32>,
) -> (u32, u32, ScopeKind, String) {
    let scopes = enclosing_scopes(path, source, lines.clone(), &opts(2, 200));
    assert_eq!(scopes.len(), 1, "{lines:?} in {path}: {scopes:#?}");
    let scope = &scopes[0];
    (scope.start, scope.end, scope.kind, scope.header())
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn definition_names(path: &str, source: &str) -> Vec<(String, Option<String>, u32, u32)> {
    definitions(path, source)
        .into_iter()
        .map(|d| (d.name, d.container, d.start, d.end))
        .collect()
}

fn import_targets(path: &str, source: &str) -> Vec<(String, ImportKind, u32)> {
    imports(path, source)
        .into_iter()
        .map(|i| (i.target, i.kind, i.line))
        .collect()
}

fn s(text: &str) -> String {
    text.to_owned()
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| s(text)).collect()
}

const RUST: &str = "\
//! Parses request headers.
use std::collections::HashMap;
use crate::error::{Error, Result};

const LIMIT: usize = 64;

/// A parsed header block.
#[derive(Debug)]
pub struct Headers {
    map: HashMap<String, String>,
}

impl Headers {
    /// Parses one header line.
    pub fn parse_header(&mut self, line: &str) -> Result<()> {
        let (name, value) = split(line)?;
        if self.map.len() >= LIMIT {
            return Err(Error::TooMany);
        }
        self.map.insert(name.to_lowercase(), value.trim().to_owned());
        Ok(())
    }
}

fn split(line: &str) -> Result<(&str, &str)> {
    line.split_once(':').ok_or(Error::Malformed)
}
";

#[test]
fn rust_method_scope_includes_its_doc_comment() {
    assert_eq!(
        only_scope("src/headers.rs", RUST, 17..=18),
        (
            14,
            22,
            ScopeKind::Method,
            s("impl Headers > fn parse_header")
        )
    );
    assert_eq!(
        only_scope("src/headers.rs", RUST, 10..=10),
        (7, 11, ScopeKind::Struct, s("struct Headers"))
    );
}

#[test]
fn rust_top_level_change_gets_extra_lines() {
    assert_eq!(
        only_scope("src/headers.rs", RUST, 5..=5),
        (3, 7, ScopeKind::TopLevel, s("top level"))
    );
}

#[test]
fn rust_calls_definitions_and_imports() {
    assert_eq!(
        sorted(symbols_called("src/headers.rs", RUST, 16..=20)),
        strings(&[
            "Err",
            "insert",
            "len",
            "split",
            "to_lowercase",
            "to_owned",
            "trim"
        ])
    );
    assert_eq!(
        definition_names("src/headers.rs", RUST),
        vec![
            (s("Headers"), None, 7, 11),
            (s("parse_header"), Some(s("Headers")), 14, 22),
            (s("split"), None, 25, 27),
        ]
    );
    assert_eq!(
        import_targets("src/headers.rs", RUST),
        vec![
            (s("std::collections::HashMap"), ImportKind::Module, 2),
            (s("crate::error::Error"), ImportKind::Module, 3),
            (s("crate::error::Result"), ImportKind::Module, 3),
        ]
    );
}

#[test]
fn rust_calls_inside_macros_are_found() {
    let source = "\
fn report(count: usize) {
    println!(\"{} {}\", describe(count), count);
    assert_eq!(vec![1, (2)], totals(count));
}
";
    assert_eq!(
        sorted(symbols_called("src/report.rs", source, 2..=3)),
        strings(&["describe", "totals"])
    );
}

#[test]
fn rust_relative_paths_become_crate_paths_and_resolve_to_files() {
    let source = "\
mod parse;
pub mod frame;
use self::parse::Parse;
use super::{db::Db, Connection};
use crate::cmd::*;
use frame::Frame;
use tokio::net::TcpStream;

#[cfg(test)]
mod tests {
    use super::*;
}
";
    let found = imports("src/cmd/get.rs", source);
    let targets: Vec<(&str, ImportKind)> =
        found.iter().map(|i| (i.target.as_str(), i.kind)).collect();
    assert_eq!(
        targets,
        vec![
            ("crate::cmd::get::parse", ImportKind::ModDeclaration),
            ("crate::cmd::get::frame", ImportKind::ModDeclaration),
            ("crate::cmd::get::parse::Parse", ImportKind::Module),
            ("crate::cmd::db::Db", ImportKind::Module),
            ("crate::cmd::Connection", ImportKind::Module),
            ("crate::cmd", ImportKind::Module),
            ("crate::cmd::get::frame::Frame", ImportKind::Module),
            ("tokio::net::TcpStream", ImportKind::Module),
            ("crate::cmd::get", ImportKind::Module),
        ]
    );
    assert_eq!(
        import_candidates("src/cmd/get.rs", &found[0]),
        strings(&["src/cmd/get/parse.rs", "src/cmd/get/parse/mod.rs"])
    );
    assert_eq!(
        import_candidates("src/cmd/get.rs", &found[3]),
        strings(&[
            "src/cmd/db/Db.rs",
            "src/cmd/db/Db/mod.rs",
            "src/cmd/db.rs",
            "src/cmd/db/mod.rs",
            "src/cmd.rs",
            "src/cmd/mod.rs"
        ])
    );
    // `use super::*` in the tests module is the file itself: no candidate.
    assert!(!import_candidates("src/cmd/get.rs", &found[8]).contains(&s("src/cmd/get.rs")));
    assert!(import_candidates("src/cmd/get.rs", &found[7]).is_empty());
    let root_module = imports("axum-core/src/lib.rs", "mod macros;\n");
    assert_eq!(
        import_candidates("axum-core/src/lib.rs", &root_module[0]),
        strings(&["axum-core/src/macros.rs", "axum-core/src/macros/mod.rs"])
    );
}

const PYTHON: &str = "\
import os
from .compat import urlparse

DEFAULT_TIMEOUT = 30


class Session:
    \"\"\"Keeps settings across requests.\"\"\"

    def __init__(self):
        self.headers = {}

    @property
    def timeout(self):
        value = os.environ.get(\"TIMEOUT\")
        if value is None:
            return DEFAULT_TIMEOUT
        return int(value)


def merge(a, b):
    return {**a, **b}
";

#[test]
fn python_method_scope_includes_its_decorator() {
    assert_eq!(
        only_scope("requests/sessions.py", PYTHON, 16..=17),
        (13, 18, ScopeKind::Method, s("class Session > def timeout"))
    );
    assert_eq!(
        only_scope("requests/sessions.py", PYTHON, 4..=4),
        (2, 6, ScopeKind::TopLevel, s("top level"))
    );
}

#[test]
fn python_calls_definitions_and_imports() {
    assert_eq!(
        sorted(symbols_called("requests/sessions.py", PYTHON, 15..=18)),
        strings(&["get", "int"])
    );
    assert_eq!(
        definition_names("requests/sessions.py", PYTHON),
        vec![
            (s("Session"), None, 7, 18),
            (s("__init__"), Some(s("Session")), 10, 11),
            (s("timeout"), Some(s("Session")), 13, 18),
            (s("merge"), None, 21, 22),
        ]
    );
    let found = imports("requests/sessions.py", PYTHON);
    assert_eq!(
        import_targets("requests/sessions.py", PYTHON),
        vec![
            (s("os"), ImportKind::Module, 1),
            (s(".compat"), ImportKind::Module, 2),
        ]
    );
    assert_eq!(
        import_candidates("requests/sessions.py", &found[1]),
        strings(&["requests/compat.py", "requests/compat/__init__.py"])
    );
}

#[test]
fn python_relative_imports_climb_packages() {
    let source = "from . import utils, hooks as h\nfrom ..core.models import Request\n";
    let found = imports("pkg/sub/api.py", source);
    let targets: Vec<&str> = found.iter().map(|i| i.target.as_str()).collect();
    assert_eq!(targets, vec![".utils", ".hooks", "..core.models"]);
    assert_eq!(
        import_candidates("pkg/sub/api.py", &found[0]),
        strings(&["pkg/sub/utils.py", "pkg/sub/utils/__init__.py"])
    );
    assert_eq!(
        import_candidates("pkg/sub/api.py", &found[2]),
        strings(&["pkg/core/models.py", "pkg/core/models/__init__.py"])
    );
}

const JAVASCRIPT: &str = "\
'use strict';

var path = require('path');
var send = require('./send');

var res = module.exports = {};

res.status = function status(code) {
  this.statusCode = code;
  return this;
};

class Router {
  constructor() {
    this.stack = [];
  }

  handle(req, res) {
    const layer = this.match(req.url);
    layer.handle(req, res, (err) => {
      if (err) throw err;
    });
  }
}

describe('res', function () {
  it('sets status', function () {
    assert.equal(res.status(404).statusCode, 404);
  });
});
";

#[test]
fn javascript_scopes_methods_assigned_functions_and_test_callbacks() {
    // A callback inside a method is part of the method.
    assert_eq!(
        only_scope("lib/response.js", JAVASCRIPT, 21..=21),
        (18, 23, ScopeKind::Method, s("class Router > method handle"))
    );
    assert_eq!(
        only_scope("lib/response.js", JAVASCRIPT, 9..=9),
        (8, 11, ScopeKind::Function, s("function res.status"))
    );
    // At top level, test callbacks are the scopes, shown with the call they are passed to.
    assert_eq!(
        only_scope("test/res.js", JAVASCRIPT, 28..=28),
        (
            27,
            29,
            ScopeKind::Function,
            s("describe('res', …) > it('sets status', …)")
        )
    );
    assert_eq!(
        only_scope("lib/response.js", JAVASCRIPT, 6..=6),
        (4, 8, ScopeKind::TopLevel, s("top level"))
    );
}

#[test]
fn javascript_calls_definitions_and_imports() {
    assert_eq!(
        sorted(symbols_called("lib/router.js", JAVASCRIPT, 19..=22)),
        strings(&["handle", "match"])
    );
    assert_eq!(
        definition_names("lib/router.js", JAVASCRIPT),
        vec![
            (s("status"), None, 8, 11),
            (s("Router"), None, 13, 24),
            (s("constructor"), Some(s("Router")), 14, 16),
            (s("handle"), Some(s("Router")), 18, 23),
        ]
    );
    let found = imports("lib/response.js", JAVASCRIPT);
    assert_eq!(
        import_targets("lib/response.js", JAVASCRIPT),
        vec![
            (s("path"), ImportKind::Module, 3),
            (s("./send"), ImportKind::Module, 4),
        ]
    );
    assert!(import_candidates("lib/response.js", &found[0]).is_empty());
    let candidates = import_candidates("lib/response.js", &found[1]);
    assert_eq!(candidates[0], "lib/send.js");
    assert!(candidates.contains(&s("lib/send/index.js")));
}

const TYPESCRIPT: &str = "\
import { Request } from \"./request\";
import type { Options } from \"../options\";

export interface Route {
  path: string;
  handler: (req: Request) => Promise<void>;
}

export const VERSION = \"1.0\";

export class Router {
  private routes: Route[] = [];

  add(path: string, handler: Route[\"handler\"]): this {
    this.routes.push({ path, handler });
    return this;
  }
}

export function createRouter(options?: Options): Router {
  return new Router();
}
";

#[test]
fn typescript_scopes() {
    assert_eq!(
        only_scope("src/router.ts", TYPESCRIPT, 15..=15),
        (14, 17, ScopeKind::Method, s("class Router > method add"))
    );
    assert_eq!(
        only_scope("src/router.ts", TYPESCRIPT, 5..=5),
        (4, 7, ScopeKind::Interface, s("interface Route"))
    );
    assert_eq!(
        only_scope("src/router.ts", TYPESCRIPT, 9..=9),
        (7, 11, ScopeKind::TopLevel, s("top level"))
    );
}

#[test]
fn typescript_calls_definitions_and_imports() {
    assert_eq!(
        sorted(symbols_called("src/router.ts", TYPESCRIPT, 15..=21)),
        strings(&["Router", "push"])
    );
    assert_eq!(
        definition_names("src/router.ts", TYPESCRIPT),
        vec![
            (s("Route"), None, 4, 7),
            (s("Router"), None, 11, 18),
            (s("add"), Some(s("Router")), 14, 17),
            (s("createRouter"), None, 20, 22),
        ]
    );
    let found = imports("src/http/router.ts", TYPESCRIPT);
    assert_eq!(
        import_targets("src/http/router.ts", TYPESCRIPT),
        vec![
            (s("./request"), ImportKind::Module, 1),
            (s("../options"), ImportKind::Module, 2),
        ]
    );
    let candidates = import_candidates("src/http/router.ts", &found[0]);
    assert_eq!(
        candidates[..2],
        strings(&["src/http/request.ts", "src/http/request.tsx"])
    );
    assert!(candidates.contains(&s("src/http/request/index.ts")));
    assert_eq!(
        import_candidates("src/http/router.ts", &found[1])[0],
        "src/options.ts"
    );
}

#[test]
fn typescript_esm_imports_with_js_extension_point_at_ts_sources() {
    let found = imports("src/a/b.ts", "import { x } from './util.js';\n");
    assert_eq!(
        import_candidates("src/a/b.ts", &found[0])[..2],
        strings(&["src/a/util.js", "src/a/util.ts"])
    );
}

const TSX: &str = "\
import React from \"react\";
import { Button } from \"./button\";

type Props = { label: string };

export function Toolbar({ label }: Props) {
  const onClick = () => {
    console.log(label);
  };
  return <Button onClick={onClick}>{label}</Button>;
}
";

#[test]
fn tsx_scopes_calls_and_imports() {
    assert_eq!(
        only_scope("src/toolbar.tsx", TSX, 8..=8),
        (
            7,
            9,
            ScopeKind::Function,
            s("function Toolbar > function onClick")
        )
    );
    assert_eq!(
        only_scope("src/toolbar.tsx", TSX, 10..=10),
        (6, 11, ScopeKind::Function, s("function Toolbar"))
    );
    assert_eq!(
        only_scope("src/toolbar.tsx", TSX, 4..=4),
        (2, 6, ScopeKind::TopLevel, s("top level"))
    );
    assert_eq!(
        sorted(symbols_called("src/toolbar.tsx", TSX, 8..=10)),
        strings(&["Button", "log"])
    );
    assert_eq!(
        definition_names("src/toolbar.tsx", TSX),
        vec![(s("Toolbar"), None, 6, 11)]
    );
    let found = imports("src/toolbar.tsx", TSX);
    assert_eq!(found.len(), 2);
    assert_eq!(
        import_candidates("src/toolbar.tsx", &found[1])[0],
        "src/button.ts"
    );
}

const GO: &str = "\
package gin

import (
\t\"net/http\"

\t\"github.com/gin-gonic/gin/render\"
)

// Engine is the framework's instance.
type Engine struct {
\ttrees methodTrees
}

var defaultMaxMemory int64 = 32 << 20

// ServeHTTP conforms to the http.Handler interface.
func (engine *Engine) ServeHTTP(w http.ResponseWriter, req *http.Request) {
\tc := engine.allocateContext()
\tc.reset(w, req)
\tengine.handleHTTPRequest(c)
}

func New() *Engine {
\treturn &Engine{}
}
";

#[test]
fn go_scopes() {
    assert_eq!(
        only_scope("gin.go", GO, 19..=19),
        (
            16,
            21,
            ScopeKind::Method,
            s("func (engine *Engine) ServeHTTP")
        )
    );
    assert_eq!(
        only_scope("gin.go", GO, 11..=11),
        (9, 12, ScopeKind::Struct, s("type Engine struct"))
    );
    assert_eq!(
        only_scope("gin.go", GO, 14..=14),
        (12, 16, ScopeKind::TopLevel, s("top level"))
    );
}

#[test]
fn go_calls_definitions_and_imports() {
    assert_eq!(
        sorted(symbols_called("gin.go", GO, 18..=20)),
        strings(&["allocateContext", "handleHTTPRequest", "reset"])
    );
    assert_eq!(
        definition_names("gin.go", GO),
        vec![
            (s("Engine"), None, 9, 12),
            (s("ServeHTTP"), Some(s("Engine")), 16, 21),
            (s("New"), None, 23, 25),
        ]
    );
    let found = imports("gin.go", GO);
    assert_eq!(
        import_targets("gin.go", GO),
        vec![
            (s("net/http"), ImportKind::Module, 4),
            (s("github.com/gin-gonic/gin/render"), ImportKind::Module, 6),
        ]
    );
    assert!(import_candidates("gin.go", &found[0]).is_empty());
    assert_eq!(
        import_candidates("gin.go", &found[1]),
        strings(&["gin-gonic/gin/render/", "gin/render/", "render/"])
    );
}

const JAVA: &str = "\
package com.example.http;

import java.util.List;
import com.example.http.internal.Parser;
import static com.example.http.Util.checkNotNull;

/** Routes requests to handlers. */
public class Router {
  private final List<Route> routes;

  public Router(List<Route> routes) {
    this.routes = checkNotNull(routes);
  }

  /** Finds the route for a path. */
  @Override
  public Route match(String path) {
    for (Route route : routes) {
      if (route.matches(path)) {
        return route;
      }
    }
    return new NotFound(path);
  }
}
";

#[test]
fn java_scopes() {
    assert_eq!(
        only_scope("src/main/java/com/example/http/Router.java", JAVA, 20..=20),
        (15, 24, ScopeKind::Method, s("class Router > method match"))
    );
    assert_eq!(
        only_scope("src/main/java/com/example/http/Router.java", JAVA, 9..=9),
        (7, 25, ScopeKind::Class, s("class Router"))
    );
    assert_eq!(
        only_scope("src/main/java/com/example/http/Router.java", JAVA, 4..=4),
        (2, 6, ScopeKind::TopLevel, s("top level"))
    );
}

#[test]
fn java_calls_definitions_and_imports() {
    let path = "src/main/java/com/example/http/Router.java";
    assert_eq!(
        sorted(symbols_called(path, JAVA, 18..=23)),
        strings(&["NotFound", "matches"])
    );
    assert_eq!(
        definition_names(path, JAVA),
        vec![
            (s("Router"), None, 7, 25),
            (s("Router"), Some(s("Router")), 11, 13),
            (s("match"), Some(s("Router")), 15, 24),
        ]
    );
    let found = imports(path, JAVA);
    assert_eq!(
        import_targets(path, JAVA),
        vec![
            (s("java.util.List"), ImportKind::Module, 3),
            (s("com.example.http.internal.Parser"), ImportKind::Module, 4),
            (
                s("com.example.http.Util.checkNotNull"),
                ImportKind::StaticMember,
                5
            ),
        ]
    );
    assert_eq!(
        import_candidates(path, &found[1])[0],
        "src/main/java/com/example/http/internal/Parser.java"
    );
    assert_eq!(
        import_candidates(path, &found[2])[0],
        "src/main/java/com/example/http/Util.java"
    );
    let test = "src/test/java/com/example/http/RouterTest.java";
    assert!(
        import_candidates(test, &found[1])
            .contains(&s("src/main/java/com/example/http/internal/Parser.java"))
    );
}

const C: &str = "\
#include <stdio.h>
#include \"jv.h\"

static int depth = 0;

/* A growable buffer. */
struct buffer {
  char *data;
  size_t len;
};

static void buffer_append(struct buffer *b, const char *s, size_t n) {
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

int main(void) {
  struct buffer b = {0};
  buffer_append(&b, \"x\", 1);
  return 0;
}
";

#[test]
fn c_scopes() {
    assert_eq!(
        only_scope("src/jv.c", C, 14..=14),
        (12, 15, ScopeKind::Function, s("function buffer_append"))
    );
    assert_eq!(
        only_scope("src/jv.c", C, 8..=8),
        (6, 10, ScopeKind::Struct, s("struct buffer"))
    );
    assert_eq!(
        only_scope("src/jv.c", C, 4..=4),
        (2, 6, ScopeKind::TopLevel, s("top level"))
    );
}

#[test]
fn c_calls_definitions_and_imports() {
    assert_eq!(
        sorted(symbols_called("src/jv.c", C, 13..=19)),
        strings(&["buffer_append", "memcpy"])
    );
    assert_eq!(
        definition_names("src/jv.c", C),
        vec![
            (s("buffer"), None, 6, 10),
            (s("buffer_append"), None, 12, 15),
            (s("main"), None, 17, 21),
        ]
    );
    let found = imports("src/jv.c", C);
    assert_eq!(
        import_targets("src/jv.c", C),
        vec![(s("jv.h"), ImportKind::Include, 2)]
    );
    assert_eq!(
        import_candidates("src/jv.c", &found[0]),
        strings(&["src/jv.h", "jv.h", "include/jv.h"])
    );
}

const CPP: &str = "\
#include \"fmt/format.h\"
#include <string>

namespace fmt {

template <typename T>
class formatter {
 public:
  auto format(const T& value, format_context& ctx) const {
    return detail::write(ctx.out(), value);
  }
};

int count_digits(unsigned n) {
  int count = 1;
  while (n >= 10) {
    n /= 10;
    ++count;
  }
  return count;
}

}  // namespace fmt

TEST(format_test, digits) {
  EXPECT_EQ(fmt::count_digits(100), 3);
}
";

#[test]
fn cpp_scopes() {
    assert_eq!(
        only_scope("include/fmt/format.cc", CPP, 10..=10),
        (
            9,
            11,
            ScopeKind::Method,
            s("namespace fmt > class formatter > function format")
        )
    );
    assert_eq!(
        only_scope("include/fmt/format.cc", CPP, 17..=17),
        (
            14,
            21,
            ScopeKind::Function,
            s("namespace fmt > function count_digits")
        )
    );
    assert_eq!(
        only_scope("test/format-test.cc", CPP, 26..=26),
        (25, 27, ScopeKind::Function, s("TEST(format_test, digits)"))
    );
    assert_eq!(
        only_scope("test/format-test.cc", CPP, 2..=2),
        (1, 4, ScopeKind::TopLevel, s("top level"))
    );
}

#[test]
fn cpp_calls_definitions_and_imports() {
    assert_eq!(
        sorted(symbols_called("test/format-test.cc", CPP, 10..=10)),
        strings(&["out", "write"])
    );
    assert_eq!(
        sorted(symbols_called("test/format-test.cc", CPP, 26..=26)),
        strings(&["EXPECT_EQ", "count_digits"])
    );
    assert_eq!(
        definition_names("test/format-test.cc", CPP),
        vec![
            (s("formatter"), Some(s("fmt")), 6, 12),
            (s("format"), Some(s("formatter")), 9, 11),
            (s("count_digits"), Some(s("fmt")), 14, 21),
            (s("TEST"), None, 25, 27),
        ]
    );
    let found = imports("test/format-test.cc", CPP);
    assert_eq!(
        import_targets("test/format-test.cc", CPP),
        vec![(s("fmt/format.h"), ImportKind::Include, 1)]
    );
    assert_eq!(
        import_candidates("test/format-test.cc", &found[0]),
        strings(&[
            "test/fmt/format.h",
            "fmt/format.h",
            "include/fmt/format.h",
            "src/fmt/format.h"
        ])
    );
}

#[test]
fn an_enormous_function_is_cut_to_a_window_around_the_change() {
    let scopes = enclosing_scopes("format.cc", CPP, 17..=17, &opts(2, 5));
    assert_eq!(
        scopes,
        vec![Scope {
            start: 15,
            end: 19,
            kind: ScopeKind::Window,
            label: s("function count_digits (lines 14-21)"),
            outer: strings(&["namespace fmt"]),
        }]
    );
    // Near the scope's edge the window shifts to stay inside it.
    let scopes = enclosing_scopes("format.cc", CPP, 20..=20, &opts(2, 5));
    assert_eq!((scopes[0].start, scopes[0].end), (17, 21));
}

#[test]
fn a_change_spilling_out_of_a_scope_gets_the_scope_and_the_change() {
    // Lines 26-27: the last line of `split` and the blank line after it.
    let mut source = RUST.to_owned();
    source.push_str("\nconst AFTER: u8 = 1;\n");
    let scopes = enclosing_scopes("src/headers.rs", &source, 27..=29, &opts(1, 200));
    let found: Vec<(u32, u32, ScopeKind)> = scopes
        .iter()
        .map(|scope| (scope.start, scope.end, scope.kind))
        .collect();
    assert_eq!(
        found,
        vec![(25, 27, ScopeKind::Function), (26, 29, ScopeKind::TopLevel),]
    );
}

const YAML: &str = "\
name: ci
on: [push]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: cargo test
  lint:
    runs-on: ubuntu-latest
";

const RUBY: &str = "\
require \"json\"

module Critic
  class Review
    def initialize(pr)
      @pr = pr
    end

    def summary
      if @pr.files.empty?
        \"nothing to review\"
      else
        @pr.files.map(&:path).join(\", \")
      end
    end
  end
end
";

#[test]
fn indentation_fallback_finds_yaml_and_ruby_blocks() {
    assert_eq!(
        only_scope(".github/workflows/ci.yml", YAML, 8..=8),
        (6, 8, ScopeKind::Block, s("jobs: > build: > steps:"))
    );
    assert_eq!(
        only_scope(".github/workflows/ci.yml", YAML, 1..=1),
        (1, 3, ScopeKind::TopLevel, s("top level"))
    );
    assert_eq!(
        only_scope("lib/critic/review.rb", RUBY, 13..=13),
        (
            9,
            15,
            ScopeKind::Block,
            s("module Critic > class Review > def summary")
        )
    );
    // A change to a block's first line is about that block.
    assert_eq!(
        only_scope("lib/critic/review.rb", RUBY, 5..=5),
        (
            5,
            7,
            ScopeKind::Block,
            s("module Critic > class Review > def initialize(pr)")
        )
    );
    // Too long a block: a window inside it.
    let scopes = enclosing_scopes("lib/critic/review.rb", RUBY, 11..=11, &opts(0, 3));
    assert_eq!(
        (scopes[0].start, scopes[0].end, scopes[0].kind),
        (10, 12, ScopeKind::Window)
    );
}

#[test]
fn broken_source_falls_back_to_indentation_without_panicking() {
    let source = "\
fn ok() {
    let x = 1;
}

fn broken( {
    if x {
        let y = ;
    }
";
    let scopes = enclosing_scopes("src/broken.rs", source, 7..=7, &opts(1, 200));
    assert!(!scopes.is_empty());
    assert!(
        scopes
            .iter()
            .all(|scope| scope.start <= 7 && 7 <= scope.end)
    );
    assert_eq!(
        only_scope("src/broken.rs", source, 2..=2),
        (1, 3, ScopeKind::Function, s("fn ok"))
    );
    for path in [
        "a.rs", "a.py", "a.js", "a.ts", "a.tsx", "a.go", "a.java", "a.c", "a.cc",
    ] {
        for garbage in [
            "",
            "\n\n",
            "}}}{{{",
            "\u{0}\u{feff}é\r\n(",
            "class def func {",
        ] {
            let _ = snippets(
                path,
                garbage,
                &[1..=3, 0..=0, RangeInclusive::new(9, 2)],
                &opts(3, 10),
            );
            let _ = symbols_called(path, garbage, 1..=5);
            let _ = definitions(path, garbage);
            let _ = imports(path, garbage);
        }
    }
}

#[test]
fn snippets_merge_overlapping_and_touching_scopes() {
    let found = snippets(
        "src/headers.rs",
        RUST,
        &[26..=26, 17..=18, 2..=2, 20..=20],
        &opts(2, 200),
    );
    assert_eq!(
        found,
        vec![
            Snippet {
                start: 1,
                end: 4,
                header: s("top level"),
            },
            Snippet {
                start: 12,
                end: 27,
                header: s("impl Headers > fn parse_header; fn split"),
            },
        ]
    );
}

#[test]
fn snippets_clamp_to_the_file_and_skip_ranges_past_its_end() {
    let found = snippets("notes.txt", "a\nb\nc\n", &[2..=2, 7..=9], &opts(5, 200));
    assert_eq!(
        found,
        vec![Snippet {
            start: 1,
            end: 3,
            header: s("top level"),
        }]
    );
    assert!(snippets("empty.rs", "", &[1..=1], &opts(5, 200)).is_empty());
}

#[test]
fn lines_text_returns_whole_lines() {
    let file = SourceFile::parse("a.txt", "one\r\ntwo\nthree");
    assert_eq!(file.line_count(), 3);
    assert_eq!(file.lines_text(2, 3), "two\nthree");
    assert_eq!(file.lines_text(1, 1), "one");
    assert_eq!(file.lines_text(4, 9), "");
}

#[test]
fn languages_come_from_extensions() {
    let cases = [
        ("src/main.rs", Some(Language::Rust)),
        ("a/b.py", Some(Language::Python)),
        ("x.mjs", Some(Language::JavaScript)),
        ("x.cjs", Some(Language::JavaScript)),
        ("x.jsx", Some(Language::JavaScript)),
        ("x.ts", Some(Language::TypeScript)),
        ("x.tsx", Some(Language::Tsx)),
        ("main.go", Some(Language::Go)),
        ("A.java", Some(Language::Java)),
        ("jv.h", Some(Language::C)),
        ("jv.c", Some(Language::C)),
        ("fmt.hpp", Some(Language::Cpp)),
        ("fmt.cc", Some(Language::Cpp)),
        ("fmt.CPP", Some(Language::Cpp)),
        ("fmt.cxx", Some(Language::Cpp)),
        ("ci.yml", None),
        ("Makefile", None),
        ("dir.rs/README", None),
    ];
    for (path, expected) in cases {
        assert_eq!(Language::from_path(path), expected, "{path}");
    }
}

#[test]
fn every_call_query_compiles() {
    for language in Language::ALL {
        assert!(related::calls_query(language).is_some(), "{language:?}");
    }
}

/// A file of the real pull requests, or `None` on a machine without them: the test is skipped.
fn scenario(path: &str) -> Option<String> {
    let full = crate::test_env::data("scenarios")?.join(path);
    match std::fs::read_to_string(&full) {
        Ok(text) => Some(text),
        Err(error) => panic!("{}: {error}", full.display()),
    }
}

#[test]
fn real_go_file_from_gin() {
    let Some(source) = scenario("gin-gonic__gin__8763f33c65/files/head/gin.go") else {
        return;
    };
    assert_eq!(
        only_scope("gin.go", &source, 627..=628),
        (
            623,
            633,
            ScopeKind::Method,
            s("func (engine *Engine) ServeHTTP")
        )
    );
    assert_eq!(
        sorted(symbols_called("gin.go", &source, 625..=632)),
        strings(&["Get", "Put", "handleHTTPRequest", "reset"])
    );
    let found = imports("gin.go", &source);
    let render = found
        .iter()
        .find(|import| import.target == "github.com/gin-gonic/gin/render");
    let candidates = render.map(|import| import_candidates("gin.go", import));
    assert_eq!(
        candidates.and_then(|c| c.last().cloned()),
        Some(s("render/"))
    );
}

#[test]
fn real_python_file_from_requests() {
    let Some(source) = scenario("psf__requests__ef439eb779/files/head/src/requests/sessions.py")
    else {
        return;
    };
    let path = "src/requests/sessions.py";
    assert_eq!(
        only_scope(path, &source, 603..=604),
        (595, 604, ScopeKind::Method, s("class Session > def get"))
    );
    assert_eq!(
        sorted(symbols_called(path, &source, 603..=604)),
        strings(&["request", "setdefault"])
    );
    let get = definitions(path, &source)
        .into_iter()
        .find(|d| d.name == "get" && d.container.as_deref() == Some("Session"));
    assert_eq!(get.map(|d| (d.start, d.end)), Some((595, 604)));
}

#[test]
fn real_rust_file_from_axum() {
    let Some(source) = scenario("tokio-rs__axum__2be79168d8/files/head/examples/404.rs") else {
        return;
    };
    let path = "examples/404.rs";
    assert_eq!(
        only_scope(path, &source, 46..=47),
        (41, 52, ScopeKind::Function, s("fn map_404"))
    );
    // `#[tokio::main]` belongs to `main`.
    assert_eq!(
        only_scope(path, &source, 30..=30),
        (15, 35, ScopeKind::Function, s("fn main"))
    );
    assert_eq!(
        sorted(symbols_called(path, &source, 24..=26)),
        strings(&["get", "layer", "new", "route"])
    );
}

#[test]
fn real_cpp_test_file_from_fmt() {
    let Some(source) = scenario("fmtlib__fmt__ad719619cc/files/head/test/chrono-test.cc") else {
        return;
    };
    let path = "test/chrono-test.cc";
    assert_eq!(
        only_scope(path, &source, 80..=80),
        (
            74,
            151,
            ScopeKind::Function,
            s("TEST(chrono_test, format_tm)")
        )
    );
}

#[test]
fn unnamed_callbacks_inside_a_test_case_belong_to_it() {
    let source = "\
describe('res', function () {
  it('sends html', function (done) {
    var app = express();
    app.use(function (req, res) {
      res.send('<p>hey</p>');
    });
    request(app).get('/').end(done);
  });
});

(function () {
  var x = 1;
})();
";
    assert_eq!(
        only_scope("test/res.send.js", source, 5..=5),
        (
            2,
            8,
            ScopeKind::Function,
            s("describe('res', …) > it('sends html', …)")
        )
    );
    // Nothing else holds an immediately invoked function: it is the scope.
    assert_eq!(
        only_scope("lib/x.js", source, 12..=12),
        (11, 13, ScopeKind::Function, s("function"))
    );
}

#[test]
fn cpp_headers_named_h_are_parsed_as_cpp() {
    let header = "\
namespace fmt {
class buffer {
 public:
  void push_back(char c) {
    data_[size_++] = c;
  }
};
}  // namespace fmt
";
    assert_eq!(
        Language::detect("include/fmt/base.h", header),
        Some(Language::Cpp)
    );
    assert_eq!(
        Language::detect("src/jv.h", "int jv_get(int);\n"),
        Some(Language::C)
    );
    assert_eq!(
        only_scope("include/fmt/base.h", header, 5..=5),
        (
            4,
            6,
            ScopeKind::Method,
            s("namespace fmt > class buffer > function push_back")
        )
    );
}

#[test]
fn script_imports_of_directories_and_packages() {
    let found = imports(
        "test/res.js",
        "var express = require('../');\nvar x = require('./lib/');\n",
    );
    assert_eq!(
        import_candidates("test/res.js", &found[0])[..2],
        strings(&["index.js", "index.jsx"])
    );
    assert_eq!(
        import_candidates("test/res.js", &found[1])[0],
        "test/lib/index.js"
    );
    let outside = imports(
        "src/a.ts",
        "import x from 'react';\nimport y from '../../../../up';\n",
    );
    assert!(import_candidates("src/a.ts", &outside[0]).is_empty());
    assert!(import_candidates("src/a.ts", &outside[1]).is_empty());
}

#[test]
fn java_standard_library_imports_have_no_candidates() {
    let found = imports(
        "gson/src/main/java/com/google/gson/Gson.java",
        "import java.io.Reader;\nimport com.google.gson.internal.Excluder;\n",
    );
    assert!(
        import_candidates("gson/src/main/java/com/google/gson/Gson.java", &found[0]).is_empty()
    );
    assert_eq!(
        import_candidates("gson/src/main/java/com/google/gson/Gson.java", &found[1])[0],
        "gson/src/main/java/com/google/gson/internal/Excluder.java"
    );
    // Without a Maven layout the importer's own package shows the source root.
    assert_eq!(
        import_candidates("lib/com/google/gson/Gson.java", &found[1])[0],
        "lib/com/google/gson/internal/Excluder.java"
    );
}

#[test]
fn a_scope_holds_a_change_on_its_doc_comment() {
    assert_eq!(
        only_scope("src/headers.rs", RUST, 14..=14),
        (
            14,
            22,
            ScopeKind::Method,
            s("impl Headers > fn parse_header")
        )
    );
}

#[test]
fn a_trailing_comment_on_the_line_before_is_not_a_doc_comment() {
    let source = "\
const A: u8 = 1;
const B: u8 = 2; // about B
fn b() {
    body();
}
";
    let scopes = enclosing_scopes("src/x.rs", source, 4..=4, &opts(0, 200));
    assert_eq!((scopes[0].start, scopes[0].end), (3, 5));
}
