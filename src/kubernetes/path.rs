//! Pod identity from the kubelet's log path layout:
//! - `/var/log/containers/<pod>_<namespace>_<container>-<container id>.log` (a symlink), and
//! - `/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart>.log` (the real file).
//!
//! Kubernetes names never contain `_`, which is what makes the layout parseable.
//!
//! It also names a file's *source* (the container instance that wrote it), which document ids
//! are derived from. Only the path is read here, never the file or the API server.

use std::path::Path;

/// What the path tells about a log file's container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: Option<String>,
    pub container_name: String,
    pub container_id: Option<String>,
}

/// Combines what the discovered path and the real path say. `None` if neither is a kubelet path.
pub fn pod_ref(path: &Path, real_path: &Path) -> Option<PodRef> {
    let from_link = from_containers_path(path);
    let from_real = from_pods_path(real_path).or_else(|| from_pods_path(path));
    match (from_link, from_real) {
        (Some(mut a), Some(b)) => {
            a.pod_uid = b.pod_uid;
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

/// `<pod>_<namespace>_<container>-<64 hex>.log`
pub fn from_containers_path(path: &Path) -> Option<PodRef> {
    let name = path.file_name()?.to_str()?.strip_suffix(".log")?;
    let mut parts = name.splitn(3, '_');
    let pod_name = parts.next()?;
    let namespace = parts.next()?;
    let rest = parts.next()?;
    let (container_name, id) = rest.rsplit_once('-')?;
    if pod_name.is_empty() || namespace.is_empty() || container_name.is_empty() {
        return None;
    }
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(PodRef {
        namespace: namespace.to_string(),
        pod_name: pod_name.to_string(),
        pod_uid: None,
        container_name: container_name.to_string(),
        container_id: Some(id.to_string()),
    })
}

/// `.../<namespace>_<pod>_<uid>/<container>/<n>.log[.<rotation suffix>]`
pub fn from_pods_path(path: &Path) -> Option<PodRef> {
    let p = PodsPath::of(path)?;
    Some(PodRef {
        namespace: p.namespace.to_string(),
        pod_name: p.pod_name.to_string(),
        pod_uid: Some(p.uid.to_string()),
        container_name: p.container_name.to_string(),
        container_id: None,
    })
}

/// The parts of a `/var/log/pods` path, borrowed from it.
struct PodsPath<'a> {
    namespace: &'a str,
    pod_name: &'a str,
    uid: &'a str,
    container_name: &'a str,
    /// The `<n>` of `<n>.log`: the container's restart count.
    restart: &'a str,
}

impl PodsPath<'_> {
    fn of(path: &Path) -> Option<PodsPath<'_>> {
        let file = path.file_name()?.to_str()?;
        let (restart, _) = file.split_once(".log")?;
        if restart.is_empty() || !restart.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let container_dir = path.parent()?;
        let container_name = container_dir.file_name()?.to_str()?;
        let pod_dir = container_dir.parent()?.file_name()?.to_str()?;
        let mut parts = pod_dir.splitn(3, '_');
        let namespace = parts.next()?;
        let pod_name = parts.next()?;
        let uid = parts.next()?;
        if namespace.is_empty()
            || pod_name.is_empty()
            || uid.is_empty()
            || container_name.is_empty()
        {
            return None;
        }
        Some(PodsPath {
            namespace,
            pod_name,
            uid,
            container_name,
            restart,
        })
    }
}

