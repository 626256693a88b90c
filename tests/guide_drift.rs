//! The guide and the docs quote the code and its output; these tests fail when a quote no
//! longer matches what it quotes.
//!
//! - **Quoted code** carries a marker naming its source right before the block,
//!   `<!-- quote: src/reactor.rs fn turn -->` (an item: `fn`, `struct`, `enum`, `impl`...).
//!   Every quoted line must appear in that item, in order, whitespace aside; a line `...` or
//!   `// ...`, or `...` inside a line, elides source lines. Comments are not compared: a
//!   quote may annotate its code (a first line `// src/dispatch.rs, Core::read` names it).
//! - **Quoted trace lines** (`turn 4: done, ...`) must print every field that the record's
//!   `Display` prints today.
//! - **Quoted doctest listings** (`cargo test --doc Guide`) must name the doctests, line
//!   numbers and counts that rustdoc reports for the pages as they are now.
//! - **Examples named** in a `cargo run --example NAME` must exist.
//!
//! Everything here reads files: it runs in milliseconds and needs no build of the examples.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mio_reactor::Record;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every page that quotes code or output: the README, `docs/*.md` and `docs/guide/*.md`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    for dir in ["docs", "docs/guide"] {
        let mut found: Vec<PathBuf> = fs::read_dir(root().join(dir))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
            .collect();
        found.sort();
        pages.extend(found);
    }
    pages
}

/// `path:line`, for messages.
fn place(page: &Path, line: usize) -> String {
    let relative = page.strip_prefix(root()).unwrap_or(page);
    format!("{}:{}", relative.display(), line + 1)
}

/// A fenced block of a page: its language and its lines, with where it starts.
struct Block {
    fence_line: usize,
    lang: String,
    lines: Vec<String>,
}

/// The fenced blocks of markdown `text` (``` fences, as the guide writes them).
fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    open = Some(Block {
                        fence_line: number,
                        lang: lang.trim().to_string(),
                        lines: Vec::new(),
                    });
                }
            }
            Some(mut block) => {
                if trimmed == "```" {
                    blocks.push(block);
                } else {
                    block.lines.push(line.to_string());
                    open = Some(block);
                }
            }
        }
    }
    blocks
}

// ---- quoted code -------------------------------------------------------------------------

/// `<!-- quote: PATH KIND NAME -->`, parsed.
struct Marker {
    path: String,
    item: String,
}

fn marker(line: &str) -> Option<Marker> {
    let inner = line
        .trim()
        .strip_prefix("<!-- quote:")?
        .strip_suffix("-->")?;
    let (path, item) = inner.trim().split_once(' ')?;
    Some(Marker {
        path: path.to_string(),
        item: item.trim().to_string(),
    })
}

/// The source text of each item of `source` declared as `item` (`fn turn`): from its first
/// line to the closing brace at the same indentation. Several, when the name is not unique
/// in the file (methods of different types).
fn items<'a>(source: &'a str, item: &str) -> Vec<Vec<&'a str>> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let Some(at) = code.find(item) else { continue };
        let before_ok = at == 0 || code[..at].ends_with(' ');
        let after = code[at + item.len()..].chars().next();
        let after_ok = !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !(before_ok && after_ok) {
            continue;
        }
        let indent = line.len() - code.len();
        let closing = format!("{}}}", " ".repeat(indent));
        let end = if code.ends_with(';') {
            start
        } else {
            match lines[start..].iter().position(|l| l.trim_end() == closing) {
                Some(offset) => start + offset,
                None => continue,
            }
        };
        found.push(lines[start..=end].to_vec());
    }
    found
}

/// Whitespace carries no meaning in a comparison of code.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// `line` without its `//` comment (one outside a string literal): a quote may annotate
/// the code it shows, and a comment of the source need not be quoted.
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match c {
            '"' if previous != '\\' => in_string = !in_string,
            '/' if !in_string && previous == '/' => return &line[..at - 1],
            _ => {}
        }
        previous = c;
    }
    line
}

/// The quote as runs of code that must appear, in order, in the source: split at the
/// elisions (`...` alone, `// ...`, or `...` inside a line), whitespace removed.
fn quoted_runs(quote: &[String]) -> Vec<(String, String)> {
    let mut runs = Vec::new();
    let mut current = String::new();
    let mut shown = String::new();
    let mut finish = |current: &mut String, shown: &mut String| {
        let squeezed = squeeze(current);
        if !squeezed.is_empty() {
            runs.push((squeezed, shown.trim().to_string()));
        }
        current.clear();
        shown.clear();
    };
    for line in quote {
        let code = line.trim();
        if code == "..." || code.starts_with("// ...") {
            finish(&mut current, &mut shown);
            continue;
        }
        let mut pieces = strip_comment(line).split("...").peekable();
        while let Some(piece) = pieces.next() {
            current.push_str(piece);
            current.push('\n');
            shown.push_str(piece);
            shown.push('\n');
            if pieces.peek().is_some() {
                finish(&mut current, &mut shown);
            }
        }
    }
    finish(&mut current, &mut shown);
    runs
}

