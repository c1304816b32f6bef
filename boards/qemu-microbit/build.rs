fn main() {
    ember_board_build::board("qemu-microbit");
}
