//! Backward rules of matrix products: Gemm, MatMul (rank ≥ 2, numpy batch broadcasting) and Einsum
//! (any number of operands; explicit or implicit output; ellipsis; no repeated index within one
//! operand).

use crate::grad::rules::Ctx;
use crate::grad::shapes::TensorShape;
use crate::grad::GradError;
use crate::onnx::builder::{attr_float, attr_int, attr_ints};

/// Y = α·op(A)·op(B) + β·C.
pub(super) fn gemm(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let (a, b, cc) = (c.input(0).to_string(), c.input(1).to_string(), c.input(2).to_string());
    let alpha = c.float_attr("alpha", 1.0)?;
    let beta = c.float_attr("beta", 1.0)?;
    let ta = c.int_attr("transA", 0)? != 0;
    let tb = c.int_attr("transB", 0)? != 0;
    let gemm_attrs = |t_a: bool, t_b: bool| {
        vec![attr_float("alpha", alpha), attr_int("transA", t_a as i64), attr_int("transB", t_b as i64)]
    };
    let mut res = vec![None, None, None];
    if c.needs(0) {
        // dop(A) = α·dY·op(B)ᵀ; dA is its transpose when transA.
        res[0] = Some(if ta {
            c.b.op("Gemm", &[&b, &dy], gemm_attrs(tb, true))
        } else {
            c.b.op("Gemm", &[&dy, &b], gemm_attrs(false, !tb))
        });
    }
    if c.needs(1) {
        // dop(B) = α·op(A)ᵀ·dY; dB is its transpose when transB.
        res[1] = Some(if tb {
            c.b.op("Gemm", &[&dy, &a], gemm_attrs(true, ta))
        } else {
            c.b.op("Gemm", &[&a, &dy], gemm_attrs(!ta, false))
        });
    }
    if c.needs(2) && !cc.is_empty() {
        let g = if beta == 1.0 {
            dy.clone()
        } else {
            let s = c.scalar(beta);
            c.b.op("Mul", &[&dy, &s], vec![])
        };
        let out = c.shape(c.output(0))?.clone();
        res[2] = Some(c.reduce_to(&g, &out, &cc)?);
    }
    Ok(res)
}

/// The permutation swapping the last two axes of a rank-`r` tensor.
fn swap_last(r: usize) -> Vec<i64> {
    let mut p: Vec<i64> = (0..r as i64).collect();
    p.swap(r - 2, r - 1);
    p
}

/// Y = A·B with A [..., M, K], B [..., K, N].
pub(super) fn matmul(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let (a, b) = (c.input(0).to_string(), c.input(1).to_string());
    let (sa, sb) = (c.shape(&a)?.clone(), c.shape(&b)?.clone());
    let sy = c.shape(c.output(0))?.clone();
    if sa.rank() < 2 || sb.rank() < 2 {
        return Err(c.unsupported(format!(
            "operands of rank {} and {}: only rank ≥ 2 is supported",
            sa.rank(),
            sb.rank()
        )));
    }
    // The full (broadcast) gradient of an operand has Y's batch dims and the operand's matrix dims.
    let full = |s: &TensorShape| {
        let r = sy.rank();
        let mut dims = sy.dims[..r - 2].to_vec();
        let mut batch = sy.batch[..r - 2].to_vec();
        dims.extend_from_slice(&s.dims[s.rank() - 2..]);
        batch.extend_from_slice(&s.batch[s.rank() - 2..]);
        TensorShape { dims, batch }
    };
    let mut res = vec![None, None];
    if c.needs(0) {
        let bt = c.b.op("Transpose", &[&b], vec![attr_ints("perm", &swap_last(sb.rank()))]);
        let g = c.b.op("MatMul", &[&dy, &bt], vec![]);
        res[0] = Some(c.reduce_to(&g, &full(&sa), &a)?);
    }
    if c.needs(1) {
        let at = c.b.op("Transpose", &[&a], vec![attr_ints("perm", &swap_last(sa.rank()))]);
        let g = c.b.op("MatMul", &[&at, &dy], vec![]);
        res[1] = Some(c.reduce_to(&g, &full(&sb), &b)?);
    }
    Ok(res)
}

/// An Einsum equation with the ellipsis expanded: one index string per operand, and the output's.
#[derive(Debug, PartialEq, Eq)]
struct Equation {
    terms: Vec<Vec<char>>,
    output: Vec<char>,
}

