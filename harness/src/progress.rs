//! Progress of long commands on stderr: a bar on a terminal; elsewhere (a log, CI) a plain
//! line at most every [`PLAIN_EVERY`] and one at the end, so a run is never silent for long.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a plain progress line is printed when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Counts done units of a known total and shows it.
#[derive(Debug)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    unit: String,
    total: u64,
    started: Instant,
    /// Units done and when the last plain line was printed.
    plain: Mutex<(u64, Instant)>,
}

impl Progress {
    /// Progress over `total` `unit`s (e.g. "episodes").
    pub fn new(total: u64, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
                "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit}, ETA {{eta}}"
            )) {
                bar.set_style(style);
            }
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            unit: unit.to_string(),
            total,
            started: now,
            plain: Mutex::new((0, now)),
        }
    }

    /// Adds `n` done units.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let mut plain = self
            .plain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        plain.0 += n;
        if plain.1.elapsed() >= PLAIN_EVERY {
            plain.1 = Instant::now();
            eprintln!("{}", self.line(plain.0));
        }
    }

    /// Ends the display: clears the bar, or prints a last plain line.
    pub fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => {
                let plain = self
                    .plain
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if self.started.elapsed() >= PLAIN_EVERY {
                    eprintln!("{}", self.line(plain.0));
                }
            }
        }
    }

    /// `120/1000 episodes, 12 s, about 88 s left`.
    fn line(&self, done: u64) -> String {
        let elapsed_s = self.started.elapsed().as_secs_f64();
        let mut line = format!("{done}/{} {}, {elapsed_s:.0} s", self.total, self.unit);
        if done > 0 && done < self.total {
            let left_s = elapsed_s * (self.total - done) as f64 / done as f64;
            line.push_str(&format!(", about {left_s:.0} s left"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_says_done_total_and_time_left() {
        let p = Progress::new(1000, "episodes");
        assert!(p.line(0).starts_with("0/1000 episodes, "));
        let line = p.line(120);
        assert!(
            line.starts_with("120/1000 episodes, ") && line.ends_with(" s left"),
            "{line}"
        );
        assert!(!p.line(1000).contains("left"));
    }
}
