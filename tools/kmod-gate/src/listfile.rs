//! The text format the gate's lists share: one entry a line, `#` starting a
//! comment (also after an entry), blank lines ignored.

use std::io;
use std::path::Path;

/// The words of each line that holds an entry, with its 1-based number.
pub(crate) fn entries(text: &str) -> impl Iterator<Item = (usize, &str, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(number, line)| {
        let content = line.split('#').next().unwrap_or("").trim();
        (!content.is_empty()).then(|| (number + 1, content, content.split_whitespace().collect()))
    })
}

/// Reads the list at `path` and parses it with `parse`; a parse error
/// names the file.
pub(crate) fn read<T>(path: &Path, parse: fn(&str) -> Result<T, String>) -> io::Result<T> {
    let text = std::fs::read_to_string(path)?;
    parse(&text).map_err(|message| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {message}", path.display()),
        )
    })
}
