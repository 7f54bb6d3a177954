//! SKELETON: picker (to be filled in).
