//! Go programs the harness runs, built from their Go modules at pinned
//! versions into a cache folder (`$XDG_CACHE_HOME/coffer-e2e/go`, else
//! `~/.cache/…`): the peer tools the benchmark measures with (the warp load
//! generator and the MinIO server), and the Kubernetes control plane of the
//! end-to-end tests (etcd, and kube-apiserver, kube-controller-manager,
//! kube-scheduler and kubectl of one Kubernetes release). None is shipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A Go program built from `module@version`.
pub struct GoTool {
    pub name: &'static str,
    pub module: &'static str,
    pub version: &'static str,
}

/// The load generator; versions after v1.0.0 were not reachable through the
/// module proxy available when this was pinned.
pub const WARP: GoTool = GoTool {
    name: "warp",
    module: "github.com/minio/warp",
    version: "v1.0.0",
};

/// The peer server: what `github.com/minio/minio@latest` resolved to (MinIO
/// publishes no semver tags to the Go proxy).
pub const MINIO: GoTool = GoTool {
    name: "minio",
    module: "github.com/minio/minio",
    version: "v0.0.0-20260212201848-7aac2a2c5b7c",
};

/// etcd for the Kubernetes control plane: the newest 3.5 patch release the
/// module proxy serves (3.5 is the line the issue asks for; Kubernetes 1.34
/// supports etcd 3.5 and 3.6). The module's root package is the `etcd` command.
pub const ETCD: GoTool = GoTool {
    name: "etcd",
    module: "go.etcd.io/etcd/server/v3",
    version: "v3.5.35",
};

/// The Kubernetes release whose control plane the end-to-end tests run. It
/// matches the API the operator is built against (k8s-openapi feature `v1_34`).
pub const KUBERNETES: Kubernetes = Kubernetes {
    version: "v1.34.4",
    staging_version: "v0.34.4",
    commands: &[
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
    ],
};

/// Commands of one release of `k8s.io/kubernetes`. That module is not meant to
/// be required by others: its go.mod requires every `k8s.io/*` staging module
/// at `v0.0.0` and `replace`s them with folders inside its own repository, and
/// replacements of a dependency are ignored. A main module that replaces each
/// of them with its published tag (`v0.X.Y` for release `v1.X.Y`) builds it.
pub struct Kubernetes {
    pub version: &'static str,
    pub staging_version: &'static str,
    pub commands: &'static [&'static str],
}

/// `$XDG_CACHE_HOME/coffer-e2e/go`, or `~/.cache/coffer-e2e/go`.
pub fn go_root() -> Result<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?,
        )
        .join(".cache"),
    };
    Ok(cache.join("coffer-e2e").join("go"))
}

impl GoTool {
    /// The cached binary, built first when it is not there yet.
    pub fn ensure_built(&self) -> Result<PathBuf> {
        let root = go_root()?;
        let binary = root
            .join("bin")
            .join(format!("{}-{}", self.name, self.version));
        if binary.is_file() {
            return Ok(binary);
        }
        eprintln!(
            "building {}@{} into {} (this can take minutes)",
            self.module,
            self.version,
            binary.display()
        );
        self.build(&root, &binary)
            .with_context(|| format!("building {}@{}", self.module, self.version))?;
        Ok(binary)
    }

    /// Builds inside a throwaway main module that requires only the tool,
    /// which resolves exactly the dependencies `go install MODULE@VERSION`
    /// would. (`go install` itself also asks the proxy for the module's
    /// version list to check deprecation, which the mirror here refuses.)
    fn build(&self, root: &Path, binary: &Path) -> Result<()> {
        let work = root
            .join("build")
            .join(format!("{}-{}", self.name, self.version));
        if work.exists() {
            std::fs::remove_dir_all(&work)?;
        }
        std::fs::create_dir_all(&work)?;
        std::fs::create_dir_all(binary.parent().expect("binary path has a folder"))?;
        // The checksum database does not know every pinned tag (warp
        // v1.0.0); dependencies are still verified.
        let go = |args: &[&str]| run_go(root, &work, &[("GONOSUMDB", self.module)], args);
        go(&["mod", "init", &format!("coffer-e2e-build/{}", self.name)])?;
        go(&["get", &format!("{}@{}", self.module, self.version)])?;
        let tmp = binary.with_extension("tmp");
        go(&[
            "build",
            "-trimpath",
            "-o",
            tmp.to_str().context("non-UTF-8 cache path")?,
            self.module,
        ])?;
        std::fs::rename(&tmp, binary)?;
        Ok(())
    }
}

