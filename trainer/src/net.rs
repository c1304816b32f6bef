//! The ANN of a recipe in candle: its layers with a ReLU after every synaptic layer but the
//! last. Weights use candle's layouts: dense `(out, in)` over a CHW-flattened input, conv
//! `(c_out, c_in, kh, kw)`; images enter as `(batch, c, h, w)` with pixels scaled to [0, 1].

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};

use crate::error::{CandleContext, Error, Result};
use crate::recipe::{LayerSpec, Recipe};

/// Weights (and bias) of one synaptic layer.
#[derive(Debug, Clone)]
pub struct Params {
    /// Dense `(out, in)` or conv `(c_out, c_in, k, k)`.
    pub weight: Var,
    /// One per output channel, if the layer has a bias.
    pub bias: Option<Var>,
}

/// A recipe's ANN and its parameters (one entry per layer; `None` for pooling).
#[derive(Debug, Clone)]
pub struct Net {
    /// The network description.
    pub recipe: Recipe,
    /// Parameters of each layer.
    pub params: Vec<Option<Params>>,
}

/// SplitMix64: a small seeded generator for initialisation and shuffling.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-bound, bound).
    pub fn uniform(&mut self, bound: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * u - 1.0) * bound
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

impl Net {
    /// Fresh parameters: uniform in ±1/sqrt(fan_in) (PyTorch's default), from the recipe's seed.
    pub fn init(recipe: &Recipe) -> Result<Net> {
        let mut rng = Rng::new(recipe.train.seed);
        let mut params = Vec::new();
        for (i, l) in recipe.layers.iter().enumerate() {
            let [c, h, w] = recipe.input_shape(i)?;
            let (shape, bias, fan_in): (Vec<usize>, _, _) = match *l {
                LayerSpec::Dense { outputs, bias } => {
                    (vec![outputs, c * h * w], bias.then_some(outputs), c * h * w)
                }
                LayerSpec::Conv {
                    out_channels,
                    kernel,
                    bias,
                    ..
                } => (
                    vec![out_channels, c, kernel, kernel],
                    bias.then_some(out_channels),
                    c * kernel * kernel,
                ),
                LayerSpec::Avgpool { .. } => {
                    params.push(None);
                    continue;
                }
            };
            let bound = 1.0 / (fan_in as f32).sqrt();
            let mut var = |n: usize, shape: &[usize]| -> Result<Var> {
                let v: Vec<f32> = (0..n).map(|_| rng.uniform(bound)).collect();
                Var::from_vec(v, shape, &Device::Cpu).ctx("initialising weights")
            };
            let weight = var(shape.iter().product(), &shape)?;
            let bias = bias.map(|n| var(n, &[n])).transpose()?;
            params.push(Some(Params { weight, bias }));
        }
        Ok(Net {
            recipe: recipe.clone(),
            params,
        })
    }

    /// Every trainable variable.
    pub fn vars(&self) -> Vec<Var> {
        self.params
            .iter()
            .flatten()
            .flat_map(|p| std::iter::once(p.weight.clone()).chain(p.bias.clone()))
            .collect()
    }

