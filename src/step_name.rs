//! [`StepName`]: a leaf that both the error type and the step vocabulary
//! use, so that neither imports the other's module (no circle in the
//! module graph: `tests/it/layout.rs`).

use std::fmt;

/// A step's stable name (flags, the state file and JSON events use it).
/// Each step file declares its own as a `const NAME`; the machine's order is
/// the one list of all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepName(&'static str);

impl StepName {
    pub const fn new(name: &'static str) -> StepName {
        StepName(name)
    }
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
