//! The page around every dashboard view and the message at its top. Untrusted text is shown
//! as the terminal shows it (control and bidirectional characters escaped by
//! `train_lib::text::escape`), and maud escapes the markup.

use maud::{html, Markup, DOCTYPE};
pub use train_lib::text::escape;

/// A message at the top of a page.
pub struct Flash {
    error: bool,
    text: String,
}

impl Flash {
    /// Something went wrong (announced to screen readers at once).
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            error: true,
            text: text.into(),
        }
    }

    /// Something happened.
    pub fn info(text: impl Into<String>) -> Self {
        Self {
            error: false,
            text: text.into(),
        }
    }

    fn render(&self) -> Markup {
        html! {
            @if self.error {
                p.flash.error role="alert" { strong { "Error: " } (escape(&self.text)) }
            } @else {
                p.flash role="status" { (escape(&self.text)) }
            }
        }
    }
}

/// The page around a view: `title`, the stylesheet at `css`, `nav` in the header, then the
/// message and the view.
pub fn document(
    title: &str,
    css: &str,
    nav: Markup,
    flash: Option<&Flash>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Personal Health Train" }
                link rel="stylesheet" href=(css);
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header { (nav) }
                main #main {
                    @if let Some(f) = flash { (f.render()) }
                    (body)
                }
            }
        }
    }
}
