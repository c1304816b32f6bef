//! The SMS Spam Collection v.1: one message per line, `label<TAB>text`, label `ham` or `spam`,
//! UTF-8, no header (file `SMSSpamCollection`).
//!
//! Besides the loader: a tokenizer (lowercase, split on anything not alphanumeric), a
//! vocabulary of the most frequent words that encodes a message as a fixed-length sequence of
//! word ids (0 = padding or unknown word), and a seeded train/test split.
//!
//! ```no_run
//! use ember_trainer::data::sms;
//! let all = sms::load(std::path::Path::new("sms_spam"))?;
//! let (train, test) = all.split(0.2, 1);
//! let vocab = sms::Vocab::build(train.texts.iter().map(String::as_str), 2000);
//! let ids = vocab.encode(&test.texts[0], 40);
//! assert_eq!(ids.len(), 40);
//! # Ok::<(), sms::SmsError>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Name of the data file in the dataset's folder.
pub const FILE: &str = "SMSSpamCollection";
/// Label of a legitimate message.
pub const HAM: u8 = 0;
/// Label of a spam message.
pub const SPAM: u8 = 1;

/// What can be wrong with the SMS Spam Collection file.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not valid UTF-8.
    #[error("{path}:{line}: not valid UTF-8")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
    },
    /// A line has no tab between label and text.
    #[error("{path}:{line}: no tab; expected `ham<TAB>text` or `spam<TAB>text`")]
    NoTab {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
    },
    /// A label is neither `ham` nor `spam`.
    #[error("{path}:{line}: unknown label {label:?}; expected `ham` or `spam`")]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// The label found.
        label: String,
    },
    /// The file holds no message.
    #[error("{path}: no message")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Messages and their labels ([`HAM`] or [`SPAM`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sms {
    /// The messages, as in the file.
    pub texts: Vec<String>,
    /// One label per message.
    pub labels: Vec<u8>,
}

impl Sms {
    /// Number of messages.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no message.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Splits into `(train, test)`: a shuffle seeded by `seed` (the runtime's xorshift32),
    /// then the first `round(len * test_fraction)` messages (fraction clamped to 0..=1) are
    /// the test set. Both keep the shuffled order.
    pub fn split(&self, test_fraction: f64, seed: u32) -> (Sms, Sms) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = ember_runtime::Xorshift32::new(seed);
        for i in (1..order.len()).rev() {
            let j = ((u64::from(rng.next()) * (i as u64 + 1)) >> 32) as usize;
            order.swap(i, j);
        }
        let fraction = if test_fraction.is_nan() {
            0.0
        } else {
            test_fraction.clamp(0.0, 1.0)
        };
        let n_test = (self.len() as f64 * fraction).round() as usize;
        let pick = |idx: &[usize]| Sms {
            texts: idx.iter().map(|&i| self.texts[i].clone()).collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
        };
        (pick(&order[n_test..]), pick(&order[..n_test]))
    }
}

/// Loads the collection from `path`: the file itself, or a folder holding [`FILE`]. Empty
/// lines are skipped; a trailing `\r` is removed.
pub fn load(path: &Path) -> Result<Sms, SmsError> {
    let path = if path.is_dir() {
        path.join(FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&path).map_err(|source| SmsError::Io {
        path: path.clone(),
        source,
    })?;
    let mut sms = Sms::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(raw).map_err(|_| SmsError::NotUtf8 {
            path: path.clone(),
            line,
        })?;
        let Some((label, message)) = text.split_once('\t') else {
            return Err(SmsError::NoTab { path, line });
        };
        let label = match label {
            "ham" => HAM,
            "spam" => SPAM,
            _ => {
                return Err(SmsError::BadLabel {
                    path,
                    line,
                    label: label.to_string(),
                })
            }
        };
        sms.texts.push(message.to_string());
        sms.labels.push(label);
    }
    if sms.is_empty() {
        return Err(SmsError::Empty { path });
    }
    Ok(sms)
}

/// The words of `text`: lowercased runs of alphanumeric characters.
pub fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The most frequent words of a corpus, numbered from 1 by falling frequency (ties in
/// alphabetical order); id 0 is padding and every unknown word.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    words: Vec<String>,
    ids: HashMap<String, u16>,
}

