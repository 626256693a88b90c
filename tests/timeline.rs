//! The `timeline` example plays its scripted session and draws it: one lane per scripted
//! connection, the states they went through, and the reset.
//!
//! The example checks its own session (every echoed byte, every close reason) and exits
//! non-zero if anything is off, so a successful run already says the script went as
//! planned; these tests check what it drew. It runs once, shared by the tests.

mod util;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use util::programs::{example, output_within, stderr, stdout};

/// The lane labels the script promises: one per client.
const ROLES: [&str; 6] = [
    "echo 1",
    "echo 2",
    "echo 3",
    "slow reader",
    "half-close",
    "reset",
];

/// What one run of the example wrote.
struct Drawn {
    svg: String,
    html: String,
}

fn drawn() -> &'static Drawn {
    static DRAWN: OnceLock<Drawn> = OnceLock::new();
    DRAWN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mio-reactor-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (svg_path, html_path): (PathBuf, PathBuf) =
            (dir.join("timeline.svg"), dir.join("timeline.html"));
        let mut command = Command::new(example("timeline"));
        command
            .arg("--out")
            .arg(&svg_path)
            .arg("--html")
            .arg(&html_path)
            .env("RUST_LOG", "warn");
        let output = output_within(command);
        assert!(
            output.status.success(),
            "timeline failed: {}\n{}{}",
            output.status,
            stdout(&output),
            stderr(&output)
        );
        let drawn = Drawn {
            svg: std::fs::read_to_string(&svg_path).unwrap(),
            html: std::fs::read_to_string(&html_path).unwrap(),
        };
        let _ = std::fs::remove_dir_all(&dir);
        drawn
    })
}

#[test]
fn the_picture_is_one_svg_document() {
    let svg = drawn().svg.trim();
    assert!(svg.starts_with("<svg "), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.ends_with("</svg>"));
    assert_eq!(svg.matches("<svg ").count(), 1);
    // Every opened group is closed, and hover titles are balanced.
    assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
    assert_eq!(
        svg.matches("<title>").count(),
        svg.matches("</title>").count()
    );
}

#[test]
fn each_scripted_connection_has_its_own_lane() {
    let svg = &drawn().svg;
    assert_eq!(
        svg.matches("<g class=\"lane\"").count(),
        ROLES.len(),
        "one lane per client"
    );
    for role in ROLES {
        assert!(
            svg.contains(&format!("data-role=\"{role}\"")),
            "no lane for {role}"
        );
    }
}

#[test]
fn the_lanes_show_the_states_and_how_each_connection_closed() {
    let svg = &drawn().svg;
    for state in ["Open", "PeerHalfClosed", "Closing", "Closed"] {
        assert!(svg.contains(&format!(">{state}<")), "no {state} label");
    }
    assert!(svg.contains(">peer closed<"));
    assert!(svg.contains(">reset by peer<"), "the reset's close");
    assert!(
        svg.contains("reading paused from"),
        "the slow reader's backpressure"
    );
}

#[test]
fn the_page_embeds_the_picture_and_lists_the_records() {
    let html = &drawn().html;
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains(drawn().svg.trim()),
        "the same picture, inline"
    );
    assert!(
        html.contains("accepted from 127.0.0.1:"),
        "the records, as text"
    );
    assert!(html.trim_end().ends_with("</html>"));
}
