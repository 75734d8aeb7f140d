# SD_SANITIZE=address,undefined or SD_SANITIZE=thread: applied to every project target
# through the sd_sanitizers INTERFACE target.
add_library(sd_sanitizers INTERFACE)
if(SD_SANITIZE)
  target_compile_options(sd_sanitizers INTERFACE -fsanitize=${SD_SANITIZE} -fno-omit-frame-pointer
                                                 -fno-sanitize-recover=all)
  target_link_options(sd_sanitizers INTERFACE -fsanitize=${SD_SANITIZE})
endif()
