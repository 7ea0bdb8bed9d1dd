//! HDBSCAN as `sklearn.cluster.HDBSCAN` (1.7) computes it with its defaults: core distance = distance
//! to the `min_samples`-th neighbour (the point itself counted; `min_samples` defaults to
//! `min_cluster_size`), minimum spanning tree of the mutual-reachability graph (Prim), single-linkage
//! hierarchy, tree condensed with `min_cluster_size`, excess-of-mass selection without the root
//! (`allow_single_cluster` off), points labelled by their nearest selected ancestor, else noise (-1).
//! Tied tree edges keep Prim's order (stable sort), so a fit is deterministic for a given row order;
//! scikit-learn sorts them with numpy's unstable argsort. Where a tie decides a point's cluster (a
//! point bridging two clusters at its core distance), both results depend on row order, and this
//! one is among the partitions scikit-learn gives over row orders (`tests/cluster_parity.rs`).

use std::collections::HashMap;

use ndarray::Array2;

use super::distance::dist;
use super::Result;
use crate::fit_input::{check_samples, require, setters};

/// HDBSCAN clustering.
#[derive(Debug, Clone, Copy)]
pub struct Hdbscan;

impl Hdbscan {
    /// Parameters: `min_cluster_size` (scikit-learn's default is 5), `min_samples` equal to it.
    ///
    /// ```
    /// use aegis_audit::cluster::Hdbscan;
    /// use ndarray::Array2;
    /// let x = Array2::from_shape_fn((20, 2), |(i, j)| (i / 10) as f64 * 10.0 + ((i * 3 + j * 5) % 7) as f64 * 0.1);
    /// let fit = Hdbscan::params(5).fit(&x).unwrap();
    /// assert_eq!(fit.n_clusters, 2);
    /// ```
    pub fn params(min_cluster_size: usize) -> HdbscanParams {
        HdbscanParams { min_cluster_size, min_samples: None }
    }
}

/// HDBSCAN hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct HdbscanParams {
    min_cluster_size: usize,
    min_samples: Option<usize>,
}

/// The result of an HDBSCAN fit.
#[derive(Debug, Clone)]
pub struct HdbscanFit {
    /// Label per sample, `-1` for noise; clusters numbered in order of their tree id.
    pub labels: Vec<i64>,
    /// Number of clusters found.
    pub n_clusters: usize,
}

impl HdbscanParams {
    setters! {
        /// Smallest cluster (at least 2).
        min_cluster_size: usize,
        /// Neighbourhood size of the core distance (`None`: `min_cluster_size`).
        min_samples: Option<usize>,
    }

    /// Checks the parameters.
    pub fn check(&self) -> Result<()> {
        require(self.min_cluster_size >= 2, "min_cluster_size", self.min_cluster_size as f64, "must be at least 2")?;
        require(self.min_samples != Some(0), "min_samples", 0.0, "must be at least 1")?;
        Ok(())
    }

    /// Clusters `x` (rows are samples).
    pub fn fit(&self, x: &Array2<f64>) -> Result<HdbscanFit> {
        self.check()?;
        let min_samples = self.min_samples.unwrap_or(self.min_cluster_size);
        let n = check_samples(x, "HDBSCAN", min_samples.max(2))?;
        let hierarchy = single_linkage(x, min_samples);
        let tree = condense(&hierarchy, n, self.min_cluster_size);
        let selected = select_eom(&tree, n);
        Ok(label(&tree, n, &selected))
    }
}

/// One merge of the single-linkage hierarchy: (left node, right node, distance, size).
type Merge = (usize, usize, f64, usize);
/// One row of the condensed tree: (parent cluster, child node, lambda, child size).
type Condensed = (usize, usize, f64, usize);

fn single_linkage(x: &Array2<f64>, min_samples: usize) -> Vec<Merge> {
    let n = x.nrows();
    let mut row = vec![0.0; n];
    let core: Vec<f64> = (0..n)
        .map(|i| {
            for (j, r) in row.iter_mut().enumerate() {
                *r = dist(x.row(i), x.row(j));
            }
            *row.select_nth_unstable_by(min_samples - 1, |a, b| a.total_cmp(b)).1
        })
        .collect();
    // Prim's algorithm on the dense mutual-reachability graph.
    let mut in_tree = vec![false; n];
    let mut best = vec![f64::INFINITY; n];
    let mut source = vec![0usize; n];
    let mut edges: Vec<(usize, usize, f64)> = Vec::with_capacity(n - 1);
    let mut current = 0;
    for _ in 1..n {
        in_tree[current] = true;
        let mut next = (usize::MAX, f64::INFINITY);
        for j in 0..n {
            if in_tree[j] {
                continue;
            }
            let mr = dist(x.row(current), x.row(j)).max(core[current]).max(core[j]);
            if mr < best[j] {
                best[j] = mr;
                source[j] = current;
            }
            if best[j] < next.1 {
                next = (j, best[j]);
            }
        }
        edges.push((source[next.0], next.0, next.1));
        current = next.0;
    }
    // Stable: tied edges stay in Prim's order (see the module comment).
    edges.sort_by(|a, b| a.2.total_cmp(&b.2));
    // Union-find whose merged components get ids n, n + 1, ...
    let mut parent: Vec<usize> = (0..2 * n - 1).collect();
    let mut size = vec![1usize; 2 * n - 1];
    fn find(parent: &mut [usize], mut a: usize) -> usize {
        while parent[a] != a {
            parent[a] = parent[parent[a]];
            a = parent[a];
        }
        a
    }
    edges
        .iter()
        .enumerate()
        .map(|(k, &(a, b, d))| {
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            let id = n + k;
            parent[ra] = id;
            parent[rb] = id;
            size[id] = size[ra] + size[rb];
            (ra, rb, d, size[id])
        })
        .collect()
}