/// Where the runs of `quote` stop matching `source`, or `None` if they all match in order.
fn first_mismatch(quote: &[String], source: &[&str]) -> Option<String> {
    let code: Vec<&str> = source.iter().map(|line| strip_comment(line)).collect();
    let source = squeeze(&code.join("\n"));
    let mut from = 0;
    for (run, shown) in quoted_runs(quote) {
        match source[from..].find(&run) {
            Some(at) => from += at + run.len(),
            None => return Some(first_unmatched_line(&source[from..], &shown)),
        }
    }
    None
}

/// The first line of a run that drifted: the longest start of the run still found in
/// `source` ends just before it.
fn first_unmatched_line(source: &str, shown: &str) -> String {
    let mut prefix = String::new();
    for line in shown.lines() {
        prefix.push_str(&squeeze(strip_comment(line)));
        if !source.contains(&prefix) {
            return line.trim().to_string();
        }
    }
    shown.to_string()
}

/// Checks every marked quote of `page`; returns one message per quote that drifted.
fn drifted_quotes(page: &Path) -> Vec<String> {
    let text = read(page);
    let lines: Vec<&str> = text.lines().collect();
    let blocks = blocks(&text);
    let mut drifted = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let Some(marker) = marker(line) else { continue };
        let here = place(page, number);
        let Some(block) = blocks.iter().find(|b| b.fence_line == number + 1) else {
            drifted.push(format!(
                "{here}: a quote marker must be followed by a code block"
            ));
            continue;
        };
        let source_path = root().join(&marker.path);
        let Ok(source) = fs::read_to_string(&source_path) else {
            drifted.push(format!("{here}: {} does not exist", marker.path));
            continue;
        };
        let candidates = items(&source, &marker.item);
        if candidates.is_empty() {
            drifted.push(format!("{here}: no `{}` in {}", marker.item, marker.path));
            continue;
        }
        let mismatches: Vec<String> = candidates
            .iter()
            .filter_map(|item| first_mismatch(&block.lines, item))
            .collect();
        if mismatches.len() == candidates.len() {
            drifted.push(format!(
                "{here}: the quote of `{}` in {} no longer matches the code, from this line:\n{}",
                marker.item, marker.path, mismatches[0]
            ));
        }
    }
    drifted
}

#[test]
fn quoted_code_matches_the_item_it_names() {
    let drifted: Vec<String> = pages().iter().flat_map(|p| drifted_quotes(p)).collect();
    assert!(drifted.is_empty(), "{}", drifted.join("\n\n"));
}

#[test]
fn every_quote_captioned_with_a_source_file_carries_a_marker() {
    let mut unmarked = Vec::new();
    let mut marked = 0;
    for page in pages() {
        let text = read(&page);
        let lines: Vec<&str> = text.lines().collect();
        for block in blocks(&text) {
            let caption = block.lines.first().map(|l| l.trim()).unwrap_or("");
            let has_marker = block.fence_line > 0 && marker(lines[block.fence_line - 1]).is_some();
            marked += usize::from(has_marker);
            if (caption.starts_with("// src/") || caption.starts_with("// examples/"))
                && !has_marker
            {
                unmarked.push(format!("{}: {caption}", place(&page, block.fence_line)));
            }
        }
    }
    assert!(
        marked > 0,
        "no quote markers found: the check would check nothing"
    );
    assert!(
        unmarked.is_empty(),
        "quotes without a marker:\n{}",
        unmarked.join("\n")
    );
}

#[test]
fn a_quote_that_no_longer_matches_is_reported() {
    // The checker itself, on a function and three quotes of it.
    let source = "fn turn() {\n    let a = 1;\n    let b = 2;\n    finish(a, b);\n}\n";
    let item = &items(source, "fn turn")[0];
    let quote = |text: &str| text.lines().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        first_mismatch(&quote("let a = 1;\n// ...\nfinish(a, b);"), item),
        None
    );
    assert_eq!(
        first_mismatch(&quote("let a =   1;  let b = 2;"), item),
        None
    );
    assert_eq!(
        first_mismatch(&quote("let a = 1;\nfinish(a, b);"), item),
        Some("finish(a, b);".to_string()),
        "a line left out of the quote, without an elision, is drift"
    );
    assert!(first_mismatch(&quote("finish(a, b);\nlet a = 1;"), item).is_some());
    assert_eq!(
        first_mismatch(&quote("let a = 1; // one\nlet b = 2;"), item),
        None,
        "comments are the quote's own"
    );
    assert!(first_mismatch(&quote("let a = 2;"), item).is_some());
}

