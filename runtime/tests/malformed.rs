//! A corpus of malformed model files, each with the exact error it must give.

mod common;

use common::{random_model, EllSpec, Kind, L, M};
use ember_runtime::format::{self, Encoding, Layer, Precision, Reset, Storage, Width, HEADER_LEN};
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

/// A rate-coded 1x1x6 input, a dense 6->`cols` LIF layer stored as Ell (`bits`-bit indices,
/// two int8 weights per row), a dense readout; and its encoding.
fn ell_model(cols: usize, bits: u8) -> (M, Vec<u8>) {
    let w = (0..6 * cols)
        .map(|i| match i % cols {
            0 => 5,
            1 => -3,
            _ => 0,
        })
        .collect();
    let hidden = L {
        kind: Kind::Dense { outputs: cols },
        precision: Precision::I8,
        sparse: false,
        ell: Some(EllSpec {
            index_bits: bits,
            extra: 0,
            seed: 1,
        }),
        w,
        threshold: vec![4],
        bias: vec![0],
        leak: 1 << 15,
        reset: Reset::Subtract,
        width: Width::I32,
        readout: false,
        inhibition: None,
    };
    let readout = L {
        kind: Kind::Dense { outputs: 2 },
        ell: None,
        w: vec![1; cols * 2],
        readout: true,
        ..hidden.clone()
    };
    let m = M {
        timesteps: 2,
        shape: (1, 1, 6),
        encoding: Encoding::Rate { seed: 1 },
        layers: vec![hidden, readout],
    };
    let bytes = m.encode();
    (m, bytes)
}

/// Loads `bytes` after `edit` changes the first layer's Ell storage
/// (per_row, index_bits, cols, values).
fn ell_edited(
    bytes: &[u8],
    edit: impl FnOnce(&mut u16, &mut u8, &mut Vec<u8>, &mut Vec<u8>),
) -> Result<(), Error> {
    let model = Model::from_bytes(bytes).unwrap();
    let Layer::Dense(d) = &model.desc().layers[0] else {
        panic!()
    };
    let Storage::Ell {
        mut per_row,
        mut index_bits,
        cols,
        values,
    } = d.weights.storage
    else {
        panic!()
    };
    let (mut cols, mut values) = (cols.to_vec(), values.to_vec());
    edit(&mut per_row, &mut index_bits, &mut cols, &mut values);
    let mut desc = model.desc().clone();
    let Layer::Dense(d) = &mut desc.layers[0] else {
        panic!()
    };
    d.weights.storage = Storage::Ell {
        per_row,
        index_bits,
        cols: &cols,
        values: &values,
    };
    let mut out = vec![0u8; 1 << 16];
    let n = format::encode(&desc, &mut out)?;
    Model::from_bytes(&out[..n]).map(|_| ())
}

