//! The model world as a scenario backend: [`MODEL`] makes a [`World`] of
//! each driver variant in the build, for the scenarios, property tests
//! and bad-input cases of `ptm-scenario`.

use ptm_scenario::{Backend, Pty, Variant as ScenarioVariant};

use crate::{World, variants};

/// The model world: the project's own STREAMS model beneath each driver
/// variant ([`variants`]: the C `ptm.c` when built with
/// `PTM_REFERENCE_C`, the Rust crate, the shipped module and `ptm.c` as a
/// kernel object when they are built).
pub struct ModelBackend;

/// The model world's backend.
pub static MODEL: ModelBackend = ModelBackend;

impl Backend for ModelBackend {
    fn name(&self) -> &'static str {
        "model"
    }

    /// The model needs nothing outside the repository.
    fn unavailable(&self) -> Option<String> {
        None
    }

    fn variants(&self) -> Vec<ScenarioVariant> {
        variants().iter().map(|v| v.scenario()).collect()
    }

    fn world(&self, v: ScenarioVariant) -> Result<Box<dyn Pty>, String> {
        let m = variants()
            .into_iter()
            .find(|m| m.name == v.name)
            .ok_or_else(|| format!("no variant {} in the model world", v.name))?;
        Ok(Box::new(World::new(m)?))
    }
}

impl ptm_scenario::stress::ThreadedBackend for ModelBackend {
    /// A world of the model's multi-threaded mode ([`World::new_threaded`]).
    fn threaded_world(
        &self,
        v: ScenarioVariant,
        workers: usize,
    ) -> Result<Box<dyn ptm_scenario::stress::ThreadedPty>, String> {
        let m = variants()
            .into_iter()
            .find(|m| m.name == v.name)
            .ok_or_else(|| format!("no variant {} in the model world", v.name))?;
        Ok(Box::new(World::new_threaded(m, workers)?))
    }
}
