//! Putting a model together: the actor model of [`crate::model`] with the properties of
//! [`crate::properties`]. It lives apart from both so that neither needs the other: the
//! model records host checks, the properties read them.

use paxraft_impls::Replica;

use crate::model::{actors, within_boundary, ClusterModel, Cmd, ModelConfig};

/// Build the model of `cfg` for replica type `R`, with every property of
/// [`crate::properties`] and the bounds as stateright's boundary.
pub fn build<R: Replica<Cmd>>(cfg: &ModelConfig) -> ClusterModel<R> {
    let mut model = actors::<R>(cfg).within_boundary(within_boundary::<R>);
    for p in crate::properties::properties::<ClusterModel<R>>(&model.cfg) {
        model.properties.push(p);
    }
    model
}
