# debian-multiarch.cmake - shared part of the ARM toolchain files: cross-build
# against Debian multiarch libraries (`apt install libfoo-dev:arm64`), which
# live in /usr/lib/<triplet> with headers in /usr/include, not in a sysroot.
# The including file sets TERN_TRIPLET and TERN_QEMU first.

set(CMAKE_C_COMPILER ${TERN_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${TERN_TRIPLET})

# Programs (pkg-config, python) come from the build machine; libraries,
# headers and CMake packages only from the target architecture. The host's
# own library directory is ignored so an amd64 library is never picked up.
set(CMAKE_FIND_ROOT_PATH /usr/${TERN_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)

# pkg-config reads only the target's .pc files (plus arch-independent ones).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${TERN_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# ctest (and add_test with a target) runs target binaries through qemu-user.
# The target's own libc6 comes with the multiarch -dev packages, and qemu then
# finds the loader at its real path. Only without it fall back to
# `-L /usr/<triplet>` (the cross toolchain's libc build): with qemu 7.2 that
# one hangs in the first pthread_create when multiarch libraries are mixed in.
find_program(TERN_QEMU_PATH ${TERN_QEMU})
if(TERN_QEMU_PATH AND EXISTS /usr/lib/${TERN_TRIPLET}/libc.so.6)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TERN_QEMU_PATH})
elseif(TERN_QEMU_PATH)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TERN_QEMU_PATH};-L;/usr/${TERN_TRIPLET})
endif()

# No unwind tables on the boards: C has no exceptions and Tern never cancels
# threads, so .eh_frame is dead weight (about 24 KiB of the aarch64 agent).
# Debuggers use .debug_frame from the debug info instead.
if(NOT CMAKE_C_FLAGS_INIT MATCHES "unwind-tables")
  string(APPEND CMAKE_C_FLAGS_INIT " -fno-asynchronous-unwind-tables -fno-unwind-tables")
endif()
