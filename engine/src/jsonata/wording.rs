//! jsonata-core's error messages reworded as jsonata-js (and so AWS) words them.
//!
//! The error codes are the same; the text after them differs for a few common errors. Where
//! jsonata-core's text, or the expression, carries what the jsonata-js text needs, the
//! jsonata-js text is rebuilt; otherwise jsonata-core's text is kept after the shared code.

use jsonata_core::ast::AstNode;
use serde_json::Value;

const NON_FUNCTION: &str = "T1006: Attempted to invoke a non-function";

/// The jsonata-js wording of `message`, raised while evaluating `ast`.
pub(super) fn jsonata_js_wording(message: &str, ast: &AstNode) -> String {
    if message.starts_with(NON_FUNCTION) {
        // jsonata-core appends the name (": $foo"); jsonata-js does not.
        return NON_FUNCTION.to_owned();
    }
    if let Some(text) =
        message.strip_prefix("D3030: Cannot convert '").and_then(|rest| rest.strip_suffix("' to number"))
    {
        return format!("D3030: Unable to cast value to a number: {}", Value::from(text));
    }
    if let Some(text) = operand_error(message) {
        return text;
    }
    if let Some((kept, _count)) = message.strip_prefix("D3138: ").and_then(|detail| detail.rsplit_once(" (")) {
        // jsonata-core appends the number of matches ("(2 values)"); jsonata-js does not.
        return format!("D3138: {kept}");
    }
    argument_error(message, ast).unwrap_or_else(|| message.to_owned())
}

/// Arithmetic and range operand errors: jsonata-js quotes the operator and words the range
/// errors differently.
fn operand_error(message: &str) -> Option<String> {
    let (code, detail) = message.split_once(": ")?;
    match code {
        "T2001" | "T2002" => {
            let (side, rest) = detail.split_once(" side of the ")?;
            let operator = rest.strip_suffix(" operator must evaluate to a number")?;
            Some(format!("{code}: {side} side of the \"{operator}\" operator must evaluate to a number"))
        }
        "T2003" => Some("T2003: The left side of the range operator (..) must evaluate to an integer".to_owned()),
        "T2004" => Some("T2004: The right side of the range operator (..) must evaluate to an integer".to_owned()),
        _ => None,
    }
}

/// `T0410`/`T0412` argument errors name the function in jsonata-js. jsonata-core leaves the
/// name out, so it is taken from the expression when exactly one function is called in it.
fn argument_error(message: &str, ast: &AstNode) -> Option<String> {
    let (code, detail) = message.split_once(": ")?;
    if code != "T0410" && code != "T0412" {
        return None;
    }
    let argument = match detail.strip_prefix("Argument count mismatch: expected ") {
        // Too many arguments: jsonata-js names the first surplus one.
        Some(counts) => {
            let (expected, given) = counts.split_once(", got ")?;
            let (expected, given) = (expected.parse::<usize>().ok()?, given.parse::<usize>().ok()?);
            (given > expected).then_some(expected + 1)?
        }
        None => {
            let rest = detail.strip_prefix("Argument ")?;
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            rest[..digits].parse::<usize>().ok()?
        }
    };
    let function = only_function_called(ast)?;
    if code == "T0410" {
        return Some(format!(
            "T0410: Argument {argument} of function \"{function}\" does not match function signature"
        ));
    }
    let element = detail.rsplit("array of ").next()?.trim();
    let elements = match element {
        "Number" => "numbers",
        "String" => "strings",
        "Boolean" => "booleans",
        "Object" => "objects",
        "Array" => "arrays",
        "Function" => "functions",
        _ => return None,
    };
    Some(format!("T0412: Argument {argument} of function \"{function}\" must be an array of \"{elements}\""))
}

/// The name of the one function the expression calls by name, if there is exactly one.
fn only_function_called(ast: &AstNode) -> Option<String> {
    // The syntax tree is serialisable; walking its JSON form finds every `$name(…)` call
    // without depending on the shape of each node type.
    let tree = serde_json::to_value(ast).ok()?;
    let mut names = Vec::new();
    collect_called_names(&tree, &mut names);
    match names.as_slice() {
        [name] => Some(name.clone()),
        _ => None,
    }
}

fn collect_called_names(node: &Value, names: &mut Vec<String>) {
    match node {
        Value::Object(fields) => {
            if let Some(name) = fields.get("Function").and_then(|call| call.get("name")).and_then(Value::as_str)
                && !names.iter().any(|known| known == name)
            {
                names.push(name.to_owned());
            }
            fields.values().for_each(|child| collect_called_names(child, names));
        }
        Value::Array(items) => items.iter().for_each(|child| collect_called_names(child, names)),
        _ => {}
    }
}
