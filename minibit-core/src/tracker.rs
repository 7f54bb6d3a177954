//! SKELETON: tracker (to be filled in).
