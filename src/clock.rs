//! The one clock abstraction. Code that reads the time takes a `&dyn Clock` (the
//! daemon's threads, a sync run), so a test can hand it a fixed or stepping clock; code
//! that only computes with a time takes the value, `now: u64` (unix seconds). Any
//! `Fn() -> u64` is a clock: `&sangdam_wire::now_unix` is the box's, `&|| NOW` a test's.

/// A source of unix seconds.
pub trait Clock: Sync {
    fn now_unix(&self) -> u64;
}

impl<F: Fn() -> u64 + Sync> Clock for F {
    fn now_unix(&self) -> u64 {
        self()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_and_closures_are_clocks() {
        fn read(c: &dyn Clock) -> u64 {
            c.now_unix()
        }
        assert_eq!(read(&|| 42), 42);
        let system = read(&sangdam_wire::now_unix);
        assert!(system > 1_735_689_600, "{system}");
    }
}
