# Installs the embeddable data library (DESIGN.md §2): one static archive
# libibp_data.a holding ibp_data and the ibp libraries it links (ibp_proto,
# ibp_wire, ...), its public headers (node/data/include/ibp/*.h and every ibp/
# header they include, found by following their #include "ibp/..." lines),
# and the pkg-config file ibp-data.pc. Included from the top-level
# CMakeLists.txt after the libraries are defined.

# What ibp_data links, followed through its link libraries: our static
# libraries go into the archive; the pkg-config imports (PkgConfig::X, from
# pkg_check_modules(X ...)) become the .pc's Requires. NATS or MariaDB there
# is a configure error: the data library must not need them.
set(ibp_data_bundle_libs "")
set(ibp_data_requires "")
set(ibp_data_extra_libs "")
set(ibp_walk ibp_data)
while(ibp_walk)
  list(POP_FRONT ibp_walk t)
  if(t IN_LIST ibp_data_bundle_libs)
    continue()
  endif()
  list(APPEND ibp_data_bundle_libs ${t})
  get_target_property(deps ${t} INTERFACE_LINK_LIBRARIES)
  get_target_property(deps2 ${t} LINK_LIBRARIES)
  foreach(dep ${deps} ${deps2})
    if(dep MATCHES "^\\$<LINK_ONLY:(.+)>$")
      set(dep ${CMAKE_MATCH_1})
    endif()
    if(dep MATCHES "NOTFOUND$" OR dep MATCHES "^\\$<")
      continue()
    elseif(dep MATCHES "^PkgConfig::(.+)$")
      set(pfx ${CMAKE_MATCH_1})
      if(pfx STREQUAL "NATS" OR pfx STREQUAL "MARIADB")
        message(FATAL_ERROR "ibp_data links ${dep} (through ${t}): the data library "
                            "must link no NATS and no MariaDB")
      endif()
      if(NOT ${pfx}_MODULE_NAME)
        message(FATAL_ERROR "ibp-data.pc: no pkg-config module name for ${dep}")
      endif()
      list(APPEND ibp_data_requires ${${pfx}_MODULE_NAME})
    elseif(dep STREQUAL "Threads::Threads")
      list(APPEND ibp_data_extra_libs -pthread)
    elseif(TARGET ${dep})
      get_target_property(type ${dep} TYPE)
      if(NOT type STREQUAL "STATIC_LIBRARY")
        message(FATAL_ERROR "ibp_data links ${dep} (${type}); the install bundles static libraries only")
      endif()
      list(APPEND ibp_walk ${dep})
    elseif(dep MATCHES "^-")
      list(APPEND ibp_data_extra_libs ${dep})
    else()
      list(APPEND ibp_data_extra_libs -l${dep})
    endif()
  endforeach()
endwhile()
list(REMOVE_DUPLICATES ibp_data_requires)
list(REMOVE_DUPLICATES ibp_data_extra_libs)
list(JOIN ibp_data_requires " " IBP_DATA_PC_REQUIRES)
list(JOIN ibp_data_extra_libs " " IBP_DATA_PC_LIBS)
list(JOIN ibp_data_bundle_libs ", " ibp_bundle_names)

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
  COMMENT "Combining ${ibp_bundle_names} into libibp_data.a"
  VERBATIM)
add_custom_target(ibp_data_bundle ALL DEPENDS ${ibp_data_bundle})
install(FILES ${ibp_data_bundle} DESTINATION ${CMAKE_INSTALL_LIBDIR})

# ---- public headers -------------------------------------------------------
set(ibp_header_dirs
  ${PROJECT_SOURCE_DIR}/node/data/include/ibp
  ${PROJECT_SOURCE_DIR}/proto/include/ibp)
set(ibp_gen_dir ${PROJECT_BINARY_DIR}/proto/gen/ibp)
file(GLOB ibp_todo CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/node/data/include/ibp/*.h)
# Parts of the usage facade (ibp/usage.h) that its unit tests reach but an
# embedder never needs: not installed, and no installed header may include them.
set(ibp_data_internal_headers usage_aggregate.h usage_flush.h)
foreach(name ${ibp_data_internal_headers})
  list(REMOVE_ITEM ibp_todo ${PROJECT_SOURCE_DIR}/node/data/include/ibp/${name})
endforeach()
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
    if(name IN_LIST ibp_data_internal_headers)
      message(FATAL_ERROR "${h} is installed and includes ibp/${name}, which is internal")
    endif()
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
