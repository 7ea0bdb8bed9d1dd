//! Shape functions of matrix products: Gemm (rank-2 operands, `transA`/`transB`, C broadcast to
//! the result), MatMul (numpy semantics: 1-D operands promoted, batch dimensions broadcast) and
//! Einsum (explicit or implicit output, ellipsis broadcast). Inner dimensions that differ are
//! refused with both operand shapes.

use crate::onnx::infer::{broadcast, Cx, Out, ShapeFn};
use crate::onnx::OnnxError;

pub(super) fn lookup(op: &str) -> Option<ShapeFn> {
    Some(match op {
        "Gemm" => gemm,
        "MatMul" => matmul,
        "Einsum" => einsum,
        _ => return None,
    })
}

fn gemm(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let (a, b) = (cx.required(0, "A")?, cx.required(1, "B")?);
    let ta = cx.int("transA", 0)? != 0;
    let tb = cx.int("transB", 0)? != 0;
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(Out::unknown());
    };
    if a.len() != 2 || b.len() != 2 {
        return Err(cx.err(format!("operands A {a:?} and B {b:?} must both be matrices (rank 2)")));
    }
    let (m, ka) = if ta { (a[1], a[0]) } else { (a[0], a[1]) };
    let (kb, n) = if tb { (b[1], b[0]) } else { (b[0], b[1]) };
    if ka != kb {
        return Err(cx.err(format!(
            "A {a:?} (transA {}) and B {b:?} (transB {}) have inner dimensions {ka} and {kb}, which differ",
            ta as i64, tb as i64
        )));
    }
    if cx.has(2) {
        if let Some(c) = cx.shape(2) {
            if broadcast(&[&[m, n], c]).as_deref() != Some(&[m, n][..]) {
                return Err(cx.err(format!("C of shape {c:?} does not broadcast to the result's [{m}, {n}]")));
            }
        }
    }
    Ok(Out::one(vec![m, n]))
}

fn matmul(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let (a, b) = (cx.required(0, "A")?, cx.required(1, "B")?);
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(Out::unknown());
    };
    if a.is_empty() || b.is_empty() {
        return Err(cx.err(format!("operands A {a:?} and B {b:?}: MatMul needs rank 1 or more")));
    }
    let a2: Vec<i64> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let b2: Vec<i64> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    let (ra, rb) = (a2.len(), b2.len());
    if a2[ra - 1] != b2[rb - 2] {
        return Err(cx.err(format!(
            "A {a:?} and B {b:?} have inner dimensions {} and {}, which differ",
            a2[ra - 1],
            b2[rb - 2]
        )));
    }
    let Some(mut out) = broadcast(&[&a2[..ra - 2], &b2[..rb - 2]]) else {
        return Err(cx.err(format!("the batch dimensions of A {a:?} and B {b:?} cannot be broadcast together")));
    };
    if a.len() > 1 {
        out.push(a2[ra - 2]);
    }
    if b.len() > 1 {
        out.push(b2[rb - 1]);
    }
    Ok(Out::one(out))
}

/// One operand's subscripts: the labels before and after an ellipsis (`after` is `None` without
/// one).
struct Term {
    before: Vec<u8>,
    after: Option<Vec<u8>>,
}

fn parse_term(t: &str) -> Option<Term> {
    let label = |s: &str| s.bytes().all(|c| c.is_ascii_alphabetic()).then(|| s.bytes().collect::<Vec<u8>>());
    match t.split_once("...") {
        Some((a, b)) => Some(Term { before: label(a)?, after: Some(label(b)?) }),
        None => Some(Term { before: label(t)?, after: None }),
    }
}

fn einsum(cx: &Cx<'_>) -> Result<Out, OnnxError> {
    let equation: String = cx.string("equation", "")?.chars().filter(|c| !c.is_whitespace()).collect();
    let bad = |why: &str| cx.attr_err("equation", format!("'{equation}': {why}"));
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (equation.as_str(), None),
    };
    let terms: Vec<Term> =
        lhs.split(',').map(parse_term).collect::<Option<_>>().ok_or_else(|| bad("not a subscript list"))?;
    if terms.len() != cx.node.input.len() {
        return Err(bad(&format!("{} operands in the equation, {} inputs", terms.len(), cx.node.input.len())));
    }
    let mut shapes = Vec::with_capacity(terms.len());
    for i in 0..terms.len() {
        match cx.required(i, "operand")? {
            Some(s) => shapes.push(s),
            None => return Ok(Out::unknown()),
        }
    }
    // Label sizes (a size-1 dimension broadcasts against its label's other sizes) and the
    // ellipsis dimensions of each operand, broadcast together.
    let mut size = [0i64; 256];
    let mut count = [0usize; 256];
    let mut ellipses: Vec<&[i64]> = Vec::new();
    for (t, s) in terms.iter().zip(&shapes) {
        let after = t.after.as_deref().unwrap_or(&[]);
        let named = t.before.len() + after.len();
        if named > s.len() || (t.after.is_none() && named != s.len()) {
            return Err(cx.err(format!("operand of shape {s:?} does not match its subscripts in '{equation}'")));
        }
        let ell = s.len() - named;
        let labels = t.before.iter().zip(&s[..t.before.len()]).chain(after.iter().zip(&s[t.before.len() + ell..]));
        for (&l, &d) in labels {
            let l = l as usize;
            count[l] += 1;
            match size[l] {
                0 | 1 => size[l] = d.max(size[l]),
                known if d != 1 && d != known => {
                    return Err(cx.err(format!(
                        "label '{}' has sizes {known} and {d} in '{equation}' (operands {shapes:?})",
                        l as u8 as char
                    )))
                }
                _ => {}
            }
        }
        if t.after.is_some() {
            ellipses.push(&s[t.before.len()..t.before.len() + ell]);
        }
    }
    let Some(ell) = broadcast(&ellipses) else {
        return Err(cx.err(format!("the ellipsis dimensions of {shapes:?} cannot be broadcast together")));
    };
    let out_labels: Vec<u8> = match rhs {
        Some(r) => {
            let t = parse_term(r).ok_or_else(|| bad("the output is not a subscript list"))?;
            let mut out = t.before.clone();
            out.extend(t.after.iter().flatten());
            if let Some(&l) = out.iter().find(|&&l| count[l as usize] == 0) {
                return Err(bad(&format!("output label '{}' is on no operand", l as char)));
            }
            let mut dims: Vec<i64> = t.before.iter().map(|&l| size[l as usize]).collect();
            if let Some(after) = &t.after {
                dims.extend_from_slice(&ell);
                dims.extend(after.iter().map(|&l| size[l as usize]));
            } else if !ell.is_empty() {
                return Err(bad("operands have an ellipsis but the output does not"));
            }
            return Ok(Out::one(dims));
        }
        // Implicit output: the broadcast ellipsis dimensions, then the labels that appear once,
        // in alphabetical order. (Where upper and lower case labels mix, runtimes order them
        // differently: left unknown.)
        None => (0..=255u8).filter(|&l| count[l as usize] == 1).collect(),
    };
    if out_labels.iter().any(u8::is_ascii_uppercase) && out_labels.iter().any(u8::is_ascii_lowercase) {
        return Ok(Out::unknown());
    }
    let mut dims = ell;
    dims.extend(out_labels.iter().map(|&l| size[l as usize]));
    Ok(Out::one(dims))
}
