//! The expression language of `when` conditions and `${...}` input mappings.
//!
//! A small, CEL-like language over JSON values: literals (`null`, `true`, `42`, `1.5`, `"text"`
//! or `'text'`, lists `[1, 2]`), field paths rooted at `input` (the chain input) or `steps` (the
//! outputs of earlier steps: `steps.plan.files[0].path`, `steps["ci-gen"].ok`), comparisons
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

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// Where paths may start.
pub const ROOTS: &[&str] = &["input", "steps"];

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    List(Vec<Expr>),
    Path(Vec<Segment>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
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
            Token::Ident(name) => write!(f, "`{name}`"),
            Token::Number(number) => write!(f, "`{number}`"),
            Token::Str(text) => write!(f, "{text:?}"),
            Token::Op(op) => write!(f, "`{op}`"),
        }
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
                message: format!("`{text}` is not a number"),
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

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
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
            Token::Op("(") => {
                let inner = self.or()?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Op("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.or()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Token::Op("!") => Ok(Expr::Not(Box::new(self.unary()?))),
            Token::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "null" => Ok(Expr::Literal(Value::Null)),
                "has" => {
                    self.expect("(")?;
                    let Some(Token::Ident(root)) = self.peek().cloned() else {
                        return Err(self.unexpected("a field path"));
                    };
                    let root_column = self.column();
                    self.at += 1;
                    let path = self.path(root, root_column)?;
                    self.expect(")")?;
                    Ok(Expr::Has(path))
                }
                "size" => {
                    self.expect("(")?;
                    let inner = self.or()?;
                    self.expect(")")?;
                    Ok(Expr::Size(Box::new(inner)))
                }
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
                message: format!("unknown name `{root}`: paths start with `input` or `steps`"),
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

/// Parses an expression.
pub fn parse(source: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end_column: source.chars().count() + 1,
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

    fn visit_paths(&self, visit: &mut impl FnMut(&[Segment])) {
        match self {
            Expr::Literal(_) => {}
            Expr::List(items) => items.iter().for_each(|item| item.visit_paths(visit)),
            Expr::Path(path) | Expr::Has(path) => visit(path),
            Expr::Not(inner) | Expr::Size(inner) => inner.visit_paths(visit),
            Expr::And(left, right) | Expr::Or(left, right) | Expr::Compare(left, _, right) => {
                left.visit_paths(visit);
                right.visit_paths(visit);
            }
        }
    }

    /// The value of the expression over `scope` (`{"input": .., "steps": {..}}`).
    pub fn evaluate(&self, scope: &Value) -> Result<Value, EvalError> {
        Ok(match self {
            Expr::Literal(value) => value.clone(),
            Expr::List(items) => Value::Array(
                items
                    .iter()
                    .map(|item| item.evaluate(scope))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Path(path) => lookup(scope, path).cloned().unwrap_or(Value::Null),
            Expr::Has(path) => Value::Bool(lookup(scope, path).is_some()),
            Expr::Not(inner) => Value::Bool(!truthy(&inner.evaluate(scope)?)?),
            Expr::And(left, right) => {
                Value::Bool(truthy(&left.evaluate(scope)?)? && truthy(&right.evaluate(scope)?)?)
            }
            Expr::Or(left, right) => {
                Value::Bool(truthy(&left.evaluate(scope)?)? || truthy(&right.evaluate(scope)?)?)
            }
            Expr::Size(inner) => match inner.evaluate(scope)? {
                Value::String(text) => Value::from(text.chars().count()),
                Value::Array(items) => Value::from(items.len()),
                Value::Object(fields) => Value::from(fields.len()),
                Value::Null => Value::from(0),
                other => return Err(EvalError(format!("size() of {}", kind(&other)))),
            },
            Expr::Compare(left, op, right) => Value::Bool(compare(
                &left.evaluate(scope)?,
                *op,
                &right.evaluate(scope)?,
            )?),
        })
    }

    /// Evaluates a condition: true, false, or `null` (false).
    pub fn holds(&self, scope: &Value) -> Result<bool, EvalError> {
        truthy(&self.evaluate(scope)?)
    }
}

fn lookup<'a>(scope: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(scope, |value, segment| match segment {
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

    #[test]
    fn type_mistakes_are_errors_not_false() {
        let scope = json!({"input": {"n": 1, "s": "x"}});
        assert!(parse("input.n < input.s").unwrap().holds(&scope).is_err());
        assert!(parse("input.n").unwrap().holds(&scope).is_err());
    }

    #[test]
    fn step_references_are_found() {
        let expr = parse("steps.a.x == 1 && (has(steps.b) || input.c)").unwrap();
        assert_eq!(expr.step_references(), vec!["a", "b"]);
    }
}