/// Runs `go ARGS` in `work` with the module cache under `root`, at low CPU
/// priority (a cold build takes minutes and must not starve the rest of the
/// machine), without cgo (static binaries, no C toolchain needed).
fn run_go(root: &Path, work: &Path, extra_env: &[(&str, &str)], args: &[&str]) -> Result<()> {
    let mut command = Command::new("nice");
    command
        .args(["-n", "10", "go"])
        .args(args)
        .current_dir(work)
        .env("GOPATH", root)
        .env("GOMODCACHE", root.join("pkg").join("mod"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0");
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let status = command
        .status()
        .context("running `go` (is the Go toolchain installed and on PATH?)")?;
    if !status.success() {
        bail!("`go {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

impl Kubernetes {
    /// The folder holding the release's commands, built first when any is
    /// missing. The commands share one `go build`, so the packages they have
    /// in common (most of them) compile once.
    pub fn ensure_built(&self) -> Result<PathBuf> {
        let root = go_root()?;
        let dir = root
            .join("bin")
            .join(format!("kubernetes-{}", self.version));
        if self.commands.iter().all(|c| dir.join(c).is_file()) && self.stamped(&dir) {
            return Ok(dir);
        }
        eprintln!(
            "building Kubernetes {} ({}) into {} (a cold build takes many minutes)",
            self.version,
            self.commands.join(", "),
            dir.display()
        );
        self.build(&root, &dir)
            .with_context(|| format!("building Kubernetes {}", self.version))?;
        Ok(dir)
    }

    /// Whether the built API server reports this release as its version (builds cached
    /// before the version was stamped in say `v0.0.0-master`, and are built again).
    fn stamped(&self, dir: &Path) -> bool {
        Command::new(dir.join("kube-apiserver"))
            .arg("--version")
            .output()
            .is_ok_and(|out| {
                String::from_utf8_lossy(&out.stdout).trim()
                    == format!("Kubernetes {}", self.version)
            })
    }

    /// `-X` flags that stamp the release into the binaries, as the Kubernetes release build
    /// does: a `go build` of the module leaves `v0.0.0-master`, which the API server then
    /// reports, and clients that check the cluster's version (helm's `kubeVersion`
    /// constraints) refuse it.
    fn version_ldflags(&self) -> Result<String> {
        let mut parts = self.version.trim_start_matches('v').split('.');
        let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
            bail!("Kubernetes version {} is not vX.Y.Z", self.version);
        };
        let mut flags = Vec::new();
        for package in [
            "k8s.io/component-base/version",
            "k8s.io/client-go/pkg/version",
        ] {
            for (name, value) in [
                ("gitVersion", self.version),
                ("gitMajor", major),
                ("gitMinor", minor),
                ("gitTreeState", "clean"),
            ] {
                flags.push(format!("-X {package}.{name}={value}"));
            }
        }
        Ok(flags.join(" "))
    }

    fn build(&self, root: &Path, dir: &Path) -> Result<()> {
        let work = root
            .join("build")
            .join(format!("kubernetes-{}", self.version));
        if work.exists() {
            std::fs::remove_dir_all(&work)?;
        }
        std::fs::create_dir_all(&work)?;
        let go = |args: &[&str]| run_go(root, &work, &[], args);
        let module = format!("k8s.io/kubernetes@{}", self.version);
        go(&["mod", "init", "coffer-e2e-build/kubernetes"])?;
        // The staging modules to replace are exactly the release's own
        // `replace` directives that point into its repository.
        let download = Command::new("go")
            .args(["mod", "download", "-json", &module])
            .current_dir(&work)
            .env("GOPATH", root)
            .env("GOMODCACHE", root.join("pkg").join("mod"))
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .output()
            .context("running `go mod download`")?;
        if !download.status.success() {
            bail!(
                "`go mod download {module}` failed: {}",
                String::from_utf8_lossy(&download.stderr)
            );
        }
        let info: serde_json::Value = serde_json::from_slice(&download.stdout)?;
        let go_mod = info["GoMod"]
            .as_str()
            .context("`go mod download -json` gave no GoMod")?;
        let parsed = Command::new("go")
            .args(["mod", "edit", "-json", go_mod])
            .output()
            .context("running `go mod edit -json`")?;
        if !parsed.status.success() {
            bail!("`go mod edit -json {go_mod}` failed");
        }
        let parsed: serde_json::Value = serde_json::from_slice(&parsed.stdout)?;
        let staging: Vec<&str> = parsed["Replace"]
            .as_array()
            .context("the Kubernetes go.mod has no replace directives")?
            .iter()
            .filter(|r| {
                r["New"]["Path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("./staging/"))
            })
            .filter_map(|r| r["Old"]["Path"].as_str())
            .collect();
        if staging.is_empty() {
            bail!("no staging modules found in {go_mod}");
        }
        let mut edit = vec!["mod".to_string(), "edit".to_string()];
        edit.push(format!("-require={module}"));
        for path in &staging {
            edit.push(format!("-replace={path}={path}@{}", self.staging_version));
        }
        go(&edit.iter().map(String::as_str).collect::<Vec<_>>())?;
        let tmp = dir.with_extension("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        let out = format!("{}/", tmp.to_str().context("non-UTF-8 cache path")?);
        let packages: Vec<String> = self
            .commands
            .iter()
            .map(|c| format!("k8s.io/kubernetes/cmd/{c}"))
            .collect();
        let ldflags = self.version_ldflags()?;
        let mut args = vec!["build", "-trimpath", "-ldflags", &ldflags, "-o", &out];
        args.extend(packages.iter().map(String::as_str));
        go(&args)?;
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::rename(&tmp, dir)?;
        Ok(())
    }
}
