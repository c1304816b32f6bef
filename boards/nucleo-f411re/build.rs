fn main() {
    ember_board_build::board("nucleo-f411re");
}
