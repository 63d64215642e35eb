//! NATS credentials read from the server URL, against nats-server processes of the test's own
//! that require them (Debian's nats-server, which `make setup` installs).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sankalpa_kit::nats::connect;

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A nats-server on a free port started with `auth` flags, stopped on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(auth: &[&str]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(NATS_SERVER)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(auth)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("{NATS_SERVER} starts (make setup installs it): {err}"));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nats-server listens"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child, port }
}

async fn publishes(url: &str) -> anyhow::Result<()> {
    let client = connect(url).await?;
    client.publish("test.credentials", "hello".into()).await?;
    client.flush().await?;
    Ok(())
}

#[tokio::test]
async fn a_user_and_percent_encoded_password_in_the_url_are_used() {
    let server = start(&["--user", "svc", "--pass", "p@ss:w/rd"]);
    let port = server.port;
    publishes(&format!("nats://svc:p%40ss%3Aw%2Frd@127.0.0.1:{port}"))
        .await
        .expect("the URL's credentials are accepted");

    let refused = publishes(&format!("nats://svc:wrong-secret@127.0.0.1:{port}"))
        .await
        .expect_err("a wrong password is refused");
    let said = format!("{refused:#}");
    assert!(
        !said.contains("wrong-secret"),
        "the password is not said: {said}"
    );
    assert!(said.contains("svc:***@"), "{said}");

    publishes(&format!("nats://127.0.0.1:{port}"))
        .await
        .expect_err("no credentials, refused");
}

#[tokio::test]
async fn a_lone_value_in_the_url_is_a_token() {
    let server = start(&["--auth", "s3cr3t-token"]);
    let port = server.port;
    publishes(&format!("nats://s3cr3t-token@127.0.0.1:{port}"))
        .await
        .expect("the token is accepted");
    publishes(&format!("nats://other-token@127.0.0.1:{port}"))
        .await
        .expect_err("another token is refused");
}
