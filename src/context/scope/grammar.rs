//! What counts as a scope in each grammar, and what to call it.

use tree_sitter::Node;

use super::{Language, ScopeKind, ScopeNode};

/// A scope recognised at one node, before it gets lines and a place in the tree.
struct Found<'t> {
    kind: ScopeKind,
    label: String,
    name: String,
    /// The type a method belongs to when the syntax says so outside any enclosing scope
    /// (Go receivers, C++ `Foo::bar`).
    container: Option<String>,
    anonymous: bool,
    /// A callback whose call names it with a string (`it('sends ETag', …)`,
    /// `t.Run("empty", …)`): a test case or a route, worth showing on its own.
    labelled: bool,
    /// The node whose lines the scope covers: the definition itself, or what wraps it
    /// (decorators, `export`, `template<>`, the call a callback is passed to).
    span: Node<'t>,
}

/// Labels are for prompts; a pathological name must not flood one.
const MAX_LABEL_CHARS: usize = 80;

/// Every scope in the tree, in source order, with parents and children linked.
///
/// The walk is iterative: expression trees can be thousands of levels deep.
pub(super) fn collect_scopes(language: Language, root: Node, source: &str) -> Vec<ScopeNode> {
    let mut scopes: Vec<ScopeNode> = Vec::new();
    // Open scopes, innermost last, with the byte where each ends.
    let mut open: Vec<(usize, usize)> = Vec::new();
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        while let Some(&(_, end)) = open.last() {
            if node.start_byte() >= end {
                open.pop();
            } else {
                break;
            }
        }
        let enclosing = open.last().map(|&(index, _)| scopes[index].kind);
        let in_named_function = open.iter().any(|&(index, _)| {
            let scope = &scopes[index];
            scope.kind.is_function() && !scope.anonymous
        });
        if let Some(found) = classify(language, node, source, enclosing) {
            // Callbacks inside named functions are part of them; elsewhere a callback is a
            // scope when a string names it or when nothing else holds it (an IIFE).
            let skip =
                found.anonymous && (in_named_function || (!found.labelled && !open.is_empty()));
            let start = leading_start(found.span, source);
            let end = last_line(found.span);
            let parent = open.last().map(|&(index, _)| index);
            let duplicate = parent.is_some_and(|index| {
                let parent = &scopes[index];
                parent.start == start && parent.end == end && found.anonymous
            });
            if !skip && !duplicate {
                let index = scopes.len();
                let kind = match (found.kind, enclosing) {
                    (ScopeKind::Function, Some(outer)) if outer.holds_methods() => {
                        ScopeKind::Method
                    }
                    (kind, _) => kind,
                };
                scopes.push(ScopeNode {
                    start,
                    end,
                    kind,
                    label: found.label,
                    name: found.name,
                    container: found.container,
                    anonymous: found.anonymous,
                    parent,
                    children: Vec::new(),
                });
                if let Some(parent) = parent {
                    scopes[parent].children.push(index);
                }
                open.push((index, found.span.end_byte().max(node.end_byte())));
            }
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return scopes;
            }
        }
    }
}

/// 1-based line of a node's last character.
fn last_line(node: Node) -> u32 {
    let end = node.end_position();
    let start = node.start_position();
    let row = if end.column == 0 && end.row > start.row {
        end.row - 1
    } else {
        end.row
    };
    to_line(row)
}

pub(super) fn to_line(row: usize) -> u32 {
    u32::try_from(row).unwrap_or(u32::MAX - 1) + 1
}

/// The first line of `span` with the doc comments and attributes right above it: they are
/// part of the definition for a reader.
fn leading_start(span: Node, source: &str) -> u32 {
    let mut first = span;
    while let Some(previous) = first.prev_sibling() {
        let leading = matches!(
            previous.kind(),
            "comment" | "line_comment" | "block_comment" | "attribute_item" | "decorator"
        );
        let adjacent = previous.end_position().row + 1 >= first.start_position().row;
        if !leading || !adjacent || !starts_its_line(previous, source) {
            break;
        }
        first = previous;
    }
    to_line(first.start_position().row)
}

/// A trailing comment after code belongs to that code, not to what follows.
fn starts_its_line(node: Node, source: &str) -> bool {
    let start = node.start_byte();
    let line_start = source
        .get(..start)
        .and_then(|before| before.rfind('\n'))
        .map_or(0, |at| at + 1);
    source
        .get(line_start..start)
        .is_some_and(|before| before.trim().is_empty())
}

fn text<'s>(node: Node, source: &'s str) -> &'s str {
    source.get(node.byte_range()).unwrap_or_default()
}

fn field<'s>(node: Node, name: &str, source: &'s str) -> Option<&'s str> {
    node.child_by_field_name(name)
        .map(|child| text(child, source))
        .filter(|text| !text.is_empty())
}

