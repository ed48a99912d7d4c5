//! `overbook doctor`: what this machine has for overbook (the local server binaries and
//! their versions, a docker engine and its images, Chromium) and what each missing piece
//! costs, ending with the backend `overbook run` would use. Exit 0 when a run can start
//! here, 1 when neither backend can.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use crate::nodes::docker::{
    DEFAULT_POSTGRES_IMAGE, DEFAULT_REDIS_IMAGE, OFFLINE_POSTGRES_IMAGE, OFFLINE_REDIS_IMAGE,
};
use crate::nodes::machine::{Engine, LocalServers, INSTALL_SERVERS, OFFLINE_BUILD, PULL_IMAGES};

/// The image of overbook itself that `docker/build-overbook-image.sh` builds (the tag a
/// registry would carry is `ghcr.io/<owner>/overbook:<version>`).
pub const OVERBOOK_IMAGE: &str = "overbook/overbook:latest";

/// Prints the inventory and the advice; see the module doc for the exit code.
pub fn run() -> anyhow::Result<ExitCode> {
    let local = LocalServers::find();
    let engine = Engine::probe(&[
        DEFAULT_REDIS_IMAGE,
        DEFAULT_POSTGRES_IMAGE,
        OFFLINE_REDIS_IMAGE,
        OFFLINE_POSTGRES_IMAGE,
        OVERBOOK_IMAGE,
    ]);
    let chromium = chromium();
    print!("{}", report(&local, &engine, chromium.as_deref()));
    Ok(if choice(&local, &engine).is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The backend `overbook run` (auto) would use, or `None` when neither can run.
fn choice(local: &LocalServers, engine: &Engine) -> Option<&'static str> {
    if local.complete() {
        return Some("local");
    }
    server_images(engine).map(|_| "docker")
}

/// The Redis and Postgres images a docker run would pick (official first, then offline),
/// when the engine answers and holds a pair.
fn server_images(engine: &Engine) -> Option<(&str, &str)> {
    let Engine::Present { images, .. } = engine else {
        return None;
    };
    let here = |name: &str| images.iter().any(|(n, p)| n == name && *p);
    let redis = [DEFAULT_REDIS_IMAGE, OFFLINE_REDIS_IMAGE]
        .into_iter()
        .find(|i| here(i))?;
    let postgres = [DEFAULT_POSTGRES_IMAGE, OFFLINE_POSTGRES_IMAGE]
        .into_iter()
        .find(|i| here(i))?;
    Some((redis, postgres))
}

/// The whole text, from what was found (separate from the probing so it is testable).
fn report(local: &LocalServers, engine: &Engine, chromium: Option<&Path>) -> String {
    let mut out = String::from("local servers (the local backend: the fastest, every fault)\n");
    for (name, path) in &local.binaries {
        match path {
            Some(p) => out.push_str(&format!(
                "  {name:<14} {}  {}\n",
                p.display(),
                version_of(p)
            )),
            None => out.push_str(&format!("  {name:<14} missing\n")),
        }
    }
    match engine {
        Engine::Absent(why) => out.push_str(&format!("docker engine: none answers ({why})\n")),
        Engine::Present { version, images } => {
            out.push_str(&format!("docker engine: {version}\n"));
            for (image, here) in images {
                let state = if *here { "present" } else { "missing" };
                out.push_str(&format!("  {image:<30} {state}\n"));
            }
        }
    }
    match chromium {
        Some(p) => out.push_str(&format!("chromium (reports): {}\n", p.display())),
        None => out.push_str("chromium (reports): missing\n"),
    }
    out.push_str(&costs(local, engine, chromium.is_some()));
    out
}

/// One line per missing piece: what it costs, and how to get it.
fn costs(local: &LocalServers, engine: &Engine, chromium: bool) -> String {
    let mut lines = Vec::new();
    let images = server_images(engine);
    if !local.complete() {
        lines.push(match images {
            Some(_) => format!(
                "no local {}: runs fall back to docker, 0.4-1.5 s more per run or matrix \
                 cell to start containers; `{INSTALL_SERVERS}` for the local backend",
                local.missing().join(", ")
            ),
            None => format!(
                "no local {}: runs need docker instead; `{INSTALL_SERVERS}`",
                local.missing().join(", ")
            ),
        });
    }
    match engine {
        Engine::Absent(_) => lines.push(
            "no docker engine: no --backend docker, no --service-image, and the docker \
             test group skips; every fault still works on the local backend"
                .to_string(),
        ),
        Engine::Present { .. } if images.is_none() => lines.push(format!(
            "no Redis/Postgres images: --backend docker refuses to start (overbook never \
             pulls); `{OFFLINE_BUILD}` builds them without a registry (as root, about 90 s), \
             or `{PULL_IMAGES}`"
        )),
        Engine::Present { images: list, .. } => {
            if !list.iter().any(|(n, here)| n == OVERBOOK_IMAGE && *here) {
                lines.push(format!(
                    "no {OVERBOOK_IMAGE}: only needed to run overbook itself in a container \
                     (CI); `docker/build-overbook-image.sh` builds it without a registry"
                ));
            }
        }
    }
    if !chromium {
        lines.push(
            "no chromium: reports are still written and open in any browser; only the \
             report tests' headless rendering checks skip"
                .to_string(),
        );
    }
    let mut out = String::new();
    if !lines.is_empty() {
        out.push_str("missing, and what it costs:\n");
        for l in lines {
            out.push_str(&format!("  - {l}\n"));
        }
    }
    out.push_str(&match choice(local, engine) {
        Some("docker") => {
            let (r, p) = images.unwrap_or_default();
            format!("`overbook run` uses: docker ({r}, {p})\n")
        }
        Some(b) => format!("`overbook run` uses: {b}\n"),
        None => format!(
            "`overbook run` cannot start servers here: `{INSTALL_SERVERS}`, or a docker \
             engine with the images (`{OFFLINE_BUILD}`)\n"
        ),
    });
    out
}

/// The binary's own `--version` line (redis-server, postgres and initdb all have one).
fn version_of(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| checkers::text::for_terminal(l.trim()).into_owned())
        })
        .unwrap_or_else(|| "(no version)".into())
}

