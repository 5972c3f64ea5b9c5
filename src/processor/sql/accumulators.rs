//! A group's DataFusion accumulators and their intermediate state, shared by the pane store
//! and the partials it hands to the merge stage.

use arrow::array::ArrayRef;
use datafusion_common::Result;
use datafusion_expr::Accumulator;

use super::compile::CompiledQuery;

/// One group's accumulators, one per aggregate of the query.
pub(super) type Accumulators = Vec<Box<dyn Accumulator>>;

/// Fresh accumulators for one group of `query`.
pub(super) fn new_accumulators(query: &CompiledQuery) -> Result<Accumulators> {
    query
        .aggregates
        .iter()
        .map(|(function, _)| function.create_accumulator())
        .collect()
}

/// An accumulator's intermediate state, one array per state field.
pub(super) fn state_arrays(accumulator: &mut dyn Accumulator) -> Result<Vec<ArrayRef>> {
    accumulator
        .state()?
        .iter()
        .map(|value| value.to_array())
        .collect()
}
