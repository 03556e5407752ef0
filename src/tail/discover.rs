//! Discovery: which files match the include globs (minus excludes) right now.
//!
//! A scan is cheap (a directory listing per pattern) and runs on start, when the watcher sees a
//! directory change, and periodically as a safety net for missed events.

use std::collections::HashSet;
use std::path::PathBuf;

use super::identity::FileId;

/// A file found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The path as matched (under `/var/log/containers` usually a symlink).
    pub path: PathBuf,
    /// Symlinks resolved.
    pub real_path: PathBuf,
    pub id: FileId,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// Lists the regular files matching `include` and none of `exclude`, deduplicated by identity
/// (two symlinks to one file are one file). Unreadable entries are skipped with a warning.
pub fn scan(include: &[String], exclude: &[glob::Pattern]) -> Vec<Found> {
    scan_known(include, exclude, &|_| false)
}

/// Like [`scan`], but a file for which `known(id)` holds is listed without resolving its
/// symlinks: its `real_path` is the matched path. A periodic rescan only needs to see that open
/// files are still there, and resolving every symlink of 10,000 files each time was most of an
/// idle agent's CPU.
pub fn scan_known(
    include: &[String],
    exclude: &[glob::Pattern],
    known: &dyn Fn(FileId) -> bool,
) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    // Deduplication by identity; a linear search here made a scan quadratic in the file count.
    let mut seen: HashSet<FileId> = HashSet::new();
    for pattern in include {
        let paths = match glob::glob(pattern) {
            Ok(p) => p,
            // Patterns are validated in config; a failure here would be a bug, not bad input.
            Err(e) => {
                tracing::error!(%pattern, error = %e, "invalid include pattern");
                continue;
            }
        };
        for entry in paths {
            let path = match entry {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a path while scanning");
                    continue;
                }
            };
            if exclude.iter().any(|x| x.matches_path(&path)) {
                continue;
            }
            // Follows symlinks: /var/log/containers/*.log point into /var/log/pods.
            let meta = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(_) => continue,
                // A dangling symlink (its pod's logs were removed) is normal churn.
                Err(_) => continue,
            };
            let id = FileId::of(&meta);
            if !seen.insert(id) {
                continue;
            }
            let real_path = if known(id) {
                path.clone()
            } else {
                std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone())
            };
            if real_path.extension().is_some_and(|e| e == "gz") {
                continue;
            }
            found.push(Found {
                path,
                real_path,
                id,
                size: meta.len(),
                modified: meta
                    .modified()
                    .unwrap_or_else(|_| std::time::SystemTime::now()),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_symlinks_excludes_and_dedups() {
        let dir = tempfile::tempdir().unwrap();
        let pods = dir.path().join("pods/ns_a_uid/c");
        let containers = dir.path().join("containers");
        std::fs::create_dir_all(&pods).unwrap();
        std::fs::create_dir_all(&containers).unwrap();
        std::fs::write(pods.join("0.log"), b"x\n").unwrap();
        std::fs::write(pods.join("1.log"), b"y\n").unwrap();
        std::os::unix::fs::symlink(pods.join("0.log"), containers.join("a.log")).unwrap();
        std::os::unix::fs::symlink(pods.join("0.log"), containers.join("a-again.log")).unwrap();
        std::os::unix::fs::symlink(pods.join("1.log"), containers.join("skip.log")).unwrap();
        std::os::unix::fs::symlink(pods.join("gone.log"), containers.join("dangling.log")).unwrap();

        let include = vec![format!("{}/*.log", containers.display())];
        let exclude = vec![glob::Pattern::new(&format!("{}/skip*", containers.display())).unwrap()];
        let found = scan(&include, &exclude);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].real_path,
            std::fs::canonicalize(pods.join("0.log")).unwrap()
        );
        assert_eq!(found[0].size, 2);

        // A known file is listed as matched, without resolving where it points.
        let id = found[0].id;
        let again = scan_known(&include, &exclude, &|i| i == id);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, id);
        assert_eq!(again[0].real_path, again[0].path);
    }
}
