//! [`plan_statement`]: one SQL statement over the table `agent_outcomes`, planned with
//! DataFusion's SQL planner, its default functions and its analyzer (type coercion).
//!
//! No `SessionContext`: the processor evaluates a plan's expressions and accumulators itself,
//! pane by pane, so a session's catalogs, data sources and physical planner would never run.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{Result, TableReference, plan_err};
use datafusion_expr::logical_plan::builder::LogicalTableSource;
use datafusion_expr::planner::{ContextProvider, ExprPlanner};
use datafusion_expr::{
    AggregateUDF, HigherOrderUDF, LogicalPlan, ScalarUDF, TableSource, WindowUDF,
};
use datafusion_optimizer::Analyzer;
use datafusion_sql::parser::Statement;
use datafusion_sql::planner::{ParserOptions, SqlToRel};

/// Plans `statement`, which may read only the table `table_name` (of `schema`), and runs the
/// analyzer over the plan, as a DataFusion session would before optimizing it.
pub fn plan_statement(
    statement: Statement,
    table_name: &str,
    schema: SchemaRef,
) -> Result<LogicalPlan> {
    let catalog = Catalog::new(table_name, schema);
    let options = ParserOptions::from(&catalog.options.sql_parser);
    let plan = SqlToRel::new_with_options(&catalog, options).statement_to_plan(statement)?;
    Analyzer::new().execute_and_check(plan, &catalog.options, |_, _| {})
}

/// What the SQL planner may look up: the one table, DataFusion's default scalar, nested,
/// aggregate and window functions (under their names and aliases) and its expression planners.
/// Window functions are there so that a query using one is refused for what it is (a window
/// above the aggregate), not as an unknown function.
struct Catalog {
    table_name: String,
    table: Arc<dyn TableSource>,
    scalars: HashMap<String, Arc<ScalarUDF>>,
    higher_order: HashMap<String, Arc<HigherOrderUDF>>,
    aggregates: HashMap<String, Arc<AggregateUDF>>,
    windows: HashMap<String, Arc<WindowUDF>>,
    planners: Vec<Arc<dyn ExprPlanner>>,
    options: ConfigOptions,
}

impl Catalog {
    fn new(table_name: &str, schema: SchemaRef) -> Self {
        let mut scalars = datafusion_functions::all_default_functions();
        scalars.append(&mut datafusion_functions_nested::all_default_nested_functions());
        let higher_order = datafusion_functions_nested::all_default_higher_order_functions();
        let aggregates = datafusion_functions_aggregate::all_default_aggregate_functions();
        let windows = datafusion_functions_window::all_default_window_functions();
        Self {
            table_name: table_name.to_owned(),
            table: Arc::new(LogicalTableSource::new(schema)),
            scalars: by_name(scalars, |f| (f.name(), f.aliases())),
            higher_order: by_name(higher_order, |f| (f.name(), f.aliases())),
            aggregates: by_name(aggregates, |f| (f.name(), f.aliases())),
            windows: by_name(windows, |f| (f.name(), f.aliases())),
            planners: expr_planners(),
            options: ConfigOptions::default(),
        }
    }
}

/// Each function under its name and every alias, as a session registers them.
fn by_name<F>(
    functions: Vec<Arc<F>>,
    names: impl Fn(&F) -> (&str, &[String]),
) -> HashMap<String, Arc<F>> {
    let mut map = HashMap::new();
    for function in functions {
        let (name, aliases) = names(&function);
        for alias in aliases {
            map.insert(alias.clone(), Arc::clone(&function));
        }
        map.insert(name.to_owned(), function);
    }
    map
}

/// The planners a default session uses for operators and syntax that become function calls
/// (`||`, field and array access, `EXTRACT`, `POSITION`, `COUNT(*)`, `OVER`...).
fn expr_planners() -> Vec<Arc<dyn ExprPlanner>> {
    use datafusion_functions::{core, datetime, unicode};
    vec![
        Arc::new(core::planner::CoreFunctionPlanner::default()),
        Arc::new(datafusion_functions_nested::planner::NestedFunctionPlanner),
        Arc::new(datafusion_functions_nested::planner::FieldAccessPlanner),
        Arc::new(datetime::planner::DatetimeFunctionPlanner),
        Arc::new(unicode::planner::UnicodeFunctionPlanner),
        Arc::new(datafusion_functions_aggregate::planner::AggregateFunctionPlanner),
        Arc::new(datafusion_functions_window::planner::WindowFunctionPlanner),
    ]
}

impl ContextProvider for Catalog {
    fn get_table_source(&self, name: TableReference) -> Result<Arc<dyn TableSource>> {
        if name.table() == self.table_name && name.schema().is_none() {
            Ok(Arc::clone(&self.table))
        } else {
            plan_err!(
                "table '{name}' not found: queries read `{}`",
                self.table_name
            )
        }
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.scalars.get(name).cloned()
    }

    fn get_higher_order_meta(&self, name: &str) -> Option<Arc<HigherOrderUDF>> {
        self.higher_order.get(name).cloned()
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.aggregates.get(name).cloned()
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.windows.get(name).cloned()
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.scalars.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        self.higher_order.keys().cloned().collect()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.aggregates.keys().cloned().collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.windows.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use datafusion_sql::parser::DFParser;
    use datafusion_sql::sqlparser::dialect::GenericDialect;

    use super::*;
    use crate::processor::sql::table::{self, TABLE_NAME};

    fn plan(sql: &str) -> Result<LogicalPlan> {
        let mut statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?;
        let statement = statements.pop_front().expect("one statement");
        plan_statement(statement, TABLE_NAME, table::schema())
    }

    #[test]
    fn syntax_that_becomes_function_calls_plans_as_in_a_session() {
        for sql in [
            "SELECT agent_name || '/' || action_type FROM agent_outcomes",
            "SELECT EXTRACT(HOUR FROM timestamp) FROM agent_outcomes",
            "SELECT POSITION('a' IN agent_name) FROM agent_outcomes",
            "SELECT tags[1], array_has(tags, 'prod') FROM agent_outcomes",
            "SELECT COUNT(*), approx_percentile_cont(latency_ms, 0.95) FROM agent_outcomes",
            "SELECT regexp_like(agent_name, '^data'), upper(agent_name) FROM agent_outcomes",
        ] {
            plan(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn only_the_outcome_table_exists() {
        let error = plan("SELECT * FROM other_table").unwrap_err().to_string();
        assert!(error.contains("other_table"), "{error}");
        assert!(error.contains(TABLE_NAME), "{error}");
    }

    #[test]
    fn mixed_types_are_coerced_by_the_analyzer() {
        let plan = plan("SELECT retry_count + latency_ms AS total FROM agent_outcomes").unwrap();
        let shown = plan.display_indent().to_string();
        assert!(
            shown.contains("CAST(agent_outcomes.retry_count AS Float64)"),
            "{shown}"
        );
    }
}
