# Every dependency is found with pkg-config; a missing one fails the
# configure step with the Debian package that provides it.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()

# fd_require(<target suffix> <pkg-config module> <debian package> [min version])
function(fd_require name module debpkg)
  set(spec ${module})
  if(ARGC GREATER 3)
    set(spec "${module}>=${ARGV3}")
  endif()
  pkg_check_modules(FD_${name} QUIET IMPORTED_TARGET GLOBAL ${spec})
  if(NOT FD_${name}_FOUND)
    message(FATAL_ERROR
      "${module} not found (${spec}): install it with `apt-get install ${debpkg}` "
      "or run ./scripts/deps.sh")
  endif()
  add_library(fd::${name} ALIAS PkgConfig::FD_${name})
  message(STATUS "found ${module} ${FD_${name}_VERSION}")
endfunction()

fd_require(uring    liburing      liburing-dev     2.3)
fd_require(isal     libisal       libisal-dev)
fd_require(protobuf libprotobuf-c libprotobuf-c-dev)
fd_require(jemalloc jemalloc      libjemalloc-dev)
fd_require(crypto   libcrypto     libssl-dev       3.0)
fd_require(inih     inih          libinih-dev)
fd_require(cmocka   cmocka        libcmocka-dev)
fd_require(mhd      libmicrohttpd libmicrohttpd-dev) # /metrics (common/fd_metrics.c)
# fdadmin's --json output (admin/adm_json.c says why json-c): 0.14 added
# json_object_new_uint64.
fd_require(jsonc    json-c        libjson-c-dev    0.14)

find_program(PROTOC_C protoc-c)
if(NOT PROTOC_C)
  message(FATAL_ERROR "protoc-c not found: apt-get install protobuf-c-compiler")
endif()
