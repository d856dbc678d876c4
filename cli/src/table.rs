//! Plain-text output of the client commands: aligned columns, times and durations.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Columns padded to their widest cell, separated by two spaces; the last column is not padded.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_cells: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_cells).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[index]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `label  value` lines with the labels aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    pairs.iter().map(|(label, value)| format!("{label:<width$}  {value}\n")).collect()
}

/// A UTC time to the second.
pub fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A duration as people read it: `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    let seconds = duration.as_secs();
    match seconds {
        0 => format!("{millis}ms"),
        1..60 => format!("{:.1}s", duration.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// The time from `start` to `end` (or now, while running).
pub fn elapsed(start: &DateTime<Utc>, end: Option<&DateTime<Utc>>) -> String {
    let end = end.copied().unwrap_or_else(Utc::now);
    duration((end - *start).to_std().unwrap_or_default())
}

/// `text` cut to `limit` characters, with an ellipsis when cut.
pub fn shorten(text: &str, limit: usize) -> String {
    let single_line = text.replace(['\n', '\r'], " ");
    if single_line.chars().count() <= limit {
        return single_line;
    }
    let mut cut: String = single_line.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let rows = vec![
            vec!["a".to_owned(), "SUCCEEDED".to_owned(), "x".to_owned()],
            vec!["longer-name".to_owned(), "FAILED".to_owned(), "y y".to_owned()],
        ];
        assert_eq!(
            render(&["NAME", "STATUS", "NOTE"], &rows),
            "NAME         STATUS     NOTE\na            SUCCEEDED  x\nlonger-name  FAILED     y y\n"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(duration(Duration::from_secs(7380)), "2h03m");
    }

    #[test]
    fn long_text_is_shortened_on_one_line() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("two\nlines", 20), "two lines");
        assert_eq!(shorten("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn fields_align_their_labels() {
        assert_eq!(fields(&[("Status", "FAILED".into()), ("Id", "x".into())]), "Status  FAILED\nId      x\n");
    }
}
