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

# ZooKeeper's C client (multi-threaded: common/fd_zk.h says why) ships no
# pkg-config file in Debian 12: found by its header and library.
find_path(FD_ZOOKEEPER_INCLUDE_DIR zookeeper/zookeeper.h)
find_library(FD_ZOOKEEPER_MT_LIBRARY zookeeper_mt)
if(NOT FD_ZOOKEEPER_INCLUDE_DIR OR NOT FD_ZOOKEEPER_MT_LIBRARY)
  message(FATAL_ERROR "libzookeeper_mt not found: install it with "
    "`apt-get install libzookeeper-mt-dev` or run ./scripts/deps.sh")
endif()
find_package(Threads REQUIRED)
add_library(fd::zookeeper INTERFACE IMPORTED GLOBAL)
target_include_directories(fd::zookeeper INTERFACE ${FD_ZOOKEEPER_INCLUDE_DIR})
# THREADED: the header's multi-threaded API (zoo_a* with a completion thread).
target_compile_definitions(fd::zookeeper INTERFACE THREADED)
target_link_libraries(fd::zookeeper INTERFACE ${FD_ZOOKEEPER_MT_LIBRARY} Threads::Threads)
message(STATUS "found libzookeeper_mt ${FD_ZOOKEEPER_MT_LIBRARY}")