/// The source of a log file, which its document ids are derived from (with its first line and
/// each event's offset), so that two files starting with the same line never share ids unless
/// they are the same container's log:
/// - the container instance when the kubelet layout names it: namespace, pod UID, container
///   and restart number from `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log…` (the real
///   path of a `/var/log/containers` link, or the discovered one). Every file of one container
///   instance has it: the live `0.log`, its renamed rotations `0.log.<timestamp>`, their
///   compressed forms `….gz` and a copytruncate copy;
/// - else, for a `/var/log/containers/<pod>_<ns>_<container>-<id>.log` whose target is not in
///   that layout (docker's own directory), namespace, pod, container and container id;
/// - else the path the file was discovered at (`path`, not `real_path`): a rotated plain file is
///   still known by the path it was first read at (the checkpoint keeps it), so a rename keeps
///   its ids, while two different files at two paths never share them.
pub fn source_identity(path: &Path, real_path: &Path) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut field = |s: &[u8]| {
        out.push(0);
        out.extend_from_slice(s);
    };
    if let Some(p) = PodsPath::of(real_path).or_else(|| PodsPath::of(path)) {
        field(b"pods");
        field(p.namespace.as_bytes());
        field(p.uid.as_bytes());
        field(p.container_name.as_bytes());
        field(p.restart.as_bytes());
    } else if let Some(c) = from_containers_path(path) {
        field(b"containers");
        field(c.namespace.as_bytes());
        field(c.pod_name.as_bytes());
        field(c.container_name.as_bytes());
        field(c.container_id.as_deref().unwrap_or_default().as_bytes());
    } else {
        use std::os::unix::ffi::OsStrExt;
        field(b"path");
        field(path.as_os_str().as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn containers_symlink_name() {
        let p = format!("/var/log/containers/web-7d4b9c-xk2p_shop_nginx-proxy-{ID}.log");
        let r = from_containers_path(Path::new(&p)).unwrap();
        assert_eq!(r.pod_name, "web-7d4b9c-xk2p");
        assert_eq!(r.namespace, "shop");
        assert_eq!(r.container_name, "nginx-proxy");
        assert_eq!(r.container_id.as_deref(), Some(ID));
    }

    #[test]
    fn pods_directory_layout_including_rotated_files() {
        for file in ["0.log", "3.log", "0.log.20261124-101500"] {
            let p = format!("/var/log/pods/shop_web-1_5f0c-uid/app/{file}");
            let r = from_pods_path(Path::new(&p)).unwrap();
            assert_eq!(
                (r.namespace.as_str(), r.pod_name.as_str()),
                ("shop", "web-1")
            );
            assert_eq!(r.pod_uid.as_deref(), Some("5f0c-uid"));
            assert_eq!(r.container_name, "app");
        }
    }

    #[test]
    fn both_paths_merge() {
        let link = format!("/var/log/containers/web-1_shop_app-{ID}.log");
        let r = pod_ref(
            Path::new(&link),
            Path::new("/var/log/pods/shop_web-1_uid-9/app/0.log"),
        )
        .unwrap();
        assert_eq!(r.pod_uid.as_deref(), Some("uid-9"));
        assert_eq!(r.container_id.as_deref(), Some(ID));
    }

    #[test]
    fn one_container_instance_is_one_source_whatever_the_file_is_called() {
        let link = Path::new("/var/log/containers/web-1_shop_app-x.log");
        let dir = "/var/log/pods/shop_web-1_uid-9/app";
        let live = source_identity(link, Path::new(&format!("{dir}/0.log")));
        for rotated in [
            "0.log.20261124-101500",
            "0.log.20261124-101500.gz",
            "0.log.1",
        ] {
            let real = format!("{dir}/{rotated}");
            assert_eq!(source_identity(Path::new(&real), Path::new(&real)), live);
            assert_eq!(source_identity(link, Path::new(&real)), live);
        }
        let other = [
            "/var/log/pods/shop_web-1_uid-9/app/1.log",
            "/var/log/pods/shop_web-1_uid-9/sidecar/0.log",
            "/var/log/pods/shop_web-1_uid-8/app/0.log",
            "/var/log/pods/blue_web-1_uid-9/app/0.log",
        ];
        for o in other {
            assert_ne!(source_identity(Path::new(o), Path::new(o)), live, "{o}");
        }
    }

    #[test]
    fn containers_link_outside_the_pods_layout_and_plain_paths() {
        let a = format!("/var/log/containers/web-1_shop_app-{ID}.log");
        let target = Path::new("/var/lib/docker/containers/x/x-json.log");
        let ia = source_identity(Path::new(&a), target);
        assert_eq!(
            ia,
            source_identity(Path::new(&a), Path::new("/elsewhere.log.1"))
        );
        let b = a.replace("web-1_", "web-2_");
        assert_ne!(ia, source_identity(Path::new(&b), target));
        // Plain files: the discovered path, whatever the file is renamed to.
        let p = source_identity(
            Path::new("/var/log/app.log"),
            Path::new("/var/log/app.log.1"),
        );
        assert_eq!(
            p,
            source_identity(Path::new("/var/log/app.log"), Path::new("/var/log/app.log"))
        );
        assert_ne!(
            p,
            source_identity(Path::new("/var/log/db.log"), Path::new("/var/log/db.log"))
        );
    }

    #[test]
    fn foreign_paths_are_not_guessed() {
        assert_eq!(
            pod_ref(Path::new("/var/log/syslog"), Path::new("/var/log/syslog")),
            None
        );
        assert_eq!(
            from_containers_path(Path::new("/x/a_b_c-notanid.log")),
            None
        );
        assert_eq!(from_pods_path(Path::new("/x/ns_pod_uid/c/app.log")), None);
    }
}
