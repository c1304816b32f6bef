//! The firmware's defmt log, decoded with the string table of its ELF.

use std::path::Path;

use crate::HilError;

/// Decodes a defmt stream into lines `LEVEL message` (level padded to 5 characters), the
/// form the golden `.out` files hold. A frame cut off at the end (a killed run) is dropped.
pub fn decode(elf: &Path, stream: &[u8]) -> Result<Vec<String>, HilError> {
    let err = |what: String| HilError::Log {
        elf: elf.to_path_buf(),
        what,
    };
    let bytes = std::fs::read(elf).map_err(HilError::io(elf))?;
    let table = defmt_decoder::Table::parse(&bytes)
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("no defmt table in the ELF".into()))?;
    let mut decoder = table.new_stream_decoder();
    decoder.received(stream);
    let mut lines = Vec::new();
    loop {
        match decoder.decode() {
            Ok(frame) => {
                let level = frame
                    .level()
                    .map_or("PRINT".to_string(), |l| l.as_str().to_uppercase());
                lines.push(format!("{level:<5} {}", frame.display_message()));
            }
            Err(defmt_decoder::DecodeError::UnexpectedEof) => return Ok(lines),
            Err(defmt_decoder::DecodeError::Malformed) => {
                return Err(err(format!(
                    "malformed frame after {} lines (firmware and ELF differ?)",
                    lines.len()
                )))
            }
        }
    }
}
