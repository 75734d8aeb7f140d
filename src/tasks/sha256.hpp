#pragma once
/// SHA-256 through OpenSSL's SHA256_* functions, shared by the `hash` and `compute` tasks.

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include <openssl/sha.h>

namespace sd::tasks {

/// One SHA-256 digest: 32 raw bytes.
using Sha256Digest = std::array<unsigned char, 32>;

/// Computes SHA-256 digests with OpenSSL's SHA256_Init/Update/Final on a context held
/// in the object (no allocation, no provider). OpenSSL 3.0 marks those functions
/// deprecated in favour of EVP, but they are the same library's code (SHA-NI where the
/// CPU has it) without EVP's per-digest cost: in OpenSSL 3.0 each EVP_DigestInit_ex2
/// frees and allocates the provider's context. For the 32-byte digests `compute` hashes
/// 200,000 times that cost was a third of the task: 200,000 digests took 16.8-20.0 ms
/// through a reused EVP_MD_CTX and 11.6-11.9 ms here (this machine, OpenSSL 3.0.22).
/// The build therefore needs OpenSSL with its 3.0-deprecated API (Debian's libssl-dev has
/// it; an OpenSSL configured with no-deprecated does not).
/// Thread-safety: one object per thread; distinct objects may be used concurrently.
class Sha256 {
 public:
  /// The digest of `bytes`.
  [[nodiscard]] Sha256Digest digest(std::span<const unsigned char> bytes) noexcept;

  /// The digest of the bytes of `text` (UTF-8 for JSON strings).
  [[nodiscard]] Sha256Digest digest(std::string_view text) noexcept;

 private:
  SHA256_CTX ctx_{};
};

/// `bytes` as lowercase hexadecimal, two characters per byte.
[[nodiscard]] std::string to_hex(std::span<const unsigned char> bytes);

}  // namespace sd::tasks
