//! JSONPath as Step Functions uses it (Jayway semantics): reference paths for `InputPath`,
//! `ResultPath`, `OutputPath`, `…Path` fields and `.$` values, rooted at the state input (`$`),
//! the context object (`$$`) or a workflow variable (`$name`).
//!
//! A *definite* path (only names and indexes) selects one value; an *indefinite* one (wildcards,
//! slices, unions, filters, `..`) selects a list, returned as a JSON array.

use std::fmt;

use serde_json::{Map, Value};

/// Where a path starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the current data (state input, effective input or result, depending on the field).
    Data,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable.
    Variable(String),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Name(String),
    Index(i64),
    Wildcard,
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Names(Vec<String>),
    Indexes(Vec<i64>),
    /// `..name`, `..*`, `..[…]`: the inner segment applied at every depth.
    Descendants(Box<Segment>),
    Filter(Filter),
}

/// A compiled JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    source: String,
    root: Root,
    segments: Vec<Segment>,
}

/// Why a path string is not a valid JSONPath.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath '{path}': {reason}")]
pub struct PathSyntaxError {
    /// The path as written.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Why a path selected nothing in a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathLookupError {
    /// A name or index on the way does not exist; `at` is the path up to it, in bracket notation.
    #[error("Missing property in path {at}")]
    Missing {
        /// The path up to and including the missing step, e.g. `$['no']`.
        at: String,
    },
    /// A `$name` path refers to a variable that is not defined.
    #[error("the variable '{0}' is not defined")]
    UndefinedVariable(String),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Whether a string looks like a path the engine should parse (`$`, `$.…`, `$$…`, `$[…]`, `$name…`).
pub fn looks_like_path(s: &str) -> bool {
    s.starts_with('$')
}

impl Path {
    /// Parses a JSONPath (`$…`, `$$…` or `$variable…`).
    pub fn parse(source: &str) -> Result<Path, PathSyntaxError> {
        Parser::new(source).parse()
    }

    /// The path `$`, selecting the whole value.
    pub fn whole() -> Path {
        Path { source: "$".to_owned(), root: Root::Data, segments: Vec::new() }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Where the path starts.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Whether the path selects at most one value (no wildcard, slice, union, filter or `..`).
    pub fn is_definite(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Name(_) | Segment::Index(_)))
    }

    /// Whether this is a reference path: definite, usable to write into a value (ResultPath).
    pub fn is_reference(&self) -> bool {
        self.is_definite()
    }

    /// Whether the path is exactly the root `$`.
    pub fn is_root(&self) -> bool {
        self.root == Root::Data && self.segments.is_empty()
    }

    /// Selects from `value`, which must already be the root this path refers to.
    pub fn select(&self, value: &Value) -> Result<Value, PathLookupError> {
        if self.is_definite() {
            self.select_definite(value).cloned()
        } else {
            let mut current = vec![value];
            for segment in &self.segments {
                let mut next = Vec::new();
                for v in current {
                    apply_segment(segment, v, value, &mut next);
                }
                current = next;
            }
            Ok(Value::Array(current.into_iter().cloned().collect()))
        }
    }

    /// Selects from a definite path, returning a reference into `value`.
    pub fn select_definite<'v>(&self, value: &'v Value) -> Result<&'v Value, PathLookupError> {
        let mut current = value;
        for (i, segment) in self.segments.iter().enumerate() {
            let found = match segment {
                Segment::Name(name) => current.as_object().and_then(|o| o.get(name)),
                Segment::Index(index) => current.as_array().and_then(|a| resolve_index(*index, a.len()).map(|i| &a[i])),
                _ => None,
            };
            match found {
                Some(v) => current = v,
                None => {
                    return Err(PathLookupError::Missing { at: self.bracket_prefix(i + 1) });
                }
            }
        }
        Ok(current)
    }

    /// Writes `result` into `target` at this (reference) path, creating objects on the way, as
    /// ResultPath does. Fails when a step on the way is not an object.
    pub fn write(&self, target: Value, result: Value) -> Result<Value, PathLookupError> {
        if self.segments.is_empty() {
            return Ok(result);
        }
        let mut target = target;
        let mut slot = &mut target;
        for (i, segment) in self.segments.iter().enumerate() {
            slot = match segment {
                Segment::Name(name) => {
                    if slot.is_null() {
                        *slot = Value::Object(Map::new());
                    }
                    match slot {
                        Value::Object(object) => object.entry(name.clone()).or_insert(Value::Null),
                        _ => {
                            return Err(PathLookupError::Missing { at: self.bracket_prefix(i + 1) });
                        }
                    }
                }
                Segment::Index(index) => match slot {
                    Value::Array(items) => match resolve_index(*index, items.len()) {
                        Some(i) => &mut items[i],
                        None => {
                            return Err(PathLookupError::Missing { at: self.bracket_prefix(i + 1) });
                        }
                    },
                    _ => {
                        return Err(PathLookupError::Missing { at: self.bracket_prefix(i + 1) });
                    }
                },
                _ => {
                    return Err(PathLookupError::Missing { at: self.bracket_prefix(i + 1) });
                }
            };
        }
        *slot = result;
        Ok(target)
    }

    fn bracket_prefix(&self, count: usize) -> String {
        let mut out = String::from("$");
        for segment in &self.segments[..count] {
            match segment {
                Segment::Name(name) => {
                    out.push_str("['");
                    out.push_str(name);
                    out.push_str("']");
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
                _ => out.push_str("[*]"),
            }
        }
        out
    }
}

fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { len + index } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

fn apply_segment<'v>(segment: &Segment, value: &'v Value, root: &'v Value, out: &mut Vec<&'v Value>) {
    match segment {
        Segment::Name(name) => {
            if let Some(v) = value.as_object().and_then(|o| o.get(name)) {
                out.push(v);
            }
        }
        Segment::Index(index) => {
            if let Some(a) = value.as_array()
                && let Some(i) = resolve_index(*index, a.len())
            {
                out.push(&a[i]);
            }
        }
        Segment::Wildcard => match value {
            Value::Object(o) => out.extend(o.values()),
            Value::Array(a) => out.extend(a.iter()),
            _ => {}
        },
        Segment::Slice(start, end, step) => {
            if let Some(a) = value.as_array() {
                let len = a.len() as i64;
                let step = step.unwrap_or(1).max(1);
                let clamp = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
                let start = start.map(clamp).unwrap_or(0);
                let end = end.map(clamp).unwrap_or(len);
                let mut i = start;
                while i < end {
                    out.push(&a[i as usize]);
                    i += step;
                }
            }
        }
        Segment::Names(names) => {
            if let Some(o) = value.as_object() {
                out.extend(names.iter().filter_map(|n| o.get(n)));
            }
        }
        Segment::Indexes(indexes) => {
            if let Some(a) = value.as_array() {
                out.extend(indexes.iter().filter_map(|i| resolve_index(*i, a.len()).map(|i| &a[i])));
            }
        }
        Segment::Descendants(inner) => {
            let mut stack = vec![value];
            while let Some(v) = stack.pop() {
                apply_segment(inner, v, root, out);
                match v {
                    Value::Object(o) => stack.extend(o.values().rev()),
                    Value::Array(a) => stack.extend(a.iter().rev()),
                    _ => {}
                }
            }
        }
        Segment::Filter(filter) => match value {
            Value::Array(a) => out.extend(a.iter().filter(|item| filter.matches(item, root))),
            Value::Object(o) => out.extend(o.values().filter(|item| filter.matches(item, root))),
            _ => {}
        },
    }
}

/// A filter expression `?(…)`.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Exists(Operand),
    Compare(Operand, CompareOp, Operand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Literal(Value),
    /// `@…` (relative to the item) when `current` is true, else `$…`.
    Path {
        current: bool,
        segments: Vec<Segment>,
    },
}

impl Operand {
    fn resolve<'v>(&'v self, item: &'v Value, root: &'v Value) -> Option<&'v Value> {
        match self {
            Operand::Literal(v) => Some(v),
            Operand::Path { current, segments } => {
                let mut v = if *current { item } else { root };
                for segment in segments {
                    let mut out = Vec::new();
                    apply_segment(segment, v, root, &mut out);
                    v = out.into_iter().next()?;
                }
                Some(v)
            }
        }
    }
}

impl Filter {
    fn matches(&self, item: &Value, root: &Value) -> bool {
        match self {
            Filter::Or(a, b) => a.matches(item, root) || b.matches(item, root),
            Filter::And(a, b) => a.matches(item, root) && b.matches(item, root),
            Filter::Not(a) => !a.matches(item, root),
            Filter::Exists(operand) => operand.resolve(item, root).is_some(),
            Filter::Compare(left, op, right) => {
                let (Some(l), Some(r)) = (left.resolve(item, root), right.resolve(item, root)) else {
                    return false;
                };
                let ordering = match (l, r) {
                    (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
                    (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
                    _ => {
                        return match op {
                            CompareOp::Eq => l == r,
                            CompareOp::Ne => l != r,
                            _ => false,
                        };
                    }
                };
                let Some(ordering) = ordering else {
                    return false;
                };
                match op {
                    CompareOp::Eq => ordering.is_eq(),
                    CompareOp::Ne => ordering.is_ne(),
                    CompareOp::Lt => ordering.is_lt(),
                    CompareOp::Le => ordering.is_le(),
                    CompareOp::Gt => ordering.is_gt(),
                    CompareOp::Ge => ordering.is_ge(),
                }
            }
        }
    }
}

struct Parser<'s> {
    source: &'s str,
    chars: Vec<char>,
    pos: usize,
}

impl<'s> Parser<'s> {
    fn new(source: &'s str) -> Self {
        Parser { source, chars: source.chars().collect(), pos: 0 }
    }