/// Whitespace runs folded to one space and the length capped, so labels stay one short line.
fn one_line(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= MAX_LABEL_CHARS {
        return folded;
    }
    let mut cut: String = folded.chars().take(MAX_LABEL_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn named<'t>(kind: ScopeKind, keyword: &str, name: &str, span: Node<'t>) -> Found<'t> {
    let name = one_line(name);
    let label = if keyword.is_empty() {
        name.clone()
    } else if name.is_empty() {
        keyword.to_owned()
    } else {
        format!("{keyword} {name}")
    };
    Found {
        kind,
        label,
        name,
        container: None,
        anonymous: false,
        labelled: false,
        span,
    }
}

fn classify<'t>(
    language: Language,
    node: Node<'t>,
    source: &str,
    enclosing: Option<ScopeKind>,
) -> Option<Found<'t>> {
    if !node.is_named() || node.is_error() {
        return None;
    }
    match language {
        Language::Rust => rust(node, source),
        Language::Python => python(node, source),
        Language::JavaScript | Language::TypeScript | Language::Tsx => script(node, source),
        Language::Go => go(node, source),
        Language::Java => java(node, source),
        Language::C | Language::Cpp => c_family(node, source, enclosing),
    }
}

fn rust<'t>(node: Node<'t>, source: &str) -> Option<Found<'t>> {
    let name = field(node, "name", source).unwrap_or_default();
    Some(match node.kind() {
        "function_item" => named(ScopeKind::Function, "fn", name, node),
        "trait_item" => named(ScopeKind::Trait, "trait", name, node),
        "struct_item" => named(ScopeKind::Struct, "struct", name, node),
        "union_item" => named(ScopeKind::Struct, "union", name, node),
        "enum_item" => named(ScopeKind::Enum, "enum", name, node),
        "mod_item" if node.child_by_field_name("body").is_some() => {
            named(ScopeKind::Module, "mod", name, node)
        }
        "macro_definition" => named(ScopeKind::Function, "macro_rules!", name, node),
        "impl_item" => {
            let self_type = field(node, "type", source).unwrap_or_default();
            let described = match field(node, "trait", source) {
                Some(trait_name) => format!("{trait_name} for {self_type}"),
                None => self_type.to_owned(),
            };
            let mut found = named(ScopeKind::Impl, "impl", &described, node);
            found.name = type_name(self_type);
            found
        }
        _ => return None,
    })
}

/// `Foo` from `Foo<T>`, `&'a mut crate::x::Foo<T>` or `*Foo`: the name definitions use.
fn type_name(text: &str) -> String {
    let base = text.split('<').next().unwrap_or(text);
    let base = base.rsplit("::").next().unwrap_or(base);
    let base = base.rsplit(['.', ' ', '&', '*']).next().unwrap_or(base);
    base.trim().to_owned()
}

fn python<'t>(node: Node<'t>, source: &str) -> Option<Found<'t>> {
    let (kind, keyword) = match node.kind() {
        "function_definition" => (ScopeKind::Function, "def"),
        "class_definition" => (ScopeKind::Class, "class"),
        _ => return None,
    };
    let name = field(node, "name", source).unwrap_or_default();
    let span = match node.parent() {
        Some(parent) if parent.kind() == "decorated_definition" => parent,
        _ => node,
    };
    Some(named(kind, keyword, name, span))
}

/// JavaScript, TypeScript and TSX share these node kinds.
fn script<'t>(node: Node<'t>, source: &str) -> Option<Found<'t>> {
    let name = field(node, "name", source).unwrap_or_default();
    let found = match node.kind() {
        "function_declaration" | "generator_function_declaration" => {
            named(ScopeKind::Function, "function", name, node)
        }
        "method_definition" => named(ScopeKind::Method, "method", name, node),
        "class_declaration" | "abstract_class_declaration" => {
            named(ScopeKind::Class, "class", name, node)
        }
        "class" => {
            let name = if name.is_empty() {
                binding_name(node, source).unwrap_or_default()
            } else {
                name.to_owned()
            };
            let span = binding_span(node);
            named(ScopeKind::Class, "class", &name, span)
        }
        "interface_declaration" => named(ScopeKind::Interface, "interface", name, node),
        "enum_declaration" => named(ScopeKind::Enum, "enum", name, node),
        "type_alias_declaration" if node.start_position().row != node.end_position().row => {
            named(ScopeKind::Interface, "type", name, node)
        }
        "internal_module" => named(ScopeKind::Module, "namespace", name, node),
        "module" => named(ScopeKind::Module, "module", name, node),
        "function_expression" | "arrow_function" | "generator_function" | "function" => {
            return function_value(node, name, source, "function");
        }
        _ => return None,
    };
    Some(exported(found))
}

