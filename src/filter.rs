//! RFC 7644 3.4.2.2 filters: a hand-written parser (one function per grammar rule),
//! a printer, a schema check and an evaluator with per-attribute case-exactness.

use crate::caseless::compare_form;
use crate::error::{ErrorKind, ScimError};
use crate::schema::{AttrDef, AttrType, ResourceKind};
use crate::time::parse_nanos;
use serde_json::{Number, Value};
use std::cmp::Ordering;
use std::fmt;

/// Longest filter accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses, `not` and value paths.
pub const MAX_DEPTH: usize = 16;
/// Most comparisons in one filter.
pub const MAX_TERMS: usize = 64;

/// An attribute path: `[urn:]name[.sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// Schema URN prefix, when given.
    pub urn: Option<String>,
    /// Attribute name as written.
    pub name: String,
    /// Sub-attribute name, when given.
    pub sub: Option<String>,
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater or equal
    Ge,
    /// less than
    Lt,
    /// less or equal
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// A JSON string.
    Str(String),
    /// A JSON number.
    Num(Num),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Str(s) => write!(f, "{}", Value::String(s.clone())),
            CompValue::Num(n) => write!(f, "{n}"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => write!(f, "null"),
        }
    }
}

/// A number in a filter: compared by its value, printed as written. serde_json's parser
/// is not correctly rounded, so the shortest text of a parsed float (what `Number`
/// prints) can read back as a different float: `1.1111e54` parses to a value that prints
/// as `1.1111000000000001e54`.
#[derive(Debug, Clone, PartialEq)]
pub struct Num {
    text: String,
    value: Number,
}

impl Num {
    /// The number's value.
    pub fn value(&self) -> &Number {
        &self.value
    }
}

impl From<i64> for Num {
    fn from(n: i64) -> Self {
        Num {
            text: n.to_string(),
            value: n.into(),
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `path op value`
    Compare(AttrPath, CompareOp, CompValue),
    /// `path pr`
    Present(AttrPath),
    /// `a and b`
    And(Box<Filter>, Box<Filter>),
    /// `a or b`
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`
    Not(Box<Filter>),
    /// `attr[filter]`
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, parent_and: bool) -> fmt::Result {
        match self {
            Filter::Or(..) if parent_and => write!(f, "({self})"),
            _ => write!(f, "{self}"),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare(p, op, v) => write!(f, "{p} {} {v}", op.as_str()),
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::And(a, b) => {
                a.fmt_operand(f, true)?;
                write!(f, " and ")?;
                match **b {
                    Filter::And(..) => write!(f, "({b})"),
                    _ => b.fmt_operand(f, true),
                }
            }
            Filter::Or(a, b) => match **b {
                Filter::Or(..) => write!(f, "{a} or ({b})"),
                _ => write!(f, "{a} or {b}"),
            },
            Filter::Not(a) => write!(f, "not ({a})"),
            Filter::ValuePath(p, inner) => write!(f, "{p}[{inner}]"),
        }
    }
}

/// A parsed PATCH path: `attrPath`, or `attr[filter][.sub]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with its sub-attribute when the path has no filter).
    pub attr: AttrPath,
    /// The value filter, for `attr[filter]` paths.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter: `emails[type eq "work"].value`.
    pub sub_after: Option<String>,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    terms: usize,
}

fn err(kind: ErrorKind, msg: String) -> ScimError {
    ScimError::new(kind, msg)
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, what: &str, kind: ErrorKind) -> Result<Self, ScimError> {
        if src.len() > MAX_LEN {
            return Err(err(
                kind,
                format!("The {what} is longer than {MAX_LEN} characters"),
            ));
        }
        Ok(Parser {
            src,
            pos: 0,
            depth: 0,
            terms: 0,
        })
    }

