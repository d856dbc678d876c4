//! The Choice state: comparison operators (literal and `…Path` forms), `Is…` tests, And/Or/Not,
//! and JSONata `Condition`.

use chrono::DateTime;
use serde_json::Value;

use crate::definition::{Fields, Payload};
use crate::error::Failure;
use crate::path::{Path, PathLookupError};
use crate::template::Scope;

/// A Choice state.
#[derive(Debug)]
pub struct Choice {
    pub rules: Vec<ChoiceRule>,
    pub default: Option<String>,
}

/// A top-level rule: a condition and where to go.
#[derive(Debug)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
    /// The rule's own `Assign`, used when it matches.
    pub assign: Option<Payload>,
    /// The rule's JSONata `Output`, used when it matches.
    pub output: Option<Value>,
}

/// A boolean expression.
#[derive(Debug)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        variable: Path,
        operator: Operator,
        operand: Operand,
    },
    /// JSONata `Condition`: an expression string or a literal boolean.
    Jsonata(Value),
}

/// The right-hand side of a comparison.
#[derive(Debug)]
pub enum Operand {
    Literal(Value),
    Path(Path),
}

/// Comparison operators; the `…Path` forms share these with a path operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

const OPERATORS: &[(&str, Operator)] = &[
    ("StringEquals", Operator::StringEquals),
    ("StringLessThan", Operator::StringLessThan),
    ("StringGreaterThan", Operator::StringGreaterThan),
    ("StringLessThanEquals", Operator::StringLessThanEquals),
    ("StringGreaterThanEquals", Operator::StringGreaterThanEquals),
    ("StringMatches", Operator::StringMatches),
    ("NumericEquals", Operator::NumericEquals),
    ("NumericLessThan", Operator::NumericLessThan),
    ("NumericGreaterThan", Operator::NumericGreaterThan),
    ("NumericLessThanEquals", Operator::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Operator::NumericGreaterThanEquals),
    ("BooleanEquals", Operator::BooleanEquals),
    ("TimestampEquals", Operator::TimestampEquals),
    ("TimestampLessThan", Operator::TimestampLessThan),
    ("TimestampGreaterThan", Operator::TimestampGreaterThan),
    ("TimestampLessThanEquals", Operator::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Operator::TimestampGreaterThanEquals),
    ("IsNull", Operator::IsNull),
    ("IsPresent", Operator::IsPresent),
    ("IsNumeric", Operator::IsNumeric),
    ("IsString", Operator::IsString),
    ("IsBoolean", Operator::IsBoolean),
    ("IsTimestamp", Operator::IsTimestamp),
];

impl Operator {
    fn is_type_test(self) -> bool {
        matches!(
            self,
            Operator::IsNull
                | Operator::IsPresent
                | Operator::IsNumeric
                | Operator::IsString
                | Operator::IsBoolean
                | Operator::IsTimestamp
        )
    }

    /// Whether a literal operand has the type the operator needs.
    fn accepts(self, value: &Value) -> bool {
        use Operator::*;
        match self {
            StringEquals
            | StringLessThan
            | StringGreaterThan
            | StringLessThanEquals
            | StringGreaterThanEquals
            | StringMatches => value.is_string(),
            NumericEquals | NumericLessThan | NumericGreaterThan | NumericLessThanEquals | NumericGreaterThanEquals => {
                value.is_number()
            }
            TimestampEquals
            | TimestampLessThan
            | TimestampGreaterThan
            | TimestampLessThanEquals
            | TimestampGreaterThanEquals => value.as_str().is_some_and(|s| parse_timestamp(s).is_some()),
            BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => value.is_boolean(),
        }
    }
}

impl Choice {
    pub(crate) fn parse(fields: &mut Fields) -> Choice {
        let jsonata = fields.is_jsonata();
        let mut rules = Vec::new();
        match fields.get("Choices") {
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    let location = format!("{}/Choices/{i}", fields.location);
                    match item.as_object() {
                        Some(object) => {
                            let mut rule_fields = Fields::new(object, location, fields.diagnostics);
                            rule_fields.query_language = fields.query_language;
                            if let Some(rule) = parse_top_rule(&mut rule_fields, jsonata) {
                                rules.push(rule);
                            }
                            rule_fields.finish(&[]);
                        }
                        None => fields.error("Choices", "Each choice rule must be an object"),
                    }
                }
            }
            _ => fields.error_here("Choices must be a non-empty array"),
        }
        let default = fields.string("Default");
        Choice { rules, default }
    }
}

