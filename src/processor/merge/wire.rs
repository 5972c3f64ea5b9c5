//! The repartition topic's records: a partial (one source partition's groups of one window
//! for one owner) and a hand-over report (how far each source partition's windows are
//! handed over). Both name their kind in the header `fp.kind`.

use std::collections::BTreeMap;

use rdkafka::message::{Header, Headers, OwnedHeaders};
use serde::{Deserialize, Serialize};

use crate::window::Millis;

/// How far source partitions' windows of each query are handed over: windows ending at or
/// before `.0` were emitted (their partials sent), those ending at or before `.1` are final.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandOver {
    /// Per query, per source partition: (emitted through, final through).
    pub bounds: BTreeMap<String, BTreeMap<i32, (Millis, Millis)>>,
}

/// A record of the repartition topic, decoded.
#[derive(Debug)]
pub enum RepartitionRecord {
    /// `source`'s partial aggregates of the window starting at `window` of `query`.
    Partial {
        /// The query.
        query: String,
        /// The window's start.
        window: Millis,
        /// The source partition.
        source: i32,
        /// The source's wall clock when it handed the partial over, ms.
        handed_at: Option<Millis>,
    },
    /// A hand-over report.
    HandOver(HandOver),
}

/// The headers of a partial record (its payload is the partial as an Arrow IPC stream),
/// stamped with the wall clock so the merge stage can tell its latency.
pub fn partial_record(query: &str, window: Millis, source: i32) -> OwnedHeaders {
    let (window, source) = (window.to_string(), source.to_string());
    let handed_at = chrono::Utc::now().timestamp_millis().to_string();
    OwnedHeaders::new()
        .insert(header("fp.kind", "partial"))
        .insert(header("fp.query", query))
        .insert(header("fp.window", &window))
        .insert(header("fp.source", &source))
        .insert(header("fp.handed_at", &handed_at))
}

/// A hand-over report's headers and JSON payload.
pub fn bounds_record(hand_over: &HandOver) -> (OwnedHeaders, Vec<u8>) {
    let headers = OwnedHeaders::new().insert(header("fp.kind", "bounds"));
    let payload = serde_json::to_vec(hand_over).expect("a hand-over encodes");
    (headers, payload)
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// What a record of the repartition topic is, from its headers (and, for a report, its
/// payload); `Err` names what is wrong.
pub fn decode(headers: Option<&impl Headers>, payload: &[u8]) -> Result<RepartitionRecord, String> {
    let value = |name: &str| -> Option<String> {
        let headers = headers?;
        (0..headers.count())
            .map(|i| headers.get(i))
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    match value("fp.kind").as_deref() {
        Some("partial") => {
            let number = |name: &str| {
                value(name)
                    .and_then(|v| v.parse::<i64>().ok())
                    .ok_or_else(|| format!("a partial without a numeric {name} header"))
            };
            Ok(RepartitionRecord::Partial {
                query: value("fp.query").ok_or("a partial without fp.query")?,
                window: number("fp.window")?,
                source: number("fp.source")? as i32,
                handed_at: number("fp.handed_at").ok(),
            })
        }
        Some("bounds") => serde_json::from_slice(payload)
            .map(RepartitionRecord::HandOver)
            .map_err(|err| format!("an unreadable hand-over report: {err}")),
        other => Err(format!("unknown record kind {other:?}")),
    }
}
