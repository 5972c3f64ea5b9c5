//! Size limits of an event, enforced on decode and published in the JSON Schema.
//!
//! They bound what one malformed or hostile producer can cost the processor; a decoded event
//! over a limit is rejected with the field named. The producer library fits its own events
//! instead (see `OutcomeEvent::fit`): long texts are cut with a marker, a large output becomes
//! a preview.

/// Largest encoded event accepted, in bytes.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Longest id or name (event_id, run_id, agent_name, model, ...), in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest error message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 16 * 1024;
/// Longest stack trace, in characters.
pub const MAX_STACK_TRACE_CHARS: usize = 256 * 1024;
/// Most tags on one event.
pub const MAX_TAGS: usize = 64;