    fn error(&self, reason: impl Into<String>) -> PathSyntaxError {
        PathSyntaxError { path: self.source.to_owned(), reason: reason.into() }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn parse(mut self) -> Result<Path, PathSyntaxError> {
        if !self.eat('$') {
            return Err(self.error("a path must start with '$'"));
        }
        let root = if self.eat('$') {
            Root::Context
        } else if self.peek().is_some_and(is_name_start) {
            Root::Variable(self.name())
        } else {
            Root::Data
        };
        let segments = self.segments(false)?;
        if self.pos != self.chars.len() {
            return Err(self.error(format!("unexpected '{}'", self.chars[self.pos])));
        }
        Ok(Path { source: self.source.to_owned(), root, segments })
    }

    /// Parses segments until the end, or (inside a filter) until a character that ends an operand.
    fn segments(&mut self, in_filter: bool) -> Result<Vec<Segment>, PathSyntaxError> {
        let mut segments = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.pos += 1;
                    if self.eat('.') {
                        let inner = if self.eat('*') {
                            Segment::Wildcard
                        } else if self.peek() == Some('[') {
                            self.pos += 1;
                            self.bracket()?
                        } else {
                            let name = self.dotted_name();
                            if name.is_empty() {
                                return Err(self.error("'..' must be followed by a name"));
                            }
                            Segment::Name(name)
                        };
                        segments.push(Segment::Descendants(Box::new(inner)));
                    } else if self.eat('*') {
                        segments.push(Segment::Wildcard);
                    } else {
                        let name = self.dotted_name();
                        if name.is_empty() {
                            return Err(self.error("a '.' must be followed by a name"));
                        }
                        segments.push(Segment::Name(name));
                    }
                }
                '[' => {
                    self.pos += 1;
                    segments.push(self.bracket()?);
                }
                _ if in_filter => break,
                _ => return Err(self.error(format!("unexpected '{c}'"))),
            }
        }
        Ok(segments)
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// A name after '.': anything up to the next '.', '[' or (in filters) operator/space/paren.
    fn dotted_name(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| !matches!(c, '.' | '[' | ' ' | ')' | '=' | '!' | '<' | '>' | '&' | '|' | ']'))
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn bracket(&mut self) -> Result<Segment, PathSyntaxError> {
        self.skip_spaces();
        let segment = match self.peek() {
            Some('*') => {
                self.pos += 1;
                Segment::Wildcard
            }
            Some('\'') | Some('"') => {
                let mut names = vec![self.quoted()?];
                loop {
                    self.skip_spaces();
                    if !self.eat(',') {
                        break;
                    }
                    self.skip_spaces();
                    names.push(self.quoted()?);
                }
                if names.len() == 1 { Segment::Name(names.remove(0)) } else { Segment::Names(names) }
            }
            Some('?') => {
                self.pos += 1;
                self.skip_spaces();
                if !self.eat('(') {
                    return Err(self.error("a filter must be written [?(…)]"));
                }
                let filter = self.filter_or()?;
                self.skip_spaces();
                if !self.eat(')') {
                    return Err(self.error("unclosed filter"));
                }
                Segment::Filter(filter)
            }
            _ => self.index_or_slice()?,
        };
        self.skip_spaces();
        if !self.eat(']') {
            return Err(self.error("expected ']'"));
        }
        Ok(segment)
    }

