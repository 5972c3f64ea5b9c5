//! [`OutcomeEventView`]: an event read in place from its JSON bytes, for the processor.
//!
//! Decoding into [`OutcomeEvent`] allocates every string and builds `metadata` and `output`
//! as JSON trees, then the processor copies the few columns its queries read and throws the
//! rest away. The view borrows strings from the message instead (copying only those with
//! escapes), keeps `metadata` as its raw JSON text and skips `output`, which nothing in the
//! processor reads. Both decode the same fields with the same rules; see
//! [`OutcomeEventView::from_json_slice`] for where the view is more lenient.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::de::{self, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::codec::check_size;
use super::error::{EventError, EventErrorKind};
use super::outcome::OutcomeEvent;
use super::status::{EventSeverity, OutcomeStatus};
use super::timestamp;

/// A read-only event whose text borrows from the bytes it was decoded from, or from an
/// [`OutcomeEvent`] ([`OutcomeEvent::view`]). The fields mean what they mean on
/// [`OutcomeEvent`]; `output` is left out.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // Field for field the same as OutcomeEvent's, documented there.
pub struct OutcomeEventView<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub event_id: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "text")]
    pub run_id: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "text")]
    pub agent_name: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub agent_type: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    pub action_type: Cow<'a, str>,
    #[serde(with = "timestamp::required")]
    pub timestamp: DateTime<Utc>,
    #[serde(default, with = "timestamp::optional")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default, with = "timestamp::optional")]
    pub end_time: Option<DateTime<Utc>>,
    pub duration_ms: f64,
    pub latency_ms: f64,
    pub status: OutcomeStatus,
    pub severity: EventSeverity,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub error_message: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub error_type: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub stack_trace: Option<Cow<'a, str>>,
    #[serde(default)]
    pub retry_count: Option<u32>,
    #[serde(default)]
    pub llm_latency_ms: Option<f64>,
    #[serde(default)]
    pub tokens_used: Option<u64>,
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub memory_used_mb: Option<f64>,
    #[serde(default)]
    pub cpu_time_ms: Option<f64>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub model: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub provider: Option<Cow<'a, str>>,
    #[serde(default)]
    pub cost_estimate: Option<f64>,
    #[serde(default)]
    pub quality_score: Option<f64>,
    #[serde(default)]
    pub confidence_score: Option<f64>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub correlation_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub workflow_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_tags")]
    pub tags: Option<TagsView<'a>>,
    #[serde(default, borrow, deserialize_with = "optional_object")]
    pub metadata: Option<MetadataView<'a>>,
    /// `output` is read over, not kept; naming it makes a repeated `output` key an error, as
    /// it is for the owned event.
    #[serde(default, rename = "output")]
    #[allow(dead_code)] // Decoded for the duplicate-key check only.
    skipped_output: Option<IgnoredAny>,
    #[serde(default)]
    pub output_truncated: Option<bool>,
    #[serde(default)]
    pub output_original_bytes: Option<u64>,
}

/// The `tags` of a view: decoded, or the list of an [`OutcomeEvent`] (so a view of an owned
/// event, made on every validation, allocates nothing).
#[derive(Debug, Clone, PartialEq)]
pub enum TagsView<'a> {
    /// Tags decoded from JSON.
    Decoded(Vec<Cow<'a, str>>),
    /// The tags of an [`OutcomeEvent`].
    Borrowed(&'a [String]),
}

impl TagsView<'_> {
    /// How many tags there are.
    pub fn len(&self) -> usize {
        match self {
            Self::Decoded(tags) => tags.len(),
            Self::Borrowed(tags) => tags.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tags in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (decoded, borrowed) = match self {
            Self::Decoded(tags) => (Some(tags.iter().map(|tag| tag.as_ref())), None),
            Self::Borrowed(tags) => (None, Some(tags.iter().map(String::as_str))),
        };
        decoded
            .into_iter()
            .flatten()
            .chain(borrowed.into_iter().flatten())
    }
}

/// The `metadata` object of a view: raw JSON text when decoded, the map when borrowed from an
/// [`OutcomeEvent`].
#[derive(Debug, Clone)]
pub enum MetadataView<'a> {
    /// The object as the producer wrote it.
    Raw(&'a RawValue),
    /// The object of an [`OutcomeEvent`].
    Map(&'a Map<String, Value>),
}

impl MetadataView<'_> {
    /// The object as JSON text. Raw text is kept as written: our producers write compact JSON
    /// with keys in insertion order, which is also how a map is written here.
    pub fn to_json_text(&self) -> Cow<'_, str> {
        match self {
            Self::Raw(raw) => Cow::Borrowed(raw.get()),
            Self::Map(map) => Cow::Owned(serde_json::to_string(map).unwrap_or_default()),
        }
    }
}

