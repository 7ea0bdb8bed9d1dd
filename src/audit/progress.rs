//! Progress bars on stderr (indicatif), hidden when not asked for: one per stage of the audit.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` images labelled `msg`; hidden unless `show`.
pub fn bar(len: usize, msg: String, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} images ({elapsed})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// One bar at a time for a stage that runs in parts (AEGIS: one per class and run): a new bar when the
/// part changes, the previous one cleared.
#[derive(Debug)]
pub struct PartBars<K: PartialEq> {
    show: bool,
    current: Option<(K, ProgressBar)>,
}

impl<K: PartialEq> PartBars<K> {
    /// No bar yet; bars only when `show`.
    pub fn new(show: bool) -> Self {
        PartBars { show, current: None }
    }

    /// Sets `done` of `len` for part `key`, starting its bar (labelled by `msg`) when the part is new.
    pub fn set(&mut self, key: K, len: usize, done: usize, msg: impl FnOnce() -> String) {
        if self.current.as_ref().is_none_or(|(k, _)| *k != key) {
            self.finish();
            self.current = Some((key, bar(len, msg(), self.show)));
        }
        if let Some((_, pb)) = &self.current {
            pb.set_position(done as u64);
        }
    }

    /// Clears the last bar.
    pub fn finish(&mut self) {
        if let Some((_, pb)) = self.current.take() {
            pb.finish_and_clear();
        }
    }
}
