//! Errors, counted by kind: a thousand connections refused by a server that is not running
//! are one line with a count, not a thousand lines.

/// Each distinct error message with how many times it happened, in first-seen order.
/// The messages come from a small fixed set, so a list is all the index this needs.
#[derive(Default)]
pub struct ErrorTally {
    counts: Vec<(String, u64)>,
    total: u64,
    /// Whether some error says nothing listens there (refused, no such socket file).
    nobody_listening: bool,
}

impl ErrorTally {
    /// Counts one error. Messages must not name the connection, or none would repeat.
    pub fn add(&mut self, message: impl Into<String>) {
        let message = message.into();
        match self.counts.iter_mut().find(|(seen, _)| *seen == message) {
            Some((_, count)) => *count += 1,
            None => self.counts.push((message, 1)),
        }
        self.total += 1;
    }

    /// Counts an error that means no server is there, which earns the hint.
    pub fn add_nobody_listening(&mut self, message: impl Into<String>) {
        self.nobody_listening = true;
        self.add(message);
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// One line per distinct error (`count × message`), the hint when nobody seems to be
    /// listening at `server`, and the total.
    pub fn lines(&self, server: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .counts
            .iter()
            .map(|(message, count)| format!("{count} × {message}"))
            .collect();
        if self.nobody_listening {
            lines.push(format!("is a server listening on {server}?"));
        }
        let plural = if self.total == 1 { "" } else { "s" };
        lines.push(format!("{} error{plural}", self.total));
        lines
    }
}
