//! Redaction of the value from responses: an upstream that echoes the request's headers (or a
//! path on it that does) would otherwise hand the agent the real credential. Every occurrence of
//! a value in the response headers, body and trailers reaches the agent as its placeholder.
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use memchr::memmem;

use crate::{
    report::{Outcome, Report, Reporter},
    route::Site,
};

/// Replaces each value of the site's routes by its placeholder in a stream of chunks. Each
/// route is a stage holding back the last `len(value) - 1` bytes it has seen, which could be the
/// start of a value split across chunks.
pub(crate) struct Redactor {
    site: Arc<Site>,
    carries: Vec<Vec<u8>>,
    counts: Vec<u64>,
}

impl Redactor {
    pub(crate) fn new(site: Arc<Site>) -> Self {
        let stages = site.routes.len();
        Self {
            site,
            carries: vec![Vec::new(); stages],
            counts: vec![0; stages],
        }
    }

    /// The redacted bytes that are final; the rest is held back.
    pub(crate) fn push(&mut self, chunk: Bytes) -> Bytes {
        self.run(chunk, false)
    }

    /// Everything held back, redacted: at the end of the body.
    pub(crate) fn finish(&mut self) -> Bytes {
        self.run(Bytes::new(), true)
    }

    fn run(&mut self, mut data: Bytes, flush: bool) -> Bytes {
        for (i, route) in self.site.routes.iter().enumerate() {
            let (out, count) = stage(
                &mut self.carries[i],
                data,
                route.value.as_bytes(),
                route.placeholder.as_bytes(),
                flush,
            );
            self.counts[i] += count;
            data = out;
        }
        data
    }

    /// Redacts the values from header values, counting them with the body's.
    pub(crate) fn headers(&mut self, headers: &mut HeaderMap) {
        for value in headers.values_mut() {
            for (i, route) in self.site.routes.iter().enumerate() {
                let needle = route.value.as_bytes();
                let count = memmem::find_iter(value.as_bytes(), needle).count();
                if count == 0 {
                    continue;
                }
                let replaced = replace(value.as_bytes(), needle, route.placeholder.as_bytes());
                // The placeholder is printable ASCII, so the result is a valid header value.
                if let Ok(redacted) = HeaderValue::from_bytes(&replaced) {
                    *value = redacted;
                    self.counts[i] += count as u64;
                }
            }
        }
    }

    fn held_back(&self) -> usize {
        self.carries.iter().map(Vec::len).sum()
    }

    /// One report per route whose value was found.
    fn reports(&self) -> impl Iterator<Item = Report> + '_ {
        self.site
            .routes
            .iter()
            .zip(&self.counts)
            .filter(|(_, count)| **count > 0)
            .map(|(route, count)| Report {
                host: self.site.host.clone(),
                credential: Some(route.credential.clone()),
                outcome: Outcome::ResponseRedacted { count: *count },
            })
    }
}

/// One stage: the carry and `input` with every `needle` replaced, minus the new carry (unless
/// flushing), and how many were replaced.
fn stage(
    carry: &mut Vec<u8>,
    input: Bytes,
    needle: &[u8],
    replacement: &[u8],
    flush: bool,
) -> (Bytes, u64) {
    let joined = if carry.is_empty() {
        input
    } else {
        carry.extend_from_slice(&input);
        Bytes::from(std::mem::take(carry))
    };
    let mut out: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for found in memmem::find_iter(&joined, needle) {
        out.extend_from_slice(&joined[start..found]);
        out.extend_from_slice(replacement);
        start = found + needle.len();
        count += 1;
    }
    // A value starting after `start` and not yet complete starts within the last len-1 bytes.
    let keep = if flush {
        0
    } else {
        (needle.len() - 1).min(joined.len() - start)
    };
    let end = joined.len() - keep;
    carry.extend_from_slice(&joined[end..]);
    if count == 0 {
        // Nothing replaced: pass the chunk on without copying it.
        return (joined.slice(..end), 0);
    }
    out.extend_from_slice(&joined[start..end]);
    (Bytes::from(out), count)
}

pub(crate) fn replace(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut start = 0;
    for found in memmem::find_iter(haystack, needle) {
        out.extend_from_slice(&haystack[start..found]);
        out.extend_from_slice(replacement);
        start = found + needle.len();
    }
    out.extend_from_slice(&haystack[start..]);
    out
}

/// A response body redacted as it streams; reports what it redacted when it is dropped (ended
/// or aborted).
pub(crate) struct RedactedBody<B> {
    inner: B,
    redactor: Redactor,
    trailers: Option<HeaderMap>,
    ended: bool,
    reporter: Reporter,
}

impl<B> RedactedBody<B> {
    /// `redactor` has already seen the response headers.
    pub(crate) fn new(inner: B, redactor: Redactor, reporter: Reporter) -> Self {
        Self {
            inner,
            redactor,
            trailers: None,
            ended: false,
            reporter,
        }
    }