fn parse_top_rule(fields: &mut Fields, jsonata: bool) -> Option<ChoiceRule> {
    let next = fields.required_string("Next");
    let assign = fields.assign("Assign");
    let output = if jsonata { fields.jsonata_template("Output") } else { None };
    fields.string("Comment");
    let condition = if jsonata {
        match fields.get("Condition") {
            Some(v @ (Value::Bool(_) | Value::String(_))) => Some(Condition::Jsonata(v.clone())),
            _ => {
                fields.error_here("A JSONata choice rule needs a 'Condition' (an expression or a boolean)");
                None
            }
        }
    } else {
        parse_condition(fields)
    };
    Some(ChoiceRule { condition: condition?, next: next?, assign, output })
}

/// Parses the boolean expression in `fields` (a rule without `Next`, or with it at top level).
fn parse_condition(fields: &mut Fields) -> Option<Condition> {
    for (key, combine) in [("And", true), ("Or", false)] {
        if fields.has(key) {
            let Some(Value::Array(items)) = fields.get(key) else {
                fields.error(key, format!("{key} must be a non-empty array of rules"));
                return None;
            };
            if items.is_empty() {
                fields.error(key, format!("{key} must be a non-empty array of rules"));
                return None;
            }
            let mut inner = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let location = format!("{}/{key}/{i}", fields.location);
                inner.push(parse_nested(item, location, fields)?);
            }
            return Some(if combine { Condition::And(inner) } else { Condition::Or(inner) });
        }
    }
    if fields.has("Not") {
        let item = fields.get("Not")?;
        let location = format!("{}/Not", fields.location);
        return parse_nested(item, location, fields).map(|c| Condition::Not(Box::new(c)));
    }
    let variable = fields.required_string("Variable")?;
    let variable = fields.parse_path("Variable", &variable)?;
    let mut found = None;
    for (name, operator) in OPERATORS {
        let path_name = format!("{name}Path");
        if fields.has(name) {
            let value = fields.get(name)?;
            if !operator.accepts(value) {
                fields.error(name, format!("The value of '{name}' has the wrong type: {value}"));
                return None;
            }
            found = Some((*operator, Operand::Literal(value.clone())));
            break;
        }
        if !operator.is_type_test() && fields.has(&path_name) {
            let text = fields.string(&path_name)?;
            let path = fields.parse_path(&path_name, &text)?;
            found = Some((*operator, Operand::Path(path)));
            break;
        }
    }
    match found {
        Some((operator, operand)) => Some(Condition::Compare { variable, operator, operand }),
        None => {
            fields.error_here("A choice rule needs a comparison operator");
            None
        }
    }
}

fn parse_nested(item: &Value, location: String, parent: &mut Fields) -> Option<Condition> {
    let Some(object) = item.as_object() else {
        parent.error_here("A nested choice rule must be an object");
        return None;
    };
    let mut fields = Fields::new(object, location, parent.diagnostics);
    fields.query_language = parent.query_language;
    if fields.has("Next") {
        fields.error("Next", "Nested choice rules cannot have 'Next'");
    }
    fields.string("Comment");
    let condition = parse_condition(&mut fields);
    fields.finish(&[]);
    condition
}

