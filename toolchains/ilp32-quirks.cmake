# ilp32-quirks.cmake - what 32-bit targets (armhf) need beyond the toolchain.
#
# 64-bit file offsets: queue files over 2 GiB, and readdir() that works under
# qemu-user on a 64-bit host. There the kernel sees a 64-bit process, returns
# 64-bit ext4 directory hashes, and a 32-bit off_t readdir fails with
# EOVERFLOW. (A real 32-bit kernel returns 32-bit hashes.)
#
# _TIME_BITS=64 is deliberately not set: Debian 12's armhf libraries are built
# with a 32-bit time_t, and some of them pass time_t in their APIs. So an armhf
# tern-agent cannot timestamp readings after 2038-01-19. Debian 13 moved armhf
# to a 64-bit time_t.
if(NOT CMAKE_C_FLAGS_INIT MATCHES "_FILE_OFFSET_BITS")
  string(APPEND CMAKE_C_FLAGS_INIT " -D_FILE_OFFSET_BITS=64")
endif()
