# aarch64-linux-gnu.cmake - 64-bit ARM Linux (Raspberry Pi 3/4/5 and Zero 2 W
# running a 64-bit OS), Debian's gcc-aarch64-linux-gnu + arm64 multiarch libs.
# Use: cmake --preset cross-aarch64, or -DCMAKE_TOOLCHAIN_FILE=<this file>.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(TERN_TRIPLET aarch64-linux-gnu)
set(TERN_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)

# Segment alignment. binutils aligns arm64 segments for 64 KiB kernel pages by
# default, which pads a small program by up to ~60 KiB of zeros on flash.
# Raspberry Pi class boards run 4 KiB (Pi 3/4, Debian) or 16 KiB (Pi 5)
# kernels, so 16 KiB serves both; set TERN_MAX_PAGE_SIZE=65536 for a 64 KiB
# page kernel (some server distributions), where a 16 KiB-aligned binary
# would not load.
set(TERN_MAX_PAGE_SIZE 16384 CACHE STRING "Largest kernel page size the aarch64 binaries must load on")
string(APPEND CMAKE_EXE_LINKER_FLAGS_INIT " -Wl,-z,max-page-size=${TERN_MAX_PAGE_SIZE}")