fn bfs(hierarchy: &[Merge], n: usize, root: usize) -> Vec<usize> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let node = out[i];
        if node >= n {
            let (l, r, _, _) = hierarchy[node - n];
            out.push(l);
            out.push(r);
        }
        i += 1;
    }
    out
}

fn condense(hierarchy: &[Merge], n: usize, min_cluster_size: usize) -> Vec<Condensed> {
    let root = 2 * n - 2;
    let mut relabel = vec![0usize; root + 1];
    relabel[root] = n;
    let mut next_label = n + 1;
    let mut ignore = vec![false; root + 1];
    let mut out = Vec::new();
    let count = |node: usize| if node >= n { hierarchy[node - n].3 } else { 1 };
    for node in bfs(hierarchy, n, root) {
        if ignore[node] || node < n {
            continue;
        }
        let (left, right, d, _) = hierarchy[node - n];
        let lambda = if d > 0.0 { 1.0 / d } else { f64::INFINITY };
        let (lc, rc) = (count(left), count(right));
        let parent = relabel[node];
        let fall_out = |sub_root: usize, out: &mut Vec<Condensed>, ignore: &mut [bool]| {
            for sub in bfs(hierarchy, n, sub_root) {
                if sub < n {
                    out.push((parent, sub, lambda, 1));
                }
                ignore[sub] = true;
            }
        };
        if lc >= min_cluster_size && rc >= min_cluster_size {
            relabel[left] = next_label;
            next_label += 1;
            out.push((parent, relabel[left], lambda, lc));
            relabel[right] = next_label;
            next_label += 1;
            out.push((parent, relabel[right], lambda, rc));
        } else if lc < min_cluster_size && rc < min_cluster_size {
            fall_out(left, &mut out, &mut ignore);
            fall_out(right, &mut out, &mut ignore);
        } else if lc < min_cluster_size {
            relabel[right] = parent;
            fall_out(left, &mut out, &mut ignore);
        } else {
            relabel[left] = parent;
            fall_out(right, &mut out, &mut ignore);
        }
    }
    out
}

/// Excess-of-mass selection; returns the selected cluster ids, ascending.
fn select_eom(tree: &[Condensed], n: usize) -> Vec<usize> {
    let mut birth: HashMap<usize, f64> = HashMap::new();
    for &(_, child, lambda, size) in tree {
        if size > 1 {
            birth.insert(child, lambda);
        }
    }
    birth.insert(n, 0.0);
    let mut stability: HashMap<usize, f64> = HashMap::new();
    for &(parent, _, lambda, size) in tree {
        *stability.entry(parent).or_insert(0.0) += (lambda - birth[&parent]) * size as f64;
    }
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    for &(parent, child, _, size) in tree {
        if size > 1 {
            children.entry(parent).or_default().push(child);
        }
    }
    let mut nodes: Vec<usize> = stability.keys().copied().filter(|&c| c != n).collect();
    nodes.sort_unstable_by(|a, b| b.cmp(a));
    let mut is_cluster: HashMap<usize, bool> = nodes.iter().map(|&c| (c, true)).collect();
    for &node in &nodes {
        let kids = children.get(&node).map(Vec::as_slice).unwrap_or(&[]);
        let subtree: f64 = kids.iter().map(|c| stability.get(c).copied().unwrap_or(0.0)).sum();
        if subtree > stability[&node] {
            is_cluster.insert(node, false);
            stability.insert(node, subtree);
        } else {
            let mut stack: Vec<usize> = kids.to_vec();
            while let Some(c) = stack.pop() {
                is_cluster.insert(c, false);
                if let Some(k) = children.get(&c) {
                    stack.extend(k);
                }
            }
        }
    }
    let mut selected: Vec<usize> = is_cluster.into_iter().filter(|&(_, v)| v).map(|(c, _)| c).collect();
    selected.sort_unstable();
    selected
}

fn label(tree: &[Condensed], n: usize, selected: &[usize]) -> HdbscanFit {
    let mut parent_of: HashMap<usize, usize> = HashMap::new();
    for &(parent, child, _, _) in tree {
        parent_of.insert(child, parent);
    }
    let index: HashMap<usize, i64> = selected.iter().enumerate().map(|(k, &c)| (c, k as i64)).collect();
    let labels = (0..n)
        .map(|p| {
            let mut c = parent_of.get(&p).copied().unwrap_or(n);
            loop {
                if let Some(&l) = index.get(&c) {
                    return l;
                }
                if c == n {
                    return -1;
                }
                c = parent_of.get(&c).copied().unwrap_or(n);
            }
        })
        .collect();
    HdbscanFit { labels, n_clusters: selected.len() }
}
