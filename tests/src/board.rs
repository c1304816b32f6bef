//! The boards the HIL runs on, with what QEMU and cargo need to know about them.

use serde::Serialize;

/// An emulated board: a crate in `boards/` and a QEMU machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "&'static str")]
pub enum Board {
    /// Cortex-M4F, ARM MPS2 with AN386 (the default).
    QemuMps2An386,
    /// Cortex-M3, TI Stellaris LM3S6965 (256 KiB flash, 64 KiB RAM).
    QemuLm3s6965,
    /// Cortex-M33, ARM MPS2 with AN505.
    QemuMps2An505,
    /// Cortex-M0, BBC micro:bit v1 (256 KiB flash, 16 KiB RAM).
    QemuMicrobit,
}

/// `-icount shift`: one instruction every 2^6 ns of virtual time, so that SysTick, clocked
/// at 12 to 25 MHz on these machines, ticks more than once per instruction.
pub const ICOUNT_SHIFT: u32 = 6;

impl Board {
    /// Every emulated board.
    pub const ALL: [Board; 4] = [
        Board::QemuMps2An386,
        Board::QemuLm3s6965,
        Board::QemuMps2An505,
        Board::QemuMicrobit,
    ];

    /// The folder name in `boards/`.
    pub fn name(self) -> &'static str {
        match self {
            Board::QemuMps2An386 => "qemu-mps2-an386",
            Board::QemuLm3s6965 => "qemu-lm3s6965",
            Board::QemuMps2An505 => "qemu-mps2-an505",
            Board::QemuMicrobit => "qemu-microbit",
        }
    }

    /// The board for a folder name.
    pub fn from_name(name: &str) -> Option<Board> {
        Board::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The cargo package of the board crate.
    pub fn package(self) -> &'static str {
        match self {
            Board::QemuMps2An386 => "board-qemu-mps2-an386",
            Board::QemuLm3s6965 => "board-qemu-lm3s6965",
            Board::QemuMps2An505 => "board-qemu-mps2-an505",
            Board::QemuMicrobit => "board-qemu-microbit",
        }
    }

    /// The rustc target.
    pub fn target(self) -> &'static str {
        match self {
            Board::QemuMps2An386 => "thumbv7em-none-eabihf",
            Board::QemuLm3s6965 => "thumbv7m-none-eabi",
            Board::QemuMps2An505 => "thumbv8m.main-none-eabihf",
            Board::QemuMicrobit => "thumbv6m-none-eabi",
        }
    }

    /// QEMU's `-cpu` and `-machine`.
    pub fn qemu_cpu_machine(self) -> (&'static str, &'static str) {
        match self {
            Board::QemuMps2An386 => ("cortex-m4", "mps2-an386"),
            Board::QemuLm3s6965 => ("cortex-m3", "lm3s6965evb"),
            Board::QemuMps2An505 => ("cortex-m33", "mps2-an505"),
            Board::QemuMicrobit => ("cortex-m0", "microbit"),
        }
    }
}

impl std::fmt::Display for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Board> for &'static str {
    fn from(b: Board) -> &'static str {
        b.name()
    }
}
