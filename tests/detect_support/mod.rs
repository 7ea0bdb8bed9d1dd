//! An analytic "backdoored" linear softmax model shared by the detector tests: class logits read one
//! pixel each, and an optional shortcut makes one extra pixel (the trigger) push one class hard.
#![allow(dead_code)]

use aegis_audit::attack::{AttackError, GradOutput, GradientModel};

/// Number of classes.
pub const CLASSES: usize = 8;
/// Image shape 1×3×4: pixels 0..8 carry the classes, pixel 8 is the trigger, 9..12 stay 0.
pub const SHAPE: (usize, usize, usize) = (1, 3, 4);
/// Values per image.
pub const DIM: usize = 12;
/// The trigger pixel.
pub const TRIGGER: usize = 8;
/// logits_j = GAIN · x_j.
pub const GAIN: f32 = 10.0;

/// logits_j = GAIN · x_j, plus `shortcut_gain · x_trigger` on the shortcut class.
/// Moving a source of class j (x_j = u, other pixels 0) to class c costs L2 ≈ u/√2 without the
/// shortcut and ≈ GAIN·u/shortcut_gain toward the shortcut class.
pub struct Linear {
    /// `(class, gain)` of the shortcut, if any.
    pub shortcut: Option<(usize, f32)>,
}

impl Linear {
    fn logits(&self, x: &[f32]) -> Vec<f32> {
        let mut z: Vec<f32> = (0..CLASSES).map(|j| GAIN * x[j]).collect();
        if let Some((s, g)) = self.shortcut {
            z[s] += g * x[TRIGGER];
        }
        z
    }
}

impl GradientModel for Linear {
    fn image_shape(&self) -> (usize, usize, usize) {
        SHAPE
    }
    fn num_classes(&self) -> usize {
        CLASSES
    }
    fn feature_dim(&self) -> usize {
        0
    }
    fn eval(&mut self, x: &[f32], n: usize, y: &[i64]) -> Result<GradOutput, AttackError> {
        let mut out = GradOutput::default();
        for i in 0..n {
            let z = self.logits(&x[i * DIM..(i + 1) * DIM]);
            let m = z.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            let p: Vec<f32> = e.iter().map(|v| v / s).collect();
            let t = y[i] as usize;
            out.loss.push(-p[t].ln());
            // dL/dz = p − onehot(t); dL/dx = Wᵀ dL/dz.
            let mut g = vec![0.0f32; DIM];
            for j in 0..CLASSES {
                let dz = p[j] - if j == t { 1.0 } else { 0.0 };
                g[j] += GAIN * dz;
                if let Some((sc, gain)) = self.shortcut {
                    if sc == j {
                        g[TRIGGER] += gain * dz;
                    }
                }
            }
            out.grad.extend(g);
            out.logits.extend(z);
        }
        Ok(out)
    }
}

/// 40 images per class; 30% have u = 0.6, 70% u = 1.0.
pub fn dataset() -> (Vec<f32>, Vec<i64>) {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for class in 0..CLASSES {
        for i in 0..40 {
            let mut x = [0.0f32; DIM];
            x[class] = if i % 10 < 3 { 0.6 } else { 1.0 };
            images.extend_from_slice(&x);
            labels.push(class as i64);
        }
    }
    (images, labels)
}
