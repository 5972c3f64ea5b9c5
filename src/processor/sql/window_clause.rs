//! The ksqlDB window clause: `WINDOW TUMBLING (SIZE n UNIT)` and
//! `WINDOW HOPPING (SIZE n UNIT, ADVANCE BY n UNIT)`, with an optional `GRACE PERIOD n UNIT`.
//! It is cut out of the SQL text (replaced by blanks, so DataFusion's line numbers stay right).

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use crate::window::{Millis, WindowSpec};

/// What the window clause said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowClause {
    /// Size and advance.
    pub spec: WindowSpec,
    /// The query's own grace period, when the clause has one.
    pub grace: Option<Duration>,
}

/// A window clause that cannot be used; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct WindowClauseError {
    /// Line of the problem in the SQL text.
    pub line: usize,
    /// What is wrong and what would be right.
    pub reason: String,
}

static CLAUSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)\bWINDOW\s+(TUMBLING|HOPPING|SESSION)\s*\(([^)]*)\)").expect("valid regex")
});
static PART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)^\s*(SIZE|ADVANCE\s+BY|GRACE\s+PERIOD|RETENTION)\s+(\d+)\s+([A-Z]+)\s*$")
        .expect("valid regex")
});

/// Splits the window clause off `sql`; returns the SQL without it and the clause.
pub fn split_window_clause(sql: &str) -> Result<(String, WindowClause), WindowClauseError> {
    let mut found = CLAUSE.captures_iter(sql);
    let Some(captures) = found.next() else {
        return Err(WindowClauseError {
            line: 1,
            reason: "no window clause: add e.g. `WINDOW TUMBLING (SIZE 5 MINUTES)` after FROM"
                .into(),
        });
    };
    let whole = captures.get(0).expect("group 0");
    let line = line_of(sql, whole.start());
    if let Some(second) = found.next() {
        return Err(WindowClauseError {
            line: line_of(sql, second.get(0).expect("group 0").start()),
            reason: "a query takes one window clause".into(),
        });
    }
    let error = |reason: String| WindowClauseError { line, reason };
    let kind = captures[1].to_ascii_uppercase();
    if kind == "SESSION" {
        return Err(error(
            "session windows are not supported: use TUMBLING or HOPPING".into(),
        ));
    }
    let (mut size, mut advance, mut grace) = (None, None, None);
    for part in captures[2].split(',') {
        let Some(part_captures) = PART.captures(part) else {
            return Err(error(format!(
                "cannot read `{}` in the window clause: expected `SIZE n UNIT`, `ADVANCE BY n UNIT` or `GRACE PERIOD n UNIT`",
                part.trim()
            )));
        };
        let amount: u64 = part_captures[2]
            .parse()
            .map_err(|_| error(format!("`{}` is too large", &part_captures[2])))?;
        let millis = to_millis(amount, &part_captures[3]).map_err(&error)?;
        let name = part_captures[1].to_ascii_uppercase();
        match name.split_whitespace().next() {
            Some("SIZE") => size = Some(millis),
            Some("ADVANCE") => advance = Some(millis),
            Some("GRACE") => grace = Some(Duration::from_millis(millis as u64)),
            _ => {} // RETENTION: state here lives only as long as its windows.
        }
    }
    let size = size.ok_or_else(|| error("the window clause needs `SIZE n UNIT`".into()))?;
    let spec = match (kind.as_str(), advance) {
        ("TUMBLING", None) => WindowSpec::tumbling(size),
        ("TUMBLING", Some(_)) => {
            return Err(error(
                "a tumbling window has no ADVANCE BY: use WINDOW HOPPING".into(),
            ));
        }
        (_, None) => {
            return Err(error("a hopping window needs `ADVANCE BY n UNIT`".into()));
        }
        (_, Some(advance)) if advance > size => {
            return Err(error(format!(
                "ADVANCE BY ({advance} ms) is larger than SIZE ({size} ms): windows would leave gaps"
            )));
        }
        (_, Some(advance)) => WindowSpec::hopping(size, advance),
    };
    if size == 0 || spec.advance == 0 {
        return Err(error("window size and advance must be positive".into()));
    }
    let blanked: String = sql[whole.range()]
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    let mut rest = String::with_capacity(sql.len());
    rest.push_str(&sql[..whole.start()]);
    rest.push_str(&blanked);
    rest.push_str(&sql[whole.end()..]);
    Ok((rest, WindowClause { spec, grace }))
}

fn to_millis(amount: u64, unit: &str) -> Result<Millis, String> {
    let unit = unit.to_ascii_uppercase();
    let factor: u64 = match unit.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => {
            return Err(format!(
                "unknown time unit `{unit}`: use MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS"
            ));
        }
    };
    amount
        .checked_mul(factor)
        .and_then(|ms| Millis::try_from(ms).ok())
        .ok_or_else(|| format!("{amount} {unit} is too long"))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_clauses_and_keeps_lines() {
        let sql = "SELECT a\nFROM agent_outcomes\nWINDOW HOPPING (SIZE 1 HOUR,\n ADVANCE BY 5 MINUTES)\nGROUP BY a";
        let (rest, clause) = split_window_clause(sql).unwrap();
        assert_eq!(clause.spec, WindowSpec::hopping(3_600_000, 300_000));
        assert_eq!(rest.lines().count(), sql.lines().count());
        assert!(!rest.to_uppercase().contains("HOPPING"));
        let (_, clause) = split_window_clause(
            "select 1 from t window tumbling (size 30 seconds, grace period 2 seconds)",
        )
        .unwrap();
        assert_eq!(clause.spec, WindowSpec::tumbling(30_000));
        assert_eq!(clause.grace, Some(Duration::from_secs(2)));
    }

    #[test]
    fn rejects_with_line_and_reason() {
        let err = split_window_clause("SELECT 1\nFROM t\nWINDOW TUMBLING (SIZE 5 FORTNIGHTS)")
            .unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("FORTNIGHTS"), "{err}");
        let err =
            split_window_clause("SELECT 1 FROM t WINDOW HOPPING (SIZE 5 MINUTES)").unwrap_err();
        assert!(err.reason.contains("ADVANCE BY"), "{err}");
        let err = split_window_clause("SELECT 1 FROM t").unwrap_err();
        assert!(err.reason.contains("no window clause"), "{err}");
    }
}
