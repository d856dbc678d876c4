//! What Step Functions checks in a JSONata expression when a definition is validated: that it
//! parses, and that it reads nothing but `$states` and variables.
//!
//! An expression runs with no context item, so `$`, `$$` and a path that starts with a bare
//! name (`phone`, `{aaa: 1}`) read nothing; AWS refuses such definitions rather than running
//! them. Only the first step of a path is read against that missing context: later steps,
//! predicates, sort terms and grouping expressions run against the value before them. A lambda
//! body keeps the context of the expression that defines it, so a name in it counts.

use jsonata_core::ast::{AstNode, PathStep};

/// A reference AWS refuses.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// `$$`.
    Root,
    /// `$` or a bare name, read against the top-level context.
    TopLevel(String),
}

/// The first reference in `ast` that AWS refuses, in the order the expression is written.
pub(super) fn first_refused_reference(ast: &AstNode) -> Option<Refused> {
    let mut found = None;
    visit_top_level(ast, &mut |reference| {
        found.get_or_insert(reference);
    });
    found
}

fn visit_top_level(node: &AstNode, report: &mut dyn FnMut(Refused)) {
    match node {
        AstNode::Path { steps } => {
            if let Some(first) = steps.first() {
                visit_top_level(&first.node, report);
            }
        }
        AstNode::Name(name) => report(Refused::TopLevel(name.clone())),
        AstNode::Variable(name) if name.is_empty() => report(Refused::TopLevel("$".to_owned())),
        AstNode::ParentVariable(_) => report(Refused::Root),
        AstNode::Binary { op, lhs, rhs } => {
            // `$x := value` binds a name: only the value is read.
            if !matches!(op, jsonata_core::ast::BinaryOp::ColonEqual) {
                visit_top_level(lhs, report);
            }
            visit_top_level(rhs, report);
        }
        AstNode::Unary { operand, .. } => visit_top_level(operand, report),
        AstNode::Function { args, .. } => args.iter().for_each(|arg| visit_top_level(arg, report)),
        AstNode::Call { procedure, args } => {
            visit_top_level(procedure, report);
            args.iter().for_each(|arg| visit_top_level(arg, report));
        }
        AstNode::Lambda { body, .. } => visit_top_level(body, report),
        AstNode::Array(items) | AstNode::Block(items) => items.iter().for_each(|item| visit_top_level(item, report)),
        AstNode::Object(pairs) => pairs.iter().for_each(|(key, value)| {
            visit_top_level(key, report);
            visit_top_level(value, report);
        }),
        // The pattern and the sort terms run against the input's values.
        AstNode::ObjectTransform { input, .. } | AstNode::Sort { input, .. } => visit_top_level(input, report),
        AstNode::Conditional { condition, then_branch, else_branch } => {
            visit_top_level(condition, report);
            visit_top_level(then_branch, report);
            if let Some(else_branch) = else_branch {
                visit_top_level(else_branch, report);
            }
        }
        // Literals, named variables, and the operators that only make sense inside a path
        // (wildcards, descendants, parent, groups, transforms) read nothing at the top level.
        _ => {}
    }
}

/// What an expression reads from its bindings.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Reads {
    /// Every `$name` the expression mentions (a superset of the variables it reads: lambda
    /// parameters and local `:=` names are included).
    pub(super) variables: Vec<String>,
    /// The `$states` fields it reads as `$states.<field>`, in the order written.
    pub(super) states_fields: Vec<String>,
    /// Whether it also uses `$states` other than as `$states.<field>` (`$keys($states)`).
    pub(super) whole_states: bool,
}

/// What `ast` reads. JSONata has no way to reach a variable by a computed name (`$eval` is
/// disabled), so the names written are all the expression can read.
pub(super) fn reads(ast: &AstNode) -> Reads {
    let mut reads = Reads::default();
    match serde_json::to_value(ast) {
        // Walking the tree's JSON form finds every variable without depending on the shape of
        // each node type.
        Ok(tree) => collect_reads(&tree, &mut reads),
        // Not expected; reading everything is always correct.
        Err(_) => reads.whole_states = true,
    }
    reads
}

fn collect_reads(node: &serde_json::Value, reads: &mut Reads) {
    use serde_json::Value;
    match node {
        Value::Object(object) => {
            if let Some(Value::Array(steps)) = object.get("Path").and_then(|path| path.get("steps"))
                && let [first, second, ..] = steps.as_slice()
                && first["node"]["Variable"] == "states"
                && let Some(field) = second["node"]["Name"].as_str()
            {
                if !reads.states_fields.iter().any(|known| known == field) {
                    reads.states_fields.push(field.to_owned());
                }
                // The rest of the first step (its predicates) and the later steps.
                first
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(key, _)| *key != "node")
                    .for_each(|(_, child)| collect_reads(child, reads));
                steps[1..].iter().for_each(|step| collect_reads(step, reads));
                return;
            }
            if let Some(Value::String(name)) = object.get("Variable") {
                if name == "states" {
                    reads.whole_states = true;
                } else if !name.is_empty() && !reads.variables.iter().any(|known| known == name) {
                    reads.variables.push(name.clone());
                }
            }
            object.values().for_each(|child| collect_reads(child, reads));
        }
        Value::Array(items) => items.iter().for_each(|child| collect_reads(child, reads)),
        _ => {}
    }
}

