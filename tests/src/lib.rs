//! Cross-crate tests for CAVMem live in `tests/tests/`; this library is empty on purpose.
