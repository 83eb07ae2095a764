# Installs the embeddable data library (DESIGN.md §2): one static archive
# libibp_data.a holding ibp_data and the ibp libraries it links (ibp_proto,
# ibp_wire), its public headers (node/data/include/ibp/*.h and every ibp/
# header they include, found by following their #include "ibp/..." lines),
# and the pkg-config file ibp-data.pc. Included from the top-level
# CMakeLists.txt after the libraries are defined.

# The ibp libraries inside the archive: ibp_data and what it links.
set(ibp_data_bundle_libs ibp_data ibp_proto ibp_wire)

# ---- the combined archive (GNU/LLVM ar MRI script) ------------------------
set(ibp_data_bundle ${PROJECT_BINARY_DIR}/install-data/libibp_data.a)
set(ibp_mri "create ${ibp_data_bundle}\n")
set(ibp_bundle_deps "")
foreach(lib ${ibp_data_bundle_libs})
  string(APPEND ibp_mri "addlib $<TARGET_FILE:${lib}>\n")
  list(APPEND ibp_bundle_deps ${lib})
endforeach()
string(APPEND ibp_mri "save\nend\n")
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/install-data/libibp_data.mri CONTENT "${ibp_mri}")
add_custom_command(
  OUTPUT ${ibp_data_bundle}
  COMMAND ${CMAKE_COMMAND} -E rm -f ${ibp_data_bundle}
  COMMAND ${CMAKE_AR} -M < ${PROJECT_BINARY_DIR}/install-data/libibp_data.mri
  COMMAND ${CMAKE_RANLIB} ${ibp_data_bundle}
  DEPENDS ${ibp_bundle_deps} ${PROJECT_BINARY_DIR}/install-data/libibp_data.mri
  COMMENT "Combining ibp_data, ibp_proto and ibp_wire into libibp_data.a"
  VERBATIM)
add_custom_target(ibp_data_bundle ALL DEPENDS ${ibp_data_bundle})
install(FILES ${ibp_data_bundle} DESTINATION ${CMAKE_INSTALL_LIBDIR})

# ---- public headers -------------------------------------------------------
set(ibp_header_dirs
  ${PROJECT_SOURCE_DIR}/node/data/include/ibp
  ${PROJECT_SOURCE_DIR}/proto/include/ibp)
set(ibp_gen_dir ${PROJECT_BINARY_DIR}/proto/gen/ibp)
file(GLOB ibp_todo CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/node/data/include/ibp/*.h)
set(ibp_public_headers "")
set(ibp_public_generated "")
while(ibp_todo)
  list(POP_FRONT ibp_todo h)
  if(h IN_LIST ibp_public_headers)
    continue()
  endif()
  list(APPEND ibp_public_headers ${h})
  file(STRINGS ${h} incs REGEX "^[ \t]*#[ \t]*include[ \t]*\"ibp/[^\"]+\"")
  foreach(line ${incs})
    string(REGEX REPLACE ".*\"ibp/([^\"]+)\".*" "\\1" name "${line}")
    set(found "")
    foreach(d ${ibp_header_dirs})
      if(EXISTS ${d}/${name})
        set(found ${d}/${name})
        break()
      endif()
    endforeach()
    if(found)
      list(APPEND ibp_todo ${found})
    elseif(name STREQUAL "ibp.pb-c.h")
      list(APPEND ibp_public_generated ${ibp_gen_dir}/${name})
    else()
      message(FATAL_ERROR "${h} includes ibp/${name}, found in none of ${ibp_header_dirs}")
    endif()
  endforeach()
endwhile()
list(REMOVE_DUPLICATES ibp_public_generated)
install(FILES ${ibp_public_headers} ${ibp_public_generated}
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ibp)

# ---- pkg-config -----------------------------------------------------------
# Relocatable: prefix is found from the .pc file's own directory, so
# `cmake --install --prefix P` gives a working P/lib/pkgconfig/ibp-data.pc.
file(RELATIVE_PATH IBP_PC_PREFIX_FROM_PCDIR /ibp-root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /ibp-root)
string(REGEX REPLACE "/$" "" IBP_PC_PREFIX_FROM_PCDIR "${IBP_PC_PREFIX_FROM_PCDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/ibp-data.pc.in
               ${PROJECT_BINARY_DIR}/install-data/ibp-data.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/install-data/ibp-data.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
