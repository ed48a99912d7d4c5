//! What this machine offers for running the servers: the local binaries and a docker
//! engine with its images. `--backend auto` (the default) chooses from it, and
//! `overbook doctor` prints it with what each missing piece costs.
//!
//! The wording of the ways out lives here, once: the fallback line, the "neither" error
//! and the doctor's advice must name the same commands.

use std::path::PathBuf;

use super::docker::{self, Images};
use super::NodeError;

/// The command that installs the local servers (Debian/Ubuntu).
pub const INSTALL_SERVERS: &str = "apt-get install redis-server postgresql-15";
/// The script that builds the server images without a registry (in the repository).
pub const OFFLINE_BUILD: &str = "docker/build-offline-images.sh";
/// Pulling the official images, for machines that reach a registry.
pub const PULL_IMAGES: &str = "docker pull redis:7 postgres:15";

/// The local server binaries overbook spawns on the `local` backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalServers {
    /// `redis-server`, `postgres` and `initdb`, each with where it was found.
    pub binaries: Vec<(&'static str, Option<PathBuf>)>,
}

impl LocalServers {
    /// Looks on PATH (and Postgres's versioned bin directories).
    pub fn find() -> LocalServers {
        LocalServers {
            binaries: super::local::binary_paths().into_iter().collect(),
        }
    }

    /// Whether all three are installed: the local backend can run.
    pub fn complete(&self) -> bool {
        self.binaries.iter().all(|(_, p)| p.is_some())
    }

    /// The names of the missing binaries, e.g. `redis-server`.
    pub fn missing(&self) -> Vec<&'static str> {
        self.binaries
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(n, _)| *n)
            .collect()
    }
}

/// The docker engine as seen from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// No engine answers; why (the connect error).
    Absent(String),
    /// The engine answers.
    Present {
        /// Its version, e.g. `20.10.24`.
        version: String,
        /// The images asked about, each with whether it is present locally.
        images: Vec<(String, bool)>,
    },
}

impl Engine {
    /// Asks the engine (5 s at most) for its version and whether it holds `images`.
    pub fn probe(images: &[&str]) -> Engine {
        let images: Vec<String> = images.iter().map(|s| s.to_string()).collect();
        let probed = docker::run_blocking(move || async move {
            let engine = docker::connect().await?;
            let version = engine
                .version()
                .await
                .ok()
                .and_then(|v| v.version)
                .unwrap_or_else(|| "unknown".into());
            let mut present = Vec::new();
            for image in images {
                let here = docker::image_present(&engine, &image).await;
                present.push((image, here));
            }
            Ok(Engine::Present {
                version,
                images: present,
            })
        });
        probed.unwrap_or_else(|e| Engine::Absent(e.to_string()))
    }
}

/// The line `overbook run` prints when it falls back to containers: what is missing,
/// which images it uses, and how to get the faster local backend.
pub fn fallback_note(local: &LocalServers, images: &Images) -> String {
    format!(
        "overbook: {} not installed, so overbook uses the docker backend ({}, {}); \
         `{INSTALL_SERVERS}` makes runs start faster",
        local.missing().join(", "),
        images.redis,
        images.postgres
    )
}

/// The error when neither backend can run: no local servers, no engine answering.
pub fn neither(local: &LocalServers, engine_error: &str) -> NodeError {
    NodeError::NoServers(format!(
        "no servers to test against: {} not installed and no docker engine answers \
         ({engine_error}). Either install the servers (`{INSTALL_SERVERS}`; the fastest), \
         or start a docker engine and give it the images (`{PULL_IMAGES}`, or without a \
         registry `{OFFLINE_BUILD}` from the overbook repository, as root)",
        local.missing().join(", ")
    ))
}

/// The error when the engine answers but lacks an image and nothing may be pulled.
pub fn no_images(local: &LocalServers, missing: &[&str]) -> NodeError {
    NodeError::NoServers(format!(
        "no servers to test against: {} not installed, and the docker engine has no {} \
         (overbook never pulls). Build the images offline, no registry needed: \
         `{OFFLINE_BUILD}` (from the overbook repository, as root; about 90 s; it makes \
         {} and {} which are then picked by default); or `{PULL_IMAGES}`; or install the \
         servers (`{INSTALL_SERVERS}`)",
        local.missing().join(", "),
        missing.join(" nor "),
        docker::OFFLINE_REDIS_IMAGE,
        docker::OFFLINE_POSTGRES_IMAGE,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none_installed() -> LocalServers {
        LocalServers {
            binaries: vec![
                ("redis-server", None),
                (
                    "postgres",
                    Some(PathBuf::from("/usr/lib/postgresql/15/bin/postgres")),
                ),
                ("initdb", None),
            ],
        }
    }

    #[test]
    fn missing_names_only_what_is_absent() {
        let local = none_installed();
        assert!(!local.complete());
        assert_eq!(local.missing(), vec!["redis-server", "initdb"]);
    }

    #[test]
    fn every_way_out_is_named_once_in_each_message() {
        let local = none_installed();
        let neither = neither(&local, "connection refused").to_string();
        for way in [
            INSTALL_SERVERS,
            PULL_IMAGES,
            OFFLINE_BUILD,
            "connection refused",
        ] {
            assert_eq!(neither.matches(way).count(), 1, "{way} in {neither}");
        }
        let images = Images::default();
        let no_images = no_images(&local, &["redis:7", "postgres:15"]).to_string();
        for way in [
            INSTALL_SERVERS,
            PULL_IMAGES,
            OFFLINE_BUILD,
            "redis:7 nor postgres:15",
        ] {
            assert_eq!(no_images.matches(way).count(), 1, "{way} in {no_images}");
        }
        let note = fallback_note(&local, &images);
        assert!(
            note.contains("redis-server, initdb not installed"),
            "{note}"
        );
        assert!(
            note.contains(INSTALL_SERVERS) && !note.contains('\n'),
            "{note}"
        );
    }
}
