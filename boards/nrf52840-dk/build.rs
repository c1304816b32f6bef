fn main() {
    ember_board_build::board("nrf52840-dk");
}
