//! Source texts, locations inside them, and parse errors that name file, line and key.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use toml::de::{DeTable, DeValue};

/// A document as read: its name (a path, a URL) and its text. Kept alive by every value parsed
/// from it, so a line number can be computed whenever an error or a log line needs one.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceText {
    name: String,
    text: String,
}

impl SourceText {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            text: text.into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// Parses the text as `T`; any error names this source, the line and the dotted key.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, ParseError> {
        toml::from_str(&self.text).map_err(|e| {
            let span = e.span();
            ParseError {
                file: self.name.clone(),
                line: span.as_ref().map(|s| self.line_of(s.start)),
                key: span.and_then(|s| key_at(&self.text, &s)),
                message: e.message().to_owned(),
            }
        })
    }

    /// An error about the value at `span`, found by a check done after deserializing.
    pub(crate) fn error_at(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ParseError {
        ParseError {
            file: self.name.clone(),
            line: Some(self.line_of(span.start)),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    /// An error about the document as a whole.
    pub(crate) fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.name.clone(),
            line: None,
            key: None,
            message: message.into(),
        }
    }
}

/// Where a value was written: a source and the byte span of the value in it.
#[derive(Clone, Debug)]
pub struct Location {
    source: Arc<SourceText>,
    span: Range<usize>,
}

impl Location {
    pub(crate) fn new(source: &Arc<SourceText>, span: Range<usize>) -> Self {
        Self {
            source: Arc::clone(source),
            span,
        }
    }

    pub fn file(&self) -> &str {
        self.source.name()
    }

    pub fn line(&self) -> usize {
        self.source.line_of(self.span.start)
    }

    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// Another place in the same source, e.g. one element of a list set here.
    pub(crate) fn at(&self, span: Range<usize>) -> Self {
        Self::new(&self.source, span)
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.source, &other.source) && self.span == other.span
    }
}

impl Eq for Location {}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.file(), self.line())
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Plain<'a> {
            file: &'a str,
            line: usize,
        }
        Plain {
            file: self.file(),
            line: self.line(),
        }
        .serialize(s)
    }
}

/// A document that could not be parsed or holds a value that is not allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub file: String,
    /// 1-based; absent when the problem is the document as a whole.
    pub line: Option<usize>,
    /// Dotted key of the offending value, e.g. `network.allowed_cidrs[2]`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The dotted key of the innermost key or value whose span holds `error`.
///
/// serde reports only a byte span; the key is found again in toml's spanned parse tree. Tables
/// opened by a `[header]` span only their header, so the whole tree is searched.
fn key_at(text: &str, error: &Range<usize>) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    let mut best: Option<(usize, String)> = None;
    visit_table(root.get_ref(), "", error, &mut best);
    best.map(|(_, key)| key)
}

fn visit_table(
    table: &DeTable<'_>,
    prefix: &str,
    error: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        consider(&key.span(), &path, error, best);
        visit_value(value.get_ref(), &value.span(), &path, error, best);
    }
}

fn visit_value(
    value: &DeValue<'_>,
    span: &Range<usize>,
    path: &str,
    error: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    consider(span, path, error, best);
    match value {
        DeValue::Table(table) => visit_table(table, path, error, best),
        DeValue::Array(array) => {
            for (i, item) in array.iter().enumerate() {
                visit_value(
                    item.get_ref(),
                    &item.span(),
                    &format!("{path}[{i}]"),
                    error,
                    best,
                );
            }
        }
        _ => {}
    }
}

/// Keeps the narrowest span containing the error; on a tie the deeper key, visited later, wins.
fn consider(
    span: &Range<usize>,
    path: &str,
    error: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    let contains = span.start <= error.start && error.end <= span.end && span.start < span.end;
    let width = span.end - span.start;
    if contains && best.as_ref().is_none_or(|(w, _)| width <= *w) {
        *best = Some((width, path.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let src = SourceText::new("f", "a\nb\nc");
        assert_eq!(src.line_of(0), 1);
        assert_eq!(src.line_of(2), 2);
        assert_eq!(src.line_of(4), 3);
        assert_eq!(src.line_of(99), 3);
    }

    #[test]
    fn key_of_an_array_element_in_a_header_table() {
        let text = "[network]\nallowed_cidrs = [\"a\", \"b\",\n  \"c\"]\n";
        let at = text.find("\"c\"").unwrap();
        assert_eq!(
            key_at(text, &(at..at + 3)).as_deref(),
            Some("network.allowed_cidrs[2]")
        );
    }

    #[test]
    fn key_of_a_table_in_an_array_of_tables() {
        let text = "[[exec.rules]]\nprefix = [\"a\"]\n[[exec.rules]]\nbogus = 1\n";
        let at = text.find("bogus").unwrap();
        assert_eq!(
            key_at(text, &(at..at + 5)).as_deref(),
            Some("exec.rules[1].bogus")
        );
    }
}
