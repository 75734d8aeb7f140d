#pragma once
/// SHA-256 through OpenSSL's EVP interface, shared by the `hash` and `compute` tasks.

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include <openssl/types.h>  // EVP_MD_CTX only, without all of <openssl/evp.h>

namespace sd::tasks {

/// One SHA-256 digest: 32 raw bytes.
using Sha256Digest = std::array<unsigned char, 32>;

/// Computes SHA-256 digests, reusing one EVP_MD_CTX and one pre-fetched EVP_MD
/// across calls, so a hashing loop allocates nothing of its own. (OpenSSL 3.0
/// itself still allocates its provider context on each EVP_DigestInit_ex2;
/// later OpenSSL releases reuse it.)
/// Thread-safety: one object per thread; distinct objects may be used concurrently.
class Sha256 {
 public:
  /// Throws std::runtime_error when OpenSSL cannot provide SHA-256.
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  /// The digest of `bytes`. Throws std::runtime_error if OpenSSL fails.
  [[nodiscard]] Sha256Digest digest(std::span<const unsigned char> bytes);

  /// The digest of the bytes of `text` (UTF-8 for JSON strings).
  [[nodiscard]] Sha256Digest digest(std::string_view text);

 private:
  EVP_MD_CTX* ctx_;
};

/// `bytes` as lowercase hexadecimal, two characters per byte.
[[nodiscard]] std::string to_hex(std::span<const unsigned char> bytes);

}  // namespace sd::tasks
