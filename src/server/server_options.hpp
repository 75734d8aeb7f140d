#pragma once
/// Everything an operator can set on the server (see `servidor --help`).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace sd::server {

struct ServerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 9000;  ///< 0: any free port
  std::size_t max_message_bytes = 16u * 1024u * 1024u;
  std::size_t max_queued = 1'000'000;
  std::size_t max_connections = 10'000;
  int default_max_retries = 3;
  std::chrono::milliseconds heartbeat_interval{2'000};
  std::chrono::milliseconds heartbeat_timeout{10'000};
  std::chrono::milliseconds grace{10'000};
  std::chrono::milliseconds queue_timeout{60'000};
  /// Output queued for one client beyond which the server stops reading its requests
  /// until it has taken its results (backpressure).
  std::size_t client_high_water_bytes = 8u * 1024u * 1024u;
  std::string token;      ///< when set, a connection's first message must carry it
  bool insecure = false;  ///< without a token: also serve peers that are not on loopback
  /// How long finished tasks' results are kept in the store before being purged.
  std::chrono::milliseconds result_ttl{std::chrono::hours(24)};
  /// With the memory store (which keeps nothing), how many of the latest results are
  /// remembered for GET_RESULT and idempotent resubmission (within result_ttl). A durable
  /// store keeps them all; the server then reads them from it.
  std::size_t recent_results = 10'000;
};

}  // namespace sd::server
