//! The object store's S3 code path against a real S3-compatible server: moto's, from the tests'
//! venv (`make setup`), started on a free loopback port. What artifacts, backups and packages do
//! with a bucket — put, get, list under a prefix, delete — round-trips through the S3 protocol,
//! and two stores scoped to different prefixes of one bucket stay apart.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use sankalpa_kit::objects::Objects;
use sankalpa_testkit::process::free_port;

/// moto's server, stopped when dropped.
struct S3Server {
    child: tokio::process::Child,
    endpoint: String,
}

impl S3Server {
    async fn start(program: &str) -> Self {
        let port = free_port();
        let child = tokio::process::Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while reqwest::get(&endpoint).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto_server answers at {endpoint}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, endpoint }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn objects_round_trip_through_an_s3_server() {
    let Some(program) = sankalpa_testkit::venv_tool("moto_server") else {
        return;
    };
    let server = S3Server::start(&program).await;
    let bucket = format!(
        "sankalpa-{}",
        sankalpa_testkit::unique_name().to_lowercase()
    );
    let created = reqwest::Client::new()
        .put(format!("{}/{bucket}", server.endpoint))
        .send()
        .await
        .expect("the S3 server answers");
    assert!(created.status().is_success(), "bucket created: {created:?}");
    // The variables an operator sets for S3 (docs/configuration.md); this test binary is the
    // only one reading them.
    for (key, value) in [
        ("AWS_ENDPOINT", server.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "sankalpa"),
        ("AWS_SECRET_ACCESS_KEY", "sankalpa-secret"),
        ("AWS_REGION", "us-east-1"),
    ] {
        // SAFETY: set before any other thread of this test reads the environment.
        unsafe { std::env::set_var(key, value) };
    }

    let objects = Objects::from_url(&format!("s3://{bucket}/tenant-a")).unwrap();
    let other = Objects::from_url(&format!("s3://{bucket}/tenant-b")).unwrap();
    let large = Bytes::from(vec![7u8; 3 * 1024 * 1024]);
    objects
        .put("runs/1/report.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    objects
        .put("runs/1/archive.tar.gz", large.clone())
        .await
        .unwrap();
    objects
        .put("runs/2/report.json", Bytes::from_static(b"[]"))
        .await
        .unwrap();
    other
        .put("runs/1/report.json", Bytes::from_static(b"other"))
        .await
        .unwrap();

    assert_eq!(
        objects.get("runs/1/report.json").await.unwrap().as_deref(),
        Some(&b"{}"[..])
    );
    assert_eq!(
        objects.get("runs/1/archive.tar.gz").await.unwrap(),
        Some(large)
    );
    assert_eq!(
        other.get("runs/1/report.json").await.unwrap().as_deref(),
        Some(&b"other"[..])
    );
    assert_eq!(objects.get("runs/3/report.json").await.unwrap(), None);

    assert_eq!(
        objects.list("runs/1").await.unwrap(),
        ["runs/1/archive.tar.gz", "runs/1/report.json"],
        "a listing holds this prefix's keys only"
    );
    assert_eq!(
        objects.scoped("runs").list("2").await.unwrap(),
        ["2/report.json"],
        "a scoped store lists relative to its own prefix"
    );

    objects.delete("runs/1/report.json").await.unwrap();
    assert_eq!(objects.get("runs/1/report.json").await.unwrap(), None);
    assert_eq!(
        other.get("runs/1/report.json").await.unwrap().as_deref(),
        Some(&b"other"[..]),
        "a delete under one prefix leaves the other's object"
    );
}
