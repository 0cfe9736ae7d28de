# fd_protobuf(<target> <proto file>...): generates protobuf-c sources at build
# time from .proto files kept in the repo and builds them into a static
# library <target>. Headers land in ${CMAKE_BINARY_DIR}/proto/<dir>/.
function(fd_protobuf target)
  set(srcs)
  foreach(proto ${ARGN})
    get_filename_component(abs ${proto} ABSOLUTE)
    get_filename_component(dir ${abs} DIRECTORY)
    get_filename_component(base ${abs} NAME_WE)
    set(out ${CMAKE_BINARY_DIR}/proto)
    add_custom_command(
      OUTPUT ${out}/${base}.pb-c.c ${out}/${base}.pb-c.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
      COMMAND ${PROTOC_C} --proto_path=${dir} --c_out=${out} ${abs}
      DEPENDS ${abs}
      COMMENT "protoc-c ${proto}")
    list(APPEND srcs ${out}/${base}.pb-c.c)
  endforeach()
  add_library(${target} STATIC ${srcs})
  # Generated code is not ours to warn about.
  target_compile_options(${target} PRIVATE -w)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target} PUBLIC ${CMAKE_BINARY_DIR}/proto)
  target_link_libraries(${target} PUBLIC fd::protobuf)
endfunction()
