//! A scripted HTTP server for provider wire-format tests: it records each request exactly
//! (method, path and query, headers, body) and answers with the next scripted response,
//! byte for byte, so tests can send what real providers send: error bodies, `Retry-After`,
//! slow replies, and bodies cut off mid-way.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent: `/v1/messages`, `/openai/deployments/d/chat/completions?api-version=...`.
    pub target: String,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    pub fn query(&self) -> &str {
        self.target
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default()
    }
}

/// One scripted response.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Declare the full length but send only this many bytes of the body, then close.
    pub cut_at: Option<usize>,
}

impl Scripted {
    pub fn json(status: u16, body: Value) -> Scripted {
        Scripted::raw(status, &body.to_string())
    }

    pub fn raw(status: u16, body: &str) -> Scripted {
        Scripted {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
            cut_at: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Scripted {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Scripted {
        self.delay = delay;
        self
    }

    /// The body stops after `bytes` bytes and the connection closes.
    pub fn cut(mut self, bytes: usize) -> Scripted {
        self.cut_at = Some(bytes);
        self
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Scripted>,
    received: Vec<Received>,
}

/// The server. Unscripted requests get a 599 so a test sees it asked too often.
#[derive(Clone)]
pub struct WireFake {
    url: String,
    state: Arc<Mutex<State>>,
}

impl WireFake {
    pub async fn start() -> WireFake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let fake = WireFake {
            url,
            state: Arc::default(),
        };
        let state = fake.state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        fake
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn push(&self, reply: Scripted) -> &Self {
        self.state.lock().expect("lock").script.push_back(reply);
        self
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("lock").received.clone()
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    loop {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_string();
        let target = first.next().unwrap_or_default().to_string();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let mut chunk = vec![0u8; len - body.len()];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let reply = {
            let mut s = state.lock().expect("lock");
            s.received.push(Received {
                method,
                target,
                headers,
                body: String::from_utf8_lossy(&body).to_string(),
            });
            s.script
                .pop_front()
                .unwrap_or_else(|| Scripted::raw(599, "{\"error\":\"unscripted request\"}"))
        };
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        let mut out = format!("HTTP/1.1 {} Scripted\r\n", reply.status);
        for (k, v) in &reply.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!("content-length: {}\r\n\r\n", reply.body.len()));
        let body = reply.body.as_bytes();
        stream.write_all(out.as_bytes()).await?;
        match reply.cut_at {
            Some(n) => {
                stream.write_all(&body[..n.min(body.len())]).await?;
                stream.flush().await?;
                return stream.shutdown().await;
            }
            None => stream.write_all(body).await?,
        }
        stream.flush().await?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
