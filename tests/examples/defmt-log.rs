//! Decodes a firmware's defmt log (the bytes QEMU wrote to stdout) with the ELF's table,
//! without installing `defmt-print`:
//!
//! ```text
//! cargo run -p ember-hil --example defmt-log -- FIRMWARE.elf LOG.defmt
//! ```

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [elf, log] = &args[..] else {
        eprintln!("usage: defmt-log FIRMWARE.elf LOG.defmt");
        std::process::exit(2);
    };
    let stream = std::fs::read(log).unwrap_or_else(|e| panic!("{log}: {e}"));
    match ember_hil::log::decode(elf.as_ref(), &stream) {
        Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
