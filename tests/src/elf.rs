//! Flash and RAM footprint from the firmware ELF's sections.

use object::elf::SHF_ALLOC;
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind};
use serde::Serialize;
use std::path::Path;

use crate::HilError;

/// What the firmware occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Footprint {
    /// Flash: every allocated section with contents (vector table, text, rodata with the
    /// model, data's initial values).
    pub flash_bytes: u64,
    /// RAM: data + bss + uninit + the stack reserve.
    pub ram_bytes: u64,
    /// The stack reserve included in `ram_bytes` (`_ember_stack_reserve`, from the board's link).
    pub stack_reserve_bytes: u64,
}

impl Footprint {
    /// Reads the footprint of the ELF at `path`.
    pub fn of_elf(path: &Path) -> Result<Footprint, HilError> {
        let bytes = std::fs::read(path).map_err(HilError::io(path))?;
        let bad = |what: String| HilError::BadResults {
            board: "?",
            what: format!("{}: {what}", path.display()),
        };
        let file = object::File::parse(&*bytes).map_err(|e| bad(e.to_string()))?;
        let (mut flash, mut ram) = (0u64, 0u64);
        for s in file.sections() {
            let SectionFlags::Elf { sh_flags } = s.flags() else {
                continue;
            };
            if sh_flags & u64::from(SHF_ALLOC) == 0 || s.size() == 0 {
                continue;
            }
            if s.kind() == SectionKind::UninitializedData {
                ram += s.size();
            } else {
                flash += s.size();
                if s.name() == Ok(".data") {
                    ram += s.size();
                }
            }
        }
        let reserve = file
            .symbols()
            .find(|s| s.name() == Ok("_ember_stack_reserve"))
            .map(|s| s.address())
            .ok_or_else(|| bad("no _ember_stack_reserve symbol (not an Ember firmware?)".into()))?;
        Ok(Footprint {
            flash_bytes: flash,
            ram_bytes: ram + reserve,
            stack_reserve_bytes: reserve,
        })
    }
}
