//! `GET /stats`: every reactor's [`Stats`](mio_reactor::Stats) as JSON, with their total.
//!
//! ```json
//! {"reactors": 1,
//!  "total": {"open_connections": 1, "accepted": 7, "closed": {"peer_closed": 6, ...},
//!            "bytes_in": 912, "time_blocked": 1.25, ...},
//!  "per_reactor": [{...}]}
//! ```
//! Keys are the `Stats` field names; `closed` is an object by reason; `time_blocked` is in
//! seconds.

use serde_json::{Map, Value};

use crate::readings::{self, Number, Reading};

/// The `/stats` document for these per-reactor readings.
pub fn stats_json(per_reactor: &[Vec<Reading>]) -> Vec<u8> {
    let document = serde_json::json!({
        "reactors": per_reactor.len(),
        "total": object(&readings::total(per_reactor)),
        "per_reactor": per_reactor.iter().map(|r| object(r)).collect::<Vec<_>>(),
    });
    let mut body = serde_json::to_vec(&document).unwrap_or_default();
    body.push(b'\n');
    body
}

fn object(readings: &[Reading]) -> Value {
    let mut object = Map::new();
    for reading in readings {
        let value = match reading.value {
            Number::Count(n) => Value::from(n),
            Number::Seconds(s) => Value::from(s),
        };
        match reading.reason {
            None => {
                object.insert(reading.field.into(), value);
            }
            Some(reason) => {
                let by_reason = object
                    .entry(reading.field)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(by_reason) = by_reason {
                    by_reason.insert(reason.into(), value);
                }
            }
        }
    }
    Value::Object(object)
}