    fn fail(&self, msg: impl fmt::Display) -> ScimError {
        err(
            ErrorKind::InvalidFilter,
            format!("{msg} at position {}", self.pos + 1),
        )
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| *c == ' ' || *c == '\t') {
            self.pos += c.len_utf8();
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// What the next token looks like, for error messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of filter".into(),
            Some(_) => {
                let tok: String = self
                    .rest()
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .take(24)
                    .collect();
                format!("'{tok}'")
            }
        }
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            // Point at the bracket just consumed.
            return Err(err(
                ErrorKind::InvalidFilter,
                format!(
                    "Filter nests deeper than {MAX_DEPTH} levels at position {}",
                    self.pos
                ),
            ));
        }
        Ok(())
    }

    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '$')))
            .map_or(rest.len(), |(i, _)| i);
        self.pos += len;
        rest.get(..len).unwrap_or("")
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        let rest = self.rest();
        rest.get(..kw.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(kw))
            && !rest
                .get(kw.len()..)
                .and_then(|r| r.chars().next())
                .is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '$')
                })
    }

    // FILTER = or-expression
    fn filter(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        let mut left = self.and_expr(in_value_path)?;
        loop {
            self.skip_ws();
            if !self.peek_keyword("or") {
                return Ok(left);
            }
            self.pos += 2;
            let right = self.and_expr(in_value_path)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
    }

    fn and_expr(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        let mut left = self.unary(in_value_path)?;
        loop {
            self.skip_ws();
            if !self.peek_keyword("and") {
                return Ok(left);
            }
            self.pos += 3;
            let right = self.unary(in_value_path)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        self.skip_ws();
        if self.peek_keyword("not") {
            self.pos += 3;
            self.skip_ws();
            if self.peek() != Some('(') {
                return Err(self.fail(format!(
                    "Expected '(' after 'not' but found {}",
                    self.found()
                )));
            }
            let inner = self.group(in_value_path)?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some('(') {
            return self.group(in_value_path);
        }
        self.attr_expr(in_value_path)
    }

    fn group(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        let open = self.pos;
        self.eat('(');
        self.enter()?;
        let inner = self.filter(in_value_path)?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(self.fail(format!(
                "Expected ')' to close the '(' at position {} but found {}",
                open + 1,
                self.found()
            )));
        }
        self.depth -= 1;
        Ok(inner)
    }

    fn attr_path(&mut self) -> Result<AttrPath, ScimError> {
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == '$' => {}
            _ => {
                return Err(self.fail(format!(
                    "Expected an attribute name but found {}",
                    self.found()
                )))
            }
        }
        let word = self.word();
        split_attr_path(word).ok_or_else(|| {
            err(
                ErrorKind::InvalidFilter,
                format!("Invalid attribute path '{word}' at position {}", start + 1),
            )
        })
    }

    fn attr_expr(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        let start = self.pos;
        let path = self.attr_path()?;
        if self.peek() == Some('[') {
            if in_value_path {
                return Err(self.fail("Value paths cannot be nested"));
            }
            if path.sub.is_some() {
                return Err(
                    self.fail("A value filter must follow an attribute, not a sub-attribute")
                );
            }
            let open = self.pos;
            self.eat('[');
            self.enter()?;
            let inner = self.filter(true)?;
            self.skip_ws();
            if !self.eat(']') {
                return Err(self.fail(format!(
                    "Expected ']' to close the '[' at position {} but found {}",
                    open + 1,
                    self.found()
                )));
            }
            self.depth -= 1;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        if in_value_path && path.sub.is_some() {
            return Err(err(
                ErrorKind::InvalidFilter,
                format!(
                    "Inside a value filter '{path}' must be a plain sub-attribute name at position {}",
                    start + 1
                ),
            ));
        }
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(err(
                ErrorKind::InvalidFilter,
                format!(
                    "Filter has more than {MAX_TERMS} comparisons at position {}",
                    start + 1
                ),
            ));
        }
        let before = self.pos;
        self.skip_ws();
        if self.pos == before {
            return Err(self.fail(format!(
                "Expected an operator after '{path}' but found {}",
                self.found()
            )));
        }
        let op_pos = self.pos;
        let op_word = self.word();
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::parse(op_word) else {
            self.pos = op_pos;
            return Err(self.fail(format!(
                "Expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '{path}' but found {}",
                self.found()
            )));
        };
        let before = self.pos;
        self.skip_ws();
        if self.pos == before || self.peek().is_none() {
            return Err(self.fail(format!(
                "Expected a value after '{}' but found {}",
                op.as_str(),
                self.found()
            )));
        }
        let value = self.comp_value()?;
        Ok(Filter::Compare(path, op, value))
    }

    fn comp_value(&mut self) -> Result<CompValue, ScimError> {
        match self.peek() {
            Some('"') => self.string().map(CompValue::Str),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            _ => {
                let start = self.pos;
                let w = self.word();
                match w {
                    "true" => Ok(CompValue::Bool(true)),
                    "false" => Ok(CompValue::Bool(false)),
                    "null" => Ok(CompValue::Null),
                    _ => {
                        self.pos = start;
                        Err(self.fail(format!(
                            "Expected a string, number, true, false or null but found {}",
                            self.found()
                        )))
                    }
                }
            }
        }
    }

    fn string(&mut self) -> Result<String, ScimError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut i = self.pos + 1;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    let lit = self.src.get(start..=i).unwrap_or("");
                    return match serde_json::from_str::<String>(lit) {
                        Ok(s) => {
                            self.pos = i + 1;
                            Ok(s)
                        }
                        Err(_) => Err(err(
                            ErrorKind::InvalidFilter,
                            format!("Invalid escape in the string at position {}", start + 1),
                        )),
                    };
                }
                _ => i += 1,
            }
        }
        Err(err(
            ErrorKind::InvalidFilter,
            format!("Unterminated string starting at position {}", start + 1),
        ))
    }

    fn number(&mut self) -> Result<CompValue, ScimError> {
        let start = self.pos;
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .map_or(rest.len(), |(i, _)| i);
        let lit = rest.get(..len).unwrap_or("");
        match serde_json::from_str::<Number>(lit) {
            Ok(value) => {
                self.pos += len;
                Ok(CompValue::Num(Num {
                    text: lit.to_string(),
                    value,
                }))
            }
            Err(_) => Err(err(
                ErrorKind::InvalidFilter,
                format!("Invalid number '{lit}' at position {}", start + 1),
            )),
        }
    }

    fn finish(&mut self, what: &str) -> Result<(), ScimError> {
        self.skip_ws();
        if self.peek().is_some() {
            return Err(self.fail(format!(
                "Expected 'and', 'or' or the end of the {what} but found {}",
                self.found()
            )));
        }
        Ok(())
    }
}

