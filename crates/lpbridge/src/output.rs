//! Output formatting: `table` (comfy-table, for terminals), `json` (one array), `jsonl` (one
//! object a line) and `csv`. Records are written as they arrive: `json`, `jsonl` and `csv` never
//! hold more than one record, so listing 100,000 users streams. Only `table` buffers (it must
//! measure its columns), and it is meant for terminals.

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table (the default when stdout is a terminal).
    Table,
    /// One JSON array (the default when stdout is not a terminal).
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

impl Format {
    /// The format to use: the one asked for, else table on a terminal and JSON otherwise.
    pub fn resolve(requested: Option<Format>) -> Format {
        requested.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() {
                Format::Table
            } else {
                Format::Json
            }
        })
    }
}

/// Something printable as a row (table/csv) and as an object (json/jsonl).
pub trait Record: Serialize {
    /// Column names for table and CSV output.
    fn headers() -> &'static [&'static str];
    /// Cells, in the order of [`Record::headers`].
    fn row(&self) -> Vec<String>;
    /// Cells for `table` output, meant for people reading a terminal (default: [`Record::row`]).
    /// A record may shorten long lists here; CSV and JSON always carry everything.
    fn table_row(&self) -> Vec<String> {
        self.row()
    }
}

/// Writes records of one type in one format.
pub struct Emitter<W: Write> {
    format: Format,
    out: W,
    headers: &'static [&'static str],
    table: Option<comfy_table::Table>,
    count: u64,
}

impl<W: Write> Emitter<W> {
    pub fn new<R: Record>(format: Format, out: W) -> Self {
        let headers = R::headers();
        let table = (format == Format::Table).then(|| {
            let mut t = comfy_table::Table::new();
            t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            t.set_header(headers.iter().copied());
            t
        });
        Self {
            format,
            out,
            headers,
            table,
            count: 0,
        }
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn emit<R: Record>(&mut self, record: &R) -> std::io::Result<()> {
        debug_assert_eq!(R::headers(), self.headers);
        match self.format {
            Format::Json => {
                self.out
                    .write_all(if self.count == 0 { b"[\n  " } else { b",\n  " })?;
                serde_json::to_writer(&mut self.out, record)?;
            }
            Format::Jsonl => {
                serde_json::to_writer(&mut self.out, record)?;
                self.out.write_all(b"\n")?;
            }
            Format::Csv => {
                if self.count == 0 {
                    write_csv_row(&mut self.out, self.headers)?;
                }
                write_csv_row(&mut self.out, &record.row())?;
            }
            Format::Table => {
                if let Some(t) = self.table.as_mut() {
                    t.add_row(record.table_row());
                }
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Closes the array / prints the table / writes the CSV header of an empty result.
    pub fn finish(mut self) -> std::io::Result<W> {
        match self.format {
            Format::Json => {
                self.out
                    .write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
            }
            Format::Jsonl => {}
            Format::Csv => {
                if self.count == 0 {
                    write_csv_row(&mut self.out, self.headers)?;
                }
            }
            Format::Table => {
                if let Some(t) = self.table.take() {
                    if self.count == 0 {
                        writeln!(self.out, "(none)")?;
                    } else {
                        writeln!(self.out, "{t}")?;
                    }
                }
            }
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes one object: pretty JSON for `json`, one line for `jsonl`, otherwise as a one-row
/// table/CSV through its [`Record`] impl.
pub fn write_one<R: Record, W: Write>(format: Format, out: W, record: &R) -> std::io::Result<W> {
    match format {
        Format::Json => {
            let mut out = out;
            serde_json::to_writer_pretty(&mut out, record)?;
            out.write_all(b"\n")?;
            out.flush()?;
            Ok(out)
        }
        _ => {
            let mut e = Emitter::new::<R>(format, out);
            e.emit(record)?;
            e.finish()
        }
    }
}

/// One RFC 4180 row: fields with `,`, `"`, CR/LF or edge spaces are quoted, quotes doubled.
fn write_csv_row<W: Write, S: AsRef<str>>(out: &mut W, fields: &[S]) -> std::io::Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let f = f.as_ref();
        let quote = f.contains([',', '"', '\n', '\r']) || f.starts_with(' ') || f.ends_with(' ');
        if quote {
            out.write_all(b"\"")?;
            out.write_all(f.replace('"', "\"\"").as_bytes())?;
            out.write_all(b"\"")?;
        } else {
            out.write_all(f.as_bytes())?;
        }
    }
    out.write_all(b"\n")
}

/// Formats an optional value for a cell.
pub fn cell<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        email: String,
        groups: Vec<String>,
    }

    impl Record for Row {
        fn headers() -> &'static [&'static str] {
            &["email", "groups"]
        }
        fn row(&self) -> Vec<String> {
            vec![self.email.clone(), self.groups.join(";")]
        }
    }

    fn rows() -> Vec<Row> {
        vec![
            Row {
                email: "a@x.io".into(),
                groups: vec!["G1".into(), "G, 2".into()],
            },
            Row {
                email: "b@x.io".into(),
                groups: vec![],
            },
        ]
    }

    fn render(format: Format, rows: &[Row]) -> String {
        let mut e = Emitter::new::<Row>(format, Vec::new());
        for r in rows {
            e.emit(r).unwrap();
        }
        String::from_utf8(e.finish().unwrap()).unwrap()
    }

    #[test]
    fn json_is_one_valid_array() {
        let s = render(Format::Json, &rows());
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["groups"][1], "G, 2");
        let empty: serde_json::Value = serde_json::from_str(&render(Format::Json, &[])).unwrap();
        assert_eq!(empty, serde_json::json!([]));
    }

    #[test]
    fn jsonl_is_one_object_per_line() {
        let s = render(Format::Jsonl, &rows());
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["email"], "b@x.io");
        assert_eq!(render(Format::Jsonl, &[]), "");
    }

    #[test]
    fn csv_has_header_and_quotes() {
        let s = render(Format::Csv, &rows());
        assert_eq!(s, "email,groups\na@x.io,\"G1;G, 2\"\nb@x.io,\n");
        assert_eq!(render(Format::Csv, &[]), "email,groups\n");
    }

    #[test]
    fn csv_quotes_quotes_and_newlines_and_reparses() {
        let r = Row {
            email: "a\"b@x.io".into(),
            groups: vec!["line1\nline2".into()],
        };
        let s = render(Format::Csv, &[r]);
        assert_eq!(s, "email,groups\n\"a\"\"b@x.io\",\"line1\nline2\"\n");
        let mut rdr = csv::Reader::from_reader(s.as_bytes());
        let rec = rdr.records().next().unwrap().unwrap();
        assert_eq!(&rec[0], "a\"b@x.io");
        assert_eq!(&rec[1], "line1\nline2");
    }

    #[test]
    fn table_has_headers_and_cells() {
        let s = render(Format::Table, &rows());
        assert!(s.contains("email"));
        assert!(s.contains("a@x.io"));
        assert!(s.contains("G1;G, 2"));
        assert_eq!(render(Format::Table, &[]), "(none)\n");
    }

    #[test]
    fn write_one_json_is_an_object() {
        let out = write_one(Format::Json, Vec::new(), &rows()[0]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["email"], "a@x.io");
    }
}
