//! Plain-text tables for the commands that list things (`dead-letters list`):
//! each column as wide as its widest cell, so the header and every row line up whatever
//! the values are.

/// Columns between two neighbours.
const GAP: &str = "  ";

/// A table of text cells under a header; every column is left-aligned.
pub(super) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra ones are ignored. A line break or tab
    /// in a cell becomes a space, so a row stays one line.
    pub(super) fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut row: Vec<String> = cells
            .into_iter()
            .take(self.header.len())
            .map(|c| c.replace(['\n', '\r', '\t'], " "))
            .collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// The header and the rows, one line each; no trailing spaces.
    pub(super) fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str(GAP);
                }
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The character offset of every cell in `line`, given the cells in order.
    fn offsets(line: &str, cells: &[&str]) -> Vec<usize> {
        let chars: Vec<char> = line.chars().collect();
        let mut at = 0;
        cells
            .iter()
            .map(|cell| {
                let want: Vec<char> = cell.chars().collect();
                let found = (at..=chars.len().saturating_sub(want.len()))
                    .find(|&i| chars[i..i + want.len()] == want[..])
                    .unwrap_or_else(|| panic!("{cell:?} not in {line:?} after {at}"));
                at = found + want.len();
                found
            })
            .collect()
    }

    #[test]
    fn every_column_starts_at_the_same_offset_in_the_header_and_the_rows() {
        let header = ["SEQ", "SINK", "TYPE", "ATTEMPTS", "ID", "ERROR"];
        let rows = [
            ["7", "console", "trade_opened", "1", "a:console", "refused"],
            [
                "123456789",
                "a-sink-with-a-very-long-name",
                "portfolio_update",
                "10",
                "0193b0c2-7e5d-7c4e-9a3b-5d6e7f8091a2:a-sink-with-a-very-long-name",
                "HTTP 400: the body is wrong",
            ],
            ["8", "tg", "ü€📈 wide", "3", "x", "line one\nline two"],
        ];
        let mut table = Table::new(&header);
        for row in &rows {
            table.row(row.iter().map(|c| (*c).to_owned()));
        }
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let starts = offsets(lines[0], &header);
        for (line, row) in lines[1..].iter().zip(&rows) {
            let cells: Vec<String> = row.iter().map(|c| c.replace('\n', " ")).collect();
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            assert_eq!(offsets(line, &cells), starts, "\n{text}");
        }
        assert!(
            text.lines().all(|l| l == l.trim_end()),
            "no trailing spaces"
        );
    }

    #[test]
    fn short_rows_are_padded_and_long_ones_cut() {
        let mut table = Table::new(&["A", "B"]);
        table.row(["1".to_owned()]);
        table.row(["1".to_owned(), "2".to_owned(), "3".to_owned()]);
        assert_eq!(table.render(), "A  B\n1\n1  2\n");
    }
}