// ---- quoted trace lines ------------------------------------------------------------------

/// The words of a record's line, its numbers and durations replaced by `#`.
fn skeleton(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || *c == '.')
            {
                chars.next();
            }
            // A duration's unit belongs to the number: 1.5ms, 410ns, 2s, 3µs.
            let mut unit = String::new();
            while chars.peek().is_some_and(|c| c.is_alphabetic()) {
                unit.push(chars.next().unwrap());
            }
            if !["ns", "µs", "us", "ms", "s", ""].contains(&unit.as_str()) {
                out.push_str(&unit);
            }
            out.push('#');
        } else {
            out.push(c);
        }
    }
    out
}

/// The quoted record starting at `at` in `line`: up to a backtick or an annotation (two
/// spaces), whichever comes first.
fn quoted_record(line: &str, at: usize) -> &str {
    let rest = &line[at..];
    let end = [rest.find('`'), rest.find("  ")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    rest[..end].trim_end()
}

/// A turn's end as `Display` prints it today, every field set.
fn printed_turn_end() -> String {
    Record::TurnEnd {
        turn: 3,
        events: 1,
        blocked: Duration::from_micros(1500),
        busy: Duration::from_nanos(410),
    }
    .to_string()
}

/// Each quoted line that starts with `turn N: <word>` in the pages, with where it is.
fn quoted_turn_lines(word: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for page in pages() {
        for (number, line) in read(&page).lines().enumerate() {
            let mut search = 0;
            while let Some(offset) = line[search..].find("turn ") {
                let at = search + offset;
                search = at + 5;
                let rest = &line[search..];
                let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
                if digits > 0 && rest[digits..].starts_with(&format!(": {word}")) {
                    found.push((place(&page, number), quoted_record(line, at).to_string()));
                }
            }
        }
    }
    found
}

/// The quoted `turn N: <word>` lines whose skeleton is none of `printed`, with where they are.
fn quoted_unlike(word: &str, printed: &[String]) -> Vec<String> {
    let quoted = quoted_turn_lines(word);
    assert!(
        !quoted.is_empty(),
        "the pages quote no `turn N: {word}` line any more"
    );
    quoted
        .iter()
        .filter(|(_, line)| !printed.contains(&skeleton(line)))
        .map(|(at, line)| format!("{at}: {line}"))
        .collect()
}

#[test]
fn quoted_turn_ends_print_every_field_of_the_record() {
    let printed = printed_turn_end();
    let stale = quoted_unlike("done", &[skeleton(&printed)]);
    assert!(
        stale.is_empty(),
        "these quoted lines do not print like `{printed}` today:\n{}",
        stale.join("\n")
    );
}

#[test]
fn quoted_turn_starts_print_like_the_record() {
    let printed = [None, Some(Duration::ZERO)]
        .map(|timeout| skeleton(&Record::TurnStart { turn: 4, timeout }.to_string()));
    let stale = quoted_unlike("poll", &printed);
    assert!(
        stale.is_empty(),
        "not printed so today:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_skeleton_of_a_line_keeps_its_words() {
    assert_eq!(
        skeleton("turn 12: done, 1 events, blocked 445.170801ms, busy 2.5µs"),
        skeleton("turn 0: done, 3 events, blocked 1s, busy 410ns")
    );
    assert_ne!(
        skeleton("turn 0: done, 1 events, blocked 1.8ms"),
        skeleton("turn 0: done, 1 events, blocked 1.8ms, busy 3µs")
    );
}

// ---- quoted doctest listings -------------------------------------------------------------

/// A doctest as `cargo test --doc` lists it: `src/lib.rs - Name (line N)`, ignored or not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Doctest {
    name: String,
    line: usize,
    ignored: bool,
}

/// Whether rustdoc runs a block with this language string as a Rust doctest.
fn is_rust_test(lang: &str) -> bool {
    lang.split(',').map(str::trim).all(|tag| {
        [
            "",
            "rust",
            "ignore",
            "no_run",
            "should_panic",
            "compile_fail",
        ]
        .contains(&tag)
            || tag.starts_with("edition")
    })
}

/// The doctests of the pages `src/lib.rs` includes (`#[doc = include_str!(...)]` on
/// `pub struct Name`), as rustdoc numbers them: the attribute's line plus the fence's
/// line in the page, less one.
fn included_doctests() -> Vec<Doctest> {
    let lib = read(&root().join("src/lib.rs"));
    let lines: Vec<&str> = lib.lines().collect();
    let mut tests = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("#[doc = include_str!(\"../") else {
            continue;
        };
        let page = &rest[..rest.find('"').unwrap()];
        let name = lines[number..]
            .iter()
            .find_map(|l| l.trim().strip_prefix("pub struct "))
            .map(|n| n.trim_end_matches(';').to_string())
            .unwrap();
        for block in blocks(&read(&root().join(page))) {
            if is_rust_test(&block.lang) {
                tests.push(Doctest {
                    name: name.clone(),
                    line: number + 1 + block.fence_line,
                    ignored: block.lang.contains("ignore"),
                });
            }
        }
    }
    tests
}

