//! The Free Spoken Digit Dataset: WAV recordings turned into fixed-size u8 feature images.
//!
//! Recordings are `{digit}_{speaker}_{index}.wav`, 8 kHz mono 16-bit PCM, in `recordings/`.
//! The standard split puts indices 0..=4 of every speaker and digit in the test set (300 of
//! the 3,000 recordings, upstream's "first 10%") and the rest in the training set.
//!
//! Features: a short-time Fourier transform (frames of [`FRAME`] samples, hop [`HOP`],
//! periodic Hann window, the last frame zero-padded), then per frame either
//! - [`Kind::LogSpectrogram`]: the power of `bands` equal-width frequency bands in dB;
//! - [`Kind::LogMel`]: the power of `mels` triangular mel filters in dB; or
//! - [`Kind::Mfcc`]: the log energies of `mels` triangular mel filters (HTK mel scale,
//!   0..4 kHz) and their DCT-II, keeping the first `coefficients` (c0 included).
//!
//! The STFT frames are then averaged into `frames` equal time spans (a short recording is
//! stretched), giving an image of `frames` rows (time, top = start) by `bands` or
//! `coefficients` columns (low to high). Scaling to 0..=255 is **per file**: a spectrogram is
//! floored at 80 dB below its peak and min-max scaled as a whole; MFCCs are min-max scaled
//! coefficient by coefficient. A constant image scales to all zeros. The result is an
//! [`Split`](super::mnist::Split) with one channel, so the networks that take MNIST take it too.
//!
//! ```no_run
//! use ember_trainer::data::fsdd;
//! let set = fsdd::load(std::path::Path::new("fsdd"), &fsdd::FeatureConfig::default())?;
//! assert_eq!((set.train.rows, set.train.cols), (32, 32));
//! # Ok::<(), fsdd::FsddError>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::mnist::Split;

/// Sample rate of every recording.
pub const SAMPLE_RATE: u32 = 8000;
/// STFT frame length in samples.
pub const FRAME: usize = 256;
/// STFT hop in samples.
pub const HOP: usize = 128;
/// Frequency bins of one STFT frame (DC to Nyquist).
pub const BINS: usize = FRAME / 2 + 1;
/// Recordings with an index below this form the test set.
pub const TEST_INDICES: u32 = 5;

/// Power added before taking logarithms, so that silence stays finite.
const FLOOR: f32 = 1e-10;
/// Dynamic range kept in a spectrogram image, in dB below its peak.
const RANGE_DB: f32 = 80.0;

/// What can be wrong with an FSDD folder, a recording or the feature settings.
#[derive(Debug, thiserror::Error)]
pub enum FsddError {
    /// A folder could not be listed.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a readable WAV file (missing, truncated, malformed).
    #[error("{path}: unreadable WAV: {source}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// hound's reason.
        source: hound::Error,
    },
    /// The WAV file is readable but not 8 kHz mono 16-bit integer PCM.
    #[error(
        "{path}: unsupported encoding {encoding}; FSDD recordings are 8000 Hz mono 16-bit PCM"
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The encoding found, e.g. "2 channels, 32-bit float, 8000 Hz".
        encoding: String,
    },
    /// The file holds no samples.
    #[error("{path}: the recording has no samples")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file name is not `{digit}_{speaker}_{index}.wav`.
    #[error("{path}: bad name ({reason}); expected {{digit}}_{{speaker}}_{{index}}.wav")]
    BadName {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The folder holds no `.wav` file.
    #[error("{dir}: no .wav recording; pass the FSDD folder or its recordings/ folder")]
    NoRecordings {
        /// The folder searched.
        dir: PathBuf,
    },
    /// The feature settings are impossible.
    #[error("FSDD features: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
}

/// Which features make the columns of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Log power of `bands` equal-width frequency bands (1..=[`BINS`]).
    LogSpectrogram {
        /// Columns of the image.
        bands: usize,
    },
    /// Log energy of `mels` triangular mel filters (HTK mel scale, 0..4 kHz) in dB: a
    /// spectrogram with more resolution where speech has its formants.
    LogMel {
        /// Mel filters, the columns of the image (1..=[`BINS`]).
        mels: usize,
    },
    /// Mel-frequency cepstral coefficients.
    Mfcc {
        /// Mel filters (1..=[`BINS`]).
        mels: usize,
        /// Coefficients kept, the columns of the image (1..=`mels`).
        coefficients: usize,
    },
}

