//! The copy itself, over the copy port alone: every listed table read from
//! the source in bounded batches (from a cursor, never an offset), written
//! into the destination in one transaction, its rows fingerprinted as they
//! go and again as the destination reads them back once committed.

use mamori_ports::{Cell, CopyCursor, CopyStart, CopyStore, CopyTable, CopyWriter, COPY_TABLES};

/// Rows read and written at a time: memory stays bounded whatever the
/// size of a table (the audit log may hold tens of millions).
const BATCH: usize = 1_000;

/// Rows between two progress lines in the log.
const PROGRESS_EVERY: u64 = 200_000;

/// What a table's rows hold, whatever their order: how many, and the sum
/// of every row's SHA-256 (its first 128 bits, modulo 2^128). Two sides
/// that differ in any cell of any row differ here, but for a chance of
/// 2^-128.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// Rows seen.
    pub rows: u64,
    sum: u128,
}

impl Fingerprint {
    /// Counts `row` in.
    fn add(&mut self, row: &[Cell]) {
        let mut bytes = Vec::new();
        for cell in row {
            match cell {
                Cell::Null => bytes.push(0),
                Cell::Integer(v) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&v.to_be_bytes());
                }
                Cell::Text(s) => framed(&mut bytes, 2, s.as_bytes()),
                Cell::Bytes(b) => framed(&mut bytes, 3, b),
            }
        }
        let digest = mamori_crypto::sha256(&bytes);
        let mut head = [0u8; 16];
        head.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(head));
        self.rows += 1;
    }
}

/// A tag, a length and `data`, so no two rows encode alike.
fn framed(out: &mut Vec<u8>, tag: u8, data: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(data.len() as u64).to_be_bytes());
    out.extend_from_slice(data);
}

/// One table, copied and compared.
#[derive(Debug, Clone)]
pub struct TableReport {
    /// The table.
    pub name: &'static str,
    /// Rows the source counts.
    pub source_rows: u64,
    /// Rows the destination counts once the copy is committed.
    pub destination_rows: u64,
    /// The rows read from the source and written.
    pub copied: Fingerprint,
    /// The rows the destination reads back.
    pub read_back: Fingerprint,
}

impl TableReport {
    /// Whether both sides count the same rows and hold the same cells.
    pub fn is_identical(&self) -> bool {
        self.source_rows == self.destination_rows
            && self.copied.rows == self.source_rows
            && self.copied == self.read_back
    }
}

/// Copies every listed table from `source` into `target` (empty) in one
/// transaction, then reads the destination back; each table's report, in
/// the order copied.
pub(super) async fn copy_all(
    source: &dyn CopyStore,
    target: &dyn CopyStore,
    destination: &str,
) -> anyhow::Result<Vec<TableReport>> {
    let mut writer = match target.begin_copy().await? {
        CopyStart::Ready(w) => w,
        CopyStart::NotEmpty(table) => anyhow::bail!("{}", super::not_empty(destination, table)),
    };
    let mut copied = Vec::with_capacity(COPY_TABLES.len());
    for &table in COPY_TABLES {
        let columns = columns(source, target, table).await?;
        let source_rows = source.count_rows(table).await?;
        let fingerprint = copy_table(source, writer.as_mut(), table, &columns).await?;
        tracing::info!(table = table.name, rows = fingerprint.rows, "copied");
        copied.push((table, columns, source_rows, fingerprint));
    }
    writer.commit().await?;
    let mut reports = Vec::with_capacity(copied.len());
    for (table, columns, source_rows, fingerprint) in copied {
        reports.push(TableReport {
            name: table.name,
            source_rows,
            destination_rows: target.count_rows(table).await?,
            copied: fingerprint,
            read_back: read_back(target, table, &columns).await?,
        });
    }
    Ok(reports)
}

/// The columns of `table`, which both sides must store alike (a column
/// only one side has would be lost, or left to its default).
async fn columns(
    source: &dyn CopyStore,
    target: &dyn CopyStore,
    table: CopyTable,
) -> anyhow::Result<Vec<String>> {
    let from = source.table_shape(table).await?.columns;
    let to = target.table_shape(table).await?.columns;
    let only_from: Vec<&String> = from.iter().filter(|c| !to.contains(c)).collect();
    let only_to: Vec<&String> = to.iter().filter(|c| !from.contains(c)).collect();
    if !only_from.is_empty() || !only_to.is_empty() {
        anyhow::bail!(
            "the table {} differs: columns only in the source {only_from:?}, only in the \
             destination {only_to:?}",
            table.name
        );
    }
    Ok(from)
}

/// Copies one table, batch by batch; what was copied.
async fn copy_table(
    source: &dyn CopyStore,
    writer: &mut dyn CopyWriter,
    table: CopyTable,
    columns: &[String],
) -> anyhow::Result<Fingerprint> {
    let mut cursor = CopyCursor::start();
    let mut fingerprint = Fingerprint::default();
    loop {
        let rows = source.read_rows(table, columns, &cursor, BATCH).await?;
        if rows.is_empty() {
            return Ok(fingerprint);
        }
        cursor.advance(table, columns, &rows)?;
        let before = fingerprint.rows;
        for row in &rows {
            fingerprint.add(row);
        }
        let n = rows.len() as u64;
        let written = writer.write_rows(table, columns, rows).await?;
        if written != n {
            anyhow::bail!("{}: {written} rows written of {n}", table.name);
        }
        if before / PROGRESS_EVERY != fingerprint.rows / PROGRESS_EVERY {
            tracing::info!(table = table.name, rows = fingerprint.rows, "copying");
        }
    }
}

/// What `table` holds on `store`, read batch by batch.
async fn read_back(
    store: &dyn CopyStore,
    table: CopyTable,
    columns: &[String],
) -> anyhow::Result<Fingerprint> {
    let mut cursor = CopyCursor::start();
    let mut fingerprint = Fingerprint::default();
    loop {
        let rows = store.read_rows(table, columns, &cursor, BATCH).await?;
        if rows.is_empty() {
            return Ok(fingerprint);
        }
        cursor.advance(table, columns, &rows)?;
        for row in &rows {
            fingerprint.add(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(rows: &[Vec<Cell>]) -> Fingerprint {
        let mut f = Fingerprint::default();
        for r in rows {
            f.add(r);
        }
        f
    }

    /// Any changed cell changes the fingerprint, and so does a cell moved
    /// into the next one; the order of rows does not.
    #[test]
    fn a_fingerprint_tells_rows_apart_but_not_their_order() {
        let a = vec![Cell::Text("ab".into()), Cell::Bytes(vec![0, 1])];
        let b = vec![Cell::Integer(7), Cell::Null];
        assert_eq!(
            print(&[a.clone(), b.clone()]),
            print(&[b.clone(), a.clone()])
        );
        let shifted = vec![Cell::Text("a".into()), Cell::Text("b".into())];
        let joined = vec![Cell::Text("ab".into()), Cell::Text(String::new())];
        assert_ne!(print(&[shifted]), print(&[joined]));
        let bytes = vec![Cell::Text("ab".into()), Cell::Bytes(vec![0, 2])];
        assert_ne!(print(&[a.clone(), b.clone()]), print(&[bytes, b.clone()]));
        assert_ne!(
            print(&[vec![Cell::Null]]),
            print(&[vec![Cell::Text(String::new())]])
        );
        assert_ne!(
            print(&[vec![Cell::Integer(0)]]),
            print(&[vec![Cell::Bytes(vec![0; 8])]])
        );
        assert_ne!(print(std::slice::from_ref(&a)), print(&[a.clone(), a]));
    }
}
