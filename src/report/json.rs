//! `--log-format json`: one JSON object per line on stdout (or the
//! `--output` file), nothing else.

use std::io::{BufWriter, Write};

use crate::events::{Event, EventKind, Sink};

pub struct JsonLines {
    out: BufWriter<Box<dyn Write + Send>>,
}

impl JsonLines {
    pub fn stdout() -> Self {
        Self::to(Box::new(std::io::stdout()))
    }

    pub fn to(out: Box<dyn Write + Send>) -> Self {
        Self { out: BufWriter::with_capacity(64 * 1024, out) }
    }
}

impl Sink for JsonLines {
    fn emit(&mut self, event: &Event) {
        if matches!(event.kind, EventKind::Output { quiet: true, .. } | EventKind::Progress { .. }) {
            return;
        }
        // A closed stdout (`| head`) must not stop the run.
        let _ = event.write_json_line(&mut self.out);
        if !matches!(event.kind, EventKind::Output { .. }) {
            let _ = self.out.flush();
        }
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}
