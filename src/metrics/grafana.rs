//! Links to the bundled Grafana dashboards (`grafana/dashboards/`), printed by `serve` and `run`
//! when `GRAFANA_URL` says where that Grafana is.

/// The bundled dashboards: title and uid (the `uid` of each JSON file in `grafana/dashboards/`).
pub const DASHBOARDS: [(&str, &str); 2] = [
    ("Agent outcomes", "fp-agent-outcomes"),
    ("Processor health", "fp-processor-health"),
];

/// A dashboard's title and its URL under the Grafana at `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardLink {
    /// The dashboard's title.
    pub title: &'static str,
    /// Its address (`<base>/d/<uid>`).
    pub url: String,
}

/// The links to every bundled dashboard under the Grafana at `base`.
pub fn dashboard_links(base: &str) -> Vec<DashboardLink> {
    let base = base.trim_end_matches('/');
    DASHBOARDS
        .iter()
        .map(|(title, uid)| DashboardLink {
            title,
            url: format!("{base}/d/{uid}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_names_a_shipped_dashboard_uid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards");
        let mut shipped = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            shipped.push(json["uid"].as_str().unwrap().to_owned());
        }
        shipped.sort();
        let mut linked: Vec<String> = DASHBOARDS.iter().map(|(_, uid)| uid.to_string()).collect();
        linked.sort();
        assert_eq!(linked, shipped);
    }

    #[test]
    fn links_join_the_base_without_a_double_slash() {
        let links = dashboard_links("http://localhost:3000/");
        assert_eq!(links[0].url, "http://localhost:3000/d/fp-agent-outcomes");
        assert_eq!(links[1].title, "Processor health");
    }
}
