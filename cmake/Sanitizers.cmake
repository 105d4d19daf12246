if(COLDSCAN_SANITIZE AND COLDSCAN_TSAN)
  message(FATAL_ERROR "COLDSCAN_SANITIZE (ASan+UBSan) and COLDSCAN_TSAN cannot be combined: "
                      "use two build folders")
endif()
if(COLDSCAN_FUZZ AND (COLDSCAN_SANITIZE OR COLDSCAN_TSAN))
  message(FATAL_ERROR "COLDSCAN_FUZZ brings its own sanitizers: "
                      "build it without COLDSCAN_SANITIZE and COLDSCAN_TSAN")
endif()
if(COLDSCAN_SANITIZE)
  # -g1: the reports need file:line, not variables, and the pass builds faster.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g1)
  add_link_options(-fsanitize=address,undefined)
endif()
if(COLDSCAN_TSAN)
  # Only our code is instrumented, not libclamav, oneTBB or RocksDB: tests/tsan.supp and
  # scanner/src/tsan_annotations.hpp say how their synchronisation is told to TSan.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
if(COLDSCAN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
    message(FATAL_ERROR "COLDSCAN_FUZZ needs clang >= 16 (libFuzzer, and std::expected with libstdc++ 12): "
                        "CXX=clang++-16 CC=clang-16, as scripts/fuzz.sh does")
  endif()
  # Every library is built for coverage without libFuzzer's main; tests/fuzz links the fuzz targets with
  # -fsanitize=fuzzer.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # libstdc++ 12 enables <expected> only when __cpp_concepts >= 202002L. Clang 16 implements what that
  # header needs (P0848, conditionally trivial special members) but still reports 201907L (later releases
  # raise it), so std::expected would not exist at all. Claim the C++20 value for C++ sources.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-D__cpp_concepts=202002L>
                      $<$<COMPILE_LANGUAGE:CXX>:-Wno-macro-redefined>)
endif()
