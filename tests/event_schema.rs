//! The published JSON Schema and the Rust type agree: what one accepts the other accepts.

use chrono::Utc;
use serde_json::{Value, json};

use feedback_pipeline::event::{self, OutcomeEvent};
use feedback_pipeline::simulate::Fleet;

const SCHEMA_PATH: &str = "schema/outcome-event.schema.json";
const SUCCESS_EXAMPLE: &str = include_str!("fixtures/success_event.json");
const FAILURE_EXAMPLE: &str = include_str!("fixtures/failure_event.json");

fn published_schema() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
    let text = std::fs::read_to_string(&path).expect("schema file is published");
    serde_json::from_str(&text).expect("schema file is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&published_schema()).expect("schema compiles")
}

/// Both judges' verdicts on one document: (schema accepts, Rust accepts).
fn verdicts(validator: &jsonschema::Validator, doc: &Value) -> (bool, bool) {
    (
        validator.is_valid(doc),
        OutcomeEvent::from_json_str(&doc.to_string()).is_ok(),
    )
}

#[test]
fn the_published_schema_is_the_one_the_type_generates() {
    assert_eq!(
        published_schema(),
        event::json_schema(),
        "{SCHEMA_PATH} is stale: regenerate it with `cargo run -- schema > {SCHEMA_PATH}`"
    );
}

#[test]
fn the_seed_examples_validate() {
    let validator = validator();
    for text in [SUCCESS_EXAMPLE, FAILURE_EXAMPLE] {
        let doc: Value = serde_json::from_str(text).unwrap();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}

#[test]
fn events_the_library_writes_validate() {
    let validator = validator();
    let mut fleet = Fleet::standard(7);
    for _ in 0..500 {
        let event = fleet.next_event(Utc::now());
        let doc: Value = serde_json::from_slice(&event.to_json_vec().unwrap()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{doc}: {errors:?}");
    }
}

#[test]
fn a_document_missing_a_required_field_fails_both() {
    let validator = validator();
    let required = published_schema()["required"].as_array().unwrap().clone();
    assert!(required.len() >= 9, "{required:?}");
    for field in required {
        let mut doc: Value = serde_json::from_str(SUCCESS_EXAMPLE).unwrap();
        doc.as_object_mut().unwrap().remove(field.as_str().unwrap());
        assert_eq!(
            verdicts(&validator, &doc),
            (false, false),
            "without {field}"
        );
    }
}

#[test]
fn schema_and_type_agree_on_edge_cases() {
    let validator = validator();
    let cases: Vec<(&str, Value)> = vec![
        ("status", json!("exploded")),
        ("status", json!("SUCCESS")),
        ("severity", json!("critical")),
        ("duration_ms", json!(-1)),
        ("duration_ms", json!("1")),
        ("duration_ms", json!(0)),
        ("tokens_used", json!(-1)),
        ("tokens_used", json!(0)),
        ("quality_score", json!(1.01)),
        ("quality_score", json!(1)),
        ("confidence_score", json!(0)),
        ("agent_name", json!("")),
        ("agent_name", json!("x".repeat(257))),
        ("agent_name", json!("é".repeat(256))),
        ("timestamp", json!("2025-10-09T12:34:56Z")),
        ("timestamp", json!("2025-10-09T12:34:56.123456+02:00")),
        ("timestamp", json!("2025-10-09T12:34:56.5")),
        ("timestamp", json!("2025-10-09")),
        ("timestamp", json!(1760013296)),
        ("tags", json!([])),
        ("tags", json!(["a", 1])),
        (
            "tags",
            json!((0..65).map(|i| i.to_string()).collect::<Vec<_>>()),
        ),
        ("metadata", json!("text")),
        ("output", json!("plain text output")),
        ("retry_count", json!(4294967296u64)),
        ("error_message", json!(null)),
    ];
    for (field, value) in cases {
        let mut doc: Value = serde_json::from_str(SUCCESS_EXAMPLE).unwrap();
        doc[field] = value.clone();
        let (schema, rust) = verdicts(&validator, &doc);
        assert_eq!(
            schema, rust,
            "{field}={value}: schema says {schema}, Rust says {rust}"
        );
    }
}
