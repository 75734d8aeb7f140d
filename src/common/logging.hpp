#pragma once
/// Console logging in the seed's format: "[INFO] Servidor iniciado en 0.0.0.0:9000".

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace sd {

/// Sets up the default spdlog logger on stdout.
/// `tag` empty: lines start with the level ("[INFO] ", "[WARN] ", "[ERROR] ").
/// `tag` set (e.g. "WORKER"): every line starts with "[WORKER] ".
/// `level` is one of trace, debug, info, warn, error, off; returns false if unknown.
bool init_logging(std::string_view level, std::string_view tag = {});

}  // namespace sd
