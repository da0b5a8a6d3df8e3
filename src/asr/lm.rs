//! A back-off n-gram language model over Hangul syllables, for shallow fusion in the
//! beam search ([`super::BeamDecoder`]).
//!
//! Units are syllables, with `|` (the CTC vocabulary's word delimiter) between words:
//! `카드 한도` is `카 드 | 한 도`. A syllable-level model suits a recogniser that
//! writes jamo: every syllable it can spell has a probability, where a word-level model
//! of Korean (which glues endings onto words) would meet an unknown word in most
//! utterances. [`units_of`] turns text into these units; `sangdam-host lm build` counts
//! them and smooths with interpolated modified Kneser-Ney.
//!
//! Two file forms load: the standard ARPA text (what KenLM's `lmplz` or SRILM's
//! `ngram-count` write, given text in the unit form above) and a compact binary
//! (`sangdam-host lm build` and `lm convert` write it; magic `SDLM`, ids in 16 bits
//! when the vocabulary allows, a checksum at the end so a cut copy is caught).
//! Probabilities are log10, as in ARPA.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The word delimiter unit (the same token as the CTC vocabulary's).
pub const BOUNDARY: &str = "|";
pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
pub const UNK_UNIT: &str = "<unk>";
/// Log10 probability of a unit the model has never seen, when it has no `<unk>`.
const OOV_LOG10: f32 = -7.0;
const MAGIC: &[u8; 4] = b"SDLM";
const VERSION: u32 = 1;
/// The longest n-gram this build reads (keys pack into 128 bits).
pub const MAX_ORDER: usize = 8;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LmError {
    #[error("cannot read language model {path}: {source} (set asr.lm in the config to an installed file, or \"\" for none)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("language model {path} is not a valid ARPA or sangdam binary n-gram file: {problem} (rebuild it with `sangdam-host lm build`, convert an ARPA file with `sangdam-host lm convert`, or reinstall models/)")]
    Format { path: PathBuf, problem: String },
}

/// One order's n-grams, sorted by packed key.
#[derive(Debug, Clone, Default)]
struct Table {
    keys: Vec<u128>,
    /// log10 p(w | h) of each n-gram.
    prob: Vec<f32>,
    /// log10 back-off weight of each n-gram as a context (0 when none).
    bow: Vec<f32>,
}

/// A loaded back-off n-gram model.
#[derive(Debug, Clone)]
pub struct NgramLm {
    order: usize,
    words: Vec<String>,
    ids: HashMap<String, u32>,
    tables: Vec<Table>,
    bits: u32,
    unk: Option<u32>,
    bos: u32,
    eos: u32,
}

/// One n-gram as a builder hands it over: units (ids into `words`), log10 probability,
/// log10 back-off.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub ids: Vec<u32>,
    pub prob: f32,
    pub bow: f32,
}

/// The units of a text: its Hangul syllables, `|` between words, `<unk>` for any other
/// character (the recogniser cannot write those).
pub fn units_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(BOUNDARY.to_owned());
        }
        for c in word.chars() {
            if ('\u{AC00}'..='\u{D7A3}').contains(&c) {
                out.push(c.to_string());
            } else {
                out.push(UNK_UNIT.to_owned());
            }
        }
    }
    out
}

fn bits_for(words: usize) -> u32 {
    (usize::BITS - words.max(2).saturating_sub(1).leading_zeros()).max(1)
}

fn pack(ids: &[u32], bits: u32) -> u128 {
    ids.iter().fold(0u128, |k, &i| (k << bits) | i as u128)
}