/// Splits `urn:...:name.sub` / `name.sub` into its parts; `None` when malformed.
pub fn split_attr_path(word: &str) -> Option<AttrPath> {
    let (urn, local) = if word.len() > 4 && word.get(..4)?.eq_ignore_ascii_case("urn:") {
        let idx = word.rfind(':')?;
        (Some(word.get(..idx)?.to_string()), word.get(idx + 1..)?)
    } else {
        (None, word)
    };
    let mut parts = local.split('.');
    let name = parts.next()?;
    let sub = parts.next();
    if parts.next().is_some() || !valid_name(name) || sub.is_some_and(|s| !valid_name(s)) {
        return None;
    }
    Some(AttrPath {
        urn,
        name: name.to_string(),
        sub: sub.map(str::to_string),
    })
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    match chars.next() {
        Some('$') => n == "$ref",
        Some(c) if c.is_ascii_alphabetic() => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }
        _ => false,
    }
}

impl Filter {
    /// Parses a filter expression.
    pub fn parse(src: &str) -> Result<Filter, ScimError> {
        let mut p = Parser::new(src, "filter", ErrorKind::InvalidFilter)?;
        p.skip_ws();
        if p.peek().is_none() {
            return Err(err(ErrorKind::InvalidFilter, "The filter is empty".into()));
        }
        let f = p.filter(false)?;
        p.finish("filter")?;
        Ok(f)
    }

