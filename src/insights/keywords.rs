//! Korean keywords: tokens with particles and endings stripped, stop words removed.
