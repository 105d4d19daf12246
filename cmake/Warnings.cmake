# Warnings for our own targets only (third-party headers are SYSTEM includes).
function(coldscan_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wnull-dereference
                                           -Wimplicit-fallthrough)
endfunction()

# Invariant checks stay on in release builds (style rule 13).
add_compile_options(-UNDEBUG)
