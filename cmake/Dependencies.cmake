# Every third-party library comes from Debian 12's packages (scripts/install-deps.sh).
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED COMPONENTS json CONFIG)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(CLI11 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(PostgreSQL REQUIRED)
find_library(GMP_LIBRARY gmp REQUIRED)
find_path(GMP_INCLUDE_DIR gmp.h REQUIRED)
add_library(sd_gmp INTERFACE)
target_link_libraries(sd_gmp INTERFACE ${GMP_LIBRARY})
target_include_directories(sd_gmp INTERFACE ${GMP_INCLUDE_DIR})

# Common settings for every target of ours.
add_library(sd_defaults INTERFACE)
target_link_libraries(sd_defaults INTERFACE sd_warnings sd_sanitizers Threads::Threads)
target_compile_definitions(sd_defaults INTERFACE BOOST_ASIO_NO_DEPRECATED)
