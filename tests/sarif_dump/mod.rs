//! With `AEGIS_SARIF_DUMP=DIR` set, tests copy every SARIF log they produce into DIR (named by the test
//! file and the log's content hash), where `scripts/check_sarif.py` validates them all with Microsoft's
//! SARIF Multitool and GitHub's rules after `cargo test` (see docs/ci.md). Unset: nothing is written.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Writes `log` into `$AEGIS_SARIF_DUMP` as `{origin}-{hash}.sarif`.
pub fn dump(origin: &str, log: &Value) {
    let Some(dir) = std::env::var_os("AEGIS_SARIF_DUMP").filter(|d| !d.is_empty()) else { return };
    let text = serde_json::to_string_pretty(log).unwrap();
    let name = format!("{origin}-{:.16x}.sarif", Sha256::digest(text.as_bytes()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(Path::new(&dir).join(name), text).unwrap();
}