/// Shape and kind of the feature image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureConfig {
    /// Rows of the image: equal time spans of the recording.
    pub frames: usize,
    /// What the columns hold.
    pub kind: Kind,
}

impl Default for FeatureConfig {
    /// 32 frames of 32 log-spectrogram bands: a 32x32 image.
    fn default() -> Self {
        FeatureConfig {
            frames: 32,
            kind: Kind::LogSpectrogram { bands: 32 },
        }
    }
}

impl FeatureConfig {
    /// Columns of the image.
    pub fn columns(&self) -> usize {
        match self.kind {
            Kind::LogSpectrogram { bands } => bands,
            Kind::LogMel { mels } => mels,
            Kind::Mfcc { coefficients, .. } => coefficients,
        }
    }
}

/// Computes feature images; holds the FFT plan, window and filterbank of one configuration.
pub struct Features {
    config: FeatureConfig,
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    /// One row of [`BINS`] weights per band or mel filter.
    filters: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Features {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Features")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Features {
    /// Prepares the extractor; `Err` if the configuration is impossible.
    pub fn new(config: FeatureConfig) -> Result<Features, FsddError> {
        let bad = |message: String| Err(FsddError::Config { message });
        if config.frames == 0 {
            return bad("frames must be at least 1".into());
        }
        let filters = match config.kind {
            Kind::LogSpectrogram { bands } if (1..=BINS).contains(&bands) => band_filters(bands),
            Kind::LogMel { mels } if (1..=BINS).contains(&mels) => mel_filters(mels),
            Kind::Mfcc { mels, coefficients }
                if (1..=BINS).contains(&mels) && (1..=mels).contains(&coefficients) =>
            {
                mel_filters(mels)
            }
            kind => {
                return bad(format!(
                    "{kind:?}: bands and mels must be 1..={BINS}, coefficients 1..=mels"
                ))
            }
        };
        let window = (0..FRAME)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * n as f32 / FRAME as f32).cos())
            .collect();
        Ok(Features {
            config,
            fft: FftPlanner::new().plan_fft_forward(FRAME),
            window,
            filters,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// The u8 image (`frames x columns`, row-major) of a recording.
    pub fn image(&self, samples: &[i16]) -> Vec<u8> {
        let rows: Vec<Vec<f32>> = stft_starts(samples.len())
            .map(|start| self.frame_features(&samples[start..(start + FRAME).min(samples.len())]))
            .collect();
        let pooled = pool_rows(&rows, self.config.frames);
        match self.config.kind {
            Kind::LogSpectrogram { .. } | Kind::LogMel { .. } => {
                let peak = pooled.iter().copied().fold(f32::MIN, f32::max);
                let floored: Vec<f32> = pooled.iter().map(|&v| v.max(peak - RANGE_DB)).collect();
                scale_u8(&floored, 1)
            }
            Kind::Mfcc { coefficients, .. } => scale_u8(&pooled, coefficients),
        }
    }

    /// The feature row of one STFT frame (`chunk` is zero-padded to [`FRAME`]).
    fn frame_features(&self, chunk: &[i16]) -> Vec<f32> {
        let mut buf: Vec<Complex<f32>> = (0..FRAME)
            .map(|n| {
                let s = chunk.get(n).map_or(0.0, |&s| f32::from(s) / 32768.0);
                Complex::new(s * self.window[n], 0.0)
            })
            .collect();
        self.fft.process(&mut buf);
        let power: Vec<f32> = buf[..BINS].iter().map(|c| c.norm_sqr()).collect();
        let energies = self
            .filters
            .iter()
            .map(|w| w.iter().zip(&power).map(|(w, p)| w * p).sum::<f32>() + FLOOR);
        match self.config.kind {
            Kind::LogSpectrogram { .. } | Kind::LogMel { .. } => {
                energies.map(|e| 10.0 * e.log10()).collect()
            }
            Kind::Mfcc { coefficients, .. } => {
                dct2(&energies.map(f32::ln).collect::<Vec<_>>(), coefficients)
            }
        }
    }
}

/// Start of every STFT frame: at least one, the last may run past the end.
fn stft_starts(len: usize) -> impl Iterator<Item = usize> {
    let frames = 1 + len.saturating_sub(FRAME).div_ceil(HOP);
    (0..frames).map(|i| i * HOP)
}

/// The half-open range of `n` items that part `i` of `parts` equal parts covers (at least
/// one item, so that fewer items than parts are repeated).
fn part(i: usize, parts: usize, n: usize) -> std::ops::Range<usize> {
    let lo = i * n / parts;
    lo..((i + 1) * n / parts).max(lo + 1)
}

/// Averages `rows` (at least one) into `frames` rows; returns them concatenated.
fn pool_rows(rows: &[Vec<f32>], frames: usize) -> Vec<f32> {
    let width = rows.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(frames * width);
    for j in 0..frames {
        let span = &rows[part(j, frames, rows.len())];
        out.extend((0..width).map(|c| span.iter().map(|r| r[c]).sum::<f32>() / span.len() as f32));
    }
    out
}

/// Rectangular filters averaging `bands` equal-width ranges of the [`BINS`] bins.
fn band_filters(bands: usize) -> Vec<Vec<f32>> {
    (0..bands)
        .map(|b| {
            let r = part(b, bands, BINS);
            let w = 1.0 / r.len() as f32;
            (0..BINS)
                .map(|k| if r.contains(&k) { w } else { 0.0 })
                .collect()
        })
        .collect()
}

/// Triangular filters equally spaced on the HTK mel scale from 0 Hz to the Nyquist frequency.
fn mel_filters(mels: usize) -> Vec<Vec<f32>> {
    let mel = |hz: f32| 2595.0 * (1.0 + hz / 700.0).log10();
    let hz = |m: f32| 700.0 * (10f32.powf(m / 2595.0) - 1.0);
    let top = mel(SAMPLE_RATE as f32 / 2.0);
    // Edges in (fractional) FFT bins.
    let edges: Vec<f32> = (0..mels + 2)
        .map(|i| hz(top * i as f32 / (mels + 1) as f32) * FRAME as f32 / SAMPLE_RATE as f32)
        .collect();
    edges
        .windows(3)
        .map(|e| {
            (0..BINS)
                .map(|k| {
                    let k = k as f32;
                    if k > e[0] && k <= e[1] {
                        (k - e[0]) / (e[1] - e[0])
                    } else if k > e[1] && k < e[2] {
                        (e[2] - k) / (e[2] - e[1])
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

/// The first `n` coefficients of the DCT-II of `x`.
fn dct2(x: &[f32], n: usize) -> Vec<f32> {
    let len = x.len() as f32;
    (0..n)
        .map(|k| {
            x.iter()
                .enumerate()
                .map(|(i, v)| {
                    v * (std::f32::consts::PI * k as f32 * (2 * i + 1) as f32 / (2.0 * len)).cos()
                })
                .sum()
        })
        .collect()
}

/// Min-max scales `values` to 0..=255, each of the `groups` interleaved columns on its own
/// (1 = the whole image at once). A constant group becomes zeros.
fn scale_u8(values: &[f32], groups: usize) -> Vec<u8> {
    let mut lo = vec![f32::MAX; groups];
    let mut hi = vec![f32::MIN; groups];
    for (i, &v) in values.iter().enumerate() {
        lo[i % groups] = lo[i % groups].min(v);
        hi[i % groups] = hi[i % groups].max(v);
    }
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (lo, hi) = (lo[i % groups], hi[i % groups]);
            if hi > lo {
                ((v - lo) / (hi - lo) * 255.0).round() as u8
            } else {
                0
            }
        })
        .collect()
}

/// What a recording's file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The digit spoken.
    pub digit: u8,
    /// Who spoke it.
    pub speaker: String,
    /// Repetition number of this speaker and digit.
    pub index: u32,
}

impl Recording {
    /// True for the standard test split (index 0..=4).
    pub fn is_test(&self) -> bool {
        self.index < TEST_INDICES
    }
}

/// Parses `{digit}_{speaker}_{index}.wav`.
pub fn parse_name(path: &Path) -> Result<Recording, FsddError> {
    let bad = |reason| FsddError::BadName {
        path: path.to_path_buf(),
        reason,
    };
    if path.extension().is_none_or(|e| e != "wav") {
        return Err(bad("not a .wav file"));
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| bad("not UTF-8"))?;
    let parts: Vec<&str> = stem.split('_').collect();
    let [digit, speaker, index] = parts[..] else {
        return Err(bad("not three fields separated by '_'"));
    };
    let digit = match digit.as_bytes() {
        [d @ b'0'..=b'9'] => d - b'0',
        _ => return Err(bad("the digit is not 0..=9")),
    };
    if speaker.is_empty() {
        return Err(bad("no speaker"));
    }
    let index = index
        .parse()
        .map_err(|_| bad("the index is not a number"))?;
    Ok(Recording {
        digit,
        speaker: speaker.to_string(),
        index,
    })
}

/// Reads the samples of an 8 kHz mono 16-bit PCM WAV file.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, FsddError> {
    let wav = |source| FsddError::Wav {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = hound::WavReader::open(path).map_err(wav)?;
    let spec = reader.spec();
    if spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
        || spec.sample_rate != SAMPLE_RATE
    {
        let format = match spec.sample_format {
            hound::SampleFormat::Int => "integer PCM",
            hound::SampleFormat::Float => "float",
        };
        return Err(FsddError::Unsupported {
            path: path.to_path_buf(),
            encoding: format!(
                "{} channel(s), {}-bit {format}, {} Hz",
                spec.channels, spec.bits_per_sample, spec.sample_rate
            ),
        });
    }
    let samples = reader
        .samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(wav)?;
    if samples.is_empty() {
        return Err(FsddError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(samples)
}

/// The two splits as feature images.
#[derive(Debug, Clone)]
pub struct Fsdd {
    /// Recordings with index 5 and above.
    pub train: Split,
    /// Recordings with index 0..=4.
    pub test: Split,
}

/// Loads every `.wav` of `dir` (or of `dir/recordings` when that exists), in name order, as
/// feature images; other files are ignored.
pub fn load(dir: &Path, config: &FeatureConfig) -> Result<Fsdd, FsddError> {
    let features = Features::new(*config)?;
    let empty = || Split {
        images: Vec::new(),
        labels: Vec::new(),
        rows: config.frames,
        cols: config.columns(),
    };
    let (mut train, mut test) = (empty(), empty());
    for (rec, samples) in recordings(dir)? {
        let image = features.image(&samples);
        let split = if rec.is_test() { &mut test } else { &mut train };
        split.images.extend_from_slice(&image);
        split.labels.push(rec.digit);
    }
    Ok(Fsdd { train, test })
}

/// Every `.wav` of `dir` (or of `dir/recordings` when that exists), in name order, with its
/// samples: for features computed later, e.g. after adding noise to the waveform.
pub fn recordings(dir: &Path) -> Result<Vec<(Recording, Vec<i16>)>, FsddError> {
    let nested = dir.join("recordings");
    let dir = if nested.is_dir() { &nested } else { dir };
    let files = wav_files(dir)?;
    if files.is_empty() {
        return Err(FsddError::NoRecordings {
            dir: dir.to_path_buf(),
        });
    }
    files
        .iter()
        .map(|path| Ok((parse_name(path)?, read_wav(path)?)))
        .collect()
}

/// The `*.wav` files of `dir`, sorted by name.
fn wav_files(dir: &Path) -> Result<Vec<PathBuf>, FsddError> {
    let io = |source| FsddError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "wav") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(channels: u16, bits: u16, format: hound::SampleFormat, rate: u32) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    /// Writes `seconds` of a sine tone at `hz` as 8 kHz mono 16-bit PCM.
    fn write_tone(path: &Path, hz: f32, seconds: f32) {
        let mut w =
            hound::WavWriter::create(path, spec(1, 16, hound::SampleFormat::Int, 8000)).unwrap();
        for n in 0..(seconds * 8000.0) as usize {
            let t = n as f32 / 8000.0;
            w.write_sample((12000.0 * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16)
                .unwrap();
        }
        w.finalize().unwrap();
    }

    /// Column of the largest value of row `r`.
    fn argmax(image: &[u8], cols: usize, r: usize) -> usize {
        let row = &image[r * cols..(r + 1) * cols];
        (0..cols).max_by_key(|&c| row[c]).unwrap()
    }

    #[test]
    fn tone_gives_deterministic_spectrogram() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("3_alice_7.wav");
        write_tone(&p, 440.0, 0.5);
        let samples = read_wav(&p).unwrap();
        assert_eq!(samples.len(), 4000);
        let f = Features::new(FeatureConfig::default()).unwrap();
        let a = f.image(&samples);
        assert_eq!(a.len(), 32 * 32);
        assert_eq!(a, f.image(&read_wav(&p).unwrap()));
        assert_eq!(
            a,
            Features::new(FeatureConfig::default())
                .unwrap()
                .image(&samples)
        );
        // 440 Hz is bin 14 of 31.25 Hz; band 3 covers bins 12..16.
        for r in 0..32 {
            assert_eq!(argmax(&a, 32, r), 3, "row {r}");
        }
        assert_eq!(a.iter().max(), Some(&255));
        assert_eq!(a.iter().min(), Some(&0));
        // A higher tone peaks in a higher band.
        write_tone(&p, 2500.0, 0.5);
        assert_eq!(
            argmax(&f.image(&read_wav(&p).unwrap()), 32, 10),
            2500 * 32 / 4000
        );
    }

    #[test]
    fn mfcc_shape_short_and_silent_recordings() {
        let config = FeatureConfig {
            frames: 20,
            kind: Kind::Mfcc {
                mels: 40,
                coefficients: 13,
            },
        };
        let f = Features::new(config).unwrap();
        let tone: Vec<i16> = (0..1000)
            .map(|n| ((n as f32 * 0.3).sin() * 8000.0) as i16)
            .collect();
        let img = f.image(&tone);
        assert_eq!(img.len(), 20 * 13);
        assert_eq!(img, f.image(&tone));
        // Shorter than one frame: one STFT frame stretched over every row.
        let short = f.image(&tone[..100]);
        assert_eq!(short.len(), 20 * 13);
        assert!(short.chunks(13).all(|r| r == &short[..13]));
        assert_eq!(f.image(&[0; 3000]), vec![0; 20 * 13]);
        assert_eq!(
            Features::new(FeatureConfig::default())
                .unwrap()
                .image(&[0; 10]),
            vec![0; 1024]
        );
    }

    #[test]
    fn loads_folder_with_standard_split() {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("recordings");
        std::fs::create_dir(&rec).unwrap();
        write_tone(&rec.join("3_alice_0.wav"), 300.0, 0.3);
        write_tone(&rec.join("3_alice_7.wav"), 300.0, 0.2);
        write_tone(&rec.join("5_bob_12.wav"), 900.0, 0.4);
        write_tone(&rec.join("9_bob_4.wav"), 900.0, 0.4);
        std::fs::write(rec.join("README.md"), "ignored").unwrap();
        let set = load(dir.path(), &FeatureConfig::default()).unwrap();
        assert_eq!((set.train.rows, set.train.cols), (32, 32));
        assert_eq!(set.train.labels, vec![3, 5]);
        assert_eq!(set.test.labels, vec![3, 9]);
        assert_eq!(set.train.images.len(), 2 * 1024);
        // The same folder given directly.
        assert_eq!(
            load(&rec, &FeatureConfig::default()).unwrap().test.images,
            set.test.images
        );
    }

    #[test]
    fn unsupported_encodings_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                spec(2, 16, hound::SampleFormat::Int, 8000),
                "2 channel(s), 16-bit integer PCM",
            ),
            (
                spec(1, 32, hound::SampleFormat::Float, 8000),
                "32-bit float",
            ),
            (
                spec(1, 8, hound::SampleFormat::Int, 8000),
                "8-bit integer PCM",
            ),
            (spec(1, 16, hound::SampleFormat::Int, 16000), "16000 Hz"),
        ];
        for (i, (s, what)) in cases.into_iter().enumerate() {
            let p = dir.path().join(format!("1_x_{i}.wav"));
            let mut w = hound::WavWriter::create(&p, s).unwrap();
            for _ in 0..8 {
                match s.sample_format {
                    hound::SampleFormat::Float => w.write_sample(0.5f32).unwrap(),
                    hound::SampleFormat::Int if s.bits_per_sample == 8 => {
                        w.write_sample(3i8).unwrap()
                    }
                    hound::SampleFormat::Int => w.write_sample(3i16).unwrap(),
                }
            }
            w.finalize().unwrap();
            let e = read_wav(&p).unwrap_err();
            assert!(matches!(e, FsddError::Unsupported { .. }), "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains(what) && msg.contains(&*p.to_string_lossy()),
                "{msg}"
            );
        }
    }

    #[test]
    fn corrupt_files_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1_x_0.wav");
        std::fs::write(&p, b"RIFF\x10\0\0\0WAVEnonsense").unwrap();
        assert!(matches!(read_wav(&p), Err(FsddError::Wav { .. })));
        // A valid header whose data chunk is cut short.
        write_tone(&p, 440.0, 0.1);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 101]).unwrap();
        assert!(matches!(read_wav(&p), Err(FsddError::Wav { .. })));
        write_tone(&p, 440.0, 0.0);
        assert!(matches!(read_wav(&p), Err(FsddError::Empty { .. })));
        assert!(matches!(
            read_wav(&dir.path().join("none.wav")),
            Err(FsddError::Wav { .. })
        ));

        assert_eq!(
            parse_name(Path::new("d/7_theo_49.wav")).unwrap(),
            Recording {
                digit: 7,
                speaker: "theo".into(),
                index: 49
            }
        );
        for name in [
            "x_theo_1.wav",
            "12_theo_1.wav",
            "7_theo.wav",
            "7__1.wav",
            "7_theo_a.wav",
            "7_a_b_1.wav",
            "7_theo_1.mp3",
        ] {
            let e = parse_name(Path::new(name)).unwrap_err();
            assert!(
                matches!(e, FsddError::BadName { .. }) && e.to_string().contains(name),
                "{e}"
            );
        }
        std::fs::remove_file(&p).unwrap();
        let e = load(dir.path(), &FeatureConfig::default()).unwrap_err();
        assert!(matches!(e, FsddError::NoRecordings { .. }), "{e}");
        std::fs::write(dir.path().join("seven.wav"), b"").unwrap();
        assert!(matches!(
            load(dir.path(), &FeatureConfig::default()),
            Err(FsddError::BadName { .. })
        ));

        for kind in [
            Kind::LogSpectrogram { bands: 0 },
            Kind::LogSpectrogram { bands: 130 },
            Kind::Mfcc {
                mels: 20,
                coefficients: 21,
            },
        ] {
            let e = Features::new(FeatureConfig { frames: 8, kind }).unwrap_err();
            assert!(matches!(e, FsddError::Config { .. }), "{e}");
        }
        assert!(Features::new(FeatureConfig {
            frames: 0,
            kind: Kind::LogSpectrogram { bands: 8 }
        })
        .is_err());
    }

    /// The FSDD in `$EMBER_DATA/fsdd` or `../shared/data/fsdd` (3,000 recordings).
    #[test]
    fn shared_recordings_load() {
        let Some(dir) = crate::data::shared_data("fsdd") else {
            eprintln!("skipped: fsdd not found in $EMBER_DATA or ../shared/data");
            return;
        };
        let set = load(&dir, &FeatureConfig::default()).unwrap();
        // 6 speakers x 10 digits x 50 takes; takes 0..=4 are the test set (SOURCES.md says
        // 600 test files, but 6 x 10 x 5 = 300, as upstream's "first 10%" says).
        assert_eq!((set.train.len(), set.test.len()), (2700, 300));
        for d in 0..10u8 {
            assert_eq!(set.train.labels.iter().filter(|&&l| l == d).count(), 270);
            assert_eq!(set.test.labels.iter().filter(|&&l| l == d).count(), 30);
        }
        assert!((0..set.test.len()).all(|i| set.test.image(i).contains(&255)));
    }
}
