//! The memory budget of an audit: how many images one model evaluation may take so that the ONNX
//! Runtime sessions stay within `--memory-limit`, estimated from the model's activations before
//! anything runs; and the peak resident memory the audit actually took, for the report.
//!
//! A gradient evaluation keeps every activation on the input→logits path from its forward pass for
//! its backward pass, and needs about as much again for the gradients and the kernels' scratch
//! space while it runs: [`BYTES_PER_ACTIVATION`] float32 bytes per activation element, per image.
//! Every session (the gradient session, and with several workers one gradient session and one PGD
//! step session per worker) keeps its own memory arena sized by the largest batch it ran, so the
//! limit is shared between them.

use serde::{Deserialize, Serialize};

use super::error::AuditError;

/// Default of `--memory-limit`: 4 GiB for the sessions' working memory.
pub const DEFAULT_MEMORY_LIMIT: u64 = 4 << 30;

/// Bytes a gradient evaluation needs per activation element of one image: float32 activations kept
/// for the backward pass (4) and as much again for the gradients and scratch space (measured on
/// ResNet-50 at 224×224: 93–110 MB per image for 23.9 M activations, docs/memory.md; 8 keeps a margin).
pub const BYTES_PER_ACTIVATION: u64 = 8;

/// The images per model evaluation that a memory limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryBudget {
    /// The limit on the sessions' working memory, bytes (`--memory-limit`).
    pub limit_bytes: u64,
    /// Activation elements of one image on the input→logits path.
    pub activations_per_image: u64,
    /// Estimated working memory of one image in one evaluation, bytes.
    pub bytes_per_image: u64,
    /// Sessions that hold an arena at the same time (the gradient session and the step workers).
    pub sessions: usize,
    /// The most images one evaluation takes: every larger batch is evaluated in pieces of this size.
    pub images_per_evaluation: usize,
}

impl MemoryBudget {
    /// The budget for a model with `activations_per_image` activation elements per image, evaluated by
    /// `sessions` sessions, under `limit_bytes`; at most `cap` images per evaluation (the largest
    /// batch the plan asks for). An error when not even one image fits.
    pub fn new(limit_bytes: u64, activations_per_image: u64, sessions: usize, cap: usize) -> Result<Self, AuditError> {
        let sessions = sessions.max(1);
        let bytes_per_image = activations_per_image.saturating_mul(BYTES_PER_ACTIVATION).max(1);
        let per_session = limit_bytes / sessions as u64;
        let fits = per_session / bytes_per_image;
        if fits == 0 {
            return Err(AuditError::Usage(format!(
                "--memory-limit {} is too small for this model: one image needs about {} in each of its {sessions} \
                 ONNX Runtime sessions ({} activations); give at least {}",
                format_bytes(limit_bytes),
                format_bytes(bytes_per_image),
                activations_per_image,
                format_bytes(bytes_per_image.saturating_mul(sessions as u64)),
            )));
        }
        let images_per_evaluation = fits.min(cap.max(1) as u64) as usize;
        Ok(MemoryBudget { limit_bytes, activations_per_image, bytes_per_image, sessions, images_per_evaluation })
    }
}

/// Parses a size: a number of bytes, or a number with a unit `K`, `M`, `G`, `T` (powers of 1000, also
/// `KB`, `MB`, …) or `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024), case-insensitive: `4GiB`, `1500M`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a size (e.g. 4GiB, 1500MB, 2G)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("'{other}' is not a size unit (B, K, M, G, T, KiB, MiB, GiB, TiB)")),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes > 2f64.powi(60) {
        return Err(format!("'{text}' must be between 1 byte and 1 EiB"));
    }
    Ok(bytes as u64)
}

/// `n` bytes in the largest binary unit that keeps a number ≥ 1 (`1.5 GiB`).
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The peak resident memory of this process so far (Linux: `VmHWM` in `/proc/self/status`), bytes;
/// `None` where the system does not say.
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("1500M").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("2.5 gb").unwrap(), 2_500_000_000);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        for bad in ["", "GiB", "-1G", "4 parsecs", "0", "1e30", "nan"] {
            assert!(parse_size(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn the_budget_divides_the_limit_between_sessions() {
        // 1 M activations → 8 MB per image; 3 sessions share 240 MB: 80 MB each, 10 images.
        let b = MemoryBudget::new(240_000_000, 1_000_000, 3, 100).unwrap();
        assert_eq!(b.bytes_per_image, 8_000_000);
        assert_eq!(b.images_per_evaluation, 10);
        // The plan's largest batch caps it.
        assert_eq!(MemoryBudget::new(240_000_000, 1_000_000, 3, 4).unwrap().images_per_evaluation, 4);
    }

    #[test]
    fn a_limit_below_one_image_is_refused_naming_what_is_needed() {
        let e = MemoryBudget::new(10_000_000, 1_000_000, 3, 100).unwrap_err().to_string();
        assert!(e.contains("--memory-limit 9.5 MiB is too small"), "{e}");
        assert!(e.contains("give at least 22.9 MiB"), "{e}");
    }

    #[test]
    fn bytes_format_in_binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn this_process_has_a_peak_resident_size_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_resident_bytes().unwrap() > 1 << 20);
        }
    }
}
