//! The event contract shared by the producer and the processor: [`OutcomeEvent`], its
//! vocabularies, its JSON codec and validation, its builder and its JSON Schema.

mod builder;
mod codec;
mod error;
mod fit;
mod gen_ai;
pub mod limits;
mod outcome;
pub mod reasons;
mod status;
pub mod timestamp;
mod validate;
mod view;

pub use builder::OutcomeEventBuilder;
pub(crate) use builder::new_uuid;
pub use error::{EventError, EventErrorKind};
pub use fit::OUTPUT_PREVIEW_BYTES;
pub use outcome::OutcomeEvent;
pub use status::{EventSeverity, OutcomeStatus, UnknownVariant};
pub use view::{MetadataView, OutcomeEventView, TagsView};

/// The JSON Schema (draft 2020-12) of [`OutcomeEvent`], as published in
/// `schema/outcome-event.schema.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(OutcomeEvent);
    schema.to_value()
}
