//! Which repartition partition merges a group: a hash of the query and the group's encoded
//! key that every instance, of every build, computes alike.

use std::collections::BTreeMap;

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use datafusion_common::Result;

/// 64-bit FNV-1a: small, and the same everywhere (std's hasher is not promised to be).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The repartition partition (of `partitions`) that merges `group` of `query`. With
/// `whole_query` (a LIMIT picks among all groups) every group of the query goes to one.
pub fn repartition_of(query: &str, group: &[u8], whole_query: bool, partitions: i32) -> i32 {
    let key: &[u8] = if whole_query { &[] } else { group };
    (fnv1a(&[query.as_bytes(), key]) % partitions.max(1) as u64) as i32
}

/// The rows of a partial (its first column the encoded group key) by the repartition
/// partition that merges them.
pub fn split_by_route(
    query: &str,
    partial: &RecordBatch,
    whole_query: bool,
    partitions: i32,
) -> Result<BTreeMap<i32, RecordBatch>> {
    let keys = partial.column(0).as_binary::<i32>();
    let mut rows: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
    for row in 0..partial.num_rows() {
        let target = repartition_of(query, keys.value(row), whole_query, partitions);
        rows.entry(target).or_default().push(row as u32);
    }
    if rows.len() == 1 {
        let (target, _) = rows.pop_first().expect("one");
        return Ok(BTreeMap::from([(target, partial.clone())]));
    }
    rows.into_iter()
        .map(|(target, rows)| {
            Ok((
                target,
                take_record_batch(partial, &UInt32Array::from(rows))?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_stable_and_spread() {
        // Fixed values: a change here would send one group's partials to two owners across
        // a rolling upgrade.
        assert_eq!(
            repartition_of("q", b"agent_1", false, 8),
            repartition_of("q", b"agent_1", false, 8)
        );
        let targets: std::collections::BTreeSet<i32> = (0..64)
            .map(|n| repartition_of("error_rate_by_hour", format!("g{n}").as_bytes(), false, 8))
            .collect();
        assert!(targets.len() >= 6, "{targets:?}");
        let whole: std::collections::BTreeSet<i32> = (0..64)
            .map(|n| repartition_of("q", format!("g{n}").as_bytes(), true, 8))
            .collect();
        assert_eq!(whole.len(), 1);
    }
}
