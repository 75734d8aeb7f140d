#include "common/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <memory>

namespace sd {
namespace {

/// "%*" in the pattern: the fixed tag, or the level in upper case.
class TagFlag final : public spdlog::custom_flag_formatter {
 public:
  explicit TagFlag(std::string tag) : tag_(std::move(tag)) {}

  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string_view text = tag_;
    if (text.empty()) {
      switch (msg.level) {
        case spdlog::level::trace: text = "TRACE"; break;
        case spdlog::level::debug: text = "DEBUG"; break;
        case spdlog::level::info: text = "INFO"; break;
        case spdlog::level::warn: text = "WARN"; break;
        case spdlog::level::err: text = "ERROR"; break;
        case spdlog::level::critical: text = "CRITICAL"; break;
        default: text = "LOG"; break;
      }
    }
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<TagFlag>(tag_); }

 private:
  std::string tag_;
};

}  // namespace

bool init_logging(std::string_view level, std::string_view tag) {
  const auto lvl = spdlog::level::from_str(std::string(level));
  const bool known = lvl != spdlog::level::off || level == "off";
  auto logger = std::make_shared<spdlog::logger>("sd", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<TagFlag>('*', std::string(tag)).set_pattern("[%*] %v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(known ? lvl : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);  // every line is an event tests and people wait on
  spdlog::set_default_logger(std::move(logger));
  return known;
}

}  // namespace sd
