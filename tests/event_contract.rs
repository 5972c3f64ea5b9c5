//! The event contract: the design documents' examples round-trip, bad input is rejected with the
//! field named and never panics, and the builder fills what it promises.

mod common;

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};

use common::rng::Rng;
use feedback_pipeline::event::limits::{MAX_EVENT_BYTES, MAX_TAGS};
use feedback_pipeline::event::{EventErrorKind, EventSeverity, OutcomeEvent, OutcomeStatus};

/// The "Success Event Example" of the design documents, verbatim.
const SUCCESS_EXAMPLE: &str = include_str!("fixtures/success_event.json");
/// The "Failure Event Example" of the design documents, verbatim.
const FAILURE_EXAMPLE: &str = include_str!("fixtures/failure_event.json");

fn example(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn seed_examples_round_trip_with_the_same_fields_and_values() {
    for text in [SUCCESS_EXAMPLE, FAILURE_EXAMPLE] {
        let event = OutcomeEvent::from_json_str(text).expect("seed example decodes");
        let written: Value = serde_json::from_slice(&event.to_json_vec().unwrap()).unwrap();
        assert_eq!(written, example(text));
    }
}

#[test]
fn seed_examples_decode_into_the_typed_fields() {
    let success = OutcomeEvent::from_json_str(SUCCESS_EXAMPLE).unwrap();
    assert_eq!(success.status, OutcomeStatus::Success);
    assert_eq!(success.severity, EventSeverity::Info);
    assert_eq!(success.agent_type.as_deref(), Some("reasoning"));
    assert_eq!(success.tokens_used, Some(150));
    assert_eq!(success.llm_latency_ms, Some(250.3));
    assert_eq!(
        success.timestamp,
        Utc.with_ymd_and_hms(2025, 10, 9, 12, 34, 56).unwrap() + Duration::milliseconds(789)
    );
    assert_eq!(success.output.as_ref().unwrap()["confidence"], json!(0.95));

    let failure = OutcomeEvent::from_json_str(FAILURE_EXAMPLE).unwrap();
    assert_eq!(failure.status, OutcomeStatus::Failure);
    assert_eq!(failure.severity, EventSeverity::Error);
    assert_eq!(failure.error_type.as_deref(), Some("ValueError"));
    assert_eq!(failure.retry_count, Some(2));
    assert_eq!(
        failure.metadata.as_ref().unwrap()["input_size"],
        json!(1024)
    );
    assert!(failure.stack_trace.unwrap().starts_with("Traceback"));
}

#[test]
fn every_status_and_severity_is_accepted_lowercase() {
    for status in OutcomeStatus::ALL {
        for severity in EventSeverity::ALL {
            let mut doc = example(SUCCESS_EXAMPLE);
            doc["status"] = json!(status.as_str());
            doc["severity"] = json!(severity.as_str());
            let event = OutcomeEvent::from_json_str(&doc.to_string()).unwrap();
            assert_eq!((event.status, event.severity), (status, severity));
        }
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let mut doc = example(SUCCESS_EXAMPLE);
    doc["added_by_a_newer_producer"] = json!({"anything": [1, 2]});
    assert!(OutcomeEvent::from_json_str(&doc.to_string()).is_ok());
}

/// Applies `edit` to the success example and decodes it, expecting an error.
fn reject(edit: impl FnOnce(&mut Value)) -> feedback_pipeline::EventError {
    let mut doc = example(SUCCESS_EXAMPLE);
    edit(&mut doc);
    OutcomeEvent::from_json_str(&doc.to_string()).expect_err("document must be rejected")
}

#[test]
fn a_missing_required_field_is_named() {
    for field in [
        "event_id",
        "run_id",
        "agent_name",
        "action_type",
        "timestamp",
        "duration_ms",
        "latency_ms",
        "status",
        "severity",
    ] {
        let err = reject(|doc| {
            doc.as_object_mut().unwrap().remove(field);
        });
        assert_eq!(err.kind(), EventErrorKind::MissingField, "{field}: {err}");
        assert_eq!(err.field_name(), Some(field), "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn a_wrong_type_is_named() {
    let cases = [
        ("duration_ms", json!("fast")),
        ("tokens_used", json!(-3)),
        ("tokens_used", json!(1.5)),
        ("tags", json!("reasoning")),
        ("metadata", json!([1, 2])),
        ("agent_name", json!(42)),
        ("retry_count", json!(true)),
    ];
    for (field, value) in cases {
        let err = reject(|doc| doc[field] = value.clone());
        assert_eq!(err.field_name(), Some(field), "{field}={value}: {err}");
        assert!(
            matches!(
                err.kind(),
                EventErrorKind::WrongType | EventErrorKind::InvalidValue
            ),
            "{field}={value}: {err}"
        );
    }
}

#[test]
fn an_unknown_status_or_severity_is_named_with_the_allowed_values() {
    let err = reject(|doc| doc["status"] = json!("exploded"));
    assert_eq!(err.field_name(), Some("status"));
    assert_eq!(err.kind(), EventErrorKind::InvalidValue);
    assert!(err.to_string().contains("cancelled"), "{err}");

    let err = reject(|doc| doc["severity"] = json!("INFO"));
    assert_eq!(err.field_name(), Some("severity"));
}

#[test]
fn values_outside_the_contract_are_named() {
    let cases: [(&str, Value); 8] = [
        ("duration_ms", json!(-1.0)),
        ("latency_ms", json!(-0.5)),
        ("quality_score", json!(1.5)),
        ("confidence_score", json!(-0.1)),
        ("cost_estimate", json!(-2)),
        ("agent_name", json!("")),
        ("event_id", json!("")),
        ("timestamp", json!("last tuesday")),
    ];
    for (field, value) in cases {
        let err = reject(|doc| doc[field] = value.clone());
        assert_eq!(
            err.kind(),
            EventErrorKind::InvalidValue,
            "{field}={value}: {err}"
        );
        assert_eq!(err.field_name(), Some(field), "{field}={value}: {err}");
    }
}

#[test]
fn a_number_too_large_for_a_double_is_rejected_with_its_field() {
    let text = SUCCESS_EXAMPLE.replace("\"duration_ms\": 289.5", "\"duration_ms\": 1e999");
    let err = OutcomeEvent::from_json_str(&text).unwrap_err();
    assert_eq!(err.field_name(), Some("duration_ms"), "{err}");

    let text = SUCCESS_EXAMPLE.replace("\"duration_ms\": 289.5", "\"duration_ms\": NaN");
    let err = OutcomeEvent::from_json_str(&text).unwrap_err();
    assert_eq!(err.kind(), EventErrorKind::MalformedJson, "{err}");
}

#[test]
fn non_finite_numbers_in_a_built_event_are_refused_before_encoding() {
    let mut event = OutcomeEvent::from_json_str(SUCCESS_EXAMPLE).unwrap();
    event.llm_latency_ms = Some(f64::NAN);
    let err = event.to_json_vec().unwrap_err();
    assert_eq!(err.field_name(), Some("llm_latency_ms"));
    event.llm_latency_ms = Some(f64::INFINITY);
    assert!(event.validate().is_err());
}

#[test]
fn absurd_sizes_are_rejected() {
    let padding = "x".repeat(MAX_EVENT_BYTES);
    let err = reject(|doc| doc["output"] = json!({ "blob": padding }));
    assert_eq!(err.kind(), EventErrorKind::TooLarge, "{err}");

    let err = reject(|doc| doc["agent_name"] = json!("a".repeat(10_000)));
    assert_eq!(err.field_name(), Some("agent_name"), "{err}");

    let tags: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
    let err = reject(|doc| doc["tags"] = json!(tags));
    assert_eq!(err.field_name(), Some("tags"), "{err}");

    let err = reject(|doc| doc["tags"] = json!(["ok", "y".repeat(1000)]));
    assert_eq!(err.field_name(), Some("tags[1]"), "{err}");

    // Nesting deep enough to overflow a recursive reader: refused where it is kept...
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let text = SUCCESS_EXAMPLE.replace("\"tokens_used\": 150,", &format!("\"output\": {deep},"));
    let err = OutcomeEvent::from_json_str(&text).unwrap_err();
    assert_eq!(err.kind(), EventErrorKind::MalformedJson, "{err}");
    let field = err.field_name().unwrap();
    assert!(field.starts_with("output[0]") && field.len() < 80, "{err}");
    // ...and skipped without recursion in an unknown field.
    let text = SUCCESS_EXAMPLE.replace("\"tokens_used\": 150,", &format!("\"unknown\": {deep},"));
    assert!(OutcomeEvent::from_json_str(&text).is_ok());
}

#[test]
fn malformed_input_is_rejected_as_malformed_json() {
    let inputs: [&[u8]; 7] = [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b"null",
        b"{\"event_id\": \"a\",}",
    ];
    for input in inputs {
        let err = OutcomeEvent::from_json_slice(input).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                EventErrorKind::MalformedJson | EventErrorKind::WrongType
            ),
            "{input:?}: {err}"
        );
    }
    let trailing = format!("{SUCCESS_EXAMPLE} extra");
    assert_eq!(
        OutcomeEvent::from_json_str(&trailing).unwrap_err().kind(),
        EventErrorKind::MalformedJson
    );
}

#[test]
fn mutated_bytes_never_panic() {
    // Deterministic xorshift mutations of both examples: flips, truncations, insertions.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut rejected = 0;
    for round in 0..5_000 {
        let source = if round % 2 == 0 {
            SUCCESS_EXAMPLE
        } else {
            FAILURE_EXAMPLE
        };
        let mut bytes = source.as_bytes().to_vec();
        for _ in 0..(1 + rng.next() % 4) {
            let at = (rng.next() as usize) % bytes.len();
            match rng.next() % 3 {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes.truncate(at.max(1)),
                _ => bytes.insert(at, rng.next() as u8),
            }
        }
        if let Err(err) = OutcomeEvent::from_json_slice(&bytes) {
            assert!(!err.to_string().is_empty());
            rejected += 1;
        }
    }
    assert!(
        rejected > 2_500,
        "mutations should mostly break the event, got {rejected}"
    );
}

#[test]
fn the_builder_fills_ids_times_and_derived_fields() {
    let end = Utc::now();
    let start = end - Duration::milliseconds(1500);
    let event = OutcomeEvent::builder("react_agent", "reasoning")
        .agent_type("reasoning")
        .span(start, end)
        .tokens(100, 40)
        .model("gpt-4o", "openai")
        .status(OutcomeStatus::Timeout)
        .build()
        .unwrap();
    for id in [&event.event_id, &event.run_id] {
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(*id, parsed.hyphenated().to_string(), "hyphenated lowercase");
    }
    assert_ne!(event.event_id, event.run_id);
    // An id set explicitly is kept, even an empty one, which the contract rejects.
    let refused = OutcomeEvent::builder("react_agent", "reasoning")
        .event_id("")
        .build();
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(event.timestamp, end);
    assert_eq!(event.duration_ms, 1500.0);
    assert_eq!(event.latency_ms, 1500.0);
    assert_eq!(event.severity, EventSeverity::Error);
    assert_eq!(event.tokens_used, Some(140));

    let other = OutcomeEvent::builder("react_agent", "reasoning")
        .build()
        .unwrap();
    assert_ne!(other.event_id, event.event_id);
    assert!((Utc::now() - other.timestamp).num_seconds() < 60);
}

#[test]
fn the_builder_refuses_an_invalid_event() {
    let err = OutcomeEvent::builder("", "reasoning").build().unwrap_err();
    assert_eq!(err.field_name(), Some("agent_name"));
    let err = OutcomeEvent::builder("a", "b")
        .quality_score(2.0)
        .build()
        .unwrap_err();
    assert_eq!(err.field_name(), Some("quality_score"));
}

#[test]
fn errors_set_failure_and_explicit_severity_wins() {
    let event = OutcomeEvent::builder("a", "b")
        .error("TimeoutError", "upstream slow")
        .severity(EventSeverity::Critical)
        .retry_count(3)
        .build()
        .unwrap();
    assert_eq!(event.status, OutcomeStatus::Failure);
    assert_eq!(event.severity, EventSeverity::Critical);
    assert_eq!(event.error_message.as_deref(), Some("upstream slow"));
}

#[test]
fn gen_ai_attributes_follow_the_opentelemetry_names() {
    let event = OutcomeEvent::builder("react_agent", "reasoning")
        .model("gpt-4o", "openai")
        .tokens(120, 30)
        .build()
        .unwrap();
    let attributes: std::collections::HashMap<_, _> =
        event.gen_ai_attributes().into_iter().collect();
    assert_eq!(attributes["gen_ai.request.model"], json!("gpt-4o"));
    assert_eq!(attributes["gen_ai.provider.name"], json!("openai"));
    assert_eq!(attributes["gen_ai.usage.input_tokens"], json!(120));
    assert_eq!(attributes["gen_ai.usage.output_tokens"], json!(30));
    assert_eq!(attributes["gen_ai.agent.name"], json!("react_agent"));
    assert!(!attributes.contains_key("error.type"));
}
