//! The learned receptive fields as a picture: one 28x28 tile per neuron, its input weights
//! from white (0) to black (w_max); pruned synapses are drawn in pale red.

use super::network::Network;
use crate::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// Writes a PNG of every neuron's input weights, tiles in a square grid, 2 px per weight.
pub fn receptive_fields(net: &Network, path: &Path) -> Result<()> {
    let side = (net.cfg.inputs as f64).sqrt() as usize;
    let n = net.cfg.neurons;
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let (px, gap) = (2usize, 2usize);
    let tile = side * px + gap;
    let size = ((cols * tile + gap) as u32, (rows * tile + gap) as u32);
    let fail = |e: &dyn std::fmt::Display| Error::Mismatch {
        message: format!("{}: {e}", path.display()),
    };
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&RGBColor(90, 90, 90)).map_err(|e| fail(&e))?;
    for j in 0..n {
        let (ty, tx) = (j / cols, j % cols);
        for i in 0..net.cfg.inputs {
            let k = j * net.cfg.inputs + i;
            let color = if net.alive[k] {
                let g = 255 - (255.0 * (net.w[k] / net.cfg.w_max).clamp(0.0, 1.0)) as u8;
                RGBColor(g, g, g)
            } else {
                RGBColor(255, 220, 220)
            };
            let x0 = (gap + tx * tile + (i % side) * px) as i32;
            let y0 = (gap + ty * tile + (i / side) * px) as i32;
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + px as i32, y0 + px as i32)],
                color.filled(),
            ))
            .map_err(|e| fail(&e))?;
        }
    }
    root.present().map_err(|e| fail(&e))
}
