//! The Barnes-Hut quadtree over 2-D points, and the repulsive (negative) forces it summarises, as in
//! scikit-learn's `_quad_tree.pyx` and `compute_gradient_negative`: a cell stands for its points when
//! `max_width^2 / dist^2 < theta^2` or it is a leaf; coincident points (within 1e-6) share a leaf and
//! do not repel themselves.

/// Coordinates closer than this are duplicates (scikit-learn's `EPSILON`).
const EPSILON: f64 = 1e-6;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Cell {
    barycenter: [f64; 2],
    size: f64,
    squared_max_width: f64,
    children: [u32; 4],
    is_leaf: bool,
}

/// A quadtree built once per gradient evaluation.
#[derive(Debug)]
pub(crate) struct QuadTree {
    cells: Vec<Cell>,
}

impl QuadTree {
    /// Builds the tree over `points`.
    pub fn build(points: &[[f64; 2]]) -> QuadTree {
        let mut min = [f64::INFINITY; 2];
        let mut max = [f64::NEG_INFINITY; 2];
        for p in points {
            for a in 0..2 {
                min[a] = min[a].min(p[a]);
                max[a] = max[a].max(p[a]);
            }
        }
        for m in &mut max {
            // scikit-learn: M = max(M * (1 + 1e-3 * sign(M)), M + 1e-3).
            *m = (*m * (1.0 + 1e-3 * m.signum())).max(*m + 1e-3);
        }
        let mut tree = QuadTree { cells: Vec::with_capacity(2 * points.len() + 1) };
        let mut idx: Vec<u32> = (0..points.len() as u32).collect();
        tree.build_cell(points, &mut idx, min, max);
        tree
    }

    fn build_cell(&mut self, points: &[[f64; 2]], idx: &mut [u32], min: [f64; 2], max: [f64; 2]) -> u32 {
        let id = self.cells.len() as u32;
        let mut bary = [0.0; 2];
        for &i in idx.iter() {
            bary[0] += points[i as usize][0];
            bary[1] += points[i as usize][1];
        }
        let n = idx.len() as f64;
        bary[0] /= n;
        bary[1] /= n;
        let w0 = max[0] - min[0];
        let w1 = max[1] - min[1];
        let first = points[idx[0] as usize];
        let all_dup = idx.iter().all(|&i| {
            let p = points[i as usize];
            (p[0] - first[0]).abs() <= EPSILON && (p[1] - first[1]).abs() <= EPSILON
        });
        self.cells.push(Cell {
            barycenter: bary,
            size: n,
            squared_max_width: (w0 * w0).max(w1 * w1),
            children: [NONE; 4],
            is_leaf: all_dup,
        });
        if all_dup {
            return id;
        }
        let center = [(min[0] + max[0]) / 2.0, (min[1] + max[1]) / 2.0];
        let quadrant = |i: u32| -> usize {
            let p = points[i as usize];
            usize::from(p[0] >= center[0]) * 2 + usize::from(p[1] >= center[1])
        };
        idx.sort_unstable_by_key(|&i| quadrant(i));
        let mut start = 0;
        for q in 0..4 {
            let end = start + idx[start..].iter().take_while(|&&i| quadrant(i) == q).count();
            if end > start {
                let cmin = [if q >= 2 { center[0] } else { min[0] }, if q % 2 == 1 { center[1] } else { min[1] }];
                let cmax = [if q >= 2 { max[0] } else { center[0] }, if q % 2 == 1 { max[1] } else { center[1] }];
                let child = self.build_cell(points, &mut idx[start..end], cmin, cmax);
                self.cells[id as usize].children[q] = child;
            }
            start = end;
        }
        id
    }

    /// Repulsive force on `point` (unnormalised, `sum size * q^2 * delta`) and its share of
    /// `Z = sum q`, for Student-t with one degree of freedom.
    pub fn negative_force(&self, point: [f64; 2], squared_theta: f64, stack: &mut Vec<u32>) -> ([f64; 2], f64) {
        let mut force = [0.0; 2];
        let mut sum_q = 0.0;
        stack.clear();
        stack.push(0);
        while let Some(id) = stack.pop() {
            let cell = &self.cells[id as usize];
            let d0 = point[0] - cell.barycenter[0];
            let d1 = point[1] - cell.barycenter[1];
            let dist2 = d0 * d0 + d1 * d1;
            if dist2 <= EPSILON && cell.is_leaf {
                continue;
            }
            if cell.is_leaf || cell.squared_max_width / dist2 < squared_theta {
                let q = 1.0 / (1.0 + dist2);
                sum_q += cell.size * q;
                let mult = cell.size * q * q;
                force[0] += mult * d0;
                force[1] += mult * d1;
            } else {
                stack.extend(cell.children.iter().copied().filter(|&c| c != NONE));
            }
        }
        (force, sum_q)
    }
}