impl<'a> OutcomeEventView<'a> {
    /// Decodes and validates one event in place.
    ///
    /// Accepts and rejects exactly what [`OutcomeEvent::from_json_slice`] does, with the same
    /// errors, except inside `metadata` and `output`: those are checked for JSON syntax but not
    /// built, so a lone UTF-16 surrogate escape, a number beyond `f64` or nesting deeper than
    /// serde_json's limit of 128 there is let through.
    pub fn from_json_slice(bytes: &'a [u8]) -> Result<Self, EventError> {
        check_size(bytes)?;
        // One UTF-8 check of the whole message is cheaper than serde_json's check per string.
        // serde_json does not check the strings it skips (unknown fields), so a message with
        // invalid UTF-8 is decoded string by string, as the owned decoder does.
        let decoded = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str::<OutcomeEventView<'a>>(text),
            Err(_) => serde_json::from_slice::<OutcomeEventView<'a>>(bytes),
        };
        match decoded {
            Ok(view) => {
                view.validate()?;
                Ok(view)
            }
            Err(view_error) => Err(owned_decode_error(bytes, view_error.to_string())),
        }
    }
}

/// The owned decoder's error for bytes the view refused: it finds and names the broken field
/// (failures are rare, so decoding twice costs little). `fallback` is used if it accepts them.
fn owned_decode_error(bytes: &[u8], fallback: String) -> EventError {
    match OutcomeEvent::from_json_slice(bytes) {
        Err(err) => err,
        Ok(_) => EventError::whole(EventErrorKind::MalformedJson, fallback),
    }
}

impl OutcomeEvent {
    /// A view borrowing every field but `output`.
    pub fn view(&self) -> OutcomeEventView<'_> {
        fn text(value: &Option<String>) -> Option<Cow<'_, str>> {
            value.as_deref().map(Cow::Borrowed)
        }
        OutcomeEventView {
            event_id: Cow::Borrowed(&self.event_id),
            run_id: Cow::Borrowed(&self.run_id),
            agent_name: Cow::Borrowed(&self.agent_name),
            agent_type: text(&self.agent_type),
            action_type: Cow::Borrowed(&self.action_type),
            timestamp: self.timestamp,
            start_time: self.start_time,
            end_time: self.end_time,
            duration_ms: self.duration_ms,
            latency_ms: self.latency_ms,
            status: self.status,
            severity: self.severity,
            error_message: text(&self.error_message),
            error_type: text(&self.error_type),
            stack_trace: text(&self.stack_trace),
            retry_count: self.retry_count,
            llm_latency_ms: self.llm_latency_ms,
            tokens_used: self.tokens_used,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            memory_used_mb: self.memory_used_mb,
            cpu_time_ms: self.cpu_time_ms,
            model: text(&self.model),
            provider: text(&self.provider),
            cost_estimate: self.cost_estimate,
            quality_score: self.quality_score,
            confidence_score: self.confidence_score,
            correlation_id: text(&self.correlation_id),
            workflow_id: text(&self.workflow_id),
            tags: self.tags.as_deref().map(TagsView::Borrowed),
            metadata: self.metadata.as_ref().map(MetadataView::Map),
            skipped_output: None,
            output_truncated: self.output_truncated,
            output_original_bytes: self.output_original_bytes,
        }
    }
}

/// A string, borrowed unless it has escapes. (serde borrows a `Cow` only as a direct field;
/// inside an `Option` or a `Vec` it would always copy.)
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

fn text<'de: 'a, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'a, str>, D::Error> {
    Text::deserialize(deserializer).map(|text| text.0)
}

fn optional_text<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    Ok(Option::<Text<'a>>::deserialize(deserializer)?.map(|text| text.0))
}

fn optional_tags<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TagsView<'a>>, D::Error> {
    Ok(Option::<Vec<Text<'a>>>::deserialize(deserializer)?
        .map(|texts| TagsView::Decoded(texts.into_iter().map(|text| text.0).collect())))
}

