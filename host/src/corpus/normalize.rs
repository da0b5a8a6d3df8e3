//! Transcript normalisation by the AI Hub / KsponSpeech transcription conventions.
//!
//! The transcribers mark more than the words: `(철자)/(발음)` dual spellings (what is
//! written / what was said), noise tags (`b/` breath, `n/` noise, `o/` other speaker,
//! `l/` laughter, `u/` unintelligible), `+` after a repeated or stuttered word, `*` on an
//! unclear word, and `/` after a filler (`음/`). The model is trained on the words alone.

/// Which half of a `(spelling)/(pronunciation)` pair to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Spelling {
    /// The written form, `(철자)`: what a reader expects (the default).
    #[default]
    Orthographic,
    /// The spoken form, `(발음)`: closer to the audio (numbers as said, e.g. 삼십).
    Phonetic,
}

/// Cleans one transcript line; the result has single spaces and no markers.
pub fn normalize(line: &str, spelling: Spelling) -> String {
    let chosen = resolve_dual(line, spelling);
    let mut out = String::with_capacity(chosen.len());
    for word in chosen.split_whitespace() {
        let w = strip_noise_tags(word);
        let w: String = w
            .chars()
            .filter(|c| !matches!(c, '+' | '*' | '/' | '(' | ')'))
            .collect();
        if w.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&w);
    }
    out
}

/// Replaces every `(a)/(b)` with `a` or `b`.
fn resolve_dual(line: &str, spelling: Spelling) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('(') {
        let (before, from_open) = rest.split_at(open);
        out.push_str(before);
        match parse_pair(from_open) {
            Some((a, b, used)) => {
                out.push_str(match spelling {
                    Spelling::Orthographic => a,
                    Spelling::Phonetic => b,
                });
                rest = &from_open[used..];
            }
            None => {
                // A lone parenthesis: keep its content, drop the bracket.
                rest = &from_open[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses `(a)/(b)` at the start of `s`: returns a, b and the bytes used.
fn parse_pair(s: &str) -> Option<(&str, &str, usize)> {
    let close1 = s.find(')')?;
    let a = &s[1..close1];
    let after = &s[close1 + 1..];
    let after = after.strip_prefix('/')?;
    let after = after.strip_prefix('(')?;
    let close2 = after.find(')')?;
    let b = &after[..close2];
    let used = close1 + 1 + 1 + 1 + close2 + 1;
    Some((a, b, used))
}

/// Removes the one-letter noise tags `b/ n/ o/ l/ u/` wherever they stand in a word.
fn strip_noise_tags(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let is_tag = matches!(chars[i], 'b' | 'n' | 'o' | 'l' | 'u')
            && chars.get(i + 1) == Some(&'/')
            && (i == 0 || !chars[i - 1].is_ascii_alphabetic());
        if is_tag {
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kspon_markers() {
        let o = Spelling::Orthographic;
        assert_eq!(
            normalize("b/ 그래서 (3시)/(세 시)에 가요 n/", o),
            "그래서 3시에 가요"
        );
        assert_eq!(
            normalize("b/ 그래서 (3시)/(세 시)에 가요 n/", Spelling::Phonetic),
            "그래서 세 시에 가요"
        );
        assert_eq!(
            normalize("음/ 카드 한도를 올+ 올리고 싶어요*", o),
            "음 카드 한도를 올 올리고 싶어요"
        );
        assert_eq!(
            normalize("l/ o/ u/ 네 네 알겠습니다 b/", o),
            "네 네 알겠습니다"
        );
        assert_eq!(normalize("  여러   공백  ", o), "여러 공백");
        // A lone bracket is not a dual spelling: its content stays.
        assert_eq!(normalize("(그냥) 괄호", o), "그냥 괄호");
        // Latin words are not mistaken for noise tags.
        assert_eq!(normalize("blu/ray 5G", o), "bluray 5G");
        assert_eq!(normalize("b/ n/", o), "");
    }
}
