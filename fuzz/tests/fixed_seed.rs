//! CI's short pass: every target, a fixed seed, a fixed number of inputs, in this
//! process. A panic or a slow input fails the test with the input; an abort (stack
//! overflow, allocation failure) fails it by ending the test binary.

use bucketlens_fuzz::{fuzz, quiet_panics, targets, Budget, Finding};

#[test]
fn every_target_survives_a_fixed_seed_pass() {
    quiet_panics();
    let mut failures = Vec::new();
    for target in targets() {
        let inputs = if target.name == "image" { 1500 } else { 20_000 };
        let report = fuzz(&target, 20261201, Budget::Inputs(inputs), |_| {});
        assert_eq!(report.inputs, inputs);
        assert!(
            report.signatures > 3,
            "{}: the mutations reach more than a few outcomes ({})",
            target.name,
            report.signatures
        );
        for finding in report.findings {
            failures.push(match finding {
                Finding::Panic { message, input } => {
                    format!("{}: panic {message} on {:?}", target.name, String::from_utf8_lossy(&input))
                }
                Finding::Slow { millis, input } => format!("{}: {millis} ms on {} bytes", target.name, input.len()),
            });
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
