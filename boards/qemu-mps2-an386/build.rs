fn main() {
    ember_board_build::board("qemu-mps2-an386");
}
