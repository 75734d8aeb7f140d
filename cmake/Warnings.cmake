# Warnings live in an INTERFACE target that every project target links.
add_library(sd_warnings INTERFACE)
target_compile_options(sd_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion -Wnon-virtual-dtor -Wpedantic)
if(SD_WERROR)
  target_compile_options(sd_warnings INTERFACE -Werror)
endif()
