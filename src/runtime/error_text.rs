//! ONNX Runtime's error texts turned into aegis-audit's: one line, without the
//! `[ONNXRuntimeError] : 1 : FAIL :` prefix, the C++ source paths (`/onnxruntime_src/...cc:46`) and
//! the C++ function signatures ONNX Runtime puts in front of the actual reason, and with names from
//! the model escaped.

use crate::escape::escape;

/// File extensions of C/C++/CUDA sources that ONNX Runtime names in its messages.
const SOURCE_EXTENSIONS: [&str; 7] = [".cc", ".h", ".cpp", ".hpp", ".cu", ".cuh", ".c"];

/// Whether `token` is a source location such as `/onnxruntime_src/core/graph/graph.cc:1234` or
/// `pool.cc:233` (a path, or a bare file name with a line number).
fn is_source_location(token: &str) -> bool {
    let token = token.trim_end_matches([',', ';']);
    let (path, has_line) = match token.rsplit_once(':') {
        Some((p, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => (p, true),
        _ => (token, false),
    };
    (has_line || path.contains('/') || path.contains('\\')) && SOURCE_EXTENSIONS.iter().any(|e| path.ends_with(e))
}

/// Whether `token` is a bare C++ function name (`Compute`, `ConstantNodeProtoToTensorProto`,
/// `onnxruntime::Foo::Bar`): what ONNX Runtime's release builds print after a source location.
fn is_function_name(token: &str) -> bool {
    let mut chars = token.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '<' | '>' | '~'))
        && !token.ends_with(':')
}

/// The length of a C++ function signature at the start of `s` (`void ns::f(const T&, int) const`),
/// or 0 when `s` does not start with one: text before the first `(` that contains `::` and no
/// sentence punctuation, through the matching `)` and an optional `const`.
fn signature_len(s: &str) -> usize {
    let Some(open) = s.find('(') else { return 0 };
    let head = &s[..open];
    if !head.contains("::") || head.contains(". ") || head.contains(": ") {
        return 0;
    }
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    let mut end = open + i + 1;
                    if s[end..].starts_with(" const") {
                        end += " const".len();
                    }
                    // GCC's template arguments: "[with T = float; ...]".
                    if s[end..].starts_with(" [with ") {
                        if let Some(close) = s[end..].find(']') {
                            end += close + 1;
                        }
                    }
                    return end;
                }
            }
            _ => {}
        }
    }
    0
}

/// ONNX Runtime's message `raw` as one clean line.
pub(crate) fn clean(raw: &str) -> String {
    let mut text: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    // "... [ONNXRuntimeError] : 1 : FAIL : rest"
    if let Some(at) = text.find("[ONNXRuntimeError]") {
        let rest = &text[at + "[ONNXRuntimeError]".len()..];
        let parts: Vec<&str> = rest.splitn(4, " : ").collect();
        if parts.len() == 4 {
            text = format!("{}{}", &text[..at], parts[3]);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let (token, after) = match rest.find(' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        if is_source_location(token) {
            let mut skip = signature_len(after);
            if skip == 0 {
                // A bare function name, when more text follows it.
                let next = after.split(' ').next().unwrap_or("");
                if is_function_name(next) && after.len() > next.len() {
                    skip = next.len();
                }
            }
            rest = after[skip..].trim_start();
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(token);
        rest = after;
    }
    let out = out.trim().trim_end_matches(':').trim().to_string();
    let out = if out.is_empty() { "unspecified error".to_string() } else { out };
    escape(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn source_paths_and_signatures_are_removed() {
        let raw = "[ONNXRuntimeError] : 1 : FAIL : /onnxruntime_src/onnxruntime/core/graph/model_load_utils.h:46 \
                   void onnxruntime::model_load_utils::ValidateOpsetForDomain(const std::unordered_map<std::__cxx11::basic_string<char>, int>&, \
                   const onnxruntime::logging::Logger&, bool, const std::string&, int) ONNX Runtime only *guarantees* support \
                   for models stamped with official released onnx opset versions.";
        assert_eq!(
            clean(raw),
            "ONNX Runtime only *guarantees* support for models stamped with official released onnx opset versions."
        );
    }

    #[test]
    fn run_failures_keep_the_node_and_reason() {
        let raw = "Non-zero status code returned while running Conv node. Name:'conv1' Status Message: \
                   /onnxruntime_src/onnxruntime/core/providers/cpu/nn/conv_attributes.h:140 onnxruntime::common::Status \
                   onnxruntime::ConvAttributes::ValidateInputShape(const onnxruntime::TensorShape&, const onnxruntime::TensorShape&, bool) const \
                   Input channels C is not equal to kernel channels * group. C: 1 kernel channels: 1 group: 3";
        assert_eq!(
            clean(raw),
            "Non-zero status code returned while running Conv node. Name:'conv1' Status Message: \
             Input channels C is not equal to kernel channels * group. C: 1 kernel channels: 1 group: 3"
        );
    }

    #[test]
    fn short_source_locations_and_function_names_are_removed() {
        let raw = "[ONNXRuntimeError] : 1 : FAIL : tensorprotoutils.cc:2265 ConstantNodeProtoToTensorProto Constant node: /Constant has no data attributes";
        assert_eq!(clean(raw), "Constant node: /Constant has no data attributes");
        let raw = "Non-zero status code returned while running MaxPool node. Name:'pool1' Status Message: pool.cc:233 Compute kernel_shape num_dims is not compatible with X num_dims.";
        assert_eq!(
            clean(raw),
            "Non-zero status code returned while running MaxPool node. Name:'pool1' Status Message: kernel_shape num_dims is not compatible with X num_dims."
        );
    }

    #[test]
    fn template_arguments_of_a_signature_are_removed() {
        let raw = "Non-zero status code returned while running GatherElements node. Name:'g' Status Message: \
                   /onnxruntime_src/onnxruntime/core/providers/cpu/tensor/gather_elements.cc:150 void \
                   onnxruntime::core_impl(const Tensor*, const Tensor*, Tensor*, int64_t, concurrency::ThreadPool*) \
                   [with Tin = long int; int64_t = long int] GatherElements op: Out of range value in index tensor";
        assert_eq!(
            clean(raw),
            "Non-zero status code returned while running GatherElements node. Name:'g' Status Message: \
             GatherElements op: Out of range value in index tensor"
        );
    }

    #[test]
    fn multi_line_text_becomes_one_escaped_line() {
        assert_eq!(clean("first\nsecond\u{1b}[0m"), "first second\\u{1b}[0m");
        assert_eq!(clean(""), "unspecified error");
        assert_eq!(clean("plain reason"), "plain reason");
    }
}
