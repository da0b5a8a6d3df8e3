//! Drivers of call sentiment: TF-IDF, a decision tree and a gradient-boosted ensemble.
