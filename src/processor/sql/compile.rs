//! Turns a window query's logical plan into the three parts the pane engine runs:
//! the row steps before the aggregate (filters), the aggregate itself (group keys and
//! DataFusion aggregate functions), and the steps after it (projection, HAVING, ORDER BY, LIMIT).
//! Each is planned once into physical expressions.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::compute::{SortColumn, filter_record_batch, lexsort_to_indices};
use arrow::datatypes::SchemaRef;
use datafusion_common::{DFSchema, DataFusionError, Result};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::simplify::SimplifyContext;
use datafusion_expr::{Aggregate, Expr, Limit, LogicalPlan, Projection, Sort};
use datafusion_optimizer::simplify_expressions::ExprSimplifier;
use datafusion_physical_expr::aggregate::{AggregateFunctionExpr, LoweredAggregateBuilder};
use datafusion_physical_expr::{PhysicalExpr, create_physical_expr};

use super::table::{WINDOW_END, WINDOW_START};

/// A row step before the aggregate.
pub enum RowStep {
    /// Keep rows where the predicate is true.
    Filter(Arc<dyn PhysicalExpr>),
    /// Compute new columns.
    Project(Vec<Arc<dyn PhysicalExpr>>, SchemaRef),
}

/// A step after the aggregate.
pub enum ResultStep {
    /// Keep rows where the predicate is true (HAVING).
    Filter(Arc<dyn PhysicalExpr>),
    /// Compute the output columns.
    Project(Vec<Arc<dyn PhysicalExpr>>, SchemaRef),
    /// Order rows: expression, descending, nulls first.
    Sort(Vec<(Arc<dyn PhysicalExpr>, bool, bool)>),
    /// Keep at most `fetch` rows after skipping `skip`.
    Limit { skip: usize, fetch: Option<usize> },
}

/// An aggregate function with its optional `FILTER (WHERE ...)`.
pub type FilteredAggregate = (Arc<AggregateFunctionExpr>, Option<Arc<dyn PhysicalExpr>>);

/// Where one grouping key comes from.
pub enum GroupKey {
    /// From the events (index into the data keys).
    Data(usize),
    /// From the window bounds (index into the window keys).
    Window(usize),
}

/// A window query split for pane-wise evaluation.
pub struct CompiledQuery {
    /// Steps from table rows to the aggregate's input.
    pub row_steps: Vec<RowStep>,
    /// Group keys computed from events.
    pub data_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Group keys computed from the window bounds alone (e.g. `WINDOWSTART`).
    pub window_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The aggregate output's grouping columns in order.
    pub key_order: Vec<GroupKey>,
    /// Aggregate functions with their optional FILTER.
    pub aggregates: Vec<FilteredAggregate>,
    /// Schema of the aggregate's input (window keys are evaluated against it).
    pub aggregate_input: SchemaRef,
    /// Schema of the aggregate's output.
    pub aggregate_output: SchemaRef,
    /// Steps from the aggregate's output to the query's result, innermost first.
    pub result_steps: Vec<ResultStep>,
    /// The query's result schema.
    pub output: SchemaRef,
    /// Whether the query groups by `agent_name`, the outcome topic's key: every group then
    /// lives in one partition, so each partition's windows can close on its own event time.
    pub partition_aligned: bool,
}

/// The column outcome events are keyed by on the topic.
const PARTITION_KEY: &str = "agent_name";

fn plan_error(message: impl Into<String>) -> DataFusionError {
    DataFusionError::Plan(message.into())
}

fn uses_window(expr: &Expr) -> (bool, bool) {
    let refs = expr.column_refs();
    let window = refs
        .iter()
        .filter(|c| c.name == WINDOW_START || c.name == WINDOW_END)
        .count();
    (window > 0, refs.len() > window)
}

/// Simplifies `expr` as DataFusion's optimizer would (some functions, e.g. `COALESCE`, only
/// exist in simplified form at execution).
fn simplify(expr: &Expr, schema: &DFSchema) -> Result<Expr> {
    let context = SimplifyContext::builder()
        .with_schema(Arc::new(schema.clone()))
        .build();
    ExprSimplifier::new(context).simplify(expr.clone())
}

