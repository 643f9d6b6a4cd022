//! The application behind every sidecar. kwok's pods run no containers, so one small HTTP/1.1
//! server on 127.0.0.1 answers for all of them; each pod's Sidecar ingress forwards there
//! (`defaultEndpoint: 127.0.0.1:<app port>`). It answers 200 to every request and keeps the
//! connection open, as Envoy's upstream connection pool expects.
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::Error;

pub async fn serve(port: u16) -> Result<(), Error> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| Error::Io {
            what: "cannot listen for the app on 127.0.0.1",
            path: format!("127.0.0.1:{port}").into(),
            source,
        })?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream));
                }
                Err(err) => eprintln!("local-mesh: app accept: {err}"),
            }
        }
    });
    Ok(())
}

/// Answers each request of one connection until the peer closes it.
async fn answer(stream: TcpStream) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut body_length = 0usize;
        let mut close = false;
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    body_length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    // Not needed by the tests or the demo: answer, then close.
                    close = true;
                }
            }
        }
        let mut body = vec![0u8; body_length.min(1 << 20)];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/");
        let text = format!("local-mesh app: {target}\n");
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n{text}",
            text.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        if write.write_all(response.as_bytes()).await.is_err() || close {
            return;
        }
    }
}
