//! Pod identity from the kubelet's log path layout:
//! - `/var/log/containers/<pod>_<namespace>_<container>-<container id>.log` (a symlink), and
//! - `/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart>.log` (the real file).
//!
//! Kubernetes names never contain `_`, which is what makes the layout parseable.

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
    if namespace.is_empty() || pod_name.is_empty() || uid.is_empty() || container_name.is_empty() {
        return None;
    }
    Some(PodRef {
        namespace: namespace.to_string(),
        pod_name: pod_name.to_string(),
        pod_uid: Some(uid.to_string()),
        container_name: container_name.to_string(),
        container_id: None,
    })
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