    /// Ends the body: what was held back, and then the trailers if any.
    fn end(&mut self, trailers: Option<HeaderMap>) -> Option<Frame<Bytes>> {
        self.ended = true;
        self.trailers = trailers;
        let rest = self.redactor.finish();
        if !rest.is_empty() {
            return Some(Frame::data(rest));
        }
        self.trailers.take().map(Frame::trailers)
    }
}

impl<B> Body for RedactedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(this.trailers.take().map(Frame::trailers).map(Ok));
            }
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => return Poll::Ready(this.end(None).map(Ok)),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => frame,
            };
            match frame.into_data() {
                Ok(data) => {
                    let out = this.redactor.push(data);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Err(frame) => {
                    if let Ok(mut trailers) = frame.into_trailers() {
                        this.redactor.headers(&mut trailers);
                        return Poll::Ready(this.end(Some(trailers)).map(Ok));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.trailers.is_none()
    }

    /// Exact only when placeholders are as long as their values; otherwise the length is
    /// unknown and the response goes out chunked.
    fn size_hint(&self) -> SizeHint {
        if !self.redactor.site.same_length() {
            return SizeHint::default();
        }
        let inner = self.inner.size_hint();
        let held = self.redactor.held_back() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + held);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

impl<B> Drop for RedactedBody<B> {
    fn drop(&mut self) {
        for report in self.redactor.reports() {
            self.reporter.send_detached(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    use super::*;
    use crate::{route::Route, secret::Secret};

    const VALUE: &str = "sk-live-0123456789abcdef";

    fn site(placeholders: &[(&str, &str)]) -> Arc<Site> {
        Arc::new(Site {
            host: "api.provider.test".into(),
            routes: placeholders
                .iter()
                .map(|(placeholder, value)| Route {
                    host: "api.provider.test".into(),
                    credential: "provider".into(),
                    header: http::header::AUTHORIZATION,
                    placeholder: placeholder.to_string(),
                    value: Secret::from(value.to_string()),
                })
                .collect(),
        })
    }

    fn redact_chunks(site: &Arc<Site>, chunks: &[&[u8]]) -> (Vec<u8>, u64) {
        let mut redactor = Redactor::new(site.clone());
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&redactor.push(Bytes::copy_from_slice(chunk)));
        }
        out.extend_from_slice(&redactor.finish());
        (out, redactor.counts.iter().sum())
    }

    /// Every way of splitting a body in two or three gives what replacing in the whole gives.
    #[test]
    fn every_split_point() {
        for placeholder in [
            "P",
            "warden-placeholder-xxxxx",
            "warden-a-much-longer-placeholder-0000",
        ] {
            let site = site(&[(placeholder, VALUE)]);
            let body = format!("a{VALUE}{VALUE}b sk-live-0 {VALUE}").into_bytes();
            let expected = format!("a{placeholder}{placeholder}b sk-live-0 {placeholder}");
            for i in 0..=body.len() {
                for j in i..=body.len() {
                    let (out, count) = redact_chunks(&site, &[&body[..i], &body[i..j], &body[j..]]);
                    assert_eq!(String::from_utf8(out).unwrap(), expected, "split {i} {j}");
                    assert_eq!(count, 3);
                }
            }
        }
    }

    #[test]
    fn byte_by_byte_and_partial_values_at_the_end() {
        let site = site(&[("PLACEHOLDER", VALUE)]);
        let body = format!("{VALUE}x{}", &VALUE[..10]);
        let chunks: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        let (out, count) = redact_chunks(&site, &chunks);
        assert_eq!(out, format!("PLACEHOLDERx{}", &VALUE[..10]).into_bytes());
        assert_eq!(count, 1);
    }

    #[test]
    fn several_routes() {
        let site = site(&[("P1", "value-one"), ("P2", "value-two")]);
        let (out, count) = redact_chunks(&site, &[b"value-o", b"ne value-t", b"wo"]);
        assert_eq!(out, b"P1 P2");
        assert_eq!(count, 2);
    }

    #[test]
    fn headers() {
        let site = site(&[("PLACEHOLDER", VALUE)]);
        let mut headers = HeaderMap::new();
        headers.insert("x-echo", format!("Bearer {VALUE}").parse().unwrap());
        headers.insert("x-other", "plain".parse().unwrap());
        let mut redactor = Redactor::new(site);
        redactor.headers(&mut headers);
        assert_eq!(headers["x-echo"], "Bearer PLACEHOLDER");
        assert_eq!(headers["x-other"], "plain");
        assert_eq!(redactor.counts, [1]);
    }

    /// A body of ready chunks.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
        }
    }

    #[tokio::test]
    async fn body_reports_when_dropped() {
        let site = site(&[("PLACEHOLDER", VALUE)]);
        let chunks = [&VALUE[..5], &VALUE[5..], " tail"].map(Bytes::from);
        let (tx, mut rx) = mpsc::channel(4);
        let body = RedactedBody::new(
            Chunks(chunks.into()),
            Redactor::new(site),
            Reporter::new(tx),
        );
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected, "PLACEHOLDER tail");
        let report = rx.recv().await.unwrap();
        assert_eq!(report.outcome, Outcome::ResponseRedacted { count: 1 });
    }
}