fn physical(
    expr: &Expr,
    schema: &DFSchema,
    props: &ExecutionProps,
) -> Result<Arc<dyn PhysicalExpr>> {
    create_physical_expr(
        &simplify(expr, schema)?,
        schema,
        props,
        &PhysicalPlanningContext::default(),
    )
}

/// A projection's expressions, planned against its input, with its output schema.
fn projection_step(
    projection: &Projection,
    props: &ExecutionProps,
) -> Result<(Vec<Arc<dyn PhysicalExpr>>, SchemaRef)> {
    let input = projection.input.schema();
    let exprs = projection
        .expr
        .iter()
        .map(|e| physical(e, input, props))
        .collect::<Result<_>>()?;
    Ok((exprs, Arc::new(projection.schema.as_arrow().clone())))
}

/// The steps above the aggregate (innermost first) and the aggregate itself.
fn split_above<'a>(
    plan: &'a LogicalPlan,
    props: &ExecutionProps,
) -> Result<(&'a Aggregate, Vec<ResultStep>)> {
    let mut result_steps = Vec::new();
    let mut node = plan;
    let aggregate = loop {
        match node {
            LogicalPlan::Aggregate(aggregate) => break aggregate,
            LogicalPlan::Projection(projection) => {
                let (exprs, schema) = projection_step(projection, props)?;
                result_steps.push(ResultStep::Project(exprs, schema));
                node = &projection.input;
            }
            LogicalPlan::Filter(filter) => {
                let predicate = physical(&filter.predicate, filter.input.schema(), props)?;
                result_steps.push(ResultStep::Filter(predicate));
                node = &filter.input;
            }
            LogicalPlan::Sort(sort) => {
                result_steps.extend(sort_steps(sort, props)?);
                node = &sort.input;
            }
            LogicalPlan::Limit(limit) => {
                result_steps.push(limit_step(limit)?);
                node = &limit.input;
            }
            LogicalPlan::SubqueryAlias(alias) => node = &alias.input,
            other => {
                return Err(plan_error(format!(
                    "a window query is one SELECT with GROUP BY or aggregate functions over agent_outcomes; found {} above the aggregate",
                    other.display()
                )));
            }
        }
    };
    result_steps.reverse();
    Ok((aggregate, result_steps))
}

/// An ORDER BY, then its fetch if it has one (as the plan reads from the top: limit first).
fn sort_steps(sort: &Sort, props: &ExecutionProps) -> Result<Vec<ResultStep>> {
    let input = sort.input.schema();
    let keys = sort
        .expr
        .iter()
        .map(|s| Ok((physical(&s.expr, input, props)?, !s.asc, s.nulls_first)))
        .collect::<Result<_>>()?;
    let mut steps = vec![ResultStep::Sort(keys)];
    if let Some(fetch) = sort.fetch {
        steps.push(ResultStep::Limit {
            skip: 0,
            fetch: Some(fetch),
        });
    }
    Ok(steps)
}

/// A LIMIT/OFFSET with literal numbers.
fn limit_step(limit: &Limit) -> Result<ResultStep> {
    use datafusion_expr::{FetchType, SkipType};
    let skip = match limit.get_skip_type()? {
        SkipType::Literal(n) => n,
        SkipType::UnsupportedExpr => return Err(plan_error("OFFSET must be a number")),
    };
    let fetch = match limit.get_fetch_type()? {
        FetchType::Literal(n) => n,
        FetchType::UnsupportedExpr => return Err(plan_error("LIMIT must be a number")),
    };
    Ok(ResultStep::Limit { skip, fetch })
}

