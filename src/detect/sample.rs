//! Helpers every detector shares: a seeded random generator per (seed, class, purpose), so that
//! classes are independent of the order they run in, and gathering images by index.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A seeded RNG for one (seed, class, purpose) triple, so classes are independent of run order.
pub fn class_rng(seed: u64, class: usize, purpose: u64) -> ChaCha8Rng {
    let mix =
        seed ^ (class as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ purpose.wrapping_mul(0xD1B5_4A32_D192_ED03);
    ChaCha8Rng::seed_from_u64(mix)
}

/// Copies the images at `indices` (each `dim` values) into one buffer.
pub fn gather(images: &[f32], dim: usize, indices: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * dim);
    for &i in indices {
        out.extend_from_slice(&images[i * dim..(i + 1) * dim]);
    }
    out
}