    /// Checks every attribute path against a resource type's schema: unknown attributes
    /// and operators that make no sense for the attribute's type are `invalidFilter`.
    pub fn check(&self, kind: ResourceKind) -> Result<(), ScimError> {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.check(kind)?;
                b.check(kind)
            }
            Filter::Not(a) => a.check(kind),
            Filter::Present(p) => resolve_leaf(kind, None, p).map(|_| ()),
            Filter::Compare(p, op, v) => {
                let def = resolve_leaf(kind, None, p)?;
                check_operand(p, def, *op, v)
            }
            Filter::ValuePath(p, inner) => {
                let parent = resolve(kind, p)?;
                if parent.ty != AttrType::Complex {
                    return Err(ScimError::new(
                        ErrorKind::InvalidFilter,
                        format!("'{p}' is not a complex attribute and cannot take a value filter"),
                    ));
                }
                inner.check_inner(kind, parent)
            }
        }
    }

    fn check_inner(&self, kind: ResourceKind, parent: &'static AttrDef) -> Result<(), ScimError> {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.check_inner(kind, parent)?;
                b.check_inner(kind, parent)
            }
            Filter::Not(a) => a.check_inner(kind, parent),
            Filter::Present(p) => resolve_leaf(kind, Some(parent), p).map(|_| ()),
            Filter::Compare(p, op, v) => {
                let def = resolve_leaf(kind, Some(parent), p)?;
                check_operand(p, def, *op, v)
            }
            Filter::ValuePath(..) => Err(ScimError::new(
                ErrorKind::InvalidFilter,
                "Value paths cannot be nested".to_string(),
            )),
        }
    }

    /// Whether the resource matches. Attributes absent from the resource do not match
    /// (except under `ne` and `not`).
    pub fn matches(&self, kind: ResourceKind, doc: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(kind, doc) && b.matches(kind, doc),
            Filter::Or(a, b) => a.matches(kind, doc) || b.matches(kind, doc),
            Filter::Not(a) => !a.matches(kind, doc),
            Filter::Present(p) => {
                let Ok(def) = resolve_leaf(kind, None, p) else {
                    return false;
                };
                values_at(kind, doc, p).iter().any(|v| present(v, def))
            }
            Filter::Compare(p, op, v) => {
                let Ok(def) = resolve_leaf(kind, None, p) else {
                    return false;
                };
                compare_all(&values_at(kind, doc, p), def, *op, v)
            }
            Filter::ValuePath(p, inner) => {
                let Ok(parent) = resolve(kind, p) else {
                    return false;
                };
                let Some(v) = container_of(kind, doc, p).and_then(|c| get_ci(c, parent.name))
                else {
                    return false;
                };
                match v {
                    Value::Array(items) => items.iter().any(|i| inner.matches_element(parent, i)),
                    other => inner.matches_element(parent, other),
                }
            }
        }
    }

    /// Evaluates a value filter against one element of a complex attribute.
    pub fn matches_element(&self, parent: &AttrDef, elem: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches_element(parent, elem) && b.matches_element(parent, elem),
            Filter::Or(a, b) => a.matches_element(parent, elem) || b.matches_element(parent, elem),
            Filter::Not(a) => !a.matches_element(parent, elem),
            Filter::Present(p) => match parent.sub_attr(&p.name) {
                Some(def) => get_ci(elem, def.name).is_some_and(|v| present(v, def)),
                None => false,
            },
            Filter::Compare(p, op, v) => match parent.sub_attr(&p.name) {
                Some(def) => {
                    let vals: Vec<&Value> = get_ci(elem, def.name).into_iter().collect();
                    compare_all(&vals, def, *op, v)
                }
                None => false,
            },
            Filter::ValuePath(..) => false,
        }
    }
}

/// Parses a PATCH `path`.
pub fn parse_patch_path(src: &str) -> Result<PatchPath, ScimError> {
    let as_path =
        |e: ScimError| ScimError::new(ErrorKind::InvalidPath, e.detail().replace("filter", "path"));
    let mut p = Parser::new(src, "path", ErrorKind::InvalidPath)?;
    if src.trim().is_empty() {
        return Err(ScimError::new(ErrorKind::InvalidPath, "The path is empty"));
    }
    let attr = p.attr_path().map_err(as_path)?;
    let mut filter = None;
    let mut sub_after = None;
    if p.peek() == Some('[') {
        if attr.sub.is_some() {
            return Err(as_path(p.fail(
                "A value filter must follow an attribute, not a sub-attribute",
            )));
        }
        let open = p.pos;
        p.eat('[');
        p.enter().map_err(as_path)?;
        let inner = p.filter(true).map_err(as_path)?;
        p.skip_ws();
        if !p.eat(']') {
            return Err(as_path(p.fail(format!(
                "Expected ']' to close the '[' at position {} but found {}",
                open + 1,
                p.found()
            ))));
        }
        filter = Some(inner);
        if p.eat('.') {
            let start = p.pos;
            let w = p.word();
            if !valid_name(w) {
                return Err(ScimError::new(
                    ErrorKind::InvalidPath,
                    format!("Expected a sub-attribute name at position {}", start + 1),
                ));
            }
            sub_after = Some(w.to_string());
        }
    }
    p.skip_ws();
    if p.peek().is_some() {
        return Err(ScimError::new(
            ErrorKind::InvalidPath,
            format!(
                "Unexpected {} at position {} in the path",
                p.found(),
                p.pos + 1
            ),
        ));
    }
    Ok(PatchPath {
        attr,
        filter,
        sub_after,
    })
}

