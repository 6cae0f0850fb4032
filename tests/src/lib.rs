//! Holds no code: the tests in `tests/` exercise every adapter together.
