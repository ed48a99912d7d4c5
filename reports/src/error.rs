//! Why a plot could not be drawn. Rendering a page never fails as a whole: a plot that
//! errors is replaced by a note saying why, so the rest of the report still shows.

use plotters::drawing::DrawingAreaErrorKind;

/// A plot failed to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// plotters refused to draw (e.g. a degenerate coordinate range).
    #[error("plot failed: {0}")]
    Plot(String),
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for RenderError {
    fn from(e: DrawingAreaErrorKind<E>) -> RenderError {
        RenderError::Plot(e.to_string())
    }
}
