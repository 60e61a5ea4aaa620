//! The names a module must define because the C driver does: the list the
//! gate checks with `--c-names` (`kmod/c-names.txt` for ptm).

use std::io;
use std::path::Path;

use crate::listfile;

/// What a C name must be in the symbol table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CKind {
    /// An `STT_FUNC` symbol.
    Function,
    /// An `STT_OBJECT` symbol.
    Object,
}

impl CKind {
    /// The word used in the list.
    pub fn word(self) -> &'static str {
        match self {
            CKind::Function => "function",
            CKind::Object => "object",
        }
    }
}

/// Names that the module must define, each a function or an object.
///
/// The text format is one `name kind` pair per line, `kind` being
/// `function` or `object`; `#` starts a comment; blank lines are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CNames {
    names: Vec<(String, CKind)>,
}

impl CNames {
    /// No names: nothing is required.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses the text format described on [`CNames`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut names = Vec::new();
        for (number, content, words) in listfile::entries(text) {
            let (name, kind) = match words.as_slice() {
                [name, "function"] => (name, CKind::Function),
                [name, "object"] => (name, CKind::Object),
                _ => {
                    return Err(format!(
                        "line {number}: expected `name function` or `name object`, found `{content}`"
                    ));
                }
            };
            names.push(((*name).to_owned(), kind));
        }
        Ok(Self { names })
    }

    /// Reads and parses a list file.
    pub fn from_file(path: &Path) -> io::Result<Self> {
        listfile::read(path, Self::parse)
    }

    /// The names with their kinds, in the list's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, CKind)> {
        self.names.iter().map(|(n, k)| (n.as_str(), *k))
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_names_and_kinds_and_skips_comments() {
        let list = CNames::parse("# header\n\nptmwint object # mdb\nptmopen   function\n").unwrap();
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            [("ptmwint", CKind::Object), ("ptmopen", CKind::Function)]
        );
    }

    #[test]
    fn parse_rejects_a_missing_or_unknown_kind() {
        assert!(CNames::parse("ptmwint\n").unwrap_err().contains("line 1"));
        assert!(
            CNames::parse("ptmwint data\n")
                .unwrap_err()
                .contains("line 1")
        );
    }
}
