//! # paxraft-models
//!
//! The stateright model of a cluster of any [`paxraft_impls::Replica`], its properties and
//! its fault model.
