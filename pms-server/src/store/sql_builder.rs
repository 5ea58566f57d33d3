//! SQL assembled at run time (optional filters, multi-row `VALUES`) for the generic stores.
//!
//! sqlx's `QueryBuilder` lends its arguments to the query it builds: the query borrows the
//! builder. Code generic over the backend cannot let that borrow end before the builder is
//! dropped (SQLite's arguments carry a lifetime, and a bound on `B::Arguments<'q>` ties it to the
//! borrow), so it does not compile there. A [`SqlBuilder`] hands its text and arguments over
//! instead ([`SqlBuilder::into_parts`], then `sqlx::query_with` / `query_as_with`). It writes the
//! same text as `QueryBuilder` (each backend's own placeholders: `$1` or `?`).

use sqlx::error::BoxDynError;
use sqlx::{Arguments, Database};

use super::Param;

/// SQL text and its arguments, bound in the order their placeholders appear.
pub struct SqlBuilder<'a, B: Database> {
    sql: String,
    args: B::Arguments<'a>,
    /// The first argument that failed to encode (reported by [`SqlBuilder::into_parts`]).
    error: Option<BoxDynError>,
}

impl<'a, B: Database> SqlBuilder<'a, B> {
    /// A statement starting with `sql`.
    pub fn new(sql: &str) -> Self {
        SqlBuilder {
            sql: sql.to_owned(),
            args: B::Arguments::default(),
            error: None,
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds `value` and appends its placeholder.
    pub fn push_bind<T: Param<'a, B>>(&mut self, value: T) -> &mut Self {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e);
        }
        // Writing to a String cannot fail.
        let _ = self.args.format_placeholder(&mut self.sql);
        self
    }

    /// Appends `VALUES (…), (…)`: one parenthesised row per item, holding the values
    /// `push_row` binds, comma-separated.
    pub fn push_values<I: IntoIterator>(
        &mut self,
        rows: I,
        mut push_row: impl FnMut(&mut ValuesRow<'_, 'a, B>, I::Item),
    ) -> &mut Self {
        self.push("VALUES ");
        for (i, item) in rows.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            push_row(
                &mut ValuesRow {
                    statement: self,
                    first: true,
                },
                item,
            );
            self.push(")");
        }
        self
    }

    /// The SQL text and its arguments, for `sqlx::query_with` and the like; a value that did
    /// not encode is an [`sqlx::Error::Encode`].
    pub fn into_parts(self) -> Result<(String, B::Arguments<'a>), sqlx::Error> {
        match self.error {
            Some(e) => Err(sqlx::Error::Encode(e)),
            None => Ok((self.sql, self.args)),
        }
    }
}

impl<B: Database> std::fmt::Debug for SqlBuilder<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text only: arguments may be personal data.
        f.debug_struct("SqlBuilder")
            .field("sql", &self.sql)
            .finish()
    }
}

/// One row of [`SqlBuilder::push_values`].
pub struct ValuesRow<'s, 'a, B: Database> {
    statement: &'s mut SqlBuilder<'a, B>,
    first: bool,
}

impl<'a, B: Database> ValuesRow<'_, 'a, B> {
    /// Binds the row's next value.
    pub fn push_bind<T: Param<'a, B>>(&mut self, value: T) -> &mut Self {
        if !self.first {
            self.statement.push(", ");
        }
        self.first = false;
        self.statement.push_bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<B: Database>() -> String
    where
        for<'q> i64: Param<'q, B>,
    {
        let mut sql = SqlBuilder::<B>::new("INSERT INTO t (a, b) ");
        sql.push_values([1i64, 3], |row, n| {
            row.push_bind(n).push_bind(n + 1);
        });
        sql.push(" WHERE x = ").push_bind(5i64);
        let (text, _) = sql.into_parts().expect("encodes");
        text
    }

    #[test]
    fn writes_each_backends_placeholders_like_query_builder() {
        assert_eq!(
            values::<sqlx::Postgres>(),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) WHERE x = $5"
        );
        assert_eq!(
            values::<sqlx::Sqlite>(),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) WHERE x = ?"
        );
    }

    #[test]
    fn matches_sqlx_query_builder_text() {
        let mut ours = SqlBuilder::<sqlx::Postgres>::new("SELECT 1 WHERE a = ");
        ours.push_bind(1i64)
            .push(" AND b IN ")
            .push_values([2i64], |row, n| {
                row.push_bind(n).push_bind(n);
            });
        let mut theirs = sqlx::QueryBuilder::<sqlx::Postgres>::new("SELECT 1 WHERE a = ");
        theirs
            .push_bind(1i64)
            .push(" AND b IN ")
            .push_values([2i64], |mut row, n| {
                row.push_bind(n).push_bind(n);
            });
        let (text, _) = ours.into_parts().expect("encodes");
        assert_eq!(text, theirs.sql());
    }
}
