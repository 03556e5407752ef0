//! A TLS-terminating, credential-checking proxy in front of the real Elasticsearch (the
//! integ-test build has no usable security): Debian's nginx, run in the foreground with a
//! generated config on a free port, certificates made with the openssl CLI. Included with
//! `#[path]` by the tests that need it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A test CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA.
pub struct Pki {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate signed by the test CA (for `ssl_verify_client`).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl CLI (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        ca(dir, "test-ca");
        ca(dir, "other-ca");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "test-ca.pem",
                "-CAkey",
                "test-ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "server.pem",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=sluice-agent",
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
            ],
        );
        std::fs::write(
            dir.join("client.cnf"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "test-ca.pem",
                "-CAkey",
                "test-ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "client.cnf",
                "-out",
                "client.pem",
            ],
        );
        Pki {
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            ca: dir.join("test-ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        }
    }
}

/// `Authorization` header values the proxy accepts.
pub fn basic(user: &str, password: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c"), format!("{user}:{password}")).unwrap();
    format!(
        "Basic {}",
        openssl(dir.path(), &["base64", "-A", "-in", "c"])
    )
}

pub struct Nginx {
    child: Option<Child>,
    pub url: String,
    pub dir: PathBuf,
}

impl Nginx {
    /// Serves `https://127.0.0.1:PORT` with `pki`'s server certificate and forwards requests
    /// whose `Authorization` is one of `accepted` to `upstream`; any other gets 401.
    pub fn start(dir: &Path, pki: &Pki, upstream: &str, accepted: &[String]) -> Nginx {
        Nginx::start_with(dir, pki, upstream, accepted, false)
    }

    /// With `client_certs`, a TLS client certificate signed by the test CA is required too.
    pub fn start_with(
        dir: &Path,
        pki: &Pki,
        upstream: &str,
        accepted: &[String],
        client_certs: bool,
    ) -> Nginx {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!("nginx is not installed: apt-get install -y nginx (scripts/test does)")
            });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        for t in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.join(t)).unwrap();
        }
        let map: String = accepted
            .iter()
            .map(|a| format!("    \"{a}\" 1;\n"))
            .collect();
        let d = dir.display();
        let conf = format!(
            r#"daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  client_max_body_size 200m;
  client_body_buffer_size 16m;
  map $http_authorization $authorized {{
    default 0;
{map}  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
{verify_client}    location / {{
      if ($authorized = 0) {{ return 401 '{{"error":"unauthorized (test proxy)"}}'; }}
      proxy_pass {upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 120s;
    }}
  }}
}}
"#,
            cert = pki.server_cert.display(),
            key = pki.server_key.display(),
            upstream = upstream.trim_end_matches('/'),
            verify_client = if client_certs {
                format!(
                    "    ssl_verify_client on;\n    ssl_client_certificate {};\n",
                    pki.ca.display()
                )
            } else {
                String::new()
            },
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("start nginx");
        let mut n = Nginx {
            child: Some(child),
            url: format!("https://127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(s) = n.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "nginx exited with {s}: {}{}",
                    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default(),
                    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 15 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        n
    }

    /// How many requests nginx answered with this status.
    pub fn count_status(&self, status: u16) -> usize {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        let needle = format!("\" {status} ");
        log.lines().filter(|l| l.contains(&needle)).count()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGQUIT: graceful stop of master and workers.
            unsafe { libc::kill(c.id() as i32, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
