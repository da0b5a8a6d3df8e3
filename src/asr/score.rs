//! Scoring transcripts against what was said: character error rate (spaces ignored,
//! since Korean spacing varies between writers) and word error rate, by Levenshtein
//! distance. The host tool's evaluations and the shipped-model test use these, so a
//! CER reads the same wherever it is printed.

/// Character error rate (spaces ignored) and word error rate of each `(reference,
/// hypothesis)` pair, pooled over all pairs.
pub fn error_rates(pairs: &[(String, String)]) -> (f64, f64) {
    let (mut ce, mut cn, mut we, mut wn) = (0usize, 0usize, 0usize, 0usize);
    for (r, h) in pairs {
        let rc: Vec<char> = r.chars().filter(|c| !c.is_whitespace()).collect();
        let hc: Vec<char> = h.chars().filter(|c| !c.is_whitespace()).collect();
        ce += edit_distance(&rc, &hc);
        cn += rc.len();
        let rw: Vec<&str> = r.split_whitespace().collect();
        let hw: Vec<&str> = h.split_whitespace().collect();
        we += edit_distance(&rw, &hw);
        wn += rw.len();
    }
    (ce as f64 / cn.max(1) as f64, we as f64 / wn.max(1) as f64)
}

/// Levenshtein distance.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
