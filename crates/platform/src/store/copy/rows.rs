//! A row in transit between the two databases: typed cells read from either backend, bound
//! back with their type, and hashed unambiguously for the copy's digest.

use sha2::{Digest, Sha256};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::plan::{Kind, Plan};

/// One value in transit, typed by its column's kind (so a NULL is bound with its type).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Cell {
    pub(super) fn read(row: &AnyRow, index: usize, kind: Kind) -> Result<Cell, sqlx::Error> {
        Ok(match kind {
            Kind::Int => Cell::Int(row.try_get(index)?),
            Kind::Real => Cell::Real(row.try_get(index)?),
            Kind::Text => Cell::Text(row.try_get(index)?),
            Kind::Blob => Cell::Blob(row.try_get(index)?),
        })
    }

    pub(super) fn bind(self, query: Query<'_, Any, AnyArguments>) -> Query<'_, Any, AnyArguments> {
        match self {
            Cell::Int(v) => query.bind(v),
            Cell::Real(Some(v)) => query.bind(v),
            // sqlx 0.9.0's `Any` swaps the typed NULLs of f32 and f64 (sqlx issue #4284): an
            // f64 NULL reaches PostgreSQL as `float4`, and the statement, prepared with that
            // type and cached, then rejects the next non-NULL f64 ("incorrect binary data
            // format"). An f32 NULL is sent as `float8`, which is what the column is.
            Cell::Real(None) => query.bind(Option::<f32>::None),
            Cell::Text(v) => query.bind(v),
            Cell::Blob(v) => query.bind(v),
        }
    }

    /// Feeds an unambiguous encoding of the value to a hash.
    pub(super) fn hash(&self, h: &mut Sha256) {
        match self {
            Cell::Int(None) | Cell::Real(None) | Cell::Text(None) | Cell::Blob(None) => {
                h.update([0]);
            }
            Cell::Int(Some(v)) => {
                h.update([1]);
                h.update(v.to_le_bytes());
            }
            Cell::Real(Some(v)) => {
                h.update([2]);
                h.update(v.to_bits().to_le_bytes());
            }
            Cell::Text(Some(s)) => {
                h.update([3]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            Cell::Blob(Some(b)) => {
                h.update([4]);
                h.update((b.len() as u64).to_le_bytes());
                h.update(b);
            }
        }
    }
}
pub(super) fn read_row(row: &AnyRow, plan: &Plan) -> Result<Vec<Cell>, sqlx::Error> {
    plan.columns
        .iter()
        .enumerate()
        .map(|(i, &(_, kind))| Cell::read(row, i, kind))
        .collect()
}
