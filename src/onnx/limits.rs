//! Resource limits applied while loading a model, so that a hostile file cannot exhaust memory.

/// Limits checked by [`load_model`](crate::onnx::load_model) before anything large is allocated.
///
/// Defaults ([`LoadLimits::default`]) are generous for real image classifiers:
/// a 2 GiB model file, 1 000 000 nodes, 2^30 elements per tensor, 10^9 bytes of initializers in
/// total (inline and external together), and 2^24 for any single declared dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    /// Largest model file read, in bytes.
    pub max_file_bytes: u64,
    /// Most nodes, counting nodes of subgraphs.
    pub max_nodes: usize,
    /// Most elements in one tensor (initializer, constant or declared shape).
    pub max_tensor_elements: u64,
    /// Most bytes declared by all initializers and constants together.
    pub max_total_initializer_bytes: u64,
    /// Largest single dimension of any tensor or declared shape.
    pub max_dim: i64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_file_bytes: 2 << 30,
            max_nodes: 1_000_000,
            max_tensor_elements: 1 << 30,
            max_total_initializer_bytes: 1_000_000_000,
            max_dim: 1 << 24,
        }
    }
}
