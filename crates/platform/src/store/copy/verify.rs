//! The proof of a copy: an order-independent digest of a table's rows, taken while copying
//! from the source and again by reading the target back.

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AssertSqlSafe};

use super::plan::Plan;
use super::rows::{Cell, read_row};
use super::{CopyError, Side, db};

/// A table's digest: the wrapping sum of a hash per row, so the order rows come in does not
/// matter (text keys sort differently on SQLite and PostgreSQL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TableDigest(u128);

impl TableDigest {
    pub(super) fn add(&mut self, row: &[Cell]) {
        let mut h = Sha256::new();
        for cell in row {
            cell.hash(&mut h);
        }
        let out = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&out[..16]);
        self.0 = self.0.wrapping_add(u128::from_le_bytes(first));
    }
}

/// Reads a table back: its rows and their digest.
pub(super) async fn digest_table(
    conn: &mut AnyConnection,
    plan: &Plan,
) -> Result<(u64, TableDigest), CopyError> {
    let name = plan.table.name;
    let mut stream = sqlx::query(AssertSqlSafe(plan.select(false))).fetch(&mut *conn);
    let mut digest = TableDigest::default();
    let mut n = 0u64;
    while let Some(row) = stream.try_next().await.map_err(db(Side::Target, name))? {
        digest.add(&read_row(&row, plan).map_err(db(Side::Target, name))?);
        n += 1;
    }
    Ok((n, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_ignore_row_order_but_not_values() {
        let a = vec![Cell::Int(Some(1)), Cell::Text(Some("x".into()))];
        let b = vec![Cell::Int(Some(2)), Cell::Text(None)];
        let (mut d1, mut d2) = (TableDigest::default(), TableDigest::default());
        d1.add(&a);
        d1.add(&b);
        d2.add(&b);
        d2.add(&a);
        assert_eq!(d1, d2);
        let mut d3 = TableDigest::default();
        d3.add(&a);
        d3.add(&[Cell::Int(Some(2)), Cell::Text(Some(String::new()))]);
        assert_ne!(d1, d3, "NULL and empty text differ");
    }
}