    fn quoted(&mut self) -> Result<String, PathSyntaxError> {
        let quote = self.peek().ok_or_else(|| self.error("expected a quoted name"))?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated quoted name")),
                Some('\\') => {
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.pos += 1;
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn integer(&mut self) -> Option<i64> {
        self.skip_spaces();
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        self.skip_spaces();
        if text.is_empty() || text == "-" {
            self.pos = start;
            None
        } else {
            text.parse().ok()
        }
    }

    fn index_or_slice(&mut self) -> Result<Segment, PathSyntaxError> {
        let first = self.integer();
        if self.eat(':') {
            let end = self.integer();
            let step = if self.eat(':') { self.integer() } else { None };
            return Ok(Segment::Slice(first, end, step));
        }
        let first = first.ok_or_else(|| self.error("expected an index, a quoted name, '*' or a filter"))?;
        let mut indexes = vec![first];
        while self.eat(',') {
            indexes.push(self.integer().ok_or_else(|| self.error("expected an index after ','"))?);
        }
        Ok(if indexes.len() == 1 { Segment::Index(first) } else { Segment::Indexes(indexes) })
    }

    fn filter_or(&mut self) -> Result<Filter, PathSyntaxError> {
        let mut left = self.filter_and()?;
        loop {
            self.skip_spaces();
            if self.chars[self.pos..].starts_with(&['|', '|']) {
                self.pos += 2;
                let right = self.filter_and()?;
                left = Filter::Or(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn filter_and(&mut self) -> Result<Filter, PathSyntaxError> {
        let mut left = self.filter_unary()?;
        loop {
            self.skip_spaces();
            if self.chars[self.pos..].starts_with(&['&', '&']) {
                self.pos += 2;
                let right = self.filter_unary()?;
                left = Filter::And(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn filter_unary(&mut self) -> Result<Filter, PathSyntaxError> {
        self.skip_spaces();
        if self.peek() == Some('!') && self.chars.get(self.pos + 1) != Some(&'=') {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.filter_unary()?)));
        }
        if self.eat('(') {
            let inner = self.filter_or()?;
            self.skip_spaces();
            if !self.eat(')') {
                return Err(self.error("unclosed '(' in filter"));
            }
            return Ok(inner);
        }
        let left = self.operand()?;
        self.skip_spaces();
        let op = if self.eat('=') {
            self.eat('=');
            Some(CompareOp::Eq)
        } else if self.chars[self.pos..].starts_with(&['!', '=']) {
            self.pos += 2;
            Some(CompareOp::Ne)
        } else if self.eat('<') {
            Some(if self.eat('=') { CompareOp::Le } else { CompareOp::Lt })
        } else if self.eat('>') {
            Some(if self.eat('=') { CompareOp::Ge } else { CompareOp::Gt })
        } else {
            None
        };
        match op {
            Some(op) => {
                let right = self.operand()?;
                Ok(Filter::Compare(left, op, right))
            }
            None => Ok(Filter::Exists(left)),
        }
    }

    fn operand(&mut self) -> Result<Operand, PathSyntaxError> {
        self.skip_spaces();
        match self.peek() {
            Some('@') | Some('$') => {
                let current = self.peek() == Some('@');
                self.pos += 1;
                Ok(Operand::Path { current, segments: self.segments(true)? })
            }
            Some('\'') | Some('"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '+' | '.')) {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(|v| !v.is_object() && !v.is_array())
                    .map(Operand::Literal)
                    .ok_or_else(|| self.error(format!("invalid filter operand '{text}'")))
            }
            None => Err(self.error("unexpected end of filter")),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn select(path: &str, value: Value) -> Result<Value, PathLookupError> {
        Path::parse(path).unwrap().select(&value)
    }

    #[test]
    fn definite_paths_select_one_value() {
        let data = json!({"a": {"b": [10, 20, 30]}, "x y": 1});
        assert_eq!(select("$", data.clone()).unwrap(), data);
        assert_eq!(select("$.a.b[1]", data.clone()).unwrap(), json!(20));
        assert_eq!(select("$.a.b[-1]", data.clone()).unwrap(), json!(30));
        assert_eq!(select("$['x y']", data.clone()).unwrap(), json!(1));
        assert_eq!(select("$.no.such", data).unwrap_err(), PathLookupError::Missing { at: "$['no']".into() });
    }

    #[test]
    fn indefinite_paths_select_lists() {
        let data = json!({"items": [{"v": 1, "s": 0}, {"v": 2, "s": 1}, {"v": 3, "s": 0}]});
        assert_eq!(select("$.items[*].v", data.clone()).unwrap(), json!([1, 2, 3]));
        assert_eq!(select("$.items[0:2].v", data.clone()).unwrap(), json!([1, 2]));
        assert_eq!(select("$..v", data.clone()).unwrap(), json!([1, 2, 3]));
        assert_eq!(select("$.items[?(@.s == 0)].v", data.clone()).unwrap(), json!([1, 3]));
        assert_eq!(select("$.items[?(@.v > 1 && @.s == 0)].v", data).unwrap(), json!([3]));
        assert_eq!(select("$[*]", json!({})).unwrap(), json!([]));
    }

    #[test]
    fn roots_are_recognised() {
        assert_eq!(Path::parse("$$.Execution.Id").unwrap().root(), &Root::Context);
        assert_eq!(Path::parse("$myVar.field").unwrap().root(), &Root::Variable("myVar".into()));
        assert!(Path::parse("a.b").is_err());
        assert!(Path::parse("$.a[").is_err());
    }

    #[test]
    fn write_creates_intermediate_objects() {
        let path = Path::parse("$.a.b").unwrap();
        assert_eq!(path.write(json!({"x": 1}), json!(2)).unwrap(), json!({"x": 1, "a": {"b": 2}}));
        assert!(path.write(json!({"a": 5}), json!(2)).is_err());
    }
}
