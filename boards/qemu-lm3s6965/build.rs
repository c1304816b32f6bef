fn main() {
    ember_board_build::board("qemu-lm3s6965");
}