/// The first Chromium on PATH, as the report tests look for it.
fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn servers(installed: bool) -> LocalServers {
        let at = |p: &str| installed.then(|| PathBuf::from(p));
        LocalServers {
            binaries: vec![
                ("redis-server", at("/nonexistent/redis-server")),
                ("postgres", at("/nonexistent/postgres")),
                ("initdb", at("/nonexistent/initdb")),
            ],
        }
    }

    fn engine(present: &[&str]) -> Engine {
        Engine::Present {
            version: "20.10.24".into(),
            images: [
                DEFAULT_REDIS_IMAGE,
                DEFAULT_POSTGRES_IMAGE,
                OFFLINE_REDIS_IMAGE,
                OFFLINE_POSTGRES_IMAGE,
                OVERBOOK_IMAGE,
            ]
            .iter()
            .map(|i| (i.to_string(), present.contains(i)))
            .collect(),
        }
    }

    #[test]
    fn without_servers_the_offline_images_are_used_and_the_cost_named() {
        let engine = engine(&[OFFLINE_REDIS_IMAGE, OFFLINE_POSTGRES_IMAGE]);
        let text = report(&servers(false), &engine, None);
        assert!(text.contains("redis-server   missing"), "{text}");
        assert!(text.contains("runs fall back to docker"), "{text}");
        assert!(text.contains("no chromium"), "{text}");
        assert!(text.contains("build-overbook-image.sh"), "{text}");
        assert!(
            text.ends_with(&format!(
                "`overbook run` uses: docker ({OFFLINE_REDIS_IMAGE}, {OFFLINE_POSTGRES_IMAGE})\n"
            )),
            "{text}"
        );
        assert_eq!(choice(&servers(false), &engine), Some("docker"));
    }

    #[test]
    fn neither_backend_names_both_ways_and_fails() {
        let absent = Engine::Absent("connection refused".into());
        let text = report(
            &servers(false),
            &absent,
            Some(Path::new("/usr/bin/chromium")),
        );
        assert!(text.contains("none answers (connection refused)"), "{text}");
        assert!(text.contains("cannot start servers here"), "{text}");
        assert!(
            text.contains(INSTALL_SERVERS) && text.contains(OFFLINE_BUILD),
            "{text}"
        );
        assert_eq!(choice(&servers(false), &absent), None);
        // An engine without images is no better.
        assert_eq!(
            choice(&servers(false), &engine(&[OFFLINE_REDIS_IMAGE])),
            None
        );
        let text = report(&servers(false), &engine(&[]), None);
        assert!(text.contains("no Redis/Postgres images"), "{text}");
    }

    #[test]
    fn installed_servers_win_and_cost_nothing() {
        let all = engine(&[DEFAULT_REDIS_IMAGE, DEFAULT_POSTGRES_IMAGE, OVERBOOK_IMAGE]);
        let text = report(&servers(true), &all, Some(Path::new("/usr/bin/chromium")));
        assert!(!text.contains("missing, and what it costs"), "{text}");
        assert!(text.ends_with("`overbook run` uses: local\n"), "{text}");
    }
}