/// `export function f` is the definition of `f`, keyword included.
fn exported(mut found: Found) -> Found {
    if let Some(parent) = found.span.parent()
        && parent.kind() == "export_statement"
    {
        found.span = parent;
    }
    found
}

/// A function written as a value (JS function expressions and arrows, Go func literals):
/// named after what it is assigned to, or after the call it is passed to.
fn function_value<'t>(
    node: Node<'t>,
    own_name: &str,
    source: &str,
    keyword: &str,
) -> Option<Found<'t>> {
    let parent = node.parent()?;
    match parent.kind() {
        "arguments" | "argument_list" => {
            let call = parent
                .parent()
                .filter(|call| call.kind() == "call_expression")?;
            return Some(callback(call, source, keyword));
        }
        "pair" => {
            let key = field(parent, "key", source).unwrap_or_default();
            return Some(named(ScopeKind::Function, keyword, key, parent));
        }
        "field_definition" | "public_field_definition" => {
            let key = field(parent, "property", source)
                .or_else(|| field(parent, "name", source))
                .unwrap_or_default();
            return Some(named(ScopeKind::Method, "method", key, parent));
        }
        "assignment_expression" => {
            let target = field(parent, "left", source).unwrap_or_default();
            let mut found = named(ScopeKind::Function, keyword, target, statement_of(parent));
            found.name = target
                .rsplit('.')
                .next()
                .unwrap_or(target)
                .trim()
                .to_owned();
            return Some(found);
        }
        _ => {}
    }
    if let Some(name) = binding_name(node, source) {
        let found = named(ScopeKind::Function, keyword, &name, binding_span(node));
        return Some(exported(found));
    }
    if !own_name.is_empty() {
        return Some(named(ScopeKind::Function, keyword, own_name, node));
    }
    let mut found = named(ScopeKind::Function, keyword, "", node);
    found.anonymous = true;
    Some(found)
}

/// A callback is shown with the call it is passed to: `it('sends ETag', function () {…})`
/// reads better than the bare function, and the call names it.
fn callback<'t>(call: Node<'t>, source: &str, keyword: &str) -> Found<'t> {
    let callee = field(call, "function", source).unwrap_or(keyword);
    let first_string = call
        .child_by_field_name("arguments")
        .and_then(|arguments| arguments.named_child(0))
        .filter(|first| {
            matches!(
                first.kind(),
                "string" | "template_string" | "interpreted_string_literal" | "raw_string_literal"
            )
        })
        .map(|first| text(first, source));
    let label = match first_string {
        Some(first) => format!("{callee}({first}, …)"),
        None => format!("{callee}(…)"),
    };
    let label = one_line(&label);
    Found {
        kind: ScopeKind::Function,
        label,
        name: String::new(),
        container: None,
        anonymous: true,
        labelled: first_string.is_some(),
        span: statement_of(call),
    }
}

/// The expression statement around an expression, so its `;` line is included.
fn statement_of(node: Node) -> Node {
    match node.parent() {
        Some(parent) if parent.kind() == "expression_statement" => parent,
        _ => node,
    }
}

/// The name a value is bound to: `const name = …`, `var name = …`, Go `name := …`.
fn binding_name(node: Node, source: &str) -> Option<String> {
    let parent = node.parent()?;
    let name = match parent.kind() {
        "variable_declarator" => field(parent, "name", source)?,
        "expression_list" => {
            let declaration = parent.parent()?;
            match declaration.kind() {
                "short_var_declaration" | "assignment_statement" => {
                    field(declaration, "left", source)?
                }
                "var_spec" | "const_spec" => field(declaration, "name", source)?,
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(name.to_owned())
}

/// The declaration a bound value sits in, when it declares that value alone.
fn binding_span(node: Node) -> Node {
    let Some(declarator) = node
        .parent()
        .filter(|parent| parent.kind() == "variable_declarator")
    else {
        return node;
    };
    match declarator.parent() {
        Some(declaration)
            if matches!(
                declaration.kind(),
                "lexical_declaration" | "variable_declaration"
            ) && declaration.named_child_count() == 1 =>
        {
            declaration
        }
        _ => declarator,
    }
}

fn go<'t>(node: Node<'t>, source: &str) -> Option<Found<'t>> {
    let name = field(node, "name", source).unwrap_or_default();
    Some(match node.kind() {
        "function_declaration" => named(ScopeKind::Function, "func", name, node),
        "method_declaration" => {
            let receiver = field(node, "receiver", source).unwrap_or_default();
            let mut found = named(
                ScopeKind::Method,
                "func",
                &format!("{receiver} {name}"),
                node,
            );
            found.name = name.to_owned();
            found.container = Some(type_name(
                receiver.trim_matches(|c| c == '(' || c == ')').trim(),
            ));
            found
        }
        "type_spec" => {
            let (kind, word) = match node.child_by_field_name("type").map(|ty| ty.kind()) {
                Some("struct_type") => (ScopeKind::Struct, "struct"),
                Some("interface_type") => (ScopeKind::Interface, "interface"),
                _ => return None,
            };
            let span = match node.parent() {
                Some(declaration)
                    if declaration.kind() == "type_declaration"
                        && declaration.named_child_count() == 1 =>
                {
                    declaration
                }
                _ => node,
            };
            let mut found = named(kind, "type", &format!("{name} {word}"), span);
            found.name = name.to_owned();
            found
        }
        "func_literal" => return function_value(node, "", source, "func"),
        _ => return None,
    })
}

fn java<'t>(node: Node<'t>, source: &str) -> Option<Found<'t>> {
    let name = field(node, "name", source).unwrap_or_default();
    let (kind, keyword) = match node.kind() {
        "class_declaration" => (ScopeKind::Class, "class"),
        "record_declaration" => (ScopeKind::Class, "record"),
        "interface_declaration" => (ScopeKind::Interface, "interface"),
        "annotation_type_declaration" => (ScopeKind::Interface, "@interface"),
        "enum_declaration" => (ScopeKind::Enum, "enum"),
        "method_declaration" => (ScopeKind::Method, "method"),
        "constructor_declaration" | "compact_constructor_declaration" => {
            (ScopeKind::Method, "constructor")
        }
        _ => return None,
    };
    Some(named(kind, keyword, name, node))
}

