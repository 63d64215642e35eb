//! The expression language of `when` conditions and `${...}` input mappings.
//!
//! A small, CEL-like language over JSON values: literals (`null`, `true`, `42`, `1.5`, `"text"`
//! or `'text'`, lists `[1, 2]`), field paths rooted at `input` (the chain input) or `steps` (the
//! outputs of earlier steps: `steps.plan.files[0].path`, `steps["ci-gen"].ok`), and, in the
//! input of a `for_each` step only, `item` and `index` (the current item and its place, from 0;
//! [`Expr::reads_item`] lets the checks refuse them elsewhere), comparisons
//! (`== != < <= > >=`), membership (`x in [..]`, `"k" in obj`, `"sub" in "string"`), `!`, `&&`,
//! `||`, parentheses, and the functions `has(path)` and `size(x)`.
//!
//! The `cel-interpreter` crate was considered: even without default features it brings a
//! generated parser and its own value model, a sizeable build on two shared cores for the few
//! operators a chain condition needs. This module is the whole of what conditions need, with
//! errors that point at the offending column.
//!
//! Semantics chosen for conditions written against data that may be absent: a path that does not
//! exist evaluates to `null` (use `has(...)` to tell), `null` is falsy, and `&&`/`||`
//! short-circuit. Comparing values of different kinds with `<` is an error, not `false`.
//!
//! Expressions come from requests, so parsing and evaluating them is bounded whatever is sent:
//! a source is at most [`MAX_EXPRESSION_CHARS`] long and nests at most [`MAX_EXPRESSION_DEPTH`]
//! levels (the parser and the evaluator recurse once per level, so this bounds their stack);
//! chains of `&&` or `||` are one node with many operands rather than a tree as deep as the
//! chain is long; paths evaluate to borrowed values, and a list literal, the one thing that
//! copies values, holds at most [`MAX_LIST_BYTES`].

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use crate::sizes;

/// Where paths may start.
pub const ROOTS: &[&str] = &["input", "steps", ITEM, INDEX];
/// The current item of a `for_each` step, and its place in the list.
pub const ITEM: &str = "item";
pub const INDEX: &str = "index";

/// The longest expression source, in characters: a condition or a mapping is a line or two.
pub const MAX_EXPRESSION_CHARS: usize = 4096;
/// How deeply `!`, `(`, `[`, `size(` and `has(` may nest in one expression.
pub const MAX_EXPRESSION_DEPTH: usize = 64;
/// The most a list written in an expression (`[a, b]`) may hold, as JSON: its items are copies
/// of what they name, so `[steps.big, steps.big, ...]` would otherwise multiply a large output.
pub const MAX_LIST_BYTES: usize = 1024 * 1024;
/// How much of a name, number or string an error message quotes.
const MAX_QUOTED_CHARS: usize = 40;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    List(Vec<Expr>),
    Path(Vec<Segment>),
    Not(Box<Expr>),
    /// `a && b && ...`: true when every operand is, evaluated left to right until one is not.
    All(Vec<Expr>),
    /// `a || b || ...`: true when an operand is, evaluated left to right until one is.
    Any(Vec<Expr>),
    Compare(Box<Expr>, CompareOp, Box<Expr>),
    Has(Vec<Segment>),
    Size(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}")]
pub struct ParseError {
    pub message: String,
    /// 1-based, in characters.
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(String);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Number(f64),
    Str(String),
    Op(&'static str),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(name) => write!(f, "`{}`", quoted(name)),
            Token::Number(number) => write!(f, "`{number}`"),
            Token::Str(text) => write!(f, "{:?}", quoted(text)),
            Token::Op(op) => write!(f, "`{op}`"),
        }
    }
}

/// `text` as an error message quotes it: its first [`MAX_QUOTED_CHARS`] characters.
fn quoted(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}...", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

const OPERATORS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ".", ",",
];

