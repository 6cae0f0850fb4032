//! The outgoing HTTP adapter (`crm_core::outbound::HttpCaller`) over reqwest with rustls:
//! workflow webhooks and webhook deliveries leave the server through it.

use std::time::Duration;

use async_trait::async_trait;
use crm_core::outbound::{HttpCaller, OutboundRequest, OutboundResponse};
use reqwest::redirect::{Attempt, Policy};

/// Body bytes kept for delivery logs.
const EXCERPT_BYTES: usize = 1024;
/// Longest a caller may ask a request to take.
const MAX_TIMEOUT_SECS: u64 = 60;
const MAX_REDIRECTS: usize = 5;

#[derive(Debug, Clone)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

/// Follows a redirect only to the same scheme, host and port: a webhook URL the workspace
/// configured may not bounce the call to a host it did not name.
fn same_origin_only(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let Some(first) = attempt.previous().first() else {
        return attempt.stop();
    };
    let next = attempt.url();
    let same = first.scheme() == next.scheme()
        && first.host_str() == next.host_str()
        && first.port_or_known_default() == next.port_or_known_default();
    if same && attempt.previous().len() <= MAX_REDIRECTS {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

impl ReqwestHttp {
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(MAX_TIMEOUT_SECS))
            .redirect(Policy::custom(same_origin_only))
            .user_agent(concat!("clianta/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait]
impl HttpCaller for ReqwestHttp {
    async fn call(&self, req: OutboundRequest) -> Result<OutboundResponse, String> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| format!("invalid method `{}`", req.method))?;
        let url = reqwest::Url::parse(&req.url).map_err(|e| format!("invalid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("unsupported scheme `{}`", url.scheme()));
        }
        let timeout = Duration::from_secs(req.timeout_secs.clamp(1, MAX_TIMEOUT_SECS));
        let mut builder = self.client.request(method, url).timeout(timeout);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let mut res = builder
            .body(req.body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        // Only the first bytes are read: a huge answer costs neither time nor memory.
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match res.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        Ok(OutboundResponse {
            status,
            body_excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Answers every connection with `answer` and returns what it received.
    async fn server(answer: String) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(Ok((mut s, _))) =
                tokio::time::timeout(Duration::from_millis(500), l.accept()).await
            {
                let mut buf = vec![0; 8192];
                let n = s.read(&mut buf).await.unwrap();
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                s.write_all(answer.as_bytes()).await.unwrap();
                s.shutdown().await.ok();
            }
            got
        });
        (format!("http://{addr}"), h)
    }

    fn request(url: &str) -> OutboundRequest {
        OutboundRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("x-clianta-event".into(), "contact.created".into())],
            body: b"{\"a\":1}".to_vec(),
            timeout_secs: 5,
        }
    }

    #[tokio::test]
    async fn posts_and_keeps_an_excerpt_of_the_answer() {
        let body = "x".repeat(5000);
        let (url, h) = server(format!(
            "HTTP/1.1 202 Accepted\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ))
        .await;
        let r = ReqwestHttp::new()
            .unwrap()
            .call(request(&format!("{url}/hook")))
            .await
            .unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(r.body_excerpt.len(), EXCERPT_BYTES);
        let got = h.await.unwrap();
        assert!(got[0].starts_with("POST /hook HTTP/1.1"));
        assert!(got[0].contains("x-clianta-event: contact.created"));
        assert!(got[0].ends_with("{\"a\":1}"));
    }

    #[tokio::test]
    async fn a_redirect_to_another_host_is_not_followed() {
        let (url, h) = server(
            "HTTP/1.1 302 Found\r\nlocation: http://192.0.2.1/x\r\ncontent-length: 0\r\n\
             connection: close\r\n\r\n"
                .into(),
        )
        .await;
        let r = ReqwestHttp::new()
            .unwrap()
            .call(request(&url))
            .await
            .unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(h.await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn refuses_other_schemes_and_reports_transport_failures() {
        let http = ReqwestHttp::new().unwrap();
        assert!(http.call(request("file:///etc/passwd")).await.is_err());
        // Nothing listens on port 9 of localhost.
        assert!(http.call(request("http://127.0.0.1:9/")).await.is_err());
    }
}
