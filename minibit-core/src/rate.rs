//! Transfer rate estimators.