fn tokenize(source: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let column = at + 1;
        if c.is_whitespace() {
            at += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = at;
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '_') {
                at += 1;
            }
            tokens.push((Token::Ident(chars[start..at].iter().collect()), column));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(at + 1).is_some_and(char::is_ascii_digit))
        {
            let start = at;
            at += 1;
            while at < chars.len() && (chars[at].is_ascii_digit() || chars[at] == '.') {
                at += 1;
            }
            let text: String = chars[start..at].iter().collect();
            let number = text.parse().map_err(|_| ParseError {
                message: format!("`{}` is not a number", quoted(&text)),
                column,
            })?;
            tokens.push((Token::Number(number), column));
        } else if c == '"' || c == '\'' {
            at += 1;
            let mut text = String::new();
            loop {
                match chars.get(at) {
                    None => {
                        return Err(ParseError {
                            message: "unterminated string".to_owned(),
                            column,
                        });
                    }
                    Some(&end) if end == c => break,
                    Some('\\') => {
                        let escaped = chars.get(at + 1).ok_or(ParseError {
                            message: "unterminated string".to_owned(),
                            column,
                        })?;
                        text.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            other => *other,
                        });
                        at += 2;
                        continue;
                    }
                    Some(other) => text.push(*other),
                }
                at += 1;
            }
            at += 1;
            tokens.push((Token::Str(text), column));
        } else {
            let rest: String = chars[at..chars.len().min(at + 2)].iter().collect();
            let op = OPERATORS
                .iter()
                .find(|op| rest.starts_with(**op))
                .ok_or_else(|| ParseError {
                    message: format!("unexpected character `{c}`"),
                    column,
                })?;
            at += op.len();
            tokens.push((Token::Op(op), column));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    end_column: usize,
    /// How many `!`, `(`, `[`, `size(` and `has(` enclose the current token.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(token, _)| token)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.end_column, |(_, column)| *column)
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            column: self.column(),
        }
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Token::Op(found)) if *found == op) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &str) -> Result<(), ParseError> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{op}`")))
        }
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        match self.peek() {
            Some(token) => self.error(format!("expected {wanted}, found {token}")),
            None => self.error(format!("expected {wanted}, found the end")),
        }
    }

    /// Parses what an opening token at `column` (`!`, `(`, `[`, `size(`, `has(`) encloses, one
    /// level deeper; refused past [`MAX_EXPRESSION_DEPTH`], so no request can exhaust the stack.
    fn nested<T>(
        &mut self,
        column: usize,
        parse: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_EXPRESSION_DEPTH {
            return Err(ParseError {
                message: format!("nested deeper than {MAX_EXPRESSION_DEPTH} levels"),
                column,
            });
        }
        self.depth += 1;
        let parsed = parse(self);
        self.depth -= 1;
        parsed
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let first = self.and()?;
        if !self.eat("||") {
            return Ok(first);
        }
        let mut operands = vec![first, self.and()?];
        while self.eat("||") {
            operands.push(self.and()?);
        }
        Ok(Expr::Any(operands))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let first = self.unary()?;
        if !self.eat("&&") {
            return Ok(first);
        }
        let mut operands = vec![first, self.unary()?];
        while self.eat("&&") {
            operands.push(self.unary()?);
        }
        Ok(Expr::All(operands))
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let column = self.column();
        if self.eat("!") {
            return self.nested(column, |parser| Ok(Expr::Not(Box::new(parser.unary()?))));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.primary()?;
        let op = match self.peek() {
            Some(Token::Op("==")) => CompareOp::Eq,
            Some(Token::Op("!=")) => CompareOp::Ne,
            Some(Token::Op("<")) => CompareOp::Lt,
            Some(Token::Op("<=")) => CompareOp::Le,
            Some(Token::Op(">")) => CompareOp::Gt,
            Some(Token::Op(">=")) => CompareOp::Ge,
            Some(Token::Ident(word)) if word == "in" => CompareOp::In,
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.primary()?;
        Ok(Expr::Compare(Box::new(left), op, Box::new(right)))
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let column = self.column();
        let Some(token) = self.peek().cloned() else {
            return Err(self.unexpected("a value"));
        };
        self.at += 1;
        match token {
            Token::Number(number) => Ok(Expr::Literal(number_value(number))),
            Token::Str(text) => Ok(Expr::Literal(Value::String(text))),
            Token::Op("(") => self.nested(column, |parser| {
                let inner = parser.or()?;
                parser.expect(")")?;
                Ok(inner)
            }),
            Token::Op("[") => self.nested(column, |parser| {
                let mut items = Vec::new();
                if !parser.eat("]") {
                    loop {
                        items.push(parser.or()?);
                        if parser.eat("]") {
                            break;
                        }
                        parser.expect(",")?;
                    }
                }
                Ok(Expr::List(items))
            }),
            Token::Op("!") => {
                self.nested(column, |parser| Ok(Expr::Not(Box::new(parser.unary()?))))
            }
            Token::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "null" => Ok(Expr::Literal(Value::Null)),
                "has" => self.nested(column, |parser| {
                    parser.expect("(")?;
                    let Some(Token::Ident(root)) = parser.peek().cloned() else {
                        return Err(parser.unexpected("a field path"));
                    };
                    let root_column = parser.column();
                    parser.at += 1;
                    let path = parser.path(root, root_column)?;
                    parser.expect(")")?;
                    Ok(Expr::Has(path))
                }),
                "size" => self.nested(column, |parser| {
                    parser.expect("(")?;
                    let inner = parser.or()?;
                    parser.expect(")")?;
                    Ok(Expr::Size(Box::new(inner)))
                }),
                _ => Ok(Expr::Path(self.path(word, column)?)),
            },
            other => {
                self.at -= 1;
                Err(self.error(format!("expected a value, found {other}")))
            }
        }
    }

    fn path(&mut self, root: String, column: usize) -> Result<Vec<Segment>, ParseError> {
        if !ROOTS.contains(&root.as_str()) {
            return Err(ParseError {
                message: format!(
                    "unknown name `{}`: paths start with `input`, `steps`, `item` or `index`",
                    quoted(&root)
                ),
                column,
            });
        }
        let mut segments = vec![Segment::Field(root)];
        loop {
            if self.eat(".") {
                match self.peek().cloned() {
                    Some(Token::Ident(name)) => {
                        self.at += 1;
                        segments.push(Segment::Field(name));
                    }
                    _ => return Err(self.unexpected("a field name")),
                }
            } else if self.eat("[") {
                match self.peek().cloned() {
                    Some(Token::Str(name)) => segments.push(Segment::Field(name)),
                    Some(Token::Number(number)) if number >= 0.0 && number.fract() == 0.0 => {
                        segments.push(Segment::Index(number as usize));
                    }
                    _ => return Err(self.unexpected("a string key or an index")),
                }
                self.at += 1;
                self.expect("]")?;
            } else {
                return Ok(segments);
            }
        }
    }
}

fn number_value(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        Value::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
    }
}

/// Parses an expression of at most [`MAX_EXPRESSION_CHARS`], nested at most
/// [`MAX_EXPRESSION_DEPTH`] levels.
pub fn parse(source: &str) -> Result<Expr, ParseError> {
    let length = source.chars().count();
    if length > MAX_EXPRESSION_CHARS {
        return Err(ParseError {
            message: format!(
                "the expression is {length} characters long; the most is {MAX_EXPRESSION_CHARS}"
            ),
            column: MAX_EXPRESSION_CHARS + 1,
        });
    }
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end_column: length + 1,
        depth: 0,
    };
    let expr = parser.or()?;
    if parser.peek().is_some() {
        return Err(parser.unexpected("an operator or the end"));
    }
    Ok(expr)
}

impl Expr {
    /// The step ids the expression reads (`steps.<id>...`), to check they are earlier steps.
    pub fn step_references(&self) -> Vec<String> {
        let mut found = Vec::new();
        self.visit_paths(&mut |path| {
            if let [Segment::Field(root), Segment::Field(step), ..] = path
                && root == "steps"
            {
                found.push(step.clone());
            }
        });
        found
    }

    /// Whether the expression reads `item` or `index`, which only a `for_each` step's input
    /// has.
    pub fn reads_item(&self) -> bool {
        let mut found = false;
        self.visit_paths(&mut |path| {
            if let [Segment::Field(root), ..] = path
                && (root == ITEM || root == INDEX)
            {
                found = true;
            }
        });
        found
    }

    fn visit_paths(&self, visit: &mut impl FnMut(&[Segment])) {
        match self {
            Expr::Literal(_) => {}
            Expr::List(items) => items.iter().for_each(|item| item.visit_paths(visit)),
            Expr::Path(path) | Expr::Has(path) => visit(path),
            Expr::Not(inner) | Expr::Size(inner) => inner.visit_paths(visit),
            Expr::All(operands) | Expr::Any(operands) => operands
                .iter()
                .for_each(|operand| operand.visit_paths(visit)),
            Expr::Compare(left, _, right) => {
                left.visit_paths(visit);
                right.visit_paths(visit);
            }
        }
    }

    /// The value of the expression over `scope` (`{"input": .., "steps": {..}}`), borrowed
    /// from the scope or the expression where it can be.
    pub fn evaluate<'a>(&'a self, scope: &'a Value) -> Result<Cow<'a, Value>, EvalError> {
        self.evaluate_in(Frame { scope, item: None })
    }

    /// The value of the expression over `scope` with `item` and `index` naming one item of a
    /// `for_each` step: the items share the run's scope instead of each copying it.
    pub fn evaluate_item<'a>(
        &'a self,
        scope: &'a Value,
        item: &'a Value,
        index: &'a Value,
    ) -> Result<Cow<'a, Value>, EvalError> {
        self.evaluate_in(Frame {
            scope,
            item: Some((item, index)),
        })
    }

    fn evaluate_in<'a>(&'a self, scope: Frame<'a>) -> Result<Cow<'a, Value>, EvalError> {
        Ok(match self {
            Expr::Literal(value) => Cow::Borrowed(value),
            Expr::List(items) => {
                let mut room = MAX_LIST_BYTES;
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    let value = item.evaluate_in(scope)?;
                    // Measured before it is copied, so an oversized list costs no more than
                    // the bound.
                    let size = sizes::json_size(&value, room).ok_or_else(|| {
                        EvalError(format!(
                            "the list holds more than {MAX_LIST_BYTES} bytes of values"
                        ))
                    })?;
                    room -= size;
                    values.push(value.into_owned());
                }
                Cow::Owned(Value::Array(values))
            }
            Expr::Path(path) => lookup(scope, path).map_or(Cow::Owned(Value::Null), Cow::Borrowed),
            Expr::Has(path) => Cow::Owned(Value::Bool(lookup(scope, path).is_some())),
            Expr::Not(inner) => Cow::Owned(Value::Bool(!truthy(&*inner.evaluate_in(scope)?)?)),
            Expr::All(operands) => {
                let mut all = true;
                for operand in operands {
                    if !truthy(&*operand.evaluate_in(scope)?)? {
                        all = false;
                        break;
                    }
                }
                Cow::Owned(Value::Bool(all))
            }
            Expr::Any(operands) => {
                let mut any = false;
                for operand in operands {
                    if truthy(&*operand.evaluate_in(scope)?)? {
                        any = true;
                        break;
                    }
                }
                Cow::Owned(Value::Bool(any))
            }
            Expr::Size(inner) => Cow::Owned(match &*inner.evaluate_in(scope)? {
                Value::String(text) => Value::from(text.chars().count()),
                Value::Array(items) => Value::from(items.len()),
                Value::Object(fields) => Value::from(fields.len()),
                Value::Null => Value::from(0),
                other => return Err(EvalError(format!("size() of {}", kind(other)))),
            }),
            Expr::Compare(left, op, right) => Cow::Owned(Value::Bool(compare(
                &*left.evaluate_in(scope)?,
                *op,
                &*right.evaluate_in(scope)?,
            )?)),
        })
    }

    /// Evaluates a condition: true, false, or `null` (false).
    pub fn holds(&self, scope: &Value) -> Result<bool, EvalError> {
        truthy(&*self.evaluate(scope)?)
    }
}

/// What paths are looked up in: the run's scope, and the current item of a `for_each` step.
#[derive(Clone, Copy)]
struct Frame<'a> {
    scope: &'a Value,
    /// The item and its index, when evaluating a `for_each` step's input.
    item: Option<(&'a Value, &'a Value)>,
}

fn lookup<'a>(frame: Frame<'a>, path: &[Segment]) -> Option<&'a Value> {
    let (start, rest) = match (path, frame.item) {
        ([Segment::Field(root), rest @ ..], Some((item, _))) if root == ITEM => (item, rest),
        ([Segment::Field(root), rest @ ..], Some((_, index))) if root == INDEX => (index, rest),
        _ => (frame.scope, path),
    };
    rest.iter().try_fold(start, |value, segment| match segment {
        Segment::Field(name) => value.get(name),
        Segment::Index(index) => value.get(index),
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn truthy(value: &Value) -> Result<bool, EvalError> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::Null => Ok(false),
        other => Err(EvalError(format!(
            "expected a boolean, found {}",
            kind(other)
        ))),
    }
}

fn equal(left: &Value, right: &Value) -> bool {
    match (left.as_f64(), right.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => left == right,
    }
}

fn compare(left: &Value, op: CompareOp, right: &Value) -> Result<bool, EvalError> {
    let ordering = |left: &Value, right: &Value| -> Result<Ordering, EvalError> {
        match (left, right) {
            (Value::Number(_), Value::Number(_)) => {
                let (a, b) = (
                    left.as_f64().unwrap_or(f64::NAN),
                    right.as_f64().unwrap_or(f64::NAN),
                );
                a.partial_cmp(&b)
                    .ok_or_else(|| EvalError("numbers that do not compare".to_owned()))
            }
            (Value::String(a), Value::String(b)) => Ok(a.cmp(b)),
            _ => Err(EvalError(format!(
                "cannot order {} and {}",
                kind(left),
                kind(right)
            ))),
        }
    };
    Ok(match op {
        CompareOp::Eq => equal(left, right),
        CompareOp::Ne => !equal(left, right),
        CompareOp::Lt => ordering(left, right)? == Ordering::Less,
        CompareOp::Le => ordering(left, right)? != Ordering::Greater,
        CompareOp::Gt => ordering(left, right)? == Ordering::Greater,
        CompareOp::Ge => ordering(left, right)? != Ordering::Less,
        CompareOp::In => match right {
            Value::Array(items) => items.iter().any(|item| equal(item, left)),
            Value::Object(fields) => left.as_str().is_some_and(|key| fields.contains_key(key)),
            Value::String(text) => left.as_str().is_some_and(|part| text.contains(part)),
            Value::Null => false,
            other => {
                return Err(EvalError(format!(
                    "`in` needs a list, object or string, found {}",
                    kind(other)
                )));
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(source: &str, scope: &Value) -> bool {
        parse(source).unwrap().holds(scope).unwrap()
    }

    #[test]
    fn conditions_read_the_input_and_earlier_outputs() {
        let scope = json!({
            "input": {"tests": true, "name": "shop", "count": 3, "tags": ["a", "b"]},
            "steps": {"plan": {"files": [{"path": "main.py"}]}, "ci-gen": {"ok": false}},
        });
        assert!(holds("input.tests", &scope));
        assert!(holds("input.count >= 3 && input.name == 'shop'", &scope));
        assert!(holds("!(input.count < 3) || false", &scope));
        assert!(holds(r#"steps.plan.files[0].path == "main.py""#, &scope));
        assert!(holds(r#"steps["ci-gen"].ok == false"#, &scope));
        assert!(holds("'a' in input.tags && !('z' in input.tags)", &scope));
        assert!(holds("size(input.tags) == 2 && has(input.name)", &scope));
        assert!(!holds("input.missing", &scope));
        assert!(!holds("has(steps.build.output)", &scope));
        assert!(holds("input.count in [1, 2, 3]", &scope));
        assert!(holds("input.count == 3.0", &scope));
    }

    #[test]
    fn bad_expressions_say_what_and_where() {
        let err = parse("input.a ==").unwrap_err();
        assert_eq!(err.column, 11);
        assert!(err.message.contains("expected a value"), "{err}");
        let err = parse("inptu.a").unwrap_err();
        assert!(err.message.contains("unknown name `inptu`"), "{err}");
        assert!(parse("input.a = 1").is_err());
        assert!(parse("'open").is_err());
        assert!(parse("input.a == 1 input.b").is_err());
        assert!(parse("(input.a").is_err());
    }

    /// The cases the console's parser (`clients/web/src/composer/expr.ts`) is tested on too, so
    /// a condition the composer accepts as it is typed is one this parser accepts.
    #[test]
    fn the_cases_shared_with_the_console_parse_alike() {
        let cases: Value = serde_json::from_str(include_str!("expr_cases.json")).unwrap();
        for source in cases["accept"].as_array().unwrap() {
            let source = source.as_str().unwrap();
            assert!(parse(source).is_ok(), "{source}: {:?}", parse(source));
        }
        for case in cases["reject"].as_array().unwrap() {
            let source = case["source"].as_str().unwrap();
            let err = parse(source).unwrap_err();
            assert_eq!(
                Some(err.column as u64),
                case["column"].as_u64(),
                "{source}: {err}"
            );
            let message = case["message"].as_str().unwrap();
            assert!(err.message.contains(message), "{source}: {err}");
        }
    }

    #[test]
    fn type_mistakes_are_errors_not_false() {
        let scope = json!({"input": {"n": 1, "s": "x"}});
        assert!(parse("input.n < input.s").unwrap().holds(&scope).is_err());
        assert!(parse("input.n").unwrap().holds(&scope).is_err());
    }

    #[test]
    fn a_long_expression_is_an_error_not_a_stack_overflow() {
        for source in [
            format!("{}true", "!".repeat(200_000)),
            format!("{}true{}", "(".repeat(100_000), ")".repeat(100_000)),
            format!("input.x == '{}'", "a".repeat(MAX_EXPRESSION_CHARS)),
        ] {
            let err = parse(&source).unwrap_err();
            assert!(err.message.contains("characters long"), "{err}");
            assert_eq!(err.column, MAX_EXPRESSION_CHARS + 1);
        }
    }

    #[test]
    fn nesting_past_the_depth_is_an_error_at_the_token_that_goes_too_deep() {
        let depth = MAX_EXPRESSION_DEPTH;
        assert!(parse(&format!("{}true", "!".repeat(depth))).is_ok());
        let err = parse(&format!("{}true", "!".repeat(depth + 1))).unwrap_err();
        assert!(
            err.message.contains("nested deeper than 64 levels"),
            "{err}"
        );
        assert_eq!(err.column, depth + 1);
        for (open, close) in [("(", ")"), ("[", "]"), ("size(", ")"), ("!(", ")")] {
            let fits = format!("{}true{}", open.repeat(depth / 2), close.repeat(depth / 2));
            assert!(parse(&fits).is_ok(), "{fits}");
            let source = format!("{}true{}", open.repeat(depth + 1), close.repeat(depth + 1));
            let err = parse(&source).unwrap_err();
            assert!(err.message.contains("nested deeper"), "{source}: {err}");
        }
        let has = format!("{}has(input.a){}", "(".repeat(depth), ")".repeat(depth));
        assert!(parse(&has[1..has.len() - 1]).is_ok());
        assert!(parse(&has).unwrap_err().message.contains("nested deeper"));
    }

    #[test]
    fn the_deepest_and_longest_expressions_fit_a_small_stack() {
        // A quarter of a tokio worker's stack: what is allowed must be far from overflowing it.
        let worker = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(|| {
                let scope = json!({"input": {"a": [true]}});
                let levels = MAX_EXPRESSION_DEPTH;
                // `!(!(` is four levels and `size(` one: nearly as deep as allowed.
                let repeats = (levels - 1) / 4;
                let nested = format!(
                    "{}size(input.a) == 1{}",
                    "!(!(".repeat(repeats),
                    "))".repeat(repeats)
                );
                assert!(holds(&nested, &scope));
                let lists = format!("{}true{}", "[".repeat(levels), "]".repeat(levels));
                assert!(parse(&lists).unwrap().evaluate(&scope).is_ok());
                // `&&` chains are flat: as long as allowed, they do not nest.
                let chain = format!("{}true", "true&&".repeat((MAX_EXPRESSION_CHARS - 4) / 6));
                assert!(matches!(parse(&chain).unwrap(), Expr::All(ref operands) if operands.len() > 600));
                assert!(holds(&chain, &scope));
            })
            .unwrap();
        worker.join().unwrap();
    }

    #[test]
    fn a_list_copying_more_than_its_bound_is_an_error() {
        let big = "x".repeat(MAX_LIST_BYTES / 2);
        let scope = json!({"input": {"big": big}});
        assert!(
            parse("size([input.big]) == 1")
                .unwrap()
                .holds(&scope)
                .unwrap()
        );
        let err = parse("size([input.big, input.big, input.big]) == 3")
            .unwrap()
            .holds(&scope)
            .unwrap_err();
        assert!(err.to_string().contains("more than 1048576 bytes"), "{err}");
    }

    #[test]
    fn errors_quote_long_names_and_strings_briefly() {
        let name = "n".repeat(1000);
        let err = parse(&format!("{name}.x")).unwrap_err();
        assert!(err.message.len() < 200, "{err}");
        let err = parse(&format!("input.a == 1 '{}'", "s".repeat(1000))).unwrap_err();
        assert!(err.message.len() < 200, "{err}");
    }

    #[test]
    fn step_references_are_found() {
        let expr = parse("steps.a.x == 1 && (has(steps.b) || input.c)").unwrap();
        assert_eq!(expr.step_references(), vec!["a", "b"]);
    }
}
