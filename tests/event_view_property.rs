//! `OutcomeEventView` (the processor's in-place decoder) and `OutcomeEvent` (the reference)
//! accept and reject the same inputs, with the same error kind: generated hostile messages
//! and arbitrary mutations of good ones. `fuzz/` runs the same check on raw bytes for longer.

mod common;

use proptest::prelude::*;

use common::hostile::hostile;
use common::rng::Rng;
use feedback_pipeline::event::{OutcomeEvent, OutcomeEventView, OutcomeStatus};

fn base(seed: u64) -> OutcomeEvent {
    let mut rng = Rng(seed | 1);
    OutcomeEvent::builder(format!("agent_{}", rng.below(50)), "act")
        .status(if rng.below(3) == 0 {
            OutcomeStatus::Failure
        } else {
            OutcomeStatus::Success
        })
        .tokens(rng.below(1000), rng.below(1000))
        .metadata("k", rng.below(10))
        .metadata("deep", serde_json::json!([[[1]]]))
        .build()
        .unwrap()
}

/// Both decoders' verdicts: `Ok` or the error kind.
fn verdicts(bytes: &[u8]) -> (Result<(), String>, Result<(), String>) {
    let view = OutcomeEventView::from_json_slice(bytes)
        .map(|_| ())
        .map_err(|e| e.kind().as_str().to_owned());
    let event = OutcomeEvent::from_json_slice(bytes)
        .map(|_| ())
        .map_err(|e| e.kind().as_str().to_owned());
    (view, event)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn hostile_messages_get_the_same_verdict(seed in any::<u64>(), n in 0u64..1_000) {
        let mut rng = Rng(seed | 1);
        let bytes = hostile(&mut rng, n, &base(seed));
        let (view, event) = verdicts(&bytes);
        prop_assert_eq!(view, event, "{}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]));
    }

    #[test]
    fn mutated_bytes_get_the_same_verdict(
        seed in any::<u64>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = base(seed).to_json_vec().unwrap();
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        let (view, event) = verdicts(&bytes);
        prop_assert_eq!(view, event, "{}", String::from_utf8_lossy(&bytes));
    }
}

/// Inputs that once disagreed or crashed, kept as regression cases.
#[test]
fn recorded_regressions_get_the_same_verdict() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/view_regressions");
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(!entries.is_empty(), "{} holds the cases", dir.display());
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let (view, event) = verdicts(&bytes);
        assert_eq!(view, event, "{}", path.display());
    }
}