fn unknown(p: &AttrPath) -> ScimError {
    ScimError::new(ErrorKind::InvalidFilter, format!("Unknown attribute '{p}'"))
}

/// The top-level attribute a path names (ignoring its sub-attribute).
pub fn resolve(kind: ResourceKind, p: &AttrPath) -> Result<&'static AttrDef, ScimError> {
    kind.resolve(p.urn.as_deref(), &p.name)
        .map(|f| f.attr)
        .ok_or_else(|| unknown(p))
}

/// The leaf a path compares: the sub-attribute, or the implicit `value` of a multi-valued
/// complex attribute (`emails co "x"`).
fn resolve_leaf(
    kind: ResourceKind,
    parent: Option<&'static AttrDef>,
    p: &AttrPath,
) -> Result<&'static AttrDef, ScimError> {
    let top = match parent {
        Some(par) => par.sub_attr(&p.name).ok_or_else(|| {
            ScimError::new(
                ErrorKind::InvalidFilter,
                format!("Unknown attribute '{}.{}'", par.name, p.name),
            )
        })?,
        None => resolve(kind, p)?,
    };
    match (&p.sub, top.ty) {
        (Some(s), AttrType::Complex) => top.sub_attr(s).ok_or_else(|| unknown(p)),
        (Some(_), _) => Err(unknown(p)),
        (None, AttrType::Complex) => top.sub_attr("value").ok_or_else(|| {
            ScimError::new(
                ErrorKind::InvalidFilter,
                format!("'{p}' is complex: name one of its sub-attributes"),
            )
        }),
        (None, _) => Ok(top),
    }
}

fn check_operand(
    p: &AttrPath,
    def: &AttrDef,
    op: CompareOp,
    v: &CompValue,
) -> Result<(), ScimError> {
    let bad = |msg: String| Err(ScimError::new(ErrorKind::InvalidFilter, msg));
    let ordering = matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    );
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    if let CompValue::Null = v {
        if matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Ok(());
        }
        return bad(format!("'{}' cannot compare '{p}' with null", op.as_str()));
    }
    match def.ty {
        AttrType::Boolean => {
            if ordering || substring {
                return bad(format!(
                    "'{}' is not defined for the boolean attribute '{p}'",
                    op.as_str()
                ));
            }
            if !matches!(v, CompValue::Bool(_)) {
                return bad(format!("'{p}' is a boolean; compare it with true or false"));
            }
        }
        AttrType::Integer | AttrType::Decimal => {
            if substring {
                return bad(format!(
                    "'{}' is not defined for the numeric attribute '{p}'",
                    op.as_str()
                ));
            }
            if !matches!(v, CompValue::Num(_)) {
                return bad(format!("'{p}' is a number; compare it with a number"));
            }
        }
        AttrType::DateTime => match v {
            CompValue::Str(s) => {
                if let Err(why) = parse_nanos(s) {
                    return bad(format!("'{s}' is not a date-time for '{p}': {why}"));
                }
            }
            _ => {
                return bad(format!(
                    "'{p}' is a dateTime; compare it with an RFC 3339 date-time string"
                ))
            }
        },
        AttrType::Binary | AttrType::Reference if ordering => {
            return bad(format!(
                "'{}' is not defined for the {} attribute '{p}'",
                op.as_str(),
                if def.ty == AttrType::Binary {
                    "binary"
                } else {
                    "reference"
                }
            ));
        }
        _ => {
            if !matches!(v, CompValue::Str(_)) {
                return bad(format!(
                    "'{p}' is a string; compare it with a quoted string"
                ));
            }
        }
    }
    Ok(())
}

