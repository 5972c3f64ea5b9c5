//! [`QueryDefinition`]: a SQL file in the ksqlDB dialect, parsed and planned once with
//! DataFusion; the built-in queries and the loading of a query directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion_common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion_expr::LogicalPlan;
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_sql::parser::{DFParser, Statement as DFStatement};
use datafusion_sql::sqlparser::dialect::GenericDialect;

use super::compile::CompiledQuery;
use super::planner::plan_statement;
use super::rewrite;
use super::table::{self, ColumnSet, TABLE_NAME};
use super::window_clause::{WindowClause, split_window_clause};
use crate::window::WindowSpec;

/// A query that cannot be used, with where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct QueryError {
    /// The file (or `<inline>`).
    pub source_name: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

/// A planned window query.
pub struct QueryDefinition {
    /// Name (the file stem): the `query` field of every result.
    pub name: String,
    /// The window and the query's own grace, if any.
    pub window: WindowClause,
    /// The plan, split for pane-wise evaluation.
    pub compiled: CompiledQuery,
    /// The table columns the query reads (the engine fills only these).
    pub table_columns: ColumnSet,
}

impl QueryDefinition {
    /// Parses and plans `sql`; `source_name` names it in errors.
    pub async fn compile(name: &str, source_name: &str, sql: &str) -> Result<Self, QueryError> {
        let error = |line: Option<usize>, reason: String| QueryError {
            source_name: source_name.to_owned(),
            line,
            reason,
        };
        let (rest, window) = split_window_clause(sql).map_err(|e| error(Some(e.line), e.reason))?;
        let mut statements =
            DFParser::parse_sql_with_dialect(&rest, &GenericDialect {}).map_err(|e| {
                let text = e.to_string();
                error(line_in_message(&text), text)
            })?;
        if statements.len() != 1 {
            return Err(error(
                None,
                format!("expected one statement, found {}", statements.len()),
            ));
        }
        let DFStatement::Statement(mut statement) = statements.pop_front().expect("one") else {
            return Err(error(None, "expected a SELECT statement".into()));
        };
        rewrite::rewrite_statement(&mut statement).map_err(|reason| error(None, reason))?;
        let plan = plan_statement(
            DFStatement::Statement(statement),
            TABLE_NAME,
            table::schema(),
        )
        .map_err(|e| error(None, e.strip_backtrace()))?;
        let compiled = CompiledQuery::new(&plan, &ExecutionProps::new())
            .map_err(|e| error(None, e.strip_backtrace()))?;
        let table_columns = columns_read(&plan).map_err(|e| error(None, e.strip_backtrace()))?;
        Ok(Self {
            name: name.to_owned(),
            window,
            compiled,
            table_columns,
        })
    }

    /// Plans every `*.sql` file in `dir`, sorted by name; the first bad file stops it.
    pub async fn load_dir(dir: &Path) -> Result<Vec<Arc<Self>>, QueryError> {
        let read_error = |path: &Path, err: std::io::Error| QueryError {
            source_name: path.display().to_string(),
            line: None,
            reason: err.to_string(),
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| read_error(dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
            .collect();
        paths.sort();
        let mut queries = Vec::with_capacity(paths.len());
        for path in paths {
            let sql = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e))?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let query = Self::compile(&name, &path.display().to_string(), &sql).await?;
            queries.push(Arc::new(query));
        }
        if queries.is_empty() {
            return Err(QueryError {
                source_name: dir.display().to_string(),
                line: None,
                reason: "no .sql files: the processor needs at least one window query".into(),
            });
        }
        Ok(queries)
    }

    /// The window sizes.
    pub fn spec(&self) -> WindowSpec {
        self.window.spec
    }

    /// The result schema.
    pub fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.compiled.output)
    }

    /// The name and result schema, as alert rules are checked against them.
    pub fn output(&self) -> (&str, SchemaRef) {
        (&self.name, self.output_schema())
    }
}

/// The queries shipped in `sql/`, built into the binary for runs outside the repository.
pub const BUILTIN_QUERIES: &[(&str, &str)] = &[
    (
        "avg_latency_by_agent",
        include_str!("../../../sql/avg_latency_by_agent.sql"),
    ),
    (
        "error_rate_by_agent",
        include_str!("../../../sql/error_rate_by_agent.sql"),
    ),
    (
        "error_rate_by_hour",
        include_str!("../../../sql/error_rate_by_hour.sql"),
    ),
    ("error_types", include_str!("../../../sql/error_types.sql")),
    (
        "failure_rate_overall",
        include_str!("../../../sql/failure_rate_overall.sql"),
    ),
    (
        "latency_by_agent",
        include_str!("../../../sql/latency_by_agent.sql"),
    ),
    (
        "slow_executions",
        include_str!("../../../sql/slow_executions.sql"),
    ),
    (
        "success_rate_by_agent_type",
        include_str!("../../../sql/success_rate_by_agent_type.sql"),
    ),
    (
        "token_usage_and_cost",
        include_str!("../../../sql/token_usage_and_cost.sql"),
    ),
    (
        "workflow_completion",
        include_str!("../../../sql/workflow_completion.sql"),
    ),
];

impl QueryDefinition {
    /// Plans the built-in queries.
    pub async fn builtin() -> Result<Vec<Arc<Self>>, QueryError> {
        let mut queries = Vec::new();
        for (name, sql) in BUILTIN_QUERIES {
            let source = format!("sql/{name}.sql (built in)");
            queries.push(Arc::new(Self::compile(name, &source, sql).await?));
        }
        Ok(queries)
    }

    /// The queries of `dir`, or the built-in ones when `dir` does not exist and is the
    /// default.
    pub async fn load(dir: &Path, is_default: bool) -> Result<Vec<Arc<Self>>, QueryError> {
        if is_default && !dir.exists() {
            tracing::info!(dir = %dir.display(), "no query directory; using the built-in queries");
            return Self::builtin().await;
        }
        Self::load_dir(dir).await
    }
}

/// Every column name the plan's expressions refer to that is a table column. A name of an
/// intermediate result that equals a table column only adds a column to fill.
fn columns_read(plan: &LogicalPlan) -> datafusion_common::Result<ColumnSet> {
    let mut names = BTreeSet::new();
    plan.apply(|node| {
        for expr in node.expressions() {
            names.extend(expr.column_refs().into_iter().map(|c| c.name.clone()));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(ColumnSet::of(names.iter().map(String::as_str)))
}

/// DataFusion/sqlparser messages carry "Line: n, Column: m".
fn line_in_message(message: &str) -> Option<usize> {
    let at = message.find("Line: ")? + "Line: ".len();
    let digits: String = message[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