fn c_family<'t>(node: Node<'t>, source: &str, enclosing: Option<ScopeKind>) -> Option<Found<'t>> {
    let found = match node.kind() {
        "function_definition" => {
            // Without a function declarator, or named by a keyword, this is a macro that
            // tree-sitter mistook for a function (`FMT_BEGIN_NAMESPACE namespace detail {`).
            let function = node
                .child_by_field_name("declarator")
                .and_then(function_declarator)?;
            let full_name = field(function, "declarator", source).unwrap_or_default();
            if NOT_FUNCTION_NAMES.contains(&full_name) {
                return None;
            }
            let (container, name) = match full_name.rsplit_once("::") {
                Some((container, name)) => (Some(type_name(container)), name),
                None => (None, full_name),
            };
            // Test and registration macros (`TEST(Suite, Case) {`) are told apart by their
            // arguments, not their name.
            let macro_like = name.len() > 1
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            let label = match field(function, "parameters", source) {
                Some(parameters) if macro_like => format!("{name}{parameters}"),
                _ => full_name.to_owned(),
            };
            let kind = if enclosing.is_some_and(ScopeKind::holds_methods) {
                ScopeKind::Method
            } else {
                ScopeKind::Function
            };
            let keyword = if macro_like { "" } else { "function" };
            let mut found = named(kind, keyword, &label, node);
            found.name = one_line(name);
            found.container = container;
            found
        }
        "struct_specifier" | "union_specifier" | "enum_specifier" | "class_specifier"
            if node.child_by_field_name("body").is_some() =>
        {
            let (kind, keyword) = match node.kind() {
                "enum_specifier" => (ScopeKind::Enum, "enum"),
                "class_specifier" => (ScopeKind::Class, "class"),
                "union_specifier" => (ScopeKind::Struct, "union"),
                _ => (ScopeKind::Struct, "struct"),
            };
            let parent = node.parent();
            let typedef = parent.filter(|parent| parent.kind() == "type_definition");
            let name = field(node, "name", source)
                .or_else(|| typedef.and_then(|typedef| field(typedef, "declarator", source)))
                .unwrap_or_default();
            let span = match parent {
                Some(parent) if matches!(parent.kind(), "type_definition" | "declaration") => {
                    parent
                }
                _ => node,
            };
            named(kind, keyword, name, span)
        }
        "namespace_definition" => {
            let name = field(node, "name", source).unwrap_or("(anonymous)");
            named(ScopeKind::Module, "namespace", name, node)
        }
        _ => return None,
    };
    let mut found = found;
    while let Some(parent) = found.span.parent() {
        if parent.kind() != "template_declaration" {
            break;
        }
        found.span = parent;
    }
    Some(found)
}

/// Keywords tree-sitter sometimes takes for a function's name when macros hide the syntax.
const NOT_FUNCTION_NAMES: [&str; 10] = [
    "namespace",
    "if",
    "for",
    "while",
    "switch",
    "return",
    "sizeof",
    "decltype",
    "noexcept",
    "operator",
];

/// The `function_declarator` under a definition's declarator, through pointers, references
/// and parentheses: `static const char *(*name(int))`.
fn function_declarator(declarator: Node) -> Option<Node> {
    let mut at = declarator;
    for _ in 0..16 {
        if at.kind() == "function_declarator" {
            return Some(at);
        }
        at = at
            .child_by_field_name("declarator")
            .or_else(|| at.named_child(0))?;
    }
    None
}
