//! The peer tools the benchmark measures with — the warp load generator and
//! the MinIO server — built from their Go modules at pinned versions into a
//! cache folder (`$XDG_CACHE_HOME/coffer-e2e/go`, else `~/.cache/…`). They are
//! only used to measure on this machine, never shipped.

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
        let go = |args: &[&str]| -> Result<()> {
            let status = Command::new("go")
                .args(args)
                .current_dir(&work)
                .env("GOPATH", root)
                .env("GOMODCACHE", root.join("pkg").join("mod"))
                .env("GOTOOLCHAIN", "local")
                .env("GOFLAGS", "-mod=mod")
                // The checksum database does not know every pinned tag
                // (warp v1.0.0); dependencies are still verified.
                .env("GONOSUMDB", self.module)
                .status()
                .context("running `go` (is the Go toolchain installed and on PATH?)")?;
            if !status.success() {
                bail!("`go {}` failed with {status}", args.join(" "));
            }
            Ok(())
        };
        go(&["mod", "init", &format!("coffer-e2e-build/{}", self.name)])?;
        go(&["get", &format!("{}@{}", self.module, self.version)])?;
        let tmp = binary.with_extension("tmp");
        go(&[
            "build",
            "-o",
            tmp.to_str().context("non-UTF-8 cache path")?,
            self.module,
        ])?;
        std::fs::rename(&tmp, binary)?;
        Ok(())
    }
}
