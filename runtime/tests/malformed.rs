//! A corpus of malformed model files, each with the exact error it must give.

mod common;

use common::random_model;
use ember_runtime::format::{self, Layer, Storage, HEADER_LEN};
use ember_runtime::{Engine, Error, Model};

fn small_model() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/conv.ember"
    ))
    .unwrap()
}

/// Rewrites the CRC after a payload edit, so that the edit reaches validation.
fn reseal(bytes: &mut [u8]) {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[HEADER_LEN..]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn truncated_at_every_length() {
    let bytes = small_model();
    for n in 0..bytes.len() {
        assert_eq!(
            Model::from_bytes(&bytes[..n]).err(),
            Some(Error::Truncated),
            "cut at {n}"
        );
    }
    assert!(Model::from_bytes(&bytes).is_ok());
}

#[test]
fn trailing_bytes() {
    let mut bytes = small_model();
    bytes.push(0);
    assert_eq!(Model::from_bytes(&bytes).err(), Some(Error::TrailingBytes));
}

#[test]
fn every_flipped_bit_is_caught() {
    let bytes = small_model();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let want = match i {
                0..=3 => Error::BadMagic,
                4..=5 => Error::UnsupportedVersion {
                    found: u16::from_le_bytes([b[4], b[5]]),
                },
                6..=7 => Error::Malformed,
                // A larger length runs past the end; a smaller one leaves bytes over.
                8..=11 if b[i] & (1 << bit) != 0 => Error::Truncated,
                8..=11 => Error::TrailingBytes,
                _ => Error::ChecksumMismatch,
            };
            assert_eq!(
                Model::from_bytes(&b).err(),
                Some(want),
                "byte {i} bit {bit}"
            );
        }
    }
}

#[test]
fn wrong_version() {
    let mut b = small_model();
    b[4..6].copy_from_slice(&2u16.to_le_bytes());
    assert_eq!(
        Model::from_bytes(&b).err(),
        Some(Error::UnsupportedVersion { found: 2 })
    );
}

#[test]
fn not_a_model() {
    assert_eq!(
        Model::from_bytes(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\0").err(),
        Some(Error::BadMagic)
    );
    assert_eq!(Model::from_bytes(b"").err(), Some(Error::Truncated));
}

#[test]
fn garbage_payload_with_valid_checksum() {
    let mut b = small_model();
    b[HEADER_LEN..].fill(0xFF);
    reseal(&mut b);
    assert_eq!(Model::from_bytes(&b).err(), Some(Error::Malformed));
}

/// Re-encodes the golden conv model after `edit` changes its description.
fn edited<'a>(edit: impl FnOnce(&mut format::ModelDesc<'a>)) -> Result<(), Error> {
    let bytes: &'a [u8] = small_model().leak();
    let mut desc = Model::from_bytes(bytes).unwrap().desc().clone();
    edit(&mut desc);
    let mut out = vec![0u8; 1 << 20];
    let n = format::encode(&desc, &mut out)?;
    Model::from_bytes(&out[..n]).map(|_| ())
}

#[test]
fn absurd_dimensions() {
    assert_eq!(
        edited(|d| d.input.shape.height = 0),
        Err(Error::BadDimension { layer: 0 })
    );
    // A 65535x65535x65535 input: the first conv's weights no longer match, or sizes overflow.
    let huge = edited(|d| {
        d.input.shape = format::Shape {
            height: u16::MAX,
            width: u16::MAX,
            channels: u16::MAX,
        };
    });
    assert!(
        matches!(
            huge,
            Err(Error::BadWeights { layer: 0 }) | Err(Error::SizeOverflow)
        ),
        "{huge:?}"
    );
    // A wider input: the weights (sized for 1 channel) no longer fit.
    assert_eq!(
        edited(|d| d.input.shape.channels = 2),
        Err(Error::BadWeights { layer: 0 })
    );
    // A kernel larger than the padded input.
    assert_eq!(
        edited(|d| if let Layer::Conv2d(c) = &mut d.layers[0] {
            c.kernel = 11
        }),
        Err(Error::BadDimension { layer: 0 })
    );
    // Padding as large as the kernel.
    assert_eq!(
        edited(|d| if let Layer::Conv2d(c) = &mut d.layers[0] {
            c.padding = 3
        }),
        Err(Error::BadDimension { layer: 0 })
    );
    // Pool window larger than its input.
    assert_eq!(
        edited(|d| if let Layer::MaxPool(p) = &mut d.layers[3] {
            p.kernel = 9
        }),
        Err(Error::BadDimension { layer: 3 })
    );
    assert_eq!(edited(|d| d.timesteps = 0), Err(Error::ZeroTimesteps));
}

