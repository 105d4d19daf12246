// Catch2 v2 main for the end-to-end checks (no engine initialisation: coldscan is tested as a black box).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
