//! A self-contained HTML page around the picture: how to read it, the picture itself (its
//! `<title>`s become hover tips), a table with one row per connection, and every record as
//! the trace log would print it, to compare the drawing with the text.

use std::fmt::Write;
use std::time::Instant;

use mio_reactor::Record;

use crate::lanes::{state_name, Timeline};
use crate::svg::{bytes, escape};

/// The page for `timeline`, embedding `svg`, with `records` (timed from `start`) at the end.
pub fn page(
    timeline: &Timeline,
    svg: &str,
    start: Instant,
    records: &[(Instant, Record)],
) -> String {
    let mut html = String::new();
    html.push_str(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>mio-reactor: a session's timeline</title>\n<style>\n\
         body { font-family: system-ui, sans-serif; color: #1f2937; margin: 2em; max-width: 1240px; }\n\
         svg { border: 1px solid #e5e7eb; max-width: 100%; height: auto; }\n\
         table { border-collapse: collapse; margin: 1em 0; }\n\
         td, th { border-bottom: 1px solid #e5e7eb; padding: 0.3em 0.8em; text-align: left; }\n\
         td.n { text-align: right; font-variant-numeric: tabular-nums; }\n\
         code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; }\n\
         pre { background: #f9fafb; padding: 1em; max-height: 30em; overflow: auto; }\n\
         </style>\n</head>\n<body>\n\
         <h1>A session's timeline</h1>\n\
         <p>One echo server on one thread, six clients on their own threads, drawn from the \
         reactor's trace records. Each lane is one connection, time runs left to right. The \
         band is the connection's state; above it is what came in (reads ▲, EOF), below it \
         what went out (writes ▼, FIN); a grey dot on its edge is a readiness event, the loop \
         waking up for that connection. Red hatching: the reactor stopped reading that \
         connection because the peer was not reading its echo. The top lane is the loop: \
         grey while it waits in <code>poll</code>, a tick each time it wakes up. \
         <strong>Hover over anything</strong> to see the record behind it.</p>\n",
    );
    html.push_str(svg);
    connections(&mut html, timeline);
    record_log(&mut html, start, records);
    html.push_str("</body>\n</html>\n");
    html
}

/// One row per connection: its states in order, how it ended, its bytes.
fn connections(html: &mut String, timeline: &Timeline) {
    html.push_str(
        "<h2>The connections</h2>\n<table>\n<tr><th>id</th><th>client</th><th>states</th>\
         <th>close</th><th class=\"n\">in</th><th class=\"n\">out</th>\
         <th class=\"n\">reading paused</th><th class=\"n\">open for</th></tr>\n",
    );
    for lane in &timeline.lanes {
        let mut states: Vec<&str> = lane.spans.iter().map(|s| state_name(s.state)).collect();
        states.dedup();
        let (reason, bytes_in, bytes_out) = match &lane.end {
            Some(end) => (
                end.reason.to_string(),
                bytes(end.bytes_in),
                bytes(end.bytes_out),
            ),
            None => ("still open".to_string(), String::new(), String::new()),
        };
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}×</td><td class=\"n\">{:.0} ms</td></tr>",
            lane.conn,
            escape(&lane.role),
            states.join(" → "),
            escape(&reason),
            bytes_in,
            bytes_out,
            lane.paused.len(),
            lane.closed() - lane.opened()
        );
    }
    html.push_str("</table>\n");
}

/// Every record, as `RUST_LOG=mio_reactor=trace` prints it, with its time.
fn record_log(html: &mut String, start: Instant, records: &[(Instant, Record)]) {
    let _ = writeln!(
        html,
        "<h2>The records</h2>\n<details><summary>All {} records, as \
         <code>RUST_LOG=mio_reactor=trace</code> prints them</summary>\n<pre>",
        records.len()
    );
    for (at, record) in records {
        let ms = at.saturating_duration_since(start).as_secs_f64() * 1e3;
        let _ = writeln!(html, "{ms:9.3} ms  {}", escape(&record.to_string()));
    }
    html.push_str("</pre></details>\n");
}
