//! Downloads: CSV files streamed chunk by chunk.
use crate::error::PageError;

/// A CSV download streamed chunk by chunk (`header` first): memory stays flat whatever the
/// number of rows. A failure mid-way ends the stream (the file is then visibly cut short).
pub(crate) fn csv_download(
    name: &str,
    header: Vec<u8>,
    chunks: impl futures_util::Stream<Item = Result<actix_web::web::Bytes, PageError>> + 'static,
) -> actix_web::HttpResponse {
    use futures_util::StreamExt;
    let body = futures_util::stream::once(async move { Ok::<_, PageError>(actix_web::web::Bytes::from(header)) })
        .chain(chunks)
        .map(|chunk| {
            chunk.map_err(|error| {
                tracing::error!(error = %format!("{error:#}"), "a CSV export failed part way");
                std::io::Error::other("the export failed")
            })
        });
    let filename = format!("{name}-{}.csv", chrono::Utc::now().format("%Y-%m-%d"));
    actix_web::HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{filename}\"")))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body)
}