/// A path of field names from a named variable: `$states.input.detail.key`, `$var.a`, `$var`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct FieldPath {
    pub(super) variable: String,
    pub(super) fields: Vec<String>,
}

/// The expression as a [`FieldPath`], when it is nothing more than one.
pub(super) fn field_path(ast: &AstNode) -> Option<FieldPath> {
    match ast {
        AstNode::Variable(variable) if !variable.is_empty() => {
            Some(FieldPath { variable: variable.clone(), fields: Vec::new() })
        }
        AstNode::Path { steps } => {
            let (first, rest) = steps.split_first()?;
            if !steps.iter().all(is_plain_step) {
                return None;
            }
            let AstNode::Variable(variable) = &first.node else {
                return None;
            };
            let fields = rest
                .iter()
                .map(|step| match &step.node {
                    AstNode::Name(name) => Some(name.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            (!variable.is_empty()).then(|| FieldPath { variable: variable.clone(), fields })
        }
        _ => None,
    }
}

/// A step with no predicate, binding or parent reference attached.
fn is_plain_step(step: &PathStep) -> bool {
    step.stages.is_empty()
        && step.focus.is_none()
        && step.index_var.is_none()
        && step.ancestor_label.is_none()
        && !step.is_tuple
        && !step.inner_tuple
}

/// jsonata-core's parser message as AWS reports it for an expression that does not parse:
/// jsonata-js's wording without the `S0xxx: ` code, e.g. `Expected "]", got ","`.
pub(super) fn parse_error_message(message: &str) -> String {
    let message = message.strip_prefix("Invalid syntax: ").unwrap_or(message);
    let Some((code, detail)) = message.split_once(": ").filter(|(code, _)| is_code(code)) else {
        return message.to_owned();
    };
    match code {
        // jsonata-core names tokens (`RightBracket`) where jsonata-js quotes them (`"]"`).
        "S0202" | "S0203" | "S0211" => detail
            .split(' ')
            .map(|word| {
                // A token name may carry the sentence's punctuation ("RightBracket,").
                let (name, punctuation) = word.split_at(word.trim_end_matches(',').len());
                match symbol(name) {
                    Some(symbol) => format!("\"{symbol}\"{punctuation}"),
                    None => word.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        "S0201" => match detail.strip_prefix("Syntax error: ") {
            Some(token) => format!("Syntax error: {}", token_symbol(token)),
            None => detail.to_owned(),
        },
        "S0204" => match detail.strip_prefix("Unknown operator: ") {
            Some(operator) => format!("Unknown operator: {}", serde_json::Value::from(operator)),
            None => detail.to_owned(),
        },
        _ => detail.to_owned(),
    }
}

fn is_code(code: &str) -> bool {
    code.len() == 5 && code.starts_with('S') && code[1..].bytes().all(|b| b.is_ascii_digit())
}

/// A token as jsonata-js quotes it: `Identifier("bar")` is `"bar"`, a symbol its character.
fn token_symbol(token: &str) -> String {
    let quoted = token.split_once('(').and_then(|(_, rest)| rest.strip_suffix(')')).unwrap_or(token);
    match symbol(quoted) {
        Some(symbol) => format!("\"{symbol}\""),
        None if quoted.starts_with('"') => quoted.to_owned(),
        None => format!("\"{quoted}\""),
    }
}

/// The characters of a jsonata-core token name.
fn symbol(name: &str) -> Option<&'static str> {
    Some(match name {
        "LeftParen" => "(",
        "RightParen" => ")",
        "LeftBracket" => "[",
        "RightBracket" => "]",
        "LeftBrace" => "{",
        "RightBrace" => "}",
        "Comma" => ",",
        "Semicolon" => ";",
        "Colon" => ":",
        "ColonEqual" => ":=",
        "Dot" => ".",
        "DotDot" => "..",
        "Question" => "?",
        "QuestionQuestion" => "??",
        "QuestionColon" => "?:",
        "Plus" => "+",
        "Minus" => "-",
        "Star" => "*",
        "StarStar" => "**",
        "Slash" => "/",
        "Percent" => "%",
        "Equal" => "=",
        "NotEqual" => "!=",
        "LessThan" => "<",
        "LessThanOrEqual" => "<=",
        "GreaterThan" => ">",
        "GreaterThanOrEqual" => ">=",
        "And" => "and",
        "Or" => "or",
        "In" => "in",
        "Ampersand" => "&",
        "TildeArrow" => "~>",
        "Caret" => "^",
        "Pipe" => "|",
        "Hash" => "#",
        "At" => "@",
        _ => return None,
    })
}
