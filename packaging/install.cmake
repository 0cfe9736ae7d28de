# packaging/install.cmake — what `cmake --install` puts where (GNUInstallDirs:
# with CMAKE_INSTALL_PREFIX=/usr on Debian the libraries go to
# lib/<multiarch>). scripts/package.sh stages a .deb from it with DESTDIR;
# the units, configs, man pages and maintainer scripts are packaging/'s.
include(GNUInstallDirs)
install(TARGETS fdnode fdsched fdadmin RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# libfdclient.a alone needs fd_rpc, fd_rpc_proto and fd_common too:
# scripts/package.sh merges them into the one archive it ships.
install(TARGETS fdclient ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/admin/fdclient.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET fdclient_shared)
  install(TARGETS fdclient_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