/// A JSON object member looked up case-insensitively (stored documents use canonical
/// names, but hand-written requests may not).
pub fn get_ci<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// [`get_ci`], for changing the member.
pub fn get_mut_ci<'v>(v: &'v mut Value, name: &str) -> Option<&'v mut Value> {
    v.as_object_mut()?
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn container_of<'v>(kind: ResourceKind, doc: &'v Value, p: &AttrPath) -> Option<&'v Value> {
    match kind.resolve(p.urn.as_deref(), &p.name)?.extension {
        Some(ext) => get_ci(doc, ext.id),
        None => Some(doc),
    }
}

/// Every value a path reaches: one for a singular attribute, each element (or each
/// element's sub-attribute) for a multi-valued one.
fn values_at<'v>(kind: ResourceKind, doc: &'v Value, p: &AttrPath) -> Vec<&'v Value> {
    let Some(found) = kind.resolve(p.urn.as_deref(), &p.name) else {
        return Vec::new();
    };
    let Some(v) = container_of(kind, doc, p).and_then(|c| get_ci(c, found.attr.name)) else {
        return Vec::new();
    };
    let sub = match (&p.sub, found.attr.ty) {
        (Some(s), _) => Some(s.as_str()),
        (None, AttrType::Complex) => Some("value"),
        (None, _) => None,
    };
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    match sub {
        Some(s) => items.into_iter().filter_map(|i| get_ci(i, s)).collect(),
        None => items,
    }
}

fn present(v: &Value, def: &AttrDef) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty() || def.ty != AttrType::Complex,
        _ => true,
    }
}

fn compare_all(values: &[&Value], def: &AttrDef, op: CompareOp, rhs: &CompValue) -> bool {
    match (op, rhs) {
        (CompareOp::Eq, CompValue::Null) => !values.iter().any(|v| present(v, def)),
        (CompareOp::Ne, CompValue::Null) => values.iter().any(|v| present(v, def)),
        (CompareOp::Ne, _) => !values.iter().any(|v| compare(v, def, CompareOp::Eq, rhs)),
        _ => values.iter().any(|v| compare(v, def, op, rhs)),
    }
}

fn compare(v: &Value, def: &AttrDef, op: CompareOp, rhs: &CompValue) -> bool {
    let ord = match (v, rhs) {
        (Value::String(a), CompValue::Str(b)) if def.ty == AttrType::DateTime => {
            match (parse_nanos(a), parse_nanos(b)) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => return false,
            }
        }
        (Value::String(a), CompValue::Str(b)) => {
            let (a, b) = (
                compare_form(a, def.case_exact),
                compare_form(b, def.case_exact),
            );
            match op {
                CompareOp::Co => return a.contains(b.as_ref()),
                CompareOp::Sw => return a.starts_with(b.as_ref()),
                CompareOp::Ew => return a.ends_with(b.as_ref()),
                _ => a.as_ref().cmp(b.as_ref()),
            }
        }
        (Value::Bool(a), CompValue::Bool(b)) => a.cmp(b),
        (Value::Number(a), CompValue::Num(b)) => match (a.as_f64(), b.value().as_f64()) {
            (Some(x), Some(y)) => match x.partial_cmp(&y) {
                Some(o) => o,
                None => return false,
            },
            _ => return false,
        },
        _ => return false,
    };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// If the filter is `attr eq "value"` on one of the given attributes (possibly and-ed
/// with more conditions), the attribute's canonical name and the value: the service
/// answers these from an index instead of a scan. An `or` of such terms yields several.
pub fn index_terms(
    f: &Filter,
    kind: ResourceKind,
    indexed: &[&str],
) -> Option<Vec<(&'static str, String)>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::Str(v)) if p.sub.is_none() => {
            let def = kind.resolve(p.urn.as_deref(), &p.name)?.attr;
            indexed
                .iter()
                .find(|n| def.name == **n)
                .map(|_| vec![(def.name, v.clone())])
        }
        Filter::And(a, b) => {
            index_terms(a, kind, indexed).or_else(|| index_terms(b, kind, indexed))
        }
        Filter::Or(a, b) => {
            let mut l = index_terms(a, kind, indexed)?;
            l.extend(index_terms(b, kind, indexed)?);
            Some(l)
        }
        _ => None,
    }
}
