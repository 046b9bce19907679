//! The console's file uploads (`multipart/form-data`): a form with a file
//! cannot carry its CSRF token anywhere but in its body, so the guard
//! reads an upload — only once the caller is authenticated, and bounded
//! while it reads — parses it once and hands the parsed fields on to the
//! handler as a request extension. Two uploads at most are held at once
//! in this process (a third is told to try again in a moment), each at
//! most [`UPLOAD_LIMIT`] bytes, with only the fields a console upload
//! form has.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use mamori_core::CoreError;
use std::sync::Arc;
use tokio::sync::{Semaphore, SemaphorePermit};

/// The largest upload (a CSV of about 50,000 people).
pub const UPLOAD_LIMIT: usize = 16 * 1024 * 1024;
/// The largest text field of an upload form.
const FIELD_LIMIT: u64 = 1024;
/// The fields a console upload form may have; any other is refused.
const FIELDS: [&str; 4] = ["csrf", "step", "digest", "file"];

/// The routes that take an upload; the guard refuses one anywhere else
/// (415) before reading it.
pub const ROUTES: [&str; 1] = ["/console/people/import/file"];

/// Uploads held at once in this process.
static HELD: Semaphore = Semaphore::const_new(2);

/// An upload's fields, parsed by the guard; holds one of the two places
/// until the request is done.
#[derive(Debug)]
pub struct Upload {
    /// The `csrf` field.
    pub csrf: String,
    /// The `step` field (the button pressed).
    pub step: String,
    /// The `digest` field.
    pub digest: String,
    /// The file's name as the browser gave it.
    pub file_name: String,
    /// The file's bytes.
    pub file: Bytes,
    _held: SemaphorePermit<'static>,
}

/// The parsed upload of the request, for its handler.
#[derive(Debug, Clone)]
pub struct Uploaded(pub Arc<Upload>);

/// The multipart boundary, when the request is an upload.
pub(crate) fn boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    if !ct
        .get(..19)
        .is_some_and(|p| p.eq_ignore_ascii_case("multipart/form-data"))
    {
        return None;
    }
    multer::parse_boundary(ct).ok()
}

/// An upload over [`UPLOAD_LIMIT`] (or a field over its own limit).
fn too_large() -> CoreError {
    CoreError::BadRequest(format!(
        "an upload holds at most {} MiB",
        UPLOAD_LIMIT / (1024 * 1024)
    ))
}

fn refused(e: &multer::Error) -> CoreError {
    match e {
        multer::Error::UnknownField { .. } => {
            CoreError::BadRequest("the upload has a field the form does not have".into())
        }
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            too_large()
        }
        _ => {
            CoreError::BadRequest("the upload is not a well-formed multipart/form-data body".into())
        }
    }
}

/// Reads and parses the upload of `req` (bounded while reading), and
/// leaves it in the request's extensions; the body is consumed.
pub(crate) async fn take(req: &mut Request, boundary: String) -> Result<Arc<Upload>, ApiError> {
    let held = HELD
        .try_acquire()
        .map_err(|_| CoreError::TooManyRequests(2))?;
    let body = std::mem::take(req.body_mut());
    let bytes = axum::body::to_bytes(body, UPLOAD_LIMIT)
        .await
        .map_err(|_| too_large())?;
    let limits = multer::SizeLimit::new()
        .whole_stream(UPLOAD_LIMIT as u64)
        .per_field(FIELD_LIMIT)
        .for_field("file", UPLOAD_LIMIT as u64);
    let constraints = multer::Constraints::new()
        .allowed_fields(FIELDS.to_vec())
        .size_limit(limits);
    let stream =
        futures::stream::once(std::future::ready(Ok::<_, std::convert::Infallible>(bytes)));
    let mut parts = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut up = Upload {
        csrf: String::new(),
        step: String::new(),
        digest: String::new(),
        file_name: String::new(),
        file: Bytes::new(),
        _held: held,
    };
    while let Some(field) = parts.next_field().await.map_err(|e| refused(&e))? {
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            up.file_name = field.file_name().unwrap_or("").to_owned();
            up.file = field.bytes().await.map_err(|e| refused(&e))?;
            continue;
        }
        let text = field.text().await.map_err(|e| refused(&e))?;
        match name.as_str() {
            "csrf" => up.csrf = text,
            "step" => up.step = text,
            _ => up.digest = text,
        }
    }
    let up = Arc::new(up);
    req.extensions_mut().insert(Uploaded(Arc::clone(&up)));
    Ok(up)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(body: &str) -> Request {
        Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
            .body(axum::body::Body::from(body.replace('\n', "\r\n")))
            .unwrap()
    }

    #[tokio::test]
    async fn an_upload_is_parsed_once_and_bounded() {
        let body = "--XyZ\nContent-Disposition: form-data; name=\"csrf\"\n\ntok\n--XyZ\n\
            Content-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\n\
            Content-Type: text/csv\n\nname,email\nA,a@example.com\n--XyZ--\n";
        let mut req = request(body);
        let b = boundary(req.headers()).unwrap();
        let up = take(&mut req, b).await.unwrap();
        assert_eq!(up.csrf, "tok");
        assert_eq!(up.file_name, "people.csv");
        assert_eq!(&up.file[..], b"name,email\r\nA,a@example.com");
        assert!(req.extensions().get::<Uploaded>().is_some());
        // While it is held, one more fits; a third is told to wait.
        let mut second = request(body);
        let _two = take(&mut second, "XyZ".into()).await.unwrap();
        let mut third = request(body);
        let e = take(&mut third, "XyZ".into()).await.unwrap_err();
        assert!(matches!(e.0, CoreError::TooManyRequests(_)));
        drop((up, req, second, _two));
        // A field the form does not have, or a text field over its limit.
        let odd = "--XyZ\nContent-Disposition: form-data; name=\"other\"\n\nx\n--XyZ--\n";
        let e = take(&mut request(odd), "XyZ".into()).await.unwrap_err();
        assert!(matches!(e.0, CoreError::BadRequest(ref m) if m.contains("field")));
        let long = format!(
            "--XyZ\nContent-Disposition: form-data; name=\"csrf\"\n\n{}\n--XyZ--\n",
            "x".repeat(2000)
        );
        let e = take(&mut request(&long), "XyZ".into()).await.unwrap_err();
        assert!(matches!(e.0, CoreError::BadRequest(ref m) if m.contains("MiB")));
        assert!(boundary(&HeaderMap::new()).is_none());
    }
}
