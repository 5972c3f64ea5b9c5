//! Draws a [`ViewState`] with ratatui: a header line, the agents' table, the alerts firing.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};

use super::state::ViewState;

/// Draws `state` over the whole frame.
pub fn render(frame: &mut Frame, state: &ViewState) {
    let alert_lines = state.firing.len().clamp(1, 8) as u16 + 2;
    let header_lines = 1 + u16::from(!state.dashboards.is_empty());
    let [header, agents, alerts] = Layout::vertical([
        Constraint::Length(header_lines + 2),
        Constraint::Min(5),
        Constraint::Length(alert_lines),
    ])
    .areas(frame.area());
    frame.render_widget(header_line(state), header);
    frame.render_widget(agents_table(state), agents);
    frame.render_widget(alerts_list(state), alerts);
}

fn header_line(state: &ViewState) -> Paragraph<'static> {
    let stats = format!(
        "{:.0} events/s   consumed {}   consumer lag {}   dead letters {}   alerts firing {}",
        state.events_per_s,
        state.consumed,
        state.consumer_lag,
        state.dead_letters,
        state.firing.len()
    );
    let mut lines = vec![Line::from(stats)];
    if !state.dashboards.is_empty() {
        let links: Vec<String> = state
            .dashboards
            .iter()
            .map(|link| format!("{} {}", link.title, link.url))
            .collect();
        lines.push(Line::from(format!("Grafana: {}", links.join("   "))));
    }
    Paragraph::new(lines).block(Block::bordered().title(" feedback-pipeline (q quits) "))
}

fn agents_table(state: &ViewState) -> Table<'static> {
    let optional = |value: Option<f64>, format: fn(f64) -> String| value.map_or("-".into(), format);
    let rows = state.agents.iter().map(|(name, row)| {
        Row::new(vec![
            name.clone(),
            row.events_per_min.to_string(),
            optional(row.success_rate, |rate| format!("{:.1} %", rate * 100.0)),
            optional(row.p95_latency_ms, |ms| format!("{ms:.0} ms")),
            row.tokens.to_string(),
            format!("${:.4}", row.cost_usd),
        ])
    });
    let widths = [
        Constraint::Min(18),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Length(10),
    ];
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let header = [
        "agent",
        "events/min",
        "success",
        "p95 (5 min)",
        "tokens",
        "cost",
    ];
    Table::new(rows, widths)
        .header(Row::new(header).style(bold))
        .block(Block::bordered().title(" agents, last closed window "))
}

fn alerts_list(state: &ViewState) -> Paragraph<'static> {
    let red = Style::new().fg(Color::Red);
    let lines: Vec<Line<'static>> = if state.firing.is_empty() {
        vec![Line::from("none")]
    } else {
        state
            .firing
            .values()
            .map(|firing| Line::styled(firing.summary.clone(), red))
            .collect()
    };
    let title = format!(" alerts firing ({} records so far) ", state.alert_records);
    Paragraph::new(lines).block(Block::bordered().title(title))
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use serde_json::json;

    use super::*;
    use feedback_pipeline::metrics::grafana::dashboard_links;
    use feedback_pipeline::processor::sinks::ResultRecord;

    fn result(value: serde_json::Value) -> ResultRecord {
        ResultRecord {
            key: String::new(),
            value,
        }
    }

    #[test]
    fn the_table_shows_each_agent_and_the_alerts_firing() {
        let mut state = ViewState::default();
        state.take_result(&result(json!({"query": "error_rate_by_agent",
            "agent_name": "data_processor", "executions": 300, "error_rate": 0.25})));
        state.take_result(&result(json!({"query": "latency_by_agent",
            "agent_name": "data_processor", "p95_latency_ms": 1234.0})));
        state.take_result(&result(json!({"query": "token_usage_and_cost",
            "agent_name": "data_processor", "window_start": "2026-01-01T00:01:00Z",
            "model": "m", "tokens_used": 5000, "cost_usd": 0.0123})));
        state.dashboards = dashboard_links("http://localhost:3000");
        let mut terminal = Terminal::new(TestBackend::new(120, 16)).unwrap();
        terminal.draw(|frame| render(frame, &state)).unwrap();
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|cell| cell.symbol())
            .collect();
        for expected in [
            "data_processor",
            "300",
            "75.0 %",
            "1234 ms",
            "5000",
            "$0.0123",
            "Agent outcomes http://localhost:3000/d/fp-agent-outcomes",
        ] {
            assert!(
                screen.contains(expected),
                "{expected} missing from:\n{screen}"
            );
        }
        assert!(screen.contains("none"), "no alert firing yet");
    }
}
