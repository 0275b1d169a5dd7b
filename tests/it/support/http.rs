//! A minimal HTTP/1.1 GET over a plain `TcpStream` (one request per
//! connection), and a minimal reader of the Prometheus text format.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response: status code, `Content-Type`, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// `GET path` on `addr`; `Err` when the connection or the exchange fails.
pub async fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<Reply> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| std::io::Error::other("no reply within 10 s"))??;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {raw:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    assert!(
        header("transfer-encoding").is_none(),
        "this reader expects a Content-Length body: {head}"
    );
    Ok(Reply {
        status,
        content_type: header("content-type").unwrap_or_default(),
        body: body.to_owned(),
    })
}

/// `GET path` on `addr`.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    try_get(addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}

/// One sample: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Reads Prometheus text: `# HELP` / `# TYPE` comments and samples
/// `name{label="value",...} value [timestamp]`. Panics on anything else,
/// and on a sample whose metric family has no `# TYPE` line before it.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut typed: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if words.first() == Some(&"TYPE") {
                assert!(
                    matches!(
                        words.get(2).copied(),
                        Some("counter" | "gauge" | "histogram" | "summary" | "untyped")
                    ),
                    "bad TYPE line: {line}"
                );
                typed.push(words[1].to_owned());
            }
            continue;
        }
        let (series, rest) = match line.find('{') {
            Some(_) => {
                let close = line
                    .rfind('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                line.split_at(close + 1)
            }
            None => line
                .split_once(' ')
                .unwrap_or_else(|| panic!("no value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'), line)),
            None => (series, BTreeMap::new()),
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.iter().any(|t| t == f))
            })
            .unwrap_or(name);
        assert!(
            typed.iter().any(|t| t == family),
            "sample before its # TYPE: {line}"
        );
        let value = rest
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value {v:?} in {line:?}")),
        };
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

fn parse_labels(text: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad labels in {line:?}"));
        let end = after
            .char_indices()
            .scan(false, |escaped, (i, c)| {
                let quote = c == '"' && !*escaped;
                *escaped = c == '\\' && !*escaped;
                Some((i, quote))
            })
            .find_map(|(i, quote)| quote.then_some(i))
            .unwrap_or_else(|| panic!("unclosed label value in {line:?}"));
        labels.insert(key.trim().to_owned(), after[..end].to_owned());
        rest = after[end + 1..].trim_start_matches(',').trim();
    }
    labels
}

/// The value of the sample `name` whose labels include `labels`, if any.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[test]
fn reads_prometheus_text() {
    let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{kind=\"x\",q=\"a\\\"b\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n# TYPE g gauge\ng 1.5e3 1700000000\n";
    let s = parse_prometheus(text);
    assert_eq!(value(&s, "a_total", &[("kind", "x")]), Some(3.0));
    assert_eq!(s[0].labels["q"], "a\\\"b");
    assert_eq!(value(&s, "h_count", &[]), Some(2.0));
    assert_eq!(value(&s, "g", &[]), Some(1500.0));
}

#[test]
#[should_panic(expected = "sample before its # TYPE")]
fn a_sample_without_a_type_is_refused() {
    parse_prometheus("x 1\n");
}