impl Vocab {
    /// Counts the words of `texts` and keeps the `max_words` most frequent (at most 65,535).
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a str>, max_words: usize) -> Vocab {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for text in texts {
            for word in tokenize(text) {
                *counts.entry(word).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(max_words.min(usize::from(u16::MAX)));
        let words: Vec<String> = ranked.into_iter().map(|(w, _)| w).collect();
        let ids = words
            .iter()
            .zip(1..=u16::MAX)
            .map(|(w, id)| (w.clone(), id))
            .collect();
        Vocab { words, ids }
    }

    /// Number of words (ids 1..=len).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when the vocabulary has no word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The id of `word` (already lowercased), 0 if unknown.
    pub fn id(&self, word: &str) -> u16 {
        self.ids.get(word).copied().unwrap_or(0)
    }

    /// The word of `id`, `None` for 0 and ids beyond the vocabulary.
    pub fn word(&self, id: u16) -> Option<&str> {
        let i = usize::from(id).checked_sub(1)?;
        self.words.get(i).map(String::as_str)
    }

    /// The ids of the first `max_len` words of `text`, padded with 0 to `max_len`.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u16> {
        let mut ids: Vec<u16> = tokenize(text).take(max_len).map(|w| self.id(&w)).collect();
        ids.resize(max_len, 0);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_written_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        std::fs::write(
            &p,
            "ham\tGo until jurong point\nspam\tFREE entry\twin £100!\r\n\nham\t\n",
        )
        .unwrap();
        let sms = load(dir.path()).unwrap();
        assert_eq!(sms.labels, vec![HAM, SPAM, HAM]);
        assert_eq!(
            sms.texts,
            vec!["Go until jurong point", "FREE entry\twin £100!", ""]
        );
        assert_eq!(load(&p).unwrap(), sms);
    }

    #[test]
    fn corrupt_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sms.tsv");
        std::fs::write(&p, "ham\tok\nspam no tab here\n").unwrap();
        let e = load(&p).unwrap_err();
        assert!(matches!(e, SmsError::NoTab { line: 2, .. }), "{e}");
        assert!(e.to_string().contains(&format!("{}:2", p.display())), "{e}");

        std::fs::write(&p, "ham\tok\n\nHam\tcapital\n").unwrap();
        let e = load(&p).unwrap_err();
        assert!(
            matches!(&e, SmsError::BadLabel { line: 3, label, .. } if label == "Ham"),
            "{e}"
        );

        std::fs::write(&p, b"ham\tok\nspam\t\xff\xfe\n").unwrap();
        assert!(matches!(load(&p), Err(SmsError::NotUtf8 { line: 2, .. })));
        std::fs::write(&p, "\n\n").unwrap();
        assert!(matches!(load(&p), Err(SmsError::Empty { .. })));
        assert!(matches!(
            load(&dir.path().join("nope")),
            Err(SmsError::Io { .. })
        ));
        let e = load(dir.path()).unwrap_err();
        assert!(e.to_string().contains(FILE), "{e}");
    }

    #[test]
    fn vocabulary_and_encoding() {
        let words: Vec<String> = tokenize("Hi!! U won 2 FREE tickets, hi-fi Ünïcode").collect();
        assert_eq!(
            words,
            [
                "hi",
                "u",
                "won",
                "2",
                "free",
                "tickets",
                "hi",
                "fi",
                "ünïcode"
            ]
        );
        let texts = ["free free free win", "win a prize, free", "call me", "a b"];
        let v = Vocab::build(texts, 3);
        // free x4, win x2, a x2 (a < win), then the rest once.
        assert_eq!(
            (v.len(), v.word(1), v.word(2), v.word(3)),
            (3, Some("free"), Some("a"), Some("win"))
        );
        assert_eq!((v.word(0), v.word(4)), (None, None));
        assert_eq!(v.encode("FREE prize: WIN!", 6), vec![1, 0, 3, 0, 0, 0]);
        assert_eq!(v.encode("free a win free", 2), vec![1, 2]);
        assert_eq!(v.encode("", 0), Vec::<u16>::new());
        assert_eq!(Vocab::build(texts, 100).len(), 7);
    }

    #[test]
    fn split_is_seeded_and_complete() {
        let sms = Sms {
            texts: (0..10).map(|i| i.to_string()).collect(),
            labels: (0..10).map(|i| (i % 2) as u8).collect(),
        };
        let (train, test) = sms.split(0.3, 7);
        assert_eq!((train.len(), test.len()), (7, 3));
        assert_eq!(sms.split(0.3, 7), (train.clone(), test.clone()));
        assert_ne!(sms.split(0.3, 8).1, test);
        let mut all: Vec<String> = train.texts.iter().chain(&test.texts).cloned().collect();
        all.sort_by_key(|t| t.parse::<u32>().unwrap());
        assert_eq!(all, sms.texts);
        for s in [&train, &test] {
            assert!(s
                .texts
                .iter()
                .zip(&s.labels)
                .all(|(t, &l)| t.parse::<u8>().unwrap() % 2 == l));
        }
        assert_eq!(sms.split(f64::NAN, 1).1.len(), 0);
        assert_eq!(sms.split(2.0, 1).0.len(), 0);
    }

    /// The collection in `$EMBER_DATA/sms_spam` or `../shared/data/sms_spam` (counts from
    /// its SOURCES.md).
    #[test]
    fn shared_collection_loads() {
        let Some(dir) = crate::data::shared_data("sms_spam") else {
            eprintln!("skipped: sms_spam not found in $EMBER_DATA or ../shared/data");
            return;
        };
        let sms = load(&dir).unwrap();
        assert_eq!(sms.len(), 5574);
        assert_eq!(sms.labels.iter().filter(|&&l| l == SPAM).count(), 747);
        let v = Vocab::build(sms.texts.iter().map(String::as_str), 1000);
        assert_eq!(v.len(), 1000);
        assert!(v.encode(&sms.texts[0], 30).iter().any(|&id| id > 0));
    }
}
