//! The audit: a resolved plan (method, parameters, seeds) applied to a prepared model and a
//! dataset, producing one [`crate::report::AuditReport`] and, on request, visual evidence.
//! Data flows one way: prepared model + images → precondition → detector → per-class verdicts →
//! report.

mod evidence;
mod prepare;
mod run;

pub use prepare::{gradient_graph, PreparedModel};
pub use run::{run_audit, AuditPlan, MethodChoice};