    /// Logits for a `(batch, c, h, w)` input in [0, 1].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_all(x)
            .map(|mut a| a.pop().unwrap_or_else(|| x.clone()))
    }

    /// The output of every synaptic layer (after its ReLU, except the last: the logits).
    pub fn forward_all(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut x = x.clone();
        let mut outs = Vec::new();
        let last = self.recipe.layers.len() - 1;
        for (i, (l, p)) in self.recipe.layers.iter().zip(&self.params).enumerate() {
            x = match (l, p) {
                (LayerSpec::Dense { .. }, Some(p)) => {
                    let flat = x.flatten_from(1).ctx("flatten")?;
                    let y = flat
                        .matmul(&self.weight(i, p)?.t().ctx("dense")?)
                        .ctx("dense")?;
                    match &p.bias {
                        Some(b) => y.broadcast_add(b.as_tensor()).ctx("dense bias")?,
                        None => y,
                    }
                }
                (
                    LayerSpec::Conv {
                        padding, stride, ..
                    },
                    Some(p),
                ) => {
                    // im2col + gemm with a hand-written backward (crate::kernels::conv).
                    let y =
                        crate::kernels::conv::conv2d(&x, &self.weight(i, p)?, *padding, *stride)
                            .ctx("conv")?;
                    match &p.bias {
                        Some(b) => y
                            .broadcast_add(&b.as_tensor().reshape((1, (), 1, 1)).ctx("conv bias")?)
                            .ctx("conv bias")?,
                        None => y,
                    }
                }
                (LayerSpec::Avgpool { kernel }, _) => x.avg_pool2d(*kernel).ctx("avgpool")?,
                _ => {
                    return Err(Error::Convert {
                        layer: i,
                        message: "missing parameters".into(),
                    })
                }
            };
            if l.is_synaptic() {
                if i != last {
                    x = x.relu().ctx("relu")?;
                }
                outs.push(x.clone());
            }
        }
        Ok(outs)
    }

    /// Layer `i`'s weights as the forward pass uses them: fake-quantized to the exported grid
    /// when the recipe trains quantization-aware ([`crate::compress`]), else as they are.
    pub fn weight(&self, i: usize, p: &Params) -> Result<Tensor> {
        match &self.recipe.compress {
            Some(c) if c.qat => {
                // The readout always has one scale (see crate::quantize).
                let last = i + 1 == self.recipe.layers.len();
                let per_channel = self.recipe.convert.per_channel && !last;
                crate::compress::fake_quant(p.weight.as_tensor(), c.bits, per_channel)
            }
            _ => Ok(p.weight.as_tensor().clone()),
        }
    }

    /// Writes the parameters as safetensors (`layers.{i}.weight`, `layers.{i}.bias`),
    /// atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map = HashMap::new();
        for (i, p) in self.params.iter().enumerate() {
            if let Some(p) = p {
                map.insert(format!("layers.{i}.weight"), p.weight.as_tensor().clone());
                if let Some(b) = &p.bias {
                    map.insert(format!("layers.{i}.bias"), b.as_tensor().clone());
                }
            }
        }
        crate::error::save_tensors_atomic(&map, path)
    }

    /// Reads parameters saved by [`Net::save`] and checks them against `recipe`.
    pub fn load(recipe: &Recipe, path: &Path) -> Result<Net> {
        let err = |message: String| Error::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let mut map =
            candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| err(e.to_string()))?;
        let template = Net::init(recipe)?;
        let mut params = Vec::new();
        for (i, p) in template.params.iter().enumerate() {
            let Some(p) = p else {
                params.push(None);
                continue;
            };
            let mut take = |name: String, like: &Var| -> Result<Var> {
                let t = map
                    .remove(&name)
                    .ok_or_else(|| err(format!("no tensor {name}")))?;
                if t.dims() != like.dims() || t.dtype() != DType::F32 {
                    return Err(err(format!(
                        "{name} is {:?} {:?}, the recipe needs {:?} F32",
                        t.dtype(),
                        t.dims(),
                        like.dims()
                    )));
                }
                Var::from_tensor(&t).ctx("loading checkpoint")
            };
            let weight = take(format!("layers.{i}.weight"), &p.weight)?;
            let bias = match &p.bias {
                Some(b) => Some(take(format!("layers.{i}.bias"), b)?),
                None => None,
            };
            params.push(Some(Params { weight, bias }));
        }
        if let Some(extra) = map.keys().next() {
            return Err(err(format!("tensor {extra} is not in the recipe")));
        }
        Ok(Net {
            recipe: recipe.clone(),
            params,
        })
    }
}

/// A batch of images as a `(n, c, h, w)` tensor in [0, 1] (channels-last u8 input).
pub fn batch_tensor(images: &[&[u8]], shape: [usize; 3]) -> Result<Tensor> {
    pixel_tensor(images, shape, |p| p as f32 / 255.0)
}

/// `images` (height x width x channels bytes each) as an (n, c, h, w) f32 tensor, each pixel
/// mapped by `f`.
pub fn pixel_tensor(
    images: &[&[u8]],
    [h, w, c]: [usize; 3],
    f: impl Fn(u8) -> f32,
) -> Result<Tensor> {
    let mut v = Vec::with_capacity(images.len() * h * w * c);
    for img in images {
        if c == 1 {
            // One channel: already in (c, h, w) order; a plain map, which vectorises.
            v.extend(img[..h * w].iter().map(|&x| f(x)));
            continue;
        }
        for ch in 0..c {
            for p in 0..h * w {
                v.push(f(img[p * c + ch]));
            }
        }
    }
    Tensor::from_vec(v, (images.len(), c, h, w), &Device::Cpu).ctx("building a batch")
}