impl NgramLm {
    /// Builds the model from its vocabulary and n-grams of every order (`by_order[k]`
    /// holds the (k+1)-grams). Every unit id must be below `words.len()`.
    pub fn from_entries(words: Vec<String>, by_order: Vec<Vec<Entry>>) -> Result<Self, String> {
        let order = by_order.len();
        if order == 0 || order > MAX_ORDER {
            return Err(format!(
                "its order is {order}; this build reads orders 1 to {MAX_ORDER}"
            ));
        }
        let bits = bits_for(words.len());
        if bits as usize * order > 128 {
            return Err(format!(
                "{} units at order {order} do not fit this build's 128-bit keys",
                words.len()
            ));
        }
        let mut ids = HashMap::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            if ids.insert(w.clone(), i as u32).is_some() {
                return Err(format!("unit {w:?} is listed twice"));
            }
        }
        let find = |w: &str| {
            ids.get(w)
                .copied()
                .ok_or_else(|| format!("it has no {w} unigram"))
        };
        let bos = find(BOS)?;
        let eos = find(EOS)?;
        let unk = ids.get(UNK_UNIT).copied();
        let mut tables = Vec::with_capacity(order);
        for (k, entries) in by_order.into_iter().enumerate() {
            let mut rows: Vec<(u128, f32, f32)> = Vec::with_capacity(entries.len());
            for e in entries {
                if e.ids.len() != k + 1 {
                    return Err(format!(
                        "a {}-gram is listed among the {}-grams",
                        e.ids.len(),
                        k + 1
                    ));
                }
                if let Some(&bad) = e.ids.iter().find(|&&i| i as usize >= words.len()) {
                    return Err(format!("unit id {bad} is outside the vocabulary"));
                }
                if !e.prob.is_finite() || !e.bow.is_finite() {
                    return Err(format!(
                        "the {}-gram {:?} has a probability or back-off that is not a number",
                        k + 1,
                        e.ids
                            .iter()
                            .map(|&i| words[i as usize].as_str())
                            .collect::<Vec<_>>()
                    ));
                }
                rows.push((pack(&e.ids, bits), e.prob, e.bow));
            }
            rows.sort_unstable_by_key(|r| r.0);
            if rows.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(format!("a {}-gram is listed twice", k + 1));
            }
            tables.push(Table {
                keys: rows.iter().map(|r| r.0).collect(),
                prob: rows.iter().map(|r| r.1).collect(),
                bow: rows.iter().map(|r| r.2).collect(),
            });
        }
        Ok(NgramLm {
            order,
            words,
            ids,
            tables,
            bits,
            unk,
            bos,
            eos,
        })
    }

    /// Reads an ARPA or binary file; the binary is recognised by its magic.
    pub fn load(path: &Path) -> Result<Self, LmError> {
        let bytes = std::fs::read(path).map_err(|source| LmError::Io {
            path: path.to_owned(),
            source,
        })?;
        let fail = |problem: String| LmError::Format {
            path: path.to_owned(),
            problem,
        };
        if bytes.starts_with(MAGIC) {
            Self::from_binary(&bytes).map_err(fail)
        } else {
            let text = std::str::from_utf8(&bytes).map_err(|e| {
                fail(format!(
                    "it is neither the binary form nor UTF-8 text ({e})"
                ))
            })?;
            Self::from_arpa(text).map_err(fail)
        }
    }

    pub fn order(&self) -> usize {
        self.order
    }

    /// Number of units, `<s>` and `</s>` included.
    pub fn units(&self) -> usize {
        self.words.len()
    }

    /// Number of n-grams of each order.
    pub fn counts(&self) -> Vec<usize> {
        self.tables.iter().map(|t| t.keys.len()).collect()
    }

    pub fn bos(&self) -> u32 {
        self.bos
    }

    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// The id of a unit; `None` when the model has never seen it.
    pub fn id(&self, unit: &str) -> Option<u32> {
        self.ids.get(unit).copied()
    }

    pub fn unit(&self, id: u32) -> &str {
        &self.words[id as usize]
    }

    fn find(&self, ids: &[u32]) -> Option<usize> {
        let t = &self.tables[ids.len() - 1];
        t.keys.binary_search(&pack(ids, self.bits)).ok()
    }

    /// log10 p(`unit` | `context`), `context` oldest first (only its last order-1 units
    /// count). `None` for the unit is one the model has never seen: it gets `<unk>`'s
    /// probability, or a fixed floor when the model has no `<unk>`.
    pub fn log10_prob(&self, context: &[u32], unit: Option<u32>) -> f32 {
        let Some(w) = unit.or(self.unk) else {
            return OOV_LOG10;
        };
        let ctx = &context[context.len().saturating_sub(self.order - 1)..];
        // An id outside the vocabulary (a unit the model does not know, as the decoder
        // records it) ends what the model can condition on.
        let ctx = match ctx.iter().rposition(|&i| i as usize >= self.words.len()) {
            Some(p) => &ctx[p + 1..],
            None => ctx,
        };
        let mut backoff = 0.0f32;
        let mut key: Vec<u32> = Vec::with_capacity(self.order);
        for start in 0..=ctx.len() {
            key.clear();
            key.extend_from_slice(&ctx[start..]);
            key.push(w);
            if let Some(i) = self.find(&key) {
                return backoff + self.tables[key.len() - 1].prob[i];
            }
            // hw is unseen: back off by h's weight (0 when h itself is unseen).
            let h = &ctx[start..];
            if !h.is_empty() {
                if let Some(i) = self.find(h) {
                    backoff += self.tables[h.len() - 1].bow[i];
                }
            }
        }
        // Not even a unigram (a unit listed in no table): the floor.
        backoff + OOV_LOG10
    }

    /// log10 probability of a whole unit sequence, `<s>` before and `</s>` after.
    pub fn sentence_log10(&self, units: &[String]) -> f32 {
        let mut ctx = vec![self.bos];
        let mut total = 0.0;
        for u in units {
            let id = self.id(u);
            total += self.log10_prob(&ctx, id);
            ctx.push(id.or(self.unk).unwrap_or(self.eos));
        }
        total + self.log10_prob(&ctx, Some(self.eos))
    }

    fn unpack(&self, key: u128, n: usize) -> Vec<u32> {
        let mask = (1u128 << self.bits) - 1;
        (0..n)
            .rev()
            .map(|i| ((key >> (self.bits as usize * i)) & mask) as u32)
            .collect()
    }

    /// Every n-gram of every order, for writing out.
    pub fn entries(&self) -> Vec<Vec<Entry>> {
        self.tables
            .iter()
            .enumerate()
            .map(|(k, t)| {
                (0..t.keys.len())
                    .map(|i| Entry {
                        ids: self.unpack(t.keys[i], k + 1),
                        prob: t.prob[i],
                        bow: t.bow[i],
                    })
                    .collect()
            })
            .collect()
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The ARPA text of the model.
    pub fn to_arpa(&self) -> String {
        let mut s = String::from("\\data\\\n");
        for (k, t) in self.tables.iter().enumerate() {
            s.push_str(&format!("ngram {}={}\n", k + 1, t.keys.len()));
        }
        for (k, entries) in self.entries().iter().enumerate() {
            s.push_str(&format!("\n\\{}-grams:\n", k + 1));
            for e in entries {
                s.push_str(&format!("{:.6}\t", e.prob));
                let words: Vec<&str> = e
                    .ids
                    .iter()
                    .map(|&i| self.words[i as usize].as_str())
                    .collect();
                s.push_str(&words.join(" "));
                if k + 1 < self.order {
                    s.push_str(&format!("\t{:.6}", e.bow));
                }
                s.push('\n');
            }
        }
        s.push_str("\n\\end\\\n");
        s
    }

    /// Parses ARPA text.
    pub fn from_arpa(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        // The header: `\data\` then `ngram k=count` lines.
        let mut found_data = false;
        for (_, l) in lines.by_ref() {
            if l == "\\data\\" {
                found_data = true;
                break;
            }
        }
        if !found_data {
            return Err("it has no \\data\\ header".into());
        }
        if !text.lines().any(|l| l.trim() == "\\end\\") {
            return Err("it ends before \\end\\ (the file is cut short)".into());
        }
        let mut declared: Vec<usize> = Vec::new();
        let mut section: Option<usize> = None;
        for (n, l) in lines.by_ref() {
            if l.is_empty() {
                continue;
            }
            if let Some(rest) = l.strip_prefix("ngram ") {
                let (k, c) = rest
                    .split_once('=')
                    .ok_or_else(|| format!("line {n}: {l:?} is not `ngram K=COUNT`"))?;
                let k: usize = k
                    .trim()
                    .parse()
                    .map_err(|_| format!("line {n}: bad order in {l:?}"))?;
                let c: usize = c
                    .trim()
                    .parse()
                    .map_err(|_| format!("line {n}: bad count in {l:?}"))?;
                if k != declared.len() + 1 {
                    return Err(format!("line {n}: ngram {k} is out of order"));
                }
                declared.push(c);
                continue;
            }
            section = Some(parse_section_header(l).ok_or_else(|| {
                format!("line {n}: expected `ngram K=COUNT` or `\\1-grams:`, found {l:?}")
            })?);
            break;
        }
        if declared.is_empty() {
            return Err("its \\data\\ header declares no n-gram counts".into());
        }
        let order = declared.len();
        if order > MAX_ORDER {
            return Err(format!(
                "its order is {order}; this build reads orders 1 to {MAX_ORDER}"
            ));
        }
        let mut words: Vec<String> = Vec::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut raw: Vec<Vec<(Vec<u32>, f32, f32)>> = vec![Vec::new(); order];
        let mut ended = false;
        let mut cur = section;
        for (n, l) in lines {
            if l.is_empty() {
                continue;
            }
            if l == "\\end\\" {
                ended = true;
                break;
            }
            if l.starts_with('\\') {
                let k = parse_section_header(l)
                    .ok_or_else(|| format!("line {n}: unknown section {l:?}"))?;
                if k == 0 || k > order {
                    return Err(format!(
                        "line {n}: section {l:?} is beyond the declared order {order}"
                    ));
                }
                cur = Some(k);
                continue;
            }
            let k = cur.ok_or_else(|| format!("line {n}: an n-gram before any section"))?;
            if k == 0 || k > order {
                return Err(format!(
                    "line {n}: section \\{k}-grams: is beyond the declared order {order}"
                ));
            }
            let mut fields = l.split_whitespace();
            let prob: f32 = fields.next().and_then(|f| f.parse().ok()).ok_or_else(|| {
                format!("line {n}: {l:?} does not start with a log10 probability")
            })?;
            let rest: Vec<&str> = fields.collect();
            if rest.len() < k || rest.len() > k + 1 {
                return Err(format!(
                    "line {n}: a {k}-gram needs {k} units and an optional back-off, found {l:?}"
                ));
            }
            let bow: f32 = match rest.get(k) {
                Some(b) => b
                    .parse()
                    .map_err(|_| format!("line {n}: back-off {b:?} is not a number"))?,
                None => 0.0,
            };
            let mut key = Vec::with_capacity(k);
            for w in &rest[..k] {
                let id = match ids.get(*w) {
                    Some(&i) => i,
                    None if k == 1 => {
                        let i = words.len() as u32;
                        words.push(w.to_string());
                        ids.insert(w.to_string(), i);
                        i
                    }
                    None => return Err(format!("line {n}: unit {w:?} has no unigram")),
                };
                key.push(id);
            }
            // ARPA writes -99 for "never predicted" (<s>): keep it finite.
            raw[k - 1].push((key, prob.max(-99.0), bow));
        }
        if !ended {
            return Err("it ends before \\end\\ (the file is cut short)".into());
        }
        for (k, (got, want)) in raw.iter().map(Vec::len).zip(&declared).enumerate() {
            if got != *want {
                return Err(format!(
                    "the header declares {want} {}-grams, the file holds {got} (the file is cut short or edited)",
                    k + 1
                ));
            }
        }
        let by_order = raw
            .into_iter()
            .map(|v| {
                v.into_iter()
                    .map(|(ids, prob, bow)| Entry { ids, prob, bow })
                    .collect()
            })
            .collect();
        Self::from_entries(words, by_order)
    }

    /// The compact binary form.
    pub fn to_binary(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        let wide = self.words.len() > u16::MAX as usize;
        b.push(self.order as u8);
        b.push(if wide { 4 } else { 2 });
        b.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
        for w in &self.words {
            b.extend_from_slice(&(w.len() as u16).to_le_bytes());
            b.extend_from_slice(w.as_bytes());
        }
        for (k, entries) in self.entries().iter().enumerate() {
            b.extend_from_slice(&(entries.len() as u64).to_le_bytes());
            for e in entries {
                for &i in &e.ids {
                    if wide {
                        b.extend_from_slice(&i.to_le_bytes());
                    } else {
                        b.extend_from_slice(&(i as u16).to_le_bytes());
                    }
                }
                b.extend_from_slice(&e.prob.to_le_bytes());
                if k + 1 < self.order {
                    b.extend_from_slice(&e.bow.to_le_bytes());
                }
            }
        }
        let sum = fnv1a(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    pub fn from_binary(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < 8 + 4 + 8 {
            return Err("it is too short to be the binary form (cut short?)".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if fnv1a(body).to_le_bytes() != sum {
            return Err("its checksum does not match (the file is cut short or damaged)".into());
        }
        let mut r = Reader { b: body, at: 4 };
        let version = r.u32()?;
        if version != VERSION {
            return Err(format!(
                "it is binary version {version}; this build reads version {VERSION}"
            ));
        }
        let order = r.u8()? as usize;
        let width = r.u8()?;
        if width != 2 && width != 4 {
            return Err(format!("its id width {width} is neither 2 nor 4"));
        }
        let n = r.u32()? as usize;
        let mut words = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let len = r.u16()? as usize;
            let s =
                std::str::from_utf8(r.take(len)?).map_err(|_| "a unit is not UTF-8".to_string())?;
            words.push(s.to_owned());
        }
        let mut by_order = Vec::with_capacity(order);
        for k in 0..order {
            let count = r.u64()? as usize;
            let row = (k + 1) * width as usize + 4 + if k + 1 < order { 4 } else { 0 };
            if count
                .checked_mul(row)
                .is_none_or(|need| need > r.b.len() - r.at)
            {
                return Err(format!(
                    "its {}-gram table runs past the end of the file",
                    k + 1
                ));
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let mut ids = Vec::with_capacity(k + 1);
                for _ in 0..=k {
                    ids.push(if width == 4 {
                        r.u32()?
                    } else {
                        r.u16()? as u32
                    });
                }
                let prob = r.f32()?;
                let bow = if k + 1 < order { r.f32()? } else { 0.0 };
                entries.push(Entry { ids, prob, bow });
            }
            by_order.push(entries);
        }
        if r.at != r.b.len() {
            return Err("it has bytes after its last table".into());
        }
        Self::from_entries(words, by_order)
    }
}

fn parse_section_header(l: &str) -> Option<usize> {
    l.strip_prefix('\\')?.strip_suffix("-grams:")?.parse().ok()
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| "it ends in the middle of a table (cut short?)".to_string())?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-written bigram model: p(가|<s>) = 10^-0.3 explicit, the rest by back-off.
    pub(crate) const ARPA: &str = "\\data\\\nngram 1=5\nngram 2=3\n\n\\1-grams:\n-99\t<s>\t-0.3\n-0.60206\t</s>\n-0.3\t가\t-0.1\n-0.90309\t나\t-0.2\n-1.5\t<unk>\n\n\\2-grams:\n-0.3\t<s> 가\n-0.1\t가 나\n-0.2\t나 </s>\n\n\\end\\\n";

    #[test]
    fn arpa_probabilities_and_back_off() {
        let lm = NgramLm::from_arpa(ARPA).unwrap();
        assert_eq!(lm.order(), 2);
        assert_eq!(lm.counts(), vec![5, 3]);
        let (bos, ga, na) = (lm.bos(), lm.id("가"), lm.id("나"));
        // Seen bigram.
        assert!((lm.log10_prob(&[bos], ga) - -0.3).abs() < 1e-6);
        assert!((lm.log10_prob(&[ga.unwrap()], na) - -0.1).abs() < 1e-6);
        // Unseen bigram 나 가: bow(나) + p(가).
        assert!((lm.log10_prob(&[na.unwrap()], ga) - (-0.2 - 0.3)).abs() < 1e-6);
        // Unknown unit: <unk>'s unigram after bow(<s>).
        assert!((lm.log10_prob(&[bos], lm.id("다")) - (-0.3 - 1.5)).abs() < 1e-6);
        let s = lm.sentence_log10(&["가".into(), "나".into()]);
        assert!((s - (-0.3 - 0.1 - 0.2)).abs() < 1e-5, "{s}");
    }

    #[test]
    fn binary_and_arpa_round_trip() {
        let lm = NgramLm::from_arpa(ARPA).unwrap();
        let bin = lm.to_binary();
        let back = NgramLm::from_binary(&bin).unwrap();
        assert_eq!(back.entries(), lm.entries());
        assert_eq!(back.words(), lm.words());
        let again = NgramLm::from_arpa(&lm.to_arpa()).unwrap();
        assert_eq!(again.entries(), lm.entries());
    }

    #[test]
    fn cut_or_damaged_files_are_refused_with_the_reason() {
        let lm = NgramLm::from_arpa(ARPA).unwrap();
        let bin = lm.to_binary();
        for cut in [bin.len() - 1, bin.len() / 2, 10] {
            let e = NgramLm::from_binary(&bin[..cut]).unwrap_err();
            assert!(
                e.contains("cut short") || e.contains("checksum"),
                "{cut}: {e}"
            );
        }
        let mut flipped = bin.clone();
        flipped[20] ^= 1;
        assert!(NgramLm::from_binary(&flipped)
            .unwrap_err()
            .contains("checksum"));
        let half = &ARPA[..ARPA.len() / 2];
        let e = NgramLm::from_arpa(half).unwrap_err();
        assert!(e.contains("cut short"), "{e}");
        let e = NgramLm::from_arpa("hello").unwrap_err();
        assert!(e.contains("\\data\\"), "{e}");
        let wrong = ARPA.replace("-0.1\t가 나", "x\t가 나");
        let e = NgramLm::from_arpa(&wrong).unwrap_err();
        assert!(e.contains("line") && e.contains("log10"), "{e}");
        let unknown = ARPA.replace("-0.1\t가 나", "-0.1\t가 라");
        assert!(NgramLm::from_arpa(&unknown)
            .unwrap_err()
            .contains("no unigram"));
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("sangdam-lm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("lm.bin");
        let bin = NgramLm::from_arpa(ARPA).unwrap().to_binary();
        std::fs::write(&p, &bin[..bin.len() - 3]).unwrap();
        let e = NgramLm::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("lm.bin") && e.contains("sangdam-host lm build"),
            "{e}"
        );
        std::fs::write(&p, ARPA).unwrap();
        assert_eq!(NgramLm::load(&p).unwrap().order(), 2);
        let e = NgramLm::load(&dir.join("missing.arpa"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.arpa"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn units_are_syllables_with_word_boundaries() {
        assert_eq!(
            units_of(" 카드  한도 A"),
            vec!["카", "드", "|", "한", "도", "|", "<unk>"]
        );
    }
}
