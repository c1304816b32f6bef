fn main() {
    ember_board_build::board("rp2040-pico");
}