/// The filters and projections between the table scan and the aggregate, innermost first.
fn split_below(mut below: &LogicalPlan, props: &ExecutionProps) -> Result<Vec<RowStep>> {
    let mut row_steps = Vec::new();
    loop {
        match below {
            LogicalPlan::TableScan(_) => break,
            LogicalPlan::Filter(filter) => {
                if uses_window(&filter.predicate).0 {
                    return Err(plan_error(
                        "WHERE cannot use WINDOWSTART/WINDOWEND (use HAVING)",
                    ));
                }
                let predicate = physical(&filter.predicate, filter.input.schema(), props)?;
                row_steps.push(RowStep::Filter(predicate));
                below = &filter.input;
            }
            LogicalPlan::Projection(projection) => {
                if projection.expr.iter().any(|e| uses_window(e).0) {
                    return Err(plan_error(
                        "WINDOWSTART/WINDOWEND can only be selected or grouped by",
                    ));
                }
                let (exprs, schema) = projection_step(projection, props)?;
                row_steps.push(RowStep::Project(exprs, schema));
                below = &projection.input;
            }
            LogicalPlan::SubqueryAlias(alias) => below = &alias.input,
            other => {
                return Err(plan_error(format!(
                    "a window query reads agent_outcomes directly; found {}",
                    other.display()
                )));
            }
        }
    }
    row_steps.reverse();
    Ok(row_steps)
}

/// The aggregate's group keys, split into those from events and those from window bounds.
struct GroupKeys {
    data: Vec<Arc<dyn PhysicalExpr>>,
    window: Vec<Arc<dyn PhysicalExpr>>,
    order: Vec<GroupKey>,
}

fn group_keys(aggregate: &Aggregate, props: &ExecutionProps) -> Result<GroupKeys> {
    let input_schema = aggregate.input.schema();
    let mut keys = GroupKeys {
        data: Vec::new(),
        window: Vec::new(),
        order: Vec::new(),
    };
    for expr in &aggregate.group_expr {
        if matches!(expr, Expr::GroupingSet(_)) {
            return Err(plan_error(
                "GROUPING SETS, CUBE and ROLLUP are not supported in window queries",
            ));
        }
        match uses_window(expr) {
            (true, true) => {
                return Err(plan_error(format!(
                    "group key `{expr}` mixes window bounds and event columns; group by them separately"
                )));
            }
            (true, false) => {
                keys.order.push(GroupKey::Window(keys.window.len()));
                keys.window.push(physical(expr, input_schema, props)?);
            }
            (false, _) => {
                keys.order.push(GroupKey::Data(keys.data.len()));
                keys.data.push(physical(expr, input_schema, props)?);
            }
        }
    }
    Ok(keys)
}

/// The aggregate functions, lowered to DataFusion's accumulators with their FILTER.
fn aggregate_functions(
    aggregate: &Aggregate,
    arrow_input: &SchemaRef,
    props: &ExecutionProps,
) -> Result<Vec<FilteredAggregate>> {
    let input_schema = aggregate.input.schema();
    let mut aggregates = Vec::new();
    for expr in &aggregate.aggr_expr {
        if uses_window(expr).0 {
            return Err(plan_error(format!(
                "aggregate `{expr}` cannot read WINDOWSTART/WINDOWEND"
            )));
        }
        let planning = PhysicalPlanningContext::default();
        let simplified = simplify(expr, input_schema)?;
        let lowered =
            LoweredAggregateBuilder::new(&simplified, input_schema, arrow_input, props, &planning)
                .build()?;
        if !lowered.order_bys.is_empty() {
            return Err(plan_error(format!(
                "aggregate `{expr}`: ORDER BY inside an aggregate is not supported in window queries"
            )));
        }
        aggregates.push((lowered.aggregate, lowered.filter));
    }
    Ok(aggregates)
}

