# arm-linux-gnueabihf.cmake - 32-bit ARM Linux, Debian armhf (ARMv7-A, VFPv3,
# Thumb-2): Raspberry Pi 2/3/4 with a 32-bit OS. Not ARMv6 (Pi 1, Zero W):
# Debian's armhf baseline is ARMv7; see docs/deploy.md.
# Use: cmake --preset cross-armhf, or -DCMAKE_TOOLCHAIN_FILE=<this file>.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(TERN_TRIPLET arm-linux-gnueabihf)
set(TERN_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/ilp32-quirks.cmake)
