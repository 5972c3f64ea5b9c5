//! Partial aggregates: a window's groups as the intermediate state of each aggregate, the
//! form in which one instance hands its share of a window to the instance that merges it.
//!
//! A partial is a record batch: the column `group` (the encoded group key), then one column
//! per state field of each aggregate, one row per group. On the wire it is an Arrow IPC
//! stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch};
use arrow::compute::concat;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use datafusion_common::{DataFusionError, Result};

use super::accumulators::{Accumulators, state_arrays};
use super::compile::CompiledQuery;

/// One group of a partial: its encoded key and every aggregate's state arrays.
pub(super) type GroupStates = (Box<[u8]>, Vec<Vec<ArrayRef>>);

/// Name of the encoded group key column.
const GROUP: &str = "group";

/// The partial of merged groups: each group's accumulators' intermediate state.
pub(super) fn encode(merged: BTreeMap<Box<[u8]>, Accumulators>) -> Result<RecordBatch> {
    let mut keys = Vec::with_capacity(merged.len());
    // Per state column, its one-row arrays over the groups.
    let mut columns: Vec<Vec<ArrayRef>> = Vec::new();
    for (key, mut accumulators) in merged {
        keys.push(key);
        let mut column = 0;
        for accumulator in accumulators.iter_mut() {
            for state in state_arrays(accumulator.as_mut())? {
                if columns.len() <= column {
                    columns.push(Vec::new());
                }
                columns[column].push(state);
                column += 1;
            }
        }
    }
    let mut fields = vec![Field::new(GROUP, DataType::Binary, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(BinaryArray::from_iter_values(
        keys.iter().map(|k| k.as_ref()),
    ))];
    for (index, parts) in columns.iter().enumerate() {
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        let array = concat(&refs)?;
        fields.push(Field::new(
            format!("state_{index}"),
            array.data_type().clone(),
            true,
        ));
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// The groups of a partial: each key with every aggregate's state arrays (one row each).
pub(super) fn decode(query: &CompiledQuery, partial: &RecordBatch) -> Result<Vec<GroupStates>> {
    let widths = query
        .aggregates
        .iter()
        .map(|(function, _)| Ok(function.state_fields()?.len()))
        .collect::<Result<Vec<_>>>()?;
    if partial.num_columns() != 1 + widths.iter().sum::<usize>() {
        return Err(DataFusionError::Internal(format!(
            "a partial with {} columns does not fit this query's {} state fields",
            partial.num_columns(),
            widths.iter().sum::<usize>()
        )));
    }
    let keys = partial.column(0).as_binary_opt::<i32>().ok_or_else(|| {
        DataFusionError::Internal("a partial's group column is not binary".into())
    })?;
    let mut groups = Vec::with_capacity(partial.num_rows());
    for row in 0..partial.num_rows() {
        let mut column = 1;
        let mut states = Vec::with_capacity(widths.len());
        for &width in &widths {
            let state = (column..column + width)
                .map(|c| partial.column(c).slice(row, 1))
                .collect();
            states.push(state);
            column += width;
        }
        groups.push((Box::from(keys.value(row)), states));
    }
    Ok(groups)
}

/// A partial as an Arrow IPC stream.
pub fn to_ipc(partial: &RecordBatch) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &partial.schema())?;
    writer.write(partial)?;
    writer.finish()?;
    drop(writer);
    Ok(bytes)
}

/// A partial from an Arrow IPC stream (the first batch).
pub fn from_ipc(bytes: &[u8]) -> Result<RecordBatch> {
    let mut reader = StreamReader::try_new(bytes, None)?;
    reader
        .next()
        .transpose()?
        .ok_or_else(|| DataFusionError::Internal("an empty partial stream".into()))
}
