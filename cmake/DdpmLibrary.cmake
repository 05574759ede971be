# ddpm_add_library(NAME <layer> [FOLDER <folder>] SOURCES ... HEADERS ... DEPENDS ...)
# One static library per layer, target ddpm_<layer>, exported as ddpmcpp::<layer>. Headers
# install under include/ddpmcpp/<folder>/ (the layer's source folder, by default its name),
# so users write #include <tensor/tensor.hpp> as the code does in-tree.
function(ddpm_add_library)
  cmake_parse_arguments(ARG "USES_XSIMD" "NAME;FOLDER" "SOURCES;HEADERS;GEMM_HEADERS;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  set(target ddpm_${ARG_NAME})
  if(NOT ARG_FOLDER)
    set(ARG_FOLDER ${ARG_NAME})
  endif()
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(ddpmcpp::${ARG_NAME} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_NAME} OUTPUT_NAME ddpm_${ARG_NAME})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:include/ddpmcpp>)
  target_link_libraries(${target} PUBLIC ${ARG_DEPENDS} PRIVATE ${ARG_PRIVATE_DEPENDS}
    $<BUILD_INTERFACE:ddpm_compile_options>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  if(DDPM_SANITIZE)
    # Static archives built with sanitizers need the runtime in whatever links them.
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
  if(ARG_USES_XSIMD)
    # Header-only and private to the kernels: only its include path, so neither the
    # installed package nor its users need xsimd.
    target_include_directories(${target} PRIVATE $<TARGET_PROPERTY:xsimd,INTERFACE_INCLUDE_DIRECTORIES>)
  endif()
  install(TARGETS ${target} EXPORT ddpmcppTargets ARCHIVE DESTINATION lib)
  install(FILES ${ARG_HEADERS} DESTINATION include/ddpmcpp/${ARG_FOLDER})
  if(ARG_GEMM_HEADERS)
    install(FILES ${ARG_GEMM_HEADERS} DESTINATION include/ddpmcpp/${ARG_FOLDER}/gemm)
  endif()
endfunction()
