//! `GET /metrics`: the same readings in the Prometheus text exposition format (version
//! 0.0.4), one series per reactor thread (label `reactor`), closed connections also by
//! `reason`. `promtool check metrics` accepts it (`tests/http_server_live.rs`).

use std::fmt::Write;

use crate::readings::{Kind, Reading};

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric name starts with this.
const PREFIX: &str = "mio_reactor_";

/// The `/metrics` page for these per-reactor readings (all in the same order).
pub fn metrics_text(per_reactor: &[Vec<Reading>]) -> Vec<u8> {
    let mut text = String::new();
    let Some(first) = per_reactor.first() else {
        return Vec::new();
    };
    // All series of one metric must follow its HELP and TYPE lines, as one group.
    let mut previous_metric = "";
    for (position, template) in first.iter().enumerate() {
        if template.metric != previous_metric {
            previous_metric = template.metric;
            let kind = match template.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(text, "# HELP {PREFIX}{} {}", template.metric, template.help);
            let _ = writeln!(text, "# TYPE {PREFIX}{} {kind}", template.metric);
        }
        for (index, readings) in per_reactor.iter().enumerate() {
            let reading = &readings[position];
            let _ = write!(text, "{PREFIX}{}{{reactor=\"{index}\"", reading.metric);
            if let Some(reason) = reading.reason {
                let _ = write!(text, ",reason=\"{reason}\"");
            }
            let _ = writeln!(text, "}} {}", reading.value.as_f64());
        }
    }
    text.into_bytes()
}
