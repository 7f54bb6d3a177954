//! SKELETON: choker (to be filled in).
