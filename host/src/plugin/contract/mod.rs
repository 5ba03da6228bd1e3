//! The plugin contract versions this host runs: [`ContractVersion`] is the one place a
//! version is named, parsed (by semver), mapped to its `wit/since_vX.Y.Z/` folder and
//! linked ([`ContractVersion::link`]); [`Linked`] and [`Exports`] are the only places the
//! rest of the host meets a version, one arm per version.
//!
//! One module per version (Zed's `since_vX.Y.Z` pattern) holds what the host does for
//! that version alone: [`since_v0_1_0`] its imports and linking, [`since_v0_2_0`] the same
//! and its output adapter. Every `bindgen!` stays in `crate::bindings` (wasmtime's
//! one-file-owns-every-bindgen): 0.2.0's bindings are generated on 0.1.0's types, a
//! coupling that file keeps in one place. The host's model is 0.1.0's `types` (see
//! `since_v0_2_0::unpack` for why 0.2.0 is adapted to it and not the other way).
//! [`names`] renders a contract type in words.

mod names;
pub(super) mod since_v0_1_0;
pub(super) mod since_v0_2_0;

use std::fmt;
use std::str::FromStr;

use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use super::instance::InitRefusal;
use super::output::OutputError;
use super::sandbox::State;
use crate::bindings::{since_v0_1_0 as v0_1, since_v0_2_0 as v0_2, types};

/// The contract package every version belongs to.
pub const CONTRACT_PACKAGE: &str = "stagepush:transform";

/// A version of the `stagepush:transform` contract this host can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContractVersion {
    /// Entities as lists of records and variants.
    V0_1_0,
    /// The output packed into byte columns.
    V0_2_0,
}

/// Every supported version, oldest first.
const SUPPORTED: &[ContractVersion] = &[ContractVersion::V0_1_0, ContractVersion::V0_2_0];

/// Why a version string names no contract this host runs.
#[derive(Debug, thiserror::Error)]
pub enum ContractVersionError {
    #[error("contract version {found:?} is not a semantic version: {source}")]
    NotSemver {
        found: String,
        source: semver::Error,
    },
    #[error(
        "contract version {found} is not one this stagepush runs ({})",
        supported_list()
    )]
    Unsupported { found: semver::Version },
}

impl ContractVersion {
    /// Every version this host runs, oldest first.
    pub fn supported() -> &'static [ContractVersion] {
        SUPPORTED
    }

    /// The newest version (what the SDKs build for).
    pub fn newest() -> ContractVersion {
        *SUPPORTED
            .last()
            .expect("at least one supported contract version")
    }

    /// The version as a semantic version.
    pub fn semver(self) -> semver::Version {
        match self {
            ContractVersion::V0_1_0 => semver::Version::new(0, 1, 0),
            ContractVersion::V0_2_0 => semver::Version::new(0, 2, 0),
        }
    }

    /// Parses `text` as a semantic version and finds the supported contract it names
    /// (an exact match: the host links each version's interfaces by their exact name).
    pub fn parse(text: &str) -> Result<ContractVersion, ContractVersionError> {
        let found =
            semver::Version::parse(text).map_err(|source| ContractVersionError::NotSemver {
                found: text.to_string(),
                source,
            })?;
        SUPPORTED
            .iter()
            .copied()
            .find(|v| v.semver() == found)
            .ok_or(ContractVersionError::Unsupported { found })
    }

    /// Adds the version's imports to `linker` and links `component` against them.
    pub(super) fn link(
        self,
        linker: &mut Linker<State>,
        component: &Component,
    ) -> Result<Linked, LinkError> {
        Ok(match self {
            ContractVersion::V0_1_0 => Linked::V0_1(since_v0_1_0::link(linker, component)?),
            ContractVersion::V0_2_0 => Linked::V0_2(since_v0_2_0::link(linker, component)?),
        })
    }

    /// The folder under `wit/` the version's WIT lives in (`since_vX.Y.Z`).
    pub fn wit_dir(self) -> String {
        format!("since_v{self}")
    }

    /// The version's WIT, as the host's `bindgen!` reads it.
    pub fn wit(self) -> &'static str {
        match self {
            ContractVersion::V0_1_0 => include_str!("../../../../wit/since_v0.1.0/transform.wit"),
            ContractVersion::V0_2_0 => include_str!("../../../../wit/since_v0.2.0/transform.wit"),
        }
    }
}

impl fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.semver())
    }
}

impl FromStr for ContractVersion {
    type Err = ContractVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ContractVersion::parse(s)
    }
}

