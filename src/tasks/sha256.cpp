// SHA256_Init/Update/Final are deprecated since OpenSSL 3.0 (sha256.hpp says why they
// are used): this file alone calls them, without the warning. Defined before any
// include, since the header includes <openssl/sha.h> too.
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include "tasks/sha256.hpp"

#include <openssl/sha.h>

namespace sd::tasks {

Sha256Digest Sha256::digest(std::span<const unsigned char> bytes) noexcept {
  Sha256Digest out;
  // They return 1 unless given a null pointer.
  SHA256_Init(&ctx_);
  SHA256_Update(&ctx_, bytes.data(), bytes.size());
  SHA256_Final(out.data(), &ctx_);
  return out;
}

Sha256Digest Sha256::digest(std::string_view text) noexcept {
  // Viewing a char buffer as unsigned char is allowed by the aliasing rules.
  return digest(std::span(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(bytes.size() * 2, '\0');
  std::size_t i = 0;
  for (const unsigned char byte : bytes) {
    hex[i++] = kDigits[byte >> 4];
    hex[i++] = kDigits[byte & 0x0f];
  }
  return hex;
}

}  // namespace sd::tasks
