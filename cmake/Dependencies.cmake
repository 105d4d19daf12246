# Every dependency comes from a Debian 12 package (scripts/install-deps.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(TBB REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(RocksDB CONFIG REQUIRED)
find_package(tomlplusplus 3 CONFIG REQUIRED) # the service's config file

pkg_check_modules(GUESTFS REQUIRED IMPORTED_TARGET libguestfs)
pkg_check_modules(NBD REQUIRED IMPORTED_TARGET libnbd)
pkg_check_modules(TSK REQUIRED IMPORTED_TARGET tsk)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(CLAMAV REQUIRED IMPORTED_TARGET libclamav)
pkg_check_modules(YARA REQUIRED IMPORTED_TARGET yara)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib) # the service's HTTP API
pkg_check_modules(LIBVIRT REQUIRED IMPORTED_TARGET libvirt) # the service's libvirt domains (read-only)
pkg_check_modules(LIBXML2 REQUIRED IMPORTED_TARGET libxml-2.0) # their domain XML
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq) # fleet mode: PostgreSQL
find_package(ZLIB REQUIRED) # ClamAV's .cvd containers, unpacked for the signature catalogue

if(COLDSCAN_TESTS)
  find_package(Catch2 2 REQUIRED) # Debian 12 ships Catch2 v2 (catch2/catch.hpp)
endif()
