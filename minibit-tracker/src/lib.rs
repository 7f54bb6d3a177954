//! minibit-tracker: an HTTP BitTorrent tracker with a catalogue, seeding the files it is given.
//!
//! SKELETON: filled in by the tracker work.