#[test]
fn bad_topology() {
    assert_eq!(edited(|d| d.layers.clear()), Err(Error::BadTopology));
    // The readout is not last.
    assert_eq!(
        edited(|d| {
            d.layers.pop();
        }),
        Err(Error::BadTopology)
    );
    // A pooling layer last.
    assert_eq!(
        edited(|d| {
            let l = d.layers[1].clone();
            d.layers.push(l).unwrap();
        }),
        Err(Error::BadTopology)
    );
}

#[test]
fn bad_sparse_indices() {
    let bytes = small_model();
    let model = Model::from_bytes(&bytes).unwrap();
    let Layer::Conv2d(c) = &model.desc().layers[0] else {
        panic!()
    };
    let Storage::Sparse {
        row_ptr,
        cols,
        values,
    } = c.weights.storage
    else {
        panic!()
    };
    // A column index out of range.
    let mut bad_cols = cols.to_vec();
    bad_cols[0..2].copy_from_slice(&9u16.to_le_bytes());
    // Row pointers that go backwards.
    let mut bad_ptr = row_ptr.to_vec();
    bad_ptr[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    for (rp, cs) in [(row_ptr, &bad_cols[..]), (&bad_ptr[..], cols)] {
        let r = edited(|d| {
            if let Layer::Conv2d(c) = &mut d.layers[0] {
                c.weights.storage = Storage::Sparse {
                    row_ptr: rp,
                    cols: cs,
                    values,
                };
            }
        });
        assert_eq!(r, Err(Error::BadWeights { layer: 0 }));
    }
}

#[test]
fn bad_parameters() {
    use format::{Channelwise, Neuron};
    let set = |f: fn(&mut format::Lif<'_>)| {
        edited(move |d| {
            if let Layer::Conv2d(c) = &mut d.layers[0] {
                if let Neuron::Lif(l) = &mut c.neuron {
                    f(l)
                }
            }
        })
    };
    assert_eq!(
        set(|l| l.threshold = Channelwise::Uniform(0)),
        Err(Error::BadParameter { layer: 0 })
    );
    assert_eq!(
        set(|l| l.threshold = Channelwise::PerChannel(&[1, 0, 0, 0])),
        Err(Error::BadParameter { layer: 0 })
    );
    assert_eq!(
        set(|l| {
            l.membrane = format::Width::I16;
            l.bias = Channelwise::Uniform(40_000)
        }),
        Err(Error::BadParameter { layer: 0 })
    );
}

#[test]
fn arena_and_input_errors() {
    let bytes = small_model();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut small = vec![0u8; model.arena_bytes() - 1];
    assert!(matches!(
        Engine::new(&model, &mut small),
        Err(Error::ArenaTooSmall { .. })
    ));
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engine = Engine::new(&model, &mut arena).unwrap();
    assert_eq!(
        engine.run(&[0; 63]).err(),
        Some(Error::InputSizeMismatch {
            expected: 64,
            given: 63
        })
    );
    assert_eq!(
        engine.run_for(&[0; 64], 0).err(),
        Some(Error::ZeroTimesteps)
    );
}

/// Random byte edits of random valid models never panic: they load and run, or fail typed.
#[test]
fn mutated_models_never_panic() {
    let mut rng = common::Rng(99);
    for seed in 0..300 {
        let (m, input) = random_model(seed);
        let mut bytes = m.encode();
        for _ in 0..rng.range(1, 4) {
            let i = HEADER_LEN + rng.below((bytes.len() - HEADER_LEN) as u64) as usize;
            bytes[i] = rng.next() as u8;
        }
        reseal(&mut bytes);
        let Ok(model) = Model::from_bytes(&bytes) else {
            continue;
        };
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut engine = Engine::new(&model, &mut arena).unwrap();
        let _ = engine.run(&input);
    }
}