impl CompiledQuery {
    /// Splits an analyzed logical plan; errors say what shape a window query must have.
    pub fn new(plan: &LogicalPlan, props: &ExecutionProps) -> Result<Self> {
        let (aggregate, result_steps) = split_above(plan, props)?;
        let row_steps = split_below(&aggregate.input, props)?;
        let keys = group_keys(aggregate, props)?;
        let arrow_input = Arc::new(aggregate.input.schema().as_arrow().clone());
        let aggregates = aggregate_functions(aggregate, &arrow_input, props)?;
        if aggregates.is_empty() && aggregate.group_expr.is_empty() {
            return Err(plan_error(
                "a window query needs GROUP BY or an aggregate function",
            ));
        }
        let partition_aligned = aggregate
            .group_expr
            .iter()
            .any(|expr| matches!(expr, Expr::Column(column) if column.name == PARTITION_KEY));
        Ok(Self {
            row_steps,
            data_keys: keys.data,
            window_keys: keys.window,
            key_order: keys.order,
            aggregates,
            aggregate_input: arrow_input,
            aggregate_output: Arc::new(aggregate.schema.as_arrow().clone()),
            result_steps,
            output: Arc::new(plan.schema().as_arrow().clone()),
            partition_aligned,
        })
    }

    /// Whether a result step picks among the groups (a LIMIT): a subset of the groups then
    /// gives other rows than the whole window does.
    pub fn limits_groups(&self) -> bool {
        self.result_steps
            .iter()
            .any(|step| matches!(step, ResultStep::Limit { .. }))
    }

    /// Runs the row steps over a batch of table rows; returns the aggregate's input and each
    /// of its rows' index in `batch` (filters drop rows).
    pub fn apply_row_steps(&self, mut batch: RecordBatch) -> Result<(RecordBatch, UInt32Array)> {
        let mut origin = UInt32Array::from_iter_values(0..batch.num_rows() as u32);
        for step in &self.row_steps {
            batch = match step {
                RowStep::Filter(predicate) => {
                    let mask = mask(&batch, predicate)?;
                    origin = arrow::compute::filter(&origin, &mask)?
                        .as_primitive::<arrow::datatypes::UInt32Type>()
                        .clone();
                    filter_record_batch(&batch, &mask)?
                }
                RowStep::Project(exprs, schema) => project(&batch, exprs, schema)?,
            };
        }
        Ok((batch, origin))
    }

    /// Runs the result steps over one window's aggregated rows.
    pub fn apply_result_steps(&self, mut batch: RecordBatch) -> Result<RecordBatch> {
        for step in &self.result_steps {
            batch = match step {
                ResultStep::Filter(predicate) => filter(&batch, predicate)?,
                ResultStep::Project(exprs, schema) => project(&batch, exprs, schema)?,
                ResultStep::Sort(keys) => {
                    let columns = keys
                        .iter()
                        .map(|(expr, descending, nulls_first)| {
                            Ok(SortColumn {
                                values: expr.evaluate(&batch)?.into_array(batch.num_rows())?,
                                options: Some(arrow::compute::SortOptions {
                                    descending: *descending,
                                    nulls_first: *nulls_first,
                                }),
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let indices = lexsort_to_indices(&columns, None)?;
                    take_record_batch(&batch, &indices)?
                }
                ResultStep::Limit { skip, fetch } => {
                    let start = (*skip).min(batch.num_rows());
                    let length = fetch.unwrap_or(usize::MAX).min(batch.num_rows() - start);
                    batch.slice(start, length)
                }
            };
        }
        Ok(batch)
    }
}

fn filter(batch: &RecordBatch, predicate: &Arc<dyn PhysicalExpr>) -> Result<RecordBatch> {
    Ok(filter_record_batch(batch, &mask(batch, predicate)?)?)
}

fn mask(batch: &RecordBatch, predicate: &Arc<dyn PhysicalExpr>) -> Result<BooleanArray> {
    let mask = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
    mask.as_any()
        .downcast_ref::<BooleanArray>()
        .cloned()
        .ok_or_else(|| plan_error("a filter predicate must be boolean"))
}

fn project(
    batch: &RecordBatch,
    exprs: &[Arc<dyn PhysicalExpr>],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let columns = exprs
        .iter()
        .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
        .collect::<Result<Vec<ArrayRef>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &options,
    )?)
}
