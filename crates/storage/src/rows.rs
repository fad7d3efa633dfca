//! The rows of a multi-row insert, written once and bound the way each backend takes them cheapest.
//!
//! SQLite gets `VALUES (?,?),(?,?)…` with every value bound on its own. PostgreSQL gets the rows as
//! one `jsonb` parameter, an array of row arrays unpacked with `jsonb_array_elements`: the statement
//! text is then the same for every batch, so each connection parses and plans it once instead of once
//! per row count (a 700-row, 41-column `VALUES` list took longer to parse and plan than to run), and
//! thousands of rows cost one bound value instead of tens of thousands.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use sqlx::AnyConnection;

use crate::{AnyQuery, Backend, SqlText};

/// SQLite allows 32,766 bound parameters per statement.
const SQLITE_MAX_PARAMS: usize = 30_000;

/// Rows per statement on PostgreSQL, where the rows are one parameter: enough for any batch, and a
/// bound on one statement's size.
const POSTGRES_MAX_ROWS: usize = 50_000;

/// A column's SQL type, which PostgreSQL needs to convert the JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int,
    Text,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Text(Cow<'a, str>),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null, Value::Int)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Cow::Owned(v))
    }
}

/// Rows of a fixed number of columns, filled value by value in column order.
#[derive(Debug, Clone)]
pub struct Rows<'a> {
    types: Vec<ColumnType>,
    values: Vec<Value<'a>>,
}

impl<'a> Rows<'a> {
    pub fn new(types: &[ColumnType]) -> Self {
        Self {
            types: types.to_vec(),
            values: Vec::new(),
        }
    }

    /// Appends the next value; every `types.len()` values make a row.
    pub fn push(&mut self, value: impl Into<Value<'a>>) -> &mut Self {
        self.values.push(value.into());
        self
    }

    pub fn len(&self) -> usize {
        self.values.len() / self.types.len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Inserts the rows: `head` (`INSERT INTO t (…) `), their source and `tail` (an `ON CONFLICT`
    /// clause, say), one statement per chunk. Returns the number of rows inserted or updated.
    pub async fn insert(
        &self,
        conn: &mut AnyConnection,
        head: &str,
        tail: &str,
    ) -> Result<u64, sqlx::Error> {
        let backend = Backend::of(conn);
        let mut affected = 0;
        for chunk in self.chunks(backend) {
            let mut sql = SqlText::new(backend, head);
            chunk.push_source(&mut sql);
            sql.push(tail);
            affected += chunk
                .bind(backend, sqlx::query(sql.into_sql()))
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        Ok(affected)
    }

    /// The rows split into as many statements as the backend needs.
    pub fn chunks(&self, backend: Backend) -> impl Iterator<Item = RowChunk<'_, 'a>> {
        let width = self.types.len().max(1);
        let rows = match backend {
            Backend::Postgres => POSTGRES_MAX_ROWS,
            Backend::Sqlite => (SQLITE_MAX_PARAMS / width).max(1),
        };
        self.values
            .chunks(rows * width)
            .map(move |values| RowChunk {
                types: &self.types,
                values,
            })
    }
}

/// The rows of one statement.
#[derive(Debug, Clone, Copy)]
pub struct RowChunk<'r, 'a> {
    types: &'r [ColumnType],
    values: &'r [Value<'a>],
}

impl<'r> RowChunk<'r, '_> {
    pub fn len(&self) -> usize {
        self.values.len() / self.types.len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Appends the rows' source to an `INSERT INTO t (…) ` statement: `VALUES (…),(…)` on SQLite,
    /// `SELECT … FROM jsonb_array_elements($n::jsonb)` on PostgreSQL. Bind them with [`Self::bind`]
    /// where the placeholders come.
    pub fn push_source(&self, sql: &mut SqlText) {
        match sql.backend {
            Backend::Sqlite => {
                sql.push("VALUES ").value_rows(self.len(), self.types.len());
            }
            Backend::Postgres => {
                sql.push("SELECT ");
                let mut index = itoa::Buffer::new();
                for (i, column) in self.types.iter().enumerate() {
                    sql.push(if i == 0 { "(r->>" } else { ", (r->>" })
                        .push(index.format(i))
                        .push(match column {
                            ColumnType::Int => ")::bigint",
                            ColumnType::Text => ")",
                        });
                }
                sql.push(" FROM jsonb_array_elements(")
                    .param()
                    .push("::jsonb) AS r");
            }
        }
    }

    pub fn bind<'q>(&self, backend: Backend, mut query: AnyQuery<'q>) -> AnyQuery<'q>
    where
        'r: 'q,
    {
        match backend {
            Backend::Postgres => {
                // Serialising numbers, strings and nulls cannot fail.
                query.bind(serde_json::to_string(self).unwrap_or_default())
            }
            Backend::Sqlite => {
                for value in self.values {
                    query = match value {
                        Value::Null => query.bind(None::<i64>),
                        Value::Int(v) => query.bind(*v),
                        Value::Text(v) => query.bind(v.as_ref()),
                    };
                }
                query
            }
        }
    }
}

impl Serialize for RowChunk<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let width = self.types.len().max(1);
        let mut rows = serializer.serialize_seq(Some(self.len()))?;
        for row in self.values.chunks(width) {
            rows.serialize_element(row)?;
        }
        rows.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Rows<'static> {
        let mut rows = Rows::new(&[ColumnType::Text, ColumnType::Int, ColumnType::Int]);
        rows.push("a\"b").push(1).push(None::<i64>);
        rows.push("c".to_owned()).push(2).push(Some(3));
        rows
    }

    #[test]
    fn postgres_takes_the_rows_as_one_json_parameter() {
        let rows = sample();
        let chunks: Vec<_> = rows.chunks(Backend::Postgres).collect();
        assert_eq!(chunks.len(), 1);
        let mut sql = SqlText::new(Backend::Postgres, "INSERT INTO t (a, b, c) ");
        chunks[0].push_source(&mut sql);
        assert_eq!(
            sql.into_sql().0,
            "INSERT INTO t (a, b, c) SELECT (r->>0), (r->>1)::bigint, (r->>2)::bigint \
             FROM jsonb_array_elements($1::jsonb) AS r"
        );
        assert_eq!(
            serde_json::to_string(&chunks[0]).unwrap(),
            r#"[["a\"b",1,null],["c",2,3]]"#
        );
    }

    #[test]
    fn sqlite_takes_values_within_its_parameter_limit() {
        let rows = sample();
        let chunks: Vec<_> = rows.chunks(Backend::Sqlite).collect();
        assert_eq!(chunks.len(), 1);
        let mut sql = SqlText::new(Backend::Sqlite, "INSERT INTO t (a, b, c) ");
        chunks[0].push_source(&mut sql);
        assert_eq!(sql.num_params(), 6);
        assert_eq!(
            sql.into_sql().0,
            "INSERT INTO t (a, b, c) VALUES (?,?,?),(?,?,?)"
        );

        let mut many = Rows::new(&[ColumnType::Int; 3]);
        for i in 0..25_000 {
            many.push(i).push(i).push(i);
        }
        let sizes: Vec<usize> = many.chunks(Backend::Sqlite).map(|c| c.len()).collect();
        assert_eq!(sizes, [10_000, 10_000, 5_000]);
        assert_eq!(many.chunks(Backend::Postgres).count(), 1);
    }
}
