# Sourced by the command-line tests: write_tiny_data CLASSES writes images.idx (16 images
# of 8x8, a gradient pattern) and labels.idx (16 labels, i mod CLASSES) in the current folder.
write_tiny_data() {
  local classes=$1
  {
    printf '\x00\x00\x08\x03\x00\x00\x00\x10\x00\x00\x00\x08\x00\x00\x00\x08'
    for ((i = 0; i < 16 * 64; i++)); do printf "\\x$(printf %02x $(((i * 7 + i / 64 * 13) % 256)))"; done
  } > images.idx
  {
    printf '\x00\x00\x08\x01\x00\x00\x00\x10'
    for ((i = 0; i < 16; i++)); do printf "\\x$(printf %02x $((i % classes)))"; done
  } > labels.idx
}
