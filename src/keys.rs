//! Composite keys (result record keys, alert dedup keys): parts joined by separators, each
//! part escaped, so two different lists of parts never give the same key.

/// Appends `part` to `key` with a backslash before every backslash and every char of
/// `separators`.
pub fn push_escaped(key: &mut String, part: &str, separators: &[char]) {
    for c in part.chars() {
        if c == '\\' || separators.contains(&c) {
            key.push('\\');
        }
        key.push(c);
    }
}

/// `parts` joined by `separator`, each escaped ([`push_escaped`]).
pub fn join_escaped<'a>(parts: impl IntoIterator<Item = &'a str>, separator: char) -> String {
    let mut key = String::new();
    for (index, part) in parts.into_iter().enumerate() {
        if index > 0 {
            key.push(separator);
        }
        push_escaped(&mut key, part, &[separator]);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_that_hold_the_separator_do_not_collide() {
        let a = join_escaped(["q", "a|b", "c"], '|');
        let b = join_escaped(["q", "a", "b|c"], '|');
        assert_ne!(a, b);
        assert_eq!(a, r"q|a\|b|c");
        // A part ending in a backslash cannot swallow the separator after it.
        assert_ne!(
            join_escaped([r"a\", "b"], '|'),
            join_escaped([r"a\|b"], '|')
        );
        // Ordinary parts are joined as they are.
        assert_eq!(
            join_escaped(["per_agent", "2026", "agent_1"], '|'),
            "per_agent|2026|agent_1"
        );
    }
}
