//! Test scaffolding shared by minibit's test suites (a dev-dependency of
//! the crates whose tests use it; never published): the external programs
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

// The `wan` bench's network namespaces, the one place they are made and
// entered; the tests reach them through `netns`.
#[path = "../../benches/src/wan/net.rs"]
mod wan_net;
