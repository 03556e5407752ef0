//! Faults the health tests inject into the real (debug) binary; release builds read nothing.

use super::*;

/// Faults the health tests inject into the real (debug) binary through `SLUICE_TEST_FAULT`:
/// `reader-panic:<lines>` or `reader-hang:<lines>`, once that many lines were read. Release
/// builds never read the variable.
#[derive(Debug, Clone, Copy)]
pub(super) enum TestFault {
    Panic(u64),
    Hang(u64),
}

impl TestFault {
    pub(super) fn from_env() -> Option<TestFault> {
        if !cfg!(debug_assertions) {
            return None;
        }
        let v = std::env::var("SLUICE_TEST_FAULT").ok()?;
        let (kind, n) = v.split_once(':')?;
        let n = n.parse().ok()?;
        match kind {
            "reader-panic" => Some(TestFault::Panic(n)),
            "reader-hang" => Some(TestFault::Hang(n)),
            _ => None,
        }
    }
}

impl Reader {
    pub(super) fn inject_fault(&self) {
        let lines = self.metrics.lines_read.get();
        match self.fault {
            Some(TestFault::Panic(n)) if lines >= n => {
                panic!("injected by SLUICE_TEST_FAULT after {lines} lines")
            }
            Some(TestFault::Hang(n)) if lines >= n => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            _ => {}
        }
    }
}