#[test]
fn ell_blobs_and_indices_are_checked() {
    let bad = Err(Error::BadWeights { layer: 0 });
    for (cols, bits) in [(12, 4), (12, 8), (200, 8)] {
        let (_, bytes) = ell_model(cols, bits);
        assert_eq!(ell_edited(&bytes, |_, _, _, _| {}), Ok(()), "{cols} {bits}");
        // An index width other than 4 or 8.
        for b in [0, 1, 2, 3, 5, 7, 16, 255] {
            assert_eq!(ell_edited(&bytes, |_, ib, _, _| *ib = b), bad, "bits {b}");
        }
        // Index or value blobs one byte short or long.
        assert_eq!(
            ell_edited(&bytes, |_, _, c, _| {
                c.pop();
            }),
            bad
        );
        assert_eq!(ell_edited(&bytes, |_, _, c, _| c.push(0)), bad);
        assert_eq!(
            ell_edited(&bytes, |_, _, _, v| {
                v.pop();
            }),
            bad
        );
        assert_eq!(ell_edited(&bytes, |_, _, _, v| v.push(0)), bad);
        // A per-row count that does not match the blobs.
        assert_eq!(ell_edited(&bytes, |n, _, _, _| *n += 1), bad);
        assert_eq!(ell_edited(&bytes, |n, _, _, _| *n = u16::MAX), bad);
        // An index at the column count (the last entry's, high nibble when 4-bit).
        assert_eq!(
            ell_edited(&bytes, |_, _, c, _| {
                let last = c.last_mut().unwrap();
                *last = if bits == 4 {
                    (*last & 0x0F) | ((cols as u8) << 4)
                } else {
                    cols as u8
                };
            }),
            bad,
            "{cols} {bits}"
        );
    }
    // 4-bit indices for 17 columns, 8-bit ones for 257 (blobs of the right lengths).
    let (_, bytes) = ell_model(17, 8);
    assert_eq!(
        ell_edited(&bytes, |_, ib, c, _| {
            *ib = 4;
            c.truncate(c.len().div_ceil(2));
            c.iter_mut().for_each(|i| *i = 0);
        }),
        bad
    );
    let (_, bytes) = ell_model(257, 8);
    assert_eq!(
        Model::from_bytes(&bytes).err(),
        Some(Error::BadWeights { layer: 0 })
    );
    // More entries per row than columns (every entry in range, blobs of the right lengths).
    let (_, bytes) = ell_model(2, 8);
    assert_eq!(
        ell_edited(&bytes, |n, _, c, v| {
            *n = 3;
            *c = vec![0; 18];
            *v = vec![0; 18];
        }),
        bad
    );
    // Rows of 0 entries: nothing stored at all, a valid (if silent) layer.
    assert_eq!(
        ell_edited(&bytes, |n, _, c, v| {
            *n = 0;
            c.clear();
            v.clear();
        }),
        Ok(())
    );
}

#[test]
fn ell_repeated_columns_count_twice_in_the_overflow_check() {
    // A direct-input layer whose current could overflow 32 bits only when a row adds to one
    // column twice: 255 x (127 + 127) x 50,000 rows > i32::MAX > 255 x 127 x 50,000.
    let rows = 50_000;
    let layer = |index: [u8; 2]| {
        let cols: Vec<u8> = (0..rows).flat_map(|_| index).collect();
        let values = vec![127u8; 2 * rows];
        (cols, values)
    };
    let load = |(cols, values): (Vec<u8>, Vec<u8>)| {
        use format::*;
        let lif = Neuron::Lif(Lif {
            threshold: Channelwise::Uniform(1),
            bias: Channelwise::Uniform(0),
            leak: Leak::NONE,
            reset: Reset::Zero,
            membrane: Width::I32,
        });
        let readout = Neuron::Readout(Readout {
            bias: Channelwise::Uniform(0),
            leak: Leak::NONE,
            membrane: Width::I32,
        });
        let w2 = [1u8; 4];
        let mut layers = heapless::Vec::new();
        let ell = Storage::Ell {
            per_row: 2,
            index_bits: 8,
            cols: &cols,
            values: &values,
        };
        let weights = Weights {
            precision: Precision::I8,
            storage: ell,
        };
        layers
            .push(Layer::Dense(Dense {
                outputs: 2,
                weights,
                neuron: lif,
            }))
            .unwrap();
        let dense = Storage::Dense { values: &w2 };
        let weights = Weights {
            precision: Precision::I8,
            storage: dense,
        };
        layers
            .push(Layer::Dense(Dense {
                outputs: 2,
                weights,
                neuron: readout,
            }))
            .unwrap();
        let shape = Shape {
            height: 1,
            width: 1,
            channels: rows as u16,
        };
        let desc = ModelDesc {
            name: "ell",
            timesteps: 1,
            input: Input {
                shape,
                encoding: Encoding::Direct,
            },
            layers,
        };
        let mut out = vec![0u8; 1 << 20];
        let n = encode(&desc, &mut out).unwrap();
        Model::from_bytes(&out[..n]).map(|_| ())
    };
    assert_eq!(load(layer([0, 1])), Ok(()));
    assert_eq!(load(layer([1, 1])), Err(Error::BadParameter { layer: 0 }));
}