/// Why a component could not be linked.
#[derive(Debug)]
pub(super) enum LinkError {
    /// The host's own imports could not be added (a bug of the host, not of the plugin).
    Engine(wasmtime::Error),
    /// The component needs imports the host does not provide.
    Imports(wasmtime::Error),
}

/// A component linked for the contract version it was built for.
pub(super) enum Linked {
    V0_1(v0_1::TransformerPre<State>),
    V0_2(v0_2::TransformerPre<State>),
}

impl Linked {
    pub(super) fn version(&self) -> ContractVersion {
        match self {
            Linked::V0_1(_) => ContractVersion::V0_1_0,
            Linked::V0_2(_) => ContractVersion::V0_2_0,
        }
    }

    pub(super) fn instantiate(&self, store: &mut Store<State>) -> wasmtime::Result<Exports> {
        match self {
            Linked::V0_1(pre) => pre.instantiate(store).map(Exports::V0_1),
            Linked::V0_2(pre) => pre.instantiate(store).map(Exports::V0_2),
        }
    }
}

/// The exports of an instance, by contract version.
pub(super) enum Exports {
    V0_1(v0_1::Transformer),
    V0_2(v0_2::Transformer),
}

/// What a `transform` call gave: the output in the host's model, or output that breaks the
/// contract (0.2.0's unpacking found it malformed).
pub(super) type Transformed = Result<types::Output, OutputError>;

impl Exports {
    pub(super) fn describe(&self, store: &mut Store<State>) -> wasmtime::Result<types::PluginInfo> {
        match self {
            Exports::V0_1(e) => e.stagepush_transform_plugin().call_describe(store),
            Exports::V0_2(e) => e.stagepush_transform_plugin().call_describe(store),
        }
    }

    pub(super) fn init(
        &self,
        store: &mut Store<State>,
        schema: &[types::ColumnSchema],
        config: &[(String, String)],
    ) -> wasmtime::Result<Result<types::InitResult, InitRefusal>> {
        let answer = match self {
            Exports::V0_1(e) => e
                .stagepush_transform_plugin()
                .call_init(store, schema, config),
            Exports::V0_2(e) => e
                .stagepush_transform_plugin()
                .call_init(store, schema, config),
        };
        // The contract's error is the plugin's refusal in its own words.
        answer.map(|result| result.map_err(InitRefusal))
    }

    /// Transforms a batch; a 0.2.0 output is unpacked into the host's model.
    pub(super) fn transform(
        &self,
        store: &mut Store<State>,
        batch: &types::Batch,
    ) -> wasmtime::Result<Transformed> {
        match self {
            Exports::V0_1(e) => e
                .stagepush_transform_plugin()
                .call_transform(store, batch)
                .map(Ok),
            Exports::V0_2(e) => e
                .stagepush_transform_plugin()
                .call_transform(store, batch)
                .map(since_v0_2_0::unpack),
        }
    }
}

/// The supported versions as `package@version`, joined for a refusal message.
pub fn supported_list() -> String {
    SUPPORTED
        .iter()
        .map(|v| format!("{CONTRACT_PACKAGE}@{v}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_supported_version_and_prints_it_back() {
        for &v in ContractVersion::supported() {
            assert_eq!(ContractVersion::parse(&v.to_string()).unwrap(), v);
        }
        assert_eq!(
            "0.1.0".parse::<ContractVersion>().unwrap(),
            ContractVersion::V0_1_0
        );
        assert_eq!(ContractVersion::V0_2_0.to_string(), "0.2.0");
    }

    #[test]
    fn refuses_unsupported_and_malformed_versions() {
        for text in ["0.3.0", "0.2.1", "1.0.0", "0.2.0-rc1"] {
            assert!(
                matches!(
                    ContractVersion::parse(text),
                    Err(ContractVersionError::Unsupported { .. })
                ),
                "{text}"
            );
        }
        for text in ["0.2", "v0.2.0", ""] {
            assert!(
                matches!(
                    ContractVersion::parse(text),
                    Err(ContractVersionError::NotSemver { .. })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn supported_is_oldest_first_and_newest_is_last() {
        let supported = ContractVersion::supported();
        assert!(supported.windows(2).all(|w| w[0].semver() < w[1].semver()));
        assert_eq!(ContractVersion::newest(), ContractVersion::V0_2_0);
        assert_eq!(
            supported_list(),
            "stagepush:transform@0.1.0 and stagepush:transform@0.2.0"
        );
    }

    #[test]
    fn each_version_has_its_wit_folder() {
        for &v in ContractVersion::supported() {
            assert_eq!(v.wit_dir(), format!("since_v{v}"));
            assert!(
                v.wit().contains(&format!("package {CONTRACT_PACKAGE}@{v}")),
                "{v}: its WIT names another version"
            );
        }
    }
}