/// Parses an ISO-8601 / RFC 3339 timestamp as Step Functions accepts it (`T` separator required).
pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<chrono::FixedOffset>> {
    if !s.contains('T') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

impl Condition {
    /// Evaluates a JSONPath-mode condition against the effective input.
    pub fn evaluate(&self, scope: &Scope) -> Result<bool, Failure> {
        match self {
            Condition::And(items) => {
                for item in items {
                    if !item.evaluate(scope)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(items) => {
                for item in items {
                    if item.evaluate(scope)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(inner) => Ok(!inner.evaluate(scope)?),
            Condition::Compare { variable, operator, operand } => {
                let value = match scope.lookup(variable) {
                    Ok(value) => Some(value),
                    Err(PathLookupError::Missing { .. }) => None,
                    Err(e) => return Err(Failure::runtime(e.to_string())),
                };
                if *operator == Operator::IsPresent {
                    return Ok(value.is_some() == (operand_bool(operand)));
                }
                let Some(value) = value else {
                    return Err(Failure::runtime(format!(
                        "Invalid path '{variable}' : No results for path: {variable}"
                    )));
                };
                let expected = match operand {
                    Operand::Literal(v) => v.clone(),
                    Operand::Path(path) => scope.lookup_field(path, &format!("{operator:?}Path"))?,
                };
                Ok(compare(*operator, &value, &expected))
            }
            Condition::Jsonata(_) => Err(Failure::runtime("a JSONata Condition cannot be evaluated in JSONPath mode")),
        }
    }
}

fn operand_bool(operand: &Operand) -> bool {
    matches!(operand, Operand::Literal(Value::Bool(true)))
}

fn compare(operator: Operator, value: &Value, expected: &Value) -> bool {
    use Operator::*;
    match operator {
        StringEquals | StringLessThan | StringGreaterThan | StringLessThanEquals | StringGreaterThanEquals => {
            match (value.as_str(), expected.as_str()) {
                (Some(a), Some(b)) => ordering_matches(operator, a.cmp(b)),
                _ => false,
            }
        }
        StringMatches => match (value.as_str(), expected.as_str()) {
            (Some(a), Some(pattern)) => wildcard_match(pattern, a),
            _ => false,
        },
        NumericEquals | NumericLessThan | NumericGreaterThan | NumericLessThanEquals | NumericGreaterThanEquals => {
            match (value.as_f64(), expected.as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b).is_some_and(|o| ordering_matches(operator, o)),
                _ => false,
            }
        }
        BooleanEquals => value.is_boolean() && value == expected,
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => {
            match (value.as_str().and_then(parse_timestamp), expected.as_str().and_then(parse_timestamp)) {
                (Some(a), Some(b)) => ordering_matches(operator, a.cmp(&b)),
                _ => false,
            }
        }
        IsNull => value.is_null() == (expected == &Value::Bool(true)),
        IsNumeric => value.is_number() == (expected == &Value::Bool(true)),
        IsString => value.is_string() == (expected == &Value::Bool(true)),
        IsBoolean => value.is_boolean() == (expected == &Value::Bool(true)),
        IsTimestamp => value.as_str().and_then(parse_timestamp).is_some() == (expected == &Value::Bool(true)),
        IsPresent => true,
    }
}

fn ordering_matches(operator: Operator, ordering: std::cmp::Ordering) -> bool {
    use Operator::*;
    match operator {
        StringEquals | NumericEquals | TimestampEquals => ordering.is_eq(),
        StringLessThan | NumericLessThan | TimestampLessThan => ordering.is_lt(),
        StringGreaterThan | NumericGreaterThan | TimestampGreaterThan => ordering.is_gt(),
        StringLessThanEquals | NumericLessThanEquals | TimestampLessThanEquals => ordering.is_le(),
        _ => ordering.is_ge(),
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are escapes.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    #[derive(PartialEq)]
    enum Token {
        Star,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => tokens.push(Token::Char(chars.next().unwrap_or('\\'))),
            '*' => tokens.push(Token::Star),
            c => tokens.push(Token::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic two-pointer wildcard matching with backtracking to the last star.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < tokens.len() && tokens[p] == Token::Char(text[t]) {
            t += 1;
            p += 1;
        } else if p < tokens.len() && tokens[p] == Token::Star {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    tokens[p..].iter().all(|t| *t == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn condition(rule: Value) -> Condition {
        let mut diagnostics = Vec::new();
        let object = rule.as_object().unwrap();
        let mut fields = Fields::new(object, "/r".into(), &mut diagnostics);
        let c = parse_condition(&mut fields).unwrap();
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        c
    }

    fn check(rule: Value, data: Value) -> bool {
        let context = Value::Null;
        let variables = serde_json::Map::new();
        condition(rule).evaluate(&Scope { data: &data, context: &context, variables: &variables }).unwrap()
    }

    #[test]
    fn operators_compare_as_aws() {
        assert!(check(json!({"Variable": "$.v", "NumericEquals": 2}), json!({"v": 2.0})));
        assert!(check(json!({"Variable": "$.v", "StringLessThan": "b"}), json!({"v": "a"})));
        assert!(!check(json!({"Variable": "$.v", "StringEquals": "1"}), json!({"v": 1})));
        assert!(check(json!({"Variable": "$.v", "IsPresent": false}), json!({})));
        assert!(check(
            json!({"Variable": "$.v", "TimestampLessThanPath": "$.w"}),
            json!({"v": "2020-01-01T00:00:00Z", "w": "2021-01-01T00:00:00+01:00"})
        ));
        assert!(check(json!({"Variable": "$.v", "StringMatches": "log-*.txt"}), json!({"v": "log-1.txt"})));
        assert!(check(
            json!({"Not": {"Or": [{"Variable": "$.v", "IsNull": true}, {"Variable": "$.v", "BooleanEquals": false}]}}),
            json!({"v": true})
        ));
    }
}