#[test]
fn ell_model_truncated_or_flipped() {
    let (_, bytes) = ell_model(12, 4);
    for n in 0..bytes.len() {
        assert_eq!(
            Model::from_bytes(&bytes[..n]).err(),
            Some(Error::Truncated),
            "cut at {n}"
        );
    }
    // Every byte of the payload changed, checksum resealed: loads and runs, or a typed error.
    for i in HEADER_LEN..bytes.len() {
        for x in [0x01, 0x10, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[i] ^= x;
            reseal(&mut b);
            if let Ok(model) = Model::from_bytes(&b) {
                let mut arena = vec![0u8; model.arena_bytes()];
                let mut engine = Engine::new(&model, &mut arena).unwrap();
                let _ = engine.run(&[255; 6]);
            };
        }
    }
}

/// The reference decoding: postcard's derived `Deserialize` of the whole description, then
/// `Model::from_desc`, with the error mapping of the file format.
fn reference_load(bytes: &[u8]) -> Result<Model<'_>, Error> {
    let payload = &bytes[HEADER_LEN..];
    let (desc, rest) =
        postcard::take_from_bytes::<format::ModelDesc<'_>>(payload).map_err(|e| match e {
            postcard::Error::DeserializeUnexpectedEnd => Error::Truncated,
            _ => Error::Malformed,
        })?;
    if !rest.is_empty() {
        return Err(Error::TrailingBytes);
    }
    Model::from_desc(desc)
}

/// `Model::from_bytes` and `ModelSlot::load` decode the payload in place, layer by layer
/// (the firmware's stack cannot hold the description built by value): for every byte of a
/// payload set to several values, and every truncated payload, both give exactly what the
/// derived decoding gives (the same description, or the same error).
#[test]
fn in_place_decoding_equals_derived_decoding() {
    let files = [
        small_model(),
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/mlp.ember"
        ))
        .unwrap(),
    ];
    let mut checked = 0;
    for bytes in &files {
        let mut cases = Vec::new();
        for i in HEADER_LEN..bytes.len().min(HEADER_LEN + 600) {
            for v in [0u8, 1, 0x7f, 0x80, 0xff, bytes[i].wrapping_add(1)] {
                let mut b = bytes.clone();
                b[i] = v;
                cases.push(b);
            }
        }
        for n in HEADER_LEN..bytes.len() {
            let mut b = bytes[..n].to_vec();
            let len = (n - HEADER_LEN) as u32;
            b[8..12].copy_from_slice(&len.to_le_bytes());
            cases.push(b);
        }
        for b in &mut cases {
            reseal(b);
        }
        let mut slot = ember_runtime::ModelSlot::new();
        for b in &cases {
            let want = reference_load(b);
            let got = Model::from_bytes(b);
            assert_eq!(
                got.as_ref().map(|m| m.desc()).err(),
                want.as_ref().map(|m| m.desc()).err()
            );
            if let (Ok(g), Ok(w)) = (&got, &want) {
                assert_eq!(g.desc(), w.desc());
                assert_eq!(g.arena_bytes(), w.arena_bytes());
            }
            // A slot reused after failures loads like a fresh one.
            let in_slot = slot.load(b).map(|m| (m.desc().clone(), m.arena_bytes()));
            assert_eq!(in_slot, want.map(|m| (m.desc().clone(), m.arena_bytes())));
            checked += 1;
        }
    }
    assert!(checked > 3000, "{checked}");
}

/// A list of 17 layers is refused as malformed, as the derived decoding refuses it.
#[test]
fn seventeen_layers_are_malformed() {
    let bytes = small_model();
    let model = Model::from_bytes(&bytes).unwrap();
    let desc = model.desc();
    // Encode 17 copies of the first layer by hand: postcard writes the list as a varint
    // length followed by the layers.
    let mut payload = postcard::to_allocvec(&(desc.name, desc.timesteps, desc.input)).unwrap();
    payload.push(17);
    for _ in 0..17 {
        payload.extend(postcard::to_allocvec(&desc.layers[0]).unwrap());
    }
    let mut b = bytes[..HEADER_LEN].to_vec();
    b[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend(payload);
    reseal(&mut b);
    assert_eq!(reference_load(&b).err(), Some(Error::Malformed));
    assert_eq!(Model::from_bytes(&b).err(), Some(Error::Malformed));
}
