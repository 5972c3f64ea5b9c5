//! Raw bytes into both decoders: `OutcomeEventView` must accept and reject what
//! `OutcomeEvent` does, with the same error kind, and neither may panic.
//! Run: `cargo +nightly fuzz run view_vs_event` (see the README). The README lists three
//! documented differences inside `metadata`/`output`; a report of one of those is expected.
#![no_main]

use feedback_pipeline::event::{OutcomeEvent, OutcomeEventView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let view = OutcomeEventView::from_json_slice(bytes).map(|_| ()).map_err(|e| e.kind());
    let event = OutcomeEvent::from_json_slice(bytes).map(|_| ()).map_err(|e| e.kind());
    assert_eq!(view, event, "{}", String::from_utf8_lossy(bytes));
});
