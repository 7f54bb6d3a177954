//! SKELETON: sim (to be filled in).
