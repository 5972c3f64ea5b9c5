//! Seeded hostile messages: what broken or malicious producers send, each with the reason the
//! processor must give it, stated independently of the processor (the reference decoder
//! `OutcomeEvent::from_json_slice`, then the future-time bound).

use chrono::Utc;
use serde_json::{Value, json};

use super::rng::Rng;
use feedback_pipeline::event::OutcomeEvent;

/// Fields every event must carry, as the published JSON Schema lists them.
fn required_fields() -> &'static [String] {
    static REQUIRED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    REQUIRED.get_or_init(|| {
        let schema = feedback_pipeline::event::json_schema();
        let required = schema["required"]
            .as_array()
            .expect("the schema lists required fields");
        required
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect()
    })
}

/// Kinds of hostile message, chosen in turn (see [`hostile`]).
pub const KINDS: u64 = 14;

/// Hostile message number `n`, derived from the good event `base` (its time and agent).
pub fn hostile(rng: &mut Rng, n: u64, base: &OutcomeEvent) -> Vec<u8> {
    let good = base.to_json_vec().unwrap();
    let mut json: Value = serde_json::from_slice(&good).unwrap();
    let text = |json: &Value| serde_json::to_vec(json).unwrap();
    match n % KINDS {
        0 => (0..rng.below(300)).map(|_| rng.below(256) as u8).collect(),
        1 => good[..rng.below(good.len() as u64) as usize].to_vec(),
        2 => {
            let field = [
                "duration_ms",
                "latency_ms",
                "agent_name",
                "tokens_used",
                "tags",
            ][rng.below(5) as usize];
            // Never a valid value: a string where a number goes, a number or an object
            // where a string or list goes.
            let numeric = field.ends_with("_ms") || field == "tokens_used";
            json[field] = match rng.below(2) {
                0 if numeric => json!("slow"),
                0 => json!(12),
                _ => json!({"nested": true}),
            };
            text(&json)
        }
        3 => {
            let required = required_fields();
            let field = &required[rng.below(required.len() as u64) as usize];
            json.as_object_mut().unwrap().remove(field);
            text(&json)
        }
        4 => {
            let field = ["status", "severity"][rng.below(2) as usize];
            json[field] = json!(["exploded", "SUCCESS", "", "ok"][rng.below(4) as usize]);
            text(&json)
        }
        5 => {
            let field = ["duration_ms", "latency_ms", "cost_estimate", "tokens_used"]
                [rng.below(4) as usize];
            json[field] = json!(-1.5 - rng.below(1000) as f64);
            text(&json)
        }
        6 => {
            // NaN and infinities are not JSON; a number out of f64's range is not either.
            let literal = ["NaN", "Infinity", "-Infinity", "1e999"][rng.below(4) as usize];
            let mut bytes = text(&json);
            bytes.truncate(bytes.len() - 1);
            bytes.extend(format!(r#","latency_ms":{literal}}}"#).as_bytes());
            bytes
        }
        7 => {
            let depth = 5_000;
            let mut bytes = text(&json);
            bytes.truncate(bytes.len() - 1);
            bytes.extend(br#","tags":"#);
            bytes.extend(std::iter::repeat_n(b'[', depth));
            bytes.extend(std::iter::repeat_n(b']', depth));
            bytes.push(b'}');
            bytes
        }
        8 => {
            // Invalid UTF-8 inside a string.
            let mut bytes = text(&json);
            let at = bytes
                .windows(12)
                .position(|w| w == b"\"agent_name\"")
                .unwrap()
                + 15;
            bytes.insert(at, 0xff);
            bytes
        }
        9 => Vec::new(),
        10 => {
            json["agent_name"] = json!("n".repeat(300));
            text(&json)
        }
        11 => {
            let stamp = [
                "+262143-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "2026-13-45T99:00:00Z",
                "yesterday",
            ][rng.below(4) as usize];
            json["timestamp"] = json!(stamp);
            text(&json)
        }
        12 => {
            json["status"] = Value::Null;
            text(&json)
        }
        _ => {
            // Unknown fields are allowed: a good event in disguise.
            json["x_unknown"] = json!({"a": [1, 2, {"b": null}]});
            text(&json)
        }
    }
}

/// A string field of 2 MB: over the size limit.
pub fn oversized(base: &OutcomeEvent) -> Vec<u8> {
    let mut json: Value = serde_json::from_slice(&base.to_json_vec().unwrap()).unwrap();
    json["output"] = json!("x".repeat(2_000_000));
    serde_json::to_vec(&json).unwrap()
}

/// The dead-letter reason the processor must give `payload`; `None` for a good event.
pub fn expected_reason(payload: &[u8]) -> Option<String> {
    if payload.is_empty() {
        return Some("empty_payload".into());
    }
    match OutcomeEvent::from_json_slice(payload) {
        Err(err) => Some(err.kind().as_str().to_owned()),
        Ok(event) => {
            let horizon = Utc::now() + chrono::Duration::minutes(5);
            (event.timestamp > horizon).then(|| "future_timestamp".to_owned())
        }
    }
}
