//! [`RunOutput`]: where `run` shows what happens: the live view on a terminal, JSON Lines
//! otherwise (pipes, `--json`, and what the tests read).

use std::io;
use std::time::Instant;

use serde_json::json;

use feedback_pipeline::alerts::AlertRecord;
use feedback_pipeline::metrics::ProcessorStats;
use feedback_pipeline::metrics::grafana::DashboardLink;
use feedback_pipeline::processor::sinks::ResultRecord;

use super::view::LiveView;

/// The run's output.
pub enum RunOutput {
    /// One JSON object per line: `{"type": "result", "key", "value"}`, `{"type": "alert", ...}`.
    Json,
    /// The live view.
    Live(Box<LiveView>),
}

impl RunOutput {
    /// The live view when `live`, else JSON Lines.
    pub fn new(live: bool) -> io::Result<Self> {
        Ok(if live {
            Self::Live(Box::new(LiveView::start()?))
        } else {
            Self::Json
        })
    }

    /// A window result.
    pub fn result(&mut self, record: &ResultRecord) {
        match self {
            Self::Json => {
                let line = json!({"type": "result", "key": record.key, "value": record.value});
                println!("{line}");
            }
            Self::Live(view) => view.state.take_result(record),
        }
    }

    /// An alert record.
    pub fn alert(&mut self, record: &AlertRecord) {
        match self {
            Self::Json => {
                let mut line = serde_json::to_value(record).unwrap_or_default();
                line["type"] = "alert".into();
                println!("{line}");
            }
            Self::Live(view) => view.state.take_alert(record),
        }
    }

    /// Shows the links to the Grafana dashboards (logged in either mode by `start_http`).
    pub fn dashboards(&mut self, links: Vec<DashboardLink>) {
        if let Self::Live(view) = self {
            view.state.dashboards = links;
        }
    }

    /// Refreshes the view from `stats` when it is due; `true` when the user asked to quit.
    pub fn tick(&mut self, stats: &ProcessorStats) -> io::Result<bool> {
        match self {
            Self::Json => Ok(false),
            Self::Live(view) => view.tick(|state| {
                state.take_stats(&stats.snapshot(), stats.consumer_lag(), Instant::now())
            }),
        }
    }

    /// Gives the terminal back; whether the output was JSON Lines.
    pub fn finish(self) -> bool {
        matches!(self, Self::Json)
    }
}