/// Parses `equation` for operands of the given ranks (spaces ignored). An ellipsis becomes as many
/// fresh letters as the operand has leading dims beyond its named ones (right-aligned, numpy
/// style); without `->`, the output is the indices that occur once, sorted, after the ellipsis.
fn parse_equation(equation: &str, ranks: &[usize]) -> Result<Equation, String> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (eq.clone(), None),
    };
    let raw: Vec<&str> = lhs.split(',').collect();
    if raw.len() != ranks.len() {
        return Err(format!("equation '{equation}' has {} operands, the node {}", raw.len(), ranks.len()));
    }
    let used: Vec<char> = eq.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    let fresh: Vec<char> = ('A'..='Z').chain('a'..='z').filter(|c| !used.contains(c)).collect();
    // Ellipsis dims per operand, then the letters they take (right-aligned across operands).
    let mut counts = Vec::with_capacity(raw.len());
    for (t, &rank) in raw.iter().zip(ranks) {
        let named = t.replace("...", "");
        if !named.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!("equation '{equation}': unexpected characters in '{t}'"));
        }
        let k = if t.contains("...") {
            rank.checked_sub(named.len()).ok_or_else(|| format!("operand '{t}' has rank {rank}"))?
        } else if named.len() != rank {
            return Err(format!("operand '{t}' names {} axes but has rank {rank}", named.len()));
        } else {
            0
        };
        counts.push(k);
    }
    let ell = counts.iter().copied().max().unwrap_or(0);
    if ell > fresh.len() {
        return Err(format!("equation '{equation}': too many dims under the ellipsis"));
    }
    let mut terms = Vec::with_capacity(raw.len());
    for (t, &k) in raw.iter().zip(&counts) {
        let mut v = Vec::new();
        match t.split_once("...") {
            Some((before, after)) => {
                v.extend(before.chars());
                v.extend(&fresh[ell - k..ell]);
                v.extend(after.chars());
            }
            None => v.extend(t.chars()),
        }
        terms.push(v);
    }
    let ell_letters: Vec<char> = fresh[..ell].to_vec();
    let output = match rhs {
        Some(r) => {
            let mut v = Vec::new();
            if let Some((before, after)) = r.split_once("...") {
                v.extend(before.chars());
                v.extend(&ell_letters);
                v.extend(after.chars());
            } else {
                v.extend(r.chars());
            }
            v
        }
        None => {
            let all: Vec<char> = terms.iter().flatten().copied().collect();
            let mut once: Vec<char> = all
                .iter()
                .copied()
                .filter(|c| !ell_letters.contains(c) && all.iter().filter(|d| *d == c).count() == 1)
                .collect();
            once.sort_unstable();
            let mut v = ell_letters.clone();
            v.extend(once);
            v
        }
    };
    Ok(Equation { terms, output })
}

/// The equation as ONNX writes it.
fn equation_string(inputs: &[&[char]], output: &[char]) -> String {
    let ins: Vec<String> = inputs.iter().map(|t| t.iter().collect()).collect();
    format!("{}->{}", ins.join(","), output.iter().collect::<String>())
}

/// Y = einsum(eq, A₀, …): dAᵢ = einsum("y,others->aᵢ", dY, others). Indices of Aᵢ that occur
/// nowhere else were summed over inside Aᵢ alone: their gradient is broadcast back with Expand.
pub(super) fn einsum(c: &mut Ctx) -> Result<Vec<Option<String>>, GradError> {
    let dy = c.dy0()?;
    let equation = c.string_attr("equation", "")?;
    let n = c.node.input.len();
    let mut ranks = Vec::with_capacity(n);
    for i in 0..n {
        ranks.push(c.shape(c.input(i))?.rank());
    }
    let eq = parse_equation(&equation, &ranks).map_err(|e| c.bad_attr("equation", e))?;
    let mut res = vec![None; n];
    for (i, slot) in res.iter_mut().enumerate() {
        if !c.needs(i) {
            continue;
        }
        let term = &eq.terms[i];
        if let Some(d) = term.iter().find(|ch| term.iter().filter(|x| x == ch).count() > 1) {
            return Err(c.unsupported(format!("operand {i} repeats index '{d}' (a diagonal) in '{equation}'")));
        }
        let others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        let elsewhere = |ch: &char| eq.output.contains(ch) || others.iter().any(|&j| eq.terms[j].contains(ch));
        let kept: Vec<char> = term.iter().copied().filter(elsewhere).collect();
        let mut terms: Vec<&[char]> = vec![&eq.output];
        terms.extend(others.iter().map(|&j| eq.terms[j].as_slice()));
        let mut names: Vec<String> = vec![dy.clone()];
        names.extend(others.iter().map(|&j| c.input(j).to_string()));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut g = c.b.op(
            "Einsum",
            &refs,
            vec![crate::onnx::builder::attr_string("equation", &equation_string(&terms, &kept))],
        );
        if kept.len() != term.len() {
            let missing: Vec<i64> =
                term.iter().enumerate().filter(|(_, ch)| !elsewhere(ch)).map(|(k, _)| k as i64).collect();
            let ax = c.b.const_i64("axes", &[missing.len() as i64], &missing);
            g = c.b.op("Unsqueeze", &[&g, &ax], vec![]);
            let input = c.input(i).to_string();
            let shape = c.shape_of(&input);
            g = c.b.op("Expand", &[&g, &shape], vec![]);
        }
        *slot = Some(g);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::parse_equation;

    #[test]
    fn einsum_equations_parse_with_ellipsis_and_implicit_output() {
        let e = parse_equation("B G H I D, B G H J D -> B G H I J", &[5, 5]).unwrap();
        assert_eq!(e.terms[0], "BGHID".chars().collect::<Vec<_>>());
        assert_eq!(e.output, "BGHIJ".chars().collect::<Vec<_>>());
        let e = parse_equation("...ij,...jk", &[4, 3]).unwrap();
        assert_eq!(e.terms[0].len(), 4);
        assert_eq!(e.terms[1].len(), 3);
        assert_eq!(e.output.len(), 4, "two ellipsis dims, then i and k");
        assert_eq!(&e.output[2..], &['i', 'k']);
        assert!(parse_equation("ij,jk->ik", &[2]).is_err());
        assert!(parse_equation("ij->i", &[3]).is_err());
    }
}
