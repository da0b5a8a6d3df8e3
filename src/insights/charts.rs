//! SVG charts with Korean text.
