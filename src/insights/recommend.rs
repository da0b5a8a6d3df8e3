//! The product catalogue and recommendations.
