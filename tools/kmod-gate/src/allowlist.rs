//! The list of undefined symbols a module may import.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use crate::listfile;

/// Names the module may leave undefined, for krtld to resolve against the
/// kernel at load time.
///
/// The text format is one symbol per line; `#` starts a comment, which may
/// follow a symbol on the same line; blank lines are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    names: BTreeSet<String>,
}

impl Allowlist {
    /// An allowlist that permits no undefined symbol at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses the text format described on [`Allowlist`].
    ///
    /// A line holding more than one word (before any comment) is an error,
    /// so that a mistyped line cannot silently allow something else.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut names = BTreeSet::new();
        for (number, content, words) in listfile::entries(text) {
            let [name] = words.as_slice() else {
                return Err(format!(
                    "line {number}: expected one symbol, found `{content}`"
                ));
            };
            names.insert((*name).to_owned());
        }
        Ok(Self { names })
    }

    /// Reads and parses an allowlist file.
    pub fn from_file(path: &Path) -> io::Result<Self> {
        listfile::read(path, Self::parse)
    }

    /// Builds an allowlist from an iterator of names.
    pub fn from_names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            names: names.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `name` may stay undefined.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Number of names on the list.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_skips_comments_and_blank_lines() {
        let list = Allowlist::parse("# header\n\nWR\nmemcpy   # why\n  putq  \n").unwrap();
        assert_eq!(list.iter().collect::<Vec<_>>(), ["WR", "memcpy", "putq"]);
        assert!(list.contains("memcpy"));
        assert!(!list.contains("why"));
    }

    #[test]
    fn parse_rejects_two_words_on_a_line() {
        let err = Allowlist::parse("WR putq\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}
