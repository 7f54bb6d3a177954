//! Test scaffolding shared by minibit's test suites (a dev-dependency of
//! the crates whose tests use it, and a dependency of the benches, whose
//! `wan` and `dht-scale` run in its network namespaces; never published): the external programs
//! the tests drive and their Debian packages, the root check and network
//! namespaces of the tests that need them, child processes killed when
//! dropped, bounded waits, test content, and a headless browser.
//!
//! Every requirement fails loudly, naming what is missing: no test is
//! skipped.

pub mod binaries;
pub mod content;
pub mod netns;
pub mod process;
pub mod root;
pub mod tools;
pub mod wait;
pub mod webdriver;