/// How many doctests the doc comments of `src/` hold.
fn doc_comment_doctests() -> usize {
    let mut files = vec![root().join("src")];
    let mut count = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension() != Some("rs".as_ref()) {
            continue;
        }
        let docs: String = read(&path)
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                l.strip_prefix("///").or_else(|| l.strip_prefix("//!"))
            })
            .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
            .collect();
        count += blocks(&docs)
            .iter()
            .filter(|b| is_rust_test(&b.lang))
            .count();
    }
    count
}

/// `test src/lib.rs - Name (line N) ... ok`, parsed.
fn listed_doctest(line: &str) -> Option<Doctest> {
    let rest = line.trim().strip_prefix("test src/lib.rs - ")?;
    let (name, rest) = rest.split_once(" (line ")?;
    let (number, status) = rest.split_once(") ... ")?;
    Some(Doctest {
        name: name.to_string(),
        line: number.parse().ok()?,
        ignored: status.trim() == "ignored",
    })
}

/// The number before `word` in `line` (`5 passed` -> 5).
fn count_before(line: &str, word: &str) -> Option<usize> {
    let at = line.find(&format!(" {word}"))?;
    line[..at].rsplit([' ', '.']).next()?.parse().ok()
}

#[test]
fn quoted_doctest_listings_match_the_pages_as_they_are() {
    let included = included_doctests();
    let total = included.len() + doc_comment_doctests();
    let mut listings = 0;
    for page in pages() {
        let text = read(&page);
        let page_blocks = blocks(&text);
        for pair in page_blocks.windows(2) {
            let Some(filter) = pair[0]
                .lines
                .iter()
                .find_map(|l| l.trim().strip_prefix("cargo test --doc "))
            else {
                continue;
            };
            // The listing is the text block right after the command, if there is one.
            let command_end = pair[0].fence_line + pair[0].lines.len() + 1;
            if pair[1].lang != "text" || pair[1].fence_line > command_end + 2 {
                continue;
            }
            let here = place(&page, pair[1].fence_line);
            let expected: BTreeSet<Doctest> = included
                .iter()
                .filter(|t| t.name.contains(filter.trim()))
                .cloned()
                .collect();
            let listed: BTreeSet<Doctest> = pair[1]
                .lines
                .iter()
                .filter_map(|l| listed_doctest(l))
                .collect();
            assert_eq!(
                listed, expected,
                "{here}: the listing of `cargo test --doc {filter}`"
            );
            for line in &pair[1].lines {
                let ignored = expected.iter().filter(|t| t.ignored).count();
                if let Some(running) = count_before(line, "tests") {
                    assert_eq!(running, expected.len(), "{here}: {line}");
                }
                if line.starts_with("test result:") {
                    let counts =
                        ["passed", "ignored", "filtered out"].map(|w| count_before(line, w));
                    let real =
                        [expected.len() - ignored, ignored, total - expected.len()].map(Some);
                    assert_eq!(counts, real, "{here}: {line}");
                }
            }
            listings += 1;
        }
    }
    assert!(
        listings > 0,
        "no doctest listing quoted: the check would check nothing"
    );
}

// ---- examples named -----------------------------------------------------------------------

#[test]
fn every_example_the_pages_run_exists() {
    let mut missing = Vec::new();
    for page in pages() {
        for (number, line) in read(&page).lines().enumerate() {
            for (at, _) in line.match_indices("--example ") {
                let name: String = line[at + 10..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let single = root().join(format!("examples/{name}.rs"));
                let directory = root().join(format!("examples/{name}/main.rs"));
                if !single.exists() && !directory.exists() {
                    missing.push(format!("{}: {name}", place(&page, number)));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no such example:\n{}",
        missing.join("\n")
    );
}