/// `metadata` must be an object (or null), as `Map` demands of the owned event.
fn optional_object<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<MetadataView<'a>>, D::Error> {
    let Some(raw) = Option::<&'a RawValue>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if !raw.get().starts_with('{') {
        return Err(de::Error::custom("invalid type: expected a map"));
    }
    Ok(Some(MetadataView::Raw(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::limits::MAX_EVENT_BYTES;

    const FULL: &str = r#"{"event_id":"e-1","run_id":"r\"1","agent_name":"planner",
        "agent_type":"reasoning","action_type":"plan","timestamp":"2025-10-09T12:34:56.789Z",
        "start_time":"2025-10-09T12:34:55.000Z","end_time":"2025-10-09T12:34:56.789Z",
        "duration_ms":1789.0,"latency_ms":1790.5,"status":"failure","severity":"error",
        "error_message":"line\nbreak","error_type":"ValueError","stack_trace":"at x",
        "retry_count":2,"llm_latency_ms":1200.0,"tokens_used":300,"input_tokens":100,
        "output_tokens":200,"memory_used_mb":12.5,"cpu_time_ms":80.0,"model":"gpt-4o",
        "provider":"openai","cost_estimate":0.01,"quality_score":0.5,"confidence_score":0.9,
        "correlation_id":"c-1","workflow_id":"w-1","tags":["a","b\u00e9"],
        "metadata":{"env":"prod","n":[1,2]},"output":{"text":"ok"}}"#;

    #[test]
    fn a_decoded_view_equals_the_view_of_the_owned_event() {
        let owned = OutcomeEvent::from_json_str(FULL).unwrap();
        let view = OutcomeEventView::from_json_slice(FULL.as_bytes()).unwrap();
        let borrowed = owned.view();
        // Metadata differs only in form: raw text against a map of the same object.
        assert_eq!(
            view.metadata.as_ref().unwrap().to_json_text(),
            borrowed.metadata.as_ref().unwrap().to_json_text()
        );
        // Tags too: decoded against borrowed.
        let strip = |mut view: OutcomeEventView<'_>| {
            let tags = view
                .tags
                .take()
                .map(|tags| tags.iter().map(str::to_owned).collect::<Vec<_>>());
            view.metadata = None;
            view.skipped_output = None;
            format!("{view:?} {tags:?}")
        };
        assert_eq!(strip(view.clone()), strip(borrowed));
        // Strings without escapes are borrowed, those with escapes copied.
        assert!(matches!(view.agent_name, Cow::Borrowed(_)));
        assert!(matches!(view.model, Some(Cow::Borrowed(_))));
        assert!(matches!(view.run_id, Cow::Owned(_)));
        assert!(matches!(
            &view.tags,
            Some(TagsView::Decoded(tags)) if matches!(tags[..], [Cow::Borrowed(_), Cow::Owned(_)])
        ));
    }

    #[test]
    fn rejects_what_the_owned_decoder_rejects_with_the_same_error() {
        let cases = [
            FULL.replace(r#""status":"failure""#, r#""status":"exploded""#),
            FULL.replace(r#""agent_name":"planner","#, ""),
            FULL.replace(r#""retry_count":2"#, r#""retry_count":"2""#),
            FULL.replace(r#""quality_score":0.5"#, r#""quality_score":1.5"#),
            FULL.replace(r#""event_id":"e-1""#, r#""event_id":"""#),
            FULL.replace(
                r#""metadata":{"env":"prod","n":[1,2]}"#,
                r#""metadata":[1]"#,
            ),
            FULL.replace(r#""tags":["a","b\u00e9"]"#, r#""tags":"a""#),
            FULL.replace(
                r#""timestamp":"2025-10-09T12:34:56.789Z""#,
                r#""timestamp":"noon""#,
            ),
            FULL.replace(r#""output":{"text":"ok"}"#, r#""output":1,"output":2"#),
            FULL[..FULL.len() - 1].to_owned(),
            format!("{FULL} trailing"),
            "\u{0}\u{1}garbage".to_owned(),
            format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_EVENT_BYTES)),
        ];
        for case in cases {
            let owned = OutcomeEvent::from_json_str(&case).unwrap_err();
            let view = OutcomeEventView::from_json_slice(case.as_bytes()).unwrap_err();
            assert_eq!(view, owned, "{}", &case[..case.len().min(200)]);
        }
        // Invalid UTF-8 inside a string.
        let mut bytes = FULL.as_bytes().to_vec();
        bytes[FULL.find("planner").unwrap()] = 0xff;
        assert_eq!(
            OutcomeEventView::from_json_slice(&bytes).unwrap_err(),
            OutcomeEvent::from_json_slice(&bytes).unwrap_err()
        );
    }

    #[test]
    fn invalid_utf8_in_an_unknown_field_is_skipped_as_the_owned_decoder_skips_it() {
        let mut bytes = FULL.replacen('{', r#"{"extra":"?","#, 1).into_bytes();
        let at = bytes.iter().position(|&b| b == b'?').unwrap();
        bytes[at] = 0xff;
        assert!(OutcomeEvent::from_json_slice(&bytes).is_ok());
        let view = OutcomeEventView::from_json_slice(&bytes).unwrap();
        assert_eq!(view.agent_name, "planner");
    }

    #[test]
    fn null_optional_fields_read_as_absent() {
        let nulls = FULL
            .replace(r#""agent_type":"reasoning""#, r#""agent_type":null"#)
            .replace(r#""tags":["a","b\u00e9"]"#, r#""tags":null"#)
            .replace(
                r#""metadata":{"env":"prod","n":[1,2]}"#,
                r#""metadata":null"#,
            );
        let view = OutcomeEventView::from_json_slice(nulls.as_bytes()).unwrap();
        assert_eq!(view.agent_type, None);
        assert!(view.tags.is_none());
        assert!(view.metadata.is_none());
    }
}
