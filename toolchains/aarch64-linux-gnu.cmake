# aarch64-linux-gnu.cmake - 64-bit ARM Linux (Raspberry Pi 3/4/5 and Zero 2 W
# running a 64-bit OS), Debian's gcc-aarch64-linux-gnu + arm64 multiarch libs.
# Use: cmake --preset cross-aarch64, or -DCMAKE_TOOLCHAIN_FILE=<this file>.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(TERN_TRIPLET aarch64-linux-gnu)
set(TERN_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
