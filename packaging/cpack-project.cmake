# cpack-project.cmake - run by cpack (CPACK_PROJECT_CONFIG_FILE) before it
# builds the package. dpkg-shlibdeps reads the target architecture from
# DEB_HOST_ARCH; with it, it also computes Depends for cross builds from the
# multiarch libraries' symbols files (scripts/install-deps --cross).
if(CPACK_DEBIAN_PACKAGE_ARCHITECTURE)
  set(ENV{DEB_HOST_ARCH} ${CPACK_DEBIAN_PACKAGE_ARCHITECTURE})
endif()
